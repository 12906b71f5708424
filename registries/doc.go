// Package registries asks container registries what tags and digests they
// hold, as cheaply as the registries allow. It is the only package that
// imports go-containerregistry's remote.
//
// One Client lives as long as the daemon and keeps, per registry host:
//
//   - one transport stack: go-containerregistry's remote calls on top, our
//     bearer layer, then a limiter (Timeout per attempt; Retries attempts
//     for 5xx, 408, a 429 without Retry-After, timeouts and resets, with
//     exponential backoff and jitter from RetryBackoff; a 429 with
//     Retry-After paces the whole registry without using up attempts, up
//     to MaxRetryAfter of waiting in all and never past the context's
//     deadline; rate-limit headers read), then one tuned http.Transport
//     shared by all registries;
//   - a gate: how many requests are in flight at once, a limit that adapts
//     to what the answers show (starts at DefaultConcurrency, halves at once
//     on a 429, Retry-After, low ratelimit-remaining, a timeout or latency
//     rising sharply; grows while latency stays flat and the limit holds the
//     pace; at most PublicMaxConcurrency for public registries, see
//     IsPublic, DefaultMaxConcurrency for the others; pinned by
//     Options.Concurrency or Options.PinConcurrency); see concurrency.go;
//   - the result of one ping (GET /v2/), made once for the Client's life (a
//     failed ping, or token request, is answered from memory for 10s, until
//     Prepare declares the next run or pass);
//   - bearer tokens, each covering the pull scopes of up to ScopesPerToken
//     repositories (default 300), fetched once with every scope declared by
//     Prepare (or seen so far) and reused across runs until shortly before
//     expires_in runs out (a tenth of it early, at most 30s).
//
// So a run over N repositories of one registry costs one request per tag
// page and per digest, plus one token request once the token has expired,
// plus one ping in the Client's life: N+2 requests in a cold run, N in a warm
// one.
//
// Why not ggcr's own bearer transport (transport.NewWithContext): it forgets
// expires_in and refreshes only after a 401, so after expiry every
// concurrent request pays a 401 and its own token request; and every new
// transport pings again. We use ggcr's public pieces instead:
// transport.Ping, transport.Exchange (realm validation, basic and OAuth2
// flows) and transport.FromToken (to hand remote a *transport.Wrapper, which
// tells remote to add no retry or auth of its own). A 401 bearer challenge
// still drops the token and retries once.
//
// Why 300 scopes per token: 300 repositories fit one token request
// (≈15 KB of URL, which Go servers, ggcr's registry and Docker Hub's token
// server accept). Servers behind nginx or Apache refuse request lines or
// headers over 8 KiB, so when a token endpoint answers 414 or 431 (or 400/413
// to a request over 8 KiB), or a registry refuses the token as too large,
// the chunk is halved, and the smaller size is kept for that registry. That
// costs one refused request once, not a failure.
//
// Digests are read with HEAD (Docker Hub does not count HEADs against the
// pull limit); a manifest is GET only by Manifest, or by Digest when a
// registry omits Docker-Content-Digest (counted in Status.DigestFallbacks).
//
// Errors wrap core.ErrUnavailable, core.ErrRateLimited, core.ErrUnauthorized
// or core.ErrNotFound and name the action and repository:
// "listing tags of 127.0.0.1:5000/app: registry answered 503 3 times: …: unavailable".
// A *Error carries the status, attempts and Retry-After.
//
// Credentials come from Options.Credentials (matched by host, with
// docker.io and registry-1.docker.io meaning index.docker.io), else the
// keychain (~/.docker/config.json and credential helpers), else anonymous.
// Neither credentials nor tokens are ever logged. Plain HTTP is spoken only
// to insecure hosts (default: loopback, as dockerd does) and refused
// elsewhere.
package registries
