package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
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
	StepResume     = "resume"      // settle a rollout of the container left unfinished (by a crash, a kill)
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
	aside    bool         // cur is kept aside by a rollout, nothing under its name: its record says what to do
	newRef   string       // the new image reference
	newImage string       // its local image ID, after the pull

	journal *rollout.Journal // where the container's rollout record and lock are
	key     string           // the container's key in it
	lock    *rollout.Lock    // held from the lock step on
}

// rollout rolls u out and reports how it went.
func (s *state) rollout(ctx context.Context, log *slog.Logger, u sdk.Update) sdk.Result {
	if u.Event == sdk.EventUpdateFailed {
		// Its rollout failed and left its record: finish it (settle.go).
		return s.settle(ctx, log, u)
	}
	r := &run{s: s, log: log, u: u, rep: &sdk.Rollout{Method: "docker", Target: u.ContainerName}}
	if u.Event != "" && u.Event != sdk.EventUpdateAvailable {
		r.rep.Outcome, r.rep.Reason = sdk.OutcomeRefused, fmt.Sprintf("%s is not a rollout event; the docker trigger rolls out update-available (and settles an update-failed rollout's record)", u.Event)
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
	rollout.Fault("locate:before")
	if err := rep.Step(StepInspect, func() (string, error) { return r.inspect(ctx) }); err != nil {
		return r.refused(ctx, err)
	}
	if r.self && !r.aside {
		return r.selfUpdate(ctx)
	}
	if s.cfg.DryRun {
		rep.Outcome, rep.Plan = sdk.OutcomeDryRun, r.plan()
		return sdk.OK("")
	}
	err := rep.Step(StepLock, func() (string, error) {
		began := time.Now()
		var err error
		if r.journal, err = s.journal(); err != nil {
			return "", err
		}
		r.key = s.cfg.Engine.Host + "|" + r.cur.Name
		if r.lock, err = r.journal.Lock(ctx, r.key); err != nil {
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
	defer r.lock.Unlock()
	if res, done := r.resume(ctx); done {
		return res
	}
	rollout.Fault("locate:after")

	if res, done := r.pull(ctx); done {
		return res
	}
	fwd, cancel, after := rollout.Split(ctx, s.cfg.Checks.HealthTimeout+30*time.Second)
	defer cancel()
	replace := &rollout.Replace{
		Engine: s.engine, Log: r.log, Current: r.cur, Image: r.newRef, ImageID: r.newImage,
		Wait: s.cfg.Checks.Wait(), Smoke: s.cfg.Checks.Smoke(s.http), LogLines: s.cfg.Checks.LogLines,
		Journal: r.journal, JournalKey: r.key, Key: r.u.Key,
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
	if byName && cur.Name == r.u.ContainerName+rollout.ArchiveSuffix && !r.s.cfg.DryRun {
		// Kept aside by a rollout cut short, nothing under its name: the
		// rollout's record (read under the lock) says what to do.
		r.aside = true
		r.cur.Name = r.u.ContainerName
		return fmt.Sprintf("%s (%s) is kept aside by a rollout left unfinished", cur.Name, short(cur.ID)), nil
	}
	r.aside = false
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

// resume settles the container's rollout that a crash or a kill left
// unfinished, from its record, before this rollout acts; done is set when
// this delivery ends there. When the record is this delivery's (the same
// key, fired again): one rolled back already decided is finished and
// reported; one applied has its clean-up finished and is reported applied;
// otherwise it is undone, and done again from the start. Another
// delivery's is undone (or, applied, cleaned up) and this one goes on. An
// undo that fails keeps the record, and this delivery fails, loudly.
func (r *run) resume(ctx context.Context) (sdk.Result, bool) {
	rep, e := r.rep, r.s.engine
	rec, err := r.journal.Load(r.key)
	if err != nil {
		rep.Outcome = sdk.OutcomeFailed
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("an earlier rollout of the container left a record that cannot be read: %w", err)), Event: sdk.EventUpdateFailed}, true
	}
	if rec == nil {
		if r.aside {
			return r.refused(ctx, sdk.Permanent(fmt.Errorf("container %s%s was kept aside by a rollout that did not finish, and no rollout record says whose it is: "+
				"remove it, or rename it back to %s, first", r.cur.Name, rollout.ArchiveSuffix, r.cur.Name))), true
		}
		return sdk.Result{}, false
	}
	// The settling runs to the end even when ctx is done (as a rollback does).
	actx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		actx, cancel = context.WithDeadline(actx, dl.Add(-rollout.Margin))
	}
	defer cancel()
	same := rec.Key == r.u.Key
	whose := "this delivery's"
	if !same {
		whose = "delivery " + rec.Key + "'s"
	}
	left := fmt.Sprintf("%s rollout of %s to %s was left %s by process %d", whose, rec.Target, rec.To, rec.Phase, rec.Owner.PID)
	r.log.Warn("settling a rollout left unfinished", "delivery", rec.Key, "phase", rec.Phase, "target", rec.Target, "to", rec.To)
	wait := r.s.cfg.Checks.Wait()
	switch {
	case rec.Phase == rollout.PhaseApplied:
		if err := rep.Step(StepResume, func() (string, error) {
			note, err := rollout.Cleanup(actx, e, rec)
			return left + "; " + note, err
		}); err != nil {
			rep.Outcome = sdk.OutcomeFailed
			return sdk.Retry(err), true
		}
		r.closeRecord()
		if same {
			rep.Outcome, rep.From, rep.To = sdk.OutcomeApplied, rec.From, rec.To
			if st, err := e.InspectState(actx, r.cur.Name); err == nil {
				rep.Container = st.ID
			}
			return sdk.Result{Event: sdk.EventUpdateApplied}, true
		}
	case same && rec.Phase == rollout.PhaseRollingBack:
		if rec.Failure == nil {
			rec.Failure = &rollout.Failure{Step: StepResume, Reason: "the rollout was interrupted"}
		}
		rep.From, rep.To, rep.Logs = rec.From, rec.To, rec.Failure.Logs
		_ = rep.Step(StepResume, func() (string, error) { return left + "; its rollback is finished now", nil })
		err := rep.Step(rollout.StepRollback, func() (string, error) {
			rollout.Fault("rollback:before")
			note, err := rollout.Undo(actx, e, rec, wait)
			if err == nil {
				rollout.Fault("rollback:after")
			}
			return note, err
		})
		rep.FailedStep, rep.Reason = rec.Failure.Step, rec.Failure.Reason
		if err != nil {
			rep.Outcome = sdk.OutcomeFailed
			return sdk.Result{Err: sdk.Permanent(fmt.Errorf("%s failed (%s), and the rollback failed too: %w; the rollout record %s stays: tidewatch tries the rollback again%s",
				rec.Failure.Step, rec.Failure.Reason, err, r.journal.RecordPath(r.key), logTail(rep.Logs))), Event: sdk.EventUpdateFailed}, true
		}
		r.closeRecord()
		prev, _ := rec.Previous()
		rep.Outcome, rep.Container = sdk.OutcomeRolledBack, prev.ID
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("rolled back to %s: %s failed: %s%s", prev.Image, rec.Failure.Step, rec.Failure.Reason, logTail(rep.Logs))),
			Event: sdk.EventUpdateRolledBack}, true
	default:
		if err := rep.Step(StepResume, func() (string, error) {
			rollout.Fault("rollback:before")
			note, err := rollout.Undo(actx, e, rec, wait)
			if err != nil {
				return "", fmt.Errorf("%s; rolling it back failed: %w; the record %s stays until it is rolled back (tidewatch tries again)", left, err, r.journal.RecordPath(r.key))
			}
			rollout.Fault("rollback:after")
			return left + "; rolled back: " + note, nil
		}); err != nil {
			rep.Outcome = sdk.OutcomeFailed
			return sdk.Result{Err: sdk.Permanent(err), Event: sdk.EventUpdateFailed}, true
		}
		r.closeRecord()
	}
	// What runs under the container's name now is what this rollout replaces.
	if _, err := r.inspect(ctx); err != nil {
		return r.refused(ctx, err), true
	}
	if r.aside {
		return r.refused(ctx, sdk.Permanent(fmt.Errorf("container %s is still kept aside after its rollout was settled", r.cur.Name+rollout.ArchiveSuffix))), true
	}
	return sdk.Result{}, false
}

// closeRecord removes the container's rollout record: what it describes is settled.
func (r *run) closeRecord() {
	if err := r.journal.Close(r.key); err != nil {
		r.log.Error("closing the rollout record", "error", err)
	}
}

// journal returns the journal of the trigger's rollout records and locks:
// STATE_DIR, or DefaultStateDir, made here (0700) when it does not exist;
// a default folder that another user owns or may write to is refused.
func (s *state) journal() (*rollout.Journal, error) {
	dir := s.cfg.StateDir
	if dir == "" {
		dir = DefaultStateDir()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("making the rollout records' folder %s: %w", dir, err)
		}
		st, err := os.Lstat(dir)
		if err != nil {
			return nil, fmt.Errorf("opening the rollout records' folder %s: %w", dir, err)
		}
		if !st.IsDir() || st.Mode().Perm()&0o022 != 0 || !ownedBySelf(st) {
			return nil, sdk.Permanent(fmt.Errorf("the rollout records' folder %s is not a folder of tidewatch's own that only it may write to; remove it, or set %s", dir, OptStateDir))
		}
	}
	return rollout.NewJournal(dir)
}

// ownedBySelf reports whether this process's user owns the file st
// describes.
func ownedBySelf(st os.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return !ok || int(sys.Uid) == os.Geteuid()
}
