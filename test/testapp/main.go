// Command testapp is the small static program inside the images that the test
// bed builds. It serves HTTP on :8080: "/" answers its version and "/healthz"
// answers 200, or 500 when it was made unhealthy. Run with -probe it is its own
// health-check client (images FROM scratch have no curl): it GETs
// http://127.0.0.1:8080/healthz and exits 0 on 200, 1 otherwise.
//
// Its version comes from -X main.version at build time, else from the VERSION
// environment variable. Its failure mode comes from -X main.fail at build time,
// else from the FAIL environment variable:
//
//	exit         exit 1 at start
//	unhealthy    serve, but answer 500 on /healthz
//	crash-later  serve, then exit 2 after crashAfter (-X main.crashAfter or
//	             CRASH_AFTER, a Go duration, default 3s)
//
// It exits 0 promptly on SIGTERM or SIGINT, so that stopping its container is quick.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Set at build time with -ldflags "-X main.version=... -X main.fail=... -X main.crashAfter=...".
var (
	version    = ""
	fail       = ""
	crashAfter = ""
)

// Failure modes, as given to -X main.fail or FAIL.
const (
	failExit       = "exit"
	failUnhealthy  = "unhealthy"
	failCrashLater = "crash-later"
)

func main() { os.Exit(run()) }

func run() int {
	addr := flag.String("addr", ":8080", "address to serve HTTP on")
	probe := flag.Bool("probe", false, "act as a health-check client: GET /healthz on 127.0.0.1:8080, exit 0 on 200")
	probeURL := flag.String("probe-url", "http://127.0.0.1:8080/healthz", "URL that -probe checks")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	if *probe {
		return runProbe(*probeURL)
	}

	cfg := settings()
	log.Info("testapp starting", "version", cfg.version, "fail", cfg.fail, "addr", *addr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, log, *addr, cfg); err != nil {
		log.Error("testapp failed", "err", err)
		return exitCode(err)
	}
	log.Info("testapp stopped")
	return 0
}

// config is what the app was built or started with.
type config struct {
	version    string
	fail       string
	crashAfter time.Duration
}

// settings reads the build-time values, falling back to the environment.
func settings() config {
	cfg := config{version: version, fail: fail, crashAfter: 3 * time.Second}
	if cfg.version == "" {
		cfg.version = os.Getenv("VERSION")
	}
	if cfg.fail == "" {
		cfg.fail = os.Getenv("FAIL")
	}
	after := crashAfter
	if after == "" {
		after = os.Getenv("CRASH_AFTER")
	}
	if d, err := time.ParseDuration(after); err == nil && d > 0 {
		cfg.crashAfter = d
	}
	return cfg
}

// exitError carries the process exit code for a planned failure.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// serve runs the HTTP server until ctx ends or the failure mode stops it.
func serve(ctx context.Context, log *slog.Logger, addr string, cfg config) error {
	switch cfg.fail {
	case "", failUnhealthy, failCrashLater:
	case failExit:
		return &exitError{code: 1, msg: "failing at start as configured (fail=exit)"}
	default:
		return &exitError{code: 1, msg: fmt.Sprintf("unknown fail mode %q", cfg.fail)}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, cfg.version)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if cfg.fail == failUnhealthy {
			http.Error(w, "unhealthy as configured", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()

	var crash <-chan time.Time
	if cfg.fail == failCrashLater {
		timer := time.NewTimer(cfg.crashAfter)
		defer timer.Stop()
		crash = timer.C
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP on %s: %w", addr, err)
	case <-crash:
		return &exitError{code: 2, msg: fmt.Sprintf("crashing after %s as configured (fail=crash-later)", cfg.crashAfter)}
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down HTTP server: %w", err)
	}
	return nil
}

// runProbe GETs url and reports success by exit code.
func runProbe(url string) int {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "probe: status", resp.StatusCode)
		return 1
	}
	return 0
}
