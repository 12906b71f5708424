package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// selfUpdate updates tidewatch's own container through a helper container
// (see rollout.SelfUpdater). Fired the first time, it pulls the image,
// starts the helper and waits for it; the helper then stops this process's
// container, and the delivery is cut short. Fired again with the same key
// by the tidewatch that runs afterwards (the new one, or the old one back
// after a rollback), it reports the helper's outcome.
func (r *run) selfUpdate(ctx context.Context) sdk.Result {
	s, rep := r.s, r.rep
	su := rollout.SelfUpdater{Engine: s.engine, Options: s.cfg.Engine, Checks: s.cfg.Checks, Log: r.log}
	if o, found, err := su.Outcome(ctx, r.cur, r.u.Key); err != nil {
		return r.refused(ctx, fmt.Errorf("reading the outcome of a self-update: %w", err))
	} else if found {
		return r.reported(o)
	}
	if s.cfg.DryRun {
		rep.Outcome = sdk.OutcomeDryRun
		rep.Plan = []string{
			"pull " + r.newRef,
			fmt.Sprintf("start the helper container %s%s from tidewatch's current image, with tidewatch's volumes", r.cur.Name, rollout.HelperSuffix),
			fmt.Sprintf("the helper renames %s to %s%s, creates %s from %s with the same settings, stops the old one and starts the new one", r.cur.Name, r.cur.Name, rollout.ArchiveSuffix, r.cur.Name, r.newRef),
			fmt.Sprintf("the helper waits until it is healthy (tidewatch healthcheck), within %s, and rolls back when it is not", s.cfg.Checks.HealthTimeout),
			"the tidewatch that runs then finishes this delivery with the helper's outcome",
		}
		return sdk.OK("")
	}
	if res, done := r.pull(ctx); done {
		return res
	}
	err := rep.Step(StepSelfUpdate, func() (string, error) {
		if err := su.Start(ctx, r.cur, r.u.Key, r.newRef, r.newImage); err != nil {
			return "", err
		}
		return fmt.Sprintf("helper %s%s started: it replaces this container, and the tidewatch that runs afterwards finishes this delivery", r.cur.Name, rollout.HelperSuffix), nil
	})
	if err != nil {
		return r.refused(ctx, err)
	}
	// The helper stops this process's container before it ends: this
	// wait is normally cut short, and the delivery resumed.
	o, found, err := su.Outcome(ctx, r.cur, r.u.Key)
	switch {
	case err != nil:
		rep.Outcome = sdk.OutcomeFailed
		return sdk.Retry(fmt.Errorf("waiting for the self-update helper: %w", err))
	case !found:
		rep.Outcome = sdk.OutcomeFailed
		return sdk.Retry(errors.New("the self-update helper left no outcome yet"))
	}
	return r.reported(o)
}

// reported is the result of a self-update the helper finished: its
// rollout, after this process's own steps.
func (r *run) reported(o rollout.SelfUpdateOutcome) sdk.Result {
	own := r.rep.Steps
	*r.rep = o.Rollout
	r.rep.Steps = slices.Concat(own, o.Rollout.Steps)
	switch o.Rollout.Outcome {
	case sdk.OutcomeApplied:
		return sdk.Result{Event: sdk.EventUpdateApplied}
	case sdk.OutcomeRolledBack:
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("self-update: %s%s", o.Error, logTail(o.Rollout.Logs))), Event: sdk.EventUpdateRolledBack}
	default:
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("self-update: %s%s", o.Error, logTail(o.Rollout.Logs))), Event: sdk.EventUpdateFailed}
	}
}
