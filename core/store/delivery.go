package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// The kinds of event a delivery writes to the history.
const (
	// EventDelivered: a trigger delivered an update.
	EventDelivered = "delivered"
	// EventDeliveryRetry: an attempt failed and will be tried again.
	EventDeliveryRetry = "delivery-retry"
	// EventDeliveryFailed: a delivery failed for good (a permanent error, or
	// its attempts spent).
	EventDeliveryFailed = "delivery-failed"
)

// EventUpdateAvailable is the event of a delivery that reports a new
// candidate; delivering it marks a pending update as notified.
const EventUpdateAvailable = "update-available"

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// The statuses of a delivery.
const (
	// DeliveryPending waits for its next attempt (next_attempt_at).
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryRunning is claimed by a dispatcher: fired, or about to be.
	DeliveryRunning DeliveryStatus = "running"
	// DeliveryDelivered was delivered; it is never fired again.
	DeliveryDelivered DeliveryStatus = "delivered"
	// DeliveryFailed failed for good; it is never fired again.
	DeliveryFailed DeliveryStatus = "failed"
)

// NewDelivery is a delivery to write to the outbox.
type NewDelivery struct {
	// UpdateID is the update delivered (updates.id).
	UpdateID int64
	// Trigger is the trigger instance, "type.name".
	Trigger string
	// Candidate identifies the candidate: CandidateRef of the update.
	Candidate string
	// Event is what is delivered: EventUpdateAvailable, or a rollout's outcome.
	Event string
	// Run is "" for one delivery per candidate (ONCE on: a second Enqueue of
	// the same update, trigger, candidate and event is ignored), or what
	// makes this delivery distinct (a run ID, a request ID).
	Run string
	// Batch groups deliveries fired together in one call; "" for none.
	Batch string
	// EventDetail says what happened, for rollout events.
	EventDetail string
	// NotBefore is the first attempt's time; now when zero.
	NotBefore time.Time
}

// Delivery is a delivery in the outbox, with the update it delivers as it is now.
type Delivery struct {
	// ID is the store's identifier.
	ID int64 `json:"id"`
	// UpdateID, Trigger, Candidate, Event, Run and Batch are as enqueued.
	UpdateID  int64  `json:"update_id"`
	Trigger   string `json:"trigger"`
	Candidate string `json:"candidate"`
	Event     string `json:"event"`
	Run       string `json:"run,omitempty"`
	Batch     string `json:"batch,omitempty"`
	// Key is the idempotency key handed to the trigger (DeliveryKey).
	Key string `json:"key"`
	// EventDetail says what happened, for rollout events.
	EventDetail string `json:"event_detail,omitempty"`
	// Status is where the delivery stands.
	Status DeliveryStatus `json:"status"`
	// Attempts counts the attempts that finished (one cut short by a crash is not counted).
	Attempts int `json:"attempts"`
	// NextAttemptAt is when a pending delivery is due.
	NextAttemptAt time.Time `json:"next_attempt_at"`
	// LastError is the last attempt's error; Detail the trigger's detail on success.
	LastError string `json:"last_error,omitempty"`
	Detail    string `json:"detail,omitempty"`
	// CreatedAt and UpdatedAt bound the delivery's life.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Update is the update delivered, with its container's display name and
	// labels; filled by Due and Deliveries, not by Enqueue.
	Update UpdateRecord `json:"update"`
}

// UpdateRecord is an update with what a trigger needs of its container.
type UpdateRecord struct {
	core.Update
	// DisplayName is the container's display name.
	DisplayName string `json:"display_name"`
	// Labels are the container's labels.
	Labels map[string]string `json:"labels,omitempty"`
}

// CandidateRef identifies u's candidate as the outbox does: its tag, and
// "tag@digest" for a digest update (whose tag does not change).
func CandidateRef(u core.Update) string {
	return ref(u.Candidate, u.CandidateDigest, string(u.Kind))
}

// DeliveryKey is the idempotency key of the delivery of event for update's
// candidate by trigger, in run ("" for once per candidate): 32 hex digits of
// a SHA-256, safe in any header. The same arguments give the same key.
func DeliveryKey(updateID int64, trigger, candidate, event, run string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00%s\x00%s\x00%s", updateID, trigger, candidate, event, run)
	return "tw-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// onceKey is the idempotency key of a delivery with ONCE on: per container
// (its store row), trigger, candidate and event.
func onceKey(containerRow int64, trigger, candidate, event string) string {
	h := sha256.New()
	fmt.Fprintf(h, "container %d\x00%s\x00%s\x00%s", containerRow, trigger, candidate, event)
	return "tw-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Enqueue writes deliveries to the outbox, in one transaction, as pending,
// and returns those it created (without their Update). A delivery whose key
// exists already — with ONCE on, one of the same update, trigger, candidate
// and event — is left as it is and not returned. Write deliveries before
// firing anything: that is what makes a crash lose nothing.
func (s *Store) Enqueue(ctx context.Context, ds []NewDelivery) (out []Delivery, err error) {
	if len(ds) == 0 {
		return nil, nil
	}
	now := time.Now().UTC()
	tx, unlock, err := s.beginWrite(ctx)
	if err != nil {
		return nil, fmt.Errorf("enqueuing deliveries: %w", err)
	}
	defer unlock()
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	stmt, err := s.txStmt(ctx, tx, `
		INSERT INTO deliveries (update_id, trigger, candidate, event, run, key, batch, event_detail,
			status, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)
		ON CONFLICT DO NOTHING
		RETURNING `+deliveryColumns)
	if err != nil {
		return nil, fmt.Errorf("enqueuing deliveries: %w", err)
	}
	defer stmt.Close()
	for _, d := range ds {
		if d.Trigger == "" || d.Event == "" {
			return nil, fmt.Errorf("enqueuing delivery of update %d: trigger and event are required", d.UpdateID)
		}
		next := d.NotBefore
		if next.IsZero() {
			next = now
		}
		var batch any
		if d.Batch != "" {
			batch = d.Batch
		}
		key := DeliveryKey(d.UpdateID, d.Trigger, d.Candidate, d.Event, d.Run)
		if d.Run == "" {
			// ONCE: one delivery per candidate of the container, whichever
			// update row carries it — a candidate found again after a
			// rollback (or after the container was changed by hand and back)
			// is not delivered twice.
			var ctr int64
			if err := tx.QueryRowContext(ctx, `SELECT container FROM updates WHERE id = ?`, d.UpdateID).Scan(&ctr); err != nil {
				return nil, fmt.Errorf("enqueuing delivery of update %d: %w", d.UpdateID, err)
			}
			key = onceKey(ctr, d.Trigger, d.Candidate, d.Event)
		}
		row := stmt.QueryRowContext(ctx, d.UpdateID, d.Trigger, d.Candidate, d.Event, d.Run, key, batch, d.EventDetail,
			next.UTC().UnixNano(), now.UnixNano(), now.UnixNano())
		del, err := scanDelivery(row, false)
		switch {
		case errors.Is(err, sql.ErrNoRows): // exists already
			continue
		case err != nil:
			return nil, fmt.Errorf("enqueuing delivery of update %d to %s: %w", d.UpdateID, d.Trigger, err)
		}
		out = append(out, del)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("enqueuing deliveries: %w", err)
	}
	return out, nil
}

// Due returns up to limit deliveries to fire, those of triggers only when
// any are given, oldest due first, each with its update: the pending ones
// whose next_attempt_at is not after now, and the running ones whose lease
// (MarkRunning) ended before now.
//
// A running delivery was claimed by a dispatcher and has no outcome yet.
// Once its lease is over it is taken as abandoned: cut short by a crash or a
// kill, it may have been fired or not, and is fired again with the same
// idempotency key, which is what makes that safe (at least once; exactly
// once for a trigger that honours the key). A dispatcher that starts calls
// Resume, so that it need not wait for the leases of the process before it
// to end. One store is served by one dispatcher at a time.
func (s *Store) Due(ctx context.Context, now time.Time, limit int, triggers ...string) ([]Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	q := `SELECT ` + deliveryJoinColumns + deliveryJoin + `
		WHERE d.status IN ('pending', 'running') AND d.next_attempt_at <= ?`
	args := []any{now.UTC().UnixNano()}
	q, args = inTriggers(q, args, triggers)
	q += ` ORDER BY d.next_attempt_at, d.id LIMIT ?`
	args = append(args, limit)
	out, err := s.queryDeliveries(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading due deliveries: %w", err)
	}
	return out, nil
}

// Resume makes every running delivery (of triggers only, when any are given)
// due at at, its lease ended, and returns how many there were. A
// dispatcher calls it when it starts: the running deliveries it finds were
// left by the process before it.
func (s *Store) Resume(ctx context.Context, at time.Time, triggers ...string) (int, error) {
	q := `UPDATE deliveries AS d SET next_attempt_at = ? WHERE d.status = 'running'`
	q, args := inTriggers(q, []any{at.UTC().UnixNano()}, triggers)
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("resuming running deliveries: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("resuming running deliveries: %w", err)
	}
	return int(n), nil
}

// Outstanding counts the deliveries not finished (pending or running), of
// triggers only when any are given, and returns the earliest time one of
// them is due (next_attempt_at, a lease's end for running ones; zero when none).
func (s *Store) Outstanding(ctx context.Context, triggers ...string) (n int, next time.Time, err error) {
	q := `SELECT COUNT(*), MIN(next_attempt_at)
		FROM deliveries d WHERE d.status IN ('pending', 'running')`
	q, args := inTriggers(q, nil, triggers)
	var nx sql.NullInt64
	if err := s.queryRow(ctx, q, args...).Scan(&n, &nx); err != nil {
		return 0, time.Time{}, fmt.Errorf("counting outstanding deliveries: %w", err)
	}
	return n, fromNanos(nx), nil
}

// MarkRunning claims deliveries for firing at at, in one transaction, with
// a lease until lease: a delivery still running then is taken as abandoned
// (see Due). Pending deliveries, and running ones (a resumed claim, a
// longer lease), are claimed; finished ones are left alone.
func (s *Store) MarkRunning(ctx context.Context, ids []int64, at, lease time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	q := `UPDATE deliveries SET status = 'running', next_attempt_at = ?, updated_at = ?
		WHERE status IN ('pending', 'running') AND id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
	args := make([]any, 0, len(ids)+2)
	args = append(args, lease.UTC().UnixNano(), at.UTC().UnixNano())
	for _, id := range ids {
		args = append(args, id)
	}
	if _, err := s.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("claiming %d deliveries: %w", len(ids), err)
	}
	return nil
}

// Release puts running deliveries that were claimed but not fired (a
// dispatcher stopping) back to pending, due at at, without counting an attempt.
func (s *Store) Release(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	q := `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?
		WHERE status = 'running' AND id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
	args := make([]any, 0, len(ids)+2)
	args = append(args, at.UTC().UnixNano(), at.UTC().UnixNano())
	for _, id := range ids {
		args = append(args, id)
	}
	if _, err := s.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("releasing %d deliveries: %w", len(ids), err)
	}
	return nil
}

// Outcome is the result of one attempt of a delivery.
type Outcome struct {
	// ID is the delivery.
	ID int64
	// Status is DeliveryDelivered, DeliveryFailed, or DeliveryPending for an
	// attempt to retry at Next.
	Status DeliveryStatus
	// Error is why the attempt failed; Detail the trigger's detail.
	Error, Detail string
	// Next is when to try again (DeliveryPending only).
	Next time.Time
	// At is when the attempt ended; now when zero.
	At time.Time
	// Event is an event the delivery caused (a rollout's outcome:
	// update-applied, update-failed, update-rolled-back): the update takes
	// the matching status, and the history gets an event of that kind.
	Event string
}

// eventStatus is the update status a rollout event leaves.
var eventStatus = map[string]core.UpdateStatus{
	"update-applied":     core.StatusApplied,
	"update-failed":      core.StatusFailed,
	"update-rolled-back": core.StatusRolledBack,
}

// Finish records the outcomes of attempts, in one transaction: each counts
// an attempt, sets the delivery's status, and writes a history event
// (EventDelivered, EventDeliveryRetry, EventDeliveryFailed) naming the
// trigger and the update. A delivered update-available delivery marks its
// update notified when it is pending (other statuses are left alone).
// Outcomes of deliveries already finished are ignored.
func (s *Store) Finish(ctx context.Context, outs []Outcome) error {
	_, err := s.finish(ctx, outs)
	return err
}

// finish is Finish, reporting which outcomes were recorded.
func (s *Store) finish(ctx context.Context, outs []Outcome) (done []bool, err error) {
	if len(outs) == 0 {
		return nil, nil
	}
	tx, unlock, err := s.beginWrite(ctx)
	if err != nil {
		return nil, fmt.Errorf("recording delivery outcomes: %w", err)
	}
	defer unlock()
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	upd, err := s.txStmt(ctx, tx, `
		UPDATE deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = COALESCE(?, next_attempt_at),
			last_error = ?, detail = ?, updated_at = ?
		WHERE id = ? AND status IN ('pending', 'running')
		RETURNING update_id, trigger, event, attempts`)
	if err != nil {
		return nil, fmt.Errorf("recording delivery outcomes: %w", err)
	}
	defer upd.Close()
	ev, err := s.txStmt(ctx, tx, `
		INSERT INTO events (at, host, container, image, kind, from_ref, to_ref, update_kind, update_id, detail, trigger)
		SELECT ?, c.host, c.name, u.image, ?, `+refSQL("u.current_tag", "u.current_digest")+`, `+
		refSQL("u.candidate_tag", "u.candidate_digest")+`, u.kind, u.id, ?, ?
		FROM updates u JOIN containers c ON c.id = u.container WHERE u.id = ?`)
	if err != nil {
		return nil, fmt.Errorf("recording delivery outcomes: %w", err)
	}
	defer ev.Close()
	var notify *sql.Stmt
	done = make([]bool, len(outs))
	for i, o := range outs {
		at := o.At
		if at.IsZero() {
			at = time.Now()
		}
		at = at.UTC()
		var next any
		kind := ""
		switch o.Status {
		case DeliveryDelivered:
			kind = EventDelivered
		case DeliveryFailed:
			kind = EventDeliveryFailed
		case DeliveryPending:
			kind = EventDeliveryRetry
			next = o.Next.UTC().UnixNano()
		default:
			return nil, fmt.Errorf("recording outcome of delivery %d: status %q is not an outcome", o.ID, o.Status)
		}
		var (
			updateID       int64
			trigger, event string
			attempts       int
		)
		err := upd.QueryRowContext(ctx, string(o.Status), next, o.Error, o.Detail, at.UnixNano(), o.ID).
			Scan(&updateID, &trigger, &event, &attempts)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue
		case err != nil:
			return nil, fmt.Errorf("recording outcome of delivery %d: %w", o.ID, err)
		}
		done[i] = true
		var detail string
		switch o.Status {
		case DeliveryDelivered:
			detail = event + " delivered"
			if o.Detail != "" {
				detail += ": " + o.Detail
			}
		case DeliveryPending:
			detail = fmt.Sprintf("attempt %d failed: %s; next attempt at %s", attempts, o.Error, o.Next.UTC().Format(time.RFC3339))
		case DeliveryFailed:
			detail = fmt.Sprintf("failed after %d attempt(s): %s", attempts, o.Error)
		}
		if _, err := ev.ExecContext(ctx, at.UnixNano(), kind, trigger+": "+detail, trigger, updateID); err != nil {
			return nil, fmt.Errorf("recording %s event of delivery %d: %w", kind, o.ID, err)
		}
		if st, ok := eventStatus[o.Event]; ok && o.Status != DeliveryPending {
			why := o.Detail
			if o.Error != "" {
				why = o.Error
			}
			if _, err := ev.ExecContext(ctx, at.UnixNano(), o.Event, trigger+": "+why, trigger, updateID); err != nil {
				return nil, fmt.Errorf("recording %s event of delivery %d: %w", o.Event, o.ID, err)
			}
			// The update, and the container's open update of the same
			// candidate, found again while the rollout ran.
			if _, err := tx.ExecContext(ctx, `UPDATE updates SET status = ?, status_at = ?
				WHERE id = ? OR (closed_at IS NULL AND (container, candidate_tag, candidate_digest) IN
					(SELECT container, candidate_tag, candidate_digest FROM updates WHERE id = ?))`,
				string(st), at.UnixNano(), updateID, updateID); err != nil {
				return nil, fmt.Errorf("marking update %d %s: %w", updateID, st, err)
			}
		}
		if o.Event == "" && o.Status != DeliveryPending {
			// A deploying trigger that ended without a rollout (refused, a dry
			// run, attempts spent, cut off) leaves the update where it was
			// before it was applied, not "applying" for good.
			if _, err := tx.ExecContext(ctx, `UPDATE updates SET status = ?, status_at = ? WHERE id = ? AND status = ?`,
				string(core.StatusPending), at.UnixNano(), updateID, string(core.StatusApplying)); err != nil {
				return nil, fmt.Errorf("releasing update %d: %w", updateID, err)
			}
		}
		if o.Status == DeliveryDelivered && event == EventUpdateAvailable && o.Event == "" {
			if notify == nil {
				if notify, err = s.txStmt(ctx, tx, `UPDATE updates SET status = ?, status_at = ? WHERE id = ? AND status = ?`); err != nil {
					return nil, fmt.Errorf("marking update %d notified: %w", updateID, err)
				}
				defer notify.Close()
			}
			if _, err := notify.ExecContext(ctx, string(core.StatusNotified), at.UnixNano(), updateID, string(core.StatusPending)); err != nil {
				return nil, fmt.Errorf("marking update %d notified: %w", updateID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("recording delivery outcomes: %w", err)
	}
	return done, nil
}

// markOne records one outcome, and says so when the delivery is not pending or running.
func (s *Store) markOne(ctx context.Context, o Outcome) error {
	done, err := s.finish(ctx, []Outcome{o})
	if err != nil {
		return err
	}
	if !done[0] {
		return fmt.Errorf("recording outcome of delivery %d: no pending or running delivery: %w", o.ID, core.ErrNotFound)
	}
	return nil
}

// MarkDelivered records that delivery id was delivered at at, with the trigger's detail.
func (s *Store) MarkDelivered(ctx context.Context, id int64, detail string, at time.Time) error {
	return s.markOne(ctx, Outcome{ID: id, Status: DeliveryDelivered, Detail: detail, At: at})
}

// MarkRetry records that an attempt of delivery id failed with err, to be tried again at next.
func (s *Store) MarkRetry(ctx context.Context, id int64, err error, next time.Time) error {
	return s.markOne(ctx, Outcome{ID: id, Status: DeliveryPending, Error: errText(err), Next: next})
}

// MarkFailed records that delivery id failed for good at at, with err as the reason.
func (s *Store) MarkFailed(ctx context.Context, id int64, err error, at time.Time) error {
	return s.markOne(ctx, Outcome{ID: id, Status: DeliveryFailed, Error: errText(err), At: at})
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// DeliveryFilter selects deliveries. Zero fields select everything.
type DeliveryFilter struct {
	// UpdateID keeps the deliveries of one update.
	UpdateID int64
	// Trigger keeps those of one trigger instance ("webhook.ops").
	Trigger string
	// Status keeps those with this status.
	Status DeliveryStatus
	// Limit caps the number returned (0: no cap).
	Limit int
}

// Deliveries returns the deliveries f selects, newest first, each with its update.
func (s *Store) Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	q := `SELECT ` + deliveryJoinColumns + deliveryJoin + ` WHERE 1 = 1`
	var args []any
	if f.UpdateID != 0 {
		q, args = q+` AND d.update_id = ?`, append(args, f.UpdateID)
	}
	if f.Trigger != "" {
		q, args = q+` AND d.trigger = ?`, append(args, f.Trigger)
	}
	if f.Status != "" {
		q, args = q+` AND d.status = ?`, append(args, string(f.Status))
	}
	q += ` ORDER BY d.id DESC`
	if f.Limit > 0 {
		q, args = q+` LIMIT ?`, append(args, f.Limit)
	}
	out, err := s.queryDeliveries(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}
	return out, nil
}

// OpenUpdates returns the open updates of host ("" for every host), with
// their containers' display names and labels, sorted by host and container.
func (s *Store) OpenUpdates(ctx context.Context, host string) ([]UpdateRecord, error) {
	q := `SELECT ` + updateColumns + ` FROM updates u JOIN containers c ON c.id = u.container WHERE u.closed_at IS NULL`
	var args []any
	if host != "" {
		q, args = q+` AND c.host = ?`, append(args, host)
	}
	q += ` ORDER BY c.host, c.name`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing open updates: %w", err)
	}
	defer rows.Close()
	var out []UpdateRecord
	for rows.Next() {
		var r UpdateRecord
		if err := scanUpdate(rows, &r); err != nil {
			return nil, fmt.Errorf("listing open updates: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing open updates: %w", err)
	}
	return out, nil
}

// Update returns update id (open or closed), with its container's display
// name and labels; an error wrapping core.ErrNotFound when there is none.
func (s *Store) Update(ctx context.Context, id int64) (UpdateRecord, error) {
	var r UpdateRecord
	row := s.db.QueryRowContext(ctx, `SELECT `+updateColumns+` FROM updates u JOIN containers c ON c.id = u.container WHERE u.id = ?`, id)
	switch err := scanUpdate(row, &r); {
	case errors.Is(err, sql.ErrNoRows):
		return UpdateRecord{}, fmt.Errorf("reading update %d: %w", id, core.ErrNotFound)
	case err != nil:
		return UpdateRecord{}, fmt.Errorf("reading update %d: %w", id, err)
	}
	return r, nil
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

// refSQL is ref in SQL, for an update's side (tag, digest): the tag, with
// its digest for digest updates.
func refSQL(tag, digest string) string {
	return `CASE WHEN u.kind = 'digest' AND ` + digest + ` <> '' THEN
		(CASE WHEN ` + tag + ` = '' THEN ` + digest + ` ELSE ` + tag + ` || '@' || ` + digest + ` END) ELSE ` + tag + ` END`
}

func inTriggers(q string, args []any, triggers []string) (string, []any) {
	if len(triggers) == 0 {
		return q, args
	}
	q += ` AND d.trigger IN (?` + strings.Repeat(", ?", len(triggers)-1) + `)`
	for _, t := range triggers {
		args = append(args, t)
	}
	return q, args
}

const (
	deliveryColumns = `id, update_id, trigger, candidate, event, run, key, batch, event_detail, status, attempts,
		next_attempt_at, last_error, detail, created_at, updated_at`
	updateColumns = `u.id, c.host, c.name, c.container_id, u.image, u.current_tag, u.current_digest,
		u.candidate_tag, u.candidate_digest, u.kind, u.link, u.status, u.first_seen, u.last_seen, c.display_name, c.labels`
	deliveryJoinColumns = `d.id, d.update_id, d.trigger, d.candidate, d.event, d.run, d.key, d.batch, d.event_detail,
		d.status, d.attempts, d.next_attempt_at, d.last_error, d.detail, d.created_at, d.updated_at, ` + updateColumns
	deliveryJoin = ` FROM deliveries d JOIN updates u ON u.id = d.update_id JOIN containers c ON c.id = u.container`
)

type scanner interface{ Scan(dest ...any) error }

// scanDelivery scans deliveryColumns, followed by updateColumns when withUpdate.
func scanDelivery(row scanner, withUpdate bool) (Delivery, error) {
	var (
		d                         Delivery
		batch                     sql.NullString
		status                    string
		next, created, updated    sql.NullInt64
		u                         = &d.Update
		kind, st, labels, display string
		first, last               sql.NullInt64
	)
	dest := []any{&d.ID, &d.UpdateID, &d.Trigger, &d.Candidate, &d.Event, &d.Run, &d.Key, &batch, &d.EventDetail,
		&status, &d.Attempts, &next, &d.LastError, &d.Detail, &created, &updated}
	if withUpdate {
		dest = append(dest, &u.ID, &u.Host, &u.ContainerName, &u.ContainerID, &u.Image, &u.Current, &u.CurrentDigest,
			&u.Candidate, &u.CandidateDigest, &kind, &u.Link, &st, &first, &last, &display, &labels)
	}
	if err := row.Scan(dest...); err != nil {
		return Delivery{}, err
	}
	d.Batch, d.Status = batch.String, DeliveryStatus(status)
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = fromNanos(next), fromNanos(created), fromNanos(updated)
	if withUpdate {
		if err := fillUpdate(u, kind, st, first, last, display, labels); err != nil {
			return Delivery{}, err
		}
	}
	return d, nil
}

func scanUpdate(row scanner, r *UpdateRecord) error {
	var (
		kind, st, labels, display string
		first, last               sql.NullInt64
	)
	if err := row.Scan(&r.ID, &r.Host, &r.ContainerName, &r.ContainerID, &r.Image, &r.Current, &r.CurrentDigest,
		&r.Candidate, &r.CandidateDigest, &kind, &r.Link, &st, &first, &last, &display, &labels); err != nil {
		return err
	}
	return fillUpdate(r, kind, st, first, last, display, labels)
}

func fillUpdate(r *UpdateRecord, kind, status string, first, last sql.NullInt64, display, labels string) error {
	r.Kind, r.Status = core.UpdateKind(kind), core.UpdateStatus(status)
	r.FirstSeen, r.LastSeen = fromNanos(first), fromNanos(last)
	r.DisplayName = display
	if labels != "" && labels != "{}" {
		if err := json.Unmarshal([]byte(labels), &r.Labels); err != nil {
			return fmt.Errorf("labels of %s: %w", r.ContainerName, err)
		}
	}
	return nil
}

func (s *Store) queryDeliveries(ctx context.Context, q string, args ...any) ([]Delivery, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows, true)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
