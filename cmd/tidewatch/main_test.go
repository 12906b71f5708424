package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core/config"
)

// TestMain lets the test binary serve built-in triggers as tidewatch does:
// loading them re-executes os.Executable() as `trigger serve <type>`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "trigger" {
		os.Exit(run())
	}
	os.Exit(m.Run())
}

func TestRunArgs(t *testing.T) {
	tests := []struct {
		name       string
		args, env  []string
		code       int
		wantStdout []string
		wantStderr []string
	}{
		{name: "version", args: []string{"version"}, code: exitOK, wantStdout: []string{"tidewatch "}},
		{name: "help", args: []string{"help"}, code: exitOK, wantStdout: []string{"tidewatch check"}},
		{name: "unknown command", args: []string{"chek"}, code: exitUsage, wantStderr: []string{`unknown command "chek"`}},
		{
			name: "bad configuration is reported whole before anything runs",
			args: []string{"check"},
			env: []string{
				"TIDEWATCH_WATCHER_LOCAL_PORT=abc",
				"TIDEWATCH_WATCHER_LOCAL_HOST=example.invalid",
				"TIDEWATCH_WATCHER_LOCAL_CRON=every hour",
				"TIDEWATCH_REGISTRY_CUSTOM_MINE_PASSWORD=canary-secret-93f1",
			},
			code:       exitError,
			wantStderr: []string{"TIDEWATCH_WATCHER_LOCAL_PORT", "TIDEWATCH_WATCHER_LOCAL_CRON", "TIDEWATCH_REGISTRY_CUSTOM_MINE_URL"},
		},
		{name: "check help", args: []string{"check", "--help"}, env: []string{"TIDEWATCH_STORE_PATH=" + t.TempDir()}, code: exitOK, wantStderr: []string{"-exit-code"}},
		{name: "bad format", args: []string{"check", "--format", "yaml"}, env: []string{"TIDEWATCH_STORE_PATH=" + t.TempDir()}, code: exitUsage, wantStderr: []string{"--format"}},
		{name: "serve help does not serve", args: []string{"serve", "--help"}, code: exitOK, wantStdout: []string{"tidewatch serve"}},
		{name: "serve takes no argument", args: []string{"serve", "--port", "9000"}, code: exitUsage, wantStderr: []string{`tidewatch serve: unexpected argument "--port"`}},
		{name: "plugins takes no argument", args: []string{"plugins", "all"}, code: exitUsage, wantStderr: []string{`tidewatch plugins: unexpected argument "all"`}},
		{name: "version takes no argument", args: []string{"version", "x"}, code: exitUsage, wantStderr: []string{"unexpected argument"}},
		{name: "healthcheck takes no argument", args: []string{"healthcheck", "now"}, code: exitUsage, wantStderr: []string{"unexpected argument"}},
		{name: "check takes no positional argument", args: []string{"check", "web"}, env: []string{"TIDEWATCH_STORE_PATH=" + t.TempDir()}, code: exitUsage, wantStderr: []string{`unexpected argument "web"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runArgs(context.Background(), tc.args, tc.env, &out, &errb)
			if code != tc.code {
				t.Errorf("runArgs(%q) = %d, want %d\nstdout: %s\nstderr: %s", tc.args, code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.wantStdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
			if strings.Contains(out.String()+errb.String(), "canary-secret-93f1") {
				t.Errorf("a secret leaked into the output:\n%s%s", out.String(), errb.String())
			}
		})
	}
}

// TestServeRefusesBadConfiguration: every start-up error of serve is a named
// error and exit 1, never a panic (an unknown trigger type crashed serve in
// the daemon's clean-up).
func TestServeRefusesBadConfiguration(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"unknown trigger type", []string{"TIDEWATCH_TRIGGER_BOGUS_X_AUTO=false"}, `unknown trigger type "bogus"`},
		{"bad common option", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS_URL=https://example.com/h", "TIDEWATCH_TRIGGER_WEBHOOK_OPS_THRESHOLD=huge"}, "TIDEWATCH_TRIGGER_WEBHOOK_OPS_THRESHOLD"},
		{"option the plugin refuses", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS_URL=not a url"}, "TIDEWATCH_TRIGGER_WEBHOOK_OPS_URL"},
		{"option the plugin does not take", []string{"TIDEWATCH_TRIGGER_WEBHOOK_OPS_URL=https://example.com/h", "TIDEWATCH_TRIGGER_WEBHOOK_OPS_COLOUR=red"}, "TIDEWATCH_TRIGGER_WEBHOOK_OPS_COLOUR"},
		{"store path is a file", []string{"TIDEWATCH_STORE_PATH=" + file}, "not-a-folder"},
		{"bad watcher", []string{"TIDEWATCH_WATCHER_LOCAL_PORT=abc"}, "TIDEWATCH_WATCHER_LOCAL_PORT"},
		{"unknown variable", []string{"TIDEWATCH_SERVE_PORT=1"}, "TIDEWATCH_SERVE_PORT"},
		{"a trigger that deploys, several hosts, none on its engine, no WATCHER", []string{"TIDEWATCH_TRIGGER_COMPOSE_PROD_AUTO=false",
			"TIDEWATCH_WATCHER_LOCAL_SOCKET=/run/other.sock", "TIDEWATCH_WATCHER_EDGE_HOST=edge.example"},
			"TIDEWATCH_TRIGGER_COMPOSE_PROD_WATCHER: not set, and this trigger deploys while several watchers are configured, and not exactly one of them is on its engine (unix:///var/run/docker.sock)"},
		{"a docker trigger, two watchers on its engine, no WATCHER", []string{"TIDEWATCH_TRIGGER_DOCKER_PROD_AUTO=false",
			"TIDEWATCH_TRIGGER_DOCKER_PROD_DOCKER_HOST=tcp://edge.example:2375",
			"TIDEWATCH_WATCHER_EDGE_HOST=edge.example", "TIDEWATCH_WATCHER_EDGE2_HOST=EDGE.example"},
			"TIDEWATCH_TRIGGER_DOCKER_PROD_WATCHER: not set, and this trigger deploys while several watchers are configured, and not exactly one of them is on its engine"},
		{"git source naming an unknown trigger", []string{"TIDEWATCH_GIT_PROD_URL=https://git.example/ops.git",
			"TIDEWATCH_GIT_PROD_TRIGGER=compose.nope", "TIDEWATCH_TRIGGER_COMPOSE_PROD_AUTO=false"},
			"TIDEWATCH_GIT_PROD_TRIGGER=compose.nope: no such trigger that deploys"},
		{"git source naming a trigger that does not deploy", []string{"TIDEWATCH_GIT_PROD_URL=https://git.example/ops.git",
			"TIDEWATCH_GIT_PROD_TRIGGER=webhook.ops", "TIDEWATCH_TRIGGER_WEBHOOK_OPS_URL=https://example.com/h"},
			"TIDEWATCH_GIT_PROD_TRIGGER=webhook.ops: no such trigger that deploys"},
		{"git source, several compose triggers", []string{"TIDEWATCH_GIT_PROD_URL=https://git.example/ops.git",
			"TIDEWATCH_TRIGGER_COMPOSE_A_AUTO=false", "TIDEWATCH_TRIGGER_COMPOSE_B_AUTO=false"},
			"TIDEWATCH_GIT_PROD_TRIGGER: several compose triggers deploy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if !strings.Contains(strings.Join(env, " "), "TIDEWATCH_STORE_PATH=") {
				env = append(env, "TIDEWATCH_STORE_PATH="+t.TempDir())
			}
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			code := func() (code int) {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("serve panicked: %v", r)
					}
				}()
				return runArgs(ctx, []string{"serve"}, env, &out, &errb)
			}()
			if code != exitError || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("serve = %d, stderr:\n%s\nwant exit %d naming %q", code, errb.String(), exitError, tc.want)
			}
		})
	}
}

// TestServerWarningsLogged: serve logs at warn level, naming the
// variables, what the server configuration allows but should not be:
// passwords in clear text beyond loopback, weak hashes; on loopback with a
// strong hash it warns of nothing.
func TestServerWarningsLogged(t *testing.T) {
	weak := "$2a$04$" + strings.Repeat("a", 53)
	strong := "$2a$12$" + strings.Repeat("a", 53)
	tests := []struct {
		name string
		env  []string
		want []string // "" for no warning
	}{
		{"every interface, no TLS, weak hash", []string{"TIDEWATCH_SERVER_ADDRESS=0.0.0.0", "TIDEWATCH_SERVER_AUTH_USERS=alice:" + weak},
			[]string{"clear text", "variable=TIDEWATCH_SERVER_ADDRESS", "TIDEWATCH_SERVER_TLS_CERT", `user \"alice\": bcrypt cost 4 is weak`, "variable=TIDEWATCH_SERVER_AUTH_USERS"}},
		{"loopback, strong hash", []string{"TIDEWATCH_SERVER_AUTH_USERS=alice:" + strong}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			logServerWarnings(slog.New(slog.NewTextHandler(&buf, nil)), cfg.Server)
			out := buf.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) || !strings.Contains(out, "level=WARN") {
					t.Errorf("log lacks %q:\n%s", w, out)
				}
			}
			if tc.want == nil && out != "" {
				t.Errorf("log = %s, want no warning", out)
			}
			if strings.Contains(out, strings.Repeat("a", 53)) {
				t.Errorf("the log shows a hash:\n%s", out)
			}
		})
	}
}

// TestPluginsNeverRunsARefusedFile: `tidewatch plugins` names a plugin that
// others may write and does not execute it.
func TestPluginsNeverRunsARefusedFile(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	plugin := filepath.Join(dir, "tidewatch-trigger-evil")
	if err := os.WriteFile(plugin, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(plugin, 0o777); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := runArgs(context.Background(), []string{"plugins"}, []string{"TIDEWATCH_PLUGINS_DIR=" + dir, "TIDEWATCH_STORE_PATH=" + t.TempDir()}, &out, &errb)
	if code != exitError || !strings.Contains(errb.String(), plugin) || !strings.Contains(errb.String(), "writable by its group or by everyone") {
		t.Errorf("plugins = %d, stderr:\n%s\nwant exit 1 naming %s", code, errb.String(), plugin)
	}
	if strings.Contains(out.String(), "evil") {
		t.Errorf("the refused plugin is listed:\n%s", out.String())
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the refused plugin was executed")
	}
}
