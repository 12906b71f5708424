package compose

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tidewatch/tidewatch/core/docker/composeup"
	"github.com/tidewatch/tidewatch/triggers/composefile"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// composeUpEngine recreates the service with compose's own library, in
// process (engine mode): `up -d --no-deps <service>` as the compose CLI
// runs it, except that the previous container is renamed aside, stopped,
// instead of removed. What it did is recorded for the rollback, also when
// it fails midway.
func (r *run) composeUpEngine(ctx context.Context, archive string) (string, error) {
	t := r.target
	res, err := r.upEngine(ctx, r.cur.ID, archive)
	if err != nil {
		return "", err
	}
	if !res.Archived || len(res.Created) == 0 {
		return "", fmt.Errorf("compose left service %s as it was (%s): the file does not differ from what runs", t.Service, strings.Join(res.Steps, "; "))
	}
	return fmt.Sprintf("%s kept aside as %s; compose %s created %s from %s", short(r.cur.ID), archive, composeup.LibraryVersion(), short(res.Created[0]), r.newRef), nil
}

// upEngine runs compose's up -d --no-deps for the target's service in
// process, current (kept aside as archive; both "" for a service that does
// not run yet) replaced, and records the containers it created.
func (r *run) upEngine(ctx context.Context, current, archive string) (composeup.Result, error) {
	t, cfg := r.target, r.s.cfg
	req := composeup.Request{
		Project: composeup.Project{Name: t.Project, WorkingDir: t.WorkingDir, Files: t.Files},
		Service: t.Service, Current: current, Archive: archive,
		Auth:    registryAuth(r.u.RegistryAuth),
		Journal: r.journalEvent,
	}
	if f := cfg.Locate.EnvFile; f != "" {
		if !filepath.IsAbs(f) {
			f = filepath.Join(t.WorkingDir, f)
		}
		req.Project.EnvFiles = []string{f}
	}
	if maps := cfg.Locate.PathMap; len(maps) > 0 {
		req.HostPath = func(local string) string { return hostPath(maps, local) }
	}
	res, err := composeup.Up(ctx, composeup.Options{Host: r.s.host, CAFile: cfg.DockerCAFile, CertFile: cfg.DockerCert, KeyFile: cfg.DockerKey}, req)
	r.created = append(r.created, res.Created...)
	return res, err
}

// journalEvent writes what compose's guard is about to do, or did, into
// the rollout's record: a container created, the previous one about to be
// stopped (a stop may outlive the rollout).
func (r *run) journalEvent(e composeup.Event) error {
	r.mu.Lock()
	switch e.Kind {
	case composeup.EventCreated:
		r.rec.AddContainer(rollout.Container{Role: rollout.RoleNew, ID: e.ID})
	case composeup.EventStopping:
		r.markPrevious(func(c *rollout.Container) { c.StopRequested = true })
	case composeup.EventArchiving:
		// The archive's name is in the record since prepare.
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	return r.save()
}

// hostPath maps a local path back to the engine host's (PATH_MAP read
// backwards); a path under no local prefix is returned as it is.
func hostPath(maps []composefile.PathMapping, local string) string {
	local = filepath.Clean(local)
	best := -1
	for i, m := range maps {
		if local == m.Local || strings.HasPrefix(local, strings.TrimSuffix(m.Local, "/")+"/") {
			if best < 0 || len(m.Local) > len(maps[best].Local) {
				best = i
			}
		}
	}
	if best < 0 {
		return local
	}
	return filepath.Join(maps[best].Host, strings.TrimPrefix(local, maps[best].Local))
}
