package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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

// How an update was closed, in updates.closed_as.
const (
	closedSuperseded = "superseded"
	closedResolved   = "resolved"
	closedGone       = "gone"
)

// RecordRun records the checks of one watch run on host, in one transaction:
//   - each container checked is saved (inserted, or updated by host and
//     name), with its last error; a container that had gone is present again;
//   - a check with an update opens a pending update and records "detected",
//     unless the same candidate (tag, and digest when both are known) is
//     already open, whose last_seen and current state are then refreshed,
//     keeping its status; a different candidate closes the open update,
//     recording "superseded", and opens the new one;
//   - a check without update and without error closes the open update,
//     recording "resolved";
//   - a check with an error keeps the open update, and records "error" when
//     the error differs from the container's last one.
//
// Containers of host that are not in checks are left alone (a run may check
// one container only); MarkGone retires those that disappeared. at is the
// time of the run (now when zero); a check's CheckedAt, when set, is the
// container's last_checked. Container.Host is ignored in favour of host.
func (s *Store) RecordRun(ctx context.Context, host string, checks []core.Check, at time.Time) (err error) {
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	tx, unlock, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("recording run on %s: %w", host, err)
	}
	defer unlock()
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	for _, c := range checks {
		if err := recordCheck(ctx, tx, host, c, at); err != nil {
			return fmt.Errorf("recording run on %s: container %s: %w", host, c.Container.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recording run on %s: %w", host, err)
	}
	return nil
}

// openUpdate is the open update of a container, as recordCheck needs it.
type openUpdate struct {
	id                        int64
	current, currentDigest    string
	candidate, candidateDigst string
	kind                      string
}

func recordCheck(ctx context.Context, tx *sql.Tx, host string, c core.Check, at time.Time) error {
	if c.Container.Name == "" {
		return errors.New("container has no name")
	}
	var (
		rowID     int64
		lastError string
		known     bool
	)
	switch err := tx.QueryRowContext(ctx, `SELECT id, last_error FROM containers WHERE host = ? AND name = ?`,
		host, c.Container.Name).Scan(&rowID, &lastError); {
	case err == nil:
		known = true
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("reading container: %w", err)
	}

	errText := ""
	if c.Err != nil {
		errText = c.Err.Error()
	}
	repo := c.Ref.Repo()
	if c.Ref.Registry == "" {
		repo = ""
	}
	labels, err := json.Marshal(nonNilMap(c.Container.Labels))
	if err != nil {
		return fmt.Errorf("encoding labels: %w", err)
	}
	digests, err := json.Marshal(nonNilSlice(c.Container.RepoDigests))
	if err != nil {
		return fmt.Errorf("encoding repo digests: %w", err)
	}
	checked := c.CheckedAt
	if checked.IsZero() {
		checked = at
	}
	// A failed check may not know the image's details; it keeps those known.
	if err := tx.QueryRowContext(ctx, `
		INSERT INTO containers (host, name, container_id, display_name, image, image_id, repo,
			current_tag, current_digest, repo_digests, labels, state, created_at, note,
			first_seen, last_checked, last_error, gone_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
		ON CONFLICT (host, name) DO UPDATE SET
			container_id   = excluded.container_id,
			display_name   = excluded.display_name,
			image          = excluded.image,
			image_id       = excluded.image_id,
			repo           = COALESCE(NULLIF(excluded.repo, ''), repo),
			current_tag    = COALESCE(NULLIF(excluded.current_tag, ''), current_tag),
			current_digest = CASE WHEN excluded.last_error <> '' AND excluded.current_digest = ''
			                      THEN current_digest ELSE excluded.current_digest END,
			repo_digests   = excluded.repo_digests,
			labels         = excluded.labels,
			state          = excluded.state,
			created_at     = excluded.created_at,
			note           = excluded.note,
			last_checked   = excluded.last_checked,
			last_error     = excluded.last_error,
			gone_at        = NULL
		RETURNING id`,
		host, c.Container.Name, c.Container.ID, c.Container.DisplayName, c.Container.Image, c.Container.ImageID, repo,
		c.Current, c.CurrentDigest, string(digests), string(labels), c.Container.State, nanos(c.Container.Created), c.Note,
		at.UnixNano(), checked.UTC().UnixNano(), errText,
	).Scan(&rowID); err != nil {
		return fmt.Errorf("saving container: %w", err)
	}
	image := repo
	if image == "" {
		image = c.Container.Image
	}
	ev := event{at: at, host: host, container: c.Container.Name, image: image}

	if c.Err != nil {
		if !known || errText != lastError {
			ev.kind, ev.detail = EventError, errText
			return ev.insert(ctx, tx)
		}
		return nil
	}

	open, err := readOpenUpdate(ctx, tx, rowID)
	if err != nil {
		return err
	}
	if !c.HasUpdate() {
		if open == nil {
			return nil
		}
		if err := closeUpdate(ctx, tx, open.id, closedResolved, at); err != nil {
			return err
		}
		ev.kind, ev.updateID = EventResolved, open.id
		ev.from, ev.to, ev.updateKind = ref(open.current, open.currentDigest, open.kind), ref(open.candidate, open.candidateDigst, open.kind), open.kind
		ev.detail = "no update found; running " + ref(c.Current, c.CurrentDigest, open.kind)
		return ev.insert(ctx, tx)
	}

	if open != nil && sameCandidate(open, c) {
		if _, err := tx.ExecContext(ctx, `
			UPDATE updates SET last_seen = ?, image = ?, current_tag = ?, current_digest = ?,
				candidate_digest = COALESCE(NULLIF(?, ''), candidate_digest), kind = ?, link = ?
			WHERE id = ?`,
			at.UnixNano(), image, c.Current, c.CurrentDigest, c.CandidateDigest, string(c.Kind), c.Link, open.id); err != nil {
			return fmt.Errorf("refreshing update: %w", err)
		}
		return nil
	}
	if open != nil {
		if err := closeUpdate(ctx, tx, open.id, closedSuperseded, at); err != nil {
			return err
		}
		sup := ev
		sup.kind, sup.updateID, sup.updateKind = EventSuperseded, open.id, open.kind
		sup.from, sup.to = ref(open.current, open.currentDigest, open.kind), ref(open.candidate, open.candidateDigst, open.kind)
		sup.detail = "superseded by " + ref(c.Candidate, c.CandidateDigest, string(c.Kind))
		if err := sup.insert(ctx, tx); err != nil {
			return err
		}
	}
	// A candidate this container already had, rolled back, failed or
	// dismissed, keeps that status: it is not offered again as new.
	status := string(core.StatusPending)
	var prev string
	err = tx.QueryRowContext(ctx, `SELECT status FROM updates WHERE container = ? AND candidate_tag = ? AND candidate_digest = ?
		ORDER BY id DESC LIMIT 1`, rowID, c.Candidate, c.CandidateDigest).Scan(&prev)
	switch {
	case err == nil && (prev == string(core.StatusRolledBack) || prev == string(core.StatusFailed) || prev == string(core.StatusDismissed)):
		status = prev
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("reading earlier updates: %w", err)
	}
	var id int64
	if err := tx.QueryRowContext(ctx, `
		INSERT INTO updates (container, image, current_tag, current_digest, candidate_tag, candidate_digest,
			kind, link, status, first_seen, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		rowID, image, c.Current, c.CurrentDigest, c.Candidate, c.CandidateDigest,
		string(c.Kind), c.Link, status, at.UnixNano(), at.UnixNano(),
	).Scan(&id); err != nil {
		return fmt.Errorf("saving update: %w", err)
	}
	ev.kind, ev.updateID, ev.updateKind = EventDetected, id, string(c.Kind)
	ev.from, ev.to = ref(c.Current, c.CurrentDigest, string(c.Kind)), ref(c.Candidate, c.CandidateDigest, string(c.Kind))
	return ev.insert(ctx, tx)
}

// sameCandidate reports whether the check offers the open update's
// candidate: the same tag, and the same digest when both digests are known.
func sameCandidate(u *openUpdate, c core.Check) bool {
	if u.candidate != c.Candidate {
		return false
	}
	return u.candidateDigst == "" || c.CandidateDigest == "" || u.candidateDigst == c.CandidateDigest
}

// ref writes one side of an event: the tag, with its digest for digest updates.
func ref(tag, digest, kind string) string {
	if kind == string(core.KindDigest) && digest != "" {
		if tag == "" {
			return digest
		}
		return tag + "@" + digest
	}
	return tag
}

func readOpenUpdate(ctx context.Context, tx *sql.Tx, container int64) (*openUpdate, error) {
	var u openUpdate
	err := tx.QueryRowContext(ctx, `
		SELECT id, current_tag, current_digest, candidate_tag, candidate_digest, kind
		FROM updates WHERE container = ? AND closed_at IS NULL`, container,
	).Scan(&u.id, &u.current, &u.currentDigest, &u.candidate, &u.candidateDigst, &u.kind)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading open update: %w", err)
	}
	return &u, nil
}

func closeUpdate(ctx context.Context, tx *sql.Tx, id int64, as string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE updates SET closed_at = ?, closed_as = ? WHERE id = ?`,
		at.UnixNano(), as, id); err != nil {
		return fmt.Errorf("closing update %d as %s: %w", id, as, err)
	}
	return nil
}

// MarkGone marks the containers of host whose engine ID is not in keepIDs
// as gone at at (now when zero): they leave Containers, their open update is
// closed, and a "gone" event is recorded. Call it after a full run with the
// IDs of every container the host listed. A container seen again by
// RecordRun is present again.
func (s *Store) MarkGone(ctx context.Context, host string, keepIDs []string, at time.Time) (err error) {
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	keep := make(map[string]bool, len(keepIDs))
	for _, id := range keepIDs {
		keep[id] = true
	}
	tx, unlock, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("marking gone containers on %s: %w", host, err)
	}
	defer unlock()
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	rows, err := tx.QueryContext(ctx, `
		SELECT id, name, container_id, CASE WHEN repo <> '' THEN repo ELSE image END
		FROM containers WHERE host = ? AND gone_at IS NULL`, host)
	if err != nil {
		return fmt.Errorf("marking gone containers on %s: %w", host, err)
	}
	type gone struct {
		id          int64
		name, image string
	}
	var goners []gone
	for rows.Next() {
		var g gone
		var cid string
		if err := rows.Scan(&g.id, &g.name, &cid, &g.image); err != nil {
			rows.Close()
			return fmt.Errorf("marking gone containers on %s: %w", host, err)
		}
		if !keep[cid] {
			goners = append(goners, g)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("marking gone containers on %s: %w", host, err)
	}
	for _, g := range goners {
		if _, err := tx.ExecContext(ctx, `UPDATE containers SET gone_at = ? WHERE id = ?`, at.UnixNano(), g.id); err != nil {
			return fmt.Errorf("marking %s gone: %w", g.name, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE updates SET closed_at = ?, closed_as = ? WHERE container = ? AND closed_at IS NULL`,
			at.UnixNano(), closedGone, g.id); err != nil {
			return fmt.Errorf("closing the update of %s: %w", g.name, err)
		}
		ev := event{at: at, host: host, container: g.name, image: g.image, kind: EventGone}
		if err := ev.insert(ctx, tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("marking gone containers on %s: %w", host, err)
	}
	return nil
}

// event is a history row to insert.
type event struct {
	at                           time.Time
	host, container, image, kind string
	from, to, updateKind, detail string
	updateID                     int64
}

func (e event) insert(ctx context.Context, tx *sql.Tx) error {
	var updateID any
	if e.updateID != 0 {
		updateID = e.updateID
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO events (at, host, container, image, kind, from_ref, to_ref, update_kind, update_id, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.at.UnixNano(), e.host, e.container, e.image, e.kind, e.from, e.to, e.updateKind, updateID, e.detail); err != nil {
		return fmt.Errorf("recording %s event: %w", e.kind, err)
	}
	return nil
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
