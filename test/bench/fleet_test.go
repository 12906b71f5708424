package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/memlimit"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/core/watch"
	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/registries/registrytest"
)

// The fleet of issue 13: 10,000 containers over 3,000 repositories on 10
// Docker hosts (simulated, with a real engine's costs), one bearer-token
// registry with 20 ms added to every request, one daemon. Container i runs
// repository i%3000 on host (i/3000+i)%10: each host runs 1,000 containers
// of 1,000 repositories, and each repository runs on 3 or 4 hosts. Every
// container runs 1.0.0 and should be offered 2.0.0.
const (
	fleetRepos      = 3000
	fleetContainers = 10000
	fleetHosts      = 10
	fleetLatency    = 20 * time.Millisecond
)

func fleetRepo(r int) string { return fmt.Sprintf("fleet/r%04d", r) }

// fleetRegistry serves the fleet's repositories (tags 1.0.0 and 2.0.0).
func fleetRegistry(tb testing.TB) *registrytest.Server {
	tb.Helper()
	s := registrytest.New(tb, registrytest.WithBearerAuth("", ""), registrytest.WithLatency(fleetLatency))
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				s.Tag(tb, fleetRepo(r), "2.0.0", s.Push(tb, fleetRepo(r), "1.0.0"))
			}
		}()
	}
	for r := range fleetRepos {
		work <- r
	}
	close(work)
	wg.Wait()
	s.ResetCounts()
	return s
}

// fleetEngines are the fleet's hosts, their containers on the registry at
// host, made afresh on every list (see simEngine).
func fleetEngines(host string) []*simEngine {
	// Host h runs the containers i with (i/fleetRepos+i)%fleetHosts == h.
	idx := make([][]int32, fleetHosts)
	for i := range fleetContainers {
		h := (i/fleetRepos + i) % fleetHosts
		idx[h] = append(idx[h], int32(i))
	}
	image := func(id string) core.LocalImage { return simImage(host, fleetRepo(simRepoOf(id)), "1.0.0") }
	out := make([]*simEngine, fleetHosts)
	for h := range out {
		mine := idx[h]
		out[h] = genSimEngine(len(mine), func(k int) core.Container {
			i := int(mine[k])
			r := i % fleetRepos
			return simContainer(host, fmt.Sprintf("c%05d", i), fleetRepo(r), "1.0.0", simImageID(r))
		}, image)
	}
	return out
}

// fleetDaemon is one daemon watching every host of the fleet: one store,
// one registry client and, unless alone, one Share between the watchers.
type fleetDaemon struct {
	dir      string
	st       *store.Store
	share    *watch.Share
	watchers []*watch.Watcher

	mu     sync.Mutex
	detect time.Duration // the longest time to a host's checks in the last round, store left out
}

func newFleetDaemon(tb testing.TB, engines []*simEngine, dir string, regOpts registries.Options, shared bool) *fleetDaemon {
	tb.Helper()
	st, err := store.Open(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	d := &fleetDaemon{dir: dir, st: st}
	if shared {
		d.share = watch.NewShare(0)
	}
	regOpts.Keychain = authn.NewMultiKeychain()
	reg := registries.New(regOpts, quiet())
	for h, e := range engines {
		d.watchers = append(d.watchers, watch.New(watch.Options{Host: fmt.Sprintf("host%02d", h), WatchByDefault: true, Memo: st, Share: d.share,
			OnPhases: d.phases}, e, reg, st, quiet()))
	}
	return d
}

func (d *fleetDaemon) phases(p watch.Phases) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.detect = max(d.detect, p.Total-p.Store-p.Dispatch)
}

// round runs every host's check at once, as at a common scheduled time,
// and fails unless every container is offered 2.0.0.
func (d *fleetDaemon) round(tb testing.TB) {
	d.mu.Lock()
	d.detect = 0
	d.mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, len(d.watchers))
	for _, w := range d.watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			checks, err := w.Run(context.Background())
			if err != nil {
				errs <- err
				return
			}
			for _, c := range checks {
				if c.Err != nil || c.Candidate != "2.0.0" {
					errs <- fmt.Errorf("%s: candidate %q err %v, want 2.0.0", c.Container.Name, c.Candidate, c.Err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// sizes are the store's files on disk, in MB: the database, and its
// write-ahead log (which the checkpoints copy back, every 10 s, and Close
// truncates).
func (d *fleetDaemon) sizes() (db, wal float64) {
	mb := func(f string) float64 {
		fi, err := os.Stat(filepath.Join(d.dir, f))
		if err != nil {
			return 0
		}
		return float64(fi.Size()) / (1 << 20)
	}
	return mb(store.FileName), mb(store.FileName + "-wal")
}

// fleetBound is the least time a round can take at concurrency c: a ping
// and a token request, then the tag lists of every repository, c at a time.
func fleetBound(c int) time.Duration {
	return 2*fleetLatency + time.Duration((fleetRepos+c-1)/c)*fleetLatency
}

func init() {
	// A cold round and two warm ones of the whole fleet, in a process of
	// their own, against the registry the parent serves.
	childWork["fleet"] = func(t *testing.T, registry string) {
		if os.Getenv("TIDEWATCH_BENCH_MEMLIMIT") != "" { // the soft memory limit serve keeps
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go memlimit.Keep(ctx, os.Getenv, "/", quiet())
		}
		d := newFleetDaemon(t, fleetEngines(registry), t.TempDir(), registries.Options{}, true)
		for range 3 {
			d.round(t)
		}
	}
}

// BenchmarkFleet is one round of checks of the fleet, every host at once,
// as the daemon runs it: requests per repository (all hosts together),
// wall time (with the store writes; and "detect", to the last host's checks
// without them) against the bound at the registry's ceiling concurrency
// (64), and the CPU time of a round (the in-process registry's included). Sub-benchmarks:
// warm and cold with the Share between the watchers; warm without it (each
// host asks for itself, as before); warm and cold with the concurrency pinned
// at the ceiling; 30 rounds, reporting the store's size; the peak RSS of a
// process of its own running a cold round and two warm ones, with the Go
// runtime's defaults and with GOMEMLIMIT=48MiB.
func BenchmarkFleet(b *testing.B) {
	start := time.Now()
	s := fleetRegistry(b)
	b.Logf("fleet registry set up in %s", time.Since(start).Round(time.Millisecond))
	engines := fleetEngines(s.Host)
	for _, bc := range []struct {
		name   string
		warm   bool
		shared bool
		opts   registries.Options
	}{
		{"warm", true, true, registries.Options{}},
		{"cold", false, true, registries.Options{}},
		{"warm/noshare", true, false, registries.Options{}},
		{"warm/pinned64", true, true, registries.Options{Concurrency: registries.DefaultMaxConcurrency}},
		{"cold/pinned64", false, true, registries.Options{Concurrency: registries.DefaultMaxConcurrency}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := newFleetDaemon(b, engines, b.TempDir(), bc.opts, bc.shared)
			if bc.warm {
				d.round(b)
			}
			s.ResetCounts()
			reused := 0
			var wall, detect, cpu time.Duration
			b.ResetTimer()
			for range b.N {
				if !bc.warm {
					b.StopTimer()
					d = newFleetDaemon(b, engines, b.TempDir(), bc.opts, bc.shared)
					b.StartTimer()
				}
				r0 := 0
				if d.share != nil {
					r0 = d.share.Reused()
				}
				t0, c0 := time.Now(), selfCPU()
				d.round(b)
				wall += time.Since(t0)
				cpu += selfCPU() - c0
				detect += d.detect
				if d.share != nil {
					reused += d.share.Reused() - r0
				}
			}
			b.StopTimer()
			n := float64(b.N)
			c := s.Counts()
			b.ReportMetric(float64(c.Total)/n/fleetRepos, "requests/repo")
			reportCounts(b, c, n)
			bound := fleetBound(registries.DefaultMaxConcurrency)
			b.ReportMetric(float64(bound.Milliseconds()), "bound-ms")
			b.ReportMetric(float64((wall / time.Duration(b.N)).Milliseconds()), "wall-ms")
			b.ReportMetric(float64(wall)/n/float64(bound), "wall/bound")
			b.ReportMetric(float64(detect)/n/float64(bound), "detect/bound")
			b.ReportMetric(float64(c.MaxInFlight), "max-in-flight")
			b.ReportMetric(float64(cpu.Milliseconds())/n, "cpu-ms/run")
			if d.share != nil {
				b.ReportMetric(float64(reused)/n, "shared-answers/run")
			}
		})
	}
	b.Run("30runs", func(b *testing.B) {
		for range b.N {
			d := newFleetDaemon(b, engines, b.TempDir(), registries.Options{}, true)
			for range 30 {
				d.round(b)
			}
			db, wal := d.sizes()
			b.ReportMetric(db, "db-MB")
			b.ReportMetric(wal, "wal-MB")
			if err := d.st.Close(); err != nil {
				b.Fatal(err)
			}
			db, _ = d.sizes()
			b.ReportMetric(db, "db-closed-MB")
		}
	})
	b.Run("peakRSS", func(b *testing.B) {
		for range b.N {
			b.ReportMetric(childPeakRSS(b, "fleet", s.Host, "GOMEMLIMIT=off"), "peakRSS-MB")
			// With the soft memory limit tidewatch serve keeps when
			// GOMEMLIMIT is not set (core/memlimit).
			b.ReportMetric(childPeakRSS(b, "fleet", s.Host, "GOMEMLIMIT=", "TIDEWATCH_BENCH_MEMLIMIT=1"), "peakRSS-serve-MB")
			// With a soft memory limit, the Go runtime collects sooner
			// instead of letting the heap double.
			b.ReportMetric(childPeakRSS(b, "fleet", s.Host, "GOMEMLIMIT=48MiB"), "peakRSS-memlimit48-MB")
		}
	})
}
