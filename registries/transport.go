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
//   - holds one of Concurrency slots from sending until the body is closed
//     (never while sleeping between attempts);
//   - bounds each attempt by Timeout;
//   - retries 5xx, 408, 429, timeouts and connection resets with exponential
//     backoff and jitter, honouring Retry-After up to MaxRetryAfter;
//   - reads the rate-limit headers of every response and counts requests.
type limiter struct {
	host     string
	insecure func(host string) bool
	next     http.RoundTripper
	sem      chan struct{}
	timeout  time.Duration
	attempts int
	backoff  time.Duration
	maxWait  time.Duration
	stats    *stats
	log      *slog.Logger
	realm    atomic.Pointer[url.URL] // token endpoint, once the ping named it
}

// RoundTrip implements http.RoundTripper.
func (l *limiter) RoundTrip(in *http.Request) (*http.Response, error) {
	ctx := in.Context()
	req, restore, err := l.scheme(in)
	if err != nil {
		return nil, err
	}
	repo := repoOf(req.URL.Path)
	for attempt := 1; ; attempt++ {
		if err := l.waitRetryAfter(ctx); err != nil {
			return nil, err
		}
		if err := l.acquire(ctx); err != nil {
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, l.timeout)
		r := req.Clone(actx)
		if attempt > 1 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				cancel()
				l.release()
				return nil, fmt.Errorf("retrying %s %s: request body cannot be replayed", req.Method, req.URL.Redacted())
			}
			if r.Body, err = req.GetBody(); err != nil {
				cancel()
				l.release()
				return nil, err
			}
		}
		l.count(r)
		start := time.Now()
		resp, err := l.next.RoundTrip(r)
		dur := time.Since(start)

		if err != nil {
			cancel()
			l.release()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			e := &Error{Registry: l.host, Attempts: attempt, Detail: err.Error(), kind: core.ErrUnavailable, err: err}
			if !retryableErr(err) || attempt >= l.attempts {
				return nil, e
			}
			wait := l.backoffFor(attempt)
			l.logRetry(repo, attempt, 0, dur, wait, err.Error())
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}

		l.readRateLimit(resp)
		status := resp.StatusCode
		if !retryableStatus(status) {
			resp.Body = &releaseBody{ReadCloser: resp.Body, done: func() { cancel(); l.release() }}
			if restore {
				resp.Request = in
			}
			return resp, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		cancel()
		l.release()

		ra, hasRA := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		e := &Error{Registry: l.host, Status: status, Attempts: attempt, Detail: bodyDetail(status, body), kind: kindOf(status)}
		if hasRA {
			e.RetryAfter = ra
		}
		if hasRA && ra > l.maxWait {
			if status == http.StatusTooManyRequests {
				l.stats.holdUntil(time.Now().Add(ra))
				e.kind = core.ErrRateLimited
			}
			return nil, e
		}
		if attempt >= l.attempts {
			return nil, e
		}
		wait := l.backoffFor(attempt)
		if hasRA {
			wait = ra
			if status == http.StatusTooManyRequests {
				// The whole registry waits, not just this request.
				l.stats.holdUntil(time.Now().Add(ra))
				wait = 0
			}
		}
		l.logRetry(repo, attempt, status, dur, max(wait, ra), e.Detail)
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
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

func (l *limiter) acquire(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *limiter) release() { <-l.sem }

// waitRetryAfter waits until the registry's Retry-After window ends, or
// fails with core.ErrRateLimited when that is further than MaxRetryAfter.
func (l *limiter) waitRetryAfter(ctx context.Context) error {
	d := time.Until(l.stats.retryAfterUntil())
	if d <= 0 {
		return nil
	}
	if d > l.maxWait {
		return &Error{Registry: l.host, Status: http.StatusTooManyRequests, Attempts: 0, RetryAfter: d.Round(time.Second),
			kind: core.ErrRateLimited}
	}
	return sleep(ctx, d)
}

func (l *limiter) count(r *http.Request) {
	token := false
	if u := l.realm.Load(); u != nil && r.URL.Host == u.Host && r.URL.Path == u.Path {
		token = true
	}
	ping := r.URL.Host == l.host && (r.URL.Path == "/v2/" || r.URL.Path == "/v2")
	l.stats.add(func(s *Status) {
		s.Requests++
		if token {
			s.TokenRequests++
		}
		if ping {
			s.Pings++
		}
	})
}

func (l *limiter) readRateLimit(resp *http.Response) {
	low, rem := l.stats.rateLimit(resp.Header.Get("ratelimit-limit"), resp.Header.Get("ratelimit-remaining"))
	if low {
		l.log.Warn("registry rate limit almost used up", "registry", l.host, "remaining", rem,
			"limit", resp.Header.Get("ratelimit-limit"))
	}
}

func (l *limiter) logRetry(repo string, attempt, status int, dur, wait time.Duration, detail string) {
	l.stats.add(func(s *Status) { s.Retries++ })
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
