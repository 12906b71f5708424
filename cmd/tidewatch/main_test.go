package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

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
