package compose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/composefile"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// ArchiveSuffix is appended to a container's name while it is kept aside
// during an engine-mode rollout.
const ArchiveSuffix = "-tidewatch-old"

// Compose labels read besides those composefile reads.
const (
	labelOneOff = "com.docker.compose.oneoff"
)

// ErrSelf is the reason an update of tidewatch's own container is refused.
var ErrSelf = errors.New("this is tidewatch's own container, which it cannot recreate from inside without stopping itself; " +
	"update it from outside: pull the new image and recreate the container (docker compose pull tidewatch && docker compose up -d tidewatch)")

// rolloutMargin is the time kept at the end of a Fire's deadline to return
// the result before tidewatch cuts the plugin off.
const rolloutMargin = 500 * time.Millisecond

// run is one update's rollout.
type run struct {
	s   *state
	log *slog.Logger
	u   sdk.Update
	rep *Report

	cur      docker.State          // the container that ran before
	target   *composefile.Target   // where its image is set
	change   *composefile.Change   // the rewrite; nil when the file already names the new image
	newRef   string                // the new image reference, as compose resolves it
	newImage string                // its local image ID, after the pull
	created  []string              // containers the rollout created (engine) or compose made (cli)
	failed   *docker.NotReadyError // the gate's failure, for the logs

	journal *rollout.Journal // where the project's rollout record and lock are
	key     string           // the project's key in it
	lock    *rollout.Lock    // held from the lock step on

	mu  sync.Mutex      // guards rec: compose's guard reports from its own goroutines
	rec *rollout.Record // what the rollout changes, written before it acts; nil before the write step
}

// rollout rolls u out and reports how it went.
func (s *state) rollout(ctx context.Context, log *slog.Logger, u sdk.Update) sdk.Result {
	if u.Event == sdk.EventUpdateFailed && u.Declared == nil {
		// Its rollout failed and left its record: finish it (settle.go).
		return s.settle(ctx, log, u)
	}
	r := &run{s: s, log: log, u: u, rep: &Report{Recreate: s.cfg.Recreate}}
	if u.Event != "" && u.Event != sdk.EventUpdateAvailable {
		r.rep.Outcome, r.rep.Reason = OutcomeRefused, fmt.Sprintf("%s is not a rollout event; the compose trigger rolls out update-available (and settles an update-failed rollout's record)", u.Event)
		return sdk.Result{Err: sdk.Permanent(errors.New(r.rep.Reason)), Rollout: r.rep.Rollout()}
	}
	// The forward steps end early enough to leave the rollback its time
	// within ctx's deadline.
	fwd, cancel, after := s.budget(ctx)
	defer cancel()
	res := r.forward(fwd, after)
	log.Info("compose rollout finished", "outcome", r.rep.Outcome, "failed_step", r.rep.FailedStep, "reason", r.rep.Reason, "project", r.rep.Project, "service", r.rep.Service)
	res.Rollout = r.rep.Rollout()
	return res
}

// forward runs the steps; after gives the context of the rollback and the
// cleanup, which must run even when ctx is done.
func (r *run) forward(ctx context.Context, after func() (context.Context, context.CancelFunc)) sdk.Result {
	s, rep := r.s, r.rep
	if err := rep.step(StepInspect, func() (string, error) { return r.inspect(ctx, s.cfg.DryRun) }); err != nil {
		return r.refused(ctx, err)
	}
	if s.cfg.DryRun {
		if err := rep.step(StepLocate, func() (string, error) { return r.locate() }); err != nil {
			return r.refused(ctx, err)
		}
		rep.Outcome, rep.Plan = OutcomeDryRun, r.plan()
		if r.change != nil {
			rep.Diff = r.change.Diff
		}
		return sdk.OK("")
	}

	err := rep.step(StepLock, func() (string, error) {
		began := time.Now()
		var err error
		if r.journal, r.key, err = r.openJournal(); err != nil {
			return "", err
		}
		if r.lock, err = r.journal.Lock(ctx, r.key); err != nil {
			return "", fmt.Errorf("waiting for the project's other rollout: %w", err)
		}
		if time.Since(began) < 50*time.Millisecond {
			return "", nil
		}
		// Another rollout ran meanwhile: the container may be another now.
		_, err = r.inspect(ctx, false)
		return fmt.Sprintf("waited %s for another rollout of the project", time.Since(began).Round(time.Millisecond)), err
	})
	if err != nil {
		return r.refused(ctx, err)
	}
	defer r.lock.Unlock()

	atGate := false
	rec, err := r.journal.Load(r.key)
	if err != nil {
		rep.Outcome = OutcomeFailed
		return sdk.Result{Err: sdk.Permanent(fmt.Errorf("an earlier rollout of the project left a record that cannot be read: %w", err)), Event: sdk.EventUpdateFailed}
	}
	if rec != nil {
		actx, cancel := after()
		res, settled, gate := r.resume(actx, rec)
		cancel()
		if settled {
			return res
		}
		atGate = gate
	}
	if !atGate {
		if _, err := r.inspect(ctx, true); err != nil {
			return r.refused(ctx, err)
		}
	}

	rollout.Fault("locate:before")
	if err := rep.step(StepLocate, func() (string, error) { return r.locate() }); err != nil {
		return r.refused(ctx, err)
	}
	rollout.Fault("locate:after")
	var failed error
	if !atGate {
		if res, ok := r.pulled(ctx); !ok {
			return res
		}
		if r.change == nil && r.newImage == r.cur.ImageID && r.cur.Running {
			rep.Outcome, rep.Container = OutcomeAlreadyApplied, r.cur.ID
			return sdk.Result{Event: sdk.EventUpdateApplied}
		}
		if err := rep.step(StepWrite, func() (string, error) { return r.write() }); err != nil {
			rep.Outcome = OutcomeFailed
			r.writeFailed()
			return sdk.Result{Err: sdk.Permanent(fmt.Errorf("rewriting %s failed; nothing was changed: %w", rep.File, err)), Event: sdk.EventUpdateFailed}
		}
		failed = rep.step(StepRecreate, func() (string, error) { return r.recreate(ctx) })
	}
	failed = r.checked(ctx, failed)

	actx, cancel := after()
	defer cancel()
	if failed != nil {
		return r.rollback(actx)
	}
	return r.applied(actx)
}

// refused reports a failure before anything was changed: permanent when
// err says so, else to be retried.
func (r *run) refused(ctx context.Context, err error) sdk.Result {
	if sdk.IsPermanent(err) {
		r.rep.Outcome = OutcomeRefused
		return sdk.Result{Err: err}
	}
	r.rep.Outcome = OutcomeFailed
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, ctx.Err())
	}
	return sdk.Retry(err)
}

// inspect finds the container the update is for (by ID, or, when that one
// is gone, the service's current one by its compose labels) and refuses
// tidewatch's own. A container kept aside by a rollout (named
// <name>-tidewatch-old) is never taken for the service's: the service's
// other container is; when there is none, it is kept for its labels only
// (to find the project's record), and refused when final is set (no record
// said whose it is).
func (r *run) inspect(ctx context.Context, final bool) (string, error) {
	engine := r.s.engine
	cur, err := engine.InspectState(ctx, r.u.ContainerID)
	if errors.Is(err, core.ErrNotFound) || (err == nil && strings.HasSuffix(cur.Name, ArchiveSuffix)) {
		aside := err == nil
		labels := r.u.Labels
		if aside {
			labels = cur.Labels
		}
		project, service := labels[composefile.LabelProject], labels[composefile.LabelService]
		if project == "" || service == "" {
			return "", sdk.Permanent(fmt.Errorf("container %s (%s) is gone", r.u.Container, short(r.u.ContainerID)))
		}
		found, ferr := r.serviceContainers(ctx, project, service)
		switch {
		case ferr != nil:
			return "", ferr
		case len(found) > 0:
			cur, err = found[0], nil
		case aside && final:
			return "", sdk.Permanent(fmt.Errorf("container %s (%s) was kept aside by a rollout that did not finish, and no rollout record says whose it is: "+
				"remove it, or rename it back to %s, first", cur.Name, short(cur.ID), strings.TrimSuffix(cur.Name, ArchiveSuffix)))
		case !aside:
			return "", sdk.Permanent(fmt.Errorf("container %s (%s) is gone and service %s of project %s has no container", r.u.Container, short(r.u.ContainerID), service, project))
		}
	}
	if err != nil {
		return "", err
	}
	if rollout.IsSelf(r.s.cfg.Self, cur.ID, cur.Name) {
		return "", sdk.Permanent(ErrSelf)
	}
	r.cur = cur
	r.rep.From = cur.Image
	r.rep.Project, r.rep.Service = cur.Labels[composefile.LabelProject], cur.Labels[composefile.LabelService]
	return fmt.Sprintf("%s (%s) runs %s", cur.Name, short(cur.ID), cur.Image), nil
}

// serviceContainers returns the containers of a compose service (not those
// of `compose run`, nor one kept aside by a rollout), running ones first,
// newest first.
func (r *run) serviceContainers(ctx context.Context, project, service string) ([]docker.State, error) {
	all, err := r.allContainers(ctx, project, service)
	if err != nil {
		return nil, err
	}
	var running, other []docker.State
	for _, c := range all {
		if strings.HasSuffix(c.Name, ArchiveSuffix) {
			continue
		}
		if c.Running {
			running = append(running, c)
		} else {
			other = append(other, c)
		}
	}
	return append(running, other...), nil
}

// allContainers returns every container of a compose service, kept aside or
// not, but those of `compose run`, newest first.
func (r *run) allContainers(ctx context.Context, project, service string) ([]docker.State, error) {
	all, err := r.s.engine.FindContainers(ctx, map[string]string{composefile.LabelProject: project, composefile.LabelService: service})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(c docker.State) bool { return strings.EqualFold(c.Labels[labelOneOff], "true") }), nil
}

// lockKey names the project for the one-rollout-at-a-time lock and its
// record: the project's name first, so that the record's file says whose it is.
func (r *run) lockKey() string {
	l := r.cur.Labels
	if p := l[composefile.LabelProject]; p != "" {
		return p + "|" + r.s.cfg.DockerHost + "|" + l[composefile.LabelWorkingDir]
	}
	return r.cur.Name + "|" + r.s.cfg.DockerHost + "|" + r.s.cfg.Locate.File
}

// openJournal returns the journal of the project's rollouts and the
// project's key in it: in STATE_DIR, else in the project's folder (its
// working dir, as tidewatch sees it; with FILE, the first file's folder).
func (r *run) openJournal() (*rollout.Journal, string, error) {
	dir := r.s.cfg.StateDir
	if dir == "" {
		if wd := r.cur.Labels[composefile.LabelWorkingDir]; wd != "" && r.s.cfg.Locate.File == "" {
			dir = composefile.Map(r.s.cfg.Locate.PathMap, wd)
		} else if files := strings.Split(r.s.cfg.Locate.File, ","); strings.TrimSpace(files[0]) != "" {
			dir = filepath.Dir(strings.TrimSpace(files[0]))
		}
	}
	if dir == "" {
		return nil, "", sdk.Permanent(fmt.Errorf("container %s names no compose project folder (label %s) to keep its rollout record in; set FILE or STATE_DIR", r.cur.Name, composefile.LabelWorkingDir))
	}
	j, err := rollout.NewJournal(dir)
	if err != nil {
		return nil, "", err
	}
	return j, r.lockKey(), nil
}

// targetName is what the record calls the target: project/service.
func (r *run) targetName() string {
	return r.cur.Labels[composefile.LabelProject] + "/" + r.cur.Labels[composefile.LabelService]
}

// locate finds the file and plans the rewrite.
func (r *run) locate() (string, error) {
	t, err := composefile.Locate(r.cur.Labels, r.s.cfg.Locate)
	if err != nil {
		return "", sdk.Permanent(fmt.Errorf("locating the compose file of %s: %w", r.cur.Name, err))
	}
	if src, ok := composefile.InGitSource(t.File); ok {
		return "", sdk.Permanent(fmt.Errorf("%s lies in tidewatch's clone of git source %s, whose repository says what runs here (a rewrite would be undone by its next sync): commit the new image there", t.File, src))
	}
	if r.u.Image != "" {
		if err := t.CheckRepository(r.u.Image); err != nil {
			return "", sdk.Permanent(fmt.Errorf("the update is for %s: %w", r.u.Image, err))
		}
	}
	r.target = t
	r.rep.Project, r.rep.Service = t.Project, t.Service
	newDigest := ""
	if t.Digest != "" {
		newDigest = r.u.CandidateDigest
	}
	c, err := t.Plan(r.u.Candidate, newDigest)
	switch {
	case errors.Is(err, composefile.ErrNoChange):
		r.change, r.newRef = nil, imageRef(t.Repository, t.Tag, t.Digest)
		r.rep.File, r.rep.To = t.File, r.newRef
		note := fmt.Sprintf("%s already names %s", t.File, r.newRef)
		if r.cur.Image != r.newRef {
			note += fmt.Sprintf("; the service still runs %s: a rollback sets it back in the file", r.cur.Image)
		}
		return note, nil
	case err != nil:
		return "", sdk.Permanent(fmt.Errorf("planning the rewrite of %s: %w", t.File, err))
	}
	r.change, r.newRef = c, c.NewImage
	r.rep.File, r.rep.To = c.Path, c.NewImage
	note := fmt.Sprintf("%s: %s → %s", c.Path, c.OldImage, c.NewImage)
	if len(c.Shared) > 0 {
		note += fmt.Sprintf(" (also the image of %s, which share the value)", strings.Join(c.Shared, ", "))
	}
	return note, nil
}

// imageRef joins a repository, tag and digest into a reference.
func imageRef(repo, tag, digest string) string {
	ref := repo
	if tag != "" {
		ref += ":" + tag
	}
	if digest != "" {
		ref += "@" + digest
	}
	return ref
}

// pull pulls the new image, with the credentials tidewatch reads its
// registry with, and remembers its ID.
func (r *run) pull(ctx context.Context) (string, error) {
	if err := r.s.engine.Pull(ctx, r.newRef, registryAuth(r.u.RegistryAuth)); err != nil {
		return "", err
	}
	id, err := r.s.engine.ImageID(ctx, r.newRef)
	if err != nil {
		return "", err
	}
	r.newImage = id
	return fmt.Sprintf("%s is %s", r.newRef, short(strings.TrimPrefix(id, "sha256:"))), nil
}

// registryAuth is the update's credentials as the engine adapter takes
// them; the zero value (anonymous) for none.
func registryAuth(a *sdk.RegistryAuth) core.RegistryAuth {
	if a == nil {
		return core.RegistryAuth{}
	}
	return core.RegistryAuth{Server: a.Server, Username: a.Username, Password: core.Secret(a.Password),
		IdentityToken: core.Secret(a.IdentityToken), RegistryToken: core.Secret(a.RegistryToken)}
}

// write records what the rollout will change, then rewrites the file,
// keeping a backup that the record names before the file is touched.
func (r *run) write() (string, error) {
	if err := r.prepare(); err != nil {
		return "", err
	}
	rollout.Fault("write:before")
	if r.change == nil {
		if err := r.setPhase(rollout.PhaseApplying); err != nil {
			return "", err
		}
		return "the file already names the new image", nil
	}
	b, err := r.change.ApplyWith(r.s.cfg.Backups, func(b composefile.Backup) error {
		r.mu.Lock()
		r.rec.Files[0].Path, r.rec.Files[0].Backup = b.File, b.Path
		r.rec.Phase = rollout.PhaseApplying
		r.mu.Unlock()
		return r.save()
	})
	if b.Path != "" {
		r.rep.Backup = b.Path
	}
	if err != nil {
		return "", err
	}
	rollout.Fault("write:after")
	return "backup " + b.Path, nil
}

// recreate recreates the service with the new image.
func (r *run) recreate(ctx context.Context) (string, error) {
	if r.s.cfg.Recreate == RecreateCLI {
		return r.recreateCLI(ctx)
	}
	return r.recreateEngine(ctx)
}

func (r *run) recreateCLI(ctx context.Context) (string, error) {
	// The CLI stops the previous container: a stop it asked for may
	// outlive it (see undo).
	r.mu.Lock()
	r.markPrevious(func(c *rollout.Container) { c.StopRequested = true })
	r.mu.Unlock()
	if err := r.save(); err != nil {
		return "", err
	}
	if err := r.composeUp(ctx); err != nil {
		return "", err
	}
	found, err := r.serviceContainers(ctx, r.target.Project, r.target.Service)
	if err != nil {
		return "", err
	}
	for _, c := range found {
		r.created = append(r.created, c.ID)
	}
	if len(found) == 0 {
		return "", fmt.Errorf("%s up left no container for service %s", r.s.cfg.CLI, r.target.Service)
	}
	return fmt.Sprintf("%s up -d --no-deps %s: container %s", r.s.cfg.CLI, r.target.Service, short(found[0].ID)), nil
}

// composeUp runs the CLI's up for the service, against the configured
// engine, tied to this process (see rollout.RunTied) and holding the
// project's lock until it ends, its process group in the record.
func (r *run) composeUp(ctx context.Context) error {
	env, cleanup, err := r.s.cliEnv(r.u.RegistryAuth)
	if err != nil {
		return err
	}
	defer cleanup()
	return r.s.cfg.CLI.up(ctx, r.target, r.s.cfg.Locate.EnvFile, env, r.lock.File(), func(p rollout.Process) {
		r.mu.Lock()
		r.rec.Processes = append(r.rec.Processes, p)
		r.mu.Unlock()
		if err := r.save(); err != nil {
			r.log.Warn("recording the compose CLI's process", "error", err)
		}
	})
}

func (r *run) recreateEngine(ctx context.Context) (string, error) {
	e, cur := r.s.engine, r.cur
	if strings.HasSuffix(cur.Name, ArchiveSuffix) {
		return "", fmt.Errorf("container %s is kept aside by a rollout; it is never kept aside again", cur.Name)
	}
	archive := cur.Name + ArchiveSuffix
	if _, err := e.InspectState(ctx, archive); err == nil {
		return "", fmt.Errorf("a container named %s exists, kept aside by a rollout that did not finish: remove it (or rename it back) first", archive)
	} else if !errors.Is(err, core.ErrNotFound) {
		return "", err
	}
	return r.composeUpEngine(ctx, archive)
}

// gate waits until every new container runs and is healthy (or stable).
func (r *run) gate(ctx context.Context) (string, error) {
	rollout.Fault("health:before")
	defer rollout.Fault("health:after")
	var notes []string
	for _, id := range r.created {
		st, err := r.s.engine.WaitHealthy(ctx, id, docker.WaitOptions{Timeout: r.s.cfg.HealthTimeout, StableFor: r.s.cfg.StableFor})
		if err != nil {
			var nr *docker.NotReadyError
			if errors.As(err, &nr) {
				r.failed = nr
			} else {
				r.failed = &docker.NotReadyError{ID: id, Reason: err.Error()}
			}
			return "", err
		}
		if st.ImageID != r.newImage {
			r.failed = &docker.NotReadyError{ID: id, Reason: "runs image " + short(st.ImageID), State: st}
			return "", fmt.Errorf("container %s runs %s (image %s), not %s (image %s): compose did not use the rewritten file", short(id), st.Image, short(st.ImageID), r.newRef, short(r.newImage))
		}
		if st.Healthcheck {
			notes = append(notes, short(id)+" healthy")
		} else {
			notes = append(notes, fmt.Sprintf("%s running for %s (no healthcheck)", short(id), r.s.cfg.StableFor))
		}
	}
	return strings.Join(notes, "; "), nil
}

// smoke runs the smoke checks.
func (r *run) smoke(ctx context.Context) (string, error) {
	for _, u := range r.s.cfg.SmokeHTTP {
		if err := rollout.SmokeHTTP(ctx, r.s.http, u, r.s.cfg.HealthTimeout); err != nil {
			return "", err
		}
	}
	for _, a := range r.s.cfg.SmokeTCP {
		if err := rollout.SmokeTCP(ctx, a, r.s.cfg.HealthTimeout); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d HTTP, %d TCP checks passed", len(r.s.cfg.SmokeHTTP), len(r.s.cfg.SmokeTCP)), nil
}

// plan says what a rollout would do, for dry runs.
func (r *run) plan() []string {
	cfg, cur := r.s.cfg, r.cur
	steps := []string{"pull " + r.newRef}
	if r.change != nil {
		steps = append(steps, fmt.Sprintf("rewrite %s (%s → %s), keeping a backup (the last %d)", r.change.Path, r.change.OldImage, r.change.NewImage, cfg.Backups))
	} else {
		steps = append(steps, fmt.Sprintf("leave %s: it already names %s", r.target.File, r.newRef))
	}
	if cfg.Recreate == RecreateCLI {
		steps = append(steps, fmt.Sprintf("run %s %s up -d --no-deps %s in %s", cfg.CLI, strings.Join(projectArgs(r.target, cfg.Locate.EnvFile), " "), r.target.Service, r.target.WorkingDir))
	} else {
		steps = append(steps, fmt.Sprintf("recreate %s from %s with compose's own library, as up -d --no-deps %s does, except that %s is renamed to %s%s and stopped, not removed; start it", r.target.Service, r.newRef, r.target.Service, cur.Name, cur.Name, ArchiveSuffix))
	}
	steps = append(steps, fmt.Sprintf("wait until it runs and is healthy (without healthcheck: runs %s without restarting), within %s", cfg.StableFor, cfg.HealthTimeout))
	for _, u := range cfg.SmokeHTTP {
		steps = append(steps, "smoke: GET "+u+" answers 2xx")
	}
	for _, a := range cfg.SmokeTCP {
		steps = append(steps, "smoke: "+a+" accepts TCP")
	}
	steps = append(steps, fmt.Sprintf("on failure: restore the file from its backup, bring back %s on %s, and report the last %d log lines", cur.Name, cur.Image, cfg.LogLines))
	if cfg.Recreate == RecreateEngine {
		steps = append(steps, "on success: remove "+cur.Name+ArchiveSuffix)
	}
	if cfg.Prune {
		steps = append(steps, "on success: remove the image "+cur.Image)
	}
	return steps
}

// cliEnv returns the environment that points the compose CLI at the
// configured engine, with auth's credentials when not nil, and a cleanup for
// the folders it may make.
func (s *state) cliEnv(auth *sdk.RegistryAuth) (env []string, cleanup func(), err error) {
	env = []string{"DOCKER_HOST=" + s.host}
	var dirs []string
	cleanup = func() {
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	}
	if auth != nil {
		dir, err := writeDockerConfig(registryAuth(auth))
		if err != nil {
			return nil, nil, err
		}
		dirs = append(dirs, dir)
		env = append(env, "DOCKER_CONFIG="+dir)
	}
	if s.cfg.DockerCAFile == "" && s.cfg.DockerCert == "" {
		return env, cleanup, nil
	}
	// The CLIs take TLS files from one folder, under fixed names.
	dir, err := os.MkdirTemp("", "tidewatch-compose-tls-")
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("preparing TLS files for the compose CLI: %w", err)
	}
	dirs = append(dirs, dir)
	for name, src := range map[string]string{"ca.pem": s.cfg.DockerCAFile, "cert.pem": s.cfg.DockerCert, "key.pem": s.cfg.DockerKey} {
		if src == "" {
			continue
		}
		abs, err := filepath.Abs(src)
		if err == nil {
			err = os.Symlink(abs, filepath.Join(dir, name))
		}
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("preparing TLS files for the compose CLI: %w", err)
		}
	}
	return append(env, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH="+dir), cleanup, nil
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
