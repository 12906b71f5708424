package web

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/core/store"
)

// live is e's server on a real listener on 127.0.0.1.
type live struct {
	base string // "http://127.0.0.1:PORT"
	port string
}

// serveLive starts e's server on a loopback port until the test ends (serve).
func (e *env) serveLive(t *testing.T) live {
	t.Helper()
	url, _ := serve(t, e)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	return live{base: url, port: port}
}

// send sends a real request to l; host sets the Host header when not "";
// headers are name, value pairs.
func (l live) send(t *testing.T, method, path, host, body string, headers ...string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, l.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, path, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// TestDNSRebindingRefused drives a real server (auth off, on loopback) as a
// page of evil.example resolving to 127.0.0.1 would: with its Host, its
// Origin and Sec-Fetch-Site: same-origin. Nothing is answered, read or
// changed; loopback names and the allowed hosts still are.
func TestDNSRebindingRefused(t *testing.T) {
	e := newEnv(t, func(_ *Deps, c *Config) { c.AllowedHosts = []string{"tidewatch.lan"} })
	l := e.serveLive(t)
	evil := "evil.example:" + l.port
	browser := []string{"Origin", "http://" + evil, "Sec-Fetch-Site", "same-origin", "Content-Type", "application/json"}
	id := itoa(e.updateID)
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/api/deploy", `{"project":"demo","service":"web","tag":"6.6.6"}`},
		{"POST", "/api/watch", ""},
		{"POST", "/api/containers/local/web/watch", ""},
		{"POST", "/api/updates/" + id + "/apply", `{"trigger":"compose.prod"}`},
		{"POST", "/api/updates/" + id + "/dismiss", ""},
		{"POST", "/api/triggers/webhook.ops/test", ""},
		{"GET", "/api/containers", ""},
		{"GET", "/api/triggers", ""},
		{"GET", "/api/history", ""},
		{"GET", "/metrics", ""},
		{"GET", "/", ""},
		{"GET", "/readyz", ""},
	} {
		code, body, _ := l.send(t, tc.method, tc.path, evil, tc.body, browser...)
		if code != http.StatusForbidden || !strings.Contains(body, `"code":"host_not_allowed"`) {
			t.Errorf("%s %s with Host %s = %d %s, want 403 host_not_allowed", tc.method, tc.path, evil, code, body)
		}
	}
	e.untouched(t)

	// Other Host values that are not this machine.
	for _, host := range []string{
		"evil.example", "127.0.0.1.nip.io:" + l.port, "localhost.evil.example:" + l.port, "0.0.0.0:" + l.port,
		"169.254.169.254", "[::ffff:10.0.0.1]:" + l.port, "127.0.0.1:" + l.port + ":1", "tidewatch.lan.evil.example",
		"xn--tidewatch-lan", strings.Repeat("a", 300),
	} {
		if code, body, _ := l.send(t, "GET", "/api/containers", host, ""); code != http.StatusForbidden {
			t.Errorf("GET /api/containers with Host %q = %d %s, want 403", host, code, body)
		}
	}

	// An HTTP/1.0 request without Host names nothing.
	conn, err := net.Dial("tcp", strings.TrimPrefix(l.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /api/containers HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("HTTP/1.0 GET without Host = %d, want 403", resp.StatusCode)
	}

	// This machine's names, and the allowed ones, are answered.
	for _, host := range []string{
		"127.0.0.1:" + l.port, "127.0.0.1", "127.3.2.1:" + l.port, "localhost:" + l.port, "LocalHost.:" + l.port,
		"[::1]:" + l.port, "[::ffff:127.0.0.1]:" + l.port, "tidewatch.lan:" + l.port, "TIDEWATCH.LAN",
	} {
		if code, body, _ := l.send(t, "GET", "/api/containers", host, ""); code != http.StatusOK {
			t.Errorf("GET /api/containers with Host %q = %d %s, want 200", host, code, body)
		}
	}
	if code, body, _ := l.send(t, "POST", "/api/watch", "localhost:"+l.port, "", "Origin", "http://localhost:"+l.port, "Sec-Fetch-Site", "same-origin"); code != http.StatusAccepted {
		t.Errorf("POST /api/watch from the UI on localhost = %d %s, want 202", code, body)
	}
}

// TestProxiedRequestsNeedAuth: a request that came through a proxy is
// refused while auth is off, whatever its Host, and let through when auth is on.
func TestProxiedRequestsNeedAuth(t *testing.T) {
	headers := [][]string{
		{"Forwarded", "for=203.0.113.7;host=tidewatch.example;proto=https"},
		{"X-Forwarded-For", "203.0.113.7"},
		{"X-Forwarded-Host", "tidewatch.example"},
		{"X-Forwarded-Proto", "https"},
		{"X-Real-Ip", "203.0.113.7"},
	}
	open := newEnv(t)
	lo := open.serveLive(t)
	for _, h := range headers {
		code, body, _ := lo.send(t, "GET", "/api/containers", "", "", h...)
		if code != http.StatusForbidden || !strings.Contains(body, `"code":"proxied"`) || !strings.Contains(body, "TIDEWATCH_SERVER_AUTH_USERS") {
			t.Errorf("GET /api/containers with %s, auth off = %d %s, want 403 proxied naming the variables", h[0], code, body)
		}
		if code, body, _ := lo.send(t, "POST", "/api/watch", "", "", h...); code != http.StatusForbidden {
			t.Errorf("POST /api/watch with %s, auth off = %d %s, want 403", h[0], code, body)
		}
	}
	if open.watcher.runs != 0 {
		t.Errorf("a proxied request started %d runs", open.watcher.runs)
	}

	// With auth on, the proxy's Host and headers pass: credentials decide.
	authed := newEnv(t, withAuth(t))
	la := authed.serveLive(t)
	for _, h := range headers {
		code, body, _ := la.send(t, "GET", "/api/containers", "tidewatch.example", "", append(append([]string{}, asCI...), h...)...)
		if code != http.StatusOK {
			t.Errorf("GET /api/containers through a proxy with a token, auth on = %d %s, want 200", code, body)
		}
		if code, _, _ := la.send(t, "GET", "/api/containers", "tidewatch.example", "", h...); code != http.StatusUnauthorized {
			t.Errorf("GET /api/containers through a proxy without credentials, auth on = %d, want 401", code)
		}
	}
}

// untouched checks that no refused request reached the daemon: no deploy,
// run, trigger test or delivery, and the open update still pending.
func (e *env) untouched(t *testing.T) {
	t.Helper()
	if len(e.deployer.got) != 0 || e.watcher.runs != 0 || len(e.triggers.tests) != 0 {
		t.Errorf("a refused request reached the daemon: deploys %v, runs %d, trigger tests %v", e.deployer.got, e.watcher.runs, e.triggers.tests)
	}
	if ds, _ := e.st.Deliveries(t.Context(), store.DeliveryFilter{}); len(ds) != 0 {
		t.Errorf("a refused apply enqueued %d deliveries", len(ds))
	}
	if u, _ := e.st.Update(t.Context(), e.updateID); u.Status != "pending" {
		t.Errorf("update %d is %s after refused requests, want pending", e.updateID, u.Status)
	}
}
