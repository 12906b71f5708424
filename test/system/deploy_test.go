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

	// The audit trail has it.
	hreq, _ := http.NewRequest(http.MethodGet, d.base+"/api/history?kind=update-applied", nil)
	hreq.Header.Set("Authorization", "Bearer "+token)
	if hresp, err := http.DefaultClient.Do(hreq); err == nil {
		hb, _ := io.ReadAll(hresp.Body)
		hresp.Body.Close()
		if !strings.Contains(string(hb), "deploy requested through the API") || !strings.Contains(string(hb), `"to":"6.1.0"`) {
			t.Errorf("history after the deploy: %s, want the deploy to 6.1.0", hb)
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
