package compose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/composefile"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// This file holds the settling of a failed rollout: tidewatch fires an
// update whose Event is update-failed, with the key of the delivery whose
// rollout failed and left its record (its rollback failed too), to have
// that rollout finished without waiting for the project's next rollout.
// It goes through the path a resumed rollout takes (resume, then
// settleRollback), and never rolls anything out.

// settle finishes the failed rollout of delivery u.Key, and reports how it
// ended: rolled-back (the previous version runs again, checked), applied
// (only the clean-up was left), failed (the rollback failed again: the
// record stays), or refused when no record of that rollout is left. A
// project whose lock another rollout holds is not waited for: the result
// is to be retried (that rollout settles the record first anyway).
func (s *state) settle(ctx context.Context, log *slog.Logger, u sdk.Update) sdk.Result {
	r := &run{s: s, log: log, u: u, rep: &Report{Recreate: s.cfg.Recreate}}
	ctx, cancel := ctx, context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-rolloutMargin))
	}
	defer cancel()
	res := r.settle(ctx)
	log.Info("failed compose rollout settled", "outcome", r.rep.Outcome, "reason", r.rep.Reason, "project", r.rep.Project, "service", r.rep.Service)
	res.Rollout = r.rep.Rollout()
	return res
}

func (r *run) settle(ctx context.Context) sdk.Result {
	rep := r.rep
	if err := rep.step(StepInspect, func() (string, error) { return r.inspect(ctx, false) }); err != nil {
		if !sdk.IsPermanent(err) || r.u.Labels[composefile.LabelProject] == "" {
			return r.refused(ctx, err)
		}
		// The service has no container left (a rollback that failed half
		// way): the update's labels still say where its project is.
		r.cur = docker.State{ID: r.u.ContainerID, Name: r.u.ContainerName, Labels: r.u.Labels}
		rep.Project, rep.Service = r.u.Labels[composefile.LabelProject], r.u.Labels[composefile.LabelService]
	}
	err := rep.step(StepLock, func() (string, error) {
		var err error
		if r.journal, r.key, err = r.openJournal(); err != nil {
			return "", err
		}
		if r.lock, err = r.journal.TryLock(r.key); err != nil {
			return "", fmt.Errorf("another rollout of the project is under way (it settles what is left first): %w", err)
		}
		return "", nil
	})
	if err != nil {
		return r.refused(ctx, err)
	}
	defer r.lock.Unlock()

	// A rollout still prepared or applying has ended with its delivery:
	// nothing goes on from the health gate any more.
	rec, err := r.journal.Settling(r.key, r.u.Key, StepResume)
	if rec != nil {
		rep.From, rep.To = rec.From, rec.To
	}
	if err != nil {
		var res sdk.Result
		rep.Outcome, rep.Reason, res = rollout.SettlingResult(err)
		return res
	}
	res, settled, _ := r.resume(ctx, rec)
	if !settled { // (resume settles every record of the same delivery but one in place, which it cannot be here)
		rep.Outcome = OutcomeFailed
		return sdk.Result{Err: sdk.Permanent(errors.New("the rollout record was not settled"))}
	}
	return res
}
