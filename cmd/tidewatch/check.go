package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/core/watch"
	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/triggers"
)

// checkRow is one line of `tidewatch check` output; its JSON form is documented in the README.
type checkRow struct {
	Container     string `json:"container"`
	Host          string `json:"host"`
	Image         string `json:"image"`
	Current       string `json:"current"`
	CurrentDigest string `json:"current_digest"`
	Candidate     string `json:"candidate"`
	Kind          string `json:"kind"`
	Digest        string `json:"digest"`
	Link          string `json:"link"`
	Note          string `json:"note"`
	Error         string `json:"error"`
}

func checkCommand(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer, log *slog.Logger) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "table", "output format: table or json")
	exitCode := fs.Bool("exit-code", false, "exit with 2 when updates are found")
	triggerWait := fs.Duration("trigger-wait", 2*time.Minute, "how long to wait for the triggers' deliveries (retries included) before exiting; unfinished ones resume on the next run")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tidewatch check: unexpected argument %q; it takes only flags\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if *format != "table" && *format != "json" {
		fmt.Fprintf(stderr, "tidewatch check: --format %q: expected table or json\n", *format)
		return exitUsage
	}

	// Triggers start first: a trigger whose options are wrong stops
	// tidewatch before it does anything.
	h := host.New(host.Options{Level: cfg.Log.Level}, log)
	defer h.Close()
	loaded, refused, err := loadTriggers(ctx, cfg, h, log)
	if err != nil {
		fmt.Fprintf(stderr, "tidewatch: invalid configuration:\n%v\n", err)
		return exitError
	}
	failed := false
	for _, err := range refused {
		fmt.Fprintf(stderr, "tidewatch check: %v\n", err)
		failed = true
	}

	st, err := store.Open(ctx, cfg.Store.Path)
	if err != nil {
		fmt.Fprintf(stderr, "tidewatch check: %v\n", err)
		return exitError
	}
	defer st.Close()
	reg := registries.New(registryOptions(cfg), log)
	opts := watch.Options{Memo: st, ReadCreated: readCreated(loaded)}
	if len(cfg.Watchers) > 1 {
		opts.Share = watch.NewShare(0) // the hosts ask each repository once between them
	}
	var disp *triggers.Dispatcher
	if len(loaded) > 0 {
		disp = dispatcherFor(st, loaded, log, triggers.WithCredentials(reg))
		opts.Dispatcher = disp
	}

	var rows []checkRow
	for _, wc := range cfg.Watchers {
		checks, err := checkHost(ctx, wc, opts, reg, st, log)
		for _, c := range checks {
			if c.Err != nil {
				failed = true
			}
			rows = append(rows, rowOf(c))
		}
		if err != nil {
			failed = true
			if checks == nil {
				rows = append(rows, checkRow{Host: wc.Name, Error: err.Error()})
			} else {
				fmt.Fprintf(stderr, "tidewatch check: %v\n", err)
			}
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "tidewatch check: interrupted")
		return exitError
	}
	if disp != nil {
		if !deliver(ctx, disp, st, *triggerWait, stderr) {
			failed = true
		}
	}

	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []checkRow{}
		}
		if err := enc.Encode(rows); err != nil {
			return exitError
		}
	} else {
		printTable(stdout, rows)
	}
	switch {
	case failed:
		return exitError
	case *exitCode && hasUpdates(rows):
		return exitUpdates
	}
	return exitOK
}

// deliver fires the deliveries of this run (and any left by earlier ones)
// and waits for them, retries included, for at most wait; it reports on
// stderr what failed or is left, and whether everything was delivered.
func deliver(ctx context.Context, disp *triggers.Dispatcher, st *store.Store, wait time.Duration, stderr io.Writer) bool {
	dctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	start := time.Now()
	err := disp.Drain(dctx)
	ok := true
	if err != nil {
		fmt.Fprintf(stderr, "tidewatch check: deliveries unfinished after %s: they resume on the next run (%v)\n", wait, err)
		ok = false
	}
	failed, err := st.Deliveries(ctx, store.DeliveryFilter{Status: store.DeliveryFailed})
	if err != nil {
		fmt.Fprintf(stderr, "tidewatch check: %v\n", err)
		return false
	}
	for _, d := range failed {
		if d.UpdatedAt.Before(start) {
			continue // failed in an earlier run, and reported then
		}
		fmt.Fprintf(stderr, "tidewatch check: trigger %s failed for %s (%s → %s): %s\n", d.Trigger, d.Update.DisplayName, d.Update.Current, d.Update.Candidate, d.LastError)
		ok = false
	}
	return ok
}

// checkHost runs one watch of the host wc names, with opts (the store's
// memo, the dispatcher), and returns its checks.
func checkHost(ctx context.Context, wc config.Watcher, opts watch.Options, reg *registries.Client, st *store.Store, log *slog.Logger) ([]core.Check, error) {
	eng, err := docker.New(docker.Options{Host: wc.DockerHost(), CAFile: wc.CAFile, CertFile: wc.CertFile, KeyFile: wc.KeyFile})
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = eng.Ping(pingCtx)
	cancel()
	if err != nil {
		return nil, err
	}
	opts.Host, opts.WatchByDefault, opts.WatchAll = wc.Name, wc.WatchByDefault, wc.WatchAll
	return watch.New(opts, eng, reg, st, log).Run(ctx)
}

func registryOptions(cfg config.Config) registries.Options {
	var o registries.Options
	insecure := map[string]bool{}
	for _, r := range cfg.Registries {
		o.Credentials = append(o.Credentials, registries.Credentials{Registry: r.URL, Username: r.Username, Password: r.Password, Token: r.Token})
		if r.Insecure {
			insecure[r.URL] = true
		}
		if r.Concurrency > 0 {
			if o.PinConcurrency == nil {
				o.PinConcurrency = map[string]int{}
			}
			o.PinConcurrency[r.URL] = r.Concurrency
		}
	}
	o.Insecure = func(host string) bool { return insecure[host] || registries.IsLoopback(host) }
	return o
}

func rowOf(c core.Check) checkRow {
	r := checkRow{
		Container:     c.Container.DisplayName, // the engine adapter fills it: the label, or the name
		Host:          c.Container.Host,
		Image:         c.Container.Image,
		Current:       c.Current,
		CurrentDigest: c.CurrentDigest,
		Candidate:     c.Candidate,
		Kind:          string(c.Kind),
		Digest:        c.CandidateDigest,
		Link:          c.Link,
		Note:          c.Note,
	}
	if c.Err != nil {
		r.Error = c.Err.Error()
	}
	return r
}

func hasUpdates(rows []checkRow) bool {
	for _, r := range rows {
		if r.Kind != "" && r.Error == "" {
			return true
		}
	}
	return false
}

func printTable(w io.Writer, rows []checkRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tHOST\tIMAGE\tRUNNING\t\tCANDIDATE\tKIND\tNOTE")
	for _, r := range rows {
		cand, arrow := r.Candidate, "→"
		if cand == "" {
			cand, arrow = "up to date", ""
		}
		if r.Kind == string(core.KindDigest) && r.Digest != "" {
			cand += " (" + shortDigest(r.Digest) + ")"
		}
		note := r.Note
		if r.Error != "" {
			cand, arrow, note = "-", "", "error: "+r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(r.Container), r.Host, dash(imageName(r.Image)), dash(r.Current), arrow, cand, dash(r.Kind), note)
	}
	tw.Flush()
}

func imageName(image string) string {
	ref, err := core.ParseImageRef(image)
	if err != nil {
		return image
	}
	return strings.TrimPrefix(ref.Repo(), core.DockerHub+"/library/")
}

func shortDigest(d string) string {
	_, hex, _ := strings.Cut(d, ":")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
