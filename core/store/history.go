package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// The kinds of event in the history.
const (
	// EventDetected: a candidate was found for a container for the first time.
	EventDetected = "detected"
	// EventSuperseded: a newer candidate replaced an open update.
	EventSuperseded = "superseded"
	// EventResolved: a check found no update where one was open (the
	// container was updated, or the candidate withdrawn).
	EventResolved = "resolved"
	// EventError: checking a container failed with a new error.
	EventError = "error"
	// EventGone: a container disappeared from its host.
	EventGone = "gone"
)

// HistoryKinds are the kinds of event the history holds, for filters.
var HistoryKinds = []string{
	EventDetected, EventSuperseded, EventResolved, EventError, EventGone,
	EventDelivered, EventDeliveryRetry, EventDeliveryFailed,
	string(core.EventUpdateApplied), string(core.EventUpdateFailed), string(core.EventUpdateRolledBack),
	EventSnoozed, EventDismissed, EventRequested, EventRefused,
	EventApplyRequested, EventWatchRequested, EventTriggerTested,
	EventCommitted, string(core.EventCommitFailed),
	EventSynced, EventSyncFailed,
}

// EventCommitted: an applied rollout's rewrite was committed (and pushed)
// in its git work tree; the detail names the commit and the files.
const EventCommitted = "committed"

// The kinds of event the API records for requests whose effect is not
// recorded otherwise, each with the request's principal.
const (
	// EventApplyRequested: a trigger was asked to apply an update; the
	// outcome follows as delivered, update-applied, …
	EventApplyRequested = "apply-requested"
	// EventWatchRequested: a check of one container, or a run of every
	// watcher, was asked for.
	EventWatchRequested = "watch-requested"
	// EventTriggerTested: a trigger was sent a test notification.
	EventTriggerTested = "trigger-tested"
)

// Event is one entry of the history.
type Event struct {
	// ID orders events recorded at the same time.
	ID int64 `json:"id"`
	// At is when the event was recorded (the run's time), UTC.
	At time.Time `json:"at"`
	// Host, Container and Image say what it is about; Image is the
	// normalised repository when known, else the image as written.
	Host      string `json:"host"`
	Container string `json:"container"`
	Image     string `json:"image"`
	// Kind is one of EventDetected, EventSuperseded, EventResolved, EventError, EventGone.
	Kind string `json:"kind"`
	// From and To are the update the event is about: the running tag and
	// the candidate ("tag@digest" for digest updates). Empty for error and
	// gone events.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// UpdateKind is the kind of that update.
	UpdateKind core.UpdateKind `json:"update_kind,omitempty"`
	// Detail says more: the error, what superseded the update, what runs now.
	Detail string `json:"detail,omitempty"`
	// UpdateID is the update the event is about, 0 when none.
	UpdateID int64 `json:"update_id,omitempty"`
	// Trigger is the trigger instance whose delivery the event records.
	Trigger string `json:"trigger,omitempty"`
	// Principal is who asked for what the event records (a user or token of
	// the API, "mqtt"); "" for what tidewatch did by itself.
	Principal string `json:"principal,omitempty"`
}

// HistoryFilter selects events. Zero fields select everything.
type HistoryFilter struct {
	// Host and Container keep the events of one host, or of one container
	// (by name) of one host or, when Host is empty, of any host.
	Host, Container string
	// Kinds keeps events of these kinds.
	Kinds []string
	// Since (inclusive) and Until (exclusive) bound the events' time.
	Since, Until time.Time
	// Limit caps the number of events (0: no cap); Offset skips the newest ones.
	Limit, Offset int
}

// where is the WHERE clause (with its leading space, or "") of f's
// conditions, and its arguments; Limit and Offset are not in it.
func (f HistoryFilter) where() (string, []any) {
	var (
		where []string
		args  []any
	)
	if f.Host != "" {
		where, args = append(where, "host = ?"), append(args, f.Host)
	}
	if f.Container != "" {
		where, args = append(where, "container = ?"), append(args, f.Container)
	}
	if len(f.Kinds) > 0 {
		where = append(where, "kind IN (?"+strings.Repeat(", ?", len(f.Kinds)-1)+")")
		for _, k := range f.Kinds {
			args = append(args, k)
		}
	}
	if !f.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, f.Since.UTC().UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "at < ?"), append(args, f.Until.UTC().UnixNano())
	}
	if len(where) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// History returns the events f selects, newest first.
func (s *Store) History(ctx context.Context, f HistoryFilter) ([]Event, error) {
	where, args := f.where()
	q := `SELECT id, at, host, container, image, kind, from_ref, to_ref, update_kind, detail,
		COALESCE(update_id, 0), trigger, principal FROM events` + where
	q += ` ORDER BY at DESC, id DESC`
	if f.Limit > 0 || f.Offset > 0 {
		limit := f.Limit
		if limit <= 0 {
			limit = -1 // SQLite: no limit
		}
		q += ` LIMIT ? OFFSET ?`
		args = append(args, limit, max(f.Offset, 0))
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading history: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var (
			e    Event
			at   sql.NullInt64
			kind string
		)
		if err := rows.Scan(&e.ID, &at, &e.Host, &e.Container, &e.Image, &e.Kind, &e.From, &e.To, &kind, &e.Detail,
			&e.UpdateID, &e.Trigger, &e.Principal); err != nil {
			return nil, fmt.Errorf("reading history: %w", err)
		}
		e.At, e.UpdateKind = fromNanos(at), core.UpdateKind(kind)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading history: %w", err)
	}
	return out, nil
}

// CountHistory counts the events f selects, ignoring its Limit and Offset:
// the total behind a page of History.
func (s *Store) CountHistory(ctx context.Context, f HistoryFilter) (int, error) {
	where, args := f.where()
	q := `SELECT COUNT(*) FROM events` + where
	var n int
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting history: %w", err)
	}
	return n, nil
}

// AddEvent appends e to the history as it is (ID is ignored; a zero At is
// now; an empty Principal is ctx's, see WithPrincipal), for what happens
// outside a watch run or a delivery: a request the API records, an apply a
// trigger's policy refused.
func (s *Store) AddEvent(ctx context.Context, e Event) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if e.Kind == "" {
		return fmt.Errorf("recording an event: its kind is required")
	}
	if e.Principal == "" {
		e.Principal = PrincipalFrom(ctx)
	}
	var updateID any
	if e.UpdateID != 0 {
		updateID = e.UpdateID
	}
	_, err := s.exec(ctx, `
		INSERT INTO events (at, host, container, image, kind, from_ref, to_ref, update_kind, update_id, detail, trigger, principal)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.At.UTC().UnixNano(), e.Host, e.Container, e.Image, e.Kind, e.From, e.To, string(e.UpdateKind), updateID, e.Detail, e.Trigger, e.Principal)
	if err != nil {
		return fmt.Errorf("recording %s event: %w", e.Kind, err)
	}
	return nil
}

// event is a history row to insert.
type event struct {
	at                           time.Time
	host, container, image, kind string
	from, to, updateKind, detail string
	principal                    string
	updateID                     int64
}

func (e event) insert(ctx context.Context, tx querier) error {
	var updateID any
	if e.updateID != 0 {
		updateID = e.updateID
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO events (at, host, container, image, kind, from_ref, to_ref, update_kind, update_id, detail, principal)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.at.UnixNano(), e.host, e.container, e.image, e.kind, e.from, e.to, e.updateKind, updateID, e.detail, e.principal); err != nil {
		return fmt.Errorf("recording %s event: %w", e.kind, err)
	}
	return nil
}
