package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers"
	"github.com/tidewatch/tidewatch/triggers/command"
	"github.com/tidewatch/tidewatch/triggers/compose"
	"github.com/tidewatch/tidewatch/triggers/email"
	"github.com/tidewatch/tidewatch/triggers/sms"
	"github.com/tidewatch/tidewatch/triggers/webhook"
)

// builtins are the trigger types tidewatch serves itself, by re-executing
// its own binary as `tidewatch trigger serve <type>`.
var builtins = map[string]func() sdk.Trigger{
	"command": func() sdk.Trigger { return command.New() },
	"compose": func() sdk.Trigger { return compose.New() },
	"email":   func() sdk.Trigger { return email.New() },
	"sms":     func() sdk.Trigger { return sms.New() },
	"webhook": func() sdk.Trigger { return webhook.New() },
}

func builtinTypes() []string {
	types := make([]string, 0, len(builtins))
	for t := range builtins {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}

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
func specs(cfg config.Config, log *slog.Logger) (map[string]host.Spec, error) {
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
		if s.SHA256 == "" {
			log.Debug("plugin not pinned", "plugin", s.Type, "path", s.Path, "pin_variable", host.PinVariable(s.Type))
		}
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
}

// loadTriggers starts and configures every configured trigger instance. It
// returns the ones that work; configuration errors (each naming its
// variable) are fatal, and a plugin that cannot start (a wrong checksum, a
// crash at start) is refused with its reason while the others run.
func loadTriggers(ctx context.Context, cfg config.Config, h *host.Host, log *slog.Logger) (loaded []loadedTrigger, refused []error, fatal error) {
	if len(cfg.Triggers) == 0 {
		return nil, nil, nil
	}
	all, err := specs(cfg, log)
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
			if slices.Contains(config.CommonTriggerOptions, o.Name) {
				refused = append(refused, fmt.Errorf("trigger %s: its plugin declares the option %s, which is one of tidewatch's own (%s)", t.ID(), o.Name, strings.Join(config.CommonTriggerOptions, ", ")))
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
		loaded = append(loaded, loadedTrigger{cfg: t, plugin: p})
	}
	return loaded, refused, errors.Join(es...)
}

// pluginsCommand is `tidewatch plugins`: the trigger types there are, with
// their options, and the configured instances with the options they set
// (secret ones redacted).
func pluginsCommand(ctx context.Context, cfg config.Config, stdout, stderr io.Writer, log *slog.Logger) int {
	all, err := specs(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "tidewatch plugins: %v\n", err)
	}
	h := host.New(host.Options{Level: cfg.Log.Level}, log)
	defer h.Close()
	types := make([]string, 0, len(all))
	for t := range all {
		types = append(types, t)
	}
	sort.Strings(types)
	code := exitOK
	if err != nil {
		code = exitError
	}
	descs := map[string]sdk.Description{}
	for _, typ := range types {
		s := all[typ]
		source := "built-in"
		if !s.Builtin {
			source = s.Path
			if s.SHA256 != "" {
				source += " (pinned)"
			}
		}
		p, err := h.Open(ctx, s, "describe")
		var d sdk.Description
		if err == nil {
			d, err = p.Description(ctx)
			p.Close()
		}
		if err != nil {
			fmt.Fprintf(stdout, "%s\t%s\n  cannot start: %v\n\n", typ, source, err)
			code = exitError
			continue
		}
		descs[typ] = d
		fmt.Fprintf(stdout, "%s — %s\n  %s\n", typ, d.Description, source)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  OPTION\tREQUIRED\tSECRET\tDEFAULT\tDESCRIPTION")
		for _, o := range d.Options {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", o.Name, yes(o.Required), yes(o.Secret), oneLine(o.Default), o.Description)
		}
		tw.Flush()
		fmt.Fprintln(stdout)
	}
	if len(cfg.Triggers) > 0 {
		fmt.Fprintln(stdout, "Configured triggers:")
	}
	for _, t := range cfg.Triggers {
		fmt.Fprintf(stdout, "  %s (threshold %s, mode %s, auto %v)\n", t.ID(), t.Threshold, t.Mode, t.Auto)
		secret := map[string]bool{}
		for _, o := range descs[t.Type].Options {
			secret[o.Name] = o.Secret
		}
		names := make([]string, 0, len(t.Options))
		for n := range t.Options {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			v := t.Options[n].Reveal()
			isSecret, declared := secret[n]
			if base, isFile := strings.CutSuffix(n, "_FILE"); isFile && secret[base] {
				isSecret, declared = false, true // the path of a secret's file, not the secret
			}
			if isSecret || !declared { // an undeclared option may be a secret of a plugin that did not start
				v = "[redacted]"
			}
			fmt.Fprintf(stdout, "    %s=%s\n", t.Var(n), v)
		}
	}
	return code
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", `\n`)
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// deployDeadline is the default DEADLINE of a compose trigger: room for a
// pull, HEALTH_TIMEOUT's default 120s twice over, and a rollback.
const deployDeadline = 10 * time.Minute

// policyOf turns a trigger's common options into the dispatcher's policy.
func policyOf(t config.Trigger) (triggers.Policy, error) {
	p := triggers.DefaultPolicy()
	th, err := triggers.ParseThreshold(t.Threshold)
	if err != nil {
		return p, fmt.Errorf("%s: %w", t.Var("THRESHOLD"), err)
	}
	mode, err := triggers.ParseMode(t.Mode)
	if err != nil {
		return p, fmt.Errorf("%s: %w", t.Var("MODE"), err)
	}
	p.Threshold, p.Mode, p.Auto, p.Once = th, mode, t.Auto, t.Once
	p.Include, p.Exclude, p.Events = t.Include, t.Exclude, t.Events
	p.Retries, p.Timeout, p.Concurrency = t.Retries, t.Timeout, t.Concurrency
	if _, set := t.Vars["DEADLINE"]; !set && t.Type == "compose" {
		p.Timeout = deployDeadline // a rollout takes minutes, not the 30s of a notification
	}
	return p, p.Validate()
}

// dispatcherFor builds the dispatcher over the loaded triggers.
func dispatcherFor(st *store.Store, loaded []loadedTrigger, log *slog.Logger, opts ...triggers.Option) (*triggers.Dispatcher, error) {
	var instances []triggers.Instance
	var es []error
	for _, l := range loaded {
		p, err := policyOf(l.cfg)
		if err != nil {
			es = append(es, err)
			continue
		}
		instances = append(instances, triggers.Instance{Name: l.cfg.ID(), Trigger: l.plugin, Policy: p})
	}
	if len(es) > 0 {
		return nil, errors.Join(es...)
	}
	return triggers.New(st, instances, log, opts...), nil
}
