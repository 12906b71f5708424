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
//     a row that would stay as it is is not rewritten: only its last_checked
//     moves (and its open update's last_seen), at the end of the transaction;
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
	w := newRunWriter(newPreparedTx(s, tx), host, at, nil)
	w.writeAll = s.writeAll
	if found, err = w.record(ctx, checks); err != nil {
		return nil, fmt.Errorf("recording run on %s: %w", host, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("recording run on %s: %w", host, err)
	}
	return found, nil
}

// runWriter writes the checks of one run in its transaction: it holds what
// the store held of the host's containers (for a full run), scratch
// buffers, and the writes deferred to the run's end (touches).
type runWriter struct {
	tx     querier
	host   string
	at     time.Time
	priors map[string]*prior // what the store held, by name; nil: each container is read on its own
	done   map[string]bool   // names written by this run
	touch  touches
	// writeAll writes every row, changed or not (Store.writeAll).
	writeAll bool

	labels, digests []byte   // scratch: the JSON of a container's labels and repo digests
	keys            []string // scratch: the sorted keys of its labels
}

func newRunWriter(tx querier, host string, at time.Time, priors map[string]*prior) *runWriter {
	return &runWriter{tx: tx, host: host, at: at, priors: priors, done: map[string]bool{}}
}

// record writes checks and the deferred writes, and returns the open update
// of every check that found one, in the order of checks.
func (w *runWriter) record(ctx context.Context, checks []core.Check) (found []core.Update, err error) {
	var ups []*core.Update // gathered first: appending the large values one by one copies them again at every growth
	for _, c := range checks {
		u, err := w.recordCheck(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.Container.Name, err)
		}
		if u != nil {
			ups = append(ups, u)
		}
	}
	if err := w.touch.flush(ctx, w.tx, w.at.UnixNano()); err != nil {
		return nil, err
	}
	if len(ups) > 0 {
		found = make([]core.Update, len(ups))
		for i, u := range ups {
			found[i] = *u
		}
	}
	return found, nil
}

// prior returns what the store holds of container name (nil: nothing).
func (w *runWriter) prior(ctx context.Context, name string) (*prior, error) {
	if w.done[name] {
		// Written already by this run (a name listed twice): read it as it
		// is now, its deferred writes first.
		if err := w.touch.flush(ctx, w.tx, w.at.UnixNano()); err != nil {
			return nil, err
		}
		return readPrior(ctx, w.tx, w.host, name)
	}
	if w.priors != nil {
		return w.priors[name], nil
	}
	return readPrior(ctx, w.tx, w.host, name)
}

// openUpdate is the open update of a container, as recordCheck needs it.
type openUpdate struct {
	id                         int64
	image                      string
	current, currentDigest     string
	candidate, candidateDigest string
	kind, status, link         string
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
	fresh   bool // the container's row was inserted by this check: it has no updates yet
}

// recordCheck saves the container of c and what its check found, and
// returns the open update when the check found one.
func (w *runWriter) recordCheck(ctx context.Context, c core.Check) (*core.Update, error) {
	if c.Container.Name == "" {
		return nil, errors.New("container has no name")
	}
	if c.Container.DisplayName == "" { // what core.Container promises, for callers that did not fill it
		c.Container.DisplayName = c.Container.Name
	}
	pr, err := w.prior(ctx, c.Container.Name)
	if err != nil {
		return nil, err
	}
	k, err := w.saveContainer(ctx, c, pr)
	if err != nil {
		return nil, err
	}
	w.done[c.Container.Name] = true
	tx, at := w.tx, w.at
	if c.Err != nil {
		if pr == nil || k.errText != pr.lastError {
			k.ev.kind, k.ev.detail = EventError, k.errText
			return nil, k.ev.insert(ctx, tx)
		}
		return nil, nil
	}
	var open *openUpdate
	if pr != nil {
		open = pr.open
	}
	if !c.HasUpdate() {
		return nil, k.resolve(ctx, tx, open, at)
	}
	if open != nil && sameCandidate(open, c) {
		return k.refresh(ctx, tx, &w.touch, w.writeAll, open, at)
	}
	if open != nil {
		if err := k.supersede(ctx, tx, open, at); err != nil {
			return nil, err
		}
	}
	return k.open(ctx, tx, at)
}

// saveContainer inserts or updates the container of c, pr being what the
// store held of it: a row whose columns all stay as they are is not
// written, only its last_checked, at the run's end.
func (w *runWriter) saveContainer(ctx context.Context, c core.Check, pr *prior) (k checked, err error) {
	tx, host, at := w.tx, w.host, w.at
	k.c = c
	if c.Err != nil {
		k.errText = c.Err.Error()
	}
	repo := c.Ref.Repo()
	if c.Ref.Registry == "" {
		repo = ""
	}
	w.labels, w.keys = appendJSONObject(w.labels[:0], c.Container.Labels, w.keys)
	w.digests = appendJSONArray(w.digests[:0], c.Container.RepoDigests)
	svc := ""
	if c.Container.Service != nil {
		b, err := json.Marshal(c.Container.Service)
		if err != nil {
			return k, fmt.Errorf("encoding service: %w", err)
		}
		svc = string(b)
	}
	checkedAt := c.CheckedAt
	if checkedAt.IsZero() {
		checkedAt = at
	}
	k.image = repo
	if k.image == "" {
		k.image = c.Container.Image
	}
	k.ev = event{at: at, host: host, container: c.Container.Name, image: k.image}
	if pr != nil && !w.writeAll && w.unchanged(pr, c, repo, k.errText, svc) {
		k.row = pr.row
		if t := checkedAt.UTC().UnixNano(); t != pr.lastChecked {
			w.touch.checked = append(w.touch.checked, pr.row, t)
		}
		return k, nil
	}
	// A failed check may not know the image's details; it keeps those known.
	var row int64
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
		c.Current, c.CurrentDigest, string(w.digests), string(w.labels), c.Container.State, nanos(c.Container.Created), c.Note,
		at.UnixNano(), checkedAt.UTC().UnixNano(), k.errText, string(c.Container.Kind), svc,
	).Scan(&row); err != nil { // row, not &k.row: k would move to the heap on every call
		return k, fmt.Errorf("saving container: %w", err)
	}
	k.row, k.fresh = row, pr == nil
	return k, nil
}

// unchanged reports whether writing the container of c over pr (as
// saveContainer's upsert would, w.labels and w.digests holding its JSON)
// would leave every column but last_checked as it is.
func (w *runWriter) unchanged(pr *prior, c core.Check, repo, errText, svc string) bool {
	if pr.gone {
		return false
	}
	if repo == "" {
		repo = pr.repo
	}
	tag := c.Current
	if tag == "" {
		tag = pr.currentTag
	}
	digest := c.CurrentDigest
	if errText != "" && digest == "" {
		digest = pr.currentDigest
	}
	ctr := &c.Container
	created := ctr.Created.IsZero() && !pr.created.Valid ||
		!ctr.Created.IsZero() && pr.created.Valid && pr.created.Int64 == ctr.Created.UTC().UnixNano()
	return created &&
		pr.containerID == ctr.ID && pr.displayName == ctr.DisplayName && pr.image == ctr.Image && pr.imageID == ctr.ImageID &&
		pr.repo == repo && pr.currentTag == tag && pr.currentDigest == digest &&
		pr.repoDigests == string(w.digests) && pr.labels == string(w.labels) && pr.state == ctr.State &&
		pr.note == c.Note && pr.lastError == errText && pr.kind == string(ctr.Kind) && pr.service == svc
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

// refresh keeps the open update of the same candidate, with what runs now;
// an update that stays as it is only has its last_seen moved, at the run's
// end (t).
func (k checked) refresh(ctx context.Context, tx querier, t *touches, writeAll bool, open *openUpdate, at time.Time) (*core.Update, error) {
	c := k.c
	if !writeAll && open.image == k.image && open.current == c.Current && open.currentDigest == c.CurrentDigest &&
		(c.CandidateDigest == "" || c.CandidateDigest == open.candidateDigest) && open.kind == string(c.Kind) && open.link == c.Link &&
		(c.CandidateCreated.IsZero() || open.candidateCreated.Valid && open.candidateCreated.Int64 == c.CandidateCreated.UTC().UnixNano()) {
		t.seen = append(t.seen, open.id)
	} else if _, err := tx.ExecContext(ctx, `
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
	err := sql.ErrNoRows // a container first recorded now has no earlier updates
	if !k.fresh {
		err = tx.QueryRowContext(ctx, `SELECT status FROM updates WHERE container = ? AND candidate_tag = ? AND candidate_digest = ?
		ORDER BY id DESC LIMIT 1`, k.row, c.Candidate, c.CandidateDigest).Scan(&prev)
	}
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
		SELECT id, image, current_tag, current_digest, candidate_tag, candidate_digest, kind, link, status, first_seen, candidate_created
		FROM updates WHERE container = ? AND closed_at IS NULL`, container,
	).Scan(&u.id, &u.image, &u.current, &u.currentDigest, &u.candidate, &u.candidateDigest, &u.kind, &u.link, &u.status, &u.firstSeen, &u.candidateCreated)
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
