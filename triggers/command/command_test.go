package command

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// script writes an executable shell script to a temporary folder and
// returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// configured starts a command plugin process configured with options.
func configured(t *testing.T, options map[string]string) (*host.Plugin, *triggertest.Logs) {
	t.Helper()
	return triggertest.Start(t, "command", options)
}

func update(key string) sdk.Update {
	u := sdk.SampleMessage().Update
	u.Key = key
	return u
}

// readEnv parses a file written by `env`, keeping only the names asked for.
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestFireRunsProgram(t *testing.T) {
	out := t.TempDir()
	workdir := t.TempDir()
	prog := script(t, `env > "$OUT/env"; cat > "$OUT/stdin"; pwd > "$OUT/pwd"; printf '%s\n' "$@" > "$OUT/args"`)
	tr, _ := configured(t, map[string]string{
		OptCommand: prog,
		OptArgs:    `["--channel", "ops team", "$HOME", "*"]`,
		OptEnv:     "OUT=" + out + ", TOKEN=abc=def",
		OptDir:     workdir,
	})
	u := update("delivery-7")
	u.Detail = "line1\x00line2"
	if diff := cmp.Diff([]sdk.Result{sdk.OK("exit 0")}, tr.Fire(context.Background(), []sdk.Update{u})); diff != "" {
		t.Fatalf("Fire (-want +got):\n%s", diff)
	}

	// The whole environment: the plugin's PATH (none here: the default), ENV,
	// the update; nothing else of the plugin's (go-plugin's handshake
	// variables, its certificate), and PWD, which the shell sets itself.
	env := readEnv(t, filepath.Join(out, "env"))
	delete(env, "PWD")
	want := map[string]string{
		"TIDEWATCH_TRIGGER": triggertest.Instance, "TIDEWATCH_KEY": "delivery-7", "TIDEWATCH_COUNT": "1",
		"TIDEWATCH_EVENT": "update-available", "TIDEWATCH_HOST": "local", "TIDEWATCH_CONTAINER": "web",
		"TIDEWATCH_CONTAINER_ID": "0123456789ab", "TIDEWATCH_IMAGE": "registry.example/web",
		"TIDEWATCH_CURRENT": "1.0.0", "TIDEWATCH_CURRENT_DIGEST": u.CurrentDigest,
		"TIDEWATCH_CANDIDATE": "1.1.0", "TIDEWATCH_CANDIDATE_DIGEST": u.CandidateDigest,
		"TIDEWATCH_KIND": "minor", "TIDEWATCH_LINK": "https://example.com/releases/1.1.0",
		"TIDEWATCH_DETECTED_AT": "2026-01-02T03:04:05Z", "TIDEWATCH_DETAIL": "line1line2",
		"OUT": out, "TOKEN": "abc=def", "PATH": DefaultPath,
	}
	if diff := cmp.Diff(want, env); diff != "" {
		t.Errorf("program's environment (-want +got):\n%s", diff)
	}

	var p sdk.Payload
	b, _ := os.ReadFile(filepath.Join(out, "stdin"))
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("stdin is not the JSON payload: %v\n%s", err, b)
	}
	wantPayload := sdk.NewPayload(triggertest.Instance, []sdk.Update{u})
	if diff := cmp.Diff(wantPayload, p); diff != "" {
		t.Errorf("stdin payload (-want +got):\n%s", diff)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "args")); string(b) != "--channel\nops team\n$HOME\n*\n" {
		t.Errorf("arguments = %q, want them as given, unexpanded", b)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "pwd")); strings.TrimSpace(string(b)) != workdir {
		t.Errorf("working directory = %q, want %q", b, workdir)
	}
}

func TestFireBatch(t *testing.T) {
	out := t.TempDir()
	prog := script(t, `env > "$OUT/env"; cat > "$OUT/stdin"`)
	tr, _ := configured(t, map[string]string{OptCommand: prog, OptEnv: "OUT=" + out})
	a, b := update("a"), update("b")
	b.Container = "db"
	if r := tr.Fire(context.Background(), []sdk.Update{a, b}); r[0].Err != nil || r[1].Err != nil {
		t.Fatalf("Fire = %v", r)
	}
	env := readEnv(t, filepath.Join(out, "env"))
	if env["TIDEWATCH_COUNT"] != "2" || env["TIDEWATCH_KEY"] != sdk.Key([]sdk.Update{a, b}) || env["TIDEWATCH_CONTAINER"] != "web" {
		t.Errorf("batch env COUNT=%s KEY=%s CONTAINER=%s, want 2, the batch key, the first update's", env["TIDEWATCH_COUNT"], env["TIDEWATCH_KEY"], env["TIDEWATCH_CONTAINER"])
	}
	var p sdk.Payload
	raw, _ := os.ReadFile(filepath.Join(out, "stdin"))
	if err := json.Unmarshal(raw, &p); err != nil || len(p.Updates) != 2 || p.Updates[1].Container != "db" {
		t.Errorf("stdin = %s (%v), want both updates", raw, err)
	}
}

func TestFireExitCodes(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantErr   bool
		permanent bool
		contains  string
	}{
		{name: "success", body: "exit 0"},
		{name: "success without reading stdin", body: "exec 0<&-; exit 0"},
		{name: "temporary failure", body: "echo 'queue full' >&2; exit 75", wantErr: true, contains: "exit 75 (temporary failure); last output: queue full"},
		{name: "failure", body: "echo one; echo two; echo three; exit 1", wantErr: true, permanent: true, contains: "exit 1; last output: one | two | three"},
		{name: "usage", body: "exit 64", wantErr: true, permanent: true, contains: "exit 64"},
		{name: "killed by a signal", body: "kill -KILL $$", wantErr: true, permanent: true, contains: "signal: killed"},
		{name: "last lines only", body: "for i in 1 2 3 4 5 6 7; do echo line$i; done; exit 3", wantErr: true, permanent: true, contains: "last output: line3 | line4 | line5 | line6 | line7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := configured(t, map[string]string{OptCommand: script(t, tc.body)})
			r := tr.Fire(context.Background(), []sdk.Update{update("k")})[0]
			if (r.Err != nil) != tc.wantErr || sdk.IsPermanent(r.Err) != tc.permanent {
				t.Fatalf("Fire = %v (permanent %v), want error %v, permanent %v", r.Err, sdk.IsPermanent(r.Err), tc.wantErr, tc.permanent)
			}
			if r.Err != nil && !strings.Contains(r.Err.Error(), tc.contains) {
				t.Errorf("error = %q, want it to contain %q", r.Err, tc.contains)
			}
			if r.Err != nil && strings.Contains(r.Err.Error(), "line2") {
				t.Errorf("error = %q quotes more than the last %d lines", r.Err, tailLines)
			}
		})
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestFireTimeoutKillsProcessGroup(t *testing.T) {
	out := t.TempDir()
	prog := script(t, `sleep 300 & echo $! > "$OUT/child"; echo started; wait`)
	tr, _ := configured(t, map[string]string{OptCommand: prog, OptEnv: "OUT=" + out, OptTimeout: "300ms"})
	start := time.Now()
	r := tr.Fire(context.Background(), []sdk.Update{update("k")})[0]
	if r.Err == nil || sdk.IsPermanent(r.Err) || !strings.Contains(r.Err.Error(), "killed after 300ms (TIMEOUT); last output: started") {
		t.Fatalf("Fire of a hung program = %v, want a retryable TIMEOUT error", r.Err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Fire took %s, want about the 300ms timeout", d)
	}
	b, err := os.ReadFile(filepath.Join(out, "child"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for deadline := time.Now().Add(5 * time.Second); alive(pid); {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the program's child %d still runs after the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFireHonoursContext(t *testing.T) {
	tr, _ := configured(t, map[string]string{OptCommand: script(t, "exec sleep 300"), OptTimeout: "1h"})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := tr.Fire(ctx, []sdk.Update{update("k")})[0]
	if r.Err == nil || sdk.IsPermanent(r.Err) {
		t.Errorf("Fire past its deadline = %v, want a retryable error", r.Err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Fire took %s, want about the 200ms deadline", d)
	}
}

// logLine is one log record as tidewatch logs a plugin's line, the fields
// tests look at.
type logLine struct {
	Msg      string `json:"msg"`
	Plugin   string `json:"plugin"`
	Instance string `json:"instance"`
	Trigger  string `json:"trigger"`
	Stream   string `json:"stream"`
	Dropped  int    `json:"lines_not_logged"`
}

// records stops the plugin, so that its last lines are in, and decodes its logs.
func records(t *testing.T, p *host.Plugin, logs *triggertest.Logs) []logLine {
	t.Helper()
	p.Close()
	var out []logLine
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var r logLine
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

func TestFireLogsOutput(t *testing.T) {
	long := strings.Repeat("x", 3000)
	prog := script(t, `echo "to stdout"; echo "to stderr" >&2; echo "`+long+`"; printf 'no newline'`)
	tr, logs := configured(t, map[string]string{OptCommand: prog})
	if r := tr.Fire(context.Background(), []sdk.Update{update("k")}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	var got []string
	for _, r := range records(t, tr, logs) {
		if r.Stream == "" {
			continue
		}
		if r.Trigger != triggertest.Instance || r.Plugin != "command" {
			t.Errorf("log line %q has trigger %q, plugin %q; want %s, command", r.Msg, r.Trigger, r.Plugin, triggertest.Instance)
		}
		got = append(got, r.Stream+": "+r.Msg)
	}
	sort.Strings(got) // stdout and stderr interleave in any order
	want := []string{
		"stderr: to stderr",
		"stdout: no newline",
		"stdout: to stdout",
		"stdout: " + long[:maxLineBytes] + "…",
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logged output (-want +got):\n%s", diff)
	}
}

func TestFireCapsLoggedLines(t *testing.T) {
	tr, logs := configured(t, map[string]string{OptCommand: script(t, `i=0; while [ $i -lt 500 ]; do echo line$i; i=$((i+1)); done`)})
	if r := tr.Fire(context.Background(), []sdk.Update{update("k")}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	lines, dropped := 0, 0
	for _, r := range records(t, tr, logs) {
		if r.Stream != "" {
			lines++
		}
		dropped += r.Dropped
	}
	if lines != maxLogLines || dropped != 500-maxLogLines {
		t.Errorf("logged %d lines and counted %d dropped, want %d and %d", lines, dropped, maxLogLines, 500-maxLogLines)
	}
}

func TestFireBeforeConfigure(t *testing.T) {
	if r := New().Fire(context.Background(), []sdk.Update{update("k")}); len(r) != 1 || !sdk.IsPermanent(r[0].Err) {
		t.Errorf("Fire before Configure = %v, want one permanent error", r)
	}
}

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	prog := script(t, "exit 0")
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	onPath := t.TempDir()
	if err := os.WriteFile(filepath.Join(onPath, "notify-ops"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", onPath+string(os.PathListSeparator)+"relative/bin")
	const canary = "CANARY-env-5ecret"

	tests := []struct {
		name     string
		options  map[string]string
		want     []string
		wantPath string
	}{
		{name: "absolute", options: map[string]string{OptCommand: prog}, wantPath: prog},
		{name: "on PATH", options: map[string]string{OptCommand: "notify-ops"}, wantPath: filepath.Join(onPath, "notify-ops")},
		{name: "missing", options: map[string]string{}, want: []string{OptCommand}},
		{name: "not on PATH", options: map[string]string{OptCommand: "no-such-program"}, want: []string{OptCommand}},
		{name: "relative", options: map[string]string{OptCommand: "./hook.sh"}, want: []string{OptCommand}},
		{name: "not executable", options: map[string]string{OptCommand: plain}, want: []string{OptCommand}},
		{name: "a directory", options: map[string]string{OptCommand: dir}, want: []string{OptCommand}},
		{name: "args not JSON", options: map[string]string{OptCommand: prog, OptArgs: "--flag value"}, want: []string{OptArgs}},
		{name: "args not strings", options: map[string]string{OptCommand: prog, OptArgs: `["a", 1]`}, want: []string{OptArgs}},
		{name: "env", options: map[string]string{OptCommand: prog, OptEnv: canary + ", 1X=" + canary + ", TIDEWATCH_KEY=" + canary + ", OK=1"}, want: []string{OptEnv, OptEnv, OptEnv}},
		{name: "timeout", options: map[string]string{OptCommand: prog, OptTimeout: "soon"}, want: []string{OptTimeout}},
		{name: "dir missing", options: map[string]string{OptCommand: prog, OptDir: filepath.Join(dir, "nope")}, want: []string{OptDir}},
		{name: "dir is a file", options: map[string]string{OptCommand: prog, OptDir: plain}, want: []string{OptDir}},
		{name: "unknown", options: map[string]string{OptCommand: prog, "SHELL": "bash"}, want: []string{"SHELL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(tc.options)
			var got []string
			for _, e := range sdk.OptionErrors(err) {
				got = append(got, e.Option)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("options in error (-want +got):\n%s\nerror: %v", diff, err)
			}
			if err != nil && strings.Contains(err.Error(), canary) {
				t.Errorf("error shows an ENV value: %v", err)
			}
			if tc.wantPath != "" && c.Path != tc.wantPath {
				t.Errorf("Path = %q, want %q", c.Path, tc.wantPath)
			}
		})
	}

	c, err := ParseConfig(map[string]string{OptCommand: prog, OptEnv: "A=1,b = x y\n"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"A=1,b = x y"}, c.Env); diff != "" {
		t.Errorf("newline-separated ENV (-want +got):\n%s", diff)
	}
	if c.Timeout != 30*time.Second {
		t.Errorf("default Timeout = %s, want 30s", c.Timeout)
	}
}

func TestBaseEnv(t *testing.T) {
	got := baseEnv([]string{"HOME=/root", "PLUGIN_CLIENT_CERT=x", "TIDEWATCH_PLUGIN=cookie", "TZ=UTC", "AWS_SECRET_ACCESS_KEY=y"})
	want := []string{"PATH=" + DefaultPath, "HOME=/root", "TZ=UTC"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("baseEnv (-want +got):\n%s", diff)
	}
}

func TestPluginKilledMidRunKillsProgram(t *testing.T) {
	out := t.TempDir()
	tr, _ := configured(t, map[string]string{OptCommand: script(t, `echo $$ > "$OUT/pid"; exec sleep 300`), OptEnv: "OUT=" + out})
	done := make(chan sdk.Result, 1)
	go func() { done <- tr.Fire(context.Background(), []sdk.Update{update("k")})[0] }()

	pidFile := filepath.Join(out, "pid")
	var pid int
	for deadline := time.Now().Add(10 * time.Second); ; {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the program did not start in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(tr.Pid(), syscall.SIGKILL); err != nil {
		t.Fatalf("killing the plugin process: %v", err)
	}
	if r := <-done; r.Err == nil || sdk.IsPermanent(r.Err) {
		t.Errorf("Fire while the plugin was killed = %v, want a retryable error", r.Err)
	}
	for deadline := time.Now().Add(5 * time.Second); alive(pid); {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the program %d still runs after its plugin process was killed", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
