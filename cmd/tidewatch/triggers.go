package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers"
)

// triggerCommand is the hidden `tidewatch trigger serve <type>`: the process
// of a built-in trigger, started by tidewatch through go-plugin.
func triggerCommand(args []string, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "serve" {
		fmt.Fprintln(stderr, "usage: tidewatch trigger serve <type> (started by tidewatch itself)")
		return exitUsage
	}
	newTrigger, ok := builtins[args[1]]
	if !ok {
		fmt.Fprintf(stderr, "tidewatch trigger serve: unknown built-in trigger %q; expected one of %s\n", args[1], strings.Join(builtinTypes(), ", "))
		return exitUsage
	}
	sdk.Serve(newTrigger())
	return exitOK
}

// specs returns how to start each trigger type: the built-ins, and the
// plugins found in the plugins folder, with their checksum pins. A plugin may
// not take a built-in's name, and a pin must name a plugin that exists.
func specs(cfg config.Config) (map[string]host.Spec, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the tidewatch executable to serve built-in triggers: %w", err)
	}
	out := map[string]host.Spec{}
	for _, s := range host.Builtins(self, builtinTypes()...) {
		out[s.Type] = s
	}
	var es []error
	found, err := host.Discover(cfg.Plugins.Dir)
	if err != nil {
		es = append(es, fmt.Errorf("TIDEWATCH_PLUGINS_DIR=%q: %w", cfg.Plugins.Dir, err))
	}
	for _, s := range found {
		if _, clash := builtins[s.Type]; clash {
			es = append(es, fmt.Errorf("%s: a plugin may not take the name of the built-in trigger %q; rename it", s.Path, s.Type))
			continue
		}
		s.SHA256 = cfg.Plugins.Pins[s.Type]
		out[s.Type] = s
	}
	for typ, v := range cfg.Plugins.PinVars {
		if s, ok := out[typ]; !ok || s.Builtin {
			es = append(es, fmt.Errorf("%s: no plugin %s%s in TIDEWATCH_PLUGINS_DIR (%q) to pin", v, host.Prefix, typ, cfg.Plugins.Dir))
		}
	}
	return out, errors.Join(es...)
}

// loadedTrigger is one configured trigger instance, running and configured.
type loadedTrigger struct {
	cfg    config.Trigger
	plugin *host.Plugin
	desc   sdk.Description
}

// loadTriggers starts and configures every configured trigger instance. It
// returns the ones that work; configuration errors (each naming its
// variable) are fatal, and a plugin that cannot start (a wrong checksum, a
// crash at start) is refused with its reason while the others run.
func loadTriggers(ctx context.Context, cfg config.Config, h *host.Host, log *slog.Logger) (loaded []loadedTrigger, refused []error, fatal error) {
	if len(cfg.Triggers) == 0 {
		return nil, nil, nil
	}
	all, err := specs(cfg)
	if err != nil {
		return nil, nil, err
	}
	var es []error
	for _, t := range cfg.Triggers {
		spec, ok := all[t.Type]
		if !ok {
			es = append(es, fmt.Errorf("TIDEWATCH_TRIGGER_%s_%s_*: unknown trigger type %q; expected a built-in (%s) or a plugin %s%s in TIDEWATCH_PLUGINS_DIR",
				strings.ToUpper(t.Type), strings.ToUpper(t.Name), t.Type, strings.Join(builtinTypes(), ", "), host.Prefix, t.Type))
			continue
		}
		if !spec.Builtin && spec.SHA256 == "" {
			log.Warn("plugin not pinned: any change to its file is run as it is; pin its checksum", "trigger", t.ID(),
				"path", spec.Path, "variable", host.PinVariable(spec.Type))
		}
		p, err := h.Open(ctx, spec, t.Name)
		if err != nil {
			refused = append(refused, fmt.Errorf("trigger %s: %w", t.ID(), err))
			continue
		}
		desc, err := p.Description(ctx)
		if err != nil {
			refused = append(refused, fmt.Errorf("trigger %s: %w", t.ID(), err))
			p.Close()
			continue
		}
		declared := map[string]bool{}
		clash := false
		for _, o := range desc.Options {
			declared[o.Name] = o.Secret
			if core.IsTriggerOption(o.Name) {
				refused = append(refused, fmt.Errorf("trigger %s: its plugin declares the option %s, which is one of tidewatch's own (%s)", t.ID(), o.Name, strings.Join(core.TriggerOptions, ", ")))
				clash = true
			}
		}
		if clash {
			p.Close()
			continue
		}
		opts, rerr := config.ResolveOptions(t, declared)
		if rerr != nil {
			es = append(es, rerr)
		}
		// The plugin checks the options that resolved, so that its own
		// errors are reported with tidewatch's, at once.
		if err := p.Configure(ctx, t.Name, opts); err != nil || rerr != nil {
			for _, oe := range sdk.OptionErrors(err) {
				if oe.Option == "" {
					es = append(es, fmt.Errorf("TIDEWATCH_TRIGGER_%s_%s_*: %s", strings.ToUpper(t.Type), strings.ToUpper(t.Name), oe.Message))
					continue
				}
				es = append(es, fmt.Errorf("%s: %s", t.Var(oe.Option), oe.Message))
			}
			p.Close()
			continue
		}
		if desc.Deploys && len(t.Policy.Watchers) == 0 {
			// A trigger that deploys acts on one Docker host: the only
			// watcher's, or the one it is told.
			if len(cfg.Watchers) != 1 {
				es = append(es, &config.VarError{Var: t.Var(core.OptionWatcher), Problem: "not set, and this trigger deploys while several watchers are configured",
					Expected: "the name of the watcher whose host it deploys to, one of " + watcherList(cfg)})
				p.Close()
				continue
			}
			t.Policy.Watchers = []string{cfg.Watchers[0].Name}
		}
		loaded = append(loaded, loadedTrigger{cfg: t, plugin: p, desc: desc})
	}
	return loaded, refused, errors.Join(es...)
}

// dispatcherFor builds the dispatcher over the loaded triggers: each with
// its common options (config parsed them into its policy) and what its
// plugin says of itself (whether it deploys).
func dispatcherFor(st *store.Store, loaded []loadedTrigger, log *slog.Logger, opts ...triggers.Option) *triggers.Dispatcher {
	instances := make([]triggers.Instance, 0, len(loaded))
	for _, l := range loaded {
		instances = append(instances, triggers.Instance{Name: l.cfg.ID(), Trigger: l.plugin, Policy: l.cfg.Policy, Deploys: l.desc.Deploys})
	}
	return triggers.New(st, instances, log, opts...)
}

func watcherList(cfg config.Config) string {
	names := make([]string, len(cfg.Watchers))
	for i, w := range cfg.Watchers {
		names[i] = w.Name
	}
	return strings.Join(names, ", ")
}

// readCreated reports whether a trigger has a cooldown (MIN_AGE): the
// watchers then read every candidate's creation time.
func readCreated(loaded []loadedTrigger) bool {
	for _, lt := range loaded {
		if lt.cfg.Policy.MinAge > 0 {
			return true
		}
	}
	return false
}
