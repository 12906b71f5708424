package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// pluginsCommand is `tidewatch plugins`: the trigger types there are, with
// their options, and the configured instances with the options they set
// (secret ones redacted).
func pluginsCommand(ctx context.Context, cfg config.Config, stdout, stderr io.Writer, log *slog.Logger) int {
	all, err := specs(cfg)
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
		if d.Deploys {
			source += "; deploys"
		}
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
		fmt.Fprintf(stdout, "  %s (threshold %s, mode %s, auto %v)\n", t.ID(), t.Policy.Threshold, t.Policy.Mode, t.Policy.Auto)
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
