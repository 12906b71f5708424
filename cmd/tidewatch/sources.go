package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/core/sources"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/web"
)

// gitSourcesDir is the folder under the store path that holds the clones
// of the git sources.
const gitSourcesDir = "git"

// newGitSources returns the runner of cfg's git sources
// (TIDEWATCH_GIT_<name>_URL), deploying through dep (nil: fetch and show
// drift only); nil when none is configured.
func newGitSources(cfg config.Config, st *store.Store, dep sources.Deployer, log *slog.Logger) (*sources.Runner, error) {
	var cs []sources.Config
	for _, g := range cfg.Git {
		if g.IsSource() {
			cs = append(cs, sources.Config{Source: g.Source(), Interval: g.Interval, Timeout: g.Timeout, WebhookSecret: g.WebhookSecret,
				RemoveOrphans: g.RemoveOrphans})
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

// newGitDeploy picks each source's deploying trigger (TRIGGER, else the
// only compose trigger) and returns the deployer that sends the sources'
// commits through the dispatcher's outbox to them. Without any compose
// trigger, sources are fetched and their drift shown; nil is returned.
func newGitDeploy(d *daemon, cfg config.Config, log *slog.Logger) (sources.Deployer, error) {
	var compose []loadedTrigger
	byID := map[string]loadedTrigger{}
	for _, l := range d.loaded {
		byID[l.cfg.ID()] = l
		if l.desc.Deploys && l.cfg.Type == "compose" {
			compose = append(compose, l)
		}
	}
	picked := map[string]string{}
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
			picked[src.Name] = l.cfg.ID()
		case len(compose) == 1:
			picked[src.Name] = compose[0].cfg.ID()
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
	if len(picked) == 0 || d.disp == nil {
		return nil, nil
	}
	return sources.NewOutboxDeployer(d.disp, picked, log), nil
}
