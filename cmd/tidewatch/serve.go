package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/core/sources"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/core/watch"
	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/triggers"
	"github.com/tidewatch/tidewatch/triggers/repair"
	"github.com/tidewatch/tidewatch/web"
)

// daemon is `tidewatch serve` without its HTTP server: the watch loop of
// every host, the dispatcher, and what they share.
type daemon struct {
	base   context.Context // the daemon's life, for work a request starts
	cfg    config.Config
	log    *slog.Logger
	st     *store.Store
	reg    *registries.Client
	plugin *host.Host
	disp   *triggers.Dispatcher // nil without triggers
	loaded []loadedTrigger

	watchers  map[string]*hostLoop
	events    *web.Broker    // runs ended, for the UI's event stream
	requested sync.WaitGroup // runs asked for through the API
	metrics   *web.Metrics   // nil until the HTTP server is made
	commits   *gitCommits    // nil without a git work tree configured

	sources *sources.Runner // git sources; nil without one configured
	repair  *repair.Loop    // failed rollouts settled again; nil without a deploying trigger
}

// hostLoop is the watch loop of one Docker host and what it last did.
type hostLoop struct {
	cfg config.Watcher
	eng *docker.Client
	w   *watch.Watcher

	mu      sync.Mutex
	last    *web.RunInfo
	running bool
}

// newDaemon starts what the daemon needs before watching: the triggers (a
// bad option is an error here, before anything runs), the store and the
// registries client. refused are triggers whose plugin could not start; the
// others run. On error, what was started is stopped again.
func newDaemon(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *daemon, refused []error, err error) {
	d := &daemon{base: ctx, cfg: cfg, log: log, watchers: map[string]*hostLoop{}, events: web.NewBroker()}
	d.plugin = host.New(host.Options{Level: cfg.Log.Level}, log)
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	d.loaded, refused, err = loadTriggers(ctx, cfg, d.plugin, log)
	if err != nil {
		return nil, nil, err
	}
	if d.st, err = store.Open(ctx, cfg.Store.Path); err != nil {
		return nil, nil, err
	}
	if d.commits, err = newGitCommits(cfg, d.st, log); err != nil {
		return nil, nil, err
	}
	d.reg = registries.New(registryOptions(cfg), log)
	opts := watch.Options{Memo: d.st, ReadCreated: readCreated(d.loaded)}
	if len(cfg.Watchers) > 1 {
		opts.Share = watch.NewShare(0) // the hosts ask each repository once between them
	}
	if len(d.loaded) > 0 {
		dopts := []triggers.Option{triggers.WithObserver(d.delivered),
			triggers.WithServiceObserver(d.servicesDelivered), triggers.WithCredentials(d.reg)}
		if d.commits != nil {
			dopts = append(dopts, triggers.WithRolloutObserver(d.commits.rolledOut))
		}
		d.disp = dispatcherFor(d.st, d.loaded, log, dopts...)
		opts.Dispatcher = d.disp
		d.repair = repairLoop(d.st, repairNotifier{next: d.disp, events: d.events}, d.loaded, log)
		if d.commits != nil {
			d.commits.disp = d.disp
		}
	}
	deploy, err := newGitDeploy(d, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if d.sources, err = newGitSources(cfg, d.st, deploy, log); err != nil {
		return nil, nil, err
	}
	if d.sources != nil {
		d.sources.OnSync(d.synced)
	}
	for _, wc := range cfg.Watchers {
		eng, err := docker.New(docker.Options{Host: wc.DockerHost(), CAFile: wc.CAFile, CertFile: wc.CertFile, KeyFile: wc.KeyFile, NoServices: wc.NoServices})
		if err != nil {
			return nil, nil, fmt.Errorf("watcher %s: %w", wc.Name, err)
		}
		hl := &hostLoop{cfg: wc, eng: eng}
		o := opts
		o.Host, o.WatchByDefault, o.WatchAll = wc.Name, wc.WatchByDefault, wc.WatchAll
		name := wc.Name
		o.OnPhases = func(p watch.Phases) {
			if d.metrics != nil {
				for phase, took := range p.All() {
					d.metrics.ObservePhase(name, phase, took)
				}
			}
		}
		hl.w = watch.New(o, eng, d.reg, d.st, log)
		d.watchers[wc.Name] = hl
	}
	return d, refused, nil
}

// repairLoop returns the loop that settles the failed rollouts of the
// deploying triggers (triggers/repair); nil when none deploys.
func repairLoop(st *store.Store, disp repair.Notifier, loaded []loadedTrigger, log *slog.Logger) *repair.Loop {
	var targets []repair.Target
	for _, l := range loaded {
		if !l.desc.Deploys {
			continue
		}
		deadline := l.cfg.Policy.Deadline
		if !l.cfg.Policy.DeadlineSet {
			deadline = core.DefaultDeployDeadline
		}
		targets = append(targets, repair.Target{Name: l.cfg.ID(), Trigger: l.plugin, Deadline: deadline})
	}
	if len(targets) == 0 {
		return nil
	}
	return repair.New(st, disp, targets, repair.Options{}, log)
}

// repairNotifier hands the event of a rollout the repair loop settled to
// the triggers listening (next), then tells the event stream that the
// update changed: the loop has written its status by then, so the UI and
// whoever follows the stream (Home Assistant's entities) read it new.
type repairNotifier struct {
	next   repair.Notifier
	events *web.Broker
}

// NotifyEvent implements repair.Notifier.
func (n repairNotifier) NotifyEvent(ctx context.Context, u core.Update, event core.Event, detail string) error {
	err := n.next.NotifyEvent(ctx, u, event, detail)
	n.events.Publish(web.Event{Type: web.EventUpdate, Data: map[string]any{"id": u.ID, "event": event}})
	return err
}

// run watches every host on its schedule and on engine events, and fires
// the triggers, until ctx ends; then it lets in-flight deliveries finish
// (or records them as unfinished, to resume at the next start).
func (d *daemon) run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(d.watchers)+1)
	if d.disp != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.disp.Run(ctx); err != nil {
				errs <- fmt.Errorf("dispatcher: %w", err)
			}
		}()
	}
	if d.sources != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.sources.Run(ctx)
		}()
	}
	if d.repair != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.repair.Run(ctx)
		}()
	}
	for name, hl := range d.watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := hl.w.Watch(ctx, watch.LoopOptions{
				Schedule:     hl.cfg.Cron,
				Jitter:       hl.cfg.Jitter,
				IgnoreEvents: !hl.cfg.WatchEvents,
				RunAtStart:   true,
				OnRun:        func(r watch.RunReport) { d.ran(name, hl, r) },
			})
			if err != nil {
				errs <- fmt.Errorf("watcher %s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// ran takes a run's results: the host's status, the metrics, the
// listeners. (The run handed its updates to the dispatcher itself.)
func (d *daemon) ran(name string, hl *hostLoop, r watch.RunReport) {
	info := web.RunInfo{Host: name, Start: r.Start, Duration: time.Since(r.Start), Containers: len(r.Checks)}
	for _, c := range r.Checks {
		if c.HasUpdate() {
			info.Updates++
		}
		if c.Err != nil {
			info.Errors++
		}
	}
	if r.Err != nil {
		info.Error = r.Err.Error()
	}
	if r.Full {
		hl.mu.Lock()
		hl.last = &info
		hl.mu.Unlock()
		if d.metrics != nil {
			d.metrics.ObserveRun(name, info.Duration)
		}
	}
	if d.events != nil {
		d.events.Publish(web.Event{Type: web.EventRun, Data: info})
	}
}

// delivered takes each finished delivery attempt: metrics and the UI's
// event stream.
func (d *daemon) delivered(trigger string, id int64, status store.DeliveryStatus, event core.Event) {
	if d.metrics != nil {
		result := string(status)
		if status == store.DeliveryPending {
			result = "retry"
		}
		d.metrics.ObserveDelivery(trigger, result)
		if st := event.Status(); st != "" {
			d.metrics.ObserveRollout(string(st))
		}
	}
	d.events.Publish(web.Event{Type: web.EventDelivery, Data: map[string]any{"id": id, "trigger": trigger, "status": status, "event": event}})
}

// servicesDelivered takes what each service of a trigger did in a delivery
// attempt (the notify trigger's URLs), for the metrics.
func (d *daemon) servicesDelivered(trigger string, outcomes []sdk.ServiceOutcome) {
	if d.metrics == nil {
		return
	}
	for _, o := range outcomes {
		d.metrics.ObserveService(trigger, o.Service, o.Failed)
	}
}

// RunAll starts a check of every host now and returns without waiting; the
// runs' ends are published as events. base outlives the request.
func (d *daemon) RunAll(ctx context.Context) error {
	for _, name := range d.hosts() {
		hl := d.watchers[name]
		if !hl.start() {
			continue // a requested run is already going: it answers this request too
		}
		d.requested.Add(1)
		go func() {
			defer d.requested.Done()
			start := time.Now()
			checks, err := hl.w.Run(d.base)
			hl.stop()
			d.ran(name, hl, watch.RunReport{Full: true, Reason: "request", Checks: checks, Err: err, Start: start})
		}()
	}
	return nil
}

// start marks a requested run as going, and reports false when one already is.
func (hl *hostLoop) start() bool {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if hl.running {
		return false
	}
	hl.running = true
	return true
}

func (hl *hostLoop) stop() {
	hl.mu.Lock()
	hl.running = false
	hl.mu.Unlock()
}

// Status describes every watcher, for the API.
func (d *daemon) Status() []web.WatcherStatus {
	var out []web.WatcherStatus
	for _, name := range d.hosts() {
		hl := d.watchers[name]
		hl.mu.Lock()
		st := web.WatcherStatus{Name: name, Address: hl.cfg.DockerHost(), Cron: hl.cfg.Cron, LastRun: hl.last, Running: hl.running}
		hl.mu.Unlock()
		if sched, err := cron.ParseStandard(hl.cfg.Cron); err == nil {
			st.NextRun = sched.Next(time.Now())
		}
		out = append(out, st)
	}
	return out
}

// RunContainer checks one container of host now, by name or ID.
func (d *daemon) RunContainer(ctx context.Context, hostName, container string) (core.Check, error) {
	hl, ok := d.watchers[hostName]
	if !ok {
		return core.Check{}, fmt.Errorf("watcher %q: %w", hostName, core.ErrNotFound)
	}
	check, watched, err := hl.w.RunContainer(ctx, container)
	if err != nil {
		return core.Check{}, err
	}
	if !watched {
		return core.Check{}, fmt.Errorf("container %s on %s is not watched (tidewatch.watch=false, or the watcher's WATCHBYDEFAULT): %w", container, hostName, core.ErrNotFound)
	}
	d.ran(hostName, hl, watch.RunReport{Reason: "request", Checks: []core.Check{check}, Start: check.CheckedAt})
	return check, nil
}

func (d *daemon) hosts() []string {
	names := make([]string, 0, len(d.watchers))
	for n := range d.watchers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// close stops the plugin processes and closes the engines and the store:
// whatever newDaemon had started.
func (d *daemon) close() {
	d.requested.Wait() // requested runs end with the daemon's context
	d.commits.wait()   // commits of rollouts that ended
	if d.plugin != nil {
		d.plugin.Close()
	}
	for _, hl := range d.watchers {
		hl.eng.Close()
	}
	if d.st != nil {
		d.st.Close()
	}
}
