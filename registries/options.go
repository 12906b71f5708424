package registries

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/tidewatch/tidewatch/core"
)

// Credentials are the credentials configured for one registry.
type Credentials struct {
	// Registry is the registry host ("ghcr.io", "index.docker.io",
	// "127.0.0.1:5000"). "docker.io" and "registry-1.docker.io" mean
	// Docker Hub; a scheme or path ("https://index.docker.io/v1/") is ignored.
	Registry string
	// Username and Password are basic credentials, exchanged for tokens.
	Username string
	Password core.Secret
	// Token is a registry token. Without Username it is sent as the bearer
	// token itself (no exchange); with Username it is an identity (refresh)
	// token exchanged through the registry's OAuth2 endpoint.
	Token core.Secret
}

// Options configure a Client. The zero value works: anonymous access plus the
// user's Docker keychain, requests at once per registry adapting from 8 (see
// concurrency.go), 30s per request, 3 attempts.
type Options struct {
	// Credentials are basic credentials from config, per registry host.
	// They win over the keychain.
	Credentials []Credentials
	// Keychain is asked for registries without Credentials; default
	// authn.DefaultKeychain (~/.docker/config.json and credential helpers).
	// Pass authn.NewMultiKeychain() for anonymous access only.
	Keychain authn.Keychain
	// Concurrency, when above 0, pins every registry at that many requests
	// in flight. Default 0: each registry's limit adapts, starting at
	// DefaultConcurrency (8) and staying at or below its ceiling
	// (PublicMaxConcurrency for public registries, see IsPublic,
	// DefaultMaxConcurrency for the others).
	Concurrency int
	// PinConcurrency pins the registries it names (by host, as Credentials
	// name them) at that many requests in flight; it wins over Concurrency.
	PinConcurrency map[string]int
	// Timeout bounds one HTTP request (one attempt); default 30s.
	Timeout time.Duration
	// Retries is how many attempts a request gets on 5xx, 408, a 429
	// without Retry-After, timeouts and connection resets; default 3. A 429
	// with Retry-After does not use one up (see MaxRetryAfter).
	Retries int
	// RetryBackoff is the first wait between attempts, doubled each time,
	// with jitter; default 200ms.
	RetryBackoff time.Duration
	// MaxRetryAfter bounds the waiting a registry can ask for. A 429 with
	// Retry-After is pacing, not failure: the whole registry waits, and the
	// request is sent again without using up its Retries. But a request waits
	// for Retry-After windows at most this long in all, and never past its
	// context's deadline: a wait that would go beyond either fails at once
	// with core.ErrRateLimited, so a registry that says "wait" for ever ends
	// the run as rate limited. A 503's Retry-After longer than this fails at
	// once too. Default 60s.
	MaxRetryAfter time.Duration
	// PullReserve is how many pulls of a registry's announced rate limit
	// (Docker Hub's ratelimit-remaining, which manifest GETs use up and HEADs
	// do not) tidewatch leaves to the engine: at or below it, Manifest is
	// refused with core.ErrRateLimited instead of spending one. Default 10;
	// negative: never refuse.
	PullReserve int
	// ScopesPerToken is how many repositories one bearer token covers at
	// most; a registry with more gets one token per chunk. Default 300. When
	// a token server or registry refuses a long token URL or header (414,
	// 431, or 400/413 past 8 KiB), the chunk is halved and the smaller size
	// kept for that registry.
	ScopesPerToken int
	// Insecure reports whether a registry host is spoken to over plain HTTP.
	// Default: loopback hosts only (127.0.0.0/8, ::1, localhost), as dockerd
	// does. Every other host must use HTTPS.
	Insecure func(host string) bool
	// Transport is the base transport; default a clone of
	// http.DefaultTransport with more idle connections per host.
	Transport http.RoundTripper
}

// Defaults.
const (
	// DefaultPullReserve is Options.PullReserve's default.
	DefaultPullReserve    = 10
	DefaultTimeout        = 30 * time.Second
	DefaultRetries        = 3
	DefaultRetryBackoff   = 200 * time.Millisecond
	DefaultMaxRetryAfter  = 60 * time.Second
	DefaultScopesPerToken = 300
)

func (o Options) withDefaults() Options {
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Retries <= 0 {
		o.Retries = DefaultRetries
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if o.PullReserve == 0 {
		o.PullReserve = DefaultPullReserve
	}
	if o.ScopesPerToken <= 0 {
		o.ScopesPerToken = DefaultScopesPerToken
	}
	if o.Insecure == nil {
		o.Insecure = IsLoopback
	}
	if o.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 200
		t.MaxIdleConnsPerHost = DefaultMaxConcurrency
		t.ForceAttemptHTTP2 = true
		o.Transport = t
	}
	return o
}

// IsLoopback reports whether host (with or without port) is localhost or a
// loopback address: the hosts dockerd speaks plain HTTP to by default.
func IsLoopback(host string) bool { return core.IsLoopback(host) }

// normalizeHost turns a configured registry name into the host that
// core.ImageRef uses: lower case, no scheme or path, Docker Hub as
// index.docker.io.
func normalizeHost(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	if i := strings.Index(s, "/"); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return core.DockerHub
	}
	return s
}
