package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// ContainerRecord is a container as the store last saw it.
type ContainerRecord struct {
	// Container is what the last check saw; Container.Host is the watcher's name.
	Container core.Container `json:"container"`
	// Repo is the normalised repository ("index.docker.io/library/nginx"), when known.
	Repo string `json:"repo,omitempty"`
	// Current and CurrentDigest describe what runs.
	Current       string `json:"current"`
	CurrentDigest string `json:"current_digest,omitempty"`
	// Note is the last check's note.
	Note string `json:"note,omitempty"`
	// FirstSeen is when the container was first recorded; LastChecked when it was last checked.
	FirstSeen   time.Time `json:"first_seen"`
	LastChecked time.Time `json:"last_checked"`
	// LastError is the last check's error, "" when it succeeded.
	LastError string `json:"last_error,omitempty"`
}

// Containers returns the containers present on host ("" for every host),
// sorted by host and name. Containers marked gone are left out.
func (s *Store) Containers(ctx context.Context, host string) ([]ContainerRecord, error) {
	q := `SELECT host, name, container_id, display_name, image, image_id, repo, current_tag, current_digest,
			repo_digests, labels, state, created_at, note, first_seen, last_checked, last_error
		FROM containers WHERE gone_at IS NULL`
	var args []any
	if host != "" {
		q += ` AND host = ?`
		args = append(args, host)
	}
	q += ` ORDER BY host, name`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	defer rows.Close()
	var out []ContainerRecord
	for rows.Next() {
		var (
			r                             ContainerRecord
			digests, labels               string
			created, firstSeen, lastCheck sql.NullInt64
		)
		c := &r.Container
		if err := rows.Scan(&c.Host, &c.Name, &c.ID, &c.DisplayName, &c.Image, &c.ImageID, &r.Repo, &r.Current, &r.CurrentDigest,
			&digests, &labels, &c.State, &created, &r.Note, &firstSeen, &lastCheck, &r.LastError); err != nil {
			return nil, fmt.Errorf("listing containers: %w", err)
		}
		if err := json.Unmarshal([]byte(digests), &c.RepoDigests); err != nil {
			return nil, fmt.Errorf("listing containers: repo digests of %s: %w", c.Name, err)
		}
		if err := json.Unmarshal([]byte(labels), &c.Labels); err != nil {
			return nil, fmt.Errorf("listing containers: labels of %s: %w", c.Name, err)
		}
		if len(c.RepoDigests) == 0 {
			c.RepoDigests = nil
		}
		if len(c.Labels) == 0 {
			c.Labels = nil
		}
		c.Created, r.FirstSeen, r.LastChecked = fromNanos(created), fromNanos(firstSeen), fromNanos(lastCheck)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	return out, nil
}

// Updates returns the open updates (the current candidate of each
// container) with status ("" for any status), sorted by host and container.
func (s *Store) Updates(ctx context.Context, status core.UpdateStatus) ([]core.Update, error) {
	q := `SELECT u.id, c.host, c.name, c.container_id, u.image, u.current_tag, u.current_digest,
			u.candidate_tag, u.candidate_digest, u.kind, u.link, u.status, u.first_seen, u.last_seen
		FROM updates u JOIN containers c ON c.id = u.container
		WHERE u.closed_at IS NULL`
	var args []any
	if status != "" {
		q += ` AND u.status = ?`
		args = append(args, string(status))
	}
	q += ` ORDER BY c.host, c.name`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing updates: %w", err)
	}
	defer rows.Close()
	var out []core.Update
	for rows.Next() {
		var (
			u               core.Update
			kind, st        string
			first, lastSeen sql.NullInt64
		)
		if err := rows.Scan(&u.ID, &u.Host, &u.ContainerName, &u.ContainerID, &u.Image, &u.Current, &u.CurrentDigest,
			&u.Candidate, &u.CandidateDigest, &kind, &u.Link, &st, &first, &lastSeen); err != nil {
			return nil, fmt.Errorf("listing updates: %w", err)
		}
		u.Kind, u.Status = core.UpdateKind(kind), core.UpdateStatus(st)
		u.FirstSeen, u.LastSeen = fromNanos(first), fromNanos(lastSeen)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing updates: %w", err)
	}
	return out, nil
}

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
	// Actor is who asked, for an event an API request caused ("user:alice",
	// "token:ci", "anonymous"); empty for what the daemon did on its own.
	Actor string `json:"actor,omitempty"`
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
	q := `SELECT id, at, host, container, image, kind, from_ref, to_ref, update_kind, detail, actor FROM events` + where
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
		if err := rows.Scan(&e.ID, &at, &e.Host, &e.Container, &e.Image, &e.Kind, &e.From, &e.To, &kind, &e.Detail, &e.Actor); err != nil {
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
