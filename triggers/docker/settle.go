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
	// A rollout still prepared or applying has ended with its delivery:
	// what it left is rolled back.
	if _, err := r.journal.Settling(r.key, r.u.Key, StepResume); err != nil {
		var res sdk.Result
		rep.Outcome, rep.Reason, res = rollout.SettlingResult(err)
		return res
	}
	if res, done := r.resume(ctx); done {
		return res
	}
	rep.Outcome = sdk.OutcomeFailed
	return sdk.Result{Err: sdk.Permanent(errors.New("the rollout record was not settled"))}
}
