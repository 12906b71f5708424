package notify

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// request is one request a fake service got.
type request struct {
	Method, Host, Path, Query string
	Header                    http.Header
	Body                      string
}

// fake is a local stand-in for chat and push services: it records every
// request and answers with what answer returns (by default 200 and the
// smallest JSON each service accepts), or fails while failing is set.
type fake struct {
	*httptest.Server
	mu      sync.Mutex
	got     []request
	failing int                                    // answer this status while not 0
	hang    chan struct{}                          // hang while not nil
	onReq   func(r *http.Request, body string) int // when set and it returns a status, that is the answer
}

func newFake(t *testing.T, useTLS bool) *fake {
	t.Helper()
	f := &fake{}
	if useTLS {
		f.Server = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	} else {
		f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	}
	t.Cleanup(func() {
		f.mu.Lock()
		if f.hang != nil {
			close(f.hang)
			f.hang = nil
		}
		f.mu.Unlock()
		f.Close()
	})
	return f
}

// hostPort is the fake's address, 127.0.0.1:port.
func (f *fake) hostPort() string {
	return strings.TrimPrefix(strings.TrimPrefix(f.URL, "http://"), "https://")
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	failing, hang, onReq := f.failing, f.hang, f.onReq
	if onReq != nil {
		if st := onReq(r, string(b)); st != 0 {
			f.mu.Unlock()
			w.WriteHeader(st)
			return
		}
	}
	if failing == 0 {
		f.got = append(f.got, request{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(b)})
	}
	f.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	}
	if failing != 0 {
		w.WriteHeader(failing)
		io.WriteString(w, `{"error":"failing on purpose"}`)
		return
	}
	status, body := answerFor(r, b)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// answerFor is the answer each service expects for a message taken.
func answerFor(r *http.Request, body []byte) (int, string) {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/_matrix/client/r0/login") && r.Method == http.MethodGet:
		return 200, `{"flows":[{"type":"m.login.password"}]}`
	case strings.HasSuffix(p, "/_matrix/client/r0/login"):
		return 200, `{"access_token":"tok-from-login","home_server":"localhost","user_id":"@bot:localhost"}`
	case strings.Contains(p, "/_matrix/client/r0/join/"):
		return 200, `{"room_id":"!room:localhost"}`
	case strings.Contains(p, "/_matrix/client/r0/rooms/"):
		return 200, `{"event_id":"$event"}`
	case strings.Contains(p, "/sendMessage"): // telegram
		return 200, `{"ok":true,"result":{"message_id":1,"chat":{"id":1,"type":"private"}}}`
	case strings.HasSuffix(p, "/1/messages.json"): // pushover
		return 200, `{"status":1,"request":"r"}`
	case strings.HasPrefix(p, "/v2/alerts"): // opsgenie
		return 202, `{"result":"Request will be processed","took":0.1,"requestId":"x"}`
	case strings.HasPrefix(p, "/v2/enqueue"): // pagerduty
		return 202, `{"status":"success","message":"Event processed","dedup_key":"k"}`
	case strings.HasPrefix(p, "/v2/send"): // signal
		return 201, `{"timestamp":"1"}`
	case strings.HasPrefix(p, "/api/webhooks/"): // discord
		return 204, ``
	case p == "/v2/pushes": // pushbullet: echoes the push
		var push map[string]any
		_ = json.Unmarshal(body, &push)
		push["active"], push["iden"] = true, "x"
		b, _ := json.Marshal(push)
		return 200, string(b)
	case p == "/push": // bark
		return 200, `{"code":200,"message":"success","timestamp":1}`
	case strings.HasPrefix(p, "/services/"): // slack webhook
		return 200, `ok`
	}
	return 200, `{}`
}

func (f *fake) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.got...)
}

// fail makes the fake answer status (or hang, for 0) until the returned restore.
func (f *fake) fail(status int) (restore func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if status == 0 {
		f.hang = make(chan struct{})
	} else {
		f.failing = status
	}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.hang != nil {
			close(f.hang)
			f.hang = nil
		}
		f.failing = 0
	}
}

// redirect makes every HTTP connection this process opens through
// http.DefaultTransport to a host other than 127.0.0.1 go to the fake
// instead (TLS unverified), for services whose host is fixed
// (api.telegram.org) or whose port is (Zulip: 443): their requests arrive at
// the fake as they would at the service. It is undone when the test ends.
func redirect(t *testing.T, to *fake) {
	t.Helper()
	old := http.DefaultTransport
	tr := old.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "127.0.0.1:") {
			return d.DialContext(ctx, network, addr)
		}
		return d.DialContext(ctx, network, to.hostPort())
	}
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // a test's local fake
	http.DefaultTransport = tr
	t.Cleanup(func() { http.DefaultTransport = old })
}
