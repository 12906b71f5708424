package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Plugin is one trigger instance served by a plugin process. It is an
// sdk.Trigger, safe for concurrent use; its process is started on the first
// call and restarted, on the next call, after it exits or is cut off.
type Plugin struct {
	host     *Host
	spec     Spec
	instance string
	log      *slog.Logger

	// mu guards what follows; it is held while a process starts.
	mu      sync.Mutex
	closed  bool
	proc    *process
	started bool        // a process was started once: later starts are restarts
	starts  []time.Time // restarts within the last minute
	config  *configuration
	desc    *sdk.Description
}

// configuration is what Configure was last given, replayed on a restart.
type configuration struct {
	name    string
	options map[string]string
}

var _ sdk.Trigger = (*Plugin)(nil)

// Spec is what the Plugin was opened with.
func (p *Plugin) Spec() Spec { return p.spec }

// Pid is the id of the plugin's running process, 0 when none runs.
func (p *Plugin) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return 0
	}
	return p.proc.pid()
}

// current returns the running process, starting one (and replaying the
// configuration) when none runs.
func (p *Plugin) current(ctx context.Context) (*process, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if p.proc != nil && !p.proc.exited() {
		return p.proc, nil
	}
	if old := p.proc; old != nil {
		p.proc = nil
		p.log.Warn("plugin process exited; restarting it")
		old.stop(false)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.started {
		now := time.Now()
		p.starts = slices.DeleteFunc(p.starts, func(t time.Time) bool { return now.Sub(t) >= time.Minute })
		if max := p.host.opts.MaxRestarts; len(p.starts) >= max {
			return nil, fmt.Errorf("%w: restarted %d times in the last minute; not again before %s",
				ErrRestartLimit, max, p.starts[0].Add(time.Minute).Format(time.TimeOnly))
		}
		p.starts = append(p.starts, now)
	}
	p.started = true
	proc, err := start(p.spec, p.host.opts, newHCLogger(p.log, p.host.opts.Level))
	if err != nil {
		return nil, err
	}
	if c := p.config; c != nil {
		// Not bounded by ctx: a process is either configured or not kept.
		rctx, cancel := context.WithTimeout(context.Background(), p.host.opts.StartTimeout)
		oerrs, err := proc.rpc.Configure(rctx, c.name, c.options)
		cancel()
		if err == nil && len(oerrs) > 0 {
			err = optionErrors(oerrs)
		}
		if err != nil {
			proc.stop(true)
			return nil, fmt.Errorf("configuring the restarted process: %w", err)
		}
	}
	p.proc = proc
	p.log.Debug("plugin process started", "pid", proc.pid())
	if err := ctx.Err(); err != nil {
		// Kept for the next call: the start, not the plugin, took too long.
		return nil, fmt.Errorf("starting the process took longer than the call could wait: %w", err)
	}
	return proc, nil
}

// discard stops proc and forgets it, so that the next call starts a new one.
func (p *Plugin) discard(proc *process, force bool) {
	p.mu.Lock()
	if p.proc == proc {
		p.proc = nil
	}
	p.mu.Unlock()
	proc.stop(force)
}

// failed handles a call on proc that failed with err: a call that overran
// ctx is cut off (the process killed), a process that went away is
// forgotten; either way the next call starts a fresh process.
func (p *Plugin) failed(ctx context.Context, proc *process, begin time.Time, err error) error {
	// The plugin's side of gRPC may give up on the deadline a moment before
	// ctx is done here: its DeadlineExceeded means the same.
	if code := status.Code(err); ctx.Err() != nil || code == codes.DeadlineExceeded || code == codes.Canceled {
		why := ctx.Err()
		if why == nil {
			why = context.DeadlineExceeded
		}
		d := time.Since(begin)
		if dl, ok := ctx.Deadline(); ok && why == context.DeadlineExceeded {
			d = dl.Sub(begin)
		}
		d = d.Round(10 * time.Millisecond)
		p.log.Warn("plugin did not answer in time; killing its process", "duration_ms", d.Milliseconds())
		p.discard(proc, true)
		return fmt.Errorf("%w after %s (%v): its process was killed", ErrCutOff, d, why)
	}
	if status.Code(err) == codes.Unavailable || proc.exited() {
		p.log.Warn("plugin process went away during a call; it is restarted on the next call", "error", err)
		p.discard(proc, false)
		return fmt.Errorf("%w during the call: %v", ErrExited, status.Convert(err).Message())
	}
	return err
}

// Description is Describe with a context and an error: what the plugin says
// of itself, asked once and then remembered. A plugin that says it is of
// another type than its Spec's is an error.
func (p *Plugin) Description(ctx context.Context) (sdk.Description, error) {
	p.mu.Lock()
	cached := p.desc
	p.mu.Unlock()
	if cached != nil {
		return copyDescription(*cached), nil
	}
	begin := time.Now()
	proc, err := p.current(ctx)
	if err != nil {
		return sdk.Description{}, p.wrap("describing", err)
	}
	d, err := proc.rpc.Describe(ctx)
	if err != nil {
		return sdk.Description{}, p.wrap("describing", p.failed(ctx, proc, begin, err))
	}
	if d.Type != p.spec.Type {
		return sdk.Description{}, p.wrap("describing", fmt.Errorf("%s says it is a trigger of type %q, not %q", p.spec.Path, d.Type, p.spec.Type))
	}
	p.mu.Lock()
	p.desc = &d
	p.mu.Unlock()
	return copyDescription(d), nil
}

func copyDescription(d sdk.Description) sdk.Description {
	d.Options = slices.Clone(d.Options)
	return d
}

// Describe implements sdk.Trigger: Description bounded by ctx and twice
// Options.StartTimeout. When the plugin cannot say, the error is logged and
// the Description has only the type and, as its text, the error.
func (p *Plugin) Describe(ctx context.Context) sdk.Description {
	ctx, cancel := context.WithTimeout(ctx, 2*p.host.opts.StartTimeout)
	defer cancel()
	d, err := p.Description(ctx)
	if err != nil {
		p.log.Error("describing plugin", "error", err)
		return sdk.Description{Type: p.spec.Type, Description: "unavailable: " + err.Error()}
	}
	return d
}

// Configure implements sdk.Trigger. The configuration is remembered and
// given again to every process started later, before its first call. The
// plugin's option errors come back joined, as *sdk.OptionError values
// (sdk.OptionErrors unpacks them).
func (p *Plugin) Configure(ctx context.Context, name string, options map[string]string) error {
	begin := time.Now()
	proc, err := p.current(ctx)
	if err != nil {
		return p.wrap("configuring", err)
	}
	c := &configuration{name: name, options: maps.Clone(options)}
	oerrs, err := proc.rpc.Configure(ctx, name, options)
	if err != nil {
		p.remember(c)
		return p.wrap("configuring", p.failed(ctx, proc, begin, err))
	}
	if len(oerrs) > 0 {
		return optionErrors(oerrs)
	}
	p.remember(c)
	return nil
}

func (p *Plugin) remember(c *configuration) {
	p.mu.Lock()
	p.config = c
	p.mu.Unlock()
}

func optionErrors(errs []*sdk.OptionError) error {
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		out = append(out, e)
	}
	return errors.Join(out...)
}

// Fire implements sdk.Trigger over gRPC, with ctx's deadline. When the
// process cannot be started, exits during the call, or overruns ctx (it is
// then killed), every update gets a retryable result saying so, and the next
// call starts a fresh process.
func (p *Plugin) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	if len(updates) == 0 {
		return nil
	}
	begin := time.Now()
	proc, err := p.current(ctx)
	if err != nil {
		return sdk.All(len(updates), sdk.Retry(p.wrap("firing", err)))
	}
	rs, err := proc.rpc.Fire(ctx, updates)
	if err != nil {
		return sdk.All(len(updates), sdk.Retry(p.wrap("firing", p.failed(ctx, proc, begin, err))))
	}
	results := make([]sdk.Result, len(updates))
	for i := range updates {
		if i >= len(rs) {
			results[i] = sdk.Retry(p.wrap("firing", fmt.Errorf("the plugin returned %d results for %d updates", len(rs), len(updates))))
			continue
		}
		results[i] = rs[i]
	}
	return results
}

// Ping checks that the plugin's process answers (go-plugin's health
// check), starting it when none runs. A process that does not answer before
// ctx is done is killed; the next call starts a fresh one.
func (p *Plugin) Ping(ctx context.Context) error {
	begin := time.Now()
	proc, err := p.current(ctx)
	if err != nil {
		return p.wrap("checking", err)
	}
	done := make(chan error, 1)
	go func() { done <- proc.protocol.Ping() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return p.wrap("checking", p.failed(ctx, proc, begin, err))
	}
	return nil
}

// Close stops the plugin's process, if one runs, and waits for it to exit.
// The Plugin cannot be used afterwards.
func (p *Plugin) Close() {
	p.mu.Lock()
	p.closed = true
	proc := p.proc
	p.proc = nil
	p.mu.Unlock()
	if proc != nil {
		proc.stop(false)
	}
	p.host.forget(p)
}

// wrap says which plugin and what action an error is about.
func (p *Plugin) wrap(action string, err error) error {
	return fmt.Errorf("%s plugin %s (instance %s): %w", action, p.spec.Type, p.instance, err)
}
