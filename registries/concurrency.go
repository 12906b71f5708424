package registries

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// How many requests a registry gets at once.
//
// Each registry has a limit on requests in flight, kept by a controller fed
// with what every finished request showed. The limit starts at
// DefaultConcurrency and stays between 1 and the registry's ceiling
// (PublicMaxConcurrency for Docker Hub and the other public registries,
// DefaultMaxConcurrency for the rest). A pinned registry keeps its limit.
//
// Backing off, at once, by half (at most once per limit: signs from requests
// sent before the last change are not counted again), on the first sign that
// the registry wants less:
//   - a 429, or a Retry-After on any answer;
//   - rate-limit headers saying little is left: ratelimit-remaining at or
//     below a tenth of ratelimit-limit (or at or below 10 when the limit is
//     not given), when it drops there;
//   - an attempt that timed out;
//   - latency rising sharply: the median of the last five answers sent at
//     the current limit above twice the baseline plus 10ms.
//
// Growing, one round at a time. A round is as many answers as the limit,
// all sent at the current limit. The limit grows after a round in which
//   - no request failed (no 5xx, no network error) and no sign came;
//   - at least half of the requests found every slot taken (the limit, not
//     the work, held the pace);
//   - latency stayed flat: the median of the last five answers at most a
//     quarter above the baseline plus 2ms;
//   - rate-limit headers do not say little is left.
//
// It doubles per round until the registry first pushes back (a slow start,
// as TCP's: a cold daemon reaches a fast registry's pace in a few rounds, a
// public registry's ceiling in one), then grows by a quarter (at least one)
// per round, and by one per round once it is within a quarter of the limit
// at which the registry last pushed back (where it backed off from).
//
// The baseline is the registry's latency when it is not loaded by us: the
// lowest latency seen, raised (by an eighth of the difference per answer)
// only by answers to requests sent while at most half of the limit was in
// flight, such as the first requests of a run, so that the queueing we cause
// never becomes the norm; a lasting change of the network shows in those.
// Only answers from the registry itself count (not its token server), and
// only those that are not errors.

// Ceilings and start of the concurrency per registry.
const (
	// DefaultConcurrency is the limit a registry starts at: requests in
	// flight at once.
	DefaultConcurrency = 8
	// DefaultMaxConcurrency is the ceiling of a registry that is not public
	// (a private or local registry).
	DefaultMaxConcurrency = 64
	// PublicMaxConcurrency is the ceiling of Docker Hub and the other public
	// registries (see IsPublic): conservative, to stay a polite client of a
	// service shared with everyone.
	PublicMaxConcurrency = 16
)

// Thresholds of the controller.
const (
	flatFactor  = 1.25                  // latency is flat up to baseline×flatFactor+flatSlack
	flatSlack   = 2 * time.Millisecond  //
	sharpFactor = 2.0                   // latency rises sharply above baseline×sharpFactor+sharpSlack
	sharpSlack  = 10 * time.Millisecond //
	recentSize  = 5                     // answers the current latency is the median of
	minRecent   = 3                     // answers needed before latency is judged
)

// IsPublic reports whether host (with or without port) is Docker Hub or
// another public registry: ghcr.io, quay.io, gcr.io and *.gcr.io,
// *.pkg.dev, public.ecr.aws, mcr.microsoft.com, registry.gitlab.com,
// registry.k8s.io and lscr.io. They get PublicMaxConcurrency as ceiling.
func IsPublic(host string) bool {
	h := strings.ToLower(strings.TrimSpace(host))
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	switch h {
	case "index.docker.io", "registry-1.docker.io", "docker.io", "registry.hub.docker.com",
		"ghcr.io", "quay.io", "gcr.io", "public.ecr.aws", "mcr.microsoft.com",
		"registry.gitlab.com", "registry.k8s.io", "lscr.io":
		return true
	}
	return strings.HasSuffix(h, ".gcr.io") || strings.HasSuffix(h, ".pkg.dev")
}

// observation is what one finished attempt tells the controller.
type observation struct {
	// epoch is the controller's epoch when the request was sent: answers to
	// requests sent before the last change judge the old limit.
	epoch uint64
	// busy: every slot was taken when the request was sent (it took the last
	// one, or waited for one).
	busy bool
	// light: at most half of the limit was in flight when it was sent.
	light bool
	// own: the request went to the registry itself, not its token server.
	own bool
	// latency is the time to the answer's headers; 0 without an answer.
	latency time.Duration
	// status is the answer's status; 0 without an answer.
	status int
	// timeout: the attempt timed out.
	timeout bool
	// retryAfter: the answer carried Retry-After.
	retryAfter bool
	// remaining and limit are the ratelimit-remaining and ratelimit-limit
	// headers; -1 when absent.
	remaining, limit int
}

// controller is the concurrency limit of one registry: a state machine fed
// with observations, with no clock and no I/O.
type controller struct {
	limit   int
	ceiling int
	pinned  bool
	epoch   uint64 // counts changes of limit
	pushed  int    // the limit at which the registry last pushed back; 0: never

	baseline time.Duration
	recent   []time.Duration // latencies at the current epoch, the last recentSize
	low      bool            // rate-limit headers say little is left

	round   int  // answers at the current epoch since the round began
	busy    int  // of them, sent with every slot taken
	spoiled bool // the round saw a failure or a sign: it does not grow
}

// newController returns the controller of a registry: pinned at pin when
// pin > 0, else adaptive from DefaultConcurrency up to ceiling.
func newController(pin, ceiling int) controller {
	if pin > 0 {
		return controller{limit: pin, ceiling: pin, pinned: true}
	}
	return controller{limit: min(DefaultConcurrency, ceiling), ceiling: ceiling}
}

// change describes a change of limit, for the log.
type change struct {
	from, to int
	reason   string
}

// observe feeds one answer to the controller and returns the change it made
// to the limit, if any (to == from when none).
func (c *controller) observe(o observation) change {
	ch := change{from: c.limit, to: c.limit}
	if c.pinned {
		return ch
	}
	current := o.epoch == c.epoch
	ok := o.status > 0 && o.status < 500 && o.status != 429 && !o.timeout
	if ok && o.own && o.latency > 0 {
		c.learn(o.latency, o.light)
		if current {
			c.recent = append(c.recent, o.latency)
			if len(c.recent) > recentSize {
				c.recent = c.recent[1:]
			}
		}
	}

	sign := ""
	switch {
	case o.status == 429:
		sign = "429 too many requests"
	case o.retryAfter:
		sign = "Retry-After"
	case o.timeout:
		sign = "timeout"
	}
	if o.remaining >= 0 {
		low := o.limit > 0 && o.remaining*10 <= o.limit || o.limit <= 0 && o.remaining <= 10
		if low && !c.low && sign == "" {
			sign = "ratelimit-remaining low"
		}
		c.low = low
	}
	if sign == "" && current && c.sharp() {
		sign = "latency rising"
	}
	if sign != "" {
		c.spoiled = true
		if current && c.limit > 1 {
			c.pushed = c.limit
			c.set(max(1, c.limit/2))
			ch.to, ch.reason = c.limit, sign
		}
		return ch
	}
	if !current {
		return ch
	}
	if !ok {
		c.spoiled = true
	}
	c.round++
	if o.busy {
		c.busy++
	}
	if c.round < c.limit {
		return ch
	}
	if !c.spoiled && !c.low && 2*c.busy >= c.round && c.flat() && c.limit < c.ceiling {
		step := max(1, c.limit/4)
		switch {
		case c.pushed == 0:
			step = c.limit // slow start: never pushed back yet
		case 4*c.limit >= 3*c.pushed:
			step = 1
		}
		c.set(min(c.ceiling, c.limit+step))
		ch.to, ch.reason = c.limit, "latency flat"
		return ch
	}
	c.round, c.busy, c.spoiled = 0, 0, false
	return ch
}

// set changes the limit and starts a new epoch and round.
func (c *controller) set(limit int) {
	c.limit = limit
	c.epoch++
	c.recent = c.recent[:0]
	c.round, c.busy, c.spoiled = 0, 0, false
}

// learn updates the baseline with one latency.
func (c *controller) learn(d time.Duration, light bool) {
	switch {
	case c.baseline == 0 || d < c.baseline:
		c.baseline = d
	case light:
		c.baseline += (d - c.baseline) / 8
	}
}

// median is the median of the recent latencies, 0 when too few.
func (c *controller) median() time.Duration {
	if len(c.recent) < minRecent {
		return 0
	}
	s := slices.Clone(c.recent)
	slices.Sort(s)
	return s[len(s)/2]
}

func (c *controller) flat() bool {
	m := c.median()
	return m > 0 && float64(m) <= float64(c.baseline)*flatFactor+float64(flatSlack)
}

func (c *controller) sharp() bool {
	m := c.median()
	return m > 0 && float64(m) > float64(c.baseline)*sharpFactor+float64(sharpSlack)
}

// gate admits requests to one registry up to its controller's limit, in
// the order they asked.
type gate struct {
	mu       sync.Mutex
	ctl      controller
	inFlight int
	queue    []*waiter
}

type waiter struct {
	ready chan struct{}
	t     ticket
}

// ticket is a slot held by one request.
type ticket struct {
	epoch uint64
	busy  bool
	light bool
}

func newGate(ctl controller) *gate { return &gate{ctl: ctl} }

// acquire waits for a slot, or for ctx to end.
func (g *gate) acquire(ctx context.Context) (ticket, error) {
	g.mu.Lock()
	if len(g.queue) == 0 && g.inFlight < g.ctl.limit {
		t := g.take(false)
		g.mu.Unlock()
		return t, nil
	}
	w := &waiter{ready: make(chan struct{})}
	g.queue = append(g.queue, w)
	g.mu.Unlock()
	select {
	case <-w.ready:
		return w.t, nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		if i := slices.Index(g.queue, w); i >= 0 {
			g.queue = slices.Delete(g.queue, i, i+1)
			return ticket{}, ctx.Err()
		}
		// Admitted meanwhile: give the slot to the next one.
		g.inFlight--
		g.admit()
		return ticket{}, ctx.Err()
	}
}

// take counts one more request in flight and returns its ticket; g.mu is held.
func (g *gate) take(waited bool) ticket {
	g.inFlight++
	return ticket{
		epoch: g.ctl.epoch,
		busy:  waited || g.inFlight >= g.ctl.limit,
		light: g.inFlight <= max(1, g.ctl.limit/2),
	}
}

// admit lets waiting requests in while the limit allows; g.mu is held.
func (g *gate) admit() {
	for len(g.queue) > 0 && g.inFlight < g.ctl.limit {
		w := g.queue[0]
		g.queue = g.queue[1:]
		w.t = g.take(true)
		close(w.ready)
	}
}

// release frees t's slot and feeds what its request showed to the
// controller, returning the change of limit it made.
func (g *gate) release(t ticket, o observation) change {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	o.epoch, o.busy, o.light = t.epoch, t.busy, t.light
	ch := g.ctl.observe(o)
	g.admit()
	return ch
}

// giveBack frees t's slot without telling the controller anything (the
// request was not sent).
func (g *gate) giveBack(ticket) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	g.admit()
}

// state returns the limit, the ceiling and whether the limit is pinned.
func (g *gate) state() (limit, ceiling int, pinned bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ctl.limit, g.ctl.ceiling, g.ctl.pinned
}
