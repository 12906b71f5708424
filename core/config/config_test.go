package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidewatch/tidewatch/core"
)

// leaves returns the messages of the errors joined in err, in order.
func leaves(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// writeFile writes content to a new file in a temporary folder and returns its path.
func writeFile(t *testing.T, name, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	return p
}

func localWatcher() Watcher {
	return Watcher{Name: "local", Socket: DefaultSocket, Cron: DefaultCron, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter}
}

func TestLoadDefaults(t *testing.T) {
	got, err := Load([]string{"PATH=/usr/bin", "HOME=/root", "DOCKER_HOST=tcp://x:1"})
	if err != nil {
		t.Fatalf("Load(no TIDEWATCH_ variables) error = %v, want nil", err)
	}
	want := Config{
		Watchers: []Watcher{localWatcher()},
		Store:    Store{Path: "./data"},
		Log:      Log{Level: slog.LevelInfo, Format: "text"},
		Server:   Server{Address: DefaultServerAddress, Port: DefaultServerPort},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(no TIDEWATCH_ variables) mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadGeneral(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		store Store
		log   Log
	}{
		{"store path", []string{"TIDEWATCH_STORE_PATH=/var/lib/tidewatch"}, Store{"/var/lib/tidewatch"}, Log{slog.LevelInfo, "text"}},
		{"log debug json", []string{"TIDEWATCH_LOG_LEVEL=debug", "TIDEWATCH_LOG_FORMAT=json"}, Store{"./data"}, Log{slog.LevelDebug, "json"}},
		{"log upper case", []string{"TIDEWATCH_LOG_LEVEL=WARN", "TIDEWATCH_LOG_FORMAT=TEXT"}, Store{"./data"}, Log{slog.LevelWarn, "text"}},
		{"log error", []string{"TIDEWATCH_LOG_LEVEL=error"}, Store{"./data"}, Log{slog.LevelError, "text"}},
		{"empty counts as unset", []string{"TIDEWATCH_STORE_PATH=", "TIDEWATCH_LOG_LEVEL="}, Store{"./data"}, Log{slog.LevelInfo, "text"}},
		{"lower-case names", []string{"tidewatch_store_path=/srv"}, Store{"/srv"}, Log{slog.LevelInfo, "text"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Load(tc.env)
			if err != nil {
				t.Fatalf("Load(%q) error = %v, want nil", tc.env, err)
			}
			if diff := cmp.Diff(tc.store, got.Store); diff != "" {
				t.Errorf("Load(%q).Store mismatch (-want +got):\n%s", tc.env, diff)
			}
			if diff := cmp.Diff(tc.log, got.Log); diff != "" {
				t.Errorf("Load(%q).Log mismatch (-want +got):\n%s", tc.env, diff)
			}
		})
	}
}

func TestLoadIgnoresLaterFeatures(t *testing.T) {
	env := []string{
		"TIDEWATCH_SERVER_PORT=8080",
		"TIDEWATCH_TEST_DOCKER=1",
		"TIDEWATCH_TESTING=yes",
	}
	got, err := Load(env)
	if err != nil {
		t.Fatalf("Load(%q) error = %v, want nil", env, err)
	}
	if diff := cmp.Diff([]Watcher{localWatcher()}, got.Watchers); diff != "" {
		t.Errorf("Load(%q).Watchers mismatch (-want +got):\n%s", env, diff)
	}
}

func TestLoadTriggers(t *testing.T) {
	dir := t.TempDir()
	sum := strings.Repeat("ab", 32)
	env := []string{
		"TIDEWATCH_TRIGGER_WEBHOOK_OPS_URL=https://example.com/hook",
		"TIDEWATCH_TRIGGER_WEBHOOK_OPS_SECRET_FILE=/run/secrets/hook",
		"TIDEWATCH_TRIGGER_WEBHOOK_OPS_THRESHOLD=Minor",
		"TIDEWATCH_TRIGGER_WEBHOOK_OPS_MODE=batch",
		"TIDEWATCH_TRIGGER_WEBHOOK_OPS_INCLUDE=web-*, db",
		"TIDEWATCH_TRIGGER_SMS_ONCALL_ACCOUNT_SID=AC123",
		"TIDEWATCH_TRIGGER_SMS_ONCALL_AUTO=false",
		"TIDEWATCH_TRIGGER_SMS_ONCALL_EVENTS=update-failed,update-rolled-back",
		"TIDEWATCH_TRIGGER_SMS_ONCALL_DEADLINE=5s",
		"TIDEWATCH_PLUGINS_DIR=" + dir,
		"TIDEWATCH_PLUGIN_NTFY_SHA256=" + strings.ToUpper(sum),
	}
	got, err := Load(env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(got.Triggers) != 2 {
		t.Fatalf("Load: %d triggers, want 2", len(got.Triggers))
	}
	sms, hook := got.Triggers[0], got.Triggers[1]
	wantHook := core.DefaultTriggerPolicy()
	wantHook.Threshold, wantHook.Mode, wantHook.Include = core.ThresholdMinor, core.ModeBatch, []string{"web-*", "db"}
	if diff := cmp.Diff(wantHook, hook.Policy); diff != "" || hook.ID() != "webhook.ops" ||
		hook.Options["URL"].Reveal() != "https://example.com/hook" || hook.Options["SECRET_FILE"].Reveal() != "/run/secrets/hook" {
		t.Errorf("webhook.ops = %+v; policy (-want +got):\n%s", hook, diff)
	}
	wantSMS := core.DefaultTriggerPolicy()
	wantSMS.Auto, wantSMS.Deadline, wantSMS.DeadlineSet = false, 5*time.Second, true
	wantSMS.Events = []core.Event{core.EventUpdateFailed, core.EventUpdateRolledBack}
	if diff := cmp.Diff(wantSMS, sms.Policy); diff != "" || sms.ID() != "sms.oncall" || sms.Options["ACCOUNT_SID"].Reveal() != "AC123" {
		t.Errorf("sms.oncall = %+v; policy (-want +got):\n%s", sms, diff)
	}
	if got.Plugins.Dir != dir || got.Plugins.Pins["ntfy"] != sum || got.Plugins.PinVars["ntfy"] != "TIDEWATCH_PLUGIN_NTFY_SHA256" {
		t.Errorf("Plugins = %+v", got.Plugins)
	}
	if s := fmt.Sprintf("%v %+v", got, got); strings.Contains(s, "example.com/hook") {
		t.Errorf("trigger option values are printed: %s", s)
	}
}

func TestLoadTriggerErrors(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"bad threshold", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS_THRESHOLD=huge"}, `TIDEWATCH_TRIGGER_WEBHOOK_OPS_THRESHOLD="huge": unknown threshold; expected one of all, major, minor, patch, digest, major-only, minor-only, patch-only`},
		{"bad mode", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS_MODE=daily"}, `TIDEWATCH_TRIGGER_WEBHOOK_OPS_MODE="daily": unknown mode`},
		{"unknown watcher", []string{"TIDEWATCH_TRIGGER_COMPOSE_PROD_WATCHER=prod"}, `TIDEWATCH_TRIGGER_COMPOSE_PROD_WATCHER="prod": no watcher "prod"; expected the names of configured watchers: local`},
		{"bad labels glob", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS_LABELS=com.example.[team"}, `TIDEWATCH_TRIGGER_WEBHOOK_OPS_LABELS="com.example.[team": bad pattern`},
		{"no event at all", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS_EVENTS= , "}, `TIDEWATCH_TRIGGER_WEBHOOK_OPS_EVENTS=" , ": no event`},
		{"bad auto", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS_AUTO=maybe"}, `TIDEWATCH_TRIGGER_WEBHOOK_OPS_AUTO="maybe": not a boolean`},
		{"bad event", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS_EVENTS=update-done"}, `unknown event "update-done"`},
		{"bad retries", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS_RETRIES=0"}, `TIDEWATCH_TRIGGER_WEBHOOK_OPS_RETRIES="0": not a number of attempts`},
		{"bad deadline", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS_DEADLINE=soon"}, `TIDEWATCH_TRIGGER_WEBHOOK_OPS_DEADLINE="soon": not a deadline`},
		{"bad glob", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS_INCLUDE=web-["}, `bad pattern "web-["`},
		{"no option", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS=1"}, `TIDEWATCH_TRIGGER_WEBHOOK_OPS: unknown variable; expected TIDEWATCH_TRIGGER_<type>_<name>_<option>`},
		{"bad plugins dir", []string{"TIDEWATCH_PLUGINS_DIR=/nonexistent/plugins"}, `TIDEWATCH_PLUGINS_DIR="/nonexistent/plugins": cannot read folder`},
		{"bad pin", []string{"TIDEWATCH_PLUGIN_NTFY_SHA256=abc"}, `TIDEWATCH_PLUGIN_NTFY_SHA256="abc": not a SHA-256 checksum`},
		{"pin without type", []string{"TIDEWATCH_PLUGIN_SHA256=abc"}, `TIDEWATCH_PLUGIN_SHA256: unknown variable`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load(%q) = %v, want an error containing %q", tc.env, err, tc.want)
			}
		})
	}
}

func TestResolveOptions(t *testing.T) {
	secret := writeFile(t, "secret", "s3cret-canary\n", 0o600)
	cfg, err := Load([]string{
		"TIDEWATCH_TRIGGER_WEBHOOK_OPS_URL=https://example.com",
		"TIDEWATCH_TRIGGER_WEBHOOK_OPS_SECRET_FILE=" + secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{"URL": false, "SECRET": true}
	got, err := ResolveOptions(cfg.Triggers[0], declared)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"URL": "https://example.com", "SECRET": "s3cret-canary"}, got); diff != "" {
		t.Errorf("ResolveOptions (-want +got):\n%s", diff)
	}

	cfg, err = Load([]string{
		"TIDEWATCH_TRIGGER_WEBHOOK_OPS_URLL=https://example.com",
		"TIDEWATCH_TRIGGER_WEBHOOK_OPS_SECRET=a",
		"TIDEWATCH_TRIGGER_WEBHOOK_OPS_SECRET_FILE=" + secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ResolveOptions(cfg.Triggers[0], declared)
	for _, want := range []string{
		"TIDEWATCH_TRIGGER_WEBHOOK_OPS_URLL: unknown option of trigger type webhook",
		"TIDEWATCH_TRIGGER_WEBHOOK_OPS_SECRET_FILE: set together with TIDEWATCH_TRIGGER_WEBHOOK_OPS_SECRET",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ResolveOptions = %v, want an error containing %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "s3cret-canary") {
		t.Errorf("a secret leaked into an error: %v", err)
	}
}

func TestLoadWatchers(t *testing.T) {
	ca := writeFile(t, "ca.pem", "CA", 0o600)
	cert := writeFile(t, "cert.pem", "CERT", 0o600)
	key := writeFile(t, "key.pem", "KEY", 0o600)
	tests := []struct {
		name string
		env  []string
		want []Watcher
	}{
		{
			name: "socket",
			env:  []string{"TIDEWATCH_WATCHER_LOCAL_SOCKET=/run/docker.sock"},
			want: []Watcher{{Name: "local", Socket: "/run/docker.sock", Cron: DefaultCron, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter}},
		},
		{
			name: "remote host with default port",
			env:  []string{"TIDEWATCH_WATCHER_REMOTE_HOST=docker.example.com"},
			want: []Watcher{{Name: "remote", Host: "docker.example.com", Port: 2375, Cron: DefaultCron, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter}},
		},
		{
			name: "remote host with port",
			env:  []string{"TIDEWATCH_WATCHER_REMOTE_HOST=10.0.0.5", "TIDEWATCH_WATCHER_REMOTE_PORT=12375"},
			want: []Watcher{{Name: "remote", Host: "10.0.0.5", Port: 12375, Cron: DefaultCron, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter}},
		},
		{
			name: "ipv6 host in brackets",
			env:  []string{"TIDEWATCH_WATCHER_V6_HOST=[fd00::1]"},
			want: []Watcher{{Name: "v6", Host: "fd00::1", Port: 2375, Cron: DefaultCron, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter}},
		},
		{
			name: "tls defaults port 2376",
			env: []string{"TIDEWATCH_WATCHER_SECURE_HOST=docker.example.com", "TIDEWATCH_WATCHER_SECURE_CAFILE=" + ca,
				"TIDEWATCH_WATCHER_SECURE_CERTFILE=" + cert, "TIDEWATCH_WATCHER_SECURE_KEYFILE=" + key},
			want: []Watcher{{Name: "secure", Host: "docker.example.com", Port: 2376, CAFile: ca, CertFile: cert, KeyFile: key, Cron: DefaultCron, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter}},
		},
		{
			name: "ca file alone",
			env:  []string{"TIDEWATCH_WATCHER_SECURE_HOST=h", "TIDEWATCH_WATCHER_SECURE_CAFILE=" + ca},
			want: []Watcher{{Name: "secure", Host: "h", Port: 2376, CAFile: ca, Cron: DefaultCron, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter}},
		},
		{
			name: "cron expression",
			env:  []string{"TIDEWATCH_WATCHER_LOCAL_CRON=*/15 * * * *"},
			want: []Watcher{{Name: "local", Socket: DefaultSocket, Cron: "*/15 * * * *", WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter}},
		},
		{
			name: "cron descriptor",
			env:  []string{"TIDEWATCH_WATCHER_LOCAL_CRON=@every 30m"},
			want: []Watcher{{Name: "local", Socket: DefaultSocket, Cron: "@every 30m", WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter}},
		},
		{
			name: "cron with time zone",
			env:  []string{"TIDEWATCH_WATCHER_LOCAL_CRON=CRON_TZ=UTC 0 6 * * *"},
			want: []Watcher{{Name: "local", Socket: DefaultSocket, Cron: "CRON_TZ=UTC 0 6 * * *", WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter}},
		},
		{
			name: "booleans",
			env:  []string{"TIDEWATCH_WATCHER_LOCAL_WATCHBYDEFAULT=no", "TIDEWATCH_WATCHER_LOCAL_WATCHALL=YES"},
			want: []Watcher{{Name: "local", Socket: DefaultSocket, Cron: DefaultCron, WatchByDefault: false, WatchAll: true, WatchEvents: true, Jitter: DefaultJitter}},
		},
		{
			name: "swarm services off",
			env:  []string{"TIDEWATCH_WATCHER_LOCAL_SWARM=false"},
			want: []Watcher{{Name: "local", Socket: DefaultSocket, Cron: DefaultCron, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter, NoServices: true}},
		},
		{
			name: "booleans as digits",
			env:  []string{"TIDEWATCH_WATCHER_LOCAL_WATCHBYDEFAULT=0", "TIDEWATCH_WATCHER_LOCAL_WATCHALL=1"},
			want: []Watcher{{Name: "local", Socket: DefaultSocket, Cron: DefaultCron, WatchByDefault: false, WatchAll: true, WatchEvents: true, Jitter: DefaultJitter}},
		},
		{
			name: "name with underscores and option words",
			env:  []string{"TIDEWATCH_WATCHER_MY_HOST_SOCKET=/s.sock", "TIDEWATCH_WATCHER_PORT_HOST_PORT=2000", "TIDEWATCH_WATCHER_PORT_HOST_HOST=h"},
			want: []Watcher{
				{Name: "my_host", Socket: "/s.sock", Cron: DefaultCron, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter},
				{Name: "port_host", Host: "h", Port: 2000, Cron: DefaultCron, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter},
			},
		},
		{
			name: "several sorted by name, case-insensitive",
			env:  []string{"TIDEWATCH_WATCHER_Zeta_HOST=z", "TIDEWATCH_WATCHER_alpha_SOCKET=/a.sock"},
			want: []Watcher{
				{Name: "alpha", Socket: "/a.sock", Cron: DefaultCron, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter},
				{Name: "zeta", Host: "z", Port: 2375, Cron: DefaultCron, WatchByDefault: true, WatchEvents: true, Jitter: DefaultJitter},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Load(tc.env)
			if err != nil {
				t.Fatalf("Load(%q) error = %v, want nil", tc.env, err)
			}
			if diff := cmp.Diff(tc.want, got.Watchers); diff != "" {
				t.Errorf("Load(%q).Watchers mismatch (-want +got):\n%s", tc.env, diff)
			}
		})
	}
}

func TestWatcherDockerHost(t *testing.T) {
	tests := []struct {
		w       Watcher
		want    string
		wantTLS bool
	}{
		{Watcher{Socket: "/var/run/docker.sock"}, "unix:///var/run/docker.sock", false},
		{Watcher{Host: "docker.example.com", Port: 2375}, "tcp://docker.example.com:2375", false},
		{Watcher{Host: "fd00::1", Port: 2376, CAFile: "/ca.pem"}, "tcp://[fd00::1]:2376", true},
	}
	for _, tc := range tests {
		if got := tc.w.DockerHost(); got != tc.want {
			t.Errorf("%+v.DockerHost() = %q, want %q", tc.w, got, tc.want)
		}
		if got := tc.w.TLS(); got != tc.wantTLS {
			t.Errorf("%+v.TLS() = %v, want %v", tc.w, got, tc.wantTLS)
		}
	}
}

func TestLoadRegistries(t *testing.T) {
	pw := writeFile(t, "pw", "s3cret\n", 0o600)
	tok := writeFile(t, "tok", "tok-from-file\r\n", 0o600)
	tests := []struct {
		name string
		env  []string
		want []Registry
	}{
		{
			name: "hub defaults",
			env:  []string{"TIDEWATCH_REGISTRY_HUB_PRIVATE_USERNAME=me", "TIDEWATCH_REGISTRY_HUB_PRIVATE_PASSWORD=pw"},
			want: []Registry{{Type: "hub", Name: "private", URL: "index.docker.io", Username: "me", Password: "pw"}},
		},
		{
			name: "login alias",
			env:  []string{"TIDEWATCH_REGISTRY_QUAY_ROBOT_LOGIN=org+bot", "TIDEWATCH_REGISTRY_QUAY_ROBOT_TOKEN=t"},
			want: []Registry{{Type: "quay", Name: "robot", URL: "quay.io", Username: "org+bot", Token: "t"}},
		},
		{
			name: "password and token files",
			env: []string{"TIDEWATCH_REGISTRY_GHCR_ME_USERNAME=me", "TIDEWATCH_REGISTRY_GHCR_ME_PASSWORD_FILE=" + pw,
				"TIDEWATCH_REGISTRY_GHCR_ME_TOKEN_FILE=" + tok},
			want: []Registry{{Type: "ghcr", Name: "me", URL: "ghcr.io", Username: "me", Password: "s3cret", Token: "tok-from-file"}},
		},
		{
			name: "token alone",
			env:  []string{"TIDEWATCH_REGISTRY_GITLAB_CI_TOKEN=glpat"},
			want: []Registry{{Type: "gitlab", Name: "ci", URL: "registry.gitlab.com", Token: "glpat"}},
		},
		{
			name: "url forms",
			env: []string{
				"TIDEWATCH_REGISTRY_CUSTOM_A_URL=https://Registry.Example.com/",
				"TIDEWATCH_REGISTRY_CUSTOM_B_URL=registry.example.com:5000",
				"TIDEWATCH_REGISTRY_CUSTOM_C_URL=127.0.0.1:5000",
				"TIDEWATCH_REGISTRY_CUSTOM_D_URL=https://harbor.local:8443",
			},
			want: []Registry{
				{Type: "custom", Name: "a", URL: "registry.example.com"},
				{Type: "custom", Name: "b", URL: "registry.example.com:5000"},
				{Type: "custom", Name: "c", URL: "127.0.0.1:5000"},
				{Type: "custom", Name: "d", URL: "harbor.local:8443"},
			},
		},
		{
			name: "cloud registries",
			env: []string{
				"TIDEWATCH_REGISTRY_ECR_PROD_URL=123456789012.dkr.ecr.eu-west-1.amazonaws.com",
				"TIDEWATCH_REGISTRY_ECR_PROD_USERNAME=AWS",
				"TIDEWATCH_REGISTRY_ECR_PROD_PASSWORD=x",
				"TIDEWATCH_REGISTRY_GCR_KEY_USERNAME=_json_key",
				"TIDEWATCH_REGISTRY_GCR_KEY_PASSWORD_FILE=" + pw,
				"TIDEWATCH_REGISTRY_ACR_SP_URL=myreg.azurecr.io",
			},
			want: []Registry{
				{Type: "acr", Name: "sp", URL: "myreg.azurecr.io"},
				{Type: "ecr", Name: "prod", URL: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", Username: "AWS", Password: "x"},
				{Type: "gcr", Name: "key", URL: "gcr.io", Username: "_json_key", Password: "s3cret"},
			},
		},
		{
			name: "name ending in an option word",
			env:  []string{"TIDEWATCH_REGISTRY_HUB_MY_TOKEN_TOKEN_FILE=" + tok},
			want: []Registry{{Type: "hub", Name: "my_token", URL: "index.docker.io", Token: "tok-from-file"}},
		},
		{
			name: "concurrency pinned",
			env: []string{"TIDEWATCH_REGISTRY_HUB_SLOW_CONCURRENCY=2", "TIDEWATCH_REGISTRY_CUSTOM_LAB_URL=lab.example:5000",
				"TIDEWATCH_REGISTRY_CUSTOM_LAB_CONCURRENCY= 256 "},
			want: []Registry{
				{Type: "custom", Name: "lab", URL: "lab.example:5000", Concurrency: 256},
				{Type: "hub", Name: "slow", URL: "index.docker.io", Concurrency: 2},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Load(tc.env)
			if err != nil {
				t.Fatalf("Load(%q) error = %v, want nil", tc.env, err)
			}
			// Secrets compare by value here: cmp does not call String.
			if diff := cmp.Diff(tc.want, got.Registries); diff != "" {
				t.Errorf("Load(%q).Registries mismatch (-want +got):\n%s", tc.env, diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	cert := writeFile(t, "cert.pem", "CERT", 0o600)
	empty := writeFile(t, "empty", "\n", 0o600)
	big := writeFile(t, "big", strings.Repeat("x", maxSecretFile+1), 0o600)
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"port not a number", []string{"TIDEWATCH_WATCHER_LOCAL_HOST=h", "TIDEWATCH_WATCHER_LOCAL_PORT=abc"},
			[]string{`TIDEWATCH_WATCHER_LOCAL_PORT="abc": not a port number; expected an integer from 1 to 65535`}},
		{"port out of range", []string{"TIDEWATCH_WATCHER_LOCAL_HOST=h", "TIDEWATCH_WATCHER_LOCAL_PORT=70000"},
			[]string{`TIDEWATCH_WATCHER_LOCAL_PORT="70000": not a port number; expected an integer from 1 to 65535`}},
		{"port without host", []string{"TIDEWATCH_WATCHER_LOCAL_PORT=2375"},
			[]string{`TIDEWATCH_WATCHER_LOCAL_PORT="2375": set without TIDEWATCH_WATCHER_LOCAL_HOST; expected a HOST for the remote engine too`}},
		{"bad cron", []string{"TIDEWATCH_WATCHER_REMOTE_CRON=every hour"},
			[]string{`TIDEWATCH_WATCHER_REMOTE_CRON="every hour": not a cron expression (expected exactly 5 fields, found 2: [every hour]); expected 5 fields like "0 * * * *" or a descriptor like "@hourly"`}},
		{"cron with seconds", []string{"TIDEWATCH_WATCHER_REMOTE_CRON=0 * * * * *"},
			[]string{`TIDEWATCH_WATCHER_REMOTE_CRON="0 * * * * *": not a cron expression (expected exactly 5 fields, found 6: [0 * * * * *]); expected 5 fields like "0 * * * *" or a descriptor like "@hourly"`}},
		{"cron zone without schedule does not panic", []string{"TIDEWATCH_WATCHER_REMOTE_CRON=TZ=UTC"},
			[]string{`TIDEWATCH_WATCHER_REMOTE_CRON="TZ=UTC": not a cron expression (malformed expression); expected 5 fields like "0 * * * *" or a descriptor like "@hourly"`}},
		{"bad boolean", []string{"TIDEWATCH_WATCHER_LOCAL_WATCHALL=maybe"},
			[]string{`TIDEWATCH_WATCHER_LOCAL_WATCHALL="maybe": not a boolean; expected true or false`}},
		{"bad swarm boolean", []string{"TIDEWATCH_WATCHER_LOCAL_SWARM=manager;rm -rf /"},
			[]string{`TIDEWATCH_WATCHER_LOCAL_SWARM="manager;rm -rf /": not a boolean; expected true or false`}},
		{"socket and host", []string{"TIDEWATCH_WATCHER_X_SOCKET=/s", "TIDEWATCH_WATCHER_X_HOST=h"},
			[]string{`TIDEWATCH_WATCHER_X_SOCKET="/s": set together with TIDEWATCH_WATCHER_X_HOST; expected only one of them: SOCKET for a local engine, HOST for a remote one`}},
		{"relative socket", []string{"TIDEWATCH_WATCHER_X_SOCKET=docker.sock"},
			[]string{`TIDEWATCH_WATCHER_X_SOCKET="docker.sock": not an absolute path; expected a unix socket path like /var/run/docker.sock`}},
		{"host with scheme", []string{"TIDEWATCH_WATCHER_X_HOST=tcp://h:2375"},
			[]string{`TIDEWATCH_WATCHER_X_HOST="tcp://h:2375": not a hostname or IP address; expected a bare host like docker.example.com or 10.0.0.5, without scheme or port (set the port with TIDEWATCH_WATCHER_X_PORT)`}},
		{"missing tls file", []string{"TIDEWATCH_WATCHER_X_HOST=h", "TIDEWATCH_WATCHER_X_CAFILE=" + missing},
			[]string{`TIDEWATCH_WATCHER_X_CAFILE="` + missing + `": cannot read file (no such file or directory); expected a readable PEM file`}},
		{"tls file is a folder", []string{"TIDEWATCH_WATCHER_X_HOST=h", "TIDEWATCH_WATCHER_X_CAFILE=" + dir},
			[]string{`TIDEWATCH_WATCHER_X_CAFILE="` + dir + `": not a regular file; expected a readable PEM file`}},
		{"cert without key", []string{"TIDEWATCH_WATCHER_X_HOST=h", "TIDEWATCH_WATCHER_X_CERTFILE=" + cert},
			[]string{`TIDEWATCH_WATCHER_X_CERTFILE="` + cert + `": set without TIDEWATCH_WATCHER_X_KEYFILE; expected CERTFILE and KEYFILE together`}},
		{"key without cert", []string{"TIDEWATCH_WATCHER_X_HOST=h", "TIDEWATCH_WATCHER_X_KEYFILE=" + cert},
			[]string{`TIDEWATCH_WATCHER_X_KEYFILE="` + cert + `": set without TIDEWATCH_WATCHER_X_CERTFILE; expected CERTFILE and KEYFILE together`}},
		{"tls without host", []string{"TIDEWATCH_WATCHER_X_CAFILE=" + cert},
			[]string{`TIDEWATCH_WATCHER_X_CAFILE="` + cert + `": set without TIDEWATCH_WATCHER_X_HOST; expected TLS files only with a remote HOST`}},
		{"watcher option typo", []string{"TIDEWATCH_WATCHER_LOCAL_SOCKT=/s"},
			[]string{`TIDEWATCH_WATCHER_LOCAL_SOCKT: unknown variable; expected TIDEWATCH_WATCHER_<name>_<option> with <option> one of SOCKET, HOST, PORT, CAFILE, CERTFILE, KEYFILE, CRON, JITTER, WATCHBYDEFAULT, WATCHALL, WATCHEVENTS, SWARM; did you mean TIDEWATCH_WATCHER_LOCAL_SOCKET?`}},
		{"watcher without name", []string{"TIDEWATCH_WATCHER_SOCKET=/s"},
			[]string{`TIDEWATCH_WATCHER_SOCKET: unknown variable; expected TIDEWATCH_WATCHER_<name>_<option> with <option> one of SOCKET, HOST, PORT, CAFILE, CERTFILE, KEYFILE, CRON, JITTER, WATCHBYDEFAULT, WATCHALL, WATCHEVENTS, SWARM`}},
		{"watcher bad name", []string{"TIDEWATCH_WATCHER_MY-HOST_SOCKET=/s"},
			[]string{`TIDEWATCH_WATCHER_MY-HOST_SOCKET: invalid watcher name "my-host"; expected letters and digits, in parts joined by single underscores`}},
		{"store typo", []string{"TIDEWATCH_STOR_PATH=/x"},
			[]string{`TIDEWATCH_STOR_PATH: unknown variable; expected one of TIDEWATCH_STORE_PATH, TIDEWATCH_LOG_LEVEL, TIDEWATCH_LOG_FORMAT, TIDEWATCH_WATCHER_<name>_<option>, TIDEWATCH_REGISTRY_<type>_<name>_<option>, TIDEWATCH_TRIGGER_<type>_<name>_<option>, TIDEWATCH_PLUGINS_DIR, TIDEWATCH_PLUGIN_<type>_SHA256; did you mean TIDEWATCH_STORE_PATH?`}},
		{"store option typo", []string{"TIDEWATCH_STORE_DIR=/x"},
			[]string{`TIDEWATCH_STORE_DIR: unknown variable; expected one of TIDEWATCH_STORE_PATH`}},
		{"log option typo", []string{"TIDEWATCH_LOG_LEVL=debug"},
			[]string{`TIDEWATCH_LOG_LEVL: unknown variable; expected one of TIDEWATCH_LOG_LEVEL, TIDEWATCH_LOG_FORMAT`}},
		{"unknown family", []string{"TIDEWATCH_FOO=1"},
			[]string{`TIDEWATCH_FOO: unknown variable; expected one of TIDEWATCH_STORE_PATH, TIDEWATCH_LOG_LEVEL, TIDEWATCH_LOG_FORMAT, TIDEWATCH_WATCHER_<name>_<option>, TIDEWATCH_REGISTRY_<type>_<name>_<option>, TIDEWATCH_TRIGGER_<type>_<name>_<option>, TIDEWATCH_PLUGINS_DIR, TIDEWATCH_PLUGIN_<type>_SHA256`}},
		{"family typo", []string{"TIDEWATCH_WATCHERS_LOCAL_HOST=h"},
			[]string{`TIDEWATCH_WATCHERS_LOCAL_HOST: unknown variable; expected one of TIDEWATCH_STORE_PATH, TIDEWATCH_LOG_LEVEL, TIDEWATCH_LOG_FORMAT, TIDEWATCH_WATCHER_<name>_<option>, TIDEWATCH_REGISTRY_<type>_<name>_<option>, TIDEWATCH_TRIGGER_<type>_<name>_<option>, TIDEWATCH_PLUGINS_DIR, TIDEWATCH_PLUGIN_<type>_SHA256; did you mean TIDEWATCH_WATCHER_LOCAL_HOST?`}},
		{"bad log level", []string{"TIDEWATCH_LOG_LEVEL=trace"},
			[]string{`TIDEWATCH_LOG_LEVEL="trace": unknown log level; expected debug, info, warn or error`}},
		{"bad log format", []string{"TIDEWATCH_LOG_FORMAT=logfmt"},
			[]string{`TIDEWATCH_LOG_FORMAT="logfmt": unknown log format; expected text or json`}},
		{"same variable in two cases", []string{"TIDEWATCH_LOG_LEVEL=debug", "tidewatch_log_level=info"},
			[]string{`tidewatch_log_level: set together with TIDEWATCH_LOG_LEVEL; expected only one of them`}},
		{"unknown registry type", []string{"TIDEWATCH_REGISTRY_DOCKERHUB_X_USERNAME=u"},
			[]string{`TIDEWATCH_REGISTRY_DOCKERHUB_X_USERNAME: unknown registry type "dockerhub"; expected TIDEWATCH_REGISTRY_<type>_<name>_<option> with <type> one of hub, ghcr, quay, gitlab, ecr, gcr, acr, custom`}},
		{"registry option typo", []string{"TIDEWATCH_REGISTRY_HUB_X_PASSWROD=hunter2"},
			[]string{`TIDEWATCH_REGISTRY_HUB_X_PASSWROD: unknown variable; expected TIDEWATCH_REGISTRY_HUB_<name>_<option> with <option> one of URL, USERNAME, LOGIN, PASSWORD, PASSWORD_FILE, TOKEN, TOKEN_FILE, INSECURE, CONCURRENCY; did you mean TIDEWATCH_REGISTRY_HUB_X_PASSWORD?`}},
		{"registry without name", []string{"TIDEWATCH_REGISTRY_HUB_TOKEN=t"},
			[]string{`TIDEWATCH_REGISTRY_HUB_TOKEN: unknown variable; expected TIDEWATCH_REGISTRY_HUB_<name>_<option> with <option> one of URL, USERNAME, LOGIN, PASSWORD, PASSWORD_FILE, TOKEN, TOKEN_FILE, INSECURE, CONCURRENCY`}},
		{"url required", []string{"TIDEWATCH_REGISTRY_ECR_PROD_USERNAME=AWS", "TIDEWATCH_REGISTRY_ECR_PROD_PASSWORD=p"},
			[]string{`TIDEWATCH_REGISTRY_ECR_PROD_URL: not set; expected the registry host for type ecr, like 123456789012.dkr.ecr.eu-west-1.amazonaws.com`}},
		{"url with path", []string{"TIDEWATCH_REGISTRY_CUSTOM_X_URL=https://r.example.com/v2/"},
			[]string{`TIDEWATCH_REGISTRY_CUSTOM_X_URL="https://r.example.com/v2/": not a registry host; expected a registry host like "ghcr.io", "host:port" or "https://host"`}},
		{"url with other scheme", []string{"TIDEWATCH_REGISTRY_CUSTOM_X_URL=ftp://r.example.com"},
			[]string{`TIDEWATCH_REGISTRY_CUSTOM_X_URL="ftp://r.example.com": scheme "ftp" is not supported; expected a registry host like "ghcr.io", "host:port" or "https://host"`}},
		{"url bad port", []string{"TIDEWATCH_REGISTRY_CUSTOM_X_URL=r.example.com:0"},
			[]string{`TIDEWATCH_REGISTRY_CUSTOM_X_URL="r.example.com:0": port "0" is not a port number; expected a registry host like "ghcr.io", "host:port" or "https://host"`}},
		{"concurrency 0", []string{"TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY=0"},
			[]string{`TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY="0": not a concurrency; expected an integer from 1 to 256: requests in flight at once`}},
		{"concurrency -3", []string{"TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY=-3"},
			[]string{`TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY="-3": not a concurrency; expected an integer from 1 to 256: requests in flight at once`}},
		{"concurrency eight", []string{"TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY=eight"},
			[]string{`TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY="eight": not a concurrency; expected an integer from 1 to 256: requests in flight at once`}},
		{"concurrency 1e2", []string{"TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY=1e2"},
			[]string{`TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY="1e2": not a concurrency; expected an integer from 1 to 256: requests in flight at once`}},
		{"concurrency 257", []string{"TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY=257"},
			[]string{`TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY="257": not a concurrency; expected an integer from 1 to 256: requests in flight at once`}},
		{"concurrency 99999999999999999999", []string{"TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY=99999999999999999999"},
			[]string{`TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY="99999999999999999999": not a concurrency; expected an integer from 1 to 256: requests in flight at once`}},
		{"concurrency 8;w=60", []string{"TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY=8;w=60"},
			[]string{`TIDEWATCH_REGISTRY_HUB_X_CONCURRENCY="8;w=60": not a concurrency; expected an integer from 1 to 256: requests in flight at once`}},
		{"password without username", []string{"TIDEWATCH_REGISTRY_HUB_X_PASSWORD=p"},
			[]string{`TIDEWATCH_REGISTRY_HUB_X_USERNAME: not set, but a password is; expected the user name that goes with TIDEWATCH_REGISTRY_HUB_X_PASSWORD`}},
		{"username without secret", []string{"TIDEWATCH_REGISTRY_HUB_X_USERNAME=me"},
			[]string{`TIDEWATCH_REGISTRY_HUB_X_USERNAME="me": set without a password or token; expected TIDEWATCH_REGISTRY_HUB_X_PASSWORD or TIDEWATCH_REGISTRY_HUB_X_TOKEN (or their _FILE variants) too`}},
		{"username and login", []string{"TIDEWATCH_REGISTRY_HUB_X_USERNAME=a", "TIDEWATCH_REGISTRY_HUB_X_LOGIN=b", "TIDEWATCH_REGISTRY_HUB_X_TOKEN=t"},
			[]string{`TIDEWATCH_REGISTRY_HUB_X_USERNAME: set together with TIDEWATCH_REGISTRY_HUB_X_LOGIN; expected only one of them`}},
		{"password and password file", []string{"TIDEWATCH_REGISTRY_HUB_X_USERNAME=a", "TIDEWATCH_REGISTRY_HUB_X_PASSWORD=p", "TIDEWATCH_REGISTRY_HUB_X_PASSWORD_FILE=" + cert},
			[]string{`TIDEWATCH_REGISTRY_HUB_X_PASSWORD_FILE: set together with TIDEWATCH_REGISTRY_HUB_X_PASSWORD; expected only one of them`}},
		{"missing password file", []string{"TIDEWATCH_REGISTRY_HUB_X_USERNAME=a", "TIDEWATCH_REGISTRY_HUB_X_PASSWORD_FILE=" + missing},
			[]string{
				`TIDEWATCH_REGISTRY_HUB_X_PASSWORD_FILE="` + missing + `": cannot read file (no such file or directory); expected a readable file holding the password`,
			}},
		{"empty token file", []string{"TIDEWATCH_REGISTRY_GITLAB_X_TOKEN_FILE=" + empty},
			[]string{`TIDEWATCH_REGISTRY_GITLAB_X_TOKEN_FILE="` + empty + `": file is empty; expected a readable file holding the token`}},
		{"token file too big", []string{"TIDEWATCH_REGISTRY_GITLAB_X_TOKEN_FILE=" + big},
			[]string{`TIDEWATCH_REGISTRY_GITLAB_X_TOKEN_FILE="` + big + `": file larger than 64 KiB; expected a readable file holding the token`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.env)
			if diff := cmp.Diff(tc.want, leaves(err)); diff != "" {
				t.Errorf("Load(%q) errors mismatch (-want +got):\n%s", tc.env, diff)
			}
			var ve *VarError
			if !errors.As(err, &ve) {
				t.Errorf("Load(%q) error %v is not a *VarError", tc.env, err)
			}
		})
	}
}

func TestLoadUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	p := writeFile(t, "pw", "secret", 0o000)
	env := []string{"TIDEWATCH_REGISTRY_HUB_X_USERNAME=u", "TIDEWATCH_REGISTRY_HUB_X_PASSWORD_FILE=" + p}
	_, err := Load(env)
	want := `TIDEWATCH_REGISTRY_HUB_X_PASSWORD_FILE="` + p + `": cannot read file (permission denied); expected a readable file holding the password`
	if got := leaves(err); len(got) == 0 || got[0] != want {
		t.Errorf("Load(%q) errors = %q, want first %q", env, got, want)
	}
}

func TestLoadReportsEveryErrorAtOnce(t *testing.T) {
	env := []string{
		"TIDEWATCH_WATCHER_LOCAL_HOST=h",
		"TIDEWATCH_WATCHER_LOCAL_PORT=abc",
		"TIDEWATCH_WATCHER_REMOTE_CRON=every hour",
		"TIDEWATCH_WATCHER_LOCAL_SOCKT=/x",
		"TIDEWATCH_STOR_PATH=/data",
		"TIDEWATCH_LOG_LEVEL=loud",
		"TIDEWATCH_REGISTRY_NOPE_X_URL=x",
		"TIDEWATCH_REGISTRY_ACR_X_USERNAME=u",
		"TIDEWATCH_SERVER_PORT=8080", // ignored, not an error
	}
	_, err := Load(env)
	got := leaves(err)
	wantVars := []string{
		"TIDEWATCH_LOG_LEVEL=",
		"TIDEWATCH_REGISTRY_NOPE_X_URL:",
		"TIDEWATCH_STOR_PATH:",
		"TIDEWATCH_WATCHER_LOCAL_PORT=",
		"TIDEWATCH_WATCHER_LOCAL_SOCKT:",
		"TIDEWATCH_WATCHER_REMOTE_CRON=",
		"TIDEWATCH_REGISTRY_ACR_X_URL:",
		"TIDEWATCH_REGISTRY_ACR_X_USERNAME=",
	}
	if len(got) != len(wantVars) {
		t.Fatalf("Load(%q) gave %d errors, want %d:\n%s", env, len(got), len(wantVars), strings.Join(got, "\n"))
	}
	for i, w := range wantVars {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("Load error %d = %q, want it to start with %q", i, got[i], w)
		}
	}
}

func TestSecretsNeverShown(t *testing.T) {
	const canary = "CANARY-7f3a9c"
	file := writeFile(t, "pw", canary+"\n", 0o600)
	big := writeFile(t, "big", canary+strings.Repeat("x", maxSecretFile), 0o600)

	good := []string{
		"TIDEWATCH_REGISTRY_HUB_A_USERNAME=u",
		"TIDEWATCH_REGISTRY_HUB_A_PASSWORD=" + canary,
		"TIDEWATCH_REGISTRY_GHCR_B_TOKEN_FILE=" + file,
	}
	cfg, err := Load(good)
	if err != nil {
		t.Fatalf("Load(%q) error = %v, want nil", good, err)
	}
	if cfg.Registries[1].Password.Reveal() != canary || cfg.Registries[0].Token.Reveal() != canary {
		t.Fatalf("Load(%q) did not read the secrets: %+v", good, cfg.Registries)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, cfg); strings.Contains(out, canary) {
			t.Errorf("fmt.Sprintf(%q, cfg) shows the secret: %s", verb, out)
		}
	}

	// Each variable below is wrong in its own way and carries the canary as
	// a secret value or file content; none of the errors may show it.
	bad := []string{
		"TIDEWATCH_REGISTRY_HUB_A_PASSWORD=" + canary,    // no username
		"TIDEWATCH_REGISTRY_HUB_A_PASSWORD_FILE=" + file, // set together with PASSWORD
		"TIDEWATCH_REGISTRY_HUB_B_PASSWROD=" + canary,    // typo
		"TIDEWATCH_REGISTRY_HUBB_A_TOKEN=" + canary,      // unknown type
		"TIDEWATCH_REGISTRY_GHCR_B_TOKEN_FILE=" + big,    // file too big
		"TIDEWATCH_REGISTRY_GHCR_C_TOKEN=" + canary,      // set together with TOKEN_FILE
		"TIDEWATCH_REGISTRY_GHCR_C_TOKEN_FILE=" + file,   //
		"TIDEWATCH_REGISTRY_GHCR_D-E_TOKEN=" + canary,    // bad name
		"TIDEWATCH_WATCHER_X_PASSWORD=" + canary,         // not a watcher option
		"TIDEWATCH_REGISTRY_CUSTOM_F_PASSWORD=" + canary, // no URL, no username
	}
	_, err = Load(bad)
	msgs := leaves(err)
	if len(msgs) < len(bad)-1 {
		t.Fatalf("Load(bad) gave %d errors, want at least %d:\n%s", len(msgs), len(bad)-1, strings.Join(msgs, "\n"))
	}
	for _, msg := range msgs {
		if strings.Contains(msg, canary) {
			t.Errorf("error shows the secret: %s", msg)
		}
	}
}

// FuzzLoad checks that Load never panics and that every error it reports
// names a TIDEWATCH_ variable.
func FuzzLoad(f *testing.F) {
	f.Add("WATCHER_LOCAL_PORT", "abc", "REGISTRY_HUB_X_USERNAME", "u")
	f.Add("WATCHER_MY_HOST_SOCKET", "/s", "WATCHER_MY_HOST_HOST", "h")
	f.Add("WATCHER_A_CRON", "TZ=UTC", "STOR_PATH", "x")
	f.Add("WATCHER_A_CRON", "CRON_TZ=Nowhere/Land 0 * * * *", "LOG_LEVEL", "trace")
	f.Add("REGISTRY_CUSTOM_X_URL", "https://[::1]:5000", "REGISTRY_CUSTOM_X_TOKEN_FILE", "/dev/null")
	f.Add("WATCHER_X_CAFILE", "/proc/self/status", "WATCHER_X_HOST", "[::1]")
	f.Add("REGISTRY__URL", "::", "WATCHER___", "=")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		env := []string{Prefix + k1 + "=" + v1, Prefix + k2 + "=" + v2}
		cfg, err := Load(env)
		for _, msg := range leaves(err) {
			if !strings.HasPrefix(msg, Prefix) && !strings.HasPrefix(strings.ToUpper(msg), Prefix) {
				t.Errorf("Load(%q) error does not start with a TIDEWATCH_ variable: %q", env, msg)
			}
		}
		if err == nil {
			if len(cfg.Watchers) == 0 {
				t.Errorf("Load(%q) gave no watcher", env)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Load(%q) succeeded but Validate() = %v", env, err)
			}
		}
	})
}

func TestRegistryValidateProgrammatic(t *testing.T) {
	r := Registry{Type: "custom", Name: "x", URL: "HTTPS://R.example.com", Password: core.Secret("p"), Username: "u"}
	got := leaves(r.Validate())
	want := []string{`TIDEWATCH_REGISTRY_CUSTOM_X_URL="HTTPS://R.example.com": not in normal form r.example.com; expected a registry host like "ghcr.io", "host:port" or "https://host"`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%+v.Validate() mismatch (-want +got):\n%s", r, diff)
	}
}

func TestRegistryInsecure(t *testing.T) {
	got, err := Load([]string{"TIDEWATCH_REGISTRY_CUSTOM_LAN_URL=registry.lan:5000", "TIDEWATCH_REGISTRY_CUSTOM_LAN_INSECURE=true"})
	if err != nil {
		t.Fatal(err)
	}
	if r := got.Registries[0]; !r.Insecure || r.URL != "registry.lan:5000" {
		t.Errorf("registry = %+v, want insecure registry.lan:5000", r)
	}
	if _, err := Load([]string{"TIDEWATCH_REGISTRY_CUSTOM_LAN_URL=registry.lan:5000", "TIDEWATCH_REGISTRY_CUSTOM_LAN_INSECURE=sometimes"}); err == nil ||
		!strings.Contains(err.Error(), `TIDEWATCH_REGISTRY_CUSTOM_LAN_INSECURE="sometimes": not a boolean`) {
		t.Errorf("bad INSECURE: %v", err)
	}
}
