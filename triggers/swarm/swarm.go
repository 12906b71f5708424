package swarm

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

var _ sdk.Trigger = (*Trigger)(nil)

// Trigger rolls Swarm services out to the images of their updates.
// Configure it once; Fire is safe for concurrent use (rollouts of one
// service wait for each other).
type Trigger struct {
	log   *slog.Logger
	state atomic.Pointer[state]
}

// state is what Configure sets up.
type state struct {
	name   string
	cfg    Config
	engine *docker.Client
}

// New returns a swarm trigger that logs with sdk.Logger: the one
// `tidewatch trigger serve swarm` serves.
func New() *Trigger { return NewWithLogger(sdk.Logger()) }

// NewWithLogger returns a swarm trigger that logs to log.
func NewWithLogger(log *slog.Logger) *Trigger { return &Trigger{log: log} }

// Describe returns the trigger's type and options.
func (t *Trigger) Describe(context.Context) sdk.Description {
	return sdk.Description{
		Type: "swarm",
		Description: "deploys updates of Swarm services: updates the service to the new image pinned by digest, with registry " +
			"credentials for every node, lets the engine roll the tasks and roll back, waits for the outcome and keeps stack files true",
		Options: Options,
		Deploys: true,
	}
}

// Configure parses options and prepares the engine client (no I/O with the
// engine yet: a manager down now does not stop tidewatch from starting).
func (t *Trigger) Configure(ctx context.Context, name string, options map[string]string) error {
	cfg, err := ParseConfig(options)
	if err != nil {
		return err
	}
	engine, err := docker.New(docker.Options{Host: cfg.DockerHost, CAFile: cfg.DockerCAFile, CertFile: cfg.DockerCert, KeyFile: cfg.DockerKey})
	if err != nil {
		return sdk.Errorf(OptDockerHost, "%v", err)
	}
	if old := t.state.Swap(&state{name: name, cfg: cfg, engine: engine}); old != nil {
		old.engine.Close()
	}
	t.log.Debug("swarm trigger configured", "trigger", name, "docker_host", cfg.DockerHost, "failure_action", cfg.Defaults.FailureAction,
		"monitor", cfg.Defaults.Monitor.String(), "order", cfg.Defaults.Order, "paused", cfg.Paused, "dry_run", cfg.DryRun)
	return nil
}

// Fire rolls each update out in turn and returns what became of it.
func (t *Trigger) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	s := t.state.Load()
	if s == nil {
		return sdk.All(len(updates), sdk.Retry(errors.New("the swarm trigger is not configured")))
	}
	out := make([]sdk.Result, len(updates))
	for i, u := range updates {
		out[i] = s.rollout(ctx, t.log.With("trigger", s.name, "container", u.Container, "current_tag", u.Current, "new_tag", u.Candidate), u)
	}
	return out
}
