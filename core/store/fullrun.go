package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// RecordFullRun records the checks of a full watch run on host, as
// RecordRun does, and marks as gone the host's containers that are not
// among them, as MarkGone does, in one transaction: a run is in the store
// whole or not at all, and pays one commit.
func (s *Store) RecordFullRun(ctx context.Context, host string, checks []core.Check, at time.Time) (found []core.Update, err error) {
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
	keep := make(map[string]bool, len(checks))
	ptx := newPreparedTx(s, tx)
	for _, c := range checks {
		keep[c.Container.ID] = true
		u, err := recordCheck(ctx, ptx, host, c, at)
		if err != nil {
			return nil, fmt.Errorf("recording run on %s: container %s: %w", host, c.Container.Name, err)
		}
		if u != nil {
			found = append(found, *u)
		}
	}
	if err := markGone(ctx, ptx, host, keep, at); err != nil {
		return nil, fmt.Errorf("recording run on %s: %w", host, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("recording run on %s: %w", host, err)
	}
	return found, nil
}
