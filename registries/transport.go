package registries

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// errNoHTTPS fails the HTTPS half of a ping to an insecure registry. It is
// not an *Error, so that the HTTP half's error is the one reported.
var errNoHTTPS = errors.New("insecure registry: plain HTTP only")

// limiter is the base RoundTripper of one registry, below go-containerregistry's
// auth layer (which then does no wrapping of its own, see remote.WithTransport
// and transport.Wrapper). Every request to the registry and its token server
// passes through it once per attempt. It
//   - forces the scheme: plain HTTP for insecure hosts, HTTPS for the rest,
//     and refuses plain HTTP to any other host that is not insecure;
//   - waits out a registry-wide Retry-After window before sending;
//   - holds one of the registry's slots (its gate: an adaptive limit, see
//     concurrency.go) from sending until the body is closed (never while
//     sleeping between attempts), and tells the gate what the answer showed;
//   - bounds each attempt by Timeout;
//   - retries 5xx, 408, 429 without Retry-After, timeouts and connection
//     resets with exponential backoff and jitter, Retries attempts in all;
//   - takes a 429 with Retry-After as pacing, not failure: the whole
//     registry waits, and the request is sent again without using up its
//     attempts, as long as its waits add up to at most MaxRetryAfter and end
//     before the context's deadline;
//   - reads the rate-limit headers of every response and counts requests.
type limiter struct {
	host     string
	insecure func(host string) bool
	next     http.RoundTripper
	gate     *gate
	timeout  time.Duration
	attempts int
	backoff  time.Duration
	maxWait  time.Duration
	stats    *stats
	log      *slog.Logger
	realm    atomic.Pointer[url.URL] // token endpoint, once the ping named it
}

// try is what one request went through so far, over its attempts.
type try struct {
	sent      int           // attempts sent
	failed    int           // attempts that failed (they use up Retries)
	throttled int           // 429s with Retry-After (they do not)
	waited    time.Duration // waited for Retry-After windows
	last      *Error        // the last 429's error
}

// RoundTrip implements http.RoundTripper.
func (l *limiter) RoundTrip(in *http.Request) (*http.Response, error) {
	ctx := in.Context()
	req, restore, err := l.scheme(in)
	if err != nil {
		return nil, err
	}
	repo := repoOf(req.URL.Path)
	own := req.URL.Host == l.host
	var tr try
	for {
		if err := l.waitRetryAfter(ctx, &tr); err != nil {
			return nil, err
		}
		t, err := l.gate.acquire(ctx)
		if err != nil {
			return nil, err
		}
		if time.Until(l.stats.retryAfterUntil()) > 0 {
			// Told to wait while this request waited for its slot.
			l.gate.giveBack(t)
			continue
		}
		actx, cancel := context.WithTimeout(ctx, l.timeout)
		r := req.Clone(actx)
		if tr.sent > 0 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				cancel()
				l.gate.giveBack(t)
				return nil, fmt.Errorf("retrying %s %s: request body cannot be replayed", req.Method, req.URL.Redacted())
			}
			if r.Body, err = req.GetBody(); err != nil {
				cancel()
				l.gate.giveBack(t)
				return nil, err
			}
		}
		tr.sent++
		l.count(r)
		start := time.Now()
		resp, err := l.next.RoundTrip(r)
		dur := time.Since(start)

		if err != nil {
			timedOut := ctx.Err() == nil && actx.Err() != nil
			cancel()
			l.done(t, observation{own: own, timeout: timedOut, remaining: -1, limit: -1})
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			tr.failed++
			e := tr.fail(&Error{Registry: l.host, Detail: err.Error(), kind: core.ErrUnavailable, err: err})
			if !retryableErr(err) || tr.failed >= l.attempts {
				return nil, e
			}
			wait := l.backoffFor(tr.failed)
			l.logRetry(repo, tr.sent, 0, dur, wait, err.Error())
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}

		remaining, rlimit := l.readRateLimit(resp)
		status := resp.StatusCode
		ra, hasRA := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		paced := hasRA && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable)
		obs := observation{own: own, latency: dur, status: status, retryAfter: paced, remaining: remaining, limit: rlimit}
		if !retryableStatus(status) {
			resp.Body = &releaseBody{ReadCloser: resp.Body, done: func() { cancel(); l.done(t, obs) }}
			if restore {
				resp.Request = in
			}
			return resp, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		cancel()
		l.done(t, obs)

		e := &Error{Registry: l.host, Status: status, Detail: bodyDetail(status, body), kind: kindOf(status)}
		if hasRA {
			e.RetryAfter = ra
		}
		if status == http.StatusTooManyRequests {
			l.stats.add(func(s *core.RegistryStatus) { s.Throttled++ })
		}
		if status == http.StatusTooManyRequests && hasRA {
			// Pacing, not failure: the whole registry waits, at least as long
			// as it asked, longer when this request is told again and again.
			tr.throttled++
			e = tr.fail(e)
			if ra > l.maxWait {
				l.stats.holdUntil(time.Now().Add(ra))
				return nil, e
			}
			wait := max(ra, l.backoffFor(tr.throttled))
			l.stats.holdUntil(time.Now().Add(wait))
			tr.last = e
			l.stats.add(func(s *core.RegistryStatus) { s.Retries++ })
			l.log.Debug("registry asked to wait", "registry", l.host, "repo", repo, "attempt", tr.sent,
				"retry_after_ms", ra.Milliseconds(), "wait_ms", wait.Milliseconds())
			continue
		}
		tr.failed++
		e = tr.fail(e)
		if hasRA && ra > l.maxWait {
			return nil, e
		}
		if tr.failed >= l.attempts {
			return nil, e
		}
		wait := l.backoffFor(tr.failed)
		if hasRA {
			wait = ra
		}
		l.logRetry(repo, tr.sent, status, dur, wait, e.Detail)
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// fail fills e with what the request went through and returns it.
func (tr *try) fail(e *Error) *Error {
	e.Attempts, e.Throttled, e.Waited = tr.sent, tr.throttled, tr.waited
	return e
}

// done frees t's slot and tells the gate what the answer showed; it logs a
// change of the registry's concurrency.
func (l *limiter) done(t ticket, o observation) {
	ch := l.gate.release(t, o)
	switch {
	case ch.to < ch.from:
		l.log.Info("registry concurrency lowered", "registry", l.host, "from", ch.from, "to", ch.to, "reason", ch.reason)
	case ch.to > ch.from:
		l.log.Debug("registry concurrency raised", "registry", l.host, "from", ch.from, "to", ch.to, "reason", ch.reason)
	}
}

// scheme returns the request with the scheme this registry is spoken to
// with, and whether the response should carry the original request (so that
// go-containerregistry's checks of Link URLs, which compare against the
// scheme it chose itself, still pass).
func (l *limiter) scheme(in *http.Request) (*http.Request, bool, error) {
	host := in.URL.Host
	if host == l.host {
		want := "https"
		if l.insecure(host) {
			want = "http"
			if in.URL.Scheme == "https" && (in.URL.Path == "/v2/" || in.URL.Path == "/v2") {
				// transport.Ping tries HTTPS first, then HTTP; skip the
				// first at once rather than send the same ping twice.
				return nil, false, errNoHTTPS
			}
		}
		if in.URL.Scheme == want {
			return in, false, nil
		}
		r := in.Clone(in.Context())
		r.URL.Scheme = want
		return r, want == "https", nil
	}
	if in.URL.Scheme == "http" && !l.insecure(host) {
		return nil, false, &Error{Registry: l.host, Detail: fmt.Sprintf("refusing plain HTTP to %s (not an insecure registry)", host), kind: core.ErrUnavailable}
	}
	return in, false, nil
}

// waitRetryAfter waits until the registry's Retry-After window ends, and
// adds the wait to tr. It fails at once with core.ErrRateLimited, without
// waiting, when the window would make the request's waits add up to more
// than MaxRetryAfter, or end after ctx's deadline: a registry that says
// "wait" for ever ends the run as "rate limited", not as timed out.
func (l *limiter) waitRetryAfter(ctx context.Context, tr *try) error {
	d := time.Until(l.stats.retryAfterUntil())
	if d <= 0 {
		return nil
	}
	deadline, hasDeadline := ctx.Deadline()
	late := hasDeadline && time.Now().Add(d).After(deadline)
	if tr.waited+d > l.maxWait || late {
		e := &Error{Registry: l.host, Status: http.StatusTooManyRequests, RetryAfter: d.Round(time.Second),
			kind: core.ErrRateLimited, pastDeadline: late && tr.waited+d <= l.maxWait, held: true}
		if tr.last != nil {
			// Told to wait itself: report what the registry asked.
			e.RetryAfter, e.Detail, e.held = tr.last.RetryAfter, tr.last.Detail, false
		}
		return tr.fail(e)
	}
	start := time.Now()
	err := sleep(ctx, d)
	tr.waited += time.Since(start)
	return err
}

func (l *limiter) count(r *http.Request) {
	token := false
	if u := l.realm.Load(); u != nil && r.URL.Host == u.Host && r.URL.Path == u.Path {
		token = true
	}
	ping := r.URL.Host == l.host && (r.URL.Path == "/v2/" || r.URL.Path == "/v2")
	l.stats.add(func(s *core.RegistryStatus) {
		s.Requests++
		if token {
			s.TokenRequests++
		}
		if ping {
			s.Pings++
		}
	})
}

// readRateLimit records the rate-limit headers of resp and returns them
// (-1 when absent).
func (l *limiter) readRateLimit(resp *http.Response) (remaining, limit int) {
	ls, rs := resp.Header.Get("ratelimit-limit"), resp.Header.Get("ratelimit-remaining")
	low, rem := l.stats.rateLimit(ls, rs)
	if low {
		l.log.Warn("registry rate limit almost used up", "registry", l.host, "remaining", rem, "limit", ls)
	}
	remaining, limit = -1, -1
	if v, ok := parseRateLimit(rs); ok {
		remaining = v
	}
	if v, ok := parseRateLimit(ls); ok {
		limit = v
	}
	return remaining, limit
}

func (l *limiter) logRetry(repo string, attempt, status int, dur, wait time.Duration, detail string) {
	l.stats.add(func(s *core.RegistryStatus) { s.Retries++ })
	l.log.Warn("registry request failed, retrying", "registry", l.host, "repo", repo, "attempt", attempt,
		"status", status, "duration_ms", dur.Milliseconds(), "retry_in_ms", wait.Milliseconds(), "error", detail)
}

// backoffFor returns the wait after attempt n: RetryBackoff·2^(n-1), up to
// 30s, with ±25% jitter.
func (l *limiter) backoffFor(n int) time.Duration {
	d := l.backoff << (n - 1)
	if d > 30*time.Second || d <= 0 {
		d = 30 * time.Second
	}
	j := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return d + j
}

func retryableStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout, 499, 522, 524:
		return true
	}
	return false
}

func retryableErr(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout(),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return true
	}
	return false
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// repoOf returns the repository a /v2/ path names, or "".
func repoOf(path string) string {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return ""
	}
	if r, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return r
	}
	for _, sep := range []string{"/manifests/", "/blobs/", "/referrers/"} {
		if i := strings.LastIndex(rest, sep); i > 0 {
			return rest[:i]
		}
	}
	return ""
}

// releaseBody runs done once when the body is closed.
type releaseBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
