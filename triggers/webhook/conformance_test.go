package webhook

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// peer is the conformance test's endpoint: it answers with status, or
// hangs while hang is open, and keeps the last request.
type peer struct {
	mu     sync.Mutex
	status int
	hang   chan struct{}
	last   *received
}

func (p *peer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.last = &received{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body}
	status, hang := p.status, p.hang
	p.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(status)
}

// set makes the peer answer with status (or hang, for 0) until restore is called.
func (p *peer) set(status int) (restore func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var hang chan struct{}
	if status == 0 {
		hang = make(chan struct{})
	}
	p.status, p.hang = status, hang
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if hang != nil {
			close(hang)
		}
		p.status, p.hang = http.StatusOK, nil
	}
}

func TestConformance(t *testing.T) {
	pr := &peer{status: http.StatusOK}
	srv := httptest.NewServer(pr)
	t.Cleanup(srv.Close)
	const secret = "conformance-secret"
	options := map[string]string{OptURL: srv.URL + "/hook", OptSecret: secret, OptHeaders: "X-Team=web"}
	with := func(name, value string) map[string]string {
		o := map[string]string{OptURL: srv.URL + "/hook", OptSecret: secret, OptHeaders: "X-Team=web"}
		o[name] = value
		return o
	}

	triggertest.Run(t, triggertest.Case{
		Type:          "webhook",
		Options:       options,
		SecretOptions: []string{OptURL, OptHeaders, OptSecret},
		Bad: []triggertest.BadOption{
			{Options: with(OptURL, "ftp://example.com/x"), Option: OptURL},
			{Options: with(OptMethod, "GET"), Option: OptMethod},
			{Options: with(OptHeaders, "X-Team"), Option: OptHeaders},
			{Options: with(OptTimeout, "ten seconds"), Option: OptTimeout},
			{Options: with(OptTLSInsecure, "perhaps"), Option: OptTLSInsecure},
			{Options: with(OptTLSCAFile, "/nonexistent/ca.pem"), Option: OptTLSCAFile},
			{Options: with(OptTemplate, "{{.Update.Nope}}"), Option: OptTemplate},
		},
		Deliver: func(t *testing.T) func(t *testing.T, u sdk.Update) {
			return func(t *testing.T, u sdk.Update) {
				pr.mu.Lock()
				r := pr.last
				pr.mu.Unlock()
				if r == nil {
					t.Fatal("the endpoint got no request")
				}
				if err := Verify(secret, r.Header, r.Body, time.Minute, time.Now()); err != nil {
					t.Errorf("signature: %v", err)
				}
				if got := r.Header.Get(HeaderIdempotencyKey); got != u.Key {
					t.Errorf("Idempotency-Key = %q, want %q", got, u.Key)
				}
				var p sdk.Payload
				if err := json.Unmarshal(r.Body, &p); err != nil || len(p.Updates) != 1 || p.Updates[0].Key != u.Key || p.Trigger != triggertest.Instance {
					t.Errorf("payload = %s (%v), want one update with key %s from %s", r.Body, err, u.Key, triggertest.Instance)
				}
			}
		},
		Retryable: func(*testing.T) func() { return pr.set(http.StatusServiceUnavailable) },
		Permanent: func(*testing.T) func() { return pr.set(http.StatusBadRequest) },
		Hang:      func(*testing.T) func() { return pr.set(0) },
	})
}

// TestSecretInURLNeverLeaks plants a canary in a valid URL's path and query,
// where endpoints such as chat webhooks keep their token, and fires through
// a plugin process at an endpoint that fails, is unreachable, and succeeds.
func TestSecretInURLNeverLeaks(t *testing.T) {
	const canary = "twcanaryURLPATH0123"
	pr := &peer{status: http.StatusInternalServerError}
	srv := httptest.NewServer(pr)
	t.Cleanup(srv.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	for _, base := range []string{srv.URL, closed.URL} {
		p, logs := triggertest.Start(t, "webhook", map[string]string{OptURL: base + "/hooks/" + canary + "?token=" + canary})
		r := p.Fire(t.Context(), []sdk.Update{triggertest.SampleUpdate("k")})[0]
		if r.Err == nil {
			t.Fatalf("Fire to %s succeeded; want an error", base)
		}
		p.Close()
		for where, text := range map[string]string{"error": r.Err.Error(), "detail": r.Detail, "logs": logs.String()} {
			if strings.Contains(text, canary) {
				t.Errorf("the URL's token appears in the %s: %s", where, text)
			}
		}
	}
}
