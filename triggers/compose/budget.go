package compose

import (
	"context"
	"fmt"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// What a rollout of an update (rollout.go) and a deploy of declared files
// (declared.go) share.

// budget splits ctx's deadline between a rollout's forward steps and what
// must run after them. The forward context ends early enough to leave the
// rollback its time: HEALTH_TIMEOUT plus 30s, at most half of what is left
// of ctx. after gives the context of the rollback and the clean-up, which
// run even when ctx is done (until just before its deadline, or for the
// reserve). Call cancel when the forward steps are over.
func (s *state) budget(ctx context.Context) (fwd context.Context, cancel context.CancelFunc, after func() (context.Context, context.CancelFunc)) {
	fwd, cancel = context.WithCancel(ctx)
	reserve := s.cfg.HealthTimeout + 30*time.Second
	if dl, ok := ctx.Deadline(); ok {
		reserve = min(reserve, time.Until(dl)/2)
		cancel()
		fwd, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
	}
	after = func() (context.Context, context.CancelFunc) {
		if dl, ok := ctx.Deadline(); ok {
			return context.WithDeadline(context.WithoutCancel(ctx), dl.Add(-rolloutMargin))
		}
		return context.WithTimeout(context.WithoutCancel(ctx), reserve)
	}
	return fwd, cancel, after
}

// failedLogs returns the last LOG_LINES lines of the container that failed
// the rollout (the gate's verdict, else the first one created); nil when
// there is none or LOG_LINES is 0. An error reading them is one line.
func (r *run) failedLogs(ctx context.Context) []string {
	id := ""
	if r.failed != nil {
		id = r.failed.ID
	} else if len(r.created) > 0 {
		id = r.created[0]
	}
	if id == "" || r.s.cfg.LogLines <= 0 {
		return nil
	}
	lines, err := r.s.engine.Logs(ctx, id, r.s.cfg.LogLines)
	if err != nil {
		return []string{fmt.Sprintf("(reading the logs of %s: %v)", short(id), err)}
	}
	return lines
}

// pulled runs the pull step. When it fails nothing was changed yet, and it
// returns the result to report (to be retried when ctx ran out) and false.
func (r *run) pulled(ctx context.Context) (sdk.Result, bool) {
	err := r.rep.step(StepPull, func() (string, error) { return r.pull(ctx) })
	if err == nil {
		return sdk.Result{}, true
	}
	r.rep.Outcome = OutcomeFailed
	if ctx.Err() != nil {
		return sdk.Retry(fmt.Errorf("pulling %s: %w", r.newRef, err)), false // ran out of time: nothing changed, try again later
	}
	return sdk.Result{Err: sdk.Permanent(fmt.Errorf("pulling %s failed; nothing was changed: %w", r.newRef, err)), Event: sdk.EventUpdateFailed}, false
}

// checked runs the health gate and the smoke checks on what the recreate
// made, unless failed (the recreate's error) is set, and returns the first
// failure.
func (r *run) checked(ctx context.Context, failed error) error {
	if failed == nil {
		failed = r.rep.step(StepHealth, func() (string, error) { return r.gate(ctx) })
	}
	if failed == nil && len(r.s.cfg.SmokeHTTP)+len(r.s.cfg.SmokeTCP) > 0 {
		failed = r.rep.step(StepSmoke, func() (string, error) { return r.smoke(ctx) })
	}
	return failed
}
