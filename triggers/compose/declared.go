package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/composefile"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// maxDeclaredFile bounds a previous file put back by a rollback (1 MiB, as
// tidewatch reads compose files from git).
const maxDeclaredFile = 1 << 20

// declared rolls out a service whose compose files already declare it (a
// commit of a git source, sdk.Declared): nothing is rewritten; the service
// is brought up as the files say (created when it does not run yet) with
// the same pull, health gate and smoke checks as an update, and on failure
// the previous files are put back and what ran before is brought back (a
// service that did not run before is removed).
func (s *state) declared(ctx context.Context, log *slog.Logger, u sdk.Update) sdk.Result {
	d := u.Declared
	r := &run{s: s, log: log.With("source", d.Source, "commit", d.Commit), u: u,
		rep: &Report{Recreate: s.cfg.Recreate, Project: d.Project, Service: d.Service}}
	if err := checkDeclared(d); err != nil {
		r.rep.Outcome, r.rep.Reason = OutcomeRefused, err.Error()
		return sdk.Result{Err: sdk.Permanent(err), Rollout: r.rep.Rollout()}
	}
	if s.cfg.Recreate != RecreateCLI && !s.cfg.DryRun {
		err := errors.New("deploying from git needs a compose CLI (RECREATE=cli): compose's library recreates only a service that runs")
		r.rep.Outcome, r.rep.Reason = OutcomeRefused, err.Error()
		return sdk.Result{Err: sdk.Permanent(err), Rollout: r.rep.Rollout()}
	}
	fwd, cancel := context.WithCancel(ctx)
	reserve := s.cfg.HealthTimeout + 30*time.Second
	if dl, ok := ctx.Deadline(); ok {
		reserve = min(reserve, time.Until(dl)/2)
		fwd, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
	}
	defer cancel()
	after := func() (context.Context, context.CancelFunc) {
		if dl, ok := ctx.Deadline(); ok {
			return context.WithDeadline(context.WithoutCancel(ctx), dl.Add(-rolloutMargin))
		}
		return context.WithTimeout(context.WithoutCancel(ctx), reserve)
	}
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
	case d.Project == "" || d.Service == "" || d.WorkingDir == "" || len(d.Files) == 0:
		return errors.New("declared deploy: project, service, working dir and files are required")
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
	if err := rep.step(StepLocate, func() (string, error) { return r.locateDeclared() }); err != nil {
		return r.refused(ctx, err)
	}
	if s.cfg.DryRun {
		rep.Outcome = OutcomeDryRun
		rep.Plan = []string{"pull " + r.newRef,
			fmt.Sprintf("run %s %s up -d --no-deps %s in %s", s.cfg.CLI, strings.Join(projectArgs(r.target, s.cfg.Locate.EnvFile), " "), d.Service, d.WorkingDir),
			fmt.Sprintf("wait until it runs and is healthy, within %s; smoke checks", s.cfg.HealthTimeout),
			"on failure: put the previous files back and bring back what ran before"}
		return sdk.OK("")
	}
	err := rep.step(StepLock, func() (string, error) {
		// The project's lock and record, as for a rollout of an image: in
		// STATE_DIR, else in the project's folder; the same key as a
		// rollout of one of its containers.
		dir := s.cfg.StateDir
		if dir == "" {
			dir = d.WorkingDir
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
	if err := r.prepareDeclared(); err != nil {
		rep.Outcome = OutcomeFailed
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("recording the deploy before it acts: %w", err)), Event: sdk.EventUpdateFailed}
	}
	if err := rep.step(StepPull, func() (string, error) { return r.pull(ctx) }); err != nil {
		rep.Outcome = OutcomeFailed
		r.closeRecord() // nothing was changed
		if ctx.Err() != nil {
			return sdk.Retry(fmt.Errorf("pulling %s: %w", r.newRef, err))
		}
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("pulling %s failed; nothing that runs was changed: %w", r.newRef, err)), Event: sdk.EventUpdateFailed}
	}
	failed := rep.step(StepRecreate, func() (string, error) { return r.recreateCLI(ctx) })
	if failed == nil {
		failed = rep.step(StepHealth, func() (string, error) { return r.gate(ctx) })
	}
	if failed == nil && len(s.cfg.SmokeHTTP)+len(s.cfg.SmokeTCP) > 0 {
		failed = rep.step(StepSmoke, func() (string, error) { return r.smoke(ctx) })
	}
	actx, cancel := after()
	defer cancel()
	if failed != nil {
		return r.rollbackDeclared(actx)
	}
	rep.Outcome = OutcomeApplied
	if len(r.created) > 0 {
		rep.Container = r.created[0]
	}
	if r.cur.ID != "" {
		_ = rep.step(StepCleanup, func() (string, error) { return r.cleanup(actx, r.rec) })
	}
	r.closeRecord()
	return sdk.Result{Event: sdk.EventUpdateApplied}
}

// prepareDeclared writes the deploy's record before it acts: the previous
// container, if the service runs. No file: the source's files are already
// written, and their previous copies are the source's to restore.
func (r *run) prepareDeclared() error {
	d := r.u.Declared
	rec := &rollout.Record{
		Key: r.u.Key, Target: d.Project + "/" + d.Service, Method: "compose declared",
		From: r.cur.Image, To: r.newRef, FromImage: r.cur.ImageID,
		Phase: rollout.PhasePrepared, Owner: rollout.Self(),
	}
	if r.cur.ID != "" {
		rec.AddContainer(rollout.Container{Role: rollout.RolePrevious, ID: r.cur.ID, Name: r.cur.Name, Image: r.cur.Image,
			ImageID: r.cur.ImageID, Running: r.cur.Running, StartedAt: r.cur.StartedAt})
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
		return fmt.Sprintf("service %s of project %s does not run yet: compose creates it", d.Service, d.Project), nil
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
	t, err := composefile.Locate(labels, composefile.LocateOptions{})
	if err != nil {
		return "", sdk.Permanent(fmt.Errorf("reading the image of %s from %s: %w", d.Service, strings.Join(d.Files, ", "), err))
	}
	t.Project = d.Project
	r.target = t
	r.newRef = imageRef(t.Repository, t.Tag, t.Digest)
	r.rep.File, r.rep.To = t.File, r.newRef
	return fmt.Sprintf("%s declares %s (commit %s of %s)", t.File, r.newRef, short(d.Commit), d.Source), nil
}

// rollbackDeclared keeps the failed container's logs, puts the previous
// files back, and brings back what ran before: the previous container, or
// nothing for a service that did not run before.
func (r *run) rollbackDeclared(ctx context.Context) sdk.Result {
	rep := r.rep
	failedStep, reason := rep.FailedStep, rep.Reason
	logsOf := ""
	if r.failed != nil {
		logsOf = r.failed.ID
	} else if len(r.created) > 0 {
		logsOf = r.created[0]
	}
	if logsOf != "" && r.s.cfg.LogLines > 0 {
		lines, err := r.s.engine.Logs(ctx, logsOf, r.s.cfg.LogLines)
		if err != nil {
			lines = []string{fmt.Sprintf("(reading the logs of %s: %v)", short(logsOf), err)}
		}
		rep.Logs = lines
	}
	err := rep.step(StepRollback, func() (string, error) {
		if err := restorePrevious(r.u.Declared.Previous); err != nil {
			return "", err
		}
		if r.cur.ID != "" {
			return r.undoCLI(ctx, r.rec)
		}
		var errs []error
		for _, id := range r.created {
			if err := r.s.engine.Remove(ctx, id, true); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return "", err
		}
		return fmt.Sprintf("files restored; the new service %s removed", r.u.Declared.Service), nil
	})
	before := "nothing: service " + r.u.Declared.Service + ", new in the commit, was removed"
	if r.cur.ID != "" {
		before = r.cur.Image
	}
	if err != nil {
		rep.Outcome = OutcomeFailed
		rep.FailedStep, rep.Reason = failedStep, reason
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("%s failed (%s), and the rollback failed too: %w%s", failedStep, reason, err, logTail(rep.Logs))), Event: sdk.EventUpdateFailed}
	}
	r.closeRecord()
	rep.Outcome = OutcomeRolledBack
	return sdk.Result{Err: sdk.Permanent(fmt.Errorf("rolled back to %s: %s failed: %s%s", before, failedStep, reason, logTail(rep.Logs))), Event: sdk.EventUpdateRolledBack}
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
