package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// The kinds of event that people acting on an update write to the history.
const (
	// EventSnoozed: a person put an update off until a time.
	EventSnoozed = "snoozed"
	// EventDismissed: a person dismissed an update; its candidate is not offered again.
	EventDismissed = "dismissed"
	// EventRequested: a person (or CI, through the API) asked for a tag to
	// be deployed; the update of that candidate is opened for it.
	EventRequested = "requested"
	// EventRefused: a trigger's policy refused to act on an update a person
	// asked it to apply; the detail names the rule.
	EventRefused = "refused"
)

// OpenUpdate is an open update and the end of its snooze.
type OpenUpdate struct {
	core.Update
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
			u       OpenUpdate
			r       updateRow
			snoozed sql.NullInt64
		)
		if err := rows.Scan(append(r.dest(&u.Update), &snoozed)...); err != nil {
			return nil, fmt.Errorf("listing updates: %w", err)
		}
		if err := r.fill(&u.Update); err != nil {
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

// Updates returns the open updates (the current candidate of each
// container) with status ("" for any status, snoozed or not), sorted by
// host and container.
func (s *Store) Updates(ctx context.Context, status core.UpdateStatus) ([]core.Update, error) {
	q := `SELECT ` + updateColumns + ` FROM updates u JOIN containers c ON c.id = u.container WHERE u.closed_at IS NULL`
	var args []any
	if status != "" {
		q, args = q+` AND u.status = ?`, append(args, string(status))
	}
	q += ` ORDER BY c.host, c.name`
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing updates: %w", err)
	}
	defer rows.Close()
	var out []core.Update
	for rows.Next() {
		var (
			u core.Update
			r updateRow
		)
		if err := rows.Scan(r.dest(&u)...); err != nil {
			return nil, fmt.Errorf("listing updates: %w", err)
		}
		if err := r.fill(&u); err != nil {
			return nil, fmt.Errorf("listing updates: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing updates: %w", err)
	}
	return out, nil
}

// Update returns update id (open or closed), with its container's display
// name and labels; an error wrapping core.ErrNotFound when there is none.
func (s *Store) Update(ctx context.Context, id int64) (core.Update, error) {
	var (
		u core.Update
		r updateRow
	)
	err := s.queryRow(ctx, `SELECT `+updateColumns+` FROM updates u JOIN containers c ON c.id = u.container WHERE u.id = ?`, id).Scan(r.dest(&u)...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return core.Update{}, fmt.Errorf("reading update %d: %w", id, core.ErrNotFound)
	case err != nil:
		return core.Update{}, fmt.Errorf("reading update %d: %w", id, err)
	}
	if err := r.fill(&u); err != nil {
		return core.Update{}, fmt.Errorf("reading update %d: %w", id, err)
	}
	return u, nil
}

// SetUpdateStatus sets the status of update id (dismissed, applying, …) at
// at (now when zero); an error wrapping core.ErrNotFound when there is none.
func (s *Store) SetUpdateStatus(ctx context.Context, id int64, status core.UpdateStatus, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	res, err := s.exec(ctx, `UPDATE updates SET status = ?, status_at = ? WHERE id = ?`,
		string(status), at.UTC().UnixNano(), id)
	if err != nil {
		return fmt.Errorf("setting status of update %d to %s: %w", id, status, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("setting status of update %d to %s: %w", id, status, err)
	} else if n == 0 {
		return fmt.Errorf("setting status of update %d to %s: %w", id, status, core.ErrNotFound)
	}
	return nil
}

// Request opens the update of candidate (a tag, of kind kind) for the
// container name of host, because principal asked for it to be deployed
// (POST /api/deploy), and records an EventRequested. When the container's
// open update already offers that candidate, that update is the one; another
// open update is closed as superseded. A container that is not
// present (never watched, or gone) is an error wrapping core.ErrNotFound.
func (s *Store) Request(ctx context.Context, host, name, candidate string, kind core.UpdateKind, principal string) (u core.Update, err error) {
	at := time.Now().UTC()
	tx, unlock, err := s.beginWrite(ctx)
	if err != nil {
		return u, fmt.Errorf("requesting %s for %s on %s: %w", candidate, name, host, err)
	}
	defer unlock()
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	var (
		row                                     int64
		image, current, currentDigest, repoName string
	)
	err = tx.QueryRowContext(ctx, `SELECT id, image, repo, current_tag, current_digest FROM containers
		WHERE host = ? AND name = ? AND gone_at IS NULL`, host, name).Scan(&row, &image, &repoName, &current, &currentDigest)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return u, fmt.Errorf("requesting %s: container %s on %s is not watched: %w", candidate, name, host, core.ErrNotFound)
	case err != nil:
		return u, fmt.Errorf("requesting %s for %s on %s: %w", candidate, name, host, err)
	}
	if repoName != "" {
		image = repoName
	}
	open, err := readOpenUpdate(ctx, tx, row)
	if err != nil {
		return u, err
	}
	var id int64
	if open != nil && open.candidate == candidate && open.kind != string(core.KindDigest) {
		id, kind = open.id, core.UpdateKind(open.kind)
	} else {
		if open != nil {
			if err := closeUpdate(ctx, tx, open.id, closedSuperseded, at); err != nil {
				return u, err
			}
		}
		if err := tx.QueryRowContext(ctx, `
			INSERT INTO updates (container, image, current_tag, current_digest, candidate_tag, candidate_digest,
				kind, link, status, first_seen, last_seen)
			VALUES (?, ?, ?, ?, ?, '', ?, '', 'pending', ?, ?)
			RETURNING id`,
			row, image, current, currentDigest, candidate, string(kind), at.UnixNano(), at.UnixNano()).Scan(&id); err != nil {
			return u, fmt.Errorf("requesting %s for %s on %s: %w", candidate, name, host, err)
		}
	}
	ev := event{at: at, host: host, container: name, image: image, principal: principal}
	ev.kind, ev.updateID, ev.updateKind = EventRequested, id, string(kind)
	ev.from, ev.to, ev.detail = current, candidate, "deploy of "+candidate+" requested"
	if principal != "" {
		ev.detail += " by " + principal
	}
	if err := ev.insert(ctx, tx); err != nil {
		return u, err
	}
	if err := tx.Commit(); err != nil {
		return u, fmt.Errorf("requesting %s for %s on %s: %w", candidate, name, host, err)
	}
	return s.Update(ctx, id)
}

// refSQL is core.Ref in SQL, for an update's side (tag, digest): the tag,
// with its digest for digest updates.
func refSQL(tag, digest string) string {
	return `CASE WHEN u.kind = 'digest' AND ` + digest + ` <> '' THEN
		(CASE WHEN ` + tag + ` = '' THEN ` + digest + ` ELSE ` + tag + ` || '@' || ` + digest + ` END) ELSE ` + tag + ` END`
}

// updateColumns are the columns of an update with what it carries of its
// container, in updateRow's order.
const updateColumns = `u.id, c.host, c.name, c.container_id, c.display_name, u.image, u.current_tag, u.current_digest,
		u.candidate_tag, u.candidate_digest, u.kind, u.link, u.status, u.first_seen, u.last_seen, c.labels, u.candidate_created`

// updateRow holds what scanning updateColumns needs beside the core.Update.
type updateRow struct {
	kind, status, labels string
	first, last, created sql.NullInt64
}

// dest returns the scan destinations of updateColumns, into u and r.
func (r *updateRow) dest(u *core.Update) []any {
	return []any{&u.ID, &u.Host, &u.ContainerName, &u.ContainerID, &u.DisplayName, &u.Image, &u.Current, &u.CurrentDigest,
		&u.Candidate, &u.CandidateDigest, &r.kind, &u.Link, &r.status, &r.first, &r.last, &r.labels, &r.created}
}

// fill completes u from what was scanned into r.
func (r *updateRow) fill(u *core.Update) error {
	u.Kind, u.Status = core.UpdateKind(r.kind), core.UpdateStatus(r.status)
	u.FirstSeen, u.LastSeen = fromNanos(r.first), fromNanos(r.last)
	u.CandidateCreated = fromNanos(r.created)
	if r.labels != "" && r.labels != "{}" {
		if err := json.Unmarshal([]byte(r.labels), &u.Labels); err != nil {
			return fmt.Errorf("labels of %s: %w", u.ContainerName, err)
		}
	}
	return nil
}

// Snooze puts the open update id off until until, and records an
// EventSnoozed in the history, with ctx's principal (WithPrincipal); an error wrapping core.ErrNotFound when no
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
// EventDismissed in the history, with ctx's principal (WithPrincipal); an error wrapping core.ErrNotFound when no
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
		INSERT INTO events (at, host, container, image, kind, from_ref, to_ref, update_kind, update_id, detail, principal)
		SELECT ?, c.host, c.name, u.image, ?, `+refSQL("u.current_tag", "u.current_digest")+`, `+
		refSQL("u.candidate_tag", "u.candidate_digest")+`, u.kind, u.id, ?, ?
		FROM updates u JOIN containers c ON c.id = u.container WHERE u.id = ?`,
		at.UTC().UnixNano(), kind, detail, PrincipalFrom(ctx), id); err != nil {
		return fmt.Errorf("recording %s event: %w", kind, err)
	}
	return tx.Commit()
}
