//go:build faults

package registries_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/registries/registrytest"
)

// The fault matrix, behind the build tag "faults" (make faults):
//
//	go test -tags faults -run 'TestFaultMatrix|TestWaitForEver' -v ./registries/
//
// Each cell runs the bench's check (300 containers over 100 repositories)
// against a registry that fails by a deterministic plan, for several seeds.
// In the cells no harsher than the issue's mix (at most 15% errors, a 429 on
// at most every tenth request), every container must be checked with fewer
// than twice the requests of a fault-free run. In the harsher ones, every
// container that is not checked must fail with a classified error naming its
// repository (unavailable or rate limited), after the run's last pass.

type cell struct {
	name   string
	faults registrytest.Faults
	opts   registries.Options
	pages  bool // 2 tags per page: 3 pages per repository
	harsh  bool
}

func TestFaultMatrix(t *testing.T) {
	issue := issueFaults
	with := func(f func(f *registrytest.Faults)) registrytest.Faults {
		x := issue
		f(&x)
		return x
	}
	cells := []cell{
		{name: "issue mix", faults: issue},
		{name: "issue mix, 500s", faults: with(func(f *registrytest.Faults) { f.ErrorStatus = 500 })},
		{name: "issue mix, 502s", faults: with(func(f *registrytest.Faults) { f.ErrorStatus = 502 })},
		{name: "issue mix, 504s", faults: with(func(f *registrytest.Faults) { f.ErrorStatus = 504 })},
		{name: "issue mix, Retry-After 0", faults: with(func(f *registrytest.Faults) { f.RetryAfter = "0" })},
		{name: "issue mix, Retry-After 2", faults: with(func(f *registrytest.Faults) { f.RetryAfter = "2"; f.ThrottleEvery = 20 })},
		{name: "issue mix, tag pages", faults: issue, pages: true},
		{name: "5% errors, 5% resets", faults: with(func(f *registrytest.Faults) { f.ErrorRate, f.ResetRate = 0.05, 0.05 })},
		{name: "5% timeouts", faults: with(func(f *registrytest.Faults) {
			f.ErrorRate, f.SlowRate, f.Slow, f.ThrottleEvery = 0, 0.05, 2*time.Second, 0
		}), opts: registries.Options{Timeout: 300 * time.Millisecond}},
		{name: "15% errors, no 429", faults: with(func(f *registrytest.Faults) { f.ThrottleEvery = 0 })},
		{name: "30% errors", faults: with(func(f *registrytest.Faults) { f.ErrorRate = 0.30 }), harsh: true},
		{name: "429 every 5th", faults: with(func(f *registrytest.Faults) { f.ThrottleEvery = 5 }), harsh: true},
		{name: "429 without Retry-After", faults: with(func(f *registrytest.Faults) { f.RetryAfter = "" }), harsh: true},
	}
	for _, c := range cells {
		for _, seed := range []uint64{3, 11, 1234} {
			c := c
			c.faults.Seed = seed
			t.Run(fmt.Sprintf("%s/seed %d", c.name, seed), func(t *testing.T) {
				t.Parallel()
				runCell(t, c)
			})
		}
	}
}

func runCell(t *testing.T, c cell) {
	opts := []registrytest.Option{registrytest.WithFaults(c.faults), registrytest.WithLatency(5 * time.Millisecond)}
	if c.pages {
		opts = append(opts, registrytest.WithPageSize(2))
	}
	s, e := benchRegistry(t, opts...)
	free := faultFree
	if c.pages {
		free = 2 + 3*benchRepos
	}
	o := c.opts
	w, _ := newWatcher(e, o, quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	checks, err := w.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	failed := failedChecks(checks)
	cnt := s.Counts()
	t.Logf("%s, seed %d: %d requests (%d 429, %d other faults; fault-free %d), %d unchecked, %v", c.name, c.faults.Seed, cnt.Total, cnt.Throttled, cnt.Injected-cnt.Throttled, free, len(failed), time.Since(start).Round(time.Millisecond))
	if !c.harsh {
		if len(failed) > 0 {
			t.Errorf("%d containers not checked:\n%s", len(failed), strings.Join(failed, "\n"))
		}
		if cnt.Total >= 2*free {
			t.Errorf("requests = %d, want fewer than %d (twice a fault-free run)", cnt.Total, 2*free)
		}
		return
	}
	for _, ch := range checks {
		if ch.Err == nil {
			continue
		}
		if !errors.Is(ch.Err, core.ErrUnavailable) && !errors.Is(ch.Err, core.ErrRateLimited) || !strings.Contains(ch.Err.Error(), ch.Ref.Repo()) {
			t.Errorf("%s: %v; want unavailable or rate limited, naming %s", ch.Container.Name, ch.Err, ch.Ref.Repo())
		}
	}
	if len(failed) > benchContainers/20 {
		t.Errorf("%d of %d containers not checked, want at most 5%%", len(failed), benchContainers)
	}
	if cnt.Total >= 3*free {
		t.Errorf("requests = %d, want fewer than %d (three times a fault-free run)", cnt.Total, 3*free)
	}
}

// TestWaitForEver: registries that answer every request (or every tag
// listing) with 429 and Retry-After: 1 end the run, every container "rate
// limited", within the cap on waiting or the run's deadline, at a bounded
// number of requests.
func TestWaitForEver(t *testing.T) {
	for _, tc := range []struct {
		name     string
		faults   registrytest.Faults
		tagsOnly bool
		maxWait  time.Duration
		deadline time.Duration
		within   time.Duration
	}{
		{name: "every request, cap 5s", faults: registrytest.Faults{ThrottleEvery: 1, RetryAfter: "1"}, maxWait: 5 * time.Second, deadline: time.Minute, within: 10 * time.Second},
		{name: "every tag listing, cap 5s", tagsOnly: true, maxWait: 5 * time.Second, deadline: time.Minute, within: 15 * time.Second},
		{name: "every tag listing, run deadline 3s", tagsOnly: true, maxWait: time.Minute, deadline: 3 * time.Second, within: 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, e := benchRegistry(t, registrytest.WithFaults(tc.faults))
			if tc.tagsOnly {
				s.FailNext("/tags/list", http.StatusTooManyRequests, 1<<30, "1")
			}
			w, _ := newWatcher(e, registries.Options{MaxRetryAfter: tc.maxWait}, quiet())
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			start := time.Now()
			checks, err := w.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			for _, c := range checks {
				if !errors.Is(c.Err, core.ErrRateLimited) {
					t.Fatalf("%s: %v, want rate limited", c.Container.Name, c.Err)
				}
			}
			cnt := s.Counts()
			t.Logf("%d requests in %v; e.g. %v", cnt.Total, took.Round(time.Millisecond), checks[0].Err)
			if took > tc.within {
				t.Errorf("run took %v, want within %v", took, tc.within)
			}
			if cnt.Total > faultFree {
				t.Errorf("requests = %d, want at most %d (a fault-free run's)", cnt.Total, faultFree)
			}
		})
	}
}
