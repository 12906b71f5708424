package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/composefile"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// This file holds the rollout record's part of a rollout: what is written
// down before the rollout acts (prepare), as it goes (save), and how a
// rollout of the project left unfinished by a crash or a kill is settled
// before anything else is done (resume).

// prepare writes the record of what the rollout will change: the file with
// its bytes before and after, the previous container with the name it is
// kept aside under. Nothing is changed yet.
func (r *run) prepare() error {
	cur := r.cur
	rec := &rollout.Record{
		Key: r.u.Key, Target: r.targetName(), Method: "compose " + r.s.cfg.Recreate,
		From: cur.Image, To: r.newRef, FromImage: cur.ImageID, ToImage: r.newImage,
		Phase: rollout.PhasePrepared, Owner: rollout.Self(),
	}
	prev := rollout.Container{Role: rollout.RolePrevious, ID: cur.ID, Name: cur.Name, Image: cur.Image, ImageID: cur.ImageID,
		Running: cur.Running, StartedAt: cur.StartedAt}
	if r.s.cfg.Recreate == RecreateEngine {
		prev.Archive = cur.Name + ArchiveSuffix
	}
	rec.AddContainer(prev)
	if r.change != nil {
		rec.Files = []rollout.File{{Path: r.change.Path, Old: rollout.SHA256(r.change.Old), New: rollout.SHA256(r.change.New)}}
	} else if data, err := os.ReadFile(r.target.File); err == nil {
		// Not written by this rollout: Old stays unknown, so that a rollback
		// sets the previous image back in it rather than restoring anything.
		rec.Files = []rollout.File{{Path: r.target.File, New: rollout.SHA256(data)}}
	}
	r.mu.Lock()
	r.rec = rec
	r.mu.Unlock()
	return r.save()
}

// save writes the record durably.
func (r *run) save() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rec == nil {
		return nil
	}
	return r.journal.Save(r.key, r.rec)
}

// setPhase moves the record to phase and saves it.
func (r *run) setPhase(phase string) error {
	r.mu.Lock()
	r.rec.Phase = phase
	r.mu.Unlock()
	return r.save()
}

// markPrevious changes the record's previous container with fn; r.mu is held.
func (r *run) markPrevious(fn func(*rollout.Container)) {
	for i := range r.rec.Containers {
		if r.rec.Containers[i].Role == rollout.RolePrevious {
			fn(&r.rec.Containers[i])
		}
	}
}

// closeRecord removes the record: the rollout is over, settled.
func (r *run) closeRecord() {
	if err := r.journal.Close(r.key); err != nil {
		r.log.Error("closing the rollout record", "error", err)
	}
	r.mu.Lock()
	r.rec = nil
	r.mu.Unlock()
}

// writeFailed settles a failed write: the file is put back when a partial
// in-place write left it neither old nor new (nothing else touched it: the
// project is locked), and the record closed.
func (r *run) writeFailed() {
	if r.rec == nil {
		return
	}
	if f := r.rec.Files; len(f) == 1 && f[0].Backup != "" {
		if data, err := os.ReadFile(f[0].Path); err == nil && rollout.SHA256(data) != f[0].Old {
			if err := r.backupOf(f[0]).Restore(); err != nil {
				r.log.Error("restoring the file after a failed write", "error", err)
				return // the record stays for the next rollout of the project
			}
		}
	}
	r.closeRecord()
}

// resume settles the rollout rec describes, left unfinished by a process
// that died (or by a delivery given up), before this rollout acts. When
// this delivery is that rollout's (the same key, resumed or retried):
//   - rolled back already decided: the rollback is finished and reported
//     (settled);
//   - its new container is in place, running the new image, and the file
//     names it: the rollout goes on from the health gate (atGate);
//   - else it is rolled back, and then done again from the start;
//   - applied: the clean-up is finished and the result is applied.
//
// Another delivery's rollout is rolled back (or, applied, cleaned up) and
// this one then goes on. A rollback that fails keeps the record, and this
// delivery fails, loudly: a person must look.
func (r *run) resume(ctx context.Context, rec *rollout.Record) (res sdk.Result, settled, atGate bool) {
	rep := r.rep
	same := rec.Key == r.u.Key && rec.Target == r.targetName()
	r.mu.Lock()
	r.rec = rec
	r.mu.Unlock()
	prev, ok := rec.Previous()
	if !ok {
		rep.Outcome = OutcomeFailed
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("the rollout record %s names no previous container: %w", r.journal.RecordPath(r.key), rollout.ErrCorrupt)),
			Event: sdk.EventUpdateFailed}, true, false
	}
	whose := "this delivery's"
	if !same {
		whose = "delivery " + rec.Key + "'s"
	}
	left := fmt.Sprintf("%s rollout of %s to %s was left %s by process %d", whose, rec.Target, rec.To, rec.Phase, rec.Owner.PID)
	r.log.Warn("settling a rollout left unfinished", "delivery", rec.Key, "phase", rec.Phase, "target", rec.Target, "to", rec.To)

	switch rec.Phase {
	case rollout.PhaseApplied:
		_ = rep.step(StepResume, func() (string, error) {
			note, err := r.cleanup(ctx, rec)
			return left + "; " + note, err
		})
		r.closeRecord()
		if same {
			rep.Outcome, rep.From, rep.To = OutcomeApplied, rec.From, rec.To
			if run, err := r.serviceContainers(ctx, r.cur.Labels[composefile.LabelProject], r.cur.Labels[composefile.LabelService]); err == nil && len(run) > 0 {
				rep.Container = run[0].ID
			}
			return sdk.Result{Event: sdk.EventUpdateApplied}, true, false
		}
		return sdk.Result{}, false, false
	case rollout.PhaseRollingBack:
		if same {
			if rec.Failure == nil {
				rec.Failure = &rollout.Failure{Step: StepResume, Reason: "the rollout was interrupted"}
			}
			rep.FailedStep, rep.Reason, rep.Logs = rec.Failure.Step, rec.Failure.Reason, rec.Failure.Logs
			_ = rep.step(StepResume, func() (string, error) { return left + "; its rollback is finished now", nil })
			return r.settleRollback(ctx, rec), true, false
		}
	default:
		if same {
			if newID, why := r.inPlace(ctx, rec); newID != "" {
				_ = rep.step(StepResume, func() (string, error) {
					return left + fmt.Sprintf("; its new container %s is in place: the rollout goes on from the health gate", short(newID)), nil
				})
				r.created = []string{newID}
				r.newRef, r.newImage = rec.To, rec.ToImage
				r.cur.ID, r.cur.Name, r.cur.Image, r.cur.ImageID, r.cur.Running, r.cur.StartedAt =
					prev.ID, prev.Name, prev.Image, prev.ImageID, prev.Running, prev.StartedAt
				if len(rec.Files) > 0 {
					rep.File, rep.Backup = rec.Files[0].Path, rec.Files[0].Backup
				}
				return sdk.Result{}, false, true
			} else {
				left += "; " + why
			}
		}
	}
	err := rep.step(StepResume, func() (string, error) {
		note, err := r.undo(ctx, rec)
		if err != nil {
			return "", fmt.Errorf("%s; rolling it back failed: %w; the record %s stays until a person has sorted this out (and removed it)",
				left, err, r.journal.RecordPath(r.key))
		}
		return left + "; rolled back: " + note, nil
	})
	if err != nil {
		rep.Outcome = OutcomeFailed
		return sdk.Result{Err: sdk.Permanent(err), Event: sdk.EventUpdateFailed}, true, false
	}
	r.closeRecord()
	return sdk.Result{}, false, false
}

// inPlace returns the ID of rec's new container when the rollout it
// describes got as far as its health gate: the file holds what the rollout
// wrote, the service's one running container runs the new image under the
// service's name, and (engine) the previous one is kept aside, stopped.
// Otherwise it says why not.
func (r *run) inPlace(ctx context.Context, rec *rollout.Record) (id, why string) {
	for _, f := range rec.Files {
		data, err := os.ReadFile(f.Path)
		if err != nil || rollout.SHA256(data) != f.New {
			return "", fmt.Sprintf("%s does not hold what the rollout wrote", f.Path)
		}
	}
	prev, _ := rec.Previous()
	project, service := r.cur.Labels[composefile.LabelProject], r.cur.Labels[composefile.LabelService]
	all, err := r.allContainers(ctx, project, service)
	if err != nil {
		return "", err.Error()
	}
	var running []string
	var prevAside bool
	for _, c := range all {
		switch {
		case c.ID == prev.ID:
			prevAside = !c.Running && c.Name == prev.Archive && prev.Archive != ""
		case c.Running && c.ImageID == rec.ToImage && c.Name == prev.Name:
			running = append(running, c.ID)
		default:
			return "", fmt.Sprintf("container %s (%s, %s) is not where a finished recreate leaves it", c.Name, short(c.ID), c.Status)
		}
	}
	switch {
	case len(running) != 1:
		return "", fmt.Sprintf("%d new containers run", len(running))
	case r.s.cfg.Recreate == RecreateEngine && !prevAside:
		return "", fmt.Sprintf("the previous container %s is not kept aside, stopped", short(prev.ID))
	}
	return running[0], ""
}

// applied finishes a rollout that passed its checks: the record says so
// before the clean-up, which it then closes.
func (r *run) applied(ctx context.Context) sdk.Result {
	rep := r.rep
	rep.Outcome = OutcomeApplied
	if len(r.created) > 0 {
		rep.Container = r.created[0]
	}
	if err := r.setPhase(rollout.PhaseApplied); err != nil {
		r.log.Error("recording the rollout applied", "error", err)
	}
	rollout.Fault("cleanup:before")
	_ = rep.step(StepCleanup, func() (string, error) { return r.cleanup(ctx, r.rec) })
	r.closeRecord()
	return sdk.Result{Event: sdk.EventUpdateApplied}
}

// cleanup removes what a successful rollout left behind: the previous
// container (engine: kept aside; never the one running the service) and,
// with PRUNE, the previous image.
func (r *run) cleanup(ctx context.Context, rec *rollout.Record) (string, error) {
	e := r.s.engine
	prev, _ := rec.Previous()
	var notes []string
	if st, err := e.InspectState(ctx, prev.ID); err == nil && !st.Running && (st.Name == prev.Archive || r.s.cfg.Recreate == RecreateCLI) {
		if err := e.Remove(ctx, prev.ID, true); err != nil {
			return "", err
		}
		notes = append(notes, "removed "+st.Name)
	} else if err != nil && !isNotFound(err) {
		return "", err
	}
	if r.s.cfg.Prune && prev.ImageID != rec.ToImage {
		ref := prev.ImageID
		if id, err := e.ImageID(ctx, prev.Image); err == nil && id == prev.ImageID {
			ref = prev.Image
		}
		if err := e.ImageRemove(ctx, ref); err != nil {
			return strings.Join(notes, "; "), err
		}
		notes = append(notes, "removed image "+prev.Image)
	}
	return strings.Join(notes, "; "), nil
}

func isNotFound(err error) bool { return errors.Is(err, core.ErrNotFound) }
