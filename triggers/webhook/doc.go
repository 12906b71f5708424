// Package webhook is the built-in webhook trigger: it sends each update
// (in batch mode, each run's updates together) as one HTTP request, by
// default a JSON document, optionally signed. tidewatch serves it with
// `tidewatch trigger serve webhook`; users configure an instance as
// TIDEWATCH_TRIGGER_WEBHOOK_<name>_<OPTION>.
//
// # Options
//
//	URL           required, secret  http:// or https:// address; errors and logs show only its scheme and host
//	METHOD        POST              POST, PUT or PATCH
//	HEADERS       (none), secret    extra headers, "Name=Value" pairs separated by commas, or by newlines
//	                                when a value holds a comma: "Authorization=Bearer abc, X-Env=prod".
//	                                Idempotency-Key, X-Tidewatch-*, Host, Content-Length, Transfer-Encoding
//	                                and Connection cannot be set.
//	SECRET        (none), secret    signs each request (below)
//	TIMEOUT       10s               the longest one request may take (within tidewatch's own deadline)
//	TLS_INSECURE  false             accept any server certificate
//	TLS_CAFILE    (none)            PEM file of CA certificates trusted instead of the system's
//	TEMPLATE      (none)            a message template for the body instead of the JSON payload
//
// # Request
//
// Content-Type is application/json for the payload; for a TEMPLATE, it is
// application/json when the rendered body is valid JSON and
// text/plain; charset=utf-8 otherwise, unless HEADERS sets Content-Type.
// User-Agent is tidewatch-webhook unless HEADERS sets one.
//
// Idempotency-Key is the update's key, the same on every retry of a
// delivery: a receiver that stores it can drop repeats. For a batch it is
// "batch-" and the hex SHA-256 of the updates' keys joined by "\n" (see Key).
//
// # Payload
//
//	{
//	  "trigger": "ops",                   the trigger instance's name
//	  "event": "update-available",        the updates' event, or "mixed" when they differ
//	  "updates": [                        one update, or several in batch mode
//	    {
//	      "key": "…",                     the delivery's idempotency key
//	      "event": "update-available",    or update-applied, update-failed, update-rolled-back
//	      "host": "local",                the Docker host (watcher)
//	      "container": "web",             display name
//	      "container_id": "0123456789ab",
//	      "image": "registry.example/web",
//	      "current": "1.0.0", "current_digest": "sha256:…",
//	      "candidate": "1.1.0", "candidate_digest": "sha256:…",
//	      "kind": "minor",                major, minor, patch, prerelease or digest
//	      "link": "https://…",            release notes, "" when none
//	      "detected_at": "2026-01-02T03:04:05Z",
//	      "labels": {"com.example.team": "web"},
//	      "detail": ""                    what happened, for rollout events
//	    }
//	  ]
//	}
//
// Every field is always present ("" or {} when unknown). The command
// trigger writes the same document to its program's stdin.
//
// # Signature
//
// With SECRET set, each request carries
//
//	X-Tidewatch-Timestamp: 1767323045                     Unix seconds when it was sent
//	X-Tidewatch-Signature: sha256=<hex>                   HMAC-SHA256, keyed with SECRET, of "<timestamp>.<body>"
//
// The timestamp is signed with the body, as Stripe does, so that a captured
// request cannot be replayed later with a new timestamp: a receiver
// recomputes the HMAC over the exact bytes received, compares in constant
// time, and refuses a timestamp more than a few minutes away from its clock
// (Verify does all three). A retry is signed anew, with a new timestamp.
// From a shell:
//
//	printf '%s.%s' "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET"
//
// # Results
//
// 2xx is delivered (detail "HTTP 200"). 408, 429, 5xx, network errors and
// timeouts are retried by tidewatch with backoff. Redirects are not followed
// (the body and its signature must reach the configured address; a POST
// must not become a GET): a 3xx is a permanent failure saying where it
// pointed, as is any other 4xx. Errors quote the start of the answer's body.
package webhook
