package system

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
	"github.com/tidewatch/tidewatch/test/testbed"
)

const gitSourceSecret = "system-webhook-secret-93d1f0"

// gitSourceStatus is one source of GET /api/git.
type gitSourceStatus struct {
	Name         string           `json:"name"`
	Deployed     string           `json:"deployed"`
	Fetched      string           `json:"fetched"`
	InSync       bool             `json:"in_sync"`
	Failed       string           `json:"failed"`
	FailedReason string           `json:"failed_reason"`
	LastError    string           `json:"last_error"`
	Syncs        map[string]int64 `json:"syncs"`
}

func (d *daemon) gitSource(t *testing.T, name string) gitSourceStatus {
	t.Helper()
	var out struct {
		Sources []gitSourceStatus `json:"sources"`
	}
	d.getJSON(t, "/api/git", &out)
	for _, s := range out.Sources {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("GET /api/git has no source %s: %+v", name, out.Sources)
	return gitSourceStatus{}
}

// pushWebhook posts a GitHub push webhook for commit on main of url,
// signed with secret, and returns the status.
func (d *daemon) pushWebhook(t *testing.T, source, url, commit, secret string) int {
	t.Helper()
	body := fmt.Sprintf(`{"ref":"refs/heads/main","before":"%s","after":%q,"repository":{"full_name":"o/stack","clone_url":%q}}`,
		strings.Repeat("0", 40), commit, url)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, _ := http.NewRequest("POST", d.base+"/api/git/"+source+"/webhook", bytes.NewReader([]byte(body)))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestGitSourceDeploysRollsBackAndListensToWebhooks: a git source holds a
// compose file; tidewatch clones it at start and creates the service (first
// deploy); a commit that changes the tag, announced by a signed push
// webhook, is deployed at once; a commit to a version that fails its health
// check is rolled back (the previous version answers again, the clone's
// file is put back), marked failed, told to a webhook listening for
// update-rolled-back, and not tried again when announced again; a webhook
// with a bad signature does nothing.
func TestGitSourceDeploysRollsBackAndListensToWebhooks(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("gitsrc")
	bed.BuildImage(t, repo+":1.0.0", testbed.AppOptions{Version: "1.0.0", Healthcheck: true})
	bed.BuildImage(t, repo+":1.1.0", testbed.AppOptions{Version: "1.1.0", Healthcheck: true})
	bed.BuildImage(t, repo+":1.2.0", testbed.AppOptions{Version: "1.2.0", Healthcheck: true, Fail: testbed.FailUnhealthy})
	folder := strings.ReplaceAll(unique("gs"), "-", "") // the compose project's name
	port := freePort(t)
	compose := func(tag string) string {
		return fmt.Sprintf("# deployed from git\nservices:\n  web:\n    image: %s:%s\n    ports: [\"127.0.0.1:%d:8080\"]\n    labels: {tidewatch.test: \"1\"}\n", repo, tag, port)
	}
	file := folder + "/docker-compose.yml"
	srv := gittest.NewServer(t, "canary-git-source-token-77e2")
	url := srv.NewRepo(t, "stack", map[string]string{file: compose("1.0.0"), "README.md": "the stack\n"})
	first := gittest.Run(t, srv.Bare("stack"), "rev-parse", "main")

	storePath := t.TempDir()
	clone := filepath.Join(storePath, "git", "prod", filepath.FromSlash(file))
	t.Cleanup(func() { // after tidewatch stops (cleanups run last first)
		bed.Compose(t, filepath.Dir(clone), folder, []string{clone}, "down", "--timeout", "1")
	})
	rcv := newReceiver(t)
	d := startServe(t, envFor(t, bed.DockerHost,
		"TIDEWATCH_STORE_PATH="+storePath,
		"TIDEWATCH_TRIGGER_COMPOSE_GIT_DEADLINE=3m",
		"TIDEWATCH_TRIGGER_COMPOSE_GIT_HEALTH_TIMEOUT=30s",
		"TIDEWATCH_TRIGGER_COMPOSE_GIT_STABLE_FOR=1s",
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_URL="+rcv.srv.URL,
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_EVENTS=update-rolled-back",
		"TIDEWATCH_GIT_PROD_URL="+url,
		"TIDEWATCH_GIT_PROD_TOKEN="+srv.Token,
		"TIDEWATCH_GIT_PROD_INTERVAL=1h",
		"TIDEWATCH_GIT_PROD_WEBHOOK_SECRET="+gitSourceSecret,
	))
	appURL := fmt.Sprintf("http://127.0.0.1:%d/", port)

	// At start: cloned, and the service created.
	var st gitSourceStatus
	waitUntil(t, 3*time.Minute, "the first deploy", func() bool {
		st = d.gitSource(t, "prod")
		return st.Deployed == first || st.Failed != "" || st.LastError != ""
	})
	if st.Deployed != first || !st.InSync {
		t.Fatalf("after start: %+v, want %s deployed\ntidewatch log:\n%s", st, first, d.log.String())
	}
	if got := bed.WaitHTTP(t, appURL); !strings.Contains(got, "1.0.0") {
		t.Fatalf("the app answers %q, want 1.0.0", got)
	}

	// A tag change, announced by a webhook: deployed at once.
	second := srv.Push(t, url, "web 1.1.0", map[string]string{file: compose("1.1.0")})
	if code := d.pushWebhook(t, "prod", url, second, "not-the-secret-at-all"); code != http.StatusUnauthorized {
		t.Errorf("webhook with a bad signature = %d, want 401", code)
	}
	if st := d.gitSource(t, "prod"); st.Fetched != first {
		t.Fatalf("a webhook with a bad signature fetched: %+v", st)
	}
	if code := d.pushWebhook(t, "prod", url, second, gitSourceSecret); code != http.StatusAccepted {
		t.Fatalf("signed webhook = %d, want 202", code)
	}
	waitUntil(t, 3*time.Minute, "the deploy of 1.1.0", func() bool {
		st = d.gitSource(t, "prod")
		return st.Deployed == second || st.Failed != ""
	})
	if st.Deployed != second {
		t.Fatalf("after the webhook: %+v, want %s deployed\ntidewatch log:\n%s", st, second, d.log.String())
	}
	if got := bed.WaitHTTP(t, appURL); !strings.Contains(got, "1.1.0") {
		t.Fatalf("the app answers %q, want 1.1.0", got)
	}

	// A broken version: rolled back, marked failed, told, not retried.
	bad := srv.Push(t, url, "web 1.2.0", map[string]string{file: compose("1.2.0")})
	d.pushWebhook(t, "prod", url, bad, gitSourceSecret)
	waitUntil(t, 3*time.Minute, "the failed deploy of 1.2.0", func() bool {
		st = d.gitSource(t, "prod")
		return st.Failed == bad || st.Deployed == bad
	})
	if st.Failed != bad || st.Deployed != second || st.InSync || !strings.Contains(st.FailedReason, "health") {
		t.Fatalf("after the broken commit: %+v, want %s failed (health) and %s still deployed\ntidewatch log:\n%s", st, bad, second, d.log.String())
	}
	if got := bed.WaitHTTP(t, appURL); !strings.Contains(got, "1.1.0") {
		t.Errorf("the app answers %q after the rollback, want 1.1.0", got)
	}
	if b, _ := os.ReadFile(clone); string(b) != compose("1.1.0") {
		t.Errorf("the clone's compose file after the rollback:\n%s\nwant the deployed version back", b)
	}
	waitUntil(t, time.Minute, "the on-call webhook to hear of the rollback", func() bool { return len(rcv.got()) > 0 })
	if p := payloadFor(t, rcv.got()[0]); p.Event != "update-rolled-back" || !strings.Contains(p.Updates[0].Detail, "health") {
		t.Errorf("on-call payload = %+v, want update-rolled-back with the reason", p)
	}
	skipped := st.Syncs["skipped"]
	d.pushWebhook(t, "prod", url, bad, gitSourceSecret)
	waitUntil(t, time.Minute, "the failed commit skipped", func() bool { return d.gitSource(t, "prod").Syncs["skipped"] > skipped })
	if n := len(d.history(t, "update-rolled-back", folder+"/web")); n != 1 {
		t.Errorf("%d update-rolled-back events, want 1: the failed commit is not tried again", n)
	}
	synced := d.history(t, "synced", "prod")
	failed := d.history(t, "sync-failed", "prod")
	if len(synced) != 2 || len(failed) != 1 || failed[0].To != bad || synced[0].To != second {
		t.Errorf("history: synced %+v, sync-failed %+v; want 2 deploys and the failed commit", synced, failed)
	}
}
