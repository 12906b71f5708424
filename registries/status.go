package registries

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// stats is the mutable Status of one registry.
type stats struct {
	mu       sync.Mutex
	s        core.RegistryStatus
	lowAlert bool // warned that remaining is low, until it rises again
}

func newStats(host string) *stats {
	return &stats{s: core.RegistryStatus{Registry: host, RateLimitLimit: -1, RateLimitRemaining: -1}}
}

func (st *stats) snapshot() core.RegistryStatus {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s
}

func (st *stats) add(f func(s *core.RegistryStatus)) {
	st.mu.Lock()
	f(&st.s)
	st.mu.Unlock()
}

// retryAfterUntil returns the end of the registry-wide Retry-After window.
func (st *stats) retryAfterUntil() time.Time {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s.RetryAfterUntil
}

// holdUntil extends the registry-wide Retry-After window to t.
func (st *stats) holdUntil(t time.Time) {
	st.mu.Lock()
	if t.After(st.s.RetryAfterUntil) {
		st.s.RetryAfterUntil = t
	}
	st.mu.Unlock()
}

// rateLimit records the rate-limit headers of a response and reports
// whether remaining has just dropped to 2 or less (to warn once).
func (st *stats) rateLimit(limit, remaining string) (low bool, rem int) {
	l, lok := parseRateLimit(limit)
	r, rok := parseRateLimit(remaining)
	if !lok && !rok {
		return false, 0
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if lok {
		st.s.RateLimitLimit = l
	}
	if rok {
		st.s.RateLimitRemaining = r
		if r <= 2 && !st.lowAlert {
			st.lowAlert = true
			return true, r
		}
		if r > 2 {
			st.lowAlert = false
		}
	}
	return false, r
}

// parseRateLimit reads "100;w=21600" (or "100") as 100.
func parseRateLimit(v string) (int, bool) {
	if v == "" {
		return 0, false
	}
	n, _, _ := strings.Cut(v, ";")
	i, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}
