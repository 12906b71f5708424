package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tidewatch/tidewatch/web/ui"
	"github.com/tidewatch/tidewatch/web/ui/uitest"
)

// csp is the policy the real server sets on the UI.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'"

// post is a state-changing request the fake API received.
type post struct {
	Path        string
	ContentType string
	Body        map[string]any
}

// fakeAPI answers the endpoints the page uses, from a small in-memory state,
// and records the POSTs. Only this test uses it; the real API lives in web.
type fakeAPI struct {
	mu         sync.Mutex
	updates    []map[string]any
	containers []map[string]any
	triggers   []map[string]any // beside the three every test sees
	posts      []post
	polls      map[string]int // delivery polls per update id
	applied    map[string]string
	events     chan string
	done       chan struct{}
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{
		updates: []map[string]any{
			{"id": 7, "host": "local", "container": "web", "display_name": "web", "image": "registry.local/demo/web",
				"current": "1.0.0", "candidate": "1.1.0", "kind": "minor", "status": "pending",
				"link": "https://example.org/releases/1.1.0", "first_seen": "2026-05-01T10:00:00Z"},
			{"id": 8, "host": "local", "container": "db", "display_name": "Postgres", "image": "index.docker.io/library/postgres",
				"current": "15.2", "candidate": "16.0", "kind": "major", "status": "notified", "first_seen": "2026-05-01T10:00:00Z"},
			{"id": 9, "host": "edge", "container": "cache", "display_name": "cache", "image": "index.docker.io/library/redis",
				"current": "7", "current_digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
				"candidate": "7", "candidate_digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
				"kind": "digest", "status": "pending", "first_seen": "2026-05-01T10:00:00Z"},
		},
		containers: []map[string]any{
			{"host": "local", "name": "web", "display_name": "web", "image": "registry.local/demo/web", "current": "1.0.0",
				"candidate": "1.1.0", "kind": "minor", "status": "pending", "update_id": 7, "last_checked": time.Now().Add(-3 * time.Minute).Format(time.RFC3339)},
			{"host": "local", "name": "db", "display_name": "Postgres", "image": "index.docker.io/library/postgres", "current": "15.2",
				"candidate": "16.0", "kind": "major", "status": "notified", "update_id": 8, "last_checked": time.Now().Add(-3 * time.Minute).Format(time.RFC3339)},
			{"host": "local", "name": "broken", "display_name": "broken", "image": "registry.local/private/app", "current": "2.3.1",
				"error": "listing tags of registry.local/private/app: 401 Unauthorized", "last_checked": time.Now().Add(-3 * time.Minute).Format(time.RFC3339)},
			{"host": "edge", "name": "proxy", "display_name": "proxy", "image": "index.docker.io/library/caddy", "current": "2.8.4",
				"note": "watched by digest", "last_checked": time.Now().Add(-90 * time.Second).Format(time.RFC3339)},
		},
		polls:   map[string]int{},
		applied: map[string]string{},
		events:  make(chan string, 8),
		done:    make(chan struct{}),
	}
}

func (f *fakeAPI) routes() http.Handler {
	mux := http.NewServeMux()
	files := http.FileServerFS(ui.FS)
	mux.Handle("GET /", files)
	// A page that breaks the policy, to prove that the test sees violations.
	mux.HandleFunc("GET /csp-canary.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>canary</title><p style="color:red">x</p><script>document.title='ran'</script>`)
	})
	mux.HandleFunc("GET /api/updates", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"updates": f.updates})
	})
	mux.HandleFunc("GET /api/containers", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"containers": f.containers})
	})
	mux.HandleFunc("GET /api/triggers", func(w http.ResponseWriter, r *http.Request) {
		opt := func(name, value string, secret bool) map[string]any {
			return map[string]any{"name": name, "value": value, "secret": secret}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"triggers": append([]map[string]any{
			{"name": "compose.demo", "type": "compose", "auto": false, "threshold": "all", "mode": "batch", "deploys": true,
				"events": []string{"update-available"}, "options": []any{opt("file", "/srv/demo/compose.yaml", false), opt("dry_run", "false", false)}},
			{"name": "email.team", "type": "email", "auto": true, "threshold": "major", "mode": "simple",
				"events": []string{"update-available", "update-failed"}, "options": []any{opt("to", "ops@example.org", false), opt("password", "[redacted]", true)}},
			{"name": "webhook.ops", "type": "webhook", "auto": false, "threshold": "minor", "mode": "simple",
				"events": []string{"update-available"}, "options": []any{opt("url", "https://hooks.example.org/x", false), opt("token", "[redacted]", true)}},
		}, f.triggers...)})
	})
	mux.HandleFunc("GET /api/deliveries", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		id := r.URL.Query().Get("update_id")
		trigger, ok := f.applied[id]
		if !ok {
			writeJSON(w, http.StatusOK, map[string]any{"deliveries": []any{}})
			return
		}
		f.polls[id]++
		d := map[string]any{"id": 42, "update_id": 7, "trigger": trigger, "event": "update-available", "status": "running", "attempts": 0,
			"update": map[string]any{"id": 7, "status": "applying"}}
		if f.polls[id] >= 2 {
			d["status"], d["attempts"] = "delivered", 1
			d["update"] = map[string]any{"id": 7, "status": "applied"}
			f.updates = slices.DeleteFunc(f.updates, func(u map[string]any) bool { return fmt.Sprint(u["id"]) == id })
		}
		writeJSON(w, http.StatusOK, map[string]any{"deliveries": []any{d}})
	})
	mux.HandleFunc("GET /api/history", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"total": 3, "events": []map[string]any{
			{"id": 3, "at": time.Now().Add(-time.Minute).Format(time.RFC3339), "host": "local", "container": "broken", "kind": "error",
				"detail": "listing tags of registry.local/private/app: 401 Unauthorized"},
			{"id": 2, "at": time.Now().Add(-2 * time.Minute).Format(time.RFC3339), "host": "local", "container": "web", "kind": "detected",
				"from": "1.0.0", "to": "1.1.0", "update_kind": "minor"},
			{"id": 1, "at": time.Now().Add(-time.Hour).Format(time.RFC3339), "host": "local", "container": "db", "kind": "delivered",
				"from": "15.2", "to": "16.0", "update_kind": "major", "detail": "webhook.ops"},
		}})
	})
	mux.HandleFunc("GET /api/registries", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"registries": []map[string]any{
			{"host": "index.docker.io", "requests": 120, "errors": 0, "token_requests": 4, "ratelimit_remaining": 87, "ratelimit_limit": 100},
			{"host": "registry.local", "requests": 12, "errors": 3, "token_requests": 0, "ratelimit_remaining": -1, "ratelimit_limit": -1,
				"last_error": "401 Unauthorized"},
		}})
	})
	mux.HandleFunc("GET /api/watchers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"watchers": []map[string]any{{
			"name": "local", "address": "unix:///var/run/docker.sock", "cron": "0 * * * *", "running": false,
			"last_run": map[string]any{"host": "local", "start": time.Now().Add(-3 * time.Minute).Format(time.RFC3339),
				"duration_ns": 1250 * time.Millisecond, "containers": 4, "updates": 3, "errors": 1},
			"next_run": time.Now().Add(57 * time.Minute).Format(time.RFC3339),
		}}})
	})
	mux.HandleFunc("GET /api/git", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"sources": []map[string]any{
			{"name": "prod", "url": "https://git.example/ops.git", "branch": "main", "path": "prod", "deployed": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
				"fetched": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "in_sync": false, "failed": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
				"failed_reason": "health: web is unhealthy", "last_sync": time.Now().Add(-time.Minute).Format(time.RFC3339)},
			{"name": "lab", "url": "https://git.example/lab.git", "branch": "main", "path": ".", "deployed": "cccccccccccccccccccccccccccccccccccccccc",
				"fetched": "cccccccccccccccccccccccccccccccccccccccc", "in_sync": true, "last_sync": time.Now().Add(-time.Minute).Format(time.RFC3339)},
		}})
	})
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		fl := w.(http.Flusher)
		io.WriteString(w, ": hello\n\n")
		fl.Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-f.done:
				return
			case ev := <-f.events:
				fmt.Fprintf(w, "event: %s\ndata: {}\n\n", ev)
				fl.Flush()
			}
		}
	})
	record := func(status int, reply func(r *http.Request, body map[string]any) any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var body map[string]any
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil && err != io.EOF {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "bad_request", "message": err.Error()}})
				return
			}
			f.mu.Lock()
			f.posts = append(f.posts, post{Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Body: body})
			out := reply(r, body)
			f.mu.Unlock()
			writeJSON(w, status, out)
		}
	}
	remove := func(r *http.Request, _ map[string]any) any {
		id := r.PathValue("id")
		f.updates = slices.DeleteFunc(f.updates, func(u map[string]any) bool { return fmt.Sprint(u["id"]) == id })
		return map[string]any{"id": id}
	}
	mux.Handle("POST /api/updates/{id}/apply", record(http.StatusAccepted, func(r *http.Request, body map[string]any) any {
		f.applied[r.PathValue("id")], _ = body["trigger"].(string)
		return map[string]any{"delivery": map[string]any{"id": 42, "update_id": 7, "trigger": body["trigger"], "status": "pending"}}
	}))
	mux.Handle("POST /api/updates/{id}/dismiss", record(http.StatusOK, remove))
	mux.Handle("POST /api/updates/{id}/snooze", record(http.StatusOK, remove))
	// A copy of the page whose API refuses everyone, as with auth on and no credentials.
	mux.Handle("GET /locked/", http.StripPrefix("/locked/", files))
	mux.HandleFunc("GET /locked/api/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="tidewatch", charset="UTF-8"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": "unauthorized", "message": "authentication required"}})
	})
	mux.Handle("POST /api/watch", record(http.StatusAccepted, func(*http.Request, map[string]any) any { return map[string]any{} }))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// postsTo returns the recorded POSTs to path.
func (f *fakeAPI) postsTo(path string) []post {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []post
	for _, p := range f.posts {
		if p.Path == path {
			out = append(out, p)
		}
	}
	return out
}

// waitFor polls the JavaScript expression cond in the page until it is true.
func waitFor(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %s stayed false (last error: %v)", what, cond, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitPosts polls the fake until it received n POSTs to path.
func waitPosts(t *testing.T, f *fakeAPI, path string, n int) []post {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := f.postsTo(path); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST %s: got %d requests, want %d", path, len(f.postsTo(path)), n)
		}
		time.Sleep(20 * time.Millisecond) // polling the fake, not waiting for time to pass
	}
}

// click clicks the element sel like a mouse does, trying again when a live
// refresh replaced the element between finding and clicking it.
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := chromedp.Do(sctx, chromedp.Click(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("clicking %s: %v", sel, err)
		}
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// artifacts returns the repository's test/artifacts folder.
func artifacts(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "test", "artifacts")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's folder")
		}
		dir = parent
	}
}

func TestPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts chromium")
	}
	fake := newFakeAPI()
	srv := httptest.NewServer(fake.routes())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(fake.done) })

	ctx := uitest.Browser(t)
	problems := uitest.Problems(t, ctx)
	do(t, ctx, "opening the page", chromedp.Navigate(srv.URL+"/"))

	// The pending updates come first, each with its kind badge.
	waitFor(t, ctx, "the pending updates", `document.querySelectorAll('#updates-list > li').length === 3`)
	for id, kind := range map[int]string{7: "minor", 8: "major", 9: "digest"} {
		got := eval[string](t, ctx, fmt.Sprintf(`(document.querySelector('[data-update-id="%d"] .badge.kind-%s') || {}).textContent || ''`, id, kind))
		if got != kind {
			t.Errorf("update %d: badge %q, want %q", id, got, kind)
		}
	}
	if got := eval[string](t, ctx, `document.querySelector('[data-update-id="7"] .versions').textContent`); !strings.Contains(got, "1.0.0") || !strings.Contains(got, "1.1.0") {
		t.Errorf("update 7 versions = %q, want 1.0.0 → 1.1.0", got)
	}
	if got := eval[string](t, ctx, `document.querySelector('[data-update-id="7"] .notes a').href`); got != "https://example.org/releases/1.1.0" {
		t.Errorf("release notes link = %q", got)
	}
	// Only the manual triggers are offered to Apply.
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll('#trigger-7 option')].map(o => o.value)`); !slices.Equal(got, []string{"compose.demo", "webhook.ops"}) {
		t.Errorf("trigger choices = %q, want compose.demo (it deploys), webhook.ops", got)
	}

	// The containers list shows the error in plain sight, on a marked row.
	waitFor(t, ctx, "the containers", `document.querySelectorAll('#containers-body tr').length === 4`)
	if got := eval[string](t, ctx, `(document.querySelector('#containers-body tr.row-error') || {}).textContent || ''`); !strings.Contains(got, "broken") || !strings.Contains(got, "401 Unauthorized") {
		t.Errorf("error row = %q, want the broken container with its error", got)
	}
	waitFor(t, ctx, "the history", `document.querySelectorAll('#history-body tr').length === 3`)
	if got := eval[string](t, ctx, `document.getElementById('history-range').textContent`); got != "1–3 of 3" {
		t.Errorf("history range = %q, want 1–3 of 3", got)
	}
	waitFor(t, ctx, "the triggers", `document.getElementById('triggers-body').textContent.includes('[redacted]')`)
	waitFor(t, ctx, "the registries", `document.getElementById('registries-body').textContent.includes('87 of 100')`)
	waitFor(t, ctx, "the watchers", `document.getElementById('watchers-body').textContent.includes('4 containers, 3 updates, 1 errors')`)
	waitFor(t, ctx, "the git sources", `document.getElementById('git-body').textContent.includes('Failed: health: web is unhealthy') &&
		document.getElementById('git-body').textContent.includes('in sync') && document.getElementById('git-body').textContent.includes('aaaaaaaaaaaa')`)
	waitFor(t, ctx, "the event stream", `document.getElementById('live').dataset.state === 'live'`)

	// Apply with the chosen trigger posts to the update's endpoint, follows
	// the delivery, and the row shows the outcome.
	do(t, ctx, "choosing a trigger with the keyboard", chromedp.Focus(chromedp.CSS(`#trigger-7`)), chromedp.KeyEvent(kb.ArrowDown))
	waitFor(t, ctx, "the chosen trigger", `document.getElementById('trigger-7').value === 'webhook.ops'`)
	click(t, ctx, `[data-key="apply-7"]`)
	applies := waitPosts(t, fake, "/api/updates/7/apply", 1)
	if got := fmt.Sprint(applies[0].Body["trigger"]); got != "webhook.ops" || applies[0].ContentType != "application/json" {
		t.Errorf("apply request = %+v, want trigger webhook.ops as application/json", applies[0])
	}
	waitFor(t, ctx, "the apply outcome", `(document.querySelector('[data-update-id="7"] .outcome') || {}).dataset?.outcome === 'done'`)
	if got := eval[string](t, ctx, `document.querySelector('[data-update-id="7"] .outcome').textContent`); !strings.HasPrefix(got, "Applied: webhook.ops") {
		t.Errorf("outcome = %q, want Applied: webhook.ops …", got)
	}
	waitFor(t, ctx, "the announcement", `document.getElementById('announce').textContent.startsWith('Applied')`)

	// Dismiss, from the keyboard.
	do(t, ctx, "dismissing with the keyboard", chromedp.Focus(chromedp.CSS(`[data-key="dismiss-8"]`)), chromedp.KeyEvent(kb.Enter))
	if p := waitPosts(t, fake, "/api/updates/8/dismiss", 1)[0]; p.ContentType != "application/json" {
		t.Errorf("dismiss Content-Type = %q", p.ContentType)
	}
	waitFor(t, ctx, "the dismissed update to go", `!document.querySelector('[data-update-id="8"]')`)

	// Snooze for a week.
	click(t, ctx, `[data-key="snooze-9"]`)
	do(t, ctx, "opening the snooze panel", chromedp.WaitVisible(chromedp.CSS(`#snooze-choice-9`)))
	if got := eval[string](t, ctx, `document.activeElement.id`); got != "snooze-choice-9" {
		t.Errorf("focus after opening the snooze panel is on %q, want snooze-choice-9", got)
	}
	eval[bool](t, ctx, `(() => { const s = document.getElementById('snooze-choice-9'); s.value = '1w'; s.dispatchEvent(new Event('change')); return true })()`)
	click(t, ctx, `[data-key="snooze-ok-9"]`)
	snoozes := waitPosts(t, fake, "/api/updates/9/snooze", 1)
	until, err := time.Parse(time.RFC3339, fmt.Sprint(snoozes[0].Body["until"]))
	if err != nil {
		t.Fatalf("snooze until %v: %v", snoozes[0].Body["until"], err)
	}
	if d := time.Until(until); d < 7*24*time.Hour-time.Hour || d > 7*24*time.Hour+time.Hour {
		t.Errorf("snooze until %v is %v from now, want a week", until, d)
	}

	// Watch now.
	click(t, ctx, `#watch-now`)
	waitPosts(t, fake, "/api/watch", 1)

	// The event stream refreshes the list when an update changes.
	fake.mu.Lock()
	fake.updates = append(fake.updates, map[string]any{"id": 10, "host": "local", "container": "api", "display_name": "api",
		"current": "2.0.0-rc1", "candidate": "2.0.0-rc2", "kind": "prerelease", "status": "pending"})
	fake.mu.Unlock()
	fake.events <- "update"
	waitFor(t, ctx, "the live refresh", `!!document.querySelector('[data-update-id="10"] .badge.kind-prerelease')`)

	// Every control has an accessible name.
	if n := uitest.CountRole(t, ctx, "button"); n < 10 {
		t.Errorf("accessibility tree has %d buttons, want at least 10", n)
	}
	if bad := uitest.UnnamedControls(t, ctx); len(bad) > 0 {
		t.Errorf("controls without an accessible name: %v", bad)
	}

	dir := artifacts(t)
	uitest.Screenshot(t, ctx, filepath.Join(dir, "ui.png"))
	do(t, ctx, "switching to dark mode", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}))
	uitest.Screenshot(t, ctx, filepath.Join(dir, "ui-dark.png"))

	// At a phone's width nothing overflows sideways.
	do(t, ctx, "narrowing to 320px", chromedp.EmulateViewport(320, 800))
	waitFor(t, ctx, "the narrow layout", `window.innerWidth === 320`)
	if w := eval[[]int](t, ctx, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("at 320px the page is %dpx wide, wider than the %dpx window", w[0], w[1])
	}
	uitest.Screenshot(t, ctx, filepath.Join(dir, "ui-320.png"))

	if got := problems(); len(got) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(got, "\n"))
	}

	// When the API refuses the credentials, the page says so.
	uitest.AnswerAuth(t, ctx, "", "") // the person cancels the browser's sign-in prompt
	do(t, ctx, "opening the page with auth refused", chromedp.Navigate(srv.URL+"/locked/"))
	waitFor(t, ctx, "the sign-in message", `!document.getElementById('alert').hidden && document.getElementById('alert').textContent.includes('Sign-in needed')`)

	// The check above can fail: a page that breaks the policy is seen.
	do(t, ctx, "opening the canary", chromedp.Navigate(srv.URL+"/csp-canary.html"))
	waitFor(t, ctx, "the canary", `document.readyState === 'complete'`)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.ContainsFunc(problems(), func(s string) bool { return strings.Contains(s, "CSP violation") }) {
		if time.Now().After(deadline) {
			t.Fatalf("a CSP violation went unseen; problems: %q", problems())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := eval[string](t, ctx, `document.title`); got != "canary" {
		t.Errorf("the inline script of the canary ran (title %q): the policy was not applied", got)
	}
}
