package web

import (
	"net"
	"sync"
	"time"
)

// Login throttling, per client address.
const (
	// LoginBurst is how many password checks a client address may fail in a row.
	LoginBurst = 10
	// LoginRefill is how often an address earns back one failed check: ten
	// a minute once its burst is spent.
	LoginRefill = 6 * time.Second
	// MaxThrottledClients bounds the table of addresses. When it is full of
	// addresses that failed recently, a new address shares one allowance
	// with every other such newcomer: a client with many addresses can
	// neither grow the table nor push its own addresses out of it.
	MaxThrottledClients = 4096
)

// throttle keeps, per client address, an allowance of failed password
// checks: LoginBurst at first, one more every LoginRefill.
type throttle struct {
	burst  float64
	refill time.Duration
	max    int

	mu      sync.Mutex
	clients map[string]*allowance
	shared  allowance // of new addresses while the table is full
	swept   time.Time // when the table was last swept of recovered addresses
}

// allowance is what one address has left: left checks at time at.
type allowance struct {
	left float64
	at   time.Time
}

func newThrottle() *throttle {
	return &throttle{burst: LoginBurst, refill: LoginRefill, max: MaxThrottledClients, clients: map[string]*allowance{}}
}

// settle brings a up to now.
func (t *throttle) settle(a *allowance, now time.Time) {
	if a.at.IsZero() {
		a.left, a.at = t.burst, now
		return
	}
	if now.After(a.at) {
		a.left = min(t.burst, a.left+float64(now.Sub(a.at))/float64(t.refill))
		a.at = now
	}
}

// take spends one check of client's allowance and returns the allowance,
// to refund when the check succeeds. With none left it returns nil and how
// long until one is.
func (t *throttle) take(client string, now time.Time) (*allowance, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.allowanceOf(client, now)
	t.settle(a, now)
	if a.left < 1 {
		return nil, time.Duration((1 - a.left) * float64(t.refill))
	}
	a.left--
	return a, 0
}

// refund gives back a check taken from a.
func (t *throttle) refund(a *allowance) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a.left = min(t.burst, a.left+1)
}

// allowanceOf returns client's allowance, adding it to the table when there
// is room (after sweeping out the addresses that have recovered, at most
// once a second), else the shared one.
func (t *throttle) allowanceOf(client string, now time.Time) *allowance {
	if a, ok := t.clients[client]; ok {
		return a
	}
	if len(t.clients) >= t.max && now.Sub(t.swept) >= time.Second {
		for k, a := range t.clients {
			t.settle(a, now)
			if a.left >= t.burst {
				delete(t.clients, k)
			}
		}
		t.swept = now
	}
	if len(t.clients) >= t.max {
		return &t.shared
	}
	a := &allowance{}
	t.clients[client] = a
	return a
}

// size counts the addresses in the table.
func (t *throttle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.clients)
}

// clientAddress is the throttle's key for a request's remote address: the
// IPv4 address, or the /64 of an IPv6 one (what one client usually holds).
func clientAddress(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return host
	case ip.To4() != nil:
		return ip.To4().String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
