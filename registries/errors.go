package registries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/tidewatch/tidewatch/core"
)

// Error is a registry failure that callers may want details of. It wraps
// one of core.ErrUnavailable, core.ErrRateLimited, core.ErrUnauthorized or
// core.ErrNotFound, so errors.Is works on it.
type Error struct {
	// Registry is the registry host.
	Registry string
	// Status is the last HTTP status, 0 when no answer came (network error).
	Status int
	// Attempts is how many times the request was sent.
	Attempts int
	// Throttled is how many of those attempts were answered 429 with
	// Retry-After (pacing, which does not use up the attempts for errors).
	Throttled int
	// RetryAfter is the wait the registry asked for, when it did.
	RetryAfter time.Duration
	// Waited is how long the request waited for Retry-After windows in all.
	Waited time.Duration
	// Detail is the registry's own message ("UNAVAILABLE: …") or the network error.
	Detail string

	kind         error // a core sentinel
	err          error // underlying cause, if any
	pastDeadline bool  // the wait asked for would end after the context's deadline
	held         bool  // failed before sending, on a wait another request was asked for
}

// Error reads like "registry answered 503 3 times: UNAVAILABLE: down: unavailable"
// or "registry answered 429 with Retry-After 1s 9 times, after waiting 1m0s
// in all: TOOMANYREQUESTS: slow down: rate limited".
func (e *Error) Error() string {
	var b strings.Builder
	times := func(n int) {
		if n > 1 {
			fmt.Fprintf(&b, " %d times", n)
		}
	}
	switch {
	case e.Status == 0:
		fmt.Fprintf(&b, "registry %s unreachable", e.Registry)
		if n := e.Attempts - e.Throttled; n > 1 {
			fmt.Fprintf(&b, " after %d attempts", n)
		}
	case e.Status == http.StatusTooManyRequests && (e.Attempts == 0 || e.held):
		fmt.Fprintf(&b, "registry asked to wait (Retry-After), %s left", e.RetryAfter)
	case e.Status == http.StatusTooManyRequests && e.RetryAfter > 0:
		fmt.Fprintf(&b, "registry answered 429 with Retry-After %s", e.RetryAfter)
		times(e.Throttled)
	default:
		fmt.Fprintf(&b, "registry answered %d", e.Status)
		times(e.Attempts - e.Throttled)
	}
	if e.Throttled > 0 && (e.Status != http.StatusTooManyRequests || e.RetryAfter == 0 || e.held) {
		fmt.Fprintf(&b, " (and asked to wait %d times)", e.Throttled)
	}
	if e.Waited > 0 {
		fmt.Fprintf(&b, ", after waiting %s in all", e.Waited.Round(100*time.Millisecond))
	}
	if e.pastDeadline {
		b.WriteString(", longer than the run has left")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.kind != nil {
		b.WriteString(": ")
		b.WriteString(e.kind.Error())
	}
	return b.String()
}

// Unwrap returns the sentinel and the underlying cause.
func (e *Error) Unwrap() []error {
	var out []error
	if e.kind != nil {
		out = append(out, e.kind)
	}
	if e.err != nil {
		out = append(out, e.err)
	}
	return out
}

// kindOf maps an HTTP status to the sentinel callers branch on.
func kindOf(status int) error {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return core.ErrUnauthorized
	case status == http.StatusNotFound:
		return core.ErrNotFound
	case status == http.StatusTooManyRequests:
		return core.ErrRateLimited
	case status == http.StatusRequestTimeout || status >= 500:
		return core.ErrUnavailable
	}
	return nil
}

// classify turns what a remote call returned into an error that names the
// action and repository and wraps a sentinel:
// "listing tags of 127.0.0.1:5000/app: registry answered 503 3 times: …: unavailable".
func classify(host, action, repo string, err error) error {
	var re *Error
	if errors.As(err, &re) {
		return fmt.Errorf("%s %s: %w", action, repo, re)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", action, repo, err)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return fmt.Errorf("%s %s: %w", action, repo, &Error{
			Registry: host, Status: te.StatusCode, Attempts: 1,
			Detail: diagnostics(te), kind: kindOf(te.StatusCode), err: err,
		})
	}
	return fmt.Errorf("%s %s: %w", action, repo, err)
}

func diagnostics(te *transport.Error) string {
	var parts []string
	for _, d := range te.Errors {
		parts = append(parts, d.String())
	}
	if len(parts) == 0 {
		return http.StatusText(te.StatusCode)
	}
	return strings.Join(parts, "; ")
}

// bodyDetail extracts "CODE: message" from a registry error body, or a
// short prefix of the raw text.
func bodyDetail(status int, body []byte) string {
	var eb struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &eb) == nil && len(eb.Errors) > 0 {
		var parts []string
		for _, e := range eb.Errors {
			parts = append(parts, strings.TrimSuffix(e.Code+": "+e.Message, ": "))
		}
		return strings.Join(parts, "; ")
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" || strings.HasPrefix(s, "<") {
		return http.StatusText(status)
	}
	return s
}
