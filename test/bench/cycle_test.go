package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/core/watch"
	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/registries/registrytest"
)

// The bench of issue 13 (and of the peer comparison with What's Up Docker
// and Diun): 300 containers over 100 repositories, each with the tags
// 1.0.0 1.1.0 1.2.0 2.0.0 latest; container i runs r((i-1)%100+1):1.0.0,
// so 3 containers per repository and 100 distinct images; every container
// should be offered 2.0.0. The registry is anonymous (no token), 20 ms
// added to every request: a cold cycle needs 101 requests (a ping and one
// tag list per repository), a warm one 100. The engine is simulated with a
// real one's costs (sim_test.go).
const (
	cycleRepos      = 100
	cycleContainers = 300
)

// cycleRegistry serves the bench's repositories.
func cycleRegistry(tb testing.TB) *registrytest.Server {
	tb.Helper()
	s := registrytest.New(tb, registrytest.WithLatency(20*time.Millisecond))
	for r := range cycleRepos {
		repo := cycleRepo(r)
		d := s.Push(tb, repo, "1.0.0")
		for _, tag := range []string{"1.1.0", "1.2.0", "2.0.0", "latest"} {
			s.Tag(tb, repo, tag, d)
		}
	}
	s.ResetCounts()
	return s
}

func cycleRepo(r int) string { return fmt.Sprintf("bench/r%03d", r+1) }

// cycleEngine is the bench's host, its containers on the registry at host,
// made afresh on every list (see simEngine).
func cycleEngine(host string) *simEngine {
	return genSimEngine(cycleContainers, func(i int) core.Container {
		r := i % cycleRepos
		return simContainer(host, fmt.Sprintf("bench-c%03d", i+1), cycleRepo(r), "1.0.0", simImageID(r))
	}, func(id string) core.LocalImage { return simImage(host, cycleRepo(simRepoOf(id)), "1.0.0") })
}

// cycleDaemon is what a daemon watching the bench's host holds: a store,
// a registry client and a watcher, which sums the phases of its runs.
type cycleDaemon struct {
	st *store.Store
	w  *watch.Watcher

	mu     sync.Mutex
	phases watch.Phases
	runs   int
}

func newCycleDaemon(tb testing.TB, e watch.Engine, dir string) *cycleDaemon {
	tb.Helper()
	st, err := store.Open(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	d := &cycleDaemon{st: st}
	reg := registries.New(registries.Options{Keychain: authn.NewMultiKeychain()}, quiet())
	d.w = watch.New(watch.Options{Host: "bench", WatchByDefault: true, Memo: st, OnPhases: d.add}, e, reg, st, quiet())
	return d
}

func (d *cycleDaemon) add(p watch.Phases) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.runs++
	d.phases.List += p.List
	d.phases.Inspect += p.Inspect
	d.phases.Registry += p.Registry
	d.phases.Select += p.Select
	d.phases.Store += p.Store
	d.phases.Dispatch += p.Dispatch
	d.phases.Total += p.Total
}

// cycle runs one check of the bench and fails unless every container is
// offered 2.0.0.
func (d *cycleDaemon) cycle(tb testing.TB) {
	checks, err := d.w.Run(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if len(checks) != cycleContainers {
		tb.Fatalf("checked %d containers, want %d", len(checks), cycleContainers)
	}
	for _, c := range checks {
		if c.Err != nil || c.Candidate != "2.0.0" {
			tb.Fatalf("%s: candidate %q err %v, want 2.0.0", c.Container.Name, c.Candidate, c.Err)
		}
	}
}

func init() {
	// A cold cycle, then five warm ones, in a process of their own.
	childWork["cycle300"] = func(t *testing.T, registry string) {
		d := newCycleDaemon(t, cycleEngine(registry), t.TempDir())
		for range 6 {
			d.cycle(t)
		}
	}
}

// BenchmarkCycle300 is one check of the bench's 300 containers, recorded in
// the store, as the daemon runs it. Cold: the first check of a new daemon
// (empty store, no connection, no image known). Warm: the next scheduled
// check of a long-lived one. It reports the time of each phase (they
// overlap: registry requests start as soon as the list is read, beside the
// image inspects), the requests by class, the image inspects, the CPU time
// of a run (the in-process registry's included), and the peak RSS of a
// process that runs a cold cycle and five warm ones.
func BenchmarkCycle300(b *testing.B) {
	s := cycleRegistry(b)
	e := cycleEngine(s.Host)
	for _, warm := range []bool{false, true} {
		name := "cold"
		if warm {
			name = "warm"
		}
		b.Run(name, func(b *testing.B) {
			d := newCycleDaemon(b, e, b.TempDir())
			if warm {
				d.cycle(b) // the cold cycle, not counted
				d.mu.Lock()
				d.phases, d.runs = watch.Phases{}, 0
				d.mu.Unlock()
			}
			s.ResetCounts()
			e.inspects.Store(0)
			var cpu time.Duration
			b.ResetTimer()
			for range b.N {
				if !warm {
					b.StopTimer()
					d = newCycleDaemon(b, e, b.TempDir())
					b.StartTimer()
				}
				c0 := selfCPU()
				d.cycle(b)
				cpu += selfCPU() - c0
			}
			b.StopTimer()
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/run")
			reportCounts(b, s.Counts(), float64(b.N))
			b.ReportMetric(float64(e.inspects.Load())/float64(b.N), "inspects/run")
			reportPhases(b, d)
		})
	}
	b.Run("peakRSS", func(b *testing.B) {
		for range b.N {
			b.ReportMetric(childPeakRSS(b, "cycle300", s.Host), "peakRSS-MB")
		}
	})
}

// reportCounts reports requests per run, in all and by class.
func reportCounts(b *testing.B, c registrytest.Counts, runs float64) {
	b.ReportMetric(float64(c.Total)/runs, "requests/run")
	b.ReportMetric(float64(c.TagList)/runs, "tags/run")
	b.ReportMetric(float64(c.ManifestHead)/runs, "digests/run")
	b.ReportMetric(float64(c.ManifestGet)/runs, "manifests/run")
	b.ReportMetric(float64(c.BlobGet)/runs, "blobs/run")
	b.ReportMetric(float64(c.Token)/runs, "tokens/run")
	b.ReportMetric(float64(c.Ping)/runs, "pings/run")
}

// reportPhases reports the mean time of each phase of d's runs, in ms.
func reportPhases(b *testing.B, d *cycleDaemon) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.runs == 0 {
		return
	}
	n := float64(d.runs)
	ms := func(t time.Duration) float64 { return float64(t.Microseconds()) / 1000 / n }
	for name, t := range d.phases.All() {
		b.ReportMetric(ms(t), name+"-ms")
	}
}
