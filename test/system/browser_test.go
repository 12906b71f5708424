package system

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/web/ui/uitest"
)

// browserComposeFile is the compose project of TestBrowserApplyRollsOut:
// the test app on 1.0.0, published on a loopback port, watched.
const browserComposeFile = `services:
  web:
    image: "%s:1.0.0"
    ports:
      - "127.0.0.1:%d:8080"
    labels:
      tidewatch.test: "1"
      tidewatch.watch: "true"
`

// TestBrowserApplyRollsOut drives the real daemon's page in headless
// chromium: the page lists the pending update of a compose service, Apply
// rolls it out through the compose trigger on the real engine, the service
// answers the new version, its compose file names it, and the history (API
// and page) shows the update as applied. It writes test/artifacts/browser.png.
func TestBrowserApplyRollsOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts chromium, compose and the daemon")
	}
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("browser")
	for _, v := range []string{"1.0.0", "1.1.0"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v, Healthcheck: true})
	}

	// The compose project, up on 1.0.0.
	dir := t.TempDir()
	port := freePort(t)
	appURL := fmt.Sprintf("http://127.0.0.1:%d/", port)
	file := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(browserComposeFile, repo, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	project := strings.ReplaceAll(unique("twbrowser"), "-", "")
	bed.ComposeUp(t, dir, project)
	name := strings.TrimPrefix(bed.ComposeContainer(t, project, "web").Name, "/")
	if got := strings.TrimSpace(bed.WaitHTTP(t, appURL)); got != "1.0.0" {
		t.Fatalf("the app answers %q before the rollout, want 1.0.0", got)
	}

	d := startServe(t, envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_COMPOSE_DEMO_AUTO=false",
		"TIDEWATCH_TRIGGER_COMPOSE_DEMO_DEADLINE=3m",
		"TIDEWATCH_TRIGGER_COMPOSE_DEMO_HEALTH_TIMEOUT=60s",
		"TIDEWATCH_TRIGGER_COMPOSE_DEMO_STABLE_FOR=2s",
		"TIDEWATCH_TRIGGER_COMPOSE_DEMO_DOCKER_HOST="+bed.DockerHost,
		"TIDEWATCH_TRIGGER_COMPOSE_DEMO_INCLUDE="+name,
	))

	// The daemon's first run finds the update.
	var id int64
	waitUntil(t, 60*time.Second, "the pending update of "+name, func() bool {
		var body struct {
			Updates []struct {
				ID        int64  `json:"id"`
				Container string `json:"container"`
				Current   string `json:"current"`
				Candidate string `json:"candidate"`
			} `json:"updates"`
		}
		d.getJSON(t, "/api/updates", &body)
		for _, u := range body.Updates {
			if u.Container == name && u.Current == "1.0.0" && u.Candidate == "1.1.0" {
				id = u.ID
				return true
			}
		}
		return false
	})
	card := fmt.Sprintf(`[data-update-id="%d"]`, id)

	ctx := uitest.Browser(t)
	problems := uitest.Problems(t, ctx)
	pageDo(t, ctx, "opening the page", chromedp.Navigate(d.base+"/"))
	pageWait(t, ctx, 30*time.Second, "the pending update's card",
		`(document.querySelector('`+card+` .versions') || {}).textContent?.includes('1.0.0') && document.querySelector('`+card+` .versions').textContent.includes('1.1.0')`)
	if got := pageEval[string](t, ctx, `document.querySelector('`+card+` h3').textContent`); got != name {
		t.Errorf("the card's title is %q, want %q", got, name)
	}
	// With one manual trigger there is no chooser; with more, choose compose.demo.
	if pageEval[bool](t, ctx, fmt.Sprintf(`!!document.getElementById('trigger-%d')`, id)) {
		pageDo(t, ctx, "choosing compose.demo", chromedp.SetValue(chromedp.CSS(fmt.Sprintf(`#trigger-%d`, id)), "compose.demo"))
	}
	// Clicked until the card shows Apply under way (it does at once, before
	// the request): a click that lands while the list is drawn anew (an
	// event from the server) hits a button that is gone, and does nothing.
	pageRetry(t, ctx, time.Minute, "Apply to start", func(ctx context.Context) error {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-key="apply-%d"]`, id)))); err != nil {
			return err
		}
		started, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector('`+card+` .outcome')`))
		if err != nil {
			return err
		}
		if !started {
			return errors.New("the card shows no outcome yet")
		}
		return nil
	})

	pageWait(t, ctx, 3*time.Minute, "the outcome of Apply", `(document.querySelector('`+card+` .outcome') || {}).dataset?.outcome === 'done'`)
	if got := pageEval[string](t, ctx, `document.querySelector('`+card+` .outcome').textContent`); !strings.HasPrefix(got, "Applied: compose.demo") {
		t.Fatalf("the card's outcome is %q, want Applied: compose.demo …\ndaemon log:\n%s", got, d.log.String())
	}

	// What happened for real: the app, its compose file, the history.
	if got := strings.TrimSpace(bed.WaitHTTP(t, appURL)); got != "1.1.0" {
		t.Errorf("the app answers %q after Apply, want 1.1.0", got)
	}
	if b, err := os.ReadFile(file); err != nil {
		t.Error(err)
	} else if !strings.Contains(string(b), `image: "`+repo+`:1.1.0"`) {
		t.Errorf("the compose file after Apply is\n%s\nwant its image on 1.1.0", b)
	}
	var hist struct {
		Events []struct {
			Kind, Container, From, To string
		} `json:"events"`
		Total int `json:"total"`
	}
	d.getJSON(t, "/api/history?kind=update-applied&container="+name, &hist)
	if hist.Total != 1 || len(hist.Events) != 1 || hist.Events[0].From != "1.0.0" || hist.Events[0].To != "1.1.0" {
		t.Errorf("GET /api/history?kind=update-applied = %+v, want one event 1.0.0 → 1.1.0", hist)
	}
	pageWait(t, ctx, 30*time.Second, "the history row of the rollout",
		`[...document.querySelectorAll('#history-body tr')].some((r) => r.textContent.includes('update-applied') && r.textContent.includes('`+name+`'))`)

	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	uitest.Screenshot(t, ctx, filepath.Join(root, "test", "artifacts", "browser.png"))
	if got := problems(); len(got) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(got, "\n"))
	}
}

// pageDo runs steps in the page, each run bounded by 15 seconds.
func pageDo(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// pageEval evaluates the JavaScript expression expr in the page.
func pageEval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// pageWait polls the JavaScript expression cond in the page until it is
// true, for at most timeout.
func pageWait(t *testing.T, ctx context.Context, timeout time.Duration, what, cond string) {
	t.Helper()
	pageRetry(t, ctx, timeout, "waiting for "+what+" ("+cond+")", func(ctx context.Context) error {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err == nil && !ok {
			err = errors.New("still false")
		}
		return err
	})
}

// pageClick clicks sel like a mouse does, trying again when a live refresh
// replaced the element between finding and clicking it.
func pageClick(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	pageRetry(t, ctx, 15*time.Second, "clicking "+sel, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)))
	})
}

// pageRetry runs try (each time bounded by 5 seconds) every 200ms until it
// returns nil; after timeout the test fails with try's last error.
func pageRetry(t *testing.T, ctx context.Context, timeout time.Duration, what string, try func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := try(sctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: gave up after %s: %v", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
