package host

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Options tune a Host.
type Options struct {
	// StartTimeout bounds starting a process, up to its handshake, and the
	// calls that have no context of their own (Describe). Default 10s.
	StartTimeout time.Duration
	// MaxRestarts is how many times a minute a Plugin's process may be
	// (re)started after its first start; past it, calls fail with
	// ErrRestartLimit until the minute is over. Default 5.
	MaxRestarts int
	// Level is the lowest level of plugin (and go-plugin) log lines passed
	// to the logger; slog's zero value, Info, by default.
	Level slog.Level
}

// SetDefaults fills in the zero fields.
func (o *Options) SetDefaults() {
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.MaxRestarts <= 0 {
		o.MaxRestarts = 5
	}
}

// Host starts and stops plugin processes. Its methods are safe for
// concurrent use.
type Host struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	closed  bool
	plugins map[*Plugin]struct{}
}

// New returns a Host that logs to log.
func New(opts Options, log *slog.Logger) *Host {
	opts.SetDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Host{opts: opts, log: log, plugins: map[*Plugin]struct{}{}}
}

// Open returns a handle on the plugin spec describes, for the trigger
// instance named instance ("ops" in TIDEWATCH_TRIGGER_WEBHOOK_OPS_URL). No
// process is started yet, so ctx is not used: that happens on the first
// call. A Spec that cannot work (a bad type, no path, a malformed pin) is an
// error.
func (h *Host) Open(_ context.Context, spec Spec, instance string) (*Plugin, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("opening plugin %s: %w", spec.Type, ErrClosed)
	}
	p := &Plugin{
		host:     h,
		spec:     spec,
		instance: instance,
		log:      h.log.With("plugin", spec.Type, "instance", instance),
	}
	h.plugins[p] = struct{}{}
	return p, nil
}

// forget is called by a Plugin's Close.
func (h *Host) forget(p *Plugin) {
	h.mu.Lock()
	delete(h.plugins, p)
	h.mu.Unlock()
}

// Close stops every process of every Plugin opened, and waits for them to
// exit. Plugins cannot be used or opened afterwards.
func (h *Host) Close() {
	h.mu.Lock()
	h.closed = true
	ps := make([]*Plugin, 0, len(h.plugins))
	for p := range h.plugins {
		ps = append(ps, p)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(p.Close)
	}
	wg.Wait()
}
