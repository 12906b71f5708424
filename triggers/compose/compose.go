package compose

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

var _ sdk.Trigger = (*Trigger)(nil)

// Trigger rolls compose services out to the images of their updates.
// Configure it once; Fire is safe for concurrent use (rollouts of one
// compose project wait for each other).
type Trigger struct {
	log   *slog.Logger
	state atomic.Pointer[state]
}

// state is what Configure sets up.
type state struct {
	name   string
	cfg    Config
	host   string // the engine's address as the rollout reaches it (cfg.DockerHost; a fault proxy in test builds)
	engine *docker.Client
	http   *http.Client
}

// New returns a compose trigger that logs with sdk.Logger: the one
// `tidewatch trigger serve compose` serves.
func New() *Trigger { return NewWithLogger(sdk.Logger()) }

// NewWithLogger returns a compose trigger that logs to log.
func NewWithLogger(log *slog.Logger) *Trigger { return &Trigger{log: log} }

// Describe returns the trigger's type and options.
func (t *Trigger) Describe(context.Context) sdk.Description {
	return sdk.Description{
		Type: "compose",
		Description: "deploys updates: rewrites the service's image in its compose file, recreates the service, " +
			"waits for health and smoke checks, and rolls back when they fail",
		Options: Options,
		Deploys: true,
	}
}

// Configure parses options, finds the compose CLI, and prepares the engine
// client (no I/O with the engine yet: an engine down now does not stop
// tidewatch from starting).
func (t *Trigger) Configure(ctx context.Context, name string, options map[string]string) error {
	cfg, err := ParseConfig(ctx, options)
	if err != nil {
		return err
	}
	host := rollout.FaultHost(cfg.DockerHost)
	engine, err := docker.New(docker.Options{Host: host, CAFile: cfg.DockerCAFile, CertFile: cfg.DockerCert, KeyFile: cfg.DockerKey})
	if err != nil {
		return sdk.Errorf(OptDockerHost, "%v", err)
	}
	if old := t.state.Swap(&state{name: name, cfg: cfg, host: host, engine: engine, http: &http.Client{}}); old != nil {
		old.engine.Close()
	}
	t.log.Debug("compose trigger configured", "trigger", name, "recreate", cfg.Recreate, "compose_cli", cfg.CLI.String(),
		"compose_version", cfg.CLI.Version, "docker_host", cfg.DockerHost, "dry_run", cfg.DryRun, "self", cfg.Self)
	return nil
}

// Fire rolls each update out in turn and returns what became of it.
func (t *Trigger) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	s := t.state.Load()
	if s == nil {
		return sdk.All(len(updates), sdk.Retry(errors.New("the compose trigger is not configured")))
	}
	out := make([]sdk.Result, len(updates))
	for i, u := range updates {
		if u.Declared != nil { // a git commit: the files say it already
			out[i] = s.declared(ctx, t.log.With("trigger", s.name, "container", u.Container), u)
			continue
		}
		out[i] = s.rollout(ctx, t.log.With("trigger", s.name, "container", u.Container, "current_tag", u.Current, "new_tag", u.Candidate), u)
	}
	return out
}
