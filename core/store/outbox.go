package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
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
	q += ` ORDER BY d.next_attempt_at, d.id LIMIT ` + strconv.Itoa(limitClass(limit))
	out, err := s.queryDeliveries(ctx, limit, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading due deliveries: %w", err)
	}
	return out, nil
}

// limitClass is limit rounded up to a power of two (at least 8), written
// into a query's text rather than bound: SQLite's planner reads a bound
// LIMIT's value, so a statement whose bound limit changed is compiled
// again on its next run, which cost the dispatcher's Due more than running
// it. A few texts, each prepared once, and the caller reads limit rows.
func limitClass(limit int) int {
	c := 8
	for c < limit {
		c *= 2
	}
	return c
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
	_, err := s.Claim(ctx, ids, at, lease)
	return err
}

// Claim is MarkRunning, and returns the IDs it claimed: those of ids that
// were pending or running (a delivery finished meanwhile is not claimed,
// and must not be fired).
func (s *Store) Claim(ctx context.Context, ids []int64, at, lease time.Time) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	claimed := make([]int64, 0, len(ids))
	err := s.writeRows(ctx, func(rows *sql.Rows) error {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		claimed = append(claimed, id)
		return nil
	}, `UPDATE deliveries SET status = 'running', next_attempt_at = ?, updated_at = ?
		WHERE status IN ('pending', 'running') AND id IN (SELECT value FROM json_each(?))
		RETURNING id`, lease.UTC().UnixNano(), at.UTC().UnixNano(), idList(ids))
	if err != nil {
		return nil, fmt.Errorf("claiming %d deliveries: %w", len(ids), err)
	}
	return claimed, nil
}

// idList is ids as a JSON array, for json_each: one statement for any
// number of IDs, where an IN list of placeholders is one per count.
func idList(ids []int64) string {
	b := make([]byte, 0, len(ids)*8+2)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// Release puts running deliveries that were claimed but not fired (a
// dispatcher stopping) back to pending, due at at, without counting an attempt.
func (s *Store) Release(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?
		WHERE status = 'running' AND id IN (SELECT value FROM json_each(?))`,
		at.UTC().UnixNano(), at.UTC().UnixNano(), idList(ids)); err != nil {
		return fmt.Errorf("releasing %d deliveries: %w", len(ids), err)
	}
	return nil
}
