package system

import (
	"context"
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

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// TestComposePrivateRegistry: a compose service whose image lives in
// Debian's docker-registry with htpasswd (basic) auth is rolled out with
// the credentials of tidewatch's registry config (USERNAME, PASSWORD_FILE):
// found and applied, in both compose modes. With a wrong password the
// rollout (asked through /api/deploy) fails at the pull, saying so, and the
// service keeps running the old version, its file untouched. Neither
// password appears in tidewatch's log, the API's answers (deploy, updates,
// deliveries, history) or the compose file.
func TestComposePrivateRegistry(t *testing.T) {
	bed := testbed.Require(t)
	cli := bed.ComposeCLI(t)
	const user, pass, wrong = "deployer", "canary-htpasswd-pass-7d3a", "canary-wrong-pass-41be"
	host := bed.StartAuthRegistry(t, user, pass)
	repo := host + "/private/" + unique("app")
	for _, v := range []string{"1.0.0", "1.1.0"} {
		ref, err := name.ParseReference(repo+":"+v, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img := bed.AppImage(t, testbed.AppOptions{Version: v, Healthcheck: true})
		if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
			t.Fatalf("pushing %s with the credentials: %v", ref, err)
		}
	}
	// Anonymous, the registry refuses the engine: what follows is pulled
	// with credentials or not at all.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if rc, err := bed.Docker().ImagePull(ctx, repo+":1.0.0", image.PullOptions{}); err == nil {
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err == nil {
			t.Fatal("the registry let the engine pull anonymously")
		}
	}
	enc, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: user, Password: pass, ServerAddress: host})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := bed.Docker().ImagePull(ctx, repo+":1.0.0", image.PullOptions{RegistryAuth: enc})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}

	for _, mode := range []string{"cli", "engine"} {
		t.Run(mode, func(t *testing.T) {
			project := strings.ReplaceAll(unique("priv"), "-", "")
			port := freePort(t)
			dir := t.TempDir()
			file := filepath.Join(dir, "docker-compose.yml")
			compose := fmt.Sprintf("services:\n  web:\n    image: %s:1.0.0\n    ports: [\"127.0.0.1:%d:8080\"]\n    labels: {tidewatch.test: \"1\", tidewatch.watch: \"true\"}\n", repo, port)
			if err := os.WriteFile(file, []byte(compose), 0o644); err != nil {
				t.Fatal(err)
			}
			bed.ComposeUp(t, dir, project)
			appURL := fmt.Sprintf("http://127.0.0.1:%d/", port)
			bed.WaitHTTP(t, appURL)
			cname := strings.TrimPrefix(bed.ComposeContainer(t, project, "web").Name, "/")

			secrets := t.TempDir()
			passFile := func(p string) string {
				f := filepath.Join(secrets, unique("pass"))
				if err := os.WriteFile(f, []byte(p+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return f
			}
			token := "canary-priv-token-c0de"
			sum := sha256.Sum256([]byte(token))
			env := func(password string, auto bool, extra ...string) []string {
				e := envFor(t, bed.DockerHost,
					"TIDEWATCH_SERVER_API_TOKENS=ci:"+hex.EncodeToString(sum[:]),
					"TIDEWATCH_REGISTRY_CUSTOM_PRIV_URL="+host,
					"TIDEWATCH_REGISTRY_CUSTOM_PRIV_INSECURE=true",
					"TIDEWATCH_REGISTRY_CUSTOM_PRIV_USERNAME="+user,
					"TIDEWATCH_REGISTRY_CUSTOM_PRIV_PASSWORD_FILE="+passFile(password),
					fmt.Sprintf("TIDEWATCH_TRIGGER_COMPOSE_PRIV_AUTO=%t", auto),
					"TIDEWATCH_TRIGGER_COMPOSE_PRIV_INCLUDE="+cname,
					"TIDEWATCH_TRIGGER_COMPOSE_PRIV_DOCKER_HOST="+bed.DockerHost,
					"TIDEWATCH_TRIGGER_COMPOSE_PRIV_RECREATE="+mode,
					"TIDEWATCH_TRIGGER_COMPOSE_PRIV_DEADLINE=3m",
					"TIDEWATCH_TRIGGER_COMPOSE_PRIV_HEALTH_TIMEOUT=30s",
					"TIDEWATCH_TRIGGER_COMPOSE_PRIV_STABLE_FOR=2s",
				)
				if mode == "cli" {
					e = append(e, "TIDEWATCH_TRIGGER_COMPOSE_PRIV_COMPOSE="+cli)
				}
				return append(e, extra...)
			}
			var seen strings.Builder // every answer of the API, and the logs
			get := func(d *daemon, path string) []byte {
				req, _ := http.NewRequest(http.MethodGet, d.base+path, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %s %s", path, resp.Status, body)
				}
				seen.Write(body)
				return body
			}

			// A wrong password: asked through /api/deploy, failed at the pull.
			d := startServe(t, env(wrong, false))
			body := fmt.Sprintf(`{"project":%q,"service":"web","tag":"1.1.0"}`, project)
			req, _ := http.NewRequest(http.MethodPost, d.base+"/api/deploy", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := (&http.Client{Timeout: 4 * time.Minute}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			seen.Write(out)
			var res struct {
				Result struct {
					Result string   `json:"result"`
					Detail string   `json:"detail"`
					Steps  []string `json:"steps"`
				} `json:"result"`
			}
			_ = json.Unmarshal(out, &res)
			r := res.Result
			if r.Result != "failed" || len(r.Steps) == 0 || !strings.HasPrefix(r.Steps[len(r.Steps)-1], "pull ") {
				t.Errorf("deploy with a wrong password: %s %s; want failed at the pull", resp.Status, out)
			} else if d := strings.ToLower(r.Detail); !strings.Contains(d, "nothing was changed") || !strings.Contains(d, "unauthorized") {
				t.Errorf("the failed pull says %q; want it to say the registry refused the credentials and nothing was changed", r.Detail)
			}
			get(d, "/api/deliveries?trigger=compose.priv")
			get(d, "/api/history?container="+cname)
			get(d, "/api/updates?status=pending,notified,applying,applied,failed,rolled-back,dismissed")
			d.stop(t)
			seen.WriteString(d.log.String())
			if data, _ := os.ReadFile(file); string(data) != compose {
				t.Errorf("the compose file after the failed pull:\n%s\nwant it untouched", data)
			}
			if got := bed.WaitHTTP(t, appURL); !strings.Contains(got, "1.0.0") {
				t.Errorf("the service answers %q after the failed pull, want 1.0.0", got)
			}

			// The right password: found by the watcher and applied.
			d = startServe(t, env(pass, true))
			var dl faultDelivery
			waitUntil(t, 3*time.Minute, "the rollout to end", func() bool {
				var body struct {
					Deliveries []faultDelivery `json:"deliveries"`
				}
				if json.Unmarshal(get(d, "/api/deliveries?trigger=compose.priv"), &body) != nil {
					return false
				}
				for _, x := range body.Deliveries {
					if x.Update != nil && x.Update.Container == cname && x.Rollout != nil && (x.Status == "delivered" || x.Status == "failed") {
						dl = x
						return true
					}
				}
				return false
			})
			if dl.Rollout.Outcome != "applied" {
				t.Errorf("the rollout with the right password ended %s at %s: %s %s", dl.Rollout.Outcome, dl.Rollout.FailedStep, dl.Rollout.Reason, dl.LastError)
			}
			get(d, "/api/deliveries?trigger=compose.priv")
			get(d, "/api/history?container="+cname)
			get(d, "/api/updates?status=pending,notified,applying,applied,failed,rolled-back,dismissed")
			get(d, "/api/containers")
			d.stop(t)
			seen.WriteString(d.log.String())
			if got := bed.WaitHTTP(t, appURL); !strings.Contains(got, "1.1.0") {
				t.Errorf("the service answers %q after the rollout, want 1.1.0", got)
			}
			data, _ := os.ReadFile(file)
			if want := strings.Replace(compose, ":1.0.0", ":1.1.0", 1); string(data) != want {
				t.Errorf("the compose file after the rollout:\n%s\nwant:\n%s", data, want)
			}
			seen.Write(data)
			for _, secret := range []string{pass, wrong} {
				if strings.Contains(seen.String(), secret) {
					t.Errorf("the password %q appears in tidewatch's log, an API answer or the compose file", secret)
				}
			}
		})
	}
}
