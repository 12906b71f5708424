package webhook

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// received is one request a test server got.
type received struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// recorder is an httptest server that records requests and answers with a
// status chosen per test.
type recorder struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	status   int
	answer   string
}

func newRecorder(t *testing.T, status int) *recorder {
	t.Helper()
	r := &recorder{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests = append(r.requests, received{Method: req.Method, Path: req.URL.RequestURI(), Header: req.Header.Clone(), Body: body})
	status, answer := r.status, r.answer
	r.mu.Unlock()
	if status >= 300 && status < 400 {
		w.Header().Set("Location", "https://elsewhere.example/moved?token=zzz")
	}
	w.WriteHeader(status)
	io.WriteString(w, answer)
}

func (r *recorder) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.requests...)
}

// configured starts a webhook plugin process configured with options.
func configured(t *testing.T, options map[string]string) sdk.Trigger {
	t.Helper()
	p, _ := triggertest.Start(t, "webhook", options)
	return p
}

func sampleUpdate(key string) sdk.Update {
	u := sdk.SampleMessage().Update
	u.Key = key
	return u
}

func TestFireSendsSignedPayload(t *testing.T) {
	srv := newRecorder(t, http.StatusOK)
	const secret = "s3cret-value"
	tr := configured(t, map[string]string{
		OptURL:     srv.URL + "/hooks/abc?token=t0ken",
		OptSecret:  secret,
		OptHeaders: "X-Team=web, X-Env = prod",
	})
	u := sampleUpdate("delivery-42")
	before := time.Now().Unix()
	got := tr.Fire(context.Background(), []sdk.Update{u})
	after := time.Now().Unix()
	if diff := cmp.Diff([]sdk.Result{sdk.OK("HTTP 200")}, got); diff != "" {
		t.Fatalf("Fire results (-want +got):\n%s", diff)
	}

	reqs := srv.got()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/hooks/abc?token=t0ken" {
		t.Errorf("request = %s %s, want POST /hooks/abc?token=t0ken", r.Method, r.Path)
	}
	for name, want := range map[string]string{
		"Content-Type":    "application/json",
		"Idempotency-Key": "delivery-42",
		"X-Team":          "web",
		"X-Env":           "prod",
	} {
		if g := r.Header.Get(name); g != want {
			t.Errorf("header %s = %q, want %q", name, g, want)
		}
	}
	ts, err := strconv.ParseInt(r.Header.Get(HeaderTimestamp), 10, 64)
	if err != nil || ts < before || ts > after {
		t.Errorf("%s = %q, want Unix seconds from %d to %d", HeaderTimestamp, r.Header.Get(HeaderTimestamp), before, after)
	}
	fixed := time.Unix(ts, 0)
	if err := Verify(secret, r.Header, r.Body, 5*time.Minute, fixed.Add(time.Minute)); err != nil {
		t.Errorf("Verify with the right secret = %v, want nil", err)
	}
	if err := Verify("other", r.Header, r.Body, 5*time.Minute, fixed); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify with another secret = %v, want ErrSignature", err)
	}
	if err := Verify(secret, r.Header, append(r.Body, ' '), 5*time.Minute, fixed); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify of a changed body = %v, want ErrSignature", err)
	}
	if err := Verify(secret, r.Header, r.Body, 5*time.Minute, fixed.Add(time.Hour)); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify an hour later = %v, want ErrSignature (replay)", err)
	}

	var p sdk.Payload
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.Body)
	}
	want := sdk.Payload{Trigger: "test", Event: sdk.EventUpdateAvailable, Updates: []sdk.PayloadUpdate{{
		Key: "delivery-42", Event: u.Event, Host: u.Host, Container: u.Container, ContainerID: u.ContainerID,
		Image: u.Image, Current: u.Current, CurrentDigest: u.CurrentDigest, Candidate: u.Candidate,
		CandidateDigest: u.CandidateDigest, Kind: u.Kind, Link: u.Link, DetectedAt: u.DetectedAt,
		Labels: u.Labels, Detail: "",
	}}}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
}

func TestPayloadFieldsAlwaysPresent(t *testing.T) {
	b, err := json.Marshal(sdk.NewPayload("x", []sdk.Update{{Key: "k"}}))
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Updates []map[string]any `json:"updates"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"key", "event", "host", "container", "container_id", "image", "current", "current_digest",
		"candidate", "candidate_digest", "kind", "link", "detected_at", "labels", "detail"} {
		if _, ok := raw.Updates[0][f]; !ok {
			t.Errorf("payload update has no %q field: %s", f, b)
		}
	}
}

func TestFireBatch(t *testing.T) {
	srv := newRecorder(t, http.StatusAccepted)
	tr := configured(t, map[string]string{OptURL: srv.URL, OptMethod: "put"})
	a, b := sampleUpdate("k1"), sampleUpdate("k2")
	b.Event = sdk.EventUpdateApplied
	got := tr.Fire(context.Background(), []sdk.Update{a, b})
	if diff := cmp.Diff([]sdk.Result{sdk.OK("HTTP 202"), sdk.OK("HTTP 202")}, got); diff != "" {
		t.Fatalf("Fire results (-want +got):\n%s", diff)
	}
	reqs := srv.got()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1 for the batch", len(reqs))
	}
	r := reqs[0]
	if r.Method != "PUT" {
		t.Errorf("method = %s, want PUT", r.Method)
	}
	key := r.Header.Get(HeaderIdempotencyKey)
	if key != sdk.Key([]sdk.Update{a, b}) || !strings.HasPrefix(key, "batch-") || len(key) != len("batch-")+64 {
		t.Errorf("Idempotency-Key = %q, want batch-<sha256 hex>", key)
	}
	if key == sdk.Key([]sdk.Update{b, a}) || key == sdk.Key([]sdk.Update{a}) {
		t.Errorf("Key does not depend on the batch's keys and order")
	}
	if r.Header.Get(HeaderSignature) != "" || r.Header.Get(HeaderTimestamp) != "" {
		t.Errorf("unsigned trigger sent signature headers: %v", r.Header)
	}
	var p sdk.Payload
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Event != sdk.EventMixed || len(p.Updates) != 2 || p.Updates[0].Key != "k1" || p.Updates[1].Key != "k2" {
		t.Errorf("batch payload = event %q, %d updates; want mixed, k1 and k2", p.Event, len(p.Updates))
	}
}

func TestFireClassifiesAnswers(t *testing.T) {
	tests := []struct {
		status    int
		wantErr   bool
		permanent bool
		detail    string
	}{
		{status: 200, detail: "HTTP 200"},
		{status: 204, detail: "HTTP 204"},
		{status: 301, wantErr: true, permanent: true},
		{status: 307, wantErr: true, permanent: true},
		{status: 400, wantErr: true, permanent: true},
		{status: 401, wantErr: true, permanent: true},
		{status: 404, wantErr: true, permanent: true},
		{status: 408, wantErr: true},
		{status: 429, wantErr: true},
		{status: 500, wantErr: true},
		{status: 503, wantErr: true},
	}
	srv := newRecorder(t, http.StatusOK)
	srv.answer = "the answer\nsays why"
	tr := configured(t, map[string]string{OptURL: srv.URL + "/p/secret-path"})
	for _, tc := range tests {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv.mu.Lock()
			srv.status, srv.requests = tc.status, nil
			srv.mu.Unlock()
			got := tr.Fire(context.Background(), []sdk.Update{sampleUpdate("k")})[0]
			if (got.Err != nil) != tc.wantErr || sdk.IsPermanent(got.Err) != tc.permanent {
				t.Fatalf("HTTP %d: Fire = %v (permanent %v), want error %v, permanent %v", tc.status, got.Err, sdk.IsPermanent(got.Err), tc.wantErr, tc.permanent)
			}
			if got.Detail != tc.detail {
				t.Errorf("detail = %q, want %q", got.Detail, tc.detail)
			}
			if n := len(srv.got()); n != 1 {
				t.Errorf("server got %d requests, want 1 (no redirect followed, no retry inside Fire)", n)
			}
			if got.Err == nil {
				return
			}
			msg := got.Err.Error()
			if strings.Contains(msg, "secret-path") || strings.Contains(msg, "zzz") {
				t.Errorf("error shows the URL's path or query: %s", msg)
			}
			if tc.status >= 300 && tc.status < 400 {
				if !strings.Contains(msg, "redirect to https://elsewhere.example not followed") {
					t.Errorf("redirect error = %q, want it to say where and that it was not followed", msg)
				}
			} else if !strings.Contains(msg, "the answer says why") {
				t.Errorf("error = %q, want the answer's body on one line", msg)
			}
		})
	}
}

func TestFireTimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	t.Run("timeout", func(t *testing.T) {
		tr := configured(t, map[string]string{OptURL: srv.URL, OptTimeout: "50ms"})
		got := tr.Fire(context.Background(), []sdk.Update{sampleUpdate("k")})[0]
		if got.Err == nil || sdk.IsPermanent(got.Err) || !strings.Contains(got.Err.Error(), "TIMEOUT") {
			t.Errorf("Fire against a hung server = %v, want a retryable error naming TIMEOUT", got.Err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		tr := configured(t, map[string]string{OptURL: srv.URL, OptTimeout: "1h"})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		got := tr.Fire(ctx, []sdk.Update{sampleUpdate("k")})[0]
		if got.Err == nil || sdk.IsPermanent(got.Err) {
			t.Errorf("Fire past its deadline = %v, want a retryable error", got.Err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Fire returned after %s, want soon after the 50ms deadline", d)
		}
	})
}

func TestFireNetworkErrorIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	tr := configured(t, map[string]string{OptURL: addr + "/x/tok3n"})
	got := tr.Fire(context.Background(), []sdk.Update{sampleUpdate("k")})[0]
	if got.Err == nil || sdk.IsPermanent(got.Err) {
		t.Fatalf("Fire to a closed port = %v, want a retryable error", got.Err)
	}
	if strings.Contains(got.Err.Error(), "tok3n") {
		t.Errorf("error shows the URL's path: %v", got.Err)
	}
}

func TestFireTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		options map[string]string
		wantErr bool
	}{
		{name: "system roots refuse", options: map[string]string{OptURL: srv.URL}, wantErr: true},
		{name: "CA file trusted", options: map[string]string{OptURL: srv.URL, OptTLSCAFile: caFile}},
		{name: "insecure", options: map[string]string{OptURL: srv.URL, OptTLSInsecure: "true"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := configured(t, tc.options).Fire(context.Background(), []sdk.Update{sampleUpdate("k")})[0]
			if (got.Err != nil) != tc.wantErr {
				t.Errorf("Fire = %v, want error %v", got.Err, tc.wantErr)
			}
		})
	}
}

func TestFireTemplate(t *testing.T) {
	tests := []struct {
		name, template, headers, wantBody, wantType string
	}{
		{name: "text", template: "{{.Update.Container}} {{.Update.Current}} -> {{.Update.Candidate}}", wantBody: "web 1.0.0 -> 1.1.0", wantType: "text/plain; charset=utf-8"},
		{name: "json", template: `{"text": {{printf "%q" .Update.Container}}, "n": {{.Count}}}`, wantBody: `{"text": "web", "n": 1}`, wantType: "application/json"},
		{name: "content type set", template: "{{.Trigger}}", headers: "Content-Type=application/x-custom", wantBody: "test", wantType: "application/x-custom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, http.StatusOK)
			tr := configured(t, map[string]string{OptURL: srv.URL, OptTemplate: tc.template, OptHeaders: tc.headers})
			if r := tr.Fire(context.Background(), []sdk.Update{sampleUpdate("k")})[0]; r.Err != nil {
				t.Fatalf("Fire = %v", r.Err)
			}
			r := srv.got()[0]
			if string(r.Body) != tc.wantBody || r.Header.Get("Content-Type") != tc.wantType {
				t.Errorf("body %q (%s), want %q (%s)", r.Body, r.Header.Get("Content-Type"), tc.wantBody, tc.wantType)
			}
		})
	}
}

func TestFireBeforeConfigure(t *testing.T) {
	got := New().Fire(context.Background(), []sdk.Update{sampleUpdate("k")})
	if len(got) != 1 || !sdk.IsPermanent(got[0].Err) {
		t.Errorf("Fire before Configure = %v, want one permanent error", got)
	}
}

func TestParseConfig(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	const canary = "CANARY-c4n4ry"
	tests := []struct {
		name    string
		options map[string]string
		want    []string // option names with errors, in order
	}{
		{name: "minimal", options: map[string]string{OptURL: "https://hooks.example/x"}},
		{name: "everything", options: map[string]string{OptURL: "http://h:8080/x", OptMethod: "patch", OptHeaders: "A=1\nB=x,y", OptSecret: "s",
			OptTimeout: "1m", OptTLSInsecure: "yes", OptTemplate: "{{.Count}}"}},
		{name: "missing URL", options: map[string]string{}, want: []string{OptURL}},
		{name: "bad URL", options: map[string]string{OptURL: "ftp://" + canary}, want: []string{OptURL}},
		{name: "relative URL", options: map[string]string{OptURL: canary}, want: []string{OptURL}},
		{name: "bad method", options: map[string]string{OptURL: "http://h", OptMethod: "GET"}, want: []string{OptMethod}},
		{name: "headers", options: map[string]string{OptURL: "http://h", OptHeaders: canary + ", " + canary + " x=1, Idempotency-Key=" + canary + ", X=a\x01" + canary},
			want: []string{OptHeaders, OptHeaders, OptHeaders, OptHeaders}},
		{name: "bad timeout", options: map[string]string{OptURL: "http://h", OptTimeout: "-1s"}, want: []string{OptTimeout}},
		{name: "bad bool", options: map[string]string{OptURL: "http://h", OptTLSInsecure: "maybe"}, want: []string{OptTLSInsecure}},
		{name: "CA missing", options: map[string]string{OptURL: "http://h", OptTLSCAFile: "/nonexistent/ca.pem"}, want: []string{OptTLSCAFile}},
		{name: "CA not PEM", options: map[string]string{OptURL: "http://h", OptTLSCAFile: notPEM}, want: []string{OptTLSCAFile}},
		{name: "template syntax", options: map[string]string{OptURL: "http://h", OptTemplate: "{{.Count"}, want: []string{OptTemplate}},
		{name: "template field", options: map[string]string{OptURL: "http://h", OptTemplate: "{{.Nope}}"}, want: []string{OptTemplate}},
		{name: "unknown option", options: map[string]string{OptURL: "http://h", "URLL": "x"}, want: []string{"URLL"}},
		{name: "all at once", options: map[string]string{OptMethod: "GET", OptTimeout: "x"}, want: []string{OptURL, OptMethod, OptTimeout}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(tc.options)
			var got []string
			for _, e := range sdk.OptionErrors(err) {
				got = append(got, e.Option)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseConfig(%q) options in error (-want +got):\n%s\nerror: %v", tc.options, diff, err)
			}
			if err != nil && strings.Contains(err.Error(), canary) {
				t.Errorf("error shows a secret value: %v", err)
			}
		})
	}
}

func TestParseConfigValues(t *testing.T) {
	c, err := ParseConfig(map[string]string{OptURL: "https://h/x", OptHeaders: "Authorization=Bearer a=b\nX-List=a, b"})
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{"Authorization": {"Bearer a=b"}, "X-List": {"a, b"}}
	if diff := cmp.Diff(want, c.Headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if c.Method != "POST" || c.Timeout != 10*time.Second || c.TLSInsecure || c.Template != nil || c.RootCAs != nil {
		t.Errorf("defaults = %s %s insecure=%v template=%v, want POST 10s false nil", c.Method, c.Timeout, c.TLSInsecure, c.Template)
	}
}

func TestSignKnownValue(t *testing.T) {
	// echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
	const want = "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
	if got := Sign("key", "1700000000", []byte(`{"a":1}`)); got != want {
		t.Errorf("Sign = %q, want %q (openssl)", got, want)
	}
}
