package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// The kinds of event that putting off an update writes to the history.
const (
	// EventSnoozed: a person put an update off until a time.
	EventSnoozed = "snoozed"
	// EventDismissed: a person dismissed an update; its candidate is not offered again.
	EventDismissed = "dismissed"
)

// OpenUpdate is an open update with its container's display name and
// labels, and the end of its snooze.
type OpenUpdate struct {
	UpdateRecord
	// SnoozedUntil is when the update's snooze ends; zero when it was never snoozed.
	SnoozedUntil time.Time `json:"snoozed_until,omitzero"`
}

// Snoozed reports whether the update is put off at now.
func (u OpenUpdate) Snoozed(now time.Time) bool { return u.SnoozedUntil.After(now) }

// UpdateFilter selects open updates.
type UpdateFilter struct {
	// Statuses keeps updates with these statuses; empty keeps the pending
	// and notified ones.
	Statuses []core.UpdateStatus
	// Host keeps the updates of one host ("" for every host).
	Host string
	// Snoozed also keeps pending and notified updates snoozed at Now, which
	// are left out by default.
	Snoozed bool
	// Now is the time snoozes are compared with; now when zero.
	Now time.Time
}

// ListUpdates returns the open updates f selects, sorted by host and
// container. Snoozed pending and notified updates are left out until their
// snooze ends, unless f.Snoozed.
func (s *Store) ListUpdates(ctx context.Context, f UpdateFilter) ([]OpenUpdate, error) {
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = []core.UpdateStatus{core.StatusPending, core.StatusNotified}
	}
	now := f.Now
	if now.IsZero() {
		now = time.Now()
	}
	q := `SELECT ` + updateColumns + `, u.snoozed_until FROM updates u JOIN containers c ON c.id = u.container
		WHERE u.closed_at IS NULL AND u.status IN (?` + strings.Repeat(", ?", len(statuses)-1) + `)`
	args := make([]any, 0, len(statuses)+2)
	for _, st := range statuses {
		args = append(args, string(st))
	}
	if f.Host != "" {
		q, args = q+` AND c.host = ?`, append(args, f.Host)
	}
	if !f.Snoozed {
		q += ` AND NOT (u.status IN ('pending', 'notified') AND COALESCE(u.snoozed_until, 0) > ?)`
		args = append(args, now.UTC().UnixNano())
	}
	q += ` ORDER BY c.host, c.name`
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing updates: %w", err)
	}
	defer rows.Close()
	var out []OpenUpdate
	for rows.Next() {
		var (
			u                         OpenUpdate
			kind, st, labels, display string
			first, last, snoozed      sql.NullInt64
		)
		if err := rows.Scan(&u.ID, &u.Host, &u.ContainerName, &u.ContainerID, &u.Image, &u.Current, &u.CurrentDigest,
			&u.Candidate, &u.CandidateDigest, &kind, &u.Link, &st, &first, &last, &display, &labels, &snoozed); err != nil {
			return nil, fmt.Errorf("listing updates: %w", err)
		}
		if err := fillUpdate(&u.UpdateRecord, kind, st, first, last, display, labels); err != nil {
			return nil, fmt.Errorf("listing updates: %w", err)
		}
		u.SnoozedUntil = fromNanos(snoozed)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing updates: %w", err)
	}
	return out, nil
}

// Snooze puts the open update id off until until, and records an
// EventSnoozed in the history, with ctx's actor (WithActor); an error wrapping core.ErrNotFound when no
// open update has that id. A later Snooze replaces the time; a time in the
// past ends the snooze.
func (s *Store) Snooze(ctx context.Context, id int64, until time.Time) error {
	detail := "snoozed until " + until.UTC().Format(time.RFC3339)
	if err := s.putOff(ctx, id, `UPDATE updates SET snoozed_until = ? WHERE id = ? AND closed_at IS NULL`,
		[]any{until.UTC().UnixNano(), id}, EventSnoozed, detail, time.Now()); err != nil {
		return fmt.Errorf("snoozing update %d: %w", id, err)
	}
	return nil
}

// Dismiss marks the open update id dismissed at at (now when zero): its
// candidate is not offered again, while a newer candidate is. It records an
// EventDismissed in the history, with ctx's actor (WithActor); an error wrapping core.ErrNotFound when no
// open update has that id.
func (s *Store) Dismiss(ctx context.Context, id int64, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	if err := s.putOff(ctx, id, `UPDATE updates SET status = 'dismissed', status_at = ? WHERE id = ? AND closed_at IS NULL`,
		[]any{at.UTC().UnixNano(), id}, EventDismissed, "dismissed", at); err != nil {
		return fmt.Errorf("dismissing update %d: %w", id, err)
	}
	return nil
}

// putOff runs update (which must change the open update id) and records an
// event of kind about it, in one transaction.
func (s *Store) putOff(ctx context.Context, id int64, update string, args []any, kind, detail string, at time.Time) (err error) {
	tx, unlock, err := s.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	res, err := tx.ExecContext(ctx, update, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("no open update %d: %w", id, core.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO events (at, host, container, image, kind, from_ref, to_ref, update_kind, update_id, detail, actor)
		SELECT ?, c.host, c.name, u.image, ?, `+refSQL("u.current_tag", "u.current_digest")+`, `+
		refSQL("u.candidate_tag", "u.candidate_digest")+`, u.kind, u.id, ?, ?
		FROM updates u JOIN containers c ON c.id = u.container WHERE u.id = ?`,
		at.UTC().UnixNano(), kind, detail, ActorFrom(ctx), id); err != nil {
		return fmt.Errorf("recording %s event: %w", kind, err)
	}
	return tx.Commit()
}
