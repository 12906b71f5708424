package triggertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

func TestMain(m *testing.M) {
	triggertest.Main(m, map[string]func() sdk.Trigger{
		"echo":        func() sdk.Trigger { return &echo{typ: "echo"} },
		"leaky":       func() sdk.Trigger { return &echo{typ: "leaky"} },
		"misclassify": func() sdk.Trigger { return &echo{typ: "misclassify"} },
		"deaf":        func() sdk.Trigger { return &echo{typ: "deaf"} },
		"undeclared":  func() sdk.Trigger { return &echo{typ: "undeclared"} },
	})
}

// echo is a tiny trigger that POSTs each update as JSON to URL with a bearer
// TOKEN. Its types other than "echo" each have one flaw the kit must catch.
type echo struct {
	typ     string
	url     string
	token   string
	timeout time.Duration
}

func (e *echo) options() []sdk.Option {
	return []sdk.Option{
		{Name: "URL", Description: "where updates are posted", Required: true},
		{Name: "TOKEN", Description: "the bearer token", Required: true, Secret: e.typ != "undeclared"},
		{Name: "TIMEOUT", Description: "how long a post may take", Default: "5s"},
	}
}

func (e *echo) Describe(context.Context) sdk.Description {
	return sdk.Description{Type: e.typ, Description: "posts updates as JSON", Options: e.options()}
}

func (e *echo) Configure(_ context.Context, _ string, values map[string]string) error {
	o := sdk.NewOptions(values, e.options())
	e.url, e.token, e.timeout = o.String("URL"), o.String("TOKEN"), o.Duration("TIMEOUT")
	if e.url != "" && !strings.HasPrefix(e.url, "http") {
		o.Add("URL", "%q is not an http(s) URL", e.url)
	}
	if e.typ == "leaky" {
		sdk.Logger().Debug("configured", "url", e.url, "token", e.token)
	}
	return o.Err()
}

func (e *echo) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	log := sdk.Logger()
	if e.typ == "deaf" {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	out := make([]sdk.Result, len(updates))
	for i, u := range updates {
		body, _ := json.Marshal(u)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
		if err != nil {
			out[i] = sdk.Fail(err)
			continue
		}
		req.Header.Set("Authorization", "Bearer "+e.token)
		req.Header.Set("Idempotency-Key", u.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out[i] = sdk.Retry(fmt.Errorf("posting to %s: %w", e.url, err))
			continue
		}
		resp.Body.Close()
		switch {
		case resp.StatusCode < 300:
			log.Info("delivered", "key", u.Key, "status", resp.StatusCode)
			out[i] = sdk.OK(resp.Status)
		case resp.StatusCode >= 500 && e.typ != "misclassify":
			out[i] = sdk.Retry(fmt.Errorf("posting to %s: %s", e.url, resp.Status))
		default:
			out[i] = sdk.Fail(fmt.Errorf("posting to %s: %s", e.url, resp.Status))
		}
	}
	return out
}

// peer is the echo trigger's HTTP peer.
type peer struct {
	*httptest.Server
	token string

	mu       sync.Mutex
	status   int           // answered when not 0
	hang     chan struct{} // requests wait for it to close when not nil
	received []sdk.Update
}

func newPeer(t *testing.T) *peer {
	p := &peer{token: "s3cret-token"}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *peer) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	status, hang := p.status, p.hang
	p.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+p.token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	var u sdk.Update
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &u); err != nil || r.Header.Get("Idempotency-Key") != u.Key {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.received = append(p.received, u)
	p.mu.Unlock()
}

func (p *peer) answer(status int) func(*testing.T) func() {
	return func(*testing.T) func() {
		p.mu.Lock()
		p.status = status
		p.mu.Unlock()
		return func() {
			p.mu.Lock()
			p.status = 0
			p.mu.Unlock()
		}
	}
}

func (p *peer) hangs(*testing.T) func() {
	release := make(chan struct{})
	p.mu.Lock()
	p.hang = release
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.hang = nil
		p.mu.Unlock()
		close(release)
	}
}

func echoCase(t *testing.T, typ string) triggertest.Case {
	p := newPeer(t)
	return triggertest.Case{
		Type:          typ,
		Options:       map[string]string{"URL": p.URL, "TOKEN": p.token},
		SecretOptions: []string{"TOKEN"},
		Bad: []triggertest.BadOption{
			{Options: map[string]string{"TOKEN": "x"}, Option: "URL"},
			{Options: map[string]string{"URL": "ftp://x", "TOKEN": "x"}, Option: "URL"},
			{Options: map[string]string{"URL": p.URL}, Option: "TOKEN"},
			{Options: map[string]string{"URL": p.URL, "TOKEN": "x", "TIMEOUT": "soon"}, Option: "TIMEOUT"},
		},
		Deliver: func(t *testing.T) func(*testing.T, sdk.Update) {
			return func(t *testing.T, u sdk.Update) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if diff := cmp.Diff([]sdk.Update{u}, p.received); diff != "" {
					t.Errorf("updates the peer received (-want +got):\n%s", diff)
				}
				p.received = nil
			}
		},
		Retryable: p.answer(http.StatusServiceUnavailable),
		Permanent: p.answer(http.StatusBadRequest),
		Hang:      p.hangs,
	}
}

func TestRun(t *testing.T) {
	triggertest.Run(t, echoCase(t, "echo"))
}

func TestStartLogs(t *testing.T) {
	peer := newPeer(t)
	p, logs := triggertest.Start(t, "echo", map[string]string{"URL": peer.URL, "TOKEN": peer.token})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if r := p.Fire(ctx, []sdk.Update{triggertest.SampleUpdate("k1")}); r[0].Err != nil {
		t.Fatalf("Fire: %v", r[0].Err)
	}
	logs.WaitFor(t, `"msg":"delivered"`)
	var got []map[string]any
	for _, e := range logs.Entries(t) {
		if e["msg"] == "delivered" {
			delete(e, "time")
			got = append(got, e)
		}
	}
	want := []map[string]any{{"level": "INFO", "msg": "delivered", "plugin": "echo", "instance": "test", "key": "k1", "status": float64(200)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the plugin's log line (-want +got):\n%s", diff)
	}
}

// TestFlawed runs the kit on a flawed trigger named by TRIGGERTEST_FLAWED;
// it is run, and expected to fail, by TestKitCatches.
func TestFlawed(t *testing.T) {
	typ := os.Getenv("TRIGGERTEST_FLAWED")
	if typ == "" {
		t.Skip("run by TestKitCatches")
	}
	triggertest.Run(t, echoCase(t, typ))
}

func TestKitCatches(t *testing.T) {
	tests := []struct {
		typ, subtest, want string
	}{
		{"leaky", "secrets_never_leak", "the canary planted in secret option TOKEN appears in the plugin's logs"},
		{"misclassify", "retryable_failure", "a permanent error; want a retryable one"},
		{"deaf", "context_honoured", "does not honour its context"},
		{"undeclared", "options_declared", "option TOKEN of Case.SecretOptions is not declared secret"},
	}
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFlawed$/^"+tc.subtest+"$", "-test.v")
			cmd.Env = append(os.Environ(), "TRIGGERTEST_FLAWED="+tc.typ)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("the kit on a %s trigger: %v; want it to fail saying %q; output:\n%s", tc.typ, err, tc.want, out)
			}
		})
	}
}
