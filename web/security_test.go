package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// routeList returns every route of the server as "METHOD pattern".
func routeList(t *testing.T, h http.Handler) []string {
	t.Helper()
	var out []string
	err := chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// concrete fills a route pattern's parameters.
func (e *env) concrete(route string) string {
	r := strings.NewReplacer("{host}", "local", "{name}", "web", "{id}", itoa(e.updateID), "/*", "/app.js")
	p := r.Replace(route)
	if strings.HasPrefix(route, "/api/triggers/") {
		p = strings.Replace(route, "{name}", "webhook.ops", 1)
	}
	return p
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// open routes need no credentials (a git webhook's signature is its own).
var openRoutes = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /": true, "GET /*": true, "POST /api/git/{name}/webhook": true}

func TestAuthRequired(t *testing.T) {
	e := newEnv(t, withAuth(t))
	routes := routeList(t, e.h)
	if len(routes) < 20 {
		t.Fatalf("routes = %v, want the whole tree", routes)
	}
	for _, rt := range routes {
		method, route, _ := strings.Cut(rt, " ")
		path := e.concrete(route)
		t.Run(rt, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // the event stream ends at once
			for _, creds := range [][]string{
				nil,
				{"Authorization", "Basic YWxpY2U6d3Jvbmc="}, // alice:wrong
				{"Authorization", "Bearer not-a-token"},
				{"Authorization", "Bearer " + hexSum(apiToken)}, // the hash is not the token
			} {
				r := httptest.NewRequest(method, path, nil).WithContext(ctx)
				if creds != nil {
					r.Header.Set(creds[0], creds[1])
				}
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, r)
				if openRoutes[rt] {
					if w.Code == http.StatusUnauthorized {
						t.Errorf("%s %s with %v = 401, want it open", method, path, creds)
					}
					continue
				}
				if w.Code != http.StatusUnauthorized || errorOf(t, w).Code != "unauthorized" {
					t.Errorf("%s %s with %v = %d %s, want 401", method, path, creds, w.Code, w.Body.String())
				}
				if creds == nil && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("%s %s: WWW-Authenticate = %q, want Basic", method, path, w.Header().Get("WWW-Authenticate"))
				}
			}
		})
	}
}

func TestAuthAccepts(t *testing.T) {
	e := newEnv(t, withAuth(t))
	for name, creds := range map[string][]string{"bcrypt user": asAlice, "argon2id user": asBob, "token": asCI} {
		for i := range 2 { // the second time from the cache
			if w := e.do(t, "GET", "/api/containers", "", creds...); w.Code != http.StatusOK {
				t.Errorf("%s (try %d): GET /api/containers = %d %s, want 200", name, i, w.Code, w.Body.String())
			}
		}
	}
	// A token may deploy (CI), and so may a user.
	for _, creds := range [][]string{asCI, asAlice} {
		if w := e.do(t, "POST", "/api/deploy", `{"project":"demo","service":"web","tag":"1.1.0"}`, creds...); w.Code != http.StatusOK {
			t.Errorf("deploy = %d %s, want 200", w.Code, w.Body.String())
		}
	}
	// A wrong password is refused even after the right one was cached.
	if w := e.do(t, "GET", "/api/containers", "", "Authorization", "Basic YWxpY2U6d3Jvbmc="); w.Code != http.StatusUnauthorized {
		t.Errorf("wrong password after a right one = %d, want 401", w.Code)
	}
}

func TestAuthOffOnLoopback(t *testing.T) {
	e := newEnv(t)
	if w := e.do(t, "GET", "/api/containers", ""); w.Code != http.StatusOK {
		t.Errorf("GET /api/containers without auth configured = %d %s, want 200", w.Code, w.Body.String())
	}
	if w := e.do(t, "POST", "/api/watch", ""); w.Code != http.StatusAccepted {
		t.Errorf("POST /api/watch without auth configured = %d %s, want 202", w.Code, w.Body.String())
	}
}

func TestRefusesOpenServerWithoutAuth(t *testing.T) {
	e := newEnv(t, func(_ *Deps, c *Config) { c.Address, c.Port = "0.0.0.0", 1 })
	err := e.srv.ListenAndServe(t.Context())
	if err == nil || !strings.Contains(err.Error(), "TIDEWATCH_SERVER_AUTH_USERS") {
		t.Errorf("ListenAndServe(0.0.0.0 without auth) error = %v, want a refusal naming the variables", err)
	}
}

func TestCrossOriginRefused(t *testing.T) {
	e := newEnv(t, withAuth(t))
	var posts []string
	for _, rt := range routeList(t, e.h) {
		if strings.HasPrefix(rt, "POST ") {
			posts = append(posts, e.concrete(strings.TrimPrefix(rt, "POST ")))
		}
	}
	if len(posts) != 9 {
		t.Fatalf("POST routes = %v, want 9", posts)
	}
	for _, p := range posts {
		for _, h := range [][]string{
			{"Sec-Fetch-Site", "cross-site"},
			{"Sec-Fetch-Site", "same-site"},
			{"Origin", "https://evil.example"},
		} {
			w := e.do(t, "POST", p, `{}`, append(append([]string{}, asAlice...), h...)...)
			if w.Code != http.StatusForbidden || errorOf(t, w).Code != "cross_origin" {
				t.Errorf("POST %s with %s: %s = %d %s, want 403", p, h[0], h[1], w.Code, w.Body.String())
			}
		}
	}
	// The same origin passes, and so does a client without browser headers.
	id := itoa(e.updateID)
	for _, h := range [][]string{{"Sec-Fetch-Site", "same-origin"}, {"Origin", "http://127.0.0.1:8080"}, {"X-None", "x"}} {
		w := e.do(t, "POST", "/api/updates/"+id+"/snooze", `{"until":"2999-01-01T00:00:00Z"}`, append(append([]string{}, asAlice...), h...)...)
		if w.Code != http.StatusOK {
			t.Errorf("same-origin POST with %s: %s = %d %s, want 200", h[0], h[1], w.Code, w.Body.String())
		}
	}
	// Reading from another origin is not a state change.
	if w := e.do(t, "GET", "/api/containers", "", append(append([]string{}, asAlice...), "Sec-Fetch-Site", "cross-site")...); w.Code != http.StatusOK {
		t.Errorf("cross-site GET = %d, want 200", w.Code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/", "/api/containers", "/healthz", "/nope"} {
		w := e.do(t, "GET", p, "")
		want := map[string]string{
			"Content-Security-Policy": ContentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
		}
		for k, v := range want {
			if got := w.Header().Get(k); got != v {
				t.Errorf("GET %s: %s = %q, want %q", p, k, got, v)
			}
		}
		if w.Header().Get("X-Request-Id") == "" {
			t.Errorf("GET %s: no X-Request-Id", p)
		}
	}
	if got := e.do(t, "GET", "/api/containers", "").Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("API Cache-Control = %q, want no-store", got)
	}
	if !strings.Contains(ContentSecurityPolicy, "script-src 'self';") || !strings.Contains(ContentSecurityPolicy, "frame-ancestors 'none'") {
		t.Errorf("CSP %q is not strict", ContentSecurityPolicy)
	}
}

// TestSecretsNeverInResponses walks every GET route (and the POSTs that
// answer with data) and looks for the canary and the hashes in bodies and headers.
func TestSecretsNeverInResponses(t *testing.T) {
	e := newEnv(t, withAuth(t))
	secrets := append([]string{canary, hexSum(apiToken)}, e.hashes...)
	check := func(what string, w *httptest.ResponseRecorder) {
		t.Helper()
		var all strings.Builder
		all.Write(w.Body.Bytes())
		for k, vs := range w.Header() {
			all.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		for _, s := range secrets {
			if strings.Contains(all.String(), s) {
				t.Errorf("%s shows a secret (%.12s…):\n%s", what, s, all.String())
			}
		}
	}
	n := 0
	for _, rt := range routeList(t, e.h) {
		method, route, _ := strings.Cut(rt, " ")
		if method != http.MethodGet || route == "/api/events" {
			continue
		}
		w := e.do(t, method, e.concrete(route), "", asAlice...)
		if w.Code >= 400 {
			t.Errorf("GET %s = %d %s", e.concrete(route), w.Code, w.Body.String())
		}
		check("GET "+route, w)
		n++
	}
	if n < 14 {
		t.Errorf("walked %d GET routes, want every one", n)
	}
	check("trigger test", e.do(t, "POST", "/api/triggers/webhook.ops/test", "", asAlice...))
	check("watch", e.do(t, "POST", "/api/containers/local/web/watch", "", asAlice...))
	check("apply", e.do(t, "POST", "/api/updates/"+itoa(e.updateID)+"/apply", `{"trigger":"compose.prod"}`, asAlice...))
	check("deliveries after apply", e.do(t, "GET", "/api/deliveries", "", asAlice...))
	check("bad password", e.do(t, "GET", "/api/containers", "", "Authorization", "Basic YWxpY2U6"+canary))
	check("bad token", e.do(t, "GET", "/api/containers", "", "Authorization", "Bearer "+canary))

	// The events stream what the API shows, never labels.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := e.broker.Subscribe(ctx)
	e.do(t, "POST", "/api/updates/"+itoa(e.updateID)+"/dismiss", "", asAlice...)
	ev := <-ch
	if strings.Contains(mustJSON(t, ev.Data), canary) {
		t.Errorf("event %s shows a secret: %s", ev.Type, mustJSON(t, ev.Data))
	}
}
