package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/core/docker/composeup"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/composefile"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// StepRemove brings down a service the declared files no longer declare.
const StepRemove = "remove"

// maxDeclaredFile bounds a previous file put back by a rollback (1 MiB, as
// tidewatch reads compose files from git).
const maxDeclaredFile = 1 << 20

// declared rolls out a service whose compose files already declare it (a
// commit of a git source, sdk.Declared): nothing is rewritten; the service
// is brought up as the files say (created when it does not run yet) with
// the same pull, health gate and smoke checks as an update, through the
// compose CLI or compose's library in process (RECREATE), and on failure
// the previous files are put back and what ran before is brought back (a
// service that did not run before is removed). A service the files no
// longer declare is brought down as compose brings down an orphan: only its
// containers that this project folder deployed, never a volume.
func (s *state) declared(ctx context.Context, log *slog.Logger, u sdk.Update) sdk.Result {
	d := u.Declared
	r := &run{s: s, log: log.With("source", d.Source, "commit", d.Commit), u: u,
		rep: &Report{Recreate: s.cfg.Recreate, Project: d.Project, Service: d.Service}}
	if err := checkDeclared(d); err != nil {
		r.rep.Outcome, r.rep.Reason = OutcomeRefused, err.Error()
		return sdk.Result{Err: sdk.Permanent(err), Rollout: r.rep.Rollout()}
	}
	fwd, cancel, after := s.budget(ctx)
	defer cancel()
	res := r.forwardDeclared(fwd, after)
	r.log.Info("compose deploy of declared files finished", "outcome", r.rep.Outcome, "failed_step", r.rep.FailedStep, "reason", r.rep.Reason,
		"project", d.Project, "service", d.Service)
	res.Rollout = r.rep.Rollout()
	res.Rollout.Files = d.Previous
	return res
}

// checkDeclared refuses declared files tidewatch cannot act on safely.
func checkDeclared(d *sdk.Declared) error {
	switch {
	case d.Project == "" || d.Service == "" || d.WorkingDir == "":
		return errors.New("declared deploy: project, service and working dir are required")
	case !filepath.IsAbs(d.WorkingDir):
		return fmt.Errorf("declared deploy: working dir %q is not absolute", d.WorkingDir)
	}
	for _, f := range d.Files {
		if !filepath.IsAbs(f) {
			return fmt.Errorf("declared deploy: compose file %q is not absolute", f)
		}
	}
	for _, p := range d.Previous {
		if !filepath.IsAbs(p.Path) || p.Backup != "" && !filepath.IsAbs(p.Backup) {
			return fmt.Errorf("declared deploy: previous file %q (backup %q) is not absolute", p.Path, p.Backup)
		}
	}
	return nil
}

// forwardDeclared runs the steps of a declared deploy.
func (r *run) forwardDeclared(ctx context.Context, after func() (context.Context, context.CancelFunc)) sdk.Result {
	s, rep, d := r.s, r.rep, r.u.Declared
	if err := rep.step(StepInspect, func() (string, error) { return r.inspectDeclared(ctx) }); err != nil {
		return r.refused(ctx, err)
	}
	declares, err := declaresService(d.Files, d.Service)
	if err != nil {
		return r.refused(ctx, sdk.Permanent(err))
	}
	if declares {
		if err := rep.step(StepLocate, func() (string, error) { return r.locateDeclared() }); err != nil {
			return r.refused(ctx, err)
		}
	}
	if s.cfg.DryRun {
		rep.Outcome, rep.Plan = OutcomeDryRun, r.planDeclared(declares)
		return sdk.OK("")
	}
	err = rep.step(StepLock, func() (string, error) {
		// The project's lock and record, as for a rollout of an image: in
		// STATE_DIR, else in the project's folder; the same key as a
		// rollout of one of its containers.
		dir := s.cfg.StateDir
		if dir == "" {
			// The project's folder; a commit that removed the project
			// removed it: the nearest folder above it that exists.
			dir = d.WorkingDir
			for _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) && filepath.Dir(dir) != dir; _, err = os.Stat(dir) {
				dir = filepath.Dir(dir)
			}
		}
		var err error
		if r.journal, err = rollout.NewJournal(dir); err != nil {
			return "", err
		}
		r.key = d.Project + "|" + s.cfg.DockerHost + "|" + d.WorkingDir
		if r.lock, err = r.journal.Lock(ctx, r.key); err != nil {
			return "", fmt.Errorf("waiting for the project's other rollout: %w", err)
		}
		return "", nil
	})
	if err != nil {
		return r.refused(ctx, err)
	}
	defer r.lock.Unlock()
	if res, settled := r.leftover(after); settled {
		return res
	}
	if !declares {
		return r.removeOrphan(ctx)
	}
	if r.rec == nil {
		if err := r.prepareDeclared(); err != nil {
			rep.Outcome = OutcomeFailed
			return sdk.Result{Err: sdk.Permanent(fmt.Errorf("recording the deploy before it acts: %w", err)), Event: sdk.EventUpdateFailed}
		}
	}
	if res, ok := r.pulled(ctx); !ok {
		if r.rec.Phase == rollout.PhasePrepared {
			r.closeRecord() // nothing was changed (a resumed deploy's record stays)
		}
		return res
	}
	if err := r.setPhase(rollout.PhaseApplying); err != nil {
		rep.Outcome = OutcomeFailed
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("recording the deploy before it acts: %w", err)), Event: sdk.EventUpdateFailed}
	}
	failed := r.checked(ctx, rep.step(StepRecreate, func() (string, error) { return r.upDeclared(ctx) }))
	actx, cancel := after()
	defer cancel()
	if failed != nil {
		return r.rollbackDeclared(actx)
	}
	if r.cur.ID == "" { // created: nothing ran before, nothing to clean up
		rep.Outcome, rep.Container = OutcomeApplied, r.created[0]
		r.closeRecord()
		return sdk.Result{Event: sdk.EventUpdateApplied}
	}
	return r.applied(actx)
}

// leftover settles a record the project's last rollout left (tidewatch
// stopped or killed midway). This delivery's own (the same key: a deploy
// resumed after a restart) is taken over: the container that ran before it
// is the one to bring back on a failure, whatever runs now, and the deploy
// goes on (compose's up is idempotent). Another rollout's record is
// settled as a rollout settles it (finished or undone) when the service
// runs, else it stops this deploy until a person looks.
func (r *run) leftover(after func() (context.Context, context.CancelFunc)) (sdk.Result, bool) {
	rep, d := r.rep, r.u.Declared
	rec, err := r.journal.Load(r.key)
	switch {
	case err != nil:
		rep.Outcome = OutcomeFailed
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("an earlier rollout of the project left a record that cannot be read: %w", err)), Event: sdk.EventUpdateFailed}, true
	case rec == nil:
		return sdk.Result{}, false
	case rec.Key == r.u.Key:
		_ = rep.step(StepResume, func() (string, error) {
			return fmt.Sprintf("this delivery's deploy of %s was left %s by process %d: it goes on", rec.Target, rec.Phase, rec.Owner.PID), nil
		})
		r.mu.Lock()
		r.rec = rec
		r.mu.Unlock()
		r.cur = docker.State{}
		if prev, ok := rec.Previous(); ok {
			r.cur = docker.State{ID: prev.ID, Name: prev.Name, Image: prev.Image, ImageID: prev.ImageID, Running: prev.Running, StartedAt: prev.StartedAt,
				Labels: map[string]string{composefile.LabelProject: d.Project, composefile.LabelService: d.Service, composefile.LabelWorkingDir: d.WorkingDir}}
			rep.From = prev.Image
		}
		for _, c := range rec.Containers {
			if c.Role == rollout.RoleNew && !slices.Contains(r.created, c.ID) {
				r.created = append(r.created, c.ID)
			}
		}
		return sdk.Result{}, false
	case r.cur.ID != "":
		actx, cancel := after()
		defer cancel()
		res, settled, _ := r.resume(actx, rec)
		return res, settled
	}
	rep.Outcome = OutcomeFailed
	return sdk.Result{Err: sdk.Permanent(fmt.Errorf("rollout %s of the project was left unfinished (record %s): a person must settle it first",
		rec.Key, r.journal.RecordPath(r.key))), Event: sdk.EventUpdateFailed}, true
}

// prepareDeclared writes the deploy's record before it acts: the previous
// container, if the service runs (in engine mode with the name it is kept
// aside under). No file: the source's files are already written, and their
// previous copies are the source's to restore.
func (r *run) prepareDeclared() error {
	d := r.u.Declared
	rec := &rollout.Record{
		Key: r.u.Key, Target: d.Project + "/" + d.Service, Method: "compose " + r.s.cfg.Recreate,
		From: r.cur.Image, To: r.newRef, FromImage: r.cur.ImageID,
		Phase: rollout.PhasePrepared, Owner: rollout.Self(),
	}
	if r.cur.ID != "" {
		prev := rollout.Container{Role: rollout.RolePrevious, ID: r.cur.ID, Name: r.cur.Name, Image: r.cur.Image,
			ImageID: r.cur.ImageID, Running: r.cur.Running, StartedAt: r.cur.StartedAt}
		if r.s.cfg.Recreate == RecreateEngine {
			prev.Archive = r.cur.Name + ArchiveSuffix
		}
		rec.AddContainer(prev)
	}
	r.mu.Lock()
	r.rec = rec
	r.mu.Unlock()
	return r.save()
}

// inspectDeclared finds the service's container, if it runs already.
func (r *run) inspectDeclared(ctx context.Context) (string, error) {
	d := r.u.Declared
	found, err := r.serviceContainers(ctx, d.Project, d.Service)
	if err != nil {
		return "", err
	}
	if len(found) == 0 {
		return fmt.Sprintf("service %s of project %s does not run yet", d.Service, d.Project), nil
	}
	cur := found[0]
	if rollout.IsSelf(r.s.cfg.Self, cur.ID, cur.Name) {
		return "", sdk.Permanent(ErrSelf)
	}
	r.cur = cur
	r.rep.From = cur.Image
	return fmt.Sprintf("%s (%s) runs %s", cur.Name, short(cur.ID), cur.Image), nil
}

// locateDeclared reads the service's image from the declared files, as
// compose interpolates it.
func (r *run) locateDeclared() (string, error) {
	d := r.u.Declared
	labels := map[string]string{
		composefile.LabelProject: d.Project, composefile.LabelService: d.Service,
		composefile.LabelWorkingDir: d.WorkingDir, composefile.LabelConfigFiles: strings.Join(d.Files, ","),
	}
	t, err := composefile.Locate(labels, composefile.LocateOptions{EnvFile: r.s.cfg.Locate.EnvFile})
	if err != nil {
		return "", sdk.Permanent(fmt.Errorf("reading the image of %s from %s: %w", d.Service, strings.Join(d.Files, ", "), err))
	}
	t.Project = d.Project
	r.target = t
	r.newRef = imageRef(t.Repository, t.Tag, t.Digest)
	r.rep.File, r.rep.To = t.File, r.newRef
	return fmt.Sprintf("%s declares %s (commit %s of %s)", t.File, r.newRef, short(d.Commit), d.Source), nil
}

// upDeclared brings the service up as the files declare it: the compose
// CLI's up, or compose's library in process with the container that ran
// before kept aside (none for a service that did not run). A service that
// runs as declared already (a deploy resumed after its recreate) is left
// as it is, and checked at the gate.
func (r *run) upDeclared(ctx context.Context) (string, error) {
	if r.s.cfg.Recreate == RecreateCLI {
		return r.recreateCLI(ctx)
	}
	archive := ""
	if r.cur.ID != "" {
		archive = r.cur.Name + ArchiveSuffix
		if strings.HasSuffix(r.cur.Name, ArchiveSuffix) {
			return "", fmt.Errorf("container %s is kept aside by a rollout; it is never kept aside again", r.cur.Name)
		}
	}
	if archive != "" {
		if st, err := r.s.engine.InspectState(ctx, archive); err == nil && st.ID != r.cur.ID {
			return "", fmt.Errorf("a container named %s exists, kept aside by another rollout: remove it (or rename it back) first", archive)
		} else if err != nil && !errors.Is(err, core.ErrNotFound) {
			return "", err
		}
	}
	current := r.cur.ID
	if st, err := r.s.engine.InspectState(ctx, current); current != "" && err == nil && st.Name == archive {
		current = "" // kept aside already by this deploy, before it was cut short
	}
	if current == "" {
		archive = ""
	}
	res, err := r.upEngine(ctx, current, archive)
	if err != nil {
		return "", err
	}
	if len(r.created) == 0 {
		found, err := r.serviceContainers(ctx, r.target.Project, r.target.Service)
		if err != nil || len(found) == 0 {
			return "", fmt.Errorf("compose left no container for service %s (%s): %v", r.target.Service, strings.Join(res.Steps, "; "), err)
		}
		r.created = []string{found[0].ID}
		return fmt.Sprintf("%s runs as the files declare (compose %s)", short(found[0].ID), strings.Join(res.Steps, "; ")), nil
	}
	note := fmt.Sprintf("compose %s created %s from %s", composeup.LibraryVersion(), short(r.created[len(r.created)-1]), r.newRef)
	if res.Archived {
		note = fmt.Sprintf("%s kept aside as %s; ", short(r.cur.ID), archive) + note
	}
	return note, nil
}

// rollbackDeclared keeps the failed container's logs, puts the previous
// files back, and brings back what ran before: the previous container,
// checked, or nothing for a service that did not run before.
func (r *run) rollbackDeclared(ctx context.Context) sdk.Result {
	rep := r.rep
	failedStep, reason := rep.FailedStep, rep.Reason
	rep.Logs = r.failedLogs(ctx)
	r.mu.Lock()
	r.rec.Phase = rollout.PhaseRollingBack
	r.rec.Failure = &rollout.Failure{Step: failedStep, Reason: reason, Logs: rep.Logs}
	r.mu.Unlock()
	if err := r.save(); err != nil {
		r.log.Error("recording the rollback", "error", err)
	}
	err := rep.step(StepRollback, func() (string, error) {
		if err := restorePrevious(r.u.Declared.Previous); err != nil {
			return "", err
		}
		if r.cur.ID == "" {
			return r.removeNew(ctx)
		}
		var note string
		var err error
		if r.s.cfg.Recreate == RecreateCLI {
			note, err = r.undoCLI(ctx, r.rec)
		} else {
			note, err = r.undoEngine(ctx, r.rec)
		}
		if err != nil {
			return "", err
		}
		if err := r.verify(ctx, r.rec); err != nil {
			return "", fmt.Errorf("checking that the previous version runs again: %w", err)
		}
		return note, nil
	})
	before := "nothing: service " + r.u.Declared.Service + ", new in the commit, was removed"
	if r.cur.ID != "" {
		before = r.cur.Image
	}
	if err != nil {
		rep.Outcome = OutcomeFailed
		rep.FailedStep, rep.Reason = failedStep, reason
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("%s failed (%s), and the rollback failed too: %w; the record %s stays%s",
			failedStep, reason, err, r.journal.RecordPath(r.key), logTail(rep.Logs))), Event: sdk.EventUpdateFailed}
	}
	r.closeRecord()
	rep.Outcome = OutcomeRolledBack
	return sdk.Result{Err: sdk.Permanent(fmt.Errorf("rolled back to %s: %s failed: %s%s", before, failedStep, reason, logTail(rep.Logs))), Event: sdk.EventUpdateRolledBack}
}

// removeNew removes every container of a service that did not run before
// the deploy: those it created, and any other of the service the project's
// folder deployed.
func (r *run) removeNew(ctx context.Context) (string, error) {
	d := r.u.Declared
	ids := slices.Clone(r.created)
	if all, err := r.ownContainers(ctx); err == nil {
		for _, c := range all {
			ids = append(ids, c.ID)
		}
	}
	slices.Sort(ids)
	var errs []error
	for _, id := range slices.Compact(ids) {
		if err := r.s.engine.Remove(ctx, id, true); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return fmt.Sprintf("files restored; the new service %s removed", d.Service), nil
}

// ownContainers returns the containers of the declared service that its
// project's folder deployed (compose's working-dir label names it, as
// tidewatch sees it or, with PATH_MAP, as the engine's host does), kept
// aside or not: a project of the same name deployed from elsewhere is not
// this source's.
func (r *run) ownContainers(ctx context.Context) ([]docker.State, error) {
	d := r.u.Declared
	all, err := r.allContainers(ctx, d.Project, d.Service)
	if err != nil {
		return nil, err
	}
	host := hostPath(r.s.cfg.Locate.PathMap, d.WorkingDir)
	return slices.DeleteFunc(all, func(c docker.State) bool {
		wd := filepath.Clean(c.Labels[composefile.LabelWorkingDir])
		return wd != filepath.Clean(d.WorkingDir) && wd != filepath.Clean(host)
	}), nil
}

// removeOrphan brings down a service the files no longer declare, as
// compose's up --remove-orphans does: its containers that the project's
// folder deployed are stopped and removed, their volumes kept.
func (r *run) removeOrphan(ctx context.Context) sdk.Result {
	rep, d := r.rep, r.u.Declared
	err := rep.step(StepRemove, func() (string, error) {
		own, err := r.ownContainers(ctx)
		if err != nil {
			return "", err
		}
		var names []string
		var errs []error
		for _, c := range own {
			if rollout.IsSelf(r.s.cfg.Self, c.ID, c.Name) {
				return "", sdk.Permanent(ErrSelf)
			}
			if c.Running {
				if err := r.s.engine.Stop(ctx, c.ID); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			if err := r.s.engine.Remove(ctx, c.ID, false); err != nil {
				errs = append(errs, err)
				continue
			}
			names = append(names, c.Name)
		}
		if err := errors.Join(errs...); err != nil {
			return "", err
		}
		if len(names) == 0 {
			return fmt.Sprintf("service %s is no longer declared, and nothing of it runs", d.Service), nil
		}
		return fmt.Sprintf("service %s is no longer declared: %s stopped and removed (volumes kept)", d.Service, strings.Join(names, ", ")), nil
	})
	if err != nil {
		rep.Outcome = OutcomeFailed
		if ctx.Err() != nil {
			return sdk.Retry(fmt.Errorf("removing service %s, no longer declared: %w", d.Service, err))
		}
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("removing service %s, no longer declared: %w", d.Service, err)), Event: sdk.EventUpdateFailed}
	}
	rep.Outcome, rep.To = OutcomeApplied, "(removed)"
	return sdk.Result{Event: sdk.EventUpdateApplied}
}

// planDeclared says what a declared deploy would do, for dry runs.
func (r *run) planDeclared(declares bool) []string {
	d, cfg := r.u.Declared, r.s.cfg
	if !declares {
		return []string{fmt.Sprintf("stop and remove the containers of service %s (project %s) deployed from %s, which the files no longer declare; keep their volumes", d.Service, d.Project, d.WorkingDir)}
	}
	up := fmt.Sprintf("run %s %s up -d --no-deps %s in %s", cfg.CLI, strings.Join(projectArgs(r.target, cfg.Locate.EnvFile), " "), d.Service, d.WorkingDir)
	if cfg.Recreate == RecreateEngine {
		up = fmt.Sprintf("bring %s up from %s with compose's own library, as up -d --no-deps %s does, the container that runs now kept aside, stopped", d.Service, r.newRef, d.Service)
	}
	return []string{"pull " + r.newRef, up,
		fmt.Sprintf("wait until it runs and is healthy, within %s; smoke checks", cfg.HealthTimeout),
		"on failure: put the previous files back and bring back what ran before"}
}

// declaresService reports whether any of files declares service (a
// services: entry of that name). No files: the project is gone.
func declaresService(files []string, service string) (bool, error) {
	for _, f := range files {
		in, err := os.Open(f)
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", f, err)
		}
		b, err := io.ReadAll(io.LimitReader(in, maxDeclaredFile+1))
		in.Close()
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", f, err)
		}
		if len(b) > maxDeclaredFile {
			return false, fmt.Errorf("%s is larger than %d bytes", f, maxDeclaredFile)
		}
		var doc struct {
			Services map[string]yaml.Node `yaml:"services"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return false, fmt.Errorf("parsing %s: %w", f, err)
		}
		if _, ok := doc.Services[service]; ok {
			return true, nil
		}
	}
	return false, nil
}

// restorePrevious puts each previous file back from its copy (atomically),
// and removes a file that did not exist before.
func restorePrevious(prev []sdk.FileChange) error {
	var errs []error
	for _, p := range prev {
		if p.Backup == "" {
			if err := os.Remove(p.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("removing %s, new in the failed commit: %w", p.Path, err))
			}
			continue
		}
		if err := copyFileAtomic(p.Backup, p.Path); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s from %s: %w", p.Path, p.Backup, err))
		}
	}
	return errors.Join(errs...)
}

// copyFileAtomic copies a bounded regular file to to through a temporary
// file in its folder, renamed into place.
func copyFileAtomic(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	b, err := io.ReadAll(io.LimitReader(in, maxDeclaredFile+1))
	if err != nil {
		return err
	}
	if len(b) > maxDeclaredFile {
		return fmt.Errorf("larger than %d bytes", maxDeclaredFile)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(to), ".tidewatch-restore-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(b)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), to)
}
