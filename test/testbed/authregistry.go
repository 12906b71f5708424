package testbed

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// StartAuthRegistry starts a docker-registry of the test's own (Debian's,
// as the bed's) on a free port of 127.0.0.1 that wants basic credentials,
// user and password, checked against an htpasswd file (bcrypt), and
// returns its host:port. It is stopped, its storage removed, when the test
// ends. The engine reaches it over plain HTTP (127.0.0.0/8 is an insecure
// registry to dockerd by default).
func (b *Bed) StartAuthRegistry(t testing.TB, user, password string) string {
	t.Helper()
	bin := b.Part(t, PartRegistry)
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "registry.log")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for attempt := 1; attempt <= 3; attempt++ { // the free port may be taken before the registry binds it
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		host := fmt.Sprintf("127.0.0.1:%d", port)
		cfg := registryConfig(filepath.Join(dir, "data"), host) + fmt.Sprintf(`auth:
  htpasswd:
    realm: tidewatch-test
    path: %s
`, htpasswd)
		cfgPath := filepath.Join(dir, "registry.yml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		p, exited, err := startProcess([]string{bin, "serve", cfgPath}, logPath)
		if err != nil {
			t.Fatal(err)
		}
		up := waitFor(ctx, registryStartTimeout, func() bool {
			select {
			case <-exited:
				return true
			default:
			}
			return pingAuthRegistry(ctx, host) == nil
		})
		select {
		case <-exited:
			up = false
		default:
		}
		if up {
			t.Cleanup(func() { _ = p.stop(context.Background(), registryStopGrace) })
			return host
		}
		_ = p.stop(context.WithoutCancel(ctx), registryStopGrace)
	}
	t.Fatalf("starting docker-registry with htpasswd auth: no answer; its log ends:\n%s", logTail(logPath, 2000))
	return ""
}

// pingAuthRegistry succeeds when host answers /v2/ asking for basic
// credentials.
func pingAuthRegistry(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(strings.ToLower(resp.Header.Get("WWW-Authenticate")), "basic") {
		return fmt.Errorf("pinging registry %s: status %d, %q", host, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	return nil
}
