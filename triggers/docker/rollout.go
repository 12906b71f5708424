package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
	engine "github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// Step names of a rollout besides rollout's (recreate, health, smoke,
// followers, rollback, cleanup).
const (
	StepInspect    = "inspect"     // find the container; refuse what is not the trigger's
	StepLock       = "lock"        // wait for the container's other rollout
	StepPull       = "pull"        // pull the new image
	StepPrune      = "prune"       // remove the previous image (PRUNE)
	StepSelfUpdate = "self-update" // start the helper that updates tidewatch's container, and wait for it
)

// Labels that mark containers another trigger (or nobody) must update.
const (
	labelComposeProject = "com.docker.compose.project"
	labelComposeService = "com.docker.compose.service"
	labelSwarmService   = "com.docker.swarm.service.name"
	labelSwarmTask      = "com.docker.swarm.task.id"
)

// ErrSelf is the reason an update of tidewatch's own container is refused
// when SELF_UPDATE is false.
var ErrSelf = errors.New("this is tidewatch's own container, and SELF_UPDATE is false: update it from outside " +
	"(pull the new image, then recreate the container), or set SELF_UPDATE=true to let tidewatch do it through a helper container")

// run is one update's rollout.
type run struct {
	s   *state
	log *slog.Logger
	u   sdk.Update
	rep *sdk.Rollout

	cur      engine.State // the container that ran before
	self     bool         // cur is tidewatch's own container
	newRef   string       // the new image reference
	newImage string       // its local image ID, after the pull
}

// rollout rolls u out and reports how it went.
func (s *state) rollout(ctx context.Context, log *slog.Logger, u sdk.Update) sdk.Result {
	r := &run{s: s, log: log, u: u, rep: &sdk.Rollout{Method: "docker", Target: u.ContainerName}}
	if u.Event != "" && u.Event != sdk.EventUpdateAvailable {
		r.rep.Outcome, r.rep.Reason = sdk.OutcomeRefused, fmt.Sprintf("%s is not a rollout event; the docker trigger rolls out update-available", u.Event)
		return sdk.Result{Err: sdk.Permanent(errors.New(r.rep.Reason)), Rollout: r.rep}
	}
	res := r.forward(ctx)
	log.Info("docker rollout finished", "outcome", r.rep.Outcome, "failed_step", r.rep.FailedStep, "reason", r.rep.Reason)
	res.Rollout = r.rep
	return res
}

// forward runs the steps.
func (r *run) forward(ctx context.Context) sdk.Result {
	s, rep := r.s, r.rep
	if err := rep.Step(StepInspect, func() (string, error) { return r.inspect(ctx) }); err != nil {
		return r.refused(ctx, err)
	}
	if r.self {
		return r.selfUpdate(ctx)
	}
	if s.cfg.DryRun {
		rep.Outcome, rep.Plan = sdk.OutcomeDryRun, r.plan()
		return sdk.OK("")
	}
	var release func()
	err := rep.Step(StepLock, func() (string, error) {
		began := time.Now()
		var err error
		if release, err = containerLocks.Acquire(ctx, s.cfg.Engine.Host+"|"+r.cur.Name); err != nil {
			return "", fmt.Errorf("waiting for the container's other rollout: %w", err)
		}
		if time.Since(began) < 50*time.Millisecond {
			return "", nil
		}
		// Another rollout ran meanwhile: the container may be another now.
		_, err = r.inspect(ctx)
		return fmt.Sprintf("waited %s for another rollout of the container", time.Since(began).Round(time.Millisecond)), err
	})
	if err != nil {
		return r.refused(ctx, err)
	}
	defer release()

	if res, done := r.pull(ctx); done {
		return res
	}
	fwd, cancel, after := rollout.Split(ctx, s.cfg.Checks.HealthTimeout+30*time.Second)
	defer cancel()
	replace := &rollout.Replace{
		Engine: s.engine, Log: r.log, Current: r.cur, Image: r.newRef, ImageID: r.newImage,
		Wait: s.cfg.Checks.Wait(), Smoke: s.cfg.Checks.Smoke(s.http), LogLines: s.cfg.Checks.LogLines,
	}
	err = replace.Run(fwd, after, rep)
	switch rep.Outcome {
	case sdk.OutcomeApplied:
		if s.cfg.Prune && r.cur.ImageID != r.newImage {
			actx, cancel := after()
			defer cancel()
			_ = rep.Step(StepPrune, func() (string, error) { return r.prune(actx) })
		}
		return sdk.Result{Event: sdk.EventUpdateApplied}
	case sdk.OutcomeRolledBack:
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("%w%s", err, logTail(rep.Logs))), Event: sdk.EventUpdateRolledBack}
	default:
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("%w%s", err, logTail(rep.Logs))), Event: sdk.EventUpdateFailed}
	}
}

// refused reports a failure before anything was changed: permanent when
// err says so (a refusal), else to be retried.
func (r *run) refused(ctx context.Context, err error) sdk.Result {
	if sdk.IsPermanent(err) {
		r.rep.Outcome = sdk.OutcomeRefused
		return sdk.Result{Err: err}
	}
	r.rep.Outcome = sdk.OutcomeFailed
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, ctx.Err())
	}
	return sdk.Retry(err)
}

// inspect finds the container the update is for (by ID, or, when that one
// is gone — a rollout fired again after it replaced it —, by name) and
// refuses what the trigger must not touch.
func (r *run) inspect(ctx context.Context) (string, error) {
	e := r.s.engine
	cur, err := e.InspectState(ctx, r.u.ContainerID)
	byName := r.u.ContainerName != "" && !strings.HasSuffix(r.u.ContainerName, rollout.ArchiveSuffix)
	if byName && (errors.Is(err, core.ErrNotFound) || (err == nil && cur.Name == r.u.ContainerName+rollout.ArchiveSuffix)) {
		// Replaced (the container is gone), or being replaced (it is kept
		// aside, its replacement under its name): the one under its name.
		if now, nerr := e.InspectState(ctx, r.u.ContainerName); nerr == nil || errors.Is(err, core.ErrNotFound) {
			cur, err = now, nerr
		}
	}
	if errors.Is(err, core.ErrNotFound) {
		return "", sdk.Permanent(fmt.Errorf("container %s (%s) is gone", r.u.ContainerName, short(r.u.ContainerID)))
	}
	if err != nil {
		return "", err
	}
	r.cur = cur
	r.rep.Target, r.rep.From = cur.Name, cur.Image
	if p := cur.Labels[labelComposeProject]; p != "" {
		return "", sdk.Permanent(fmt.Errorf("%s is service %s of compose project %s: the compose trigger updates it (rewriting its compose file, so that compose agrees); the docker trigger does not", cur.Name, cur.Labels[labelComposeService], p))
	}
	if svc := cur.Labels[labelSwarmService]; svc != "" || cur.Labels[labelSwarmTask] != "" {
		return "", sdk.Permanent(fmt.Errorf("%s is a task of Swarm service %s: Swarm replaces it; update the service, not its task", cur.Name, svc))
	}
	if strings.HasSuffix(cur.Name, rollout.ArchiveSuffix) || strings.HasSuffix(cur.Name, rollout.HelperSuffix) {
		return "", sdk.Permanent(fmt.Errorf("%s is a container tidewatch keeps aside during a rollout, or its self-update helper", cur.Name))
	}
	settings, err := e.Settings(ctx, cur.ID)
	if err != nil {
		return "", err
	}
	if settings.AutoRemove {
		return "", sdk.Permanent(fmt.Errorf("%s was started with --rm: the engine removes it when it stops, so it could not be kept for a rollback; run it without --rm (with a restart policy) to have it updated", cur.Name))
	}
	if r.newRef, err = newReference(cur.Image, r.u); err != nil {
		return "", sdk.Permanent(err)
	}
	r.rep.To = r.newRef
	if rollout.IsSelf(r.s.cfg.Self, cur.ID, cur.Name) {
		if !r.s.cfg.SelfUpdate {
			return "", sdk.Permanent(ErrSelf)
		}
		r.self = true
		r.rep.Method = "docker self-update"
		return fmt.Sprintf("%s (%s) runs %s: tidewatch's own container, updated through a helper", cur.Name, short(cur.ID), cur.Image), nil
	}
	return fmt.Sprintf("%s (%s) runs %s", cur.Name, short(cur.ID), cur.Image), nil
}

// pull pulls the new image with the update's credentials; done is set
// when the rollout ends there (a failed pull; the container already runs
// the image).
func (r *run) pull(ctx context.Context) (res sdk.Result, done bool) {
	rep := r.rep
	err := rep.Step(StepPull, func() (string, error) {
		var auth core.RegistryAuth
		if a := r.u.RegistryAuth; a != nil {
			auth = core.RegistryAuth{Server: a.Server, Username: a.Username, Password: core.Secret(a.Password),
				IdentityToken: core.Secret(a.IdentityToken), RegistryToken: core.Secret(a.RegistryToken)}
		}
		if err := r.s.engine.Pull(ctx, r.newRef, auth); err != nil {
			return "", err
		}
		id, err := r.s.engine.ImageID(ctx, r.newRef)
		if err != nil {
			return "", err
		}
		r.newImage = id
		return fmt.Sprintf("%s is %s", r.newRef, short(id)), nil
	})
	switch {
	case err != nil && ctx.Err() != nil:
		rep.Outcome = sdk.OutcomeFailed
		return sdk.Retry(fmt.Errorf("pulling %s: %w", r.newRef, err)), true // out of time: nothing changed, try again later
	case err != nil:
		rep.Outcome = sdk.OutcomeFailed
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("pulling %s failed; nothing was changed: %w", r.newRef, err)), Event: sdk.EventUpdateFailed}, true
	case r.newImage == r.cur.ImageID && (r.cur.Running || r.self):
		rep.Outcome, rep.Container = sdk.OutcomeAlreadyApplied, r.cur.ID
		return sdk.Result{Event: sdk.EventUpdateApplied}, true
	}
	return sdk.Result{}, false
}

// prune removes the previous image, by the reference the container was
// created with when that still names it, else by ID; an image another
// container uses stays.
func (r *run) prune(ctx context.Context) (string, error) {
	e, cur := r.s.engine, r.cur
	ref := cur.ImageID
	if id, err := e.ImageID(ctx, cur.Image); err == nil && id == cur.ImageID {
		ref = cur.Image
	}
	if err := e.ImageRemove(ctx, ref); err != nil {
		return "", err
	}
	return "removed image " + ref, nil
}

// plan says what a rollout would do, for dry runs.
func (r *run) plan() []string {
	cfg, cur := r.s.cfg, r.cur
	steps := []string{
		"pull " + r.newRef,
		fmt.Sprintf("rename %s to %s%s; create %s from %s with the same settings (what the old image gave it left to the new image); stop the old one; start the new one", cur.Name, cur.Name, rollout.ArchiveSuffix, cur.Name, r.newRef),
		fmt.Sprintf("wait until it runs and is healthy (without healthcheck: runs %s without restarting), within %s", cfg.Checks.StableFor, cfg.Checks.HealthTimeout),
	}
	for _, u := range cfg.Checks.SmokeHTTP {
		steps = append(steps, "smoke: GET "+u+" answers 2xx")
	}
	for _, a := range cfg.Checks.SmokeTCP {
		steps = append(steps, "smoke: "+a+" accepts TCP")
	}
	steps = append(steps,
		"recreate the containers that share its network namespace or link to it, pointing at the new one",
		fmt.Sprintf("on failure: remove the new container, bring back %s on %s, and report the last %d log lines", cur.Name, cur.Image, cfg.Checks.LogLines),
		"on success: remove "+cur.Name+rollout.ArchiveSuffix+" (its volumes stay)")
	if cfg.Prune {
		steps = append(steps, "on success: remove the image "+cur.Image)
	}
	return steps
}

// logTail appends the failed container's last log lines to a rollback's
// reason, so that the history and the notifications carry them.
func logTail(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return "\nlast log lines of the failed container:\n" + strings.Join(lines, "\n")
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
