package system

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// TestDeployFromCI: CI posts a service and a tag to /api/deploy with its
// bearer token; tidewatch rolls the compose service out through the compose
// trigger and answers with the result; the app then answers the new version.
func TestDeployFromCI(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("deployed")
	for _, v := range []string{"6.0.0", "6.1.0"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v, Healthcheck: true})
	}
	project := strings.ReplaceAll(unique("cd"), "-", "")
	port := freePort(t)
	dir := t.TempDir()
	compose := fmt.Sprintf(`# deployed by CI through tidewatch
services:
  web:
    image: %s:6.0.0
    ports:
      - "127.0.0.1:%d:8080"
    labels:
      tidewatch.test: "1"
      tidewatch.watch: "true"
`, repo, port)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	bed.ComposeUp(t, dir, project)
	appURL := fmt.Sprintf("http://127.0.0.1:%d/", port)
	bed.WaitHTTP(t, appURL)

	token := "canary-deploy-token-90e2"
	sum := sha256.Sum256([]byte(token))
	d := startServe(t, envFor(t, bed.DockerHost,
		"TIDEWATCH_SERVER_API_TOKENS=ci:"+hex.EncodeToString(sum[:]),
		"TIDEWATCH_TRIGGER_COMPOSE_CD_AUTO=false",
		"TIDEWATCH_TRIGGER_COMPOSE_CD_DEADLINE=3m",
		"TIDEWATCH_TRIGGER_COMPOSE_CD_HEALTH_TIMEOUT=60s",
		"TIDEWATCH_TRIGGER_COMPOSE_CD_STABLE_FOR=2s",
	))
	body := fmt.Sprintf(`{"project":%q,"service":"web","tag":"6.1.0"}`, project)
	req, _ := http.NewRequest(http.MethodPost, d.base+"/api/deploy", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{Timeout: 4 * time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var res struct {
		Result   string `json:"result"`
		From, To string
	}
	json.Unmarshal(out, &res)
	if resp.StatusCode != http.StatusOK || res.Result != "applied" {
		t.Fatalf("deploy: %s %s\ntidewatch log:\n%s", resp.Status, out, d.log.String())
	}
	if got := bed.WaitHTTP(t, appURL); !strings.Contains(got, "6.1.0") {
		t.Errorf("the app answers %q after the deploy, want 6.1.0", got)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if want := strings.Replace(compose, ":6.0.0", ":6.1.0", 1); string(data) != want {
		t.Errorf("compose file after the deploy:\n%s\nwant only the tag changed:\n%s", data, want)
	}

	// The audit trail has it: who asked, and what the rollout did.
	for _, kind := range []string{"requested", "update-applied"} {
		hreq, _ := http.NewRequest(http.MethodGet, d.base+"/api/history?kind="+kind, nil)
		hreq.Header.Set("Authorization", "Bearer "+token)
		hresp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		hb, _ := io.ReadAll(hresp.Body)
		hresp.Body.Close()
		if !strings.Contains(string(hb), `"principal":"token:ci"`) || !strings.Contains(string(hb), `"to":"6.1.0"`) {
			t.Errorf("%s history after the deploy: %s, want the deploy to 6.1.0 asked by token:ci", kind, hb)
		}
	}

	// Without the token: refused.
	req, _ = http.NewRequest(http.MethodPost, d.base+"/api/deploy", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("deploy without a token: %s, want 401", resp.Status)
		}
	}
}

// TestApplyAndDeployRefusedByPolicy: a service excluded from the compose
// trigger by its label cannot be rolled out by Apply nor by /api/deploy: both
// answer 403 naming the rule, the history records the refusal with who asked,
// and the service keeps running what it ran.
func TestApplyAndDeployRefusedByPolicy(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("refused")
	for _, v := range []string{"7.0.0", "7.1.0"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v})
	}
	project := strings.ReplaceAll(unique("pol"), "-", "")
	dir := t.TempDir()
	compose := fmt.Sprintf(`services:
  db:
    image: %s:7.0.0
    labels:
      tidewatch.test: "1"
      tidewatch.watch: "true"
      tidewatch.trigger.exclude: "compose"
`, repo)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	bed.ComposeUp(t, dir, project)
	token := "canary-policy-token-31c9"
	sum := sha256.Sum256([]byte(token))
	d := startServe(t, envFor(t, bed.DockerHost,
		"TIDEWATCH_SERVER_API_TOKENS=ci:"+hex.EncodeToString(sum[:]),
		"TIDEWATCH_TRIGGER_COMPOSE_PROD_AUTO=false",
	))
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, d.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const rule = "refused by label tidewatch.trigger.exclude=compose"

	code, body := do(http.MethodPost, "/api/deploy", fmt.Sprintf(`{"project":%q,"service":"db","tag":"7.1.0"}`, project))
	if code != http.StatusForbidden || !strings.Contains(body, rule) {
		t.Errorf("deploy of an excluded service = %d %s, want 403 naming the label", code, body)
	}
	var ups struct {
		Updates []struct {
			ID        int64  `json:"id"`
			Container string `json:"container"`
		} `json:"updates"`
	}
	waitUntil(t, time.Minute, "the db's update to be listed", func() bool {
		_, b := do(http.MethodGet, "/api/updates", "")
		json.Unmarshal([]byte(b), &ups)
		for _, u := range ups.Updates {
			if strings.HasPrefix(u.Container, project) {
				return true
			}
		}
		return false
	})
	var id int64
	for _, u := range ups.Updates {
		if strings.HasPrefix(u.Container, project) {
			id = u.ID
		}
	}
	code, body = do(http.MethodPost, fmt.Sprintf("/api/updates/%d/apply", id), `{"trigger":"compose.prod"}`)
	if code != http.StatusForbidden || !strings.Contains(body, rule) {
		t.Errorf("apply of an excluded service = %d %s, want 403 naming the label", code, body)
	}
	_, hist := do(http.MethodGet, "/api/history?kind=refused", "")
	if strings.Count(hist, rule) != 2 || !strings.Contains(hist, `"principal":"token:ci"`) || !strings.Contains(hist, `"trigger":"compose.prod"`) {
		t.Errorf("history of refusals = %s, want both, asked by token:ci, naming the rule", hist)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if string(data) != compose {
		t.Errorf("the compose file changed:\n%s", data)
	}
}
