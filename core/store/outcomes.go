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
	Event core.Event
	// Rollout is a deploying trigger's report of the attempt, kept with the
	// delivery; nil for a notification.
	Rollout *core.Rollout
	// Deploys says the delivery's trigger deploys: a final outcome without
	// a rollout's event (refused, a dry run, attempts spent, cut off) puts
	// an applying update back to pending. Another trigger's delivery of the
	// same update (a notification, Home Assistant's entity) never does: the
	// rollout is still running.
	Deploys bool
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

// finishing is one Finish transaction and its prepared statements.
type finishing struct {
	tx              *sql.Tx
	delivery, event *sql.Stmt
	setStatus       *sql.Stmt // prepared on first use
	s               *Store
}

// finished is what recording an outcome read back of its delivery.
type finished struct {
	updateID           int64
	trigger, principal string
	event              core.Event
	attempts           int
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
	f := &finishing{tx: tx, s: s}
	if f.delivery, err = s.txStmt(ctx, tx, `
		UPDATE deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = COALESCE(?, next_attempt_at),
			last_error = ?, detail = ?, rollout = COALESCE(?, rollout), updated_at = ?
		WHERE id = ? AND status IN ('pending', 'running')
		RETURNING update_id, trigger, event, attempts, principal`); err != nil {
		return nil, fmt.Errorf("recording delivery outcomes: %w", err)
	}
	defer f.delivery.Close()
	if f.event, err = s.txStmt(ctx, tx, `
		INSERT INTO events (at, host, container, image, kind, from_ref, to_ref, update_kind, update_id, detail, trigger, principal)
		SELECT ?, c.host, c.name, u.image, ?, `+refSQL("u.current_tag", "u.current_digest")+`, `+
		refSQL("u.candidate_tag", "u.candidate_digest")+`, u.kind, u.id, ?, ?, ?
		FROM updates u JOIN containers c ON c.id = u.container WHERE u.id = ?`); err != nil {
		return nil, fmt.Errorf("recording delivery outcomes: %w", err)
	}
	defer f.event.Close()
	defer func() {
		if f.setStatus != nil {
			f.setStatus.Close()
		}
	}()
	done = make([]bool, len(outs))
	for i, o := range outs {
		if done[i], err = f.record(ctx, o); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("recording delivery outcomes: %w", err)
	}
	return done, nil
}

// record writes one outcome: the delivery, its history event, and what it
// does to the update. It reports false when the delivery was finished already.
func (f *finishing) record(ctx context.Context, o Outcome) (bool, error) {
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
		return false, fmt.Errorf("recording outcome of delivery %d: status %q is not an outcome", o.ID, o.Status)
	}
	var rollout any
	if o.Rollout != nil {
		b, err := json.Marshal(o.Rollout)
		if err != nil {
			return false, fmt.Errorf("recording outcome of delivery %d: encoding its rollout: %w", o.ID, err)
		}
		rollout = string(b)
	}
	var (
		d     finished
		event string
	)
	err := f.delivery.QueryRowContext(ctx, string(o.Status), next, o.Error, o.Detail, rollout, at.UnixNano(), o.ID).
		Scan(&d.updateID, &d.trigger, &event, &d.attempts, &d.principal)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("recording outcome of delivery %d: %w", o.ID, err)
	}
	d.event = core.Event(event)
	if _, err := f.event.ExecContext(ctx, at.UnixNano(), kind, d.trigger+": "+attemptDetail(o, d), d.trigger, d.principal, d.updateID); err != nil {
		return false, fmt.Errorf("recording %s event of delivery %d: %w", kind, o.ID, err)
	}
	if o.Status == DeliveryPending {
		return true, nil
	}
	return true, f.settle(ctx, o, d, at)
}

// attemptDetail is the history's text for an attempt.
func attemptDetail(o Outcome, d finished) string {
	switch o.Status {
	case DeliveryDelivered:
		detail := string(d.event) + " delivered"
		if o.Detail != "" {
			detail += ": " + o.Detail
		}
		return detail
	case DeliveryPending:
		return fmt.Sprintf("attempt %d failed: %s; next attempt at %s", d.attempts, o.Error, o.Next.UTC().Format(time.RFC3339))
	default:
		return fmt.Sprintf("failed after %d attempt(s): %s", d.attempts, o.Error)
	}
}

// settle sets the update's status after a delivery's final outcome: a
// rollout's event gives it that event's status (and records the event); a
// deploying trigger (o.Deploys) that ended without a rollout puts an
// applying update back to pending; a delivered notification marks a pending
// update notified.
func (f *finishing) settle(ctx context.Context, o Outcome, d finished, at time.Time) error {
	if st := o.Event.Status(); st != "" {
		why := o.Detail
		if o.Error != "" {
			why = o.Error
		}
		if _, err := f.event.ExecContext(ctx, at.UnixNano(), string(o.Event), d.trigger+": "+why, d.trigger, d.principal, d.updateID); err != nil {
			return fmt.Errorf("recording %s event of delivery %d: %w", o.Event, o.ID, err)
		}
		// The update, and the container's open update of the same
		// candidate, found again while the rollout ran.
		if _, err := f.tx.ExecContext(ctx, `UPDATE updates SET status = ?, status_at = ?
			WHERE id = ? OR (closed_at IS NULL AND (container, candidate_tag, candidate_digest) IN
				(SELECT container, candidate_tag, candidate_digest FROM updates WHERE id = ?))`,
			string(st), at.UnixNano(), d.updateID, d.updateID); err != nil {
			return fmt.Errorf("marking update %d %s: %w", d.updateID, st, err)
		}
		return nil
	}
	if f.setStatus == nil {
		var err error
		if f.setStatus, err = f.s.txStmt(ctx, f.tx, `UPDATE updates SET status = ?, status_at = ? WHERE id = ? AND status = ?`); err != nil {
			return fmt.Errorf("settling update %d: %w", d.updateID, err)
		}
	}
	// A deploying trigger that ended without a rollout (refused, a dry
	// run, attempts spent, cut off) leaves the update where it was before
	// it was applied, not "applying" for good.
	if o.Deploys {
		if _, err := f.setStatus.ExecContext(ctx, string(core.StatusPending), at.UnixNano(), d.updateID, string(core.StatusApplying)); err != nil {
			return fmt.Errorf("releasing update %d: %w", d.updateID, err)
		}
	}
	if o.Status != DeliveryDelivered || d.event != core.EventUpdateAvailable {
		return nil
	}
	if _, err := f.setStatus.ExecContext(ctx, string(core.StatusNotified), at.UnixNano(), d.updateID, string(core.StatusPending)); err != nil {
		return fmt.Errorf("marking update %d notified: %w", d.updateID, err)
	}
	return nil
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
