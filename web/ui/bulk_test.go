package ui_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tidewatch/tidewatch/web/ui/uitest"
)

// bulkRoutes is the fake API with POST /api/updates/apply, which answers
// as the server would: update 7 enqueued, 8 refused by its policy, 9 a
// conflict.
func bulkRoutes(f *fakeAPI) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", f.routes())
	mux.HandleFunc("POST /api/updates/apply", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "bad_request", "message": err.Error()}})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.posts = append(f.posts, post{Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Body: body})
		trigger, _ := body["trigger"].(string)
		var results []any
		ids, _ := body["ids"].([]any)
		for _, id := range ids {
			switch fmt.Sprint(id) {
			case "7":
				f.applied["7"] = trigger
				results = append(results, map[string]any{"update_id": 7, "outcome": "enqueued",
					"delivery": map[string]any{"id": 42, "update_id": 7, "trigger": trigger, "status": "pending"}})
			case "8":
				results = append(results, map[string]any{"update_id": 8, "outcome": "refused", "rule": "EXCLUDE=db",
					"message": "refused by EXCLUDE=db: the container db matches db"})
			default:
				results = append(results, map[string]any{"update_id": id, "outcome": "conflict", "message": "the update is being applied already"})
			}
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"trigger": trigger, "dry_run": false, "counts": map[string]int{}, "results": results})
	})
	return mux
}

// TestApplyAllInBrowser: "Apply all (n)" in the updates list's header asks
// for confirmation (naming the count and the trigger), can be cancelled,
// sends the listed updates' IDs in one request, and shows each update's
// outcome on its card: followed when enqueued, the reason when refused.
func TestApplyAllInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts chromium")
	}
	fake := newFakeAPI()
	srv := httptest.NewServer(bulkRoutes(fake))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(fake.done) })

	ctx := uitest.Browser(t)
	problems := uitest.Problems(t, ctx)
	do(t, ctx, "opening the page", chromedp.Navigate(srv.URL+"/"))
	waitFor(t, ctx, "Apply all (3)", `(document.querySelector('[data-key="apply-all"]') || {}).textContent === 'Apply all (3)'`)

	// Pressed, it asks first; cancelled, nothing is sent.
	click(t, ctx, `[data-key="apply-all"]`)
	waitFor(t, ctx, "the confirmation", `!!document.getElementById('apply-all-confirm')`)
	if q := eval[string](t, ctx, `document.getElementById('apply-all-q').textContent`); !strings.Contains(q, "Apply 3 updates?") {
		t.Errorf("confirmation = %q, want it to name 3 updates", q)
	}
	if got := eval[string](t, ctx, `document.getElementById('apply-all-trigger').value`); got != "compose.demo" {
		t.Errorf("trigger offered = %q, want compose.demo (the deploying manual trigger first)", got)
	}
	if got := eval[string](t, ctx, `document.activeElement.dataset.key || ''`); got != "apply-all-yes" {
		t.Errorf("focus after pressing Apply all is on %q, want the confirm button", got)
	}
	click(t, ctx, `[data-key="apply-all-no"]`)
	waitFor(t, ctx, "the button again", `!document.getElementById('apply-all-confirm') && !!document.querySelector('[data-key="apply-all"]')`)
	if n := len(fake.postsTo("/api/updates/apply")); n != 0 {
		t.Fatalf("requests after Cancel = %d, want 0", n)
	}

	// Confirmed with another trigger: one request with every listed update.
	click(t, ctx, `[data-key="apply-all"]`)
	waitFor(t, ctx, "the confirmation", `!!document.getElementById('apply-all-trigger')`)
	if got := eval[string](t, ctx, `(() => { const s = document.getElementById('apply-all-trigger'); s.value = 'webhook.ops'; s.dispatchEvent(new Event('change')); return s.value; })()`); got != "webhook.ops" {
		t.Fatalf("choosing webhook.ops left %q", got)
	}
	click(t, ctx, `[data-key="apply-all-yes"]`)
	posts := waitPosts(t, fake, "/api/updates/apply", 1)
	ids, _ := posts[0].Body["ids"].([]any)
	var got []string
	for _, id := range ids {
		got = append(got, fmt.Sprint(id))
	}
	slices.Sort(got)
	if posts[0].Body["trigger"] != "webhook.ops" || strings.Join(got, ",") != "7,8,9" || !strings.HasPrefix(posts[0].ContentType, "application/json") {
		t.Errorf("apply-all request = %+v, want trigger webhook.ops and ids 7, 8, 9 as JSON", posts[0])
	}

	// Each card tells its outcome.
	waitFor(t, ctx, "the refusal on db", `(document.querySelector('[data-update-id="8"] .outcome') || {}).textContent?.includes('refused by EXCLUDE=db')`)
	waitFor(t, ctx, "the conflict on cache", `(document.querySelector('[data-update-id="9"] .outcome') || {}).textContent?.includes('being applied already')`)
	waitFor(t, ctx, "web applied", `(document.querySelector('[data-update-id="7"] .outcome') || {}).textContent?.startsWith('Applied: webhook.ops')`)
	if n := len(fake.postsTo("/api/updates/apply")); n != 1 {
		t.Errorf("apply-all requests = %d, want 1", n)
	}
	if bad := uitest.UnnamedControls(t, ctx); len(bad) > 0 {
		t.Errorf("controls without an accessible name: %v", bad)
	}
	if got := problems(); len(got) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(got, "\n"))
	}
}
