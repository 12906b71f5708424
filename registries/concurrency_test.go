package registries

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/registries/registrytest"
)

const ms = time.Millisecond

// answer is an observation of a request to the registry itself, sent with
// every slot taken, answered 200 after lat.
func answer(lat time.Duration) observation {
	return observation{own: true, busy: true, status: http.StatusOK, latency: lat, remaining: -1, limit: -1}
}

func with(o observation, f func(o *observation)) observation {
	f(&o)
	return o
}

var (
	throttled   = observation{own: true, busy: true, status: http.StatusTooManyRequests, retryAfter: true, latency: 20 * ms, remaining: -1, limit: -1}
	unavailable = observation{own: true, busy: true, status: http.StatusServiceUnavailable, latency: 20 * ms, remaining: -1, limit: -1}
	timedOut    = observation{own: true, busy: true, timeout: true, remaining: -1, limit: -1}
)

func remaining(o observation, rem, limit int) observation {
	return with(o, func(o *observation) { o.remaining, o.limit = rem, limit })
}

// step feeds an observation n times (once when n is 0) and checks the limit
// after. stale marks a request sent before the last change of limit.
type step struct {
	n     int
	o     observation
	stale bool
	want  int
}

func TestController(t *testing.T) {
	flat, light := answer(20*ms), with(answer(20*ms), func(o *observation) { o.light = true })
	tests := []struct {
		name    string
		pin     int
		ceiling int
		steps   []step
	}{
		{"doubles after a busy round at flat latency, before any push back", 0, 64, []step{
			{n: 7, o: flat, want: 8}, {o: flat, want: 16}, {n: 15, o: flat, want: 16}, {o: flat, want: 32}, {n: 32, o: flat, want: 64}}},
		{"not while the work, not the limit, holds the pace", 0, 64, []step{
			{n: 24, o: with(flat, func(o *observation) { o.busy = false }), want: 8}}},
		{"not after a round with a 5xx, which is no sign to back off", 0, 64, []step{
			{n: 7, o: flat, want: 8}, {o: unavailable, want: 8}, {n: 8, o: flat, want: 16}}},
		{"not after a round with a network error", 0, 64, []step{
			{n: 7, o: flat, want: 8}, {o: observation{own: true, busy: true, remaining: -1, limit: -1}, want: 8}, {n: 8, o: flat, want: 16}}},
		{"not while latency is above flat", 0, 64, []step{
			{o: light, want: 8}, {n: 24, o: answer(30 * ms), want: 8}}},
		{"halves at once on a 429", 0, 64, []step{{o: throttled, want: 4}}},
		{"halves once for answers sent at the old limit", 0, 64, []step{
			{o: throttled, want: 4}, {n: 7, o: throttled, stale: true, want: 4}, {o: throttled, want: 2}}},
		{"halves on a 429 without Retry-After", 0, 64, []step{
			{o: with(throttled, func(o *observation) { o.retryAfter = false }), want: 4}}},
		{"halves on a 503 with Retry-After", 0, 64, []step{
			{o: with(unavailable, func(o *observation) { o.retryAfter = true }), want: 4}}},
		{"halves on a timeout", 0, 64, []step{{o: timedOut, want: 4}}},
		{"halves when ratelimit-remaining drops to a tenth, once", 0, 64, []step{
			{o: remaining(flat, 11, 100), want: 8}, {o: remaining(flat, 10, 100), want: 4},
			{n: 12, o: remaining(flat, 9, 100), want: 4}, // low: no growth either
			{n: 3, o: remaining(flat, 60, 100), want: 4}, {o: remaining(flat, 60, 100), want: 5}}},
		{"without ratelimit-limit, 10 remaining is low", 0, 64, []step{
			{o: remaining(flat, 11, -1), want: 8}, {o: remaining(flat, 10, -1), want: 4}}},
		{"halves when latency rises sharply", 0, 64, []step{
			{o: light, want: 8}, {o: answer(60 * ms), want: 8}, {o: answer(60 * ms), want: 4}}},
		{"one slow answer is not a rise", 0, 64, []step{
			{o: light, want: 8}, {o: answer(500 * ms), want: 8}, {n: 3, o: flat, want: 8}}},
		{"grows by one per round near where the registry pushed back", 0, 64, []step{
			{o: throttled, want: 4}, {n: 3, o: flat, want: 4}, {o: flat, want: 5}, {n: 4, o: flat, want: 5}, {o: flat, want: 6}, {n: 6, o: flat, want: 7}}},
		{"by a quarter once pushed back, well below where", 0, 64, []step{
			{n: 8, o: flat, want: 16}, {n: 16, o: flat, want: 32},
			{o: throttled, want: 16}, // pushed back at 32
			{n: 16, o: flat, want: 20}, {n: 20, o: flat, want: 25}, {n: 25, o: flat, want: 26}, {n: 26, o: flat, want: 27}}},
		{"a rise of latency ends the slow start too", 0, 64, []step{
			{n: 8, o: flat, want: 16}, {n: 2, o: answer(60 * ms), want: 16}, {o: answer(60 * ms), want: 8},
			{n: 8, o: flat, want: 10}}},
		{"stops at the ceiling", 0, 10, []step{
			{n: 8, o: flat, want: 10}, {n: 30, o: flat, want: 10}}},
		{"reaches a public ceiling in one round", 0, PublicMaxConcurrency, []step{
			{n: 8, o: flat, want: 16}, {n: 40, o: flat, want: 16}}},
		{"a public ceiling below the start", 0, 4, []step{{o: flat, want: 4}}},
		{"never below one", 0, 64, []step{
			{o: throttled, want: 4}, {o: throttled, want: 2}, {o: throttled, want: 1}, {n: 3, o: throttled, want: 1},
			{n: 2, o: flat, want: 1}, {o: flat, want: 2}}},
		{"the token server's latency does not count", 0, 64, []step{
			{o: light, want: 8}, {n: 5, o: with(answer(500*ms), func(o *observation) { o.own = false }), want: 8}}},
		{"pinned never changes", 5, 64, []step{
			{o: throttled, want: 5}, {o: timedOut, want: 5}, {n: 40, o: flat, want: 5}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newController(tc.pin, tc.ceiling)
			for i, s := range tc.steps {
				for range max(s.n, 1) {
					o := s.o
					o.epoch = c.epoch
					if s.stale {
						o.epoch--
					}
					c.observe(o)
				}
				if c.limit != s.want {
					t.Fatalf("after step %d (%d × status %d, latency %v): limit %d, want %d", i, max(s.n, 1), s.o.status, s.o.latency, c.limit, s.want)
				}
			}
		})
	}
}

func TestControllerBaseline(t *testing.T) {
	c := newController(0, 64)
	obs := func(lat time.Duration, light bool) {
		o := answer(lat)
		o.light, o.epoch, o.busy = light, c.epoch, false
		c.observe(o)
	}
	obs(20*ms, true)
	for range 200 { // the queueing we cause, at a full limit
		obs(40*ms, false)
	}
	if c.baseline != 20*ms {
		t.Errorf("baseline after answers sent at a full limit = %v, want 20ms (they do not raise it)", c.baseline)
	}
	for range 40 { // the network got slower: answers at a light load show it
		obs(40*ms, true)
	}
	if c.baseline < 39*ms {
		t.Errorf("baseline after 40 light answers at 40ms = %v, want about 40ms", c.baseline)
	}
	obs(10*ms, false)
	if c.baseline != 10*ms {
		t.Errorf("baseline after a faster answer = %v, want 10ms", c.baseline)
	}
}

func TestChange(t *testing.T) {
	c := newController(0, 64)
	o := throttled
	if ch := c.observe(o); ch.from != 8 || ch.to != 4 || ch.reason != "429 too many requests" {
		t.Errorf("observe(429) = %+v, want 8 → 4 for a 429", ch)
	}
	if ch := c.observe(o); ch.from != 4 || ch.to != 4 {
		t.Errorf("observe(stale 429) = %+v, want no change", ch)
	}
}

func TestIsPublic(t *testing.T) {
	for host, want := range map[string]bool{
		"index.docker.io": true, "registry-1.docker.io": true, "docker.io": true, "ghcr.io": true, "GHCR.IO": true,
		"quay.io": true, "gcr.io": true, "eu.gcr.io": true, "europe-west1-docker.pkg.dev": true, "public.ecr.aws": true,
		"mcr.microsoft.com": true, "registry.gitlab.com": true, "ghcr.io:443": true, "registry.k8s.io": true,
		"127.0.0.1:5000": false, "registry.lab.example": false, "123456789012.dkr.ecr.eu-west-1.amazonaws.com": false,
		"myregistry.azurecr.io": false, "gitlab.example.com": false, "notgcr.io": false, "pkg.dev.example": false,
		"[::1]:5000": false, "": false,
	} {
		if got := IsPublic(host); got != want {
			t.Errorf("IsPublic(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCeilingsAndPins(t *testing.T) {
	c := New(Options{PinConcurrency: map[string]int{"docker.io": 3, "https://lab.example:5000/": 20, "ghcr.io": 0}}, nil)
	for _, tc := range []struct {
		host        string
		limit, ceil int
		pinned      bool
	}{
		{"index.docker.io", 3, 3, true},
		{"lab.example:5000", 20, 20, true},
		{"ghcr.io", 8, PublicMaxConcurrency, false},
		{"quay.io", 8, PublicMaxConcurrency, false},
		{"registry.lab.example", 8, DefaultMaxConcurrency, false},
	} {
		limit, ceil, pinned := newGate(c.controllerFor(tc.host)).state()
		if limit != tc.limit || ceil != tc.ceil || pinned != tc.pinned {
			t.Errorf("%s: limit %d, ceiling %d, pinned %v; want %d, %d, %v", tc.host, limit, ceil, pinned, tc.limit, tc.ceil, tc.pinned)
		}
	}
	all := New(Options{Concurrency: 2, PinConcurrency: map[string]int{"ghcr.io": 5}}, nil)
	if limit, _, pinned := newGate(all.controllerFor("quay.io")).state(); limit != 2 || !pinned {
		t.Errorf("Options.Concurrency 2: quay.io limit %d pinned %v, want 2 and pinned", limit, pinned)
	}
	if limit, _, _ := newGate(all.controllerFor("ghcr.io")).state(); limit != 5 {
		t.Errorf("PinConcurrency wins over Concurrency: ghcr.io limit %d, want 5", limit)
	}
}

func TestGateFollowsTheLimit(t *testing.T) {
	g := newGate(newController(0, 64))
	g.ctl.limit = 2
	ctx := context.Background()
	a, _ := g.acquire(ctx)
	b, _ := g.acquire(ctx)
	if !b.busy || a.busy || !a.light {
		t.Errorf("tickets %+v %+v: want the second busy (it took the last slot), the first light", a, b)
	}
	got := make(chan ticket, 2)
	for range 2 {
		go func() {
			tk, err := g.acquire(ctx)
			if err != nil {
				t.Error(err)
			}
			got <- tk
		}()
	}
	waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.queue) == 2 })
	// A 429 halves the limit to 1: freeing a slot admits no one, since one
	// request is still in flight.
	g.release(a, throttled)
	if limit, _, _ := g.state(); limit != 1 {
		t.Fatalf("limit after a 429 = %d, want 1", limit)
	}
	select {
	case tk := <-got:
		t.Fatalf("admitted %+v with 1 in flight at limit 1", tk)
	case <-time.After(50 * ms):
	}
	g.giveBack(b)
	tk := <-got
	if !tk.busy {
		t.Errorf("a request that waited got %+v, want busy", tk)
	}
	g.giveBack(tk)
	g.giveBack(<-got)
	if g.inFlight != 0 {
		t.Errorf("in flight after all released = %d, want 0", g.inFlight)
	}
}

func TestGateWaitEndsWithContext(t *testing.T) {
	g := newGate(newController(1, 1))
	held, _ := g.acquire(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 50*ms)
	defer cancel()
	if _, err := g.acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire with every slot taken = %v, want context.DeadlineExceeded", err)
	}
	g.giveBack(held)
	if tk, err := g.acquire(context.Background()); err != nil || g.inFlight != 1 {
		t.Fatalf("acquire after the give-back = %+v, %v with %d in flight; want the one slot", tk, err, g.inFlight)
	}
}

// waitFor polls cond until it holds, or fails the test after 5s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// burst lists the tags of every ref at once and returns the registry's
// concurrency after.
func burst(t *testing.T, c *Client, host string, refs []core.ImageRef) int {
	t.Helper()
	tagsAll(t, c, refs)
	return status(t, c, host).Concurrency
}

func TestConcurrencyGrowsOnAQuietRegistryAndDropsOn429(t *testing.T) {
	t.Parallel() // mostly waiting: Retry-After and latency
	// 100ms per request, so that the scheduling noise of a loaded test
	// machine (tens of ms) does not look like the registry slowing down.
	s := registrytest.New(t, registrytest.WithLatency(100*ms))
	refs := pushRepos(t, s, 200)
	c, buf := newClient(t, Options{})
	grown := burst(t, c, s.Host, refs)
	t.Logf("concurrency after 200 tag listings: %d", grown)
	if grown <= DefaultConcurrency {
		t.Fatalf("concurrency after 200 tag listings at a flat 100ms = %d, want above %d", grown, DefaultConcurrency)
	}
	if got := s.Counts().MaxInFlight; got <= DefaultConcurrency {
		t.Errorf("registry saw at most %d requests at once, want more than %d", got, DefaultConcurrency)
	}
	s.ResetCounts()
	s.FailNext("/tags/list", http.StatusTooManyRequests, 1, "1")
	if _, err := c.Tags(context.Background(), refs[0]); err != nil {
		t.Fatal(err)
	}
	if got := status(t, c, s.Host).Concurrency; got != grown/2 {
		t.Errorf("concurrency after one 429 = %d, want %d (half of %d, at once)", got, grown/2, grown)
	}
	if !strings.Contains(buf.String(), "registry concurrency lowered") {
		t.Errorf("the drop was not logged:\n%s", buf)
	}
	// Two rounds at the halved limit: it grows by one at most.
	tagsAll(t, c, refs[:grown])
	if got := s.Counts().MaxInFlight; got > grown/2+1 {
		t.Errorf("after the 429, %d requests at once, want at most %d", got, grown/2+1)
	}
}

func TestConcurrencyStopsWhereLatencyRises(t *testing.T) {
	t.Parallel() // mostly waiting: Retry-After and latency
	const capacity = 12
	s := registrytest.New(t, registrytest.WithLatency(100*ms), registrytest.WithCapacity(capacity))
	refs := pushRepos(t, s, 150)
	c, _ := newClient(t, Options{})
	// 300 listings: at flat latency it would reach 41 within 145.
	for range 2 {
		tagsAll(t, c, refs)
	}
	got := status(t, c, s.Host).Concurrency
	if got > 3*capacity {
		t.Errorf("concurrency against a registry that serves %d at once = %d, want it to stop near that (≤ %d), not run to the ceiling", capacity, got, 3*capacity)
	}
	t.Logf("concurrency %d, max in flight %d", got, s.Counts().MaxInFlight)
}
