package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

func validRequest() SelfUpdateRequest {
	return SelfUpdateRequest{Key: "42:docker.self:1.1.0", Container: "abc", Image: "ghcr.io/tidewatch/tidewatch:1.1.0",
		Outcome: "/data/self-update/x.json", DockerHost: "unix:///var/run/docker.sock", HealthTimeout: "2m", StableFor: "10s", LogLines: 50}
}

// TestParseSelfUpdateRequest: the helper's request, read from its
// environment, is refused whole when a value is missing or hostile.
func TestParseSelfUpdateRequest(t *testing.T) {
	raw := func(change func(r map[string]any)) string {
		b, _ := json.Marshal(validRequest())
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if change != nil {
			change(m)
		}
		b, _ = json.Marshal(m)
		return string(b)
	}
	if got, err := ParseSelfUpdateRequest(raw(nil)); err != nil || got != validRequest() {
		t.Fatalf("a valid request: %+v, %v", got, err)
	}
	tests := []struct {
		name, raw, want string
	}{
		{"unset", "", "is not set"},
		{"not JSON", "{key:", "not a self-update request"},
		{"unknown field", raw(func(m map[string]any) { m["command"] = "rm -rf /" }), "unknown field"},
		{"no key", raw(func(m map[string]any) { m["key"] = "" }), "key and container are required"},
		{"bad image", raw(func(m map[string]any) { m["image"] = "UPPER/case:1" }), "image"},
		{"relative outcome", raw(func(m map[string]any) { m["outcome"] = "data/x.json" }), "outcome"},
		{"outcome escaping", raw(func(m map[string]any) { m["outcome"] = "/data/../etc/passwd.json" }), "outcome"},
		{"outcome not json", raw(func(m map[string]any) { m["outcome"] = "/etc/passwd" }), "outcome"},
		{"bad duration", raw(func(m map[string]any) { m["health_timeout"] = "-1s" }), "health_timeout"},
		{"log lines", raw(func(m map[string]any) { m["log_lines"] = 100000 }), "log_lines"},
		{"engine", raw(func(m map[string]any) { m["docker_host"] = "ssh://host" }), "docker_host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSelfUpdateRequest(tc.raw)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), EnvSelfUpdate) {
				t.Errorf("ParseSelfUpdateRequest = %v, want an error naming %s and saying %q", err, EnvSelfUpdate, tc.want)
			}
		})
	}
}

// TestStoreDir finds the store folder from the container's environment
// and requires it on a volume or bind mount.
func TestStoreDir(t *testing.T) {
	tests := []struct {
		name string
		s    docker.Settings
		want string // "" for an error
	}{
		{"image default", docker.Settings{Env: []string{"TIDEWATCH_STORE_PATH=/data"}, Mounts: []string{"/var/run/docker.sock", "/data"}}, "/data"},
		{"below a mount", docker.Settings{Env: []string{"TIDEWATCH_STORE_PATH=/srv/tw/db"}, Mounts: []string{"/srv/tw"}}, "/srv/tw/db"},
		{"relative, from the working dir", docker.Settings{WorkingDir: "/app", Mounts: []string{"/app/data"}}, "/app/data"},
		{"relative, no working dir", docker.Settings{Env: []string{"TIDEWATCH_STORE_PATH=state"}, Mounts: []string{"/state"}}, "/state"},
		{"the last setting wins", docker.Settings{Env: []string{"TIDEWATCH_STORE_PATH=/a", "TIDEWATCH_STORE_PATH=/b"}, Mounts: []string{"/b"}}, "/b"},
		{"not on a mount", docker.Settings{Env: []string{"TIDEWATCH_STORE_PATH=/data"}, Mounts: []string{"/datasets"}}, ""},
		{"escaping a mount", docker.Settings{Env: []string{"TIDEWATCH_STORE_PATH=/data/../etc"}, Mounts: []string{"/data"}}, ""},
	}
	for _, tc := range tests {
		got, err := StoreDir(tc.s)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "not on a volume") {
				t.Errorf("%s: StoreDir = %q, %v; want an error saying it is not on a volume", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: StoreDir = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// TestOutcomeFile writes an outcome as the helper does and reads it back
// for its key only; a file for another key, a broken one or one with an
// outcome a self-update cannot have is an error, none is not found.
func TestOutcomeFile(t *testing.T) {
	dir := t.TempDir()
	key := "7:docker.self:2.0.0"
	p := OutcomePath(dir, key)
	if _, found, err := ReadOutcome(p, key); found || err != nil {
		t.Fatalf("no file yet: found %v, %v", found, err)
	}
	o := SelfUpdateOutcome{Version: outcomeVersion, Key: key, At: time.Now().UTC().Round(0), Rollout: sdk.Rollout{
		Outcome: sdk.OutcomeApplied, Method: "docker self-update", Target: "tidewatch",
		Steps: []sdk.RolloutStep{{Name: StepHealth, At: time.Now().UTC().Round(0), Duration: 31 * time.Second, Note: "healthy"}},
	}}
	if err := writeOutcome(p, o); err != nil {
		t.Fatal(err)
	}
	got, found, err := ReadOutcome(p, key)
	if err != nil || !found {
		t.Fatalf("ReadOutcome = %v, %v", found, err)
	}
	if diff := cmp.Diff(o, got); diff != "" {
		t.Errorf("outcome read back (-want +got):\n%s", diff)
	}
	if _, _, err := ReadOutcome(p, "8:docker.self:2.0.0"); err == nil || !strings.Contains(err.Error(), "another delivery") {
		t.Errorf("another key: %v, want an error", err)
	}
	if err := os.WriteFile(p, []byte(`{"version":1,"key":"`+key+`","rollout":{"Outcome":"dry-run"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadOutcome(p, key); err == nil || !strings.Contains(err.Error(), "dry-run") {
		t.Errorf("outcome dry-run: %v, want an error", err)
	}
	if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadOutcome(p, key); err == nil {
		t.Errorf("a broken file: no error")
	}
	if filepath.Dir(p) != filepath.Join(dir, "self-update") || !strings.HasSuffix(p, KeyID(key)+".json") || strings.Contains(p, key) {
		t.Errorf("OutcomePath = %s, want self-update/<key id>.json, without the key itself", p)
	}
}

// TestRunSelfUpdateRefuses: the helper started without (or with a broken)
// request does nothing and says why.
func TestRunSelfUpdateRefuses(t *testing.T) {
	var stderr bytes.Buffer
	code := RunSelfUpdate(context.Background(), func(string) string { return `{"key":"x"}` }, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "refusing to start") {
		t.Errorf("RunSelfUpdate = %d, %q; want 1 and the reason", code, stderr.String())
	}
}
