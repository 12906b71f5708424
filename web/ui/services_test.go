package ui_test

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tidewatch/tidewatch/web/ui/uitest"
)

// TestServicesInBrowser: a Swarm service is listed beside the containers,
// marked as one, with its replicas, nodes and last update's state (values
// that look like markup stay text); the services filter keeps it alone;
// Apply offers the swarm trigger first for it (and after compose for a
// container) and fires it by default.
func TestServicesInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts chromium")
	}
	fake := newFakeAPI()
	fake.containers = append(fake.containers, map[string]any{
		"host": "manager", "name": "shop_web", "display_name": "shop_web", "image": "registry.local/shop/web:1.0.0", "current": "1.0.0",
		"candidate": "1.1.0", "kind": "minor", "status": "pending", "update_id": 11, "state": "running", "type": "service",
		"last_checked": time.Now().Add(-time.Minute).Format(time.RFC3339),
		"service": map[string]any{"mode": "replicated", "running": 1, "desired": 2, "nodes": []string{"node-a", `<img src=x onerror="document.title='pwned'">`},
			"stack": "shop", "update_state": "rollback_completed", "update_message": "update rolled back due to failure"},
	})
	fake.updates = append(fake.updates, map[string]any{"id": 11, "host": "manager", "container": "shop_web", "display_name": "shop_web",
		"image": "registry.local/shop/web", "current": "1.0.0", "candidate": "1.1.0", "kind": "minor", "status": "pending",
		"first_seen": "2026-05-01T10:00:00Z"})
	fake.triggers = []map[string]any{{"name": "swarm.prod", "type": "swarm", "auto": false, "threshold": "all", "mode": "simple", "deploys": true,
		"events": []string{"update-available"}, "options": []any{}}}
	srv := httptest.NewServer(fake.routes())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(fake.done) })

	ctx := uitest.Browser(t)
	problems := uitest.Problems(t, ctx)
	do(t, ctx, "opening the page", chromedp.Navigate(srv.URL+"/"))

	row := `document.querySelector('#containers-body tr[data-container="manager/shop_web"]')`
	waitFor(t, ctx, "the service's row", `!!`+row)
	got := eval[string](t, ctx, row+`.textContent`)
	for _, want := range []string{"Swarm service", "1/2 replicas", "on node-a, <img", "last update: rollback completed (update rolled back due to failure)"} {
		if !strings.Contains(got, want) {
			t.Errorf("service row = %q, want it to say %q", got, want)
		}
	}
	if n := eval[int](t, ctx, row+`.querySelectorAll('img').length`); n != 0 {
		t.Errorf("service row has %d img elements: a node name was taken for markup", n)
	}
	if got := eval[string](t, ctx, `document.querySelector('#containers-body tr[data-container="local/web"]').textContent`); strings.Contains(got, "Swarm service") || strings.Contains(got, "replica") {
		t.Errorf("container row = %q, want no service details", got)
	}

	// The services filter.
	click(t, ctx, `#containers-services-only`)
	waitFor(t, ctx, "the services only", `document.querySelectorAll('#containers-body tr').length === 1`)
	click(t, ctx, `#containers-services-only`)
	waitFor(t, ctx, "every row again", `document.querySelectorAll('#containers-body tr').length === 5`)

	// Apply: the swarm trigger first for the service, after compose for a container.
	waitFor(t, ctx, "the service's update", `!!document.querySelector('#trigger-11')`)
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll('#trigger-11 option')].map(o => o.value)`); !slices.Equal(got, []string{"swarm.prod", "compose.demo", "webhook.ops"}) {
		t.Errorf("trigger choices for the service = %q, want swarm.prod first", got)
	}
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll('#trigger-7 option')].map(o => o.value)`); !slices.Equal(got, []string{"compose.demo", "swarm.prod", "webhook.ops"}) {
		t.Errorf("trigger choices for a container = %q, want compose.demo first", got)
	}
	if got := eval[string](t, ctx, `document.querySelector('[data-update-id="11"] .meta').textContent`); !strings.Contains(got, "Swarm service") {
		t.Errorf("service update card = %q, want it marked as a Swarm service", got)
	}
	click(t, ctx, `[data-key="apply-11"]`)
	applies := waitPosts(t, fake, "/api/updates/11/apply", 1)
	if got := fmt.Sprint(applies[0].Body["trigger"]); got != "swarm.prod" {
		t.Errorf("apply of the service fired %q, want swarm.prod", got)
	}
	if got := eval[string](t, ctx, `document.title`); got == "pwned" {
		t.Errorf("a node name ran as script")
	}
	if got := problems(); len(got) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(got, "\n"))
	}
}
