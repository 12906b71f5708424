package registries_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/registries/registrytest"
)

// BenchmarkCycle is one check of the bench (300 containers over 100
// repositories) through the watch loop, 20ms added to every request, with
// and without the fault mix of the issue (15% 503s, a 429 with Retry-After: 1
// on every tenth request; the plan's counters go on from run to run, so each
// run meets other faults). Cold: a new registry client
// per run (ping and token included). Warm: the client of a long-lived daemon,
// kept across runs. "pinned8" pins the registry at 8 requests in flight (the
// concurrency before it adapted). It reports requests, 429s, containers left
// unchecked and requests sent inside a Retry-After window, per run.
func BenchmarkCycle(b *testing.B) {
	free := registrytest.Faults{}
	for _, bc := range []struct {
		name   string
		faults registrytest.Faults
		opts   registries.Options
		warm   bool
	}{
		{"free/cold", free, registries.Options{}, false},
		{"free/warm", free, registries.Options{}, true},
		{"free/cold/pinned8", free, registries.Options{Concurrency: 8}, false},
		{"free/warm/pinned8", free, registries.Options{Concurrency: 8}, true},
		{"faults/cold", issueFaults, registries.Options{}, false},
		{"faults/warm", issueFaults, registries.Options{}, true},
		{"faults/cold/pinned8", issueFaults, registries.Options{Concurrency: 8}, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, e := benchRegistry(b, registrytest.WithLatency(20*time.Millisecond), registrytest.WithFaults(bc.faults))
			w, _ := newWatcher(e, bc.opts, quiet())
			if bc.warm {
				if _, err := w.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			s.ResetCounts()
			unchecked := 0
			b.ResetTimer()
			for b.Loop() {
				if !bc.warm {
					w, _ = newWatcher(e, bc.opts, quiet())
				}
				checks, err := w.Run(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				unchecked += len(failedChecks(checks))
			}
			b.StopTimer()
			c := s.Counts()
			n := float64(b.N)
			b.ReportMetric(float64(c.Total)/n, "requests/run")
			b.ReportMetric(float64(c.Throttled)/n, "429s/run")
			b.ReportMetric(float64(c.Injected-c.Throttled)/n, "5xx/run")
			b.ReportMetric(float64(unchecked)/n, "unchecked/run")
			b.ReportMetric(float64(c.MaxInFlight), "max-in-flight")
			b.ReportMetric(float64(c.IgnoredRetryAfter)/n, "sent-in-retry-after/run")
		})
	}
}
