package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/core/sources"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/web"
)

// gitSourcesDir is the folder under the store path that holds the clones
// of the git sources.
const gitSourcesDir = "git"

// newGitSources returns the runner of cfg's git sources
// (TIDEWATCH_GIT_<name>_URL), deploying through dep (nil: fetch and show
// drift only); nil when none is configured.
func newGitSources(cfg config.Config, st *store.Store, deploy *gitDeploy, log *slog.Logger) (*sources.Runner, error) {
	var dep sources.Deployer
	if deploy != nil {
		dep = deploy
	}
	var cs []sources.Config
	for _, g := range cfg.Git {
		if g.IsSource() {
			cs = append(cs, sources.Config{Source: g.Source(), Interval: g.Interval, Timeout: g.Timeout, WebhookSecret: g.WebhookSecret})
		}
	}
	if len(cs) == 0 {
		return nil, nil
	}
	r, err := sources.New(cs, filepath.Join(cfg.Store.Path, gitSourcesDir), st.GitState(), st, dep, log)
	if err != nil {
		return nil, fmt.Errorf("TIDEWATCH_GIT_<name>_URL: %w", err)
	}
	return r, nil
}

// synced takes a git source's sync: the UI's event stream.
func (d *daemon) synced(source string, res sources.Result) {
	d.events.Publish(web.Event{Type: web.EventGit, Data: map[string]any{"source": source, "result": res.Outcome, "commit": res.Commit}})
}

// gitStatus is the git sources for the API; nil (not a nil *Runner) when
// none is configured.
func (d *daemon) gitStatus() web.GitSources {
	if d.sources == nil {
		return nil
	}
	return d.sources
}

// gitDeploy deploys the commits of the git sources through their deploying
// triggers: per compose project the commit changed, one declared update
// (sdk.Declared: the files are already written) per service to bring up,
// fired at the trigger directly, one at a time. A failure stops the deploy:
// the trigger rolled its service back (the previous files and container);
// the services deployed before it in the same commit are brought back to
// the previous files too. Each service's outcome is written to the history,
// and a failure is told to the notifying triggers that listen for it.
type gitDeploy struct {
	d        *daemon
	triggers map[string]loadedTrigger // by source
	log      *slog.Logger
}

var _ sources.Deployer = (*gitDeploy)(nil)

// newGitDeploy picks each source's deploying trigger: TRIGGER, else the
// only compose trigger. Without any compose trigger, sources are fetched
// and their drift shown; nil is returned.
func newGitDeploy(d *daemon, cfg config.Config, log *slog.Logger) (*gitDeploy, error) {
	var compose []loadedTrigger
	byID := map[string]loadedTrigger{}
	for _, l := range d.loaded {
		byID[l.cfg.ID()] = l
		if l.desc.Deploys && l.cfg.Type == "compose" {
			compose = append(compose, l)
		}
	}
	g := &gitDeploy{d: d, triggers: map[string]loadedTrigger{}, log: log.With("component", "git")}
	var es []error
	for _, src := range cfg.Git {
		if !src.IsSource() {
			continue
		}
		variable := "TIDEWATCH_GIT_" + strings.ToUpper(src.Name) + "_TRIGGER"
		switch {
		case src.Trigger != "":
			l, ok := byID[src.Trigger]
			if !ok || !l.desc.Deploys || l.cfg.Type != "compose" {
				// Only the compose trigger deploys declared files (sdk.Declared).
				es = append(es, fmt.Errorf("%s=%s: no such trigger that deploys is configured (or it did not start); expected a compose trigger", variable, src.Trigger))
				continue
			}
			g.triggers[src.Name] = l
		case len(compose) == 1:
			g.triggers[src.Name] = compose[0]
		case len(compose) > 1:
			es = append(es, fmt.Errorf("%s: several compose triggers deploy; name the one for git source %s", variable, src.Name))
		default:
			log.Warn("git source without a compose trigger: it is fetched and its drift shown, nothing is deployed", "source", src.Name,
				"hint", "configure a compose trigger (TIDEWATCH_TRIGGER_COMPOSE_<name>_*)")
		}
	}
	if err := errors.Join(es...); err != nil {
		return nil, err
	}
	if len(g.triggers) == 0 {
		return nil, nil
	}
	return g, nil
}

// Deploy rolls the commit's changed services out.
func (g *gitDeploy) Deploy(ctx context.Context, dep sources.Deploy) error {
	l, ok := g.triggers[dep.Source]
	if !ok {
		return fmt.Errorf("git source %s has no trigger that deploys", dep.Source)
	}
	projects, err := dep.Projects()
	if err != nil {
		return fmt.Errorf("reading the compose projects of commit %s: %w", shortCommit(dep.Commit), err)
	}
	var done []sdk.Update // deployed so far, to bring back on a failure
	for _, p := range projects {
		if len(p.Removed) > 0 {
			g.log.Warn("services removed from git are left running; remove them by hand", "source", dep.Source, "project", p.Name, "services", p.Removed)
		}
		for _, svc := range p.Up {
			u := g.update(dep, p, svc)
			res := g.fire(ctx, l, u)
			g.recorded(ctx, l, u, res)
			if res.Err == nil {
				done = append(done, u)
				continue
			}
			err := fmt.Errorf("%s/%s: %w", p.Name, svc, res.Err)
			if len(done) > 0 {
				err = errors.Join(err, g.revert(ctx, l, dep, done))
			}
			return err
		}
	}
	return nil
}

// update is the declared update of service svc of p.
func (g *gitDeploy) update(dep sources.Deploy, p sources.Project, svc string) sdk.Update {
	decl := &sdk.Declared{Source: dep.Source, Commit: dep.Commit, Project: p.Name, WorkingDir: p.Dir, Files: p.Files, Service: svc}
	for _, f := range p.Previous {
		decl.Previous = append(decl.Previous, sdk.FileChange{Path: f.Path, Backup: f.Backup})
	}
	return sdk.Update{
		Key:   fmt.Sprintf("git-%s-%s-%s-%s", dep.Source, shortCommit(dep.Commit), p.Name, svc),
		Event: sdk.EventUpdateAvailable, Container: p.Name + "/" + svc, ContainerName: p.Name + "/" + svc,
		Current: shortCommit(dep.Previous), Candidate: shortCommit(dep.Commit), Kind: "git", DetectedAt: time.Now().UTC(),
		Labels:    map[string]string{labelComposeProject: p.Name, labelComposeService: svc},
		Principal: "git:" + dep.Source, Declared: decl,
	}
}

// fire fires one update at the trigger within its deadline.
func (g *gitDeploy) fire(ctx context.Context, l loadedTrigger, u sdk.Update) sdk.Result {
	deadline := l.cfg.Policy.Deadline
	if deadline <= 0 || !l.cfg.Policy.DeadlineSet {
		deadline = core.DefaultDeployDeadline
	}
	fctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	return l.plugin.Fire(fctx, []sdk.Update{u})[0]
}

// revert brings the services deployed before a failure back to the files of
// the previous commit (put back by the failed service's rollback, or here).
func (g *gitDeploy) revert(ctx context.Context, l loadedTrigger, dep sources.Deploy, done []sdk.Update) error {
	var es []error
	for _, u := range done {
		for _, p := range u.Declared.Previous {
			if p.Backup == "" {
				continue
			}
			if b, err := os.ReadFile(p.Backup); err == nil {
				err = os.WriteFile(p.Path, b, 0o644)
				if err != nil {
					es = append(es, err)
				}
			}
		}
		if dep.Previous == "" || dep.Backups == "" {
			es = append(es, fmt.Errorf("%s was deployed and is left running: what ran before it is unknown", u.Container))
			continue
		}
		back := u
		back.Key += "-revert"
		back.Current, back.Candidate = u.Candidate, u.Current
		d := *u.Declared
		d.Commit, d.Previous = dep.Previous, nil
		back.Declared = &d
		res := g.fire(ctx, l, back)
		g.recorded(ctx, l, back, res)
		if res.Err != nil {
			es = append(es, fmt.Errorf("bringing %s back to commit %s: %w", u.Container, shortCommit(dep.Previous), res.Err))
		}
	}
	return errors.Join(es...)
}

// recorded writes a service's outcome to the history and tells the
// notifying triggers that listen for a failure.
func (g *gitDeploy) recorded(ctx context.Context, l loadedTrigger, u sdk.Update, res sdk.Result) {
	event := core.EventUpdateApplied
	if res.Rollout != nil {
		event = core.Outcome(res.Rollout.Outcome).Event()
	}
	if e, err := core.ParseEvent(res.Event); err == nil && e.Status() != "" {
		event = e
	}
	if res.Err != nil && event == core.EventUpdateApplied {
		event = core.EventUpdateFailed
	}
	detail := "commit " + u.Candidate + " of git source " + u.Declared.Source
	if res.Rollout != nil {
		detail += ": " + rolloutSummary(res.Rollout)
	}
	if res.Err != nil {
		detail += ": " + res.Err.Error()
	}
	host := ""
	if ws := l.cfg.Policy.Watchers; len(ws) == 1 {
		host = ws[0]
	}
	e := store.Event{Host: host, Container: u.Container, Kind: string(event), From: u.Current, To: u.Candidate,
		Trigger: l.cfg.ID(), Principal: u.Principal, Detail: detail}
	if res.Rollout != nil {
		e.Image = res.Rollout.To
	}
	if err := g.d.st.AddEvent(context.WithoutCancel(ctx), e); err != nil {
		g.log.Error("recording a git deploy in the history", "error", err)
	}
	if res.Err == nil {
		return
	}
	n := u
	n.Event, n.Detail, n.Declared, n.Labels = string(event), detail, nil, nil
	for _, t := range g.d.loaded {
		if t.desc.Deploys || !t.cfg.Policy.Auto || !t.cfg.Policy.Hears(event) {
			continue
		}
		deadline := t.cfg.Policy.Deadline
		if deadline <= 0 {
			deadline = core.DefaultDeadline
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deadline)
		r := t.plugin.Fire(fctx, []sdk.Update{n})[0]
		cancel()
		if r.Err != nil {
			g.log.Error("telling a trigger of a failed git deploy", "trigger", t.cfg.ID(), "error", r.Err)
		}
	}
}

// rolloutSummary is a rollout's outcome, what it ran and its steps, in a line.
func rolloutSummary(r *sdk.Rollout) string {
	var steps []string
	for _, s := range r.Steps {
		st := fmt.Sprintf("%s %dms", s.Name, s.Duration.Milliseconds())
		if s.Error != "" {
			st += " (failed)"
		}
		steps = append(steps, st)
	}
	out := r.Outcome
	if r.To != "" {
		out += " " + r.To
	}
	return out + " [" + strings.Join(steps, ", ") + "]"
}
