package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/core/watch"
	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/registries/registrytest"
)

const (
	containers   = 1000
	repositories = 300
	latency      = 20 * time.Millisecond
)

// engine is a simulated Docker host: a fixed container list, no events.
type engine struct{ ctrs []core.Container }

func (e engine) Containers(ctx context.Context, all bool) ([]core.Container, error) {
	return e.ctrs, nil
}

// Image returns the RepoDigests of every container that runs image id, all together.
func (e engine) Image(ctx context.Context, id string) (core.LocalImage, error) {
	var img core.LocalImage
	for _, c := range e.ctrs {
		if c.ImageID == id {
			img.RepoDigests = append(img.RepoDigests, c.RepoDigests...)
		}
	}
	return img, nil
}
func (e engine) Inspect(ctx context.Context, id string) (core.Container, error) {
	return core.Container{}, core.ErrNotFound
}
func (e engine) Ping(ctx context.Context) error { return nil }
func (e engine) Events(ctx context.Context, since time.Time) (<-chan core.EngineEvent, <-chan error) {
	errs := make(chan error, 1)
	errs <- fmt.Errorf("no events in the benchmark")
	return nil, errs
}

// setup pushes repositories with three versions each and returns the
// registry and a host running containers spread over them, all on 1.0.0.
func setup(b *testing.B) (*registrytest.Server, engine) {
	b.Helper()
	s := registrytest.New(b, registrytest.WithBearerAuth("", ""), registrytest.WithLatency(latency))
	for r := range repositories {
		repo := fmt.Sprintf("app%03d", r)
		d := s.Push(b, repo, "1.0.0")
		for _, tag := range []string{"1.0.1", "1.1.0", "2.0.0", "latest"} {
			s.Tag(b, repo, tag, d)
		}
	}
	s.ResetCounts()
	return s, checkEngine(s.Host)
}

// checkEngine is the host of the check benchmarks, its containers on the
// registry at host.
func checkEngine(host string) engine {
	var e engine
	for i := range containers {
		image := fmt.Sprintf("%s/app%03d:1.0.0", host, i%repositories)
		e.ctrs = append(e.ctrs, core.Container{ID: strconv.Itoa(i), Name: fmt.Sprintf("c%04d", i), Image: image, ImageID: "sha256:" + strings.Repeat("0", 64), State: "running"})
	}
	return e
}

func init() {
	// A check with a new client, then the next one with the same client, in
	// a process of their own.
	childWork["check1000"] = func(t *testing.T, registry string) {
		e := checkEngine(registry)
		reg := registries.New(registries.Options{}, quiet())
		w := watch.New(watch.Options{Host: "bench", WatchByDefault: true}, e, reg, nil, quiet())
		for range 2 {
			checks, err := w.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(checks) != containers {
				t.Fatalf("checked %d containers, want %d", len(checks), containers)
			}
		}
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func run(b *testing.B, w *watch.Watcher) {
	checks, err := w.Run(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if len(checks) != containers {
		b.Fatalf("checked %d containers, want %d", len(checks), containers)
	}
	for _, c := range checks {
		if c.Err != nil || c.Candidate != "2.0.0" {
			b.Fatalf("%s: candidate %q err %v, want 2.0.0", c.Container.Name, c.Candidate, c.Err)
		}
	}
}

// BenchmarkCheckCold is one full check with a new registry client each time:
// a ping and a token per registry, then one tag listing per repository.
func BenchmarkCheckCold(b *testing.B) {
	s, e := setup(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		reg := registries.New(registries.Options{}, quiet())
		run(b, watch.New(watch.Options{Host: "bench", WatchByDefault: true}, e, reg, nil, quiet()))
	}
	report(b, s)
}

// BenchmarkCheckWarm is the next scheduled run of a long-lived daemon: the
// registry client, its connections and its token are kept between runs.
func BenchmarkCheckWarm(b *testing.B) {
	s, e := setup(b)
	reg := registries.New(registries.Options{}, quiet())
	w := watch.New(watch.Options{Host: "bench", WatchByDefault: true}, e, reg, nil, quiet())
	run(b, w) // the cold run
	s.ResetCounts()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		run(b, w)
	}
	report(b, s)
}

func report(b *testing.B, s *registrytest.Server) {
	b.StopTimer()
	c := s.Counts()
	n := float64(b.N)
	b.ReportMetric(float64(c.Total)/n/repositories, "requests/repo")
	b.ReportMetric(float64(c.Token)/n, "tokens/run")
	b.ReportMetric(float64(c.TagList)/n, "taglists/run")
	b.ReportMetric(float64(c.ManifestGet)/n, "manifestGETs/run")
	// In a process of its own: this one may have run other benchmarks first.
	b.ReportMetric(childPeakRSS(b, "check1000", s.Host), "peakRSS-MB")
}

// peakRSS reads the process's peak resident set (VmHWM) in MB, 0 when
// unknown; see childPeakRSS for a benchmark's own.
func peakRSS() float64 { return procStatus("VmHWM:") }

// procStatus reads a memory line of /proc/self/status in MB, 0 when unknown.
func procStatus(field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

// watchWithStore is the watcher of the daemon over the simulated host, recording into a store.
func watchWithStore(b *testing.B, e engine) *watch.Watcher {
	b.Helper()
	s, err := store.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return watch.New(watch.Options{Host: "bench", WatchByDefault: true, Memo: s}, e, registries.New(registries.Options{}, quiet()), s, quiet())
}
