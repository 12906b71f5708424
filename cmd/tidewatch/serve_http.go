package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/core/memlimit"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers"
	"github.com/tidewatch/tidewatch/web"
	"github.com/tidewatch/tidewatch/web/ui"
)

// serveCommand is `tidewatch serve`: the daemon and its HTTP server, until
// ctx ends (SIGINT, SIGTERM); then in-flight work finishes or is recorded to
// resume at the next start.
func serveCommand(ctx context.Context, cfg config.Config, stdout, stderr io.Writer, log *slog.Logger) int {
	d, refused, err := newDaemon(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "tidewatch: invalid configuration:\n%v\n", err)
		return exitError
	}
	defer d.close()
	for _, err := range refused {
		log.Error("trigger refused; the others run", "error", err)
	}
	logServerWarnings(log, cfg.Server)
	d.metrics = web.NewMetrics()
	ready := map[string]func(context.Context) error{"store": d.st.Ping}
	for name, hl := range d.watchers {
		ready["engine "+name] = hl.eng.Ping
	}
	srv := web.New(web.Deps{
		Containers: d.st, Updates: d.st, History: d.st,
		Watcher:    d,
		Registries: d.reg,
		Triggers:   &triggerSet{d: d},
		Deployer:   deployer{d: d},
		Events:     d.events,
		Metrics:    d.metrics,
		UI:         ui.FS,
		Ready:      ready,
		Git:        d.gitStatus(),
	}, webConfig(cfg.Server), log)

	scheme := "http"
	if cfg.Server.TLS() {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "tidewatch %s serving on %s://%s\n", buildVersion(), scheme, cfg.Server.Addr())

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	// The Go runtime's soft memory limit, unless GOMEMLIMIT says otherwise
	// (README: Memory).
	go memlimit.Keep(runCtx, os.Getenv, "/", log)
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer stop() // the server failing (port taken) stops the daemon too
		if err := srv.ListenAndServe(runCtx); err != nil {
			errs <- err
		}
	}()
	go func() {
		defer wg.Done()
		if err := d.run(runCtx); err != nil {
			errs <- err
		}
	}()
	wg.Wait()
	close(errs)
	code := exitOK
	for err := range errs {
		fmt.Fprintf(stderr, "tidewatch serve: %v\n", err)
		code = exitError
	}
	log.Info("stopped")
	return code
}

// webConfig is what the web server needs of TIDEWATCH_SERVER_*.
func webConfig(s config.Server) web.Config {
	return web.Config{Address: s.Address, Port: s.Port, TLSCert: s.TLSCert, TLSKey: s.TLSKey,
		Users: s.Users, Tokens: s.Tokens, AllowedHosts: s.AllowedHosts}
}

// logServerWarnings logs, at warn level, what the server configuration
// allows but should not be: credentials crossing the network in clear text,
// weak password hashes (config.Server.Warnings), each naming its variable.
func logServerWarnings(log *slog.Logger, s config.Server) {
	for _, w := range s.Warnings() {
		log.Warn(w.Problem, "variable", w.Var, "expected", w.Expected)
	}
}

// triggerSet adapts the loaded triggers and the dispatcher to the API.
type triggerSet struct{ d *daemon }

func (t *triggerSet) find(name string) (loadedTrigger, bool) {
	for _, l := range t.d.loaded {
		if l.cfg.ID() == name {
			return l, true
		}
	}
	return loadedTrigger{}, false
}

// List describes every trigger instance; secret options are flagged so the
// API redacts them.
func (t *triggerSet) List() []web.TriggerInfo {
	var out []web.TriggerInfo
	for _, l := range t.d.loaded {
		secret := map[string]bool{}
		for _, o := range l.desc.Options {
			secret[o.Name] = o.Secret
		}
		p := l.cfg.Policy
		info := web.TriggerInfo{
			Name: l.cfg.ID(), Type: l.cfg.Type, Auto: p.Auto, Threshold: string(p.Threshold), Mode: string(p.Mode), Deploys: l.desc.Deploys,
		}
		for _, e := range p.Events {
			info.Events = append(info.Events, string(e))
		}
		names := make([]string, 0, len(l.cfg.Options))
		for n := range l.cfg.Options {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			s, known := secret[n]
			info.Options = append(info.Options, web.TriggerOption{Name: n, Value: l.cfg.Options[n].Reveal(), Secret: s || !known})
		}
		out = append(out, info)
	}
	return out
}

// Request enqueues a delivery of an update to a trigger, because principal asked.
func (t *triggerSet) Request(ctx context.Context, updateID int64, trigger, principal string) (store.Delivery, error) {
	if t.d.disp == nil {
		return store.Delivery{}, fmt.Errorf("trigger %q: %w", trigger, core.ErrNotFound)
	}
	dl, err := t.d.disp.Request(ctx, updateID, trigger, principal)
	return dl, apiError(err)
}

// Check says whether the trigger's policy would let the update be applied
// (the dry run of POST /api/updates/apply), without enqueuing anything.
func (t *triggerSet) Check(ctx context.Context, updateID int64, trigger string) error {
	if t.d.disp == nil {
		return fmt.Errorf("trigger %q: %w", trigger, core.ErrNotFound)
	}
	return apiError(t.d.disp.Check(ctx, updateID, trigger))
}

var _ web.PolicyChecker = (*triggerSet)(nil)

// apiError gives the dispatcher's errors the meaning the API maps to a status.
func apiError(err error) error {
	switch {
	case errors.Is(err, triggers.ErrUnknownTrigger):
		return fmt.Errorf("%w: %w", err, core.ErrNotFound)
	case errors.Is(err, triggers.ErrApplying):
		return fmt.Errorf("%w: %w", err, web.ErrConflict)
	}
	return err
}

// Test fires a trigger with a sample update, bypassing the outbox.
func (t *triggerSet) Test(ctx context.Context, trigger string) (web.TestResult, error) {
	l, ok := t.find(trigger)
	if !ok {
		return web.TestResult{}, fmt.Errorf("trigger %q: %w", trigger, core.ErrNotFound)
	}
	if l.desc.Deploys {
		return web.TestResult{}, &web.Error{Status: http.StatusBadRequest, Code: "bad_request", Field: "name",
			Message: fmt.Sprintf("trigger %q deploys: it has no test notification; use its dry-run option if it has one", trigger)}
	}
	u := sdk.SampleMessage().Update
	u.Key = fmt.Sprintf("test-%d", time.Now().UnixNano())
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.Policy.Deadline) // a client gone away must not cut the plugin off
	defer cancel()
	start := time.Now()
	r := l.plugin.Fire(fctx, []sdk.Update{u})[0]
	res := web.TestResult{OK: r.Err == nil, Detail: r.Detail, Duration: time.Since(start)}
	if r.Err != nil {
		res.Error, res.Retryable = r.Err.Error(), !sdk.IsPermanent(r.Err)
	}
	return res, nil
}
