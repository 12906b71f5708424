package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

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
