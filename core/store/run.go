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

// How an update was closed, in updates.closed_as.
const (
	closedSuperseded = "superseded"
	closedResolved   = "resolved"
	closedGone       = "gone"
)

// RecordRun records the checks of one watch run on host, in one
// transaction, and returns the open update of every check that found one,
// as the store now holds it (its ID, status and first sighting), in the
// order of checks:
//   - each container checked is saved (inserted, or updated by host and
//     name), with its last error; a container that had gone is present again;
//   - a check with an update opens a pending update and records "detected",
//     unless the same candidate (tag, and digest when both are known) is
//     already open, whose last_seen and current state are then refreshed,
//     keeping its status; a different candidate closes the open update,
//     recording "superseded", and opens the new one;
//   - a check without update and without error closes the open update,
//     recording "resolved" — but an update being applied (applying) stays
//     open: the container that runs the candidate meanwhile is the rollout's,
//     which may still be rolled back, and the rollout's outcome lands on
//     that update;
//   - a check with an error keeps the open update, and records "error" when
//     the error differs from the container's last one.
//
// Containers of host that are not in checks are left alone (a run may check
// one container only); MarkGone retires those that disappeared. at is the
// time of the run (now when zero); a check's CheckedAt, when set, is the
// container's last_checked. Container.Host is ignored in favour of host.
func (s *Store) RecordRun(ctx context.Context, host string, checks []core.Check, at time.Time) (found []core.Update, err error) {
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	tx, unlock, err := s.beginWrite(ctx)
	if err != nil {
		return nil, fmt.Errorf("recording run on %s: %w", host, err)
	}
	defer unlock()
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	ptx := newPreparedTx(s, tx)
	for _, c := range checks {
		u, err := recordCheck(ctx, ptx, host, c, at)
		if err != nil {
			return nil, fmt.Errorf("recording run on %s: container %s: %w", host, c.Container.Name, err)
		}
		if u != nil {
			found = append(found, *u)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("recording run on %s: %w", host, err)
	}
	return found, nil
}

// openUpdate is the open update of a container, as recordCheck needs it.
type openUpdate struct {
	id                         int64
	current, currentDigest     string
	candidate, candidateDigest string
	kind, status               string
	firstSeen                  sql.NullInt64
	candidateCreated           sql.NullInt64
}

// checked is one check being recorded: the container's row, and the
// history event its outcome writes (kind and details left to fill).
type checked struct {
	c       core.Check
	row     int64
	image   string // the normalised repository, else the image as written
	ev      event
	errText string
}

// recordCheck saves the container of c and what its check found, and
// returns the open update when the check found one.
func recordCheck(ctx context.Context, tx querier, host string, c core.Check, at time.Time) (*core.Update, error) {
	if c.Container.Name == "" {
		return nil, errors.New("container has no name")
	}
	if c.Container.DisplayName == "" { // what core.Container promises, for callers that did not fill it
		c.Container.DisplayName = c.Container.Name
	}
	k, known, lastError, err := saveContainer(ctx, tx, host, c, at)
	if err != nil {
		return nil, err
	}
	if c.Err != nil {
		if !known || k.errText != lastError {
			k.ev.kind, k.ev.detail = EventError, k.errText
			return nil, k.ev.insert(ctx, tx)
		}
		return nil, nil
	}
	open, err := readOpenUpdate(ctx, tx, k.row)
	if err != nil {
		return nil, err
	}
	if !c.HasUpdate() {
		return nil, k.resolve(ctx, tx, open, at)
	}
	if open != nil && sameCandidate(open, c) {
		return k.refresh(ctx, tx, open, at)
	}
	if open != nil {
		if err := k.supersede(ctx, tx, open, at); err != nil {
			return nil, err
		}
	}
	return k.open(ctx, tx, at)
}

// saveContainer inserts or updates the container of c, and says whether it
// was known and with which last error.
func saveContainer(ctx context.Context, tx querier, host string, c core.Check, at time.Time) (k checked, known bool, lastError string, err error) {
	k.c = c
	switch err := tx.QueryRowContext(ctx, `SELECT id, last_error FROM containers WHERE host = ? AND name = ?`,
		host, c.Container.Name).Scan(&k.row, &lastError); {
	case err == nil:
		known = true
	case !errors.Is(err, sql.ErrNoRows):
		return k, false, "", fmt.Errorf("reading container: %w", err)
	}
	if c.Err != nil {
		k.errText = c.Err.Error()
	}
	repo := c.Ref.Repo()
	if c.Ref.Registry == "" {
		repo = ""
	}
	labels, err := json.Marshal(nonNilMap(c.Container.Labels))
	if err != nil {
		return k, false, "", fmt.Errorf("encoding labels: %w", err)
	}
	digests, err := json.Marshal(nonNilSlice(c.Container.RepoDigests))
	if err != nil {
		return k, false, "", fmt.Errorf("encoding repo digests: %w", err)
	}
	svc := ""
	if c.Container.Service != nil {
		b, err := json.Marshal(c.Container.Service)
		if err != nil {
			return k, false, "", fmt.Errorf("encoding service: %w", err)
		}
		svc = string(b)
	}
	checkedAt := c.CheckedAt
	if checkedAt.IsZero() {
		checkedAt = at
	}
	// A failed check may not know the image's details; it keeps those known.
	if err := tx.QueryRowContext(ctx, `
		INSERT INTO containers (host, name, container_id, display_name, image, image_id, repo,
			current_tag, current_digest, repo_digests, labels, state, created_at, note,
			first_seen, last_checked, last_error, gone_at, kind, service)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)
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
			gone_at        = NULL,
			kind           = excluded.kind,
			service        = excluded.service
		RETURNING id`,
		host, c.Container.Name, c.Container.ID, c.Container.DisplayName, c.Container.Image, c.Container.ImageID, repo,
		c.Current, c.CurrentDigest, string(digests), string(labels), c.Container.State, nanos(c.Container.Created), c.Note,
		at.UnixNano(), checkedAt.UTC().UnixNano(), k.errText, string(c.Container.Kind), svc,
	).Scan(&k.row); err != nil {
		return k, false, "", fmt.Errorf("saving container: %w", err)
	}
	k.image = repo
	if k.image == "" {
		k.image = c.Container.Image
	}
	k.ev = event{at: at, host: host, container: c.Container.Name, image: k.image}
	return k, known, lastError, nil
}

// resolve closes the open update, if any, of a container whose check found
// none; one being applied is left open for its rollout's outcome.
func (k checked) resolve(ctx context.Context, tx querier, open *openUpdate, at time.Time) error {
	if open == nil || open.status == string(core.StatusApplying) {
		return nil
	}
	if err := closeUpdate(ctx, tx, open.id, closedResolved, at); err != nil {
		return err
	}
	kind := core.UpdateKind(open.kind)
	k.ev.kind, k.ev.updateID, k.ev.updateKind = EventResolved, open.id, open.kind
	k.ev.from, k.ev.to = core.Ref(open.current, open.currentDigest, kind), core.Ref(open.candidate, open.candidateDigest, kind)
	k.ev.detail = "no update found; running " + core.Ref(k.c.Current, k.c.CurrentDigest, kind)
	return k.ev.insert(ctx, tx)
}

// refresh keeps the open update of the same candidate, with what runs now.
func (k checked) refresh(ctx context.Context, tx querier, open *openUpdate, at time.Time) (*core.Update, error) {
	c := k.c
	if _, err := tx.ExecContext(ctx, `
		UPDATE updates SET last_seen = ?, image = ?, current_tag = ?, current_digest = ?,
			candidate_digest = COALESCE(NULLIF(?, ''), candidate_digest), kind = ?, link = ?,
			candidate_created = COALESCE(?, candidate_created)
		WHERE id = ?`,
		at.UnixNano(), k.image, c.Current, c.CurrentDigest, c.CandidateDigest, string(c.Kind), c.Link, nanos(c.CandidateCreated), open.id); err != nil {
		return nil, fmt.Errorf("refreshing update: %w", err)
	}
	u := k.update(open.id, core.UpdateStatus(open.status), fromNanos(open.firstSeen), at)
	if u.CandidateDigest == "" {
		u.CandidateDigest = open.candidateDigest
	}
	if u.CandidateCreated.IsZero() {
		u.CandidateCreated = fromNanos(open.candidateCreated)
	}
	return u, nil
}

// supersede closes the open update of another candidate.
func (k checked) supersede(ctx context.Context, tx querier, open *openUpdate, at time.Time) error {
	if err := closeUpdate(ctx, tx, open.id, closedSuperseded, at); err != nil {
		return err
	}
	kind := core.UpdateKind(open.kind)
	sup := k.ev
	sup.kind, sup.updateID, sup.updateKind = EventSuperseded, open.id, open.kind
	sup.from, sup.to = core.Ref(open.current, open.currentDigest, kind), core.Ref(open.candidate, open.candidateDigest, kind)
	sup.detail = "superseded by " + core.Ref(k.c.Candidate, k.c.CandidateDigest, k.c.Kind)
	return sup.insert(ctx, tx)
}

// open opens an update for the check's candidate. A candidate this
// container already had, rolled back, failed or dismissed, keeps that
// status: it is not offered again as new.
func (k checked) open(ctx context.Context, tx querier, at time.Time) (*core.Update, error) {
	c := k.c
	status := string(core.StatusPending)
	var prev string
	err := tx.QueryRowContext(ctx, `SELECT status FROM updates WHERE container = ? AND candidate_tag = ? AND candidate_digest = ?
		ORDER BY id DESC LIMIT 1`, k.row, c.Candidate, c.CandidateDigest).Scan(&prev)
	switch {
	case err == nil && (prev == string(core.StatusRolledBack) || prev == string(core.StatusFailed) || prev == string(core.StatusDismissed)):
		status = prev
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("reading earlier updates: %w", err)
	}
	var id int64
	if err := tx.QueryRowContext(ctx, `
		INSERT INTO updates (container, image, current_tag, current_digest, candidate_tag, candidate_digest,
			kind, link, status, first_seen, last_seen, candidate_created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		k.row, k.image, c.Current, c.CurrentDigest, c.Candidate, c.CandidateDigest,
		string(c.Kind), c.Link, status, at.UnixNano(), at.UnixNano(), nanos(c.CandidateCreated),
	).Scan(&id); err != nil {
		return nil, fmt.Errorf("saving update: %w", err)
	}
	k.ev.kind, k.ev.updateID, k.ev.updateKind = EventDetected, id, string(c.Kind)
	k.ev.from, k.ev.to = core.Ref(c.Current, c.CurrentDigest, c.Kind), core.Ref(c.Candidate, c.CandidateDigest, c.Kind)
	if err := k.ev.insert(ctx, tx); err != nil {
		return nil, err
	}
	return k.update(id, core.UpdateStatus(status), at, at), nil
}

// update is the open update of the check, as the store now holds it.
func (k checked) update(id int64, status core.UpdateStatus, first, last time.Time) *core.Update {
	c := k.c
	return &core.Update{
		ID: id, Host: k.ev.host, ContainerName: c.Container.Name, ContainerID: c.Container.ID, DisplayName: c.Container.DisplayName,
		Image: k.image, Current: c.Current, CurrentDigest: c.CurrentDigest, Candidate: c.Candidate, CandidateDigest: c.CandidateDigest,
		CandidateCreated: c.CandidateCreated,
		Kind:             c.Kind, Link: c.Link, Status: status, Labels: c.Container.Labels, FirstSeen: first.UTC(), LastSeen: last.UTC(),
	}
}

// sameCandidate reports whether the check offers the open update's
// candidate: the same tag, and the same digest when both digests are known.
func sameCandidate(u *openUpdate, c core.Check) bool {
	if u.candidate != c.Candidate {
		return false
	}
	return u.candidateDigest == "" || c.CandidateDigest == "" || u.candidateDigest == c.CandidateDigest
}

func readOpenUpdate(ctx context.Context, tx querier, container int64) (*openUpdate, error) {
	var u openUpdate
	err := tx.QueryRowContext(ctx, `
		SELECT id, current_tag, current_digest, candidate_tag, candidate_digest, kind, status, first_seen, candidate_created
		FROM updates WHERE container = ? AND closed_at IS NULL`, container,
	).Scan(&u.id, &u.current, &u.currentDigest, &u.candidate, &u.candidateDigest, &u.kind, &u.status, &u.firstSeen, &u.candidateCreated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading open update: %w", err)
	}
	return &u, nil
}

func closeUpdate(ctx context.Context, tx querier, id int64, as string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE updates SET closed_at = ?, closed_as = ? WHERE id = ?`,
		at.UnixNano(), as, id); err != nil {
		return fmt.Errorf("closing update %d as %s: %w", id, as, err)
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
