package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// configured returns a notify trigger, in process, configured with options.
func configured(t *testing.T, options map[string]string) *Trigger {
	t.Helper()
	tr := NewWithLogger(slog.New(slog.DiscardHandler))
	if err := tr.Configure(t.Context(), "ops", options); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return tr
}

func update(key, container string) sdk.Update {
	u := sdk.SampleMessage().Update
	u.Key, u.Container = key, container
	return u
}

// at returns the bodies of the requests f got at path since before.
func at(f *fake, before int, path string) []string {
	var out []string
	for _, r := range f.requests()[before:] {
		if r.Path == path {
			out = append(out, r.Body)
		}
	}
	return out
}

// TestOneFailingServiceDoesNotStopTheOthers: three services, the second
// failing. The others get the message; the result is retryable, names the
// failed one by scheme and position, and reports each service's outcome.
// Retried with the same key once the service is back, only the failed
// service gets the message again.
func TestOneFailingServiceDoesNotStopTheOthers(t *testing.T) {
	f := newFake(t, false)
	f.onReq = func(r *http.Request, _ string) int {
		if r.URL.Path == "/b" && f.failing == 0 && f.hang == nil && bDown.Load() {
			return http.StatusBadGateway
		}
		return 0
	}
	bDown.Store(true)
	defer bDown.Store(false)
	urls := fmt.Sprintf("generic+%s/a\ngeneric+%s/b\ngotify://%s/Atokentoken1234?disabletls=yes", f.URL, f.URL, f.hostPort())
	tr := configured(t, map[string]string{OptURLs: urls})

	r := tr.Fire(t.Context(), []sdk.Update{update("k1", "web")})[0]
	if r.Err == nil || sdk.IsPermanent(r.Err) {
		t.Fatalf("Fire = %v, want a retryable error", r.Err)
	}
	if !strings.Contains(r.Err.Error(), "1 of 3 services failed: generic#2: ") || strings.Contains(r.Err.Error(), f.hostPort()) {
		t.Errorf("error = %q, want generic#2 named and no address", r.Err)
	}
	if r.Detail != "sent to generic#1, gotify#3; failed: generic#2" {
		t.Errorf("detail = %q", r.Detail)
	}
	want := []sdk.ServiceOutcome{{Service: "generic#1"}, {Service: "generic#2", Failed: true}, {Service: "gotify#3"}}
	if diff := cmp.Diff(want, r.Services); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}

	bDown.Store(false)
	before := len(f.requests())
	r = tr.Fire(t.Context(), []sdk.Update{update("k1", "web")})[0]
	if r.Err != nil {
		t.Fatalf("retry: %v", r.Err)
	}
	if r.Detail != "sent to generic#2; sent earlier to generic#1, gotify#3" {
		t.Errorf("retry detail = %q", r.Detail)
	}
	if diff := cmp.Diff([]sdk.ServiceOutcome{{Service: "generic#2"}}, r.Services); diff != "" {
		t.Errorf("retry services (-want +got):\n%s", diff)
	}
	if got := f.requests()[before:]; len(got) != 1 || got[0].Path != "/b" {
		t.Errorf("the retry sent %+v; want one request, to /b", got)
	}
}

// TestBatchRetryMadeUpAnew: a batch whose retry holds one more update sends
// each service only the updates it has not taken: the one that took the
// batch gets the new update alone (the one-update templates), the one that
// failed gets all three (the batch templates).
func TestBatchRetryMadeUpAnew(t *testing.T) {
	f := newFake(t, false)
	f.onReq = func(r *http.Request, _ string) int {
		if r.URL.Path == "/b" && bDown.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	bDown.Store(true)
	defer bDown.Store(false)
	tr := configured(t, map[string]string{OptURLs: "generic+" + f.URL + "/a generic+" + f.URL + "/b",
		OptTitle: "one", OptBody: "{{.Update.Container}}", OptBatchTitle: "batch", OptBatchBody: "{{range .Updates}}{{.Container}} {{end}}"})
	rs := tr.Fire(t.Context(), []sdk.Update{update("k1", "web"), update("k2", "db")})
	if rs[0].Err == nil || rs[1].Err == nil {
		t.Fatalf("Fire = %v, %v; want both failed (generic#2)", rs[0].Err, rs[1].Err)
	}
	bDown.Store(false)
	before := len(f.requests())
	rs = tr.Fire(t.Context(), []sdk.Update{update("k1", "web"), update("k2", "db"), update("k3", "cache")})
	for i, r := range rs {
		if r.Err != nil {
			t.Errorf("retry result %d: %v", i, r.Err)
		}
	}
	if got := at(f, before, "/a"); len(got) != 1 || got[0] != "one\n\ncache" {
		t.Errorf("/a got %q; want only the new update, as one", got)
	}
	if got := at(f, before, "/b"); len(got) != 1 || got[0] != "batch\n\nweb db cache" {
		t.Errorf("/b got %q; want the three, as a batch", got)
	}
}

// TestHangingServiceCutOffByTimeout: a service that does not answer is
// given up after TIMEOUT, retryably, while the other gets its message.
func TestHangingServiceCutOffByTimeout(t *testing.T) {
	slow, ok := newFake(t, false), newFake(t, false)
	defer slow.fail(0)()
	tr := configured(t, map[string]string{OptURLs: "generic+" + slow.URL + "/x generic+" + ok.URL + "/y", OptTimeout: "300ms"})
	start := time.Now()
	r := tr.Fire(t.Context(), []sdk.Update{update("k1", "web")})[0]
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Fire took %s with TIMEOUT=300ms", took)
	}
	if r.Err == nil || sdk.IsPermanent(r.Err) || !strings.Contains(r.Err.Error(), "generic#1: no answer within 300ms (TIMEOUT)") {
		t.Errorf("Fire = %v; want generic#1 timed out, retryable", r.Err)
	}
	if len(at(ok, 0, "/y")) != 1 {
		t.Errorf("the answering service got nothing")
	}
}

// TestDefaultMessages: the default templates, as a phone shows them.
func TestDefaultMessages(t *testing.T) {
	cfg, err := ParseConfig(map[string]string{OptURLs: "logger://"})
	if err != nil {
		t.Fatal(err)
	}
	u := sdk.SampleMessage().Update
	applied, rolled, failed := u, u, u
	applied.Event = sdk.EventUpdateApplied
	rolled.Event, rolled.Detail = sdk.EventUpdateRolledBack, "health check failed: HTTP 500 from /healthz"
	failed.Event, failed.Detail = sdk.EventUpdateFailed, "pull: manifest unknown"
	var batch []sdk.Update
	for i := range 23 {
		b := u
		b.Container = fmt.Sprintf("app-%02d", i)
		batch = append(batch, b)
	}
	tests := []struct {
		name        string
		ups         []sdk.Update
		title, body string
	}{
		{"available", []sdk.Update{u}, "web: 1.1.0 available", "1.0.0 → 1.1.0 (minor) on local\nregistry.example/web\nhttps://example.com/releases/1.1.0"},
		{"applied", []sdk.Update{applied}, "web updated to 1.1.0", "1.0.0 → 1.1.0 (minor) on local\nregistry.example/web\nhttps://example.com/releases/1.1.0"},
		{"rolled back", []sdk.Update{rolled}, "web: update to 1.1.0 rolled back", "1.0.0 → 1.1.0 (minor) on local\nregistry.example/web\nhealth check failed: HTTP 500 from /healthz\nhttps://example.com/releases/1.1.0"},
		{"failed", []sdk.Update{failed}, "web: update to 1.1.0 failed", "1.0.0 → 1.1.0 (minor) on local\nregistry.example/web\npull: manifest unknown\nhttps://example.com/releases/1.1.0"},
		{"batch", batch, "23 container updates", "• app-00: 1.0.0 → 1.1.0 (minor)\n" + func() string {
			var b strings.Builder
			for i := 1; i < 20; i++ {
				fmt.Fprintf(&b, "• app-%02d: 1.0.0 → 1.1.0 (minor)\n", i)
			}
			return b.String()
		}() + "… and 3 more"},
	}
	for _, tc := range tests {
		title, body, err := render("ops", cfg, tc.ups)
		if err != nil || title != tc.title || body != tc.body {
			t.Errorf("%s: render = %q, %q, %v; want %q, %q", tc.name, title, body, err, tc.title, tc.body)
		}
	}
}

// TestHostileNamesArriveIntact: names with quotes, newlines, </script> and
// unicode reach a JSON service (the generic webhook's JSON form) as valid
// JSON holding them unchanged.
func TestHostileNamesArriveIntact(t *testing.T) {
	f := newFake(t, false)
	tr := configured(t, map[string]string{OptURLs: "generic+" + f.URL + "/j?template=json", OptTitle: "{{.Update.Container}}", OptBody: "x {{.Update.Container}}"})
	for i, name := range []string{`web"1`, "new\nline", `</script><b>`, "ünï 🐳", `back\slash`} {
		before := len(f.requests())
		if r := tr.Fire(t.Context(), []sdk.Update{update(fmt.Sprint(i), name)})[0]; r.Err != nil {
			t.Fatalf("Fire(%q): %v", name, r.Err)
		}
		got := at(f, before, "/j")
		if len(got) != 1 {
			t.Fatalf("got %d requests", len(got))
		}
		var m map[string]string
		if err := jsonUnmarshal(got[0], &m); err != nil || m["title"] != name || m["message"] != "x "+name {
			t.Errorf("Fire(%q) sent %s (%v)", name, got[0], err)
		}
	}
}

// TestURLsChecked: broken and hostile URLS values are refused at
// Configure, each naming its entry by position (and a known scheme), never
// quoting the URL; comments and blank lines are skipped.
func TestURLsChecked(t *testing.T) {
	const canary = "twcanaryURL0042"
	tests := []struct {
		urls, want string
	}{
		{"gotify://host/" + canary + " " + canary, "entry 2 is not a service URL"},
		{"https://hooks.example/" + canary, `entry 1: "https" is not a service shoutrrr knows`},
		{"tele" + canary + "://x", "entry 1: its scheme is not a service shoutrrr knows"},
		{"telegram://" + canary + "@telegram", "entry 1 (telegram#1) is not valid"},
		{"pagerduty://host/" + canary, "entry 1 (pagerduty#1) is not valid: invalid integration key format"},
		{"ntfy:///" + canary, "entry 1 (ntfy) has no host"},
		{"generic+ftp://" + canary + "/x", "entry 1 (generic+ftp): a generic webhook is generic+http:// or generic+https://"},
		{"# " + canary + "\n\n", "no URL in it"},
		{"discord://%zz" + canary, "entry 1 is not a service URL"},
	}
	for _, tc := range tests {
		_, err := ParseConfig(map[string]string{OptURLs: tc.urls})
		if err == nil || !strings.Contains(err.Error(), "URLS: "+tc.want) && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%q) = %v, want %q", tc.urls, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("ParseConfig(%q) = %v: quotes the URL", tc.urls, err)
		}
	}
	c, err := ParseConfig(map[string]string{OptURLs: "# chat\ntelegram://1:tok@telegram?chats=@ops\n\n  gotify://g.example/Atokentoken1234 logger://  \n"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range c.Targets {
		names = append(names, tg.Name)
	}
	if diff := cmp.Diff([]string{"telegram#1", "gotify#2", "logger#3"}, names); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}

// TestSecretsInURLsNeverLeak plants a canary in every part of valid URLs
// (user, password, path, query) and fires through a plugin process at
// services that fail, hang past TIMEOUT, are unreachable, and succeed: the
// canary is in no error, detail or log line.
func TestSecretsInURLsNeverLeak(t *testing.T) {
	const canary = "twcanaryURLPART7"
	f := newFake(t, false)
	closed := newFake(t, false)
	closed.Close()
	urls := strings.Join([]string{
		"generic+" + f.URL + "/hooks/" + canary + "?token=" + canary,
		"gotify://" + f.hostPort() + "/A" + canary[:14] + "?disabletls=yes",
		"matrix://" + canary + ":" + canary + "@" + closed.hostPort() + "/?rooms=!" + canary + "&disableTLS=yes",
		"mattermost://" + closed.hostPort() + "/" + canary + "?disabletls=yes",
		"ntfy://" + canary + ":" + canary + "@" + f.hostPort() + "/" + canary + "?scheme=http",
	}, " ")
	for _, mode := range []int{http.StatusInternalServerError, 0, http.StatusOK} {
		restore := func() {}
		if mode != http.StatusOK {
			restore = f.fail(mode)
		}
		p, logs := triggertest.Start(t, "notify", map[string]string{OptURLs: urls, OptTimeout: "500ms"})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		r := p.Fire(ctx, []sdk.Update{triggertest.SampleUpdate(fmt.Sprint("k", mode))})[0]
		cancel()
		restore()
		p.Close()
		if r.Err == nil {
			t.Errorf("mode %d: Fire succeeded; the unreachable services should fail", mode)
		}
		for where, text := range map[string]string{"error": fmt.Sprint(r.Err), "detail": r.Detail, "logs": logs.String()} {
			if strings.Contains(text, canary) || strings.Contains(text, canary[:14]) {
				t.Errorf("mode %d: a part of a URL appears in the %s: %s", mode, where, text)
			}
		}
	}
}

var bDown atomic.Bool

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
