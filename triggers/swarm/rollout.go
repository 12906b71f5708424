package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/composefile"
)

// Step names, in the order a rollout takes them.
const (
	StepInspect   = "inspect"    // find the service; refuse tidewatch's own
	StepLock      = "lock"       // wait for another rollout of the service
	StepResolve   = "resolve"    // the new tag's digest, asked of the registry through the manager
	StepStackPlan = "stack-plan" // find the stack file and plan its rewrite
	StepUpdate    = "update"     // the service's image, pinned, with registry credentials (and update config)
	StepRollout   = "rollout"    // the engine rolls the tasks: wait until it completes or rolls back
	StepRollback  = "rollback"   // ask the engine to roll back (a paused update, the deadline)
	StepStackFile = "stack-file" // rewrite the image in the stack file
)

// Method is the rollout report's method.
const Method = "swarm"

// ErrSelf is the reason an update of tidewatch's own service is refused.
var ErrSelf = errors.New("this is the service tidewatch runs in: its rolling update would stop tidewatch before it could see the outcome; " +
	"update it from outside: docker service update --image <new image> --with-registry-auth <service>")

// pollInterval is how often the service is read while the engine rolls it.
const pollInterval = 500 * time.Millisecond

// rolloutMargin is the time kept at the end of a Fire's deadline to return
// the result before tidewatch cuts the plugin off.
const rolloutMargin = 500 * time.Millisecond

// defaultWait bounds the wait for an update when Fire has no deadline.
const defaultWait = 10 * time.Minute

// run is one update's rollout.
type run struct {
	s   *state
	log *slog.Logger
	u   sdk.Update
	rep *sdk.Rollout

	svc     docker.ServiceState // the service before the update
	newRef  string              // the new image by tag, spelled as the spec spells its repository
	pinned  string              // newRef@digest
	auth    core.RegistryAuth
	stack   *stackPlan // the stack file's rewrite; nil when the service is in no stack
	details []string   // what the history must say besides the steps
	// why is the engine's message when it began to roll back ("update rolled
	// back due to failure or early termination of task …"), which its
	// final "rollback completed" replaces.
	why string
}

// rollout rolls u out and reports how it went.
func (s *state) rollout(ctx context.Context, log *slog.Logger, u sdk.Update) sdk.Result {
	r := &run{s: s, log: log, u: u, rep: &sdk.Rollout{Method: Method, Target: strings.TrimSuffix(u.ContainerName, docker.ServiceNameSuffix)}}
	if a := u.RegistryAuth; a != nil {
		r.auth = core.RegistryAuth{Server: a.Server, Username: a.Username, Password: core.Secret(a.Password),
			IdentityToken: core.Secret(a.IdentityToken), RegistryToken: core.Secret(a.RegistryToken)}
	}
	var res sdk.Result
	if u.Event != "" && u.Event != sdk.EventUpdateAvailable {
		r.rep.Outcome, r.rep.Reason = sdk.OutcomeRefused, fmt.Sprintf("%s is not a rollout event; the swarm trigger rolls out update-available", u.Event)
		res = sdk.Result{Err: sdk.Permanent(errors.New(r.rep.Reason))}
	} else {
		res = r.forward(ctx)
	}
	log.Info("swarm rollout finished", "outcome", r.rep.Outcome, "failed_step", r.rep.FailedStep, "reason", r.rep.Reason, "service", r.rep.Target)
	res.Rollout = r.rep
	if len(r.details) > 0 {
		res.Detail = reportText(r.rep) + "\n" + strings.Join(r.details, "\n")
	}
	return res
}

// forward runs the steps.
func (r *run) forward(ctx context.Context) sdk.Result {
	rep := r.rep
	if err := rep.Step(StepInspect, func() (string, error) { return r.inspect(ctx) }); err != nil {
		return r.refused(ctx, err)
	}
	var release func()
	err := rep.Step(StepLock, func() (string, error) {
		began := time.Now()
		var err error
		if release, err = serviceLocks.acquire(ctx, r.s.cfg.DockerHost+"|"+r.svc.ID); err != nil {
			return "", fmt.Errorf("waiting for the service's other rollout: %w", err)
		}
		if time.Since(began) < 50*time.Millisecond {
			return "", nil
		}
		// Another rollout ran meanwhile: read the service again.
		_, err = r.inspect(ctx)
		return fmt.Sprintf("waited %s for another rollout of the service", time.Since(began).Round(time.Millisecond)), err
	})
	if err != nil {
		return r.refused(ctx, err)
	}
	defer release()

	if err := rep.Step(StepResolve, func() (string, error) { return r.resolve(ctx) }); err != nil {
		return r.refused(ctx, err)
	}
	if r.svc.Labels[docker.LabelStack] != "" {
		_ = rep.Step(StepStackPlan, func() (string, error) { return r.planStack() })
		// A stack file that cannot be rewritten is not the rollout's
		// failure: the step keeps its error and the report says why
		// (keepStackTrue), while the outcome is the update's.
		if rep.FailedStep == StepStackPlan {
			rep.FailedStep, rep.Reason = "", ""
		}
	}
	if r.s.cfg.DryRun {
		rep.Outcome, rep.Plan = sdk.OutcomeDryRun, r.plan()
		if r.stack != nil && r.stack.change != nil {
			rep.Diff = r.stack.change.Diff
		}
		return sdk.OK("")
	}

	// The update's wait ends halfway to the deadline: the rest is for a rollback.
	updateBy := time.Now().Add(defaultWait)
	if dl, ok := ctx.Deadline(); ok {
		updateBy = time.Now().Add(time.Until(dl) / 2)
	}
	since := time.Time{} // an update already under way toward the new image is ours (a delivery fired again)
	switch {
	case r.svc.Image == r.pinned && r.svc.Update.State == docker.UpdatePaused:
		// An earlier delivery's update, paused and left so: settled as it would have been.
		rep.Steps = append(rep.Steps, sdk.RolloutStep{Name: StepUpdate, At: time.Now().UTC(), Note: "the service's update to " + r.pinned + " is paused"})
		after, cancel := r.after(ctx)
		defer cancel()
		rep.FailedStep, rep.Reason = StepRollout, "the engine paused the update: "+orNone(r.svc.Update.Message)
		return r.settle(ctx, after, r.svc, errors.New(rep.Reason))
	case r.svc.Image == r.pinned && r.svc.Update.State != docker.UpdateUpdating:
		rep.Outcome, rep.Container = sdk.OutcomeAlreadyApplied, r.svc.ID
		r.keepStackTrue()
		return sdk.Result{Event: sdk.EventUpdateApplied}
	case r.svc.Image == r.pinned:
		rep.Steps = append(rep.Steps, sdk.RolloutStep{Name: StepUpdate, At: time.Now().UTC(), Note: "the service is already being updated to " + r.pinned + ": waiting for it"})
	default:
		since = r.svc.UpdatedAt
		if err := rep.Step(StepUpdate, func() (string, error) { return r.update(ctx) }); err != nil {
			if errors.Is(err, docker.ErrServiceChanged) || ctx.Err() != nil {
				rep.Outcome = sdk.OutcomeFailed
				return sdk.Retry(fmt.Errorf("updating service %s; nothing was changed: %w", r.svc.Name, err))
			}
			rep.Outcome = sdk.OutcomeFailed
			return sdk.Result{Err: sdk.Permanent(fmt.Errorf("updating service %s failed; nothing was changed: %w", r.svc.Name, err)), Event: sdk.EventUpdateFailed}
		}
	}

	wctx, cancel := context.WithDeadline(ctx, updateBy)
	defer cancel()
	var end docker.ServiceState
	werr := rep.Step(StepRollout, func() (string, error) {
		var err error
		end, err = r.wait(wctx, since)
		if err != nil {
			return "", err
		}
		switch end.Update.State {
		case docker.UpdateCompleted, "":
			return r.describe(end, "completed"), nil
		case docker.UpdatePaused:
			return "", fmt.Errorf("the engine paused the update: %s", orNone(end.Update.Message))
		case docker.UpdateRollbackCompleted:
			msg := end.Update.Message
			if r.why != "" {
				msg = r.why
			}
			return "", fmt.Errorf("the engine rolled the update back: %s", orNone(msg))
		default:
			return "", fmt.Errorf("the update ended %s: %s", end.Update.State, orNone(end.Update.Message))
		}
	})
	after, cancelAfter := r.after(ctx)
	defer cancelAfter()
	if werr == nil {
		rep.Outcome, rep.Container = sdk.OutcomeApplied, r.svc.ID
		r.keepStackTrue()
		return sdk.Result{Event: sdk.EventUpdateApplied}
	}
	return r.settle(ctx, after, end, werr)
}

// settle ends a rollout whose update did not complete (werr says why; end
// is the service as last seen): rolled back by the engine, its rollback
// paused, the update paused, or still rolling when its time ran out.
func (r *run) settle(ctx, after context.Context, end docker.ServiceState, werr error) sdk.Result {
	rep := r.rep
	switch {
	case end.Update.State == docker.UpdateRollbackStarted && ctx.Err() == nil:
		// The engine rolls back by itself: let it finish.
		if st, err := r.wait(after, time.Time{}); err == nil {
			end = st
		}
	}
	switch {
	case end.Update.State == docker.UpdateRollbackCompleted:
		return r.rolledBack(after, end)
	case end.Update.State == docker.UpdateRollbackPaused || end.Update.State == docker.UpdateRollbackStarted:
		rep.Outcome = sdk.OutcomeFailed
		r.failedTasks(after)
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("the engine's rollback of %s did not complete (%s: %s): a person must look%s",
			r.svc.Name, end.Update.State, orNone(end.Update.Message), logTail(rep.Logs))), Event: sdk.EventUpdateFailed}
	case end.Update.State == docker.UpdatePaused && r.s.cfg.Paused == PausedLeave:
		rep.Outcome = sdk.OutcomeFailed
		r.failedTasks(after)
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("the update of %s to %s is paused (%s), and PAUSED=leave leaves it so: a person must look%s",
			r.svc.Name, r.pinned, orNone(end.Update.Message), logTail(rep.Logs))), Event: sdk.EventUpdateFailed}
	case ctx.Err() != nil:
		rep.Outcome = sdk.OutcomeFailed
		return sdk.Retry(fmt.Errorf("waiting for the update of %s: %w", r.svc.Name, werr))
	}
	// Paused, or still rolling when its time ran out: the engine rolls it back.
	return r.rollback(after, werr)
}

// after returns the context of what follows the update's wait (a rollback,
// the stack file): the rest of ctx's deadline, but for a margin.
func (r *run) after(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(context.WithoutCancel(ctx), dl.Add(-rolloutMargin))
	}
	return context.WithTimeout(context.WithoutCancel(ctx), defaultWait)
}

// refused reports a failure before anything was changed: permanent when
// err says so, else to be retried.
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

// inspect finds the service (by ID, else by name: a stack deployed again
// gives it a new ID) and refuses tidewatch's own.
func (r *run) inspect(ctx context.Context) (string, error) {
	e := r.s.engine
	name := strings.TrimSuffix(r.u.ContainerName, docker.ServiceNameSuffix)
	svc, err := e.InspectService(ctx, r.u.ContainerID)
	if errors.Is(err, core.ErrNotFound) && name != "" {
		svc, err = e.InspectService(ctx, name)
	}
	if errors.Is(err, core.ErrNotFound) {
		return "", sdk.Permanent(fmt.Errorf("%s (%s) is not a Swarm service on %s (the swarm trigger updates services only): %w", orNone(name), short(r.u.ContainerID), r.s.cfg.DockerHost, err))
	}
	if err != nil {
		return "", err
	}
	for _, self := range r.s.cfg.Self {
		own, err := e.ServiceOfContainer(ctx, self)
		if err != nil {
			return "", err
		}
		if own != "" && own == svc.ID {
			return "", sdk.Permanent(ErrSelf)
		}
	}
	if r.u.Image != "" {
		name, _ := docker.SplitPinned(svc.Image)
		ref, err := core.ParseImageRef(name)
		if err != nil {
			return "", sdk.Permanent(fmt.Errorf("service %s runs %q: %w", svc.Name, svc.Image, err))
		}
		if ref.Repo() != r.u.Image {
			return "", sdk.Permanent(fmt.Errorf("the update is for %s, and service %s runs %s", r.u.Image, svc.Name, ref.Repo()))
		}
	}
	r.svc = svc
	r.rep.Target, r.rep.From, r.rep.Container = svc.Name, svc.Image, svc.ID
	state := "never updated"
	if svc.Update.State != "" {
		state = "last update " + svc.Update.State
	}
	return fmt.Sprintf("%s (%s) runs %s; %s", svc.Name, short(svc.ID), svc.Image, state), nil
}

// resolve names the new image: the spec's repository, as it spells it, with
// the update's tag, pinned to the digest the update found (a digest update)
// or to the one the registry gives the tag now, asked through the manager
// with the update's credentials.
func (r *run) resolve(ctx context.Context) (string, error) {
	if !composefile.ValidTag(r.u.Candidate) {
		return "", sdk.Permanent(fmt.Errorf("the update's candidate %q is an invalid tag", r.u.Candidate))
	}
	name, _ := docker.SplitPinned(r.svc.Image)
	repo := name
	if i := strings.LastIndex(name, ":"); i >= 0 && !strings.Contains(name[i:], "/") {
		repo = name[:i]
	}
	r.newRef = repo + ":" + r.u.Candidate
	if _, err := core.ParseImageRef(r.newRef); err != nil {
		return "", sdk.Permanent(fmt.Errorf("the new image: %w", err))
	}
	digest := ""
	note := ""
	if r.u.Kind == string(core.KindDigest) && r.u.CandidateDigest != "" {
		digest, note = r.u.CandidateDigest, "the digest the update found"
	} else {
		d, err := r.s.engine.DistributionDigest(ctx, r.newRef, r.auth)
		if err != nil {
			return "", err // the registry may answer later: retried
		}
		digest, note = d, "the digest the registry gives "+r.u.Candidate+" now"
	}
	r.pinned = r.newRef + "@" + digest
	r.rep.To = r.pinned
	if r.svc.Update.State == docker.UpdateUpdating && r.svc.Image != r.pinned || r.svc.Update.State == docker.UpdateRollbackStarted {
		return "", fmt.Errorf("another update of service %s is under way (%s, to %s): trying again later", r.svc.Name, r.svc.Update.State, r.svc.Image)
	}
	return fmt.Sprintf("%s (%s)", r.pinned, note), nil
}

// update sets the service's image, with the credentials and, when the
// service has no update config, the trigger's.
func (r *run) update(ctx context.Context) (string, error) {
	ch := docker.ServiceChange{Image: r.pinned, Auth: r.auth}
	var notes []string
	if r.svc.UpdateConfig == nil {
		d := r.defaults()
		ch.UpdateConfig = &d
		notes = append(notes, fmt.Sprintf("the service has no update config: %s", describePolicy(d)))
		if d.Order != r.s.cfg.Defaults.Order {
			notes = append(notes, "stop-first, as it publishes ports in host mode")
		}
	} else {
		notes = append(notes, "its own update config: "+describePolicy(*r.svc.UpdateConfig))
	}
	if r.svc.RollbackConfig == nil {
		rb := r.defaults()
		rb.FailureAction = docker.FailurePause
		ch.RollbackConfig = &rb
	}
	if !r.auth.Anonymous() {
		notes = append(notes, "with the credentials for "+r.auth.Server+" for every node")
	}
	warnings, err := r.s.engine.UpdateService(ctx, r.svc.ID, r.svc.Version, ch)
	if err != nil {
		return "", err
	}
	for _, w := range warnings {
		notes = append(notes, "the engine warns: "+strings.Join(strings.Fields(w), " "))
	}
	return strings.Join(notes, "; "), nil
}

// defaults is the update config the trigger gives a service without one.
func (r *run) defaults() docker.UpdatePolicy {
	d := r.s.cfg.Defaults
	if d.Order == docker.OrderStartFirst && r.svc.HostPorts {
		d.Order = docker.OrderStopFirst
	}
	return d
}

func describePolicy(p docker.UpdatePolicy) string {
	s := fmt.Sprintf("parallelism %d, failure action %s, monitor %s, order %s", p.Parallelism, orNone(p.FailureAction), p.Monitor, orNone(p.Order))
	if p.Delay > 0 {
		s += fmt.Sprintf(", delay %s", p.Delay)
	}
	return s
}

// wait polls the service until the update it is in ends (completed,
// paused, rolled back) or ctx ends. The update must have started after
// since (on the manager's clock) to be the one awaited; an update that
// leaves no status (a service without tasks to roll) is over once every
// task meant to run is a running one of the new image.
func (r *run) wait(ctx context.Context, since time.Time) (docker.ServiceState, error) {
	e := r.s.engine
	for polls := 0; ; polls++ {
		st, err := e.InspectService(ctx, r.svc.ID)
		if err != nil {
			if ctx.Err() != nil {
				return st, fmt.Errorf("the update did not end in time: %w", ctx.Err())
			}
			return st, err
		}
		ours := st.Update.State != "" && st.Update.StartedAt.After(since)
		if ours && st.Update.State == docker.UpdateRollbackStarted && st.Update.Message != "" && r.why == "" {
			r.why = st.Update.Message
		}
		if ours {
			switch st.Update.State {
			case docker.UpdateCompleted, docker.UpdatePaused, docker.UpdateRollbackCompleted, docker.UpdateRollbackPaused:
				return st, nil
			}
		} else if polls > 0 && st.Image == r.pinned {
			if done, err := r.converged(ctx); err == nil && done {
				st.Update = docker.ServiceUpdateStatus{}
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("the update did not end in time (state %s: %s)", orNone(st.Update.State), orNone(st.Update.Message))
		case <-time.After(pollInterval):
		}
	}
}

// converged reports whether every task of the service meant to run is a
// running one of the new image.
func (r *run) converged(ctx context.Context) (bool, error) {
	tasks, err := r.s.engine.ServiceTasks(ctx, r.svc.ID)
	if err != nil {
		return false, err
	}
	n := 0
	for _, t := range tasks {
		if t.DesiredState != "running" {
			continue
		}
		if t.Image != r.pinned || t.State != "running" {
			return false, nil
		}
		n++
	}
	return r.svc.Mode != "replicated" || uint64(n) == r.svc.Replicas, nil
}

// describe says how the update ended and where the service runs.
func (r *run) describe(st docker.ServiceState, how string) string {
	if st.Update.Message != "" {
		how = st.Update.Message
	}
	tasks, err := r.s.engine.ServiceTasks(context.Background(), st.ID)
	if err != nil {
		return how
	}
	var on []string
	for _, t := range tasks {
		if t.DesiredState == "running" && t.State == "running" && t.Image == r.pinned {
			on = append(on, fmt.Sprintf("%s.%d on %s", st.Name, t.Slot, orNone(t.Node)))
		}
	}
	if len(on) == 0 {
		return how + "; no task runs (the service has no replica)"
	}
	return fmt.Sprintf("%s; %d running the new image: %s", how, len(on), strings.Join(on, ", "))
}

// rollback asks the engine to roll back the update that failed with why
// (paused, or not ended in time), and waits until it has.
func (r *run) rollback(ctx context.Context, why error) sdk.Result {
	rep := r.rep
	failedStep, reason := rep.FailedStep, rep.Reason
	var end docker.ServiceState
	err := rep.Step(StepRollback, func() (string, error) {
		st, err := r.s.engine.InspectService(ctx, r.svc.ID)
		if err != nil {
			return "", err
		}
		if _, err := r.s.engine.RollbackService(ctx, r.svc.ID); err != nil {
			return "", err
		}
		if end, err = r.wait(ctx, st.UpdatedAt); err != nil {
			return "", err
		}
		if end.Update.State != docker.UpdateRollbackCompleted {
			return "", fmt.Errorf("the rollback ended %s: %s", end.Update.State, orNone(end.Update.Message))
		}
		return "the engine rolled back to " + end.Image, nil
	})
	r.failedTasks(ctx)
	rep.FailedStep, rep.Reason = failedStep, reason
	if err != nil {
		rep.Outcome = sdk.OutcomeFailed
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("%s failed (%v), and the rollback failed too: %w%s", failedStep, why, err, logTail(rep.Logs))), Event: sdk.EventUpdateFailed}
	}
	rep.Outcome = sdk.OutcomeRolledBack
	return sdk.Result{Err: sdk.Permanent(fmt.Errorf("rolled back to %s: %s%s", end.Image, rep.Reason, logTail(rep.Logs))), Event: sdk.EventUpdateRolledBack}
}

// rolledBack reports an update the engine rolled back by itself (its
// failure action), with the failed tasks' reasons and last log lines.
func (r *run) rolledBack(ctx context.Context, end docker.ServiceState) sdk.Result {
	rep := r.rep
	r.failedTasks(ctx)
	rep.Outcome = sdk.OutcomeRolledBack
	if end.Image != r.svc.Image {
		r.details = append(r.details, fmt.Sprintf("after the rollback the service runs %s, not %s as before", end.Image, r.svc.Image))
	}
	return sdk.Result{Err: sdk.Permanent(fmt.Errorf("rolled back to %s: %s%s", end.Image, rep.Reason, logTail(rep.Logs))), Event: sdk.EventUpdateRolledBack}
}

// failedTasks adds to the report's reason why the tasks of the new image
// failed, and the last log lines of the newest one.
func (r *run) failedTasks(ctx context.Context) {
	tasks, err := r.s.engine.ServiceTasks(ctx, r.svc.ID)
	if err != nil {
		r.details = append(r.details, "(listing the tasks: "+err.Error()+")")
		return
	}
	var why []string
	logsOf := ""
	for _, t := range tasks {
		if t.Image != r.pinned {
			continue
		}
		// A task of the new image that ended by itself (failed, rejected, or
		// complete: within the monitor period an exit is a failure too);
		// those the orchestrator shut down (the rollback) are not the cause.
		switch {
		case t.State == "failed", t.State == "rejected", t.State == "complete", t.State == "orphaned", t.Err != "":
		default:
			continue
		}
		if logsOf == "" {
			logsOf = t.ID
		}
		if len(why) < 3 {
			w := fmt.Sprintf("task %s.%d on %s %s", r.svc.Name, t.Slot, orNone(t.Node), t.State)
			if t.Err != "" {
				w += ": " + t.Err
			} else if t.Message != "" {
				w += " (" + t.Message + ")"
			}
			if t.ExitCode != 0 && !strings.Contains(t.Err, "exit") {
				w += fmt.Sprintf(" with exit code %d", t.ExitCode)
			}
			// The container, when it is on this engine, says whether its
			// healthcheck failed and what the last probe answered.
			if t.ContainerID != "" {
				if st, err := r.s.engine.InspectState(ctx, t.ContainerID); err == nil && st.Health == docker.HealthUnhealthy {
					w += "; it was unhealthy, last probe: " + orNone(st.HealthLog)
				}
			}
			why = append(why, w)
		}
	}
	if len(why) > 0 {
		r.rep.Reason += "; " + strings.Join(why, "; ")
	}
	if logsOf != "" && r.s.cfg.LogLines > 0 {
		lines, err := r.s.engine.TaskLogs(ctx, logsOf, r.s.cfg.LogLines)
		if err != nil {
			lines = []string{fmt.Sprintf("(reading the logs of task %s: %v)", short(logsOf), err)}
		}
		r.rep.Logs = lines
	}
}

// plan says what a rollout would do, for dry runs.
func (r *run) plan() []string {
	steps := []string{fmt.Sprintf("update service %s from %s to %s, with the registry credentials for every node", r.svc.Name, r.svc.Image, r.pinned)}
	if r.svc.UpdateConfig == nil {
		steps = append(steps, "give it the update config "+describePolicy(r.defaults()))
	} else {
		steps = append(steps, "roll it with its own update config: "+describePolicy(*r.svc.UpdateConfig))
	}
	steps = append(steps, "wait until the engine completes the update or rolls it back, within half the delivery's deadline")
	if r.s.cfg.Paused == PausedRollback {
		steps = append(steps, "if the engine pauses the update or it outlasts its time: ask the engine to roll back")
	}
	if r.stack != nil {
		steps = append(steps, r.stack.planned())
	}
	return steps
}

// logTail appends the failed task's last log lines to a rollback's reason,
// so that the history and the notifications carry them.
func logTail(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return "\nlast log lines of the failed task:\n" + strings.Join(lines, "\n")
}

// rollingBack reports whether an update state is part of a rollback.
func rollingBack(state string) bool {
	return state == docker.UpdateRollbackStarted || state == docker.UpdateRollbackPaused || state == docker.UpdateRollbackCompleted
}

// reportText is the rollout as the history shows it (core.Rollout.Text).
func reportText(r *sdk.Rollout) string {
	cr := core.Rollout{Outcome: core.Outcome(r.Outcome), Method: r.Method, Target: r.Target, From: r.From, To: r.To, Container: r.Container,
		FailedStep: r.FailedStep, Reason: r.Reason, Logs: r.Logs}
	for _, s := range r.Steps {
		cr.Steps = append(cr.Steps, core.RolloutStep{Name: s.Name, At: s.At, Duration: s.Duration, Error: s.Error, Note: s.Note})
	}
	for _, f := range r.Files {
		cr.Files = append(cr.Files, core.FileChange{Path: f.Path, Backup: f.Backup})
	}
	return cr.Text()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
