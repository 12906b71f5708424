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
	// Candidate identifies the candidate: the update's CandidateRef.
	Candidate string
	// Event is what is delivered: core.EventUpdateAvailable, or a rollout's outcome.
	Event core.Event
	// Run is "" for one delivery per candidate (ONCE on: a second Enqueue of
	// the same update, trigger, candidate and event is ignored), or what
	// makes this delivery distinct (a run ID, a request ID).
	Run string
	// Batch groups deliveries fired together in one call; "" for none.
	Batch string
	// EventDetail says what happened, for rollout events.
	EventDetail string
	// Principal is who asked for it (a user or token of the API, "mqtt"); ""
	// for what tidewatch does by itself.
	Principal string
	// MarkApplying sets the update's status to applying when the delivery
	// is created (a deploying trigger's), in the same transaction.
	MarkApplying bool
	// NotBefore is the first attempt's time; now when zero.
	NotBefore time.Time
	// Lease, when set, writes the delivery claimed (running, as Claim
	// would) until then, in the enqueue's transaction: for a dispatcher
	// that fires it at once, one commit fewer. NotBefore is then ignored.
	Lease time.Time
}

// Delivery is a delivery in the outbox, with the update it delivers as it is now.
type Delivery struct {
	// ID is the store's identifier.
	ID int64 `json:"id"`
	// UpdateID, Trigger, Candidate, Event, Run, Batch and Principal are as enqueued.
	UpdateID  int64      `json:"update_id"`
	Trigger   string     `json:"trigger"`
	Candidate string     `json:"candidate"`
	Event     core.Event `json:"event"`
	Run       string     `json:"run,omitempty"`
	Batch     string     `json:"batch,omitempty"`
	Principal string     `json:"principal,omitempty"`
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
	// LastError is the last attempt's error; Detail the trigger's detail.
	LastError string `json:"last_error,omitempty"`
	Detail    string `json:"detail,omitempty"`
	// Rollout is the report of a deploying trigger's last attempt; nil for
	// a notification.
	Rollout *core.Rollout `json:"rollout,omitempty"`
	// Declared is the deploy of a git source's declared files it fires
	// (EnqueueDeclared); nil for an update found by the watcher.
	Declared *core.Declared `json:"declared,omitempty"`
	// CreatedAt and UpdatedAt bound the delivery's life.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Update is the update delivered, with its container's display name and
	// labels; filled by Due and Deliveries, not by Enqueue.
	Update core.Update `json:"update"`
}

// Finished reports whether the delivery has its final outcome.
func (d Delivery) Finished() bool { return d.Status == DeliveryDelivered || d.Status == DeliveryFailed }

// DeliveryKey is the idempotency key of the delivery of event for update's
// candidate by trigger, in run ("" for once per candidate): 32 hex digits of
// a SHA-256, safe in any header. The same arguments give the same key.
func DeliveryKey(updateID int64, trigger, candidate string, event core.Event, run string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00%s\x00%s\x00%s", updateID, trigger, candidate, event, run)
	return "tw-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// onceKey is the idempotency key of a delivery with ONCE on: per container
// (its store row), trigger, candidate and event.
func onceKey(containerRow int64, trigger, candidate string, event core.Event) string {
	h := sha256.New()
	fmt.Fprintf(h, "container %d\x00%s\x00%s\x00%s", containerRow, trigger, candidate, event)
	return "tw-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Enqueue writes deliveries to the outbox, in one transaction, as pending
// (or claimed, with a Lease), and returns those it created (without their
// Update). A delivery whose key exists already — with ONCE on, one of the
// same update, trigger, candidate and event — is left as it is and not
// returned. Write deliveries before
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
		INSERT INTO deliveries (update_id, trigger, candidate, event, run, key, batch, event_detail, principal,
			status, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING
		RETURNING `+deliveryColumns)
	if err != nil {
		return nil, fmt.Errorf("enqueuing deliveries: %w", err)
	}
	defer stmt.Close()
	var container *sql.Stmt // the ONCE key's container, prepared on first use
	defer func() {
		if container != nil {
			container.Close()
		}
	}()
	for _, d := range ds {
		if d.Trigger == "" || d.Event == "" {
			return nil, fmt.Errorf("enqueuing delivery of update %d: trigger and event are required", d.UpdateID)
		}
		next, status := d.NotBefore, DeliveryPending
		if next.IsZero() {
			next = now
		}
		if !d.Lease.IsZero() {
			next, status = d.Lease, DeliveryRunning
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
			if container == nil {
				if container, err = s.txStmt(ctx, tx, `SELECT container FROM updates WHERE id = ?`); err != nil {
					return nil, fmt.Errorf("enqueuing delivery of update %d: %w", d.UpdateID, err)
				}
			}
			var ctr int64
			if err := container.QueryRowContext(ctx, d.UpdateID).Scan(&ctr); err != nil {
				return nil, fmt.Errorf("enqueuing delivery of update %d: %w", d.UpdateID, err)
			}
			key = onceKey(ctr, d.Trigger, d.Candidate, d.Event)
		}
		row := stmt.QueryRowContext(ctx, d.UpdateID, d.Trigger, d.Candidate, string(d.Event), d.Run, key, batch, d.EventDetail,
			d.Principal, string(status), next.UTC().UnixNano(), now.UnixNano(), now.UnixNano())
		del, err := scanDelivery(row, false)
		switch {
		case errors.Is(err, sql.ErrNoRows): // exists already
			continue
		case err != nil:
			return nil, fmt.Errorf("enqueuing delivery of update %d to %s: %w", d.UpdateID, d.Trigger, err)
		}
		if d.MarkApplying {
			if _, err := tx.ExecContext(ctx, `UPDATE updates SET status = ?, status_at = ? WHERE id = ?`,
				string(core.StatusApplying), now.UnixNano(), d.UpdateID); err != nil {
				return nil, fmt.Errorf("marking update %d applying: %w", d.UpdateID, err)
			}
		}
		out = append(out, del)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("enqueuing deliveries: %w", err)
	}
	return out, nil
}

// DeliveryFilter selects deliveries. Zero fields select everything.
type DeliveryFilter struct {
	// ID keeps one delivery.
	ID int64
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
	if f.ID != 0 {
		q, args = q+` AND d.id = ?`, append(args, f.ID)
	}
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
	out, err := s.queryDeliveries(ctx, 0, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}
	return out, nil
}

// Delivery returns delivery id with its update; an error wrapping
// core.ErrNotFound when there is none.
func (s *Store) Delivery(ctx context.Context, id int64) (Delivery, error) {
	ds, err := s.Deliveries(ctx, DeliveryFilter{ID: id})
	if err != nil {
		return Delivery{}, err
	}
	if len(ds) == 0 {
		return Delivery{}, fmt.Errorf("reading delivery %d: %w", id, core.ErrNotFound)
	}
	return ds[0], nil
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
	deliveryColumns = `id, update_id, trigger, candidate, event, run, key, batch, event_detail, principal, status, attempts,
		next_attempt_at, last_error, detail, rollout, declared, created_at, updated_at`
	deliveryJoinColumns = `d.id, d.update_id, d.trigger, d.candidate, d.event, d.run, d.key, d.batch, d.event_detail, d.principal,
		d.status, d.attempts, d.next_attempt_at, d.last_error, d.detail, d.rollout, d.declared, d.created_at, d.updated_at, ` + updateColumns
	deliveryJoin = ` FROM deliveries d JOIN updates u ON u.id = d.update_id JOIN containers c ON c.id = u.container`
)

type scanner interface{ Scan(dest ...any) error }

// scanDelivery scans deliveryColumns, followed by updateColumns when withUpdate.
func scanDelivery(row scanner, withUpdate bool) (Delivery, error) {
	var (
		d                      Delivery
		batch                  sql.NullString
		event, status, rollout string
		declared               string
		next, created, updated sql.NullInt64
		u                      updateRow
	)
	dest := []any{&d.ID, &d.UpdateID, &d.Trigger, &d.Candidate, &event, &d.Run, &d.Key, &batch, &d.EventDetail, &d.Principal,
		&status, &d.Attempts, &next, &d.LastError, &d.Detail, &rollout, &declared, &created, &updated}
	if withUpdate {
		dest = append(dest, u.dest(&d.Update)...)
	}
	if err := row.Scan(dest...); err != nil {
		return Delivery{}, err
	}
	d.Event, d.Batch, d.Status = core.Event(event), batch.String, DeliveryStatus(status)
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = fromNanos(next), fromNanos(created), fromNanos(updated)
	if rollout != "" {
		d.Rollout = &core.Rollout{}
		if err := json.Unmarshal([]byte(rollout), d.Rollout); err != nil {
			return Delivery{}, fmt.Errorf("rollout report of delivery %d: %w", d.ID, err)
		}
	}
	if declared != "" {
		d.Declared = &core.Declared{}
		if err := json.Unmarshal([]byte(declared), d.Declared); err != nil {
			return Delivery{}, fmt.Errorf("declared deploy of delivery %d: %w", d.ID, err)
		}
	}
	if withUpdate {
		if err := u.fill(&d.Update); err != nil {
			return Delivery{}, err
		}
	}
	return d, nil
}

// queryDeliveries runs q, which selects deliveryJoinColumns, and returns
// its first max rows (every row when max is 0).
func (s *Store) queryDeliveries(ctx context.Context, max int, q string, args ...any) ([]Delivery, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Delivery
	for (max == 0 || len(out) < max) && rows.Next() {
		d, err := scanDelivery(rows, true)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
