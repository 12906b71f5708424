package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

var _ sdk.Trigger = (*Trigger)(nil)

// Trigger sends updates to an HTTP endpoint. Configure it once; Fire is
// safe for concurrent use.
type Trigger struct {
	log   *slog.Logger
	now   func() time.Time
	state atomic.Pointer[state]
}

// state is what Configure sets up.
type state struct {
	name   string
	cfg    Config
	client *http.Client
}

// New returns a webhook trigger that logs with sdk.Logger: the one
// `tidewatch trigger serve webhook` serves.
func New() *Trigger { return NewWithLogger(sdk.Logger()) }

// NewWithLogger returns a webhook trigger that logs to log.
func NewWithLogger(log *slog.Logger) *Trigger {
	return &Trigger{log: log, now: time.Now}
}

// Describe returns the trigger's type and options.
func (t *Trigger) Describe(context.Context) sdk.Description {
	return sdk.Description{
		Type:        "webhook",
		Description: "sends each update (or batch) as an HTTP request with a JSON payload, optionally signed",
		Options:     Options,
	}
}

// Configure parses options and prepares the HTTP client.
func (t *Trigger) Configure(_ context.Context, name string, options map[string]string) error {
	cfg, err := ParseConfig(options)
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            cfg.RootCAs,
		InsecureSkipVerify: cfg.TLSInsecure, //nolint:gosec // the operator asked for it
	}
	client := &http.Client{
		Transport: tr,
		// Redirects are not followed: a POST must not turn into a GET
		// elsewhere, and the signed body must reach the configured address.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.state.Store(&state{name: name, cfg: cfg, client: client})
	t.log.Debug("webhook configured", "trigger", name, "endpoint", endpoint(cfg.URL), "method", cfg.Method, "signed", cfg.Secret != "")
	return nil
}

// Fire sends one request carrying all updates and returns its result for each.
func (t *Trigger) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	st := t.state.Load()
	if st == nil {
		return sdk.All(len(updates), sdk.Fail(errors.New("webhook: Fire before Configure")))
	}
	if len(updates) == 0 {
		return nil
	}
	return sdk.All(len(updates), t.send(ctx, st, updates))
}

func (t *Trigger) send(ctx context.Context, st *state, updates []sdk.Update) sdk.Result {
	cfg := st.cfg
	body, contentType, err := renderBody(st.name, cfg.Template, updates)
	if err != nil {
		return sdk.Fail(err)
	}
	where := cfg.Method + " " + endpoint(cfg.URL)

	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, cfg.Method, cfg.URL.String(), bytes.NewReader(body))
	if err != nil {
		return sdk.Fail(fmt.Errorf("building the request for %s: %w", where, unwrapURL(err)))
	}
	for name, values := range cfg.Headers {
		req.Header[name] = values
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", contentType)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "tidewatch-webhook")
	}
	req.Header.Set(HeaderIdempotencyKey, sdk.Key(updates))
	if cfg.Secret != "" {
		ts := strconv.FormatInt(t.now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign(cfg.Secret, ts, body))
	}

	start := time.Now()
	resp, err := st.client.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return sdk.Retry(fmt.Errorf("%s: cut off: %w", where, ctx.Err()))
		case rctx.Err() != nil:
			return sdk.Retry(fmt.Errorf("%s: no answer within %s (TIMEOUT)", where, cfg.Timeout))
		default:
			return sdk.Retry(fmt.Errorf("%s: %w", where, unwrapURL(err)))
		}
	}
	defer resp.Body.Close()
	snippet := readSnippet(resp.Body)
	t.log.Debug("webhook answered", "trigger", st.name, "endpoint", endpoint(cfg.URL), "status", resp.StatusCode,
		"idempotency_key", req.Header.Get(HeaderIdempotencyKey), "duration_ms", time.Since(start).Milliseconds())
	return classify(where, resp.StatusCode, resp.Header.Get("Location"), snippet)
}

// renderBody returns the request body for updates and its default content type:
// the rendered template when there is one (application/json when the result
// is valid JSON, text/plain otherwise), else the JSON Payload.
func renderBody(name string, tmpl *sdk.Template, updates []sdk.Update) ([]byte, string, error) {
	if tmpl != nil {
		s, err := tmpl.Render(sdk.NewMessage(name, updates))
		if err != nil {
			return nil, "", fmt.Errorf("TEMPLATE: %w", err)
		}
		if json.Valid([]byte(s)) {
			return []byte(s), "application/json", nil
		}
		return []byte(s), "text/plain; charset=utf-8", nil
	}
	b, err := json.Marshal(sdk.NewPayload(name, updates))
	if err != nil {
		return nil, "", fmt.Errorf("encoding the payload: %w", err)
	}
	return b, "application/json", nil
}

// classify turns an HTTP answer into a result: 2xx delivered (detail
// "HTTP 200"); 408, 429 and 5xx retryable; redirects and other 4xx
// permanent. where names the request ("POST https://host"); location is the
// answer's Location header and snippet the start of its body.
func classify(where string, status int, location, snippet string) sdk.Result {
	text := fmt.Sprintf("HTTP %d", status)
	if snippet != "" {
		text += ": " + snippet
	}
	switch {
	case status >= 200 && status < 300:
		return sdk.OK(fmt.Sprintf("HTTP %d", status))
	case status >= 300 && status < 400:
		to := ""
		if u, err := url.Parse(location); err == nil && location != "" {
			to = " to " + endpoint(u)
		}
		return sdk.Fail(fmt.Errorf("%s: HTTP %d redirect%s not followed; set URL to the final address", where, status, to))
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return sdk.Retry(fmt.Errorf("%s: %s", where, text))
	default:
		return sdk.Fail(fmt.Errorf("%s: %s", where, text))
	}
}

// Sign returns the X-Tidewatch-Signature value for body sent at timestamp
// (Unix seconds, as in X-Tidewatch-Timestamp): "sha256=" and the hex
// HMAC-SHA256 of timestamp + "." + body, keyed with secret.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ErrSignature is returned by Verify for a request that is not signed with
// the secret, or signed too long ago.
var ErrSignature = errors.New("webhook signature not valid")

// Verify checks a received request's signature headers against body, as a
// receiver written in Go would: the signature must match, in constant time,
// and the timestamp be within maxAge of now (either way), which refuses
// replays of old requests.
func Verify(secret string, h http.Header, body []byte, maxAge time.Duration, now time.Time) error {
	ts := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not Unix seconds", ErrSignature, HeaderTimestamp)
	}
	if age := now.Sub(time.Unix(sec, 0)); age > maxAge || age < -maxAge {
		return fmt.Errorf("%w: timestamp is %s away from now", ErrSignature, age.Round(time.Second))
	}
	if !hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(Sign(secret, ts, body))) {
		return fmt.Errorf("%w: %s does not match the body", ErrSignature, HeaderSignature)
	}
	return nil
}

// endpoint is what errors and logs show of URL: scheme and host only, as
// the path, query and user info may carry a token.
func endpoint(u *url.URL) string {
	if u == nil {
		return "(no URL)"
	}
	return u.Scheme + "://" + u.Host
}

// unwrapURL drops net/http's *url.Error wrapper, whose message holds the
// whole URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// maxSnippet bounds how much of an answer's body goes into an error.
const maxSnippet = 256

// readSnippet reads the start of an answer's body as one printable line,
// and drains a little more so the connection can be reused.
func readSnippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxSnippet+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
	cut := len(b) > maxSnippet
	if cut {
		b = b[:maxSnippet]
	}
	s := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(string(b), ""))
	s = strings.Join(strings.Fields(s), " ")
	if cut {
		s += "…"
	}
	return s
}
