package docker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"

	engine "github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

var _ sdk.Trigger = (*Trigger)(nil)

// Trigger rolls plain containers out to the images of their updates.
// Configure it once; Fire is safe for concurrent use (rollouts of one
// container wait for each other).
type Trigger struct {
	log   *slog.Logger
	state atomic.Pointer[state]
}

// state is what Configure sets up.
type state struct {
	name   string
	cfg    Config
	engine *engine.Client
	http   *http.Client
}

// New returns a docker trigger that logs with sdk.Logger: the one
// `tidewatch trigger serve docker` serves.
func New() *Trigger { return NewWithLogger(sdk.Logger()) }

// NewWithLogger returns a docker trigger that logs to log.
func NewWithLogger(log *slog.Logger) *Trigger { return &Trigger{log: log} }

// Describe returns the trigger's type and options.
func (t *Trigger) Describe(context.Context) sdk.Description {
	return sdk.Description{
		Type: "docker",
		Description: "deploys updates of plain containers (docker run): recreates the container on the new image with the same settings, " +
			"waits for health and smoke checks, and rolls back when they fail; updates tidewatch itself through a helper container",
		Options: Options,
		Deploys: true,
	}
}

// Configure parses options and prepares the engine client (no I/O with the
// engine yet: an engine down now does not stop tidewatch from starting).
func (t *Trigger) Configure(_ context.Context, name string, options map[string]string) error {
	cfg, err := ParseConfig(options)
	if err != nil {
		return err
	}
	eo := cfg.Engine
	eo.Host = rollout.FaultHost(eo.Host) // (a fault proxy in test builds only)
	e, err := engine.New(eo)
	if err != nil {
		return sdk.Errorf(OptDockerHost, "%v", err)
	}
	if old := t.state.Swap(&state{name: name, cfg: cfg, engine: e, http: &http.Client{}}); old != nil {
		old.engine.Close()
	}
	t.log.Debug("docker trigger configured", "trigger", name, "docker_host", cfg.Engine.Host, "dry_run", cfg.DryRun,
		"self", cfg.Self, "self_update", cfg.SelfUpdate)
	return nil
}

// Fire rolls each update out in turn and returns what became of it.
func (t *Trigger) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	s := t.state.Load()
	if s == nil {
		return sdk.All(len(updates), sdk.Retry(errors.New("the docker trigger is not configured")))
	}
	out := make([]sdk.Result, len(updates))
	for i, u := range updates {
		out[i] = s.rollout(ctx, t.log.With("trigger", s.name, "container", u.Container, "current_tag", u.Current, "new_tag", u.Candidate), u)
	}
	return out
}
