package core

import "time"

// RegistryStatus is what tidewatch knows about one registry host since it
// started: what it asked, how the registry answered, how it is paced. The
// registries client keeps it; the API and the metrics show it.
type RegistryStatus struct {
	// Registry is the registry host.
	Registry string `json:"host"`
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

// RegistryAuth is what pulling from a registry takes: the credentials
// tidewatch reads that registry with (TIDEWATCH_REGISTRY_*, the Docker
// config and its helpers), handed to the triggers that deploy so that the
// image they pull is the one detection saw. The zero value is anonymous.
type RegistryAuth struct {
	// Server is the registry host ("ghcr.io", "index.docker.io").
	Server string `json:"server,omitempty"`
	// Username and Password are basic credentials.
	Username string `json:"username,omitempty"`
	Password Secret `json:"password,omitempty"`
	// IdentityToken is an OAuth2 refresh token (ACR, ECR credential helpers);
	// RegistryToken a bearer token for the registry.
	IdentityToken Secret `json:"identity_token,omitempty"`
	RegistryToken Secret `json:"registry_token,omitempty"`
}

// Anonymous reports whether a carries no credentials.
func (a RegistryAuth) Anonymous() bool {
	return a.Username == "" && a.Password == "" && a.IdentityToken == "" && a.RegistryToken == ""
}
