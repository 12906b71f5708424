package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// ArchiveSuffix is appended to a container's name while it is kept aside,
// stopped, until its replacement has passed its checks.
const ArchiveSuffix = "-tidewatch-old"

// Step names of a replacement, in the order it takes them.
const (
	StepRecreate  = "recreate"  // rename the container aside, create its replacement, stop it, start the new one
	StepHealth    = "health"    // wait for running and healthy (or stable)
	StepSmoke     = "smoke"     // the smoke checks
	StepFollowers = "followers" // recreate the containers that follow it on the new one
	StepRollback  = "rollback"  // put back what ran before, and check it runs
	StepCleanup   = "cleanup"   // remove what was kept aside
)

// Replace replaces a plain container (one `docker run` made) with one like
// it on another image: what `docker run` with the same options would give
// on that image (docker.Client.CreateReplacement says what is kept and what
// is left to the image). The old container is renamed aside and stopped,
// never removed before its replacement has passed the health gate and the
// smoke checks; the containers that follow it (docker.Follower) are then
// recreated to follow the new one. When a step fails, everything is put
// back: the old container under its name, started and checked healthy, its
// followers as they were.
type Replace struct {
	// Engine is the engine the container runs on.
	Engine *docker.Client
	// Log gets a line per change.
	Log *slog.Logger
	// Current is the container to replace.
	Current docker.State
	// Image is the new image's reference, already pulled; ImageID its ID.
	Image, ImageID string
	// Wait bounds the health gate of the new container, of a follower, and
	// of the old one after a rollback.
	Wait docker.WaitOptions
	// Smoke, when set, runs after the health gate (SmokeHTTP, SmokeTCP, …)
	// and says what it checked.
	Smoke func(ctx context.Context) (note string, err error)
	// LogLines is how many of the failed container's last log lines the
	// report of a rollback holds; 0 for none.
	LogLines int
	// Journal, when set, keeps the replacement's record under JournalKey,
	// written before each change (Key, the delivery's key, in it), so that
	// a replacement cut short is finished or undone from it (Settle); the
	// record is closed once the replacement ended, applied or rolled back,
	// and kept when its rollback failed.
	Journal    *Journal
	JournalKey string
	Key        string

	rec *Record // the record, once written

	archive   string      // the old container's name while aside
	archived  bool        // Current was renamed aside
	stopped   bool        // Current was stopped
	created   string      // the new container, once created
	started   bool        // the new container was started
	followers []*follower // the containers that follow Current
	failedID  string      // the container whose logs a rollback reports
}

// follower is a follower and what the replacement did to it.
type follower struct {
	docker.Follower
	archived bool   // renamed aside
	stopped  bool   // stopped (by the replacement)
	created  string // its new container
}

// Run replaces the container, writing each step into rep, and sets rep's
// Outcome (applied, rolled-back or failed), Container (what runs at the
// end) and, after a failure, Logs. It returns nil when the replacement was
// applied, else what failed (and, when the rollback failed too, why). ctx
// bounds the forward steps; after gives the context of the rollback or the
// cleanup, which must run even when ctx is done (see Split).
func (r *Replace) Run(ctx context.Context, after func() (context.Context, context.CancelFunc), rep *sdk.Rollout) error {
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	r.archive = r.Current.Name + ArchiveSuffix
	failed := rep.Step(StepRecreate, func() (string, error) { return r.recreate(ctx) })
	if failed != nil && !r.archived {
		actx, cancel := after()
		defer cancel()
		if st, err := r.Engine.InspectState(actx, r.Current.ID); r.rec == nil || (err == nil && st.Name == r.Current.Name) {
			// Nothing was changed: the container still runs as it did.
			r.closeRecord()
			rep.Outcome, rep.Container = sdk.OutcomeFailed, r.Current.ID
			return fmt.Errorf("%s failed; nothing was changed: %w", StepRecreate, failed)
		}
		r.archived = true // the rename may have been done though it failed: the rollback undoes it
	}
	if failed == nil && r.started {
		failed = rep.Step(StepHealth, func() (string, error) { return r.gate(ctx) })
		if failed == nil && r.Smoke != nil {
			failed = rep.Step(StepSmoke, func() (string, error) { return r.Smoke(ctx) })
		}
	}
	if failed == nil && len(r.followers) > 0 {
		failed = rep.Step(StepFollowers, func() (string, error) { return r.follow(ctx) })
	}
	actx, cancel := after()
	defer cancel()
	if failed != nil {
		return r.rollback(actx, rep)
	}
	rep.Outcome, rep.Container = sdk.OutcomeApplied, r.created
	if err := r.save(func(rec *Record) { rec.Phase = PhaseApplied }); err != nil {
		r.Log.Error("recording the rollout applied", "error", err)
	}
	Fault("cleanup:before")
	if rep.Step(StepCleanup, func() (string, error) { return r.cleanup(actx) }) == nil {
		r.closeRecord()
	}
	return nil
}

// save changes the record with fn (nil: none) and writes it; without a
// Journal it does nothing. The first save writes what the replacement
// will change: the container, the name it is kept aside under, whether it
// ran, and its followers.
func (r *Replace) save(fn func(*Record)) error {
	if r.Journal == nil {
		return nil
	}
	if r.rec == nil {
		cur := r.Current
		r.rec = &Record{Key: r.Key, Target: cur.Name, Method: "docker", From: cur.Image, To: r.Image,
			FromImage: cur.ImageID, ToImage: r.ImageID, Phase: PhasePrepared, Owner: Self()}
		r.rec.AddContainer(Container{Role: RolePrevious, ID: cur.ID, Name: cur.Name, Archive: r.archive, Image: cur.Image,
			ImageID: cur.ImageID, Running: cur.Running, StartedAt: cur.StartedAt})
		for _, f := range r.followers {
			r.rec.AddContainer(Container{Role: RoleFollower, ID: f.ID, Name: f.Name, Archive: f.Name + ArchiveSuffix, Running: f.Running})
		}
	}
	if fn != nil {
		fn(r.rec)
	}
	return r.Journal.Save(r.JournalKey, r.rec)
}

// closeRecord removes the record: the replacement is over.
func (r *Replace) closeRecord() {
	if r.Journal == nil || r.rec == nil {
		return
	}
	if err := r.Journal.Close(r.JournalKey); err != nil {
		r.Log.Error("closing the rollout record", "error", err)
	}
	r.rec = nil
}

// recreate renames the container aside, creates its replacement, stops the
// old one and starts the new one (when the old one ran). A failure before
// the rename changes nothing; after it, the rollback undoes what was done.
func (r *Replace) recreate(ctx context.Context) (string, error) {
	e, cur := r.Engine, r.Current
	if _, err := e.InspectState(ctx, r.archive); err == nil {
		return "", fmt.Errorf("a container named %s exists, kept aside by a rollout that did not finish: remove it (or rename it back) first", r.archive)
	} else if !errors.Is(err, core.ErrNotFound) {
		return "", err
	}
	fs, err := e.Followers(ctx, cur.ID)
	if err != nil {
		return "", err
	}
	for _, f := range fs {
		r.followers = append(r.followers, &follower{Follower: f})
		if _, err := e.InspectState(ctx, f.Name+ArchiveSuffix); err == nil {
			return "", fmt.Errorf("a container named %s exists, kept aside by a rollout that did not finish: remove it (or rename it back) first", f.Name+ArchiveSuffix)
		}
	}
	if err := r.save(func(rec *Record) { rec.Phase = PhaseApplying }); err != nil {
		return "", err
	}
	if err := e.Rename(ctx, cur.ID, r.archive); err != nil {
		return "", err
	}
	r.archived = true
	r.Log.Info("container kept aside", "container", cur.Name, "archive", r.archive)
	repl, err := e.CreateReplacement(ctx, cur.ID, r.Image, cur.Name)
	if err != nil {
		return "", err
	}
	r.created = repl.ID
	if err := r.save(func(rec *Record) {
		rec.AddContainer(Container{Role: RoleNew, ID: repl.ID, Name: cur.Name, Image: r.Image, ImageID: r.ImageID})
	}); err != nil {
		return "", err
	}
	var notes []string
	notes = append(notes, fmt.Sprintf("%s (%s) kept aside as %s; %s created from %s", cur.Name, short(cur.ID), r.archive, short(repl.ID), r.Image))
	if len(repl.LeftVolumes) > 0 {
		notes = append(notes, "not mounted any more, kept: "+strings.Join(repl.LeftVolumes, ", ")+" (the old image's VOLUMEs the new one dropped)")
	}
	if !cur.Running {
		notes = append(notes, "not started: the container did not run")
		return strings.Join(notes, "; "), nil
	}
	if err := r.save(func(rec *Record) { rec.markPrevious(func(c *Container) { c.StopRequested = true }) }); err != nil {
		return "", err
	}
	if err := e.Stop(ctx, cur.ID); err != nil {
		return "", err
	}
	r.stopped = true
	if err := e.Start(ctx, repl.ID); err != nil {
		r.failedID = repl.ID
		return "", err
	}
	r.started = true
	return strings.Join(notes, "; "), nil
}

// gate waits until the new container runs and is healthy (or stable) and
// runs the new image.
func (r *Replace) gate(ctx context.Context) (string, error) {
	Fault("health:before")
	defer Fault("health:after")
	st, err := r.Engine.WaitHealthy(ctx, r.created, r.Wait)
	if err != nil {
		r.failedID = r.created
		return "", err
	}
	if r.ImageID != "" && st.ImageID != r.ImageID {
		r.failedID = r.created
		return "", fmt.Errorf("container %s runs image %s, not %s (%s)", short(st.ID), short(st.ImageID), r.Image, short(r.ImageID))
	}
	if st.Healthcheck {
		return short(st.ID) + " healthy", nil
	}
	return fmt.Sprintf("%s running for %s (no healthcheck)", short(st.ID), r.stableFor()), nil
}

func (r *Replace) stableFor() string {
	if r.Wait.StableFor > 0 {
		return r.Wait.StableFor.String()
	}
	return "10s"
}

// follow recreates each follower on the new container: renamed aside,
// stopped, created again pointing at the new one, started and checked when
// it ran.
func (r *Replace) follow(ctx context.Context) (string, error) {
	e := r.Engine
	oldNames := []string{r.Current.ID, r.Current.Name, r.archive}
	var notes []string
	for _, f := range r.followers {
		if err := e.Rename(ctx, f.ID, f.Name+ArchiveSuffix); err != nil {
			return "", err
		}
		f.archived = true
		if f.Running {
			if err := e.Stop(ctx, f.ID); err != nil {
				return "", err
			}
			f.stopped = true
		}
		id, err := e.CreateFollower(ctx, f.ID, oldNames, r.created, r.Current.Name, f.Name)
		if err != nil {
			return "", err
		}
		f.created = id
		if err := r.save(func(rec *Record) { rec.AddContainer(Container{Role: RoleNew, ID: id, Name: f.Name}) }); err != nil {
			return "", err
		}
		note := fmt.Sprintf("%s recreated as %s: it %s", f.Name, short(id), f.Why())
		if f.Running {
			if err := e.Start(ctx, id); err != nil {
				r.failedID = id
				return "", fmt.Errorf("starting %s, which %s: %w", f.Name, f.Why(), err)
			}
			if _, err := e.WaitHealthy(ctx, id, r.Wait); err != nil {
				r.failedID = id
				return "", fmt.Errorf("%s, which %s: %w", f.Name, f.Why(), err)
			}
		} else {
			note += " (not started: it did not run)"
		}
		notes = append(notes, note)
	}
	return strings.Join(notes, "; "), nil
}

// rollback reports the failed container's last log lines, then puts back
// what ran before and checks that it runs again.
func (r *Replace) rollback(ctx context.Context, rep *sdk.Rollout) error {
	failedStep, reason := rep.FailedStep, rep.Reason
	if r.failedID == "" {
		r.failedID = r.created
	}
	if r.failedID != "" && r.LogLines > 0 {
		lines, err := r.Engine.Logs(ctx, r.failedID, r.LogLines)
		if err != nil {
			lines = []string{fmt.Sprintf("(reading the logs of %s: %v)", short(r.failedID), err)}
		}
		rep.Logs = lines
	}
	if err := r.save(func(rec *Record) {
		rec.Phase, rec.Failure = PhaseRollingBack, &Failure{Step: failedStep, Reason: reason, Logs: rep.Logs}
	}); err != nil {
		r.Log.Error("recording the rollback", "error", err)
	}
	err := rep.Step(StepRollback, func() (string, error) {
		Fault("rollback:before")
		note, err := r.putBack(ctx)
		if err == nil {
			Fault("rollback:after")
		}
		return note, err
	})
	rep.FailedStep, rep.Reason = failedStep, reason
	if err != nil {
		rep.Outcome = sdk.OutcomeFailed
		if r.rec != nil {
			err = fmt.Errorf("%w; the rollout record %s stays: tidewatch tries the rollback again", err, r.Journal.RecordPath(r.JournalKey))
		}
		return fmt.Errorf("%s failed (%s), and the rollback failed too: %w", failedStep, reason, err)
	}
	r.closeRecord()
	rep.Outcome, rep.Container = sdk.OutcomeRolledBack, r.Current.ID
	return fmt.Errorf("rolled back to %s: %s failed: %s", r.Current.Image, failedStep, reason)
}

// putBack removes what the replacement created, renames what it kept
// aside back, starts what ran, and checks that the old container runs and
// is healthy and that its followers run.
func (r *Replace) putBack(ctx context.Context) (string, error) {
	e, cur := r.Engine, r.Current
	var errs, notes []string
	fail := func(err error) { errs = append(errs, err.Error()) }
	for _, f := range r.followers {
		if f.created != "" {
			if err := e.Remove(ctx, f.created, true); err != nil {
				fail(err)
			}
		}
		if f.archived {
			if err := e.Rename(ctx, f.ID, f.Name); err != nil {
				fail(err)
			}
		}
	}
	if r.created != "" {
		if err := e.Remove(ctx, r.created, true); err != nil {
			fail(err)
		}
	}
	if r.archived {
		if err := e.Rename(ctx, cur.ID, cur.Name); err != nil {
			return "", errors.New(strings.Join(append(errs, err.Error()), "; "))
		}
	}
	// A digest update moved the tag: it names what runs again.
	if !strings.Contains(cur.Image, "@") {
		if id, err := e.ImageID(ctx, cur.Image); err == nil && id != cur.ImageID {
			if err := e.Tag(ctx, cur.ImageID, cur.Image); err != nil {
				fail(err)
			} else {
				notes = append(notes, fmt.Sprintf("%s points at %s again", cur.Image, short(cur.ImageID)))
			}
		}
	}
	if cur.Running {
		if r.stopped {
			if err := e.Start(ctx, cur.ID); err != nil {
				return "", errors.New(strings.Join(append(errs, err.Error()), "; "))
			}
		}
		if _, err := e.WaitHealthy(ctx, cur.ID, r.Wait); err != nil {
			fail(fmt.Errorf("the previous container does not come back: %w", err))
		}
	}
	// Followers in the old network namespace lost it when it stopped, and
	// linked ones hold its old address: they start (again) after it.
	for _, f := range r.followers {
		if !f.Running || !r.stopped {
			continue
		}
		if !f.stopped {
			if err := e.Stop(ctx, f.ID); err != nil {
				fail(err)
				continue
			}
		}
		if err := e.Start(ctx, f.ID); err != nil {
			fail(fmt.Errorf("starting %s again, which %s: %w", f.Name, f.Why(), err))
			continue
		}
		if st, err := e.InspectState(ctx, f.ID); err != nil || !st.Running {
			fail(fmt.Errorf("%s, which %s, does not run again (%v)", f.Name, f.Why(), err))
			continue
		}
		notes = append(notes, f.Name+" restarted")
	}
	if len(errs) > 0 {
		return "", errors.New(strings.Join(errs, "; "))
	}
	state := "runs again"
	if !cur.Running {
		state = "is back (not started: it did not run)"
	}
	return strings.Join(append([]string{fmt.Sprintf("%s (%s) %s", cur.Name, short(cur.ID), state)}, notes...), "; "), nil
}

// cleanup removes the containers kept aside (their volumes stay).
func (r *Replace) cleanup(ctx context.Context) (string, error) {
	var removed []string
	if r.archived {
		if err := r.Engine.Remove(ctx, r.Current.ID, true); err != nil {
			return "", err
		}
		removed = append(removed, r.archive)
	}
	for _, f := range r.followers {
		if f.archived {
			if err := r.Engine.Remove(ctx, f.ID, true); err != nil {
				return strings.Join(removed, ", "), err
			}
			removed = append(removed, f.Name+ArchiveSuffix)
		}
	}
	return "removed " + strings.Join(removed, ", "), nil
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
