package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// settle finishes the failed rollout of delivery u.Key (fired with the
// event update-failed by tidewatch, whose rollout failed and whose
// rollback failed too, leaving its record): through the path a resumed
// rollout takes, without rolling anything out. It reports rolled-back,
// applied (only the clean-up was left), failed (the record stays), or
// refused when no record of that rollout is left; a container whose lock
// another rollout holds is not waited for (the result is to be retried).
func (s *state) settle(ctx context.Context, log *slog.Logger, u sdk.Update) sdk.Result {
	r := &run{s: s, log: log, u: u, rep: &sdk.Rollout{Method: "docker", Target: u.ContainerName}}
	res := r.settle(ctx)
	log.Info("failed docker rollout settled", "outcome", r.rep.Outcome, "reason", r.rep.Reason)
	res.Rollout = r.rep
	return res
}

func (r *run) settle(ctx context.Context) sdk.Result {
	rep := r.rep
	name := strings.TrimSuffix(r.u.ContainerName, rollout.ArchiveSuffix)
	if name == "" {
		rep.Outcome, rep.Reason = sdk.OutcomeRefused, "the update names no container"
		return sdk.Result{Err: sdk.Permanent(errors.New(rep.Reason))}
	}
	r.cur.Name = name
	err := rep.Step(StepLock, func() (string, error) {
		var err error
		if r.journal, err = r.s.journal(); err != nil {
			return "", err
		}
		r.key = r.s.cfg.Engine.Host + "|" + name
		if r.lock, err = r.journal.TryLock(r.key); err != nil {
			return "", fmt.Errorf("another rollout of the container is under way (it settles what is left first): %w", err)
		}
		return "", nil
	})
	if err != nil {
		return r.refused(ctx, err)
	}
	defer r.lock.Unlock()
	rec, err := r.journal.Load(r.key)
	switch {
	case err != nil:
		rep.Outcome = sdk.OutcomeFailed
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("the container's rollout record cannot be read: %w", err))}
	case rec == nil || rec.Key != r.u.Key:
		rep.Outcome, rep.Reason = sdk.OutcomeRefused, "no record of this delivery's rollout is left: nothing to settle"
		return sdk.Result{Err: sdk.Permanent(errors.New(rep.Reason))}
	}
	if rec.Phase == rollout.PhasePrepared || rec.Phase == rollout.PhaseApplying {
		// Its delivery has ended: what it left is rolled back.
		rec.Phase = rollout.PhaseRollingBack
		if rec.Failure == nil {
			rec.Failure = &rollout.Failure{Step: StepResume, Reason: "the rollout ended unfinished"}
		}
		if err := r.journal.Save(r.key, rec); err != nil {
			rep.Outcome = sdk.OutcomeFailed
			return sdk.Retry(err)
		}
	}
	if res, done := r.resume(ctx); done {
		return res
	}
	rep.Outcome = sdk.OutcomeFailed
	return sdk.Result{Err: sdk.Permanent(errors.New("the rollout record was not settled"))}
}
