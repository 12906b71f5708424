package registries

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// Status is what a Client knows about one registry host since it started.
type Status struct {
	// Registry is the registry host.
	Registry string `json:"registry"`
	// Requests counts HTTP requests sent (every attempt, pings and token
	// requests included).
	Requests int64 `json:"requests"`
	// Retries counts attempts that were repeated after a failure or a 429.
	Retries int64 `json:"retries"`
	// Throttled counts 429 answers.
	Throttled int64 `json:"throttled"`
	// Errors counts calls (Tags, Digest, Manifest) that failed.
	Errors int64 `json:"errors"`
	// Pings counts GET /v2/ handshakes.
	Pings int64 `json:"pings"`
	// TokenRequests counts requests to the registry's token endpoint.
	TokenRequests int64 `json:"token_requests"`
	// DigestFallbacks counts digests read with GET because HEAD lacked
	// Docker-Content-Digest.
	DigestFallbacks int64 `json:"digest_fallbacks"`
	// RateLimitLimit and RateLimitRemaining are the last `ratelimit-limit`
	// and `ratelimit-remaining` values seen (Docker Hub); -1 when unknown.
	RateLimitLimit     int `json:"ratelimit_limit"`
	RateLimitRemaining int `json:"ratelimit_remaining"`
	// LastError and LastErrorAt describe the last failed call.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// RetryAfterUntil is when the registry's last Retry-After ends; no
	// request is sent to it before then.
	RetryAfterUntil time.Time `json:"retry_after_until,omitzero"`
	// Concurrency is how many requests the registry gets at once now;
	// MaxConcurrency its ceiling; ConcurrencyPinned whether it is pinned
	// (then it never changes).
	Concurrency       int  `json:"concurrency"`
	MaxConcurrency    int  `json:"max_concurrency"`
	ConcurrencyPinned bool `json:"concurrency_pinned"`
}

// stats is the mutable Status of one registry.
type stats struct {
	mu       sync.Mutex
	s        Status
	lowAlert bool // warned that remaining is low, until it rises again
}

func newStats(host string) *stats {
	return &stats{s: Status{Registry: host, RateLimitLimit: -1, RateLimitRemaining: -1}}
}

func (st *stats) snapshot() Status {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s
}

func (st *stats) add(f func(s *Status)) {
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
