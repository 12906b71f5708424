package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

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

// gitStatus is the git sources for the API; nil (not a nil *Runner) when
// none is configured.
func (d *daemon) gitStatus() web.GitSources {
	if d.sources == nil {
		return nil
	}
	return d.sources
}

// gitDeployer is what deploys the git sources' commits: nil for now, so
// that sources are fetched and their drift shown.
func (d *daemon) gitDeployer() sources.Deployer { return nil }
