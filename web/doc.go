// Package web is the HTTP side of `tidewatch serve`: the REST API under
// /api, the health and metrics endpoints, the OpenAPI document, the event
// stream and the embedded UI.
//
// The whole route tree is in routes(). Handlers return an error; one adapter
// (handle) turns it into a status and a JSON body
// {"error":{"code":"…","message":"…"}}: *Error values carry their own status
// (400 naming the field for bad input), errors wrapping core.ErrNotFound
// answer 404, ErrConflict 409, anything else 500 without its text (it is
// logged with the request ID).
//
// # Security
//
// Authentication (Config.Users and Config.Tokens) is off only when no user and no
// token is configured, which the configuration allows only on a loopback
// address. With it on, every route but /healthz, /readyz and the UI's
// static files needs credentials (/readyz names its checks only to callers
// with every right; others hear ready or not), and a server that would take
// them in clear text beyond loopback (no TLS) warns at start-up. It needs either HTTP Basic credentials of a configured user
// (bcrypt or argon2id hash; the browser asks for them and the UI's requests
// reuse them) or an API token, "Authorization: Bearer <token>", compared by
// its SHA-256 in constant time. Users and tokens may do the same things,
// but for a token scoped to deploying (credential.Token.Deploy): it may use
// POST /api/deploy for its compose projects and services and nothing else
// (403 elsewhere, fullRights), so that a CI job holding it can neither read
// the API nor touch other containers.
// A successful password check is remembered for CacheTTL, keyed by an HMAC
// of the credentials under a per-process key, so that the slow hashes are
// not paid on every request.
//
// Password checks cost memory and CPU on purpose, so they are rationed: at
// most MaxConcurrentHashes run at once (a login waits HashWait for a slot,
// then gets 503 with Retry-After); each client address (an IPv6 /64) may
// fail LoginBurst checks in a row, then one every LoginRefill, and is
// answered 429 with Retry-After without a check beyond that (the table of
// addresses holds at most MaxThrottledClients; see throttle). A wrong
// password for an unknown user name is checked against a decoy hash with
// the parameters of a configured user, so that it takes as long as one for
// a known user. The configuration refuses hash parameters that would make one
// check a denial of service, and the server warns at start-up about weak ones.
//
// Without authentication (on loopback only), a request is answered only when
// its Host names this machine: 127.0.0.0/8, ::1, localhost, the configured
// address or TIDEWATCH_SERVER_ALLOWED_HOSTS; anything else is refused with
// 403, for reads too, so that a page whose domain resolves to 127.0.0.1 (DNS
// rebinding) cannot use the API. A request carrying Forwarded, X-Forwarded-*
// or X-Real-Ip came through a proxy and is refused while auth is off.
//
// Each request is logged (state-changing ones and server errors at info,
// the rest at debug) with its principal: "user:alice", "token:ci",
// "anonymous" with auth off, "" when refused. The history events a request
// causes record the same principal (store.WithPrincipal): a
// dismiss, a snooze, a deploy's outcome, and the events the server records
// itself for an apply, a watch and a trigger test.
//
// Every state-changing request (POST) from a browser must come from the same
// origin: net/http's CrossOriginProtection refuses it with 403 when
// Sec-Fetch-Site says cross-site or Origin names another host. Every
// response carries a strict Content-Security-Policy, X-Content-Type-Options,
// Referrer-Policy and X-Frame-Options; API responses are not cached. No
// secret is ever in a response: trigger options flagged secret read
// "[redacted]", and the auth configuration is never shown.
//
// # Defaults
//
// The server listens on 127.0.0.1:8080 (TIDEWATCH_SERVER_ADDRESS, _PORT),
// with ReadHeaderTimeout 10s, ReadTimeout 30s, WriteTimeout 5m (a deploy waits
// for its rollout; the event stream lifts it), IdleTimeout 2m and 1 MiB of
// headers; request bodies are capped at 64 KiB. On shutdown it stops
// accepting, ends event streams, and gives requests in flight ShutdownGrace
// to finish. Event streams send a heartbeat comment every 15s.
package web
