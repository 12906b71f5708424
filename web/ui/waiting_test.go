package ui_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tidewatch/tidewatch/web/ui/uitest"
)

// TestWaitingUntilInBrowser: an update held back by its container's
// cooldown says until when, and since when its image exists; one whose wait
// has passed says nothing of it.
func TestWaitingUntilInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts chromium")
	}
	fake := newFakeAPI()
	until := time.Now().Add(50 * time.Hour).UTC().Truncate(time.Second)
	fake.updates[0]["wait_until"] = until.Format(time.RFC3339)
	fake.updates[0]["candidate_created"] = time.Now().Add(-22 * time.Hour).UTC().Format(time.RFC3339)
	fake.updates[1]["wait_until"] = time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) // passed
	srv := httptest.NewServer(fake.routes())
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(fake.done) })

	ctx := uitest.Browser(t)
	problems := uitest.Problems(t, ctx)
	do(t, ctx, "opening the page", chromedp.Navigate(srv.URL+"/"))
	waitFor(t, ctx, "the pending updates", `document.querySelectorAll('#updates-list > li').length === 3`)
	got := eval[string](t, ctx, `(document.querySelector('[data-update-id="7"] .waiting') || {}).textContent || ''`)
	if !strings.HasPrefix(got, "Waiting until ") || !strings.Contains(got, "cooldown") || !strings.Contains(got, "image built") {
		t.Errorf("update 7 says %q, want Waiting until … (cooldown: image built …)", got)
	}
	if at := eval[string](t, ctx, `document.querySelector('[data-update-id="7"] .waiting time').getAttribute('datetime')`); at != until.Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("waiting until datetime = %q, want %s", at, until.Format(time.RFC3339))
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-update-id="8"] .waiting, [data-update-id="9"] .waiting').length`); n != 0 {
		t.Errorf("%d updates without a wait (passed, or none) say they wait", n)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}
