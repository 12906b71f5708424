package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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
	ptx := newPreparedTx(s, tx)
	priors, err := readPriors(ctx, ptx, host)
	if err != nil {
		return nil, fmt.Errorf("recording run on %s: %w", host, err)
	}
	w := newRunWriter(ptx, host, at, priors)
	w.writeAll = s.writeAll
	if found, err = w.record(ctx, checks); err != nil {
		return nil, fmt.Errorf("recording run on %s: %w", host, err)
	}
	// Gone: the host's containers present before the run, not checked by
	// it, whose engine ID the run did not list.
	keep := make(map[string]bool, len(checks))
	for _, c := range checks {
		keep[c.Container.ID] = true
	}
	var goners []gone
	for name, p := range priors {
		if !p.gone && !w.done[name] && !keep[p.containerID] {
			goners = append(goners, gone{id: p.row, name: name, image: cmp.Or(p.repo, p.image)})
		}
	}
	slices.SortFunc(goners, func(a, b gone) int { return cmp.Compare(a.id, b.id) }) // in the order of the rows, as MarkGone
	if err := markGoneRows(ctx, ptx, host, goners, at); err != nil {
		return nil, fmt.Errorf("recording run on %s: %w", host, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("recording run on %s: %w", host, err)
	}
	return found, nil
}
