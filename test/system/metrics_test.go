package system

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// TestNotifyServiceMetrics: `tidewatch serve` with a notify trigger of two
// generic webhook URLs (in URLS_FILE, one a line, after a comment), one of
// a service that takes messages and one of a service that always answers
// 500, each URL with a canary in it. serve's
// /metrics counts, per trigger and service, the first service's delivery
// once and the second's failures at each attempt, and names the services
// only as scheme#position: no URL, host or canary in the whole page, nor in
// the API's answers (the failed service named generic#2 in the delivery) or
// serve's log.
func TestNotifyServiceMetrics(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("metered")
	for _, v := range []string{"2.0.0", "2.1.0"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v})
	}
	name := unique("metered")
	bed.RunContainer(t, name, repo+":2.0.0", watched)

	var took, refused atomic.Int64
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/fail/") {
			refused.Add(1)
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		took.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(svc.Close)
	host := strings.TrimPrefix(svc.URL, "http://")
	const canary = "canary-metrics-9f3c"
	// The URLs in a file, as a secret is mounted: one a line, a comment.
	urls := filepath.Join(t.TempDir(), "urls")
	body := "# ops: the chat, then the pager\ngeneric+http://" + host + "/ok/" + canary + "\n\ngeneric+http://" + host + "/fail/" + canary + "\n"
	if err := os.WriteFile(urls, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startServe(t, envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_NOTIFY_OPS_URLS_FILE="+urls,
		"TIDEWATCH_TRIGGER_NOTIFY_OPS_INCLUDE="+name,
	))

	metrics := func() string {
		t.Helper()
		resp, err := http.Get(d.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %s %s", resp.Status, b)
		}
		return string(b)
	}
	count := func(page, service, result string) int {
		re := regexp.MustCompile(`(?m)^tidewatch_trigger_service_deliveries_total\{result="` + result + `",service="` + regexp.QuoteMeta(service) + `",trigger="notify\.ops"\} (\d+)$`)
		m := re.FindStringSubmatch(page)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	var page string
	waitUntil(t, 90*time.Second, "two failed attempts of generic#2 in /metrics", func() bool {
		page = metrics()
		return count(page, "generic#2", "failed") >= 2
	})
	if n := count(page, "generic#1", "delivered"); n != 1 || took.Load() != 1 {
		t.Errorf("generic#1: delivered %d in /metrics, the service took %d messages; want 1 and 1 (a retry goes to the failed service only)", n, took.Load())
	}
	if n := count(page, "generic#1", "failed") + count(page, "generic#2", "delivered"); n != 0 {
		t.Errorf("/metrics counts %d outcomes that did not happen:\n%s", n, grepLines(page, "service_deliveries"))
	}
	if got, want := int64(count(page, "generic#2", "failed")), refused.Load(); got > want {
		t.Errorf("generic#2: %d failures in /metrics, more than the %d requests the service refused", got, want)
	}
	for _, leak := range []string{canary, host, "generic+http", "/fail/"} {
		if strings.Contains(page, leak) {
			t.Errorf("/metrics holds %q:\n%s", leak, grepLines(page, leak))
		}
	}

	// Nor anywhere else the URLs could show: the API (the UI shows what it
	// answers), the delivery's error and detail, the history, serve's log.
	for _, path := range []string{"/api/triggers", "/api/deliveries", "/api/history?limit=1000", "/api/containers", "/api/updates"} {
		resp, err := http.Get(d.base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s %s", path, resp.Status, b)
		}
		if strings.Contains(string(b), canary) || strings.Contains(string(b), host) {
			t.Errorf("GET %s shows a URL of the notify trigger:\n%s", path, grepLines(string(b), canary))
		}
		if path == "/api/deliveries" && !strings.Contains(string(b), "generic#2") {
			t.Errorf("GET /api/deliveries does not name the failed service generic#2:\n%.2000s", b)
		}
	}
	d.stop(t)
	if log := d.log.String(); strings.Contains(log, canary) || strings.Contains(log, host) {
		t.Errorf("serve's log shows a URL of the notify trigger:\n%s", grepLines(log, canary))
	}
}

// grepLines returns the lines of s that hold sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
