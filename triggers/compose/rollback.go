package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/composefile"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// This file holds the rollback: undoing a rollout from its record, from
// whatever state a failure or a crash left it in, and checking that what
// ran before runs again.

// rollback collects the failed container's logs, records that the rollout
// is rolled back and why, and undoes it.
func (r *run) rollback(ctx context.Context) sdk.Result {
	rep := r.rep
	rep.Logs = r.failedLogs(ctx)
	r.mu.Lock()
	r.rec.Phase = rollout.PhaseRollingBack
	r.rec.Failure = &rollout.Failure{Step: rep.FailedStep, Reason: rep.Reason, Logs: rep.Logs}
	rec := r.rec
	r.mu.Unlock()
	if err := r.save(); err != nil {
		r.log.Error("recording the rollback", "error", err)
	}
	return r.settleRollback(ctx, rec)
}

// settleRollback undoes rec's rollout and reports it: rolled back only when
// what ran before runs again, healthy, checked; else failed, loudly, and the
// record stays (the project's next rollout tries the rollback again first).
func (r *run) settleRollback(ctx context.Context, rec *rollout.Record) sdk.Result {
	rep := r.rep
	failedStep, reason := rec.Failure.Step, rec.Failure.Reason
	err := rep.step(StepRollback, func() (string, error) { return r.undo(ctx, rec) })
	prev, _ := rec.Previous()
	if err != nil {
		rep.Outcome = OutcomeFailed
		rep.FailedStep, rep.Reason = failedStep, reason
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("%s failed (%s), and the rollback failed too: %w; %s is not running as it was: a person must look "+
			"(the rollout record %s stays: tidewatch tries the rollback again, every minute at first, then less often, and the project's next rollout does first)%s",
			failedStep, reason, err, prev.Name, r.journal.RecordPath(r.key), logTail(rep.Logs))), Event: sdk.EventUpdateFailed}
	}
	r.closeRecord()
	rep.Outcome = OutcomeRolledBack
	return sdk.Result{Err: sdk.Permanent(fmt.Errorf("rolled back to %s: %s failed: %s%s", prev.Image, failedStep, reason, logTail(rep.Logs))), Event: sdk.EventUpdateRolledBack}
}

// logTail appends the failed container's last log lines to a rollback's
// reason, so that the history and the notifications carry them.
func logTail(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return "\nlast log lines of the failed container:\n" + strings.Join(lines, "\n")
}

// undo puts back what rec's rollout changed, whatever step it got to: the
// files as they were, the containers it created removed, the previous one
// under its name, running and healthy (as it was); then it checks that.
func (r *run) undo(ctx context.Context, rec *rollout.Record) (string, error) {
	rollout.Fault("rollback:before")
	if r.target == nil {
		t, err := composefile.Locate(r.cur.Labels, r.s.cfg.Locate)
		if err != nil {
			return "", fmt.Errorf("locating the compose file of %s: %w", rec.Target, err)
		}
		r.target = t
	}
	notes, ferr := r.restoreFiles(rec)
	var note string
	var cerr error
	if rec.Method == "compose "+RecreateCLI {
		note, cerr = r.undoCLI(ctx, rec)
	} else {
		note, cerr = r.undoEngine(ctx, rec)
	}
	if note != "" {
		notes = append(notes, note)
	}
	if err := errors.Join(ferr, cerr); err != nil {
		return "", err
	}
	if err := r.verify(ctx, rec); err != nil {
		return "", fmt.Errorf("checking that the previous version runs again: %w", err)
	}
	rollout.Fault("rollback:after")
	return strings.Join(notes, "; "), nil
}

// backupOf is the backup the record names for f.
func (r *run) backupOf(f rollout.File) composefile.Backup {
	return composefile.Backup{File: f.Path, Path: f.Backup}
}

// restoreFiles puts each file the rollout rewrote back: from the backup the
// rollout wrote, when the file holds what the rollout wrote; when it was
// edited since (or the rollout did not write it: it named the new image
// already), by setting the previous image back in it, so that the edit
// stays. A file that holds its old bytes is left alone.
func (r *run) restoreFiles(rec *rollout.Record) ([]string, error) {
	prev, _ := rec.Previous()
	var notes []string
	var errs []error
	for _, f := range rec.Files {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", f.Path, err))
			continue
		}
		switch sum := rollout.SHA256(data); {
		case f.Old != "" && sum == f.Old:
			continue // never written, or put back already
		case f.Backup != "" && sum == f.New:
			if b, err := os.ReadFile(f.Backup); err != nil || rollout.SHA256(b) != f.Old {
				errs = append(errs, fmt.Errorf("the backup %s is not the copy the rollout made of %s (%v); the file is left as it is", f.Backup, f.Path, err))
				continue
			}
			if err := r.backupOf(f).RestoreOver(f.New); err != nil {
				errs = append(errs, err)
				continue
			}
			notes = append(notes, fmt.Sprintf("%s restored from %s", f.Path, f.Backup))
		default:
			note, err := r.setBack(prev.Image)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s was changed since the rollout wrote it, and setting %s back in it failed: %w", f.Path, prev.Image, err))
				continue
			}
			notes = append(notes, note)
		}
	}
	return notes, errors.Join(errs...)
}

// setBack sets image back as the service's image in its compose file (or
// the variable it reads), changing nothing else.
func (r *run) setBack(image string) (string, error) {
	t, err := composefile.Locate(r.cur.Labels, r.s.cfg.Locate)
	if err != nil {
		return "", err
	}
	tag, digest := splitRef(image)
	c, err := t.Plan(tag, digest)
	if errors.Is(err, composefile.ErrNoChange) {
		return fmt.Sprintf("%s names %s", t.File, image), nil
	}
	if err != nil {
		return "", err
	}
	b, err := c.Apply(r.s.cfg.Backups)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s set back to %s (it had changed since the rollout wrote it; backup %s)", c.Path, c.NewImage, b.Path), nil
}

// splitRef returns the tag and digest of an image reference.
func splitRef(ref string) (tag, digest string) {
	ref, digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		tag = ref[i+1:]
	}
	return tag, digest
}

// undoEngine removes the containers the rollout created, renames the
// previous one back and brings it back as it ran.
func (r *run) undoEngine(ctx context.Context, rec *rollout.Record) (string, error) {
	e := r.s.engine
	prev, _ := rec.Previous()
	removed, errs := r.removeCreated(ctx, rec)
	st, err := rollout.Reclaim(ctx, e, prev)
	if err != nil {
		return "", errors.Join(append(errs, err)...)
	}
	note, err := r.bringBack(ctx, prev, st)
	if err != nil {
		return "", errors.Join(append(errs, err)...)
	}
	return fmt.Sprintf("removed %d new container(s); %s (%s) %s", removed, prev.Name, short(prev.ID), note), errors.Join(errs...)
}

// removeCreated removes (killing) every container of the service but the
// previous one: those the rollout created, as the record and the service's
// labels say, whatever name they have now.
func (r *run) removeCreated(ctx context.Context, rec *rollout.Record) (int, []error) {
	e := r.s.engine
	prev, _ := rec.Previous()
	all, err := r.allContainers(ctx, r.cur.Labels[composefile.LabelProject], r.cur.Labels[composefile.LabelService])
	if err != nil {
		return 0, []error{err}
	}
	ids := map[string]bool{}
	for _, c := range all {
		ids[c.ID] = true
	}
	for _, c := range rec.Containers {
		if c.Role == rollout.RoleNew {
			ids[c.ID] = true
		}
	}
	delete(ids, prev.ID)
	var errs []error
	n := 0
	for id := range ids {
		if err := e.Remove(ctx, id, true); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errs
}

// bringBack starts the previous container again when it ran before and
// waits until it is healthy (or stable). A stop the rollout asked for may
// still be under way (a stop_grace_period longer than what was left of the
// deadline): the engine would stop the container after it is called back.
// So a container the rollout asked to stop that still runs the same
// process is killed first, and started anew.
func (r *run) bringBack(ctx context.Context, prev rollout.Container, st docker.State) (string, error) {
	e := r.s.engine
	if !prev.Running {
		return "left stopped, as it was", nil
	}
	note := "runs again"
	if st.Running && prev.StopRequested && (prev.StartedAt.IsZero() || st.StartedAt.Equal(prev.StartedAt)) {
		if err := e.Kill(ctx, prev.ID); err != nil {
			return "", fmt.Errorf("killing the previous container, which the rollout asked to stop: %w", err)
		}
		st.Running = false
		note = "killed (a stop the rollout asked for may have been under way) and started anew"
	}
	if !st.Running {
		if err := e.Start(ctx, prev.ID); err != nil {
			return "", err
		}
	}
	if _, err := e.WaitHealthy(ctx, prev.ID, docker.WaitOptions{Timeout: r.s.cfg.HealthTimeout, StableFor: r.s.cfg.StableFor}); err != nil {
		return "", fmt.Errorf("the previous container does not come back: %w", err)
	}
	return note, nil
}

// undoCLI brings the previous version back through the compose CLI: the
// file restored, the previous image under its reference, `up` again. When
// the previous container is still there (the CLI had not removed it), the
// rollout's new containers are removed first and it is brought back as it
// ran; when the CLI removed it, the CLI recreates the service from the
// previous image (carrying the anonymous volumes over), its failed
// container stopped quickly first.
func (r *run) undoCLI(ctx context.Context, rec *rollout.Record) (string, error) {
	e := r.s.engine
	prev, _ := rec.Previous()
	var errs []error
	// The previous image must be what its reference names locally, so that
	// compose recreates with it (a digest update moved the tag).
	if !strings.Contains(prev.Image, "@") {
		if id, err := e.ImageID(ctx, prev.Image); err != nil || id != prev.ImageID {
			if err := e.Tag(ctx, prev.ImageID, prev.Image); err != nil {
				errs = append(errs, err)
			}
		}
	}
	st, err := e.InspectState(ctx, prev.ID)
	switch {
	case err == nil:
		_, rerrs := r.removeCreated(ctx, rec)
		errs = append(errs, rerrs...)
		// A CLI killed midway may have left it under a name of its own
		// (docker-compose 1.x renames it <short id>_<name> before it
		// creates the new one); compose would start it under that name.
		if st.Name != prev.Name {
			if err := e.Rename(ctx, prev.ID, prev.Name); err != nil {
				errs = append(errs, err)
			}
		}
		if prev.Running && st.Running && prev.StopRequested && (prev.StartedAt.IsZero() || st.StartedAt.Equal(prev.StartedAt)) {
			if err := e.Kill(ctx, prev.ID); err != nil {
				errs = append(errs, fmt.Errorf("killing the previous container, which the rollout asked to stop: %w", err))
			}
		}
	case errors.Is(err, core.ErrNotFound):
		all, err := r.allContainers(ctx, r.cur.Labels[composefile.LabelProject], r.cur.Labels[composefile.LabelService])
		if err != nil {
			return "", errors.Join(append(errs, err)...)
		}
		for _, c := range all {
			if c.Running {
				if err := e.StopWithin(ctx, c.ID, 2*time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
	default:
		return "", errors.Join(append(errs, err)...)
	}
	if err := r.composeUp(ctx); err != nil {
		return "", errors.Join(append(errs, err)...)
	}
	found, err := r.serviceContainers(ctx, r.target.Project, r.target.Service)
	if err != nil {
		return "", errors.Join(append(errs, err)...)
	}
	if len(found) == 0 {
		return "", errors.Join(append(errs, fmt.Errorf("%s up left no container for service %s", r.s.cfg.CLI, r.target.Service))...)
	}
	if prev.Running {
		if _, err := e.WaitHealthy(ctx, found[0].ID, docker.WaitOptions{Timeout: r.s.cfg.HealthTimeout, StableFor: r.s.cfg.StableFor}); err != nil {
			errs = append(errs, fmt.Errorf("the previous version does not come back: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	r.rep.Container = found[0].ID
	return fmt.Sprintf("%s runs %s again", short(found[0].ID), prev.Image), nil
}

// verify checks that what ran before the rollout runs again: the one
// running container of the service is the previous one under its name
// (cli: one on the previous image, named as the CLI names it), healthy when
// it has a healthcheck; none
// is kept aside; each file holds its old bytes or names the previous image.
// A previous container that was not running must not run either.
func (r *run) verify(ctx context.Context, rec *rollout.Record) error {
	prev, _ := rec.Previous()
	all, err := r.allContainers(ctx, r.cur.Labels[composefile.LabelProject], r.cur.Labels[composefile.LabelService])
	if err != nil {
		return err
	}
	var running []docker.State
	for _, c := range all {
		if strings.HasSuffix(c.Name, ArchiveSuffix) {
			return fmt.Errorf("container %s (%s) is still kept aside", c.Name, short(c.ID))
		}
		if c.Running {
			running = append(running, c)
		}
	}
	switch {
	case !prev.Running && len(running) > 0:
		return fmt.Errorf("%s runs; it did not before the rollout", running[0].Name)
	case !prev.Running:
	case len(running) != 1:
		var names []string
		for _, c := range running {
			names = append(names, c.Name)
		}
		return fmt.Errorf("%d containers of the service run (%s), want the previous one", len(running), strings.Join(names, ", "))
	default:
		c := running[0]
		switch {
		case c.ImageID != prev.ImageID:
			return fmt.Errorf("%s runs image %s, not the previous %s", c.Name, short(c.ImageID), short(prev.ImageID))
		case rec.Method != "compose "+RecreateCLI && c.ID != prev.ID:
			return fmt.Errorf("%s is container %s, not the previous %s", c.Name, short(c.ID), short(prev.ID))
		case rec.Method != "compose "+RecreateCLI && c.Name != prev.Name:
			// (The CLI names what it recreates as it names containers: a
			// project brought up by docker-compose 1.x, project_web_1, comes
			// back from the v2 CLI as project-web-1, the same service.)
			return fmt.Errorf("the running container is named %s, not %s", c.Name, prev.Name)
		case c.Status != "running":
			return fmt.Errorf("%s is %s", c.Name, c.Status)
		case c.Healthcheck && c.Health != docker.HealthHealthy:
			return fmt.Errorf("%s is %s, not healthy", c.Name, c.Health)
		}
		r.rep.Container = c.ID
	}
	for _, f := range rec.Files {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			return err
		}
		if f.Old != "" && rollout.SHA256(data) == f.Old {
			continue
		}
		t, err := composefile.Locate(r.cur.Labels, r.s.cfg.Locate)
		if err != nil {
			return err
		}
		if got := imageRef(t.Repository, t.Tag, t.Digest); got != prev.Image {
			return fmt.Errorf("%s names %s, not the previous %s", t.File, got, prev.Image)
		}
	}
	return nil
}
