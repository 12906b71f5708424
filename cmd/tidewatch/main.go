// Command tidewatch watches the containers running on Docker hosts and finds
// newer images for them in their registries.
//
// Usage:
//
//	tidewatch serve
//	tidewatch check [--format table|json] [--exit-code] [--trigger-wait 2m]
//	tidewatch plugins
//	tidewatch version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/plugins/host"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { os.Exit(run()) }

// Exit codes of the check command, and of tidewatch in general.
const (
	exitOK      = 0 // ran, and (with --exit-code) found no update
	exitError   = 1 // a configuration, engine, registry or container error
	exitUpdates = 2 // with --exit-code: ran without error and found updates
	exitUsage   = 64
)

const usage = `tidewatch watches the containers on Docker hosts and finds newer images for them.

Usage:
  tidewatch serve                                      the daemon: watch on schedule and on engine events, fire the
                                                       triggers, serve the API and the web UI
  tidewatch check [--format table|json] [--exit-code]   check every configured host once, print what can be updated,
                                                       and fire the automatic triggers
  tidewatch plugins                                    list the trigger types (built-in and from TIDEWATCH_PLUGINS_DIR) with their options, and the configured triggers
  tidewatch version                                    print the version

Configuration is read from TIDEWATCH_* environment variables; see the README.
`

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runArgs(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
}

// runArgs runs one command line; it is run() without the process around it, for tests.
func runArgs(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"serve"} // the default command
	}
	switch args[0] {
	case "version", "--version", "-v", "help", "--help", "-h", "healthcheck", "serve", "plugins":
		// Commands without arguments: one given is a mistake, not a wish to
		// start the daemon with it ignored.
		if len(args) > 1 {
			if isHelp(args[1]) && len(args) == 2 {
				fmt.Fprint(stdout, usage)
				return exitOK
			}
			fmt.Fprintf(stderr, "tidewatch %s: unexpected argument %q; it takes none\n\n%s", args[0], args[1], usage)
			return exitUsage
		}
	}
	switch args[0] {
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "tidewatch %s\n", buildVersion())
		return exitOK
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "healthcheck":
		cfg, err := config.Load(environ)
		if err != nil {
			fmt.Fprintf(stderr, "tidewatch: invalid configuration:\n%v\n", err)
			return exitError
		}
		return healthcheckCommand(ctx, cfg, stderr)
	case "check", "plugins", "serve":
		cfg, err := config.Load(environ)
		log := newLogger(cfg.Log, stderr)
		if err != nil {
			// The triggers' own options are checked by their plugins: ask
			// them too, so that every mistake is reported at once.
			if len(cfg.Triggers) > 0 && args[0] != "plugins" {
				h := host.New(host.Options{Level: slog.LevelError}, log)
				_, _, terr := loadTriggers(ctx, cfg, h, log)
				h.Close()
				err = errors.Join(err, terr)
			}
			fmt.Fprintf(stderr, "tidewatch: invalid configuration:\n%v\n", err)
			return exitError
		}
		switch args[0] {
		case "plugins":
			return pluginsCommand(ctx, cfg, stdout, stderr, log)
		case "serve":
			return serveCommand(ctx, cfg, stdout, stderr, log)
		}
		return checkCommand(ctx, cfg, args[1:], stdout, stderr, log)
	case "trigger": // hidden: the process of a built-in trigger
		return triggerCommand(args[1:], stderr)
	case "self-update": // hidden: the helper container that updates tidewatch's own
		return selfUpdateCommand(ctx, args[1:], environ, stderr)
	default:
		fmt.Fprintf(stderr, "tidewatch: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	o := &slog.HandlerOptions{Level: c.Level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}
