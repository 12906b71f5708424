package system

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// TestBrokenRolloutReachesAPerson: an automatic compose trigger rolls a
// service to a version that fails its healthcheck; tidewatch rolls back (the
// file byte for byte, the old version answering), the history says so, and a
// webhook listening for update-rolled-back is told, with the reason.
func TestBrokenRolloutReachesAPerson(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("broken")
	bed.BuildImage(t, repo+":7.0.0", testbed.AppOptions{Version: "7.0.0", Healthcheck: true})
	bed.BuildImage(t, repo+":7.1.0", testbed.AppOptions{Version: "7.1.0", Healthcheck: true, Fail: testbed.FailUnhealthy})
	project := strings.ReplaceAll(unique("rb"), "-", "")
	port := freePort(t)
	dir := t.TempDir()
	compose := fmt.Sprintf("services:\n  web:\n    image: %s:7.0.0 # pinned by hand\n    ports: [\"127.0.0.1:%d:8080\"]\n    labels: {tidewatch.test: \"1\", tidewatch.watch: \"true\"}\n", repo, port)
	file := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(file, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	bed.ComposeUp(t, dir, project)
	appURL := fmt.Sprintf("http://127.0.0.1:%d/", port)
	bed.WaitHTTP(t, appURL)
	container := bed.ComposeContainer(t, project, "web")
	name := strings.TrimPrefix(container.Name, "/")

	rcv := newReceiver(t)
	d := startServe(t, envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_COMPOSE_AUTO_INCLUDE="+name,
		"TIDEWATCH_TRIGGER_COMPOSE_AUTO_DEADLINE=3m",
		"TIDEWATCH_TRIGGER_COMPOSE_AUTO_HEALTH_TIMEOUT=30s",
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_URL="+rcv.srv.URL,
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_EVENTS=update-rolled-back",
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_INCLUDE="+name,
	))
	waitUntil(t, 3*time.Minute, "the on-call webhook to hear of the rollback", func() bool { return len(rcv.got()) > 0 })
	p := payloadFor(t, rcv.got()[0])
	if p.Event != "update-rolled-back" || p.Updates[0].Candidate != "7.1.0" || !strings.Contains(p.Updates[0].Detail, "health") {
		t.Errorf("webhook payload = %+v, want update-rolled-back of 7.1.0 with the health reason", p)
	}
	data, _ := os.ReadFile(file)
	if string(data) != compose {
		t.Errorf("compose file after the rollback:\n%s\nwant byte for byte:\n%s", data, compose)
	}
	if got := bed.WaitHTTP(t, appURL); !strings.Contains(got, "7.0.0") {
		t.Errorf("the app answers %q after the rollback, want 7.0.0", got)
	}
	var h struct {
		Events []struct {
			Kind   string `json:"kind"`
			Detail string `json:"detail"`
		} `json:"events"`
	}
	d.getJSON(t, "/api/history?kind=update-rolled-back&container="+name, &h)
	if len(h.Events) != 1 || !strings.Contains(h.Events[0].Detail, "health") || !strings.Contains(h.Events[0].Detail, "last log lines") {
		t.Errorf("history of the rollback = %+v, want one update-rolled-back event with the reason and the failed container's log lines", h.Events)
	}
}
