package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// testPlugin is the path of testdata/testplugin, built by TestMain.
var testPlugin string

func TestMain(m *testing.M) {
	if os.Getenv(parentEnv) != "" {
		os.Exit(actAsParent())
	}
	dir, err := os.MkdirTemp("", "host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testPlugin = filepath.Join(dir, Prefix+"test")
	build := exec.Command("go", "build", "-o", testPlugin, "./testdata/testplugin")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the test plugin:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logBuffer collects JSON log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// entry is the part of a log line the tests look at.
type entry struct {
	Msg      string `json:"msg"`
	Level    string `json:"level"`
	Plugin   string `json:"plugin"`
	Instance string `json:"instance"`
	Key      string `json:"key,omitempty"`
}

func (l *logBuffer) entries(t *testing.T) []entry {
	t.Helper()
	var out []entry
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// newHost returns a Host logging into a buffer, printed when the test fails
// (or always, with HOST_TEST_LOGS=1 in the environment).
func newHost(t *testing.T, opts Options) (*Host, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	h := New(opts, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug - 4})))
	t.Cleanup(func() {
		h.Close()
		if t.Failed() || os.Getenv("HOST_TEST_LOGS") != "" {
			t.Logf("host log:\n%s", logs)
		}
	})
	return h, logs
}

func open(t *testing.T, h *Host, spec Spec) *Plugin {
	t.Helper()
	p, err := h.Open(context.Background(), spec, "inst")
	if err != nil {
		t.Fatalf("Open(%+v): %v", spec, err)
	}
	return p
}

func testSpec() Spec { return Spec{Type: "test", Path: testPlugin} }

func configure(t *testing.T, p *Plugin, options map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Configure(ctx, "inst", options); err != nil {
		t.Fatalf("Configure(%v): %v", options, err)
	}
}

func update(key, mode string) sdk.Update {
	u := sdk.SampleMessage().Update
	u.Key = key
	if mode != "" {
		u.Labels = map[string]string{"testplugin.mode": mode}
	}
	return u
}

func fire(t *testing.T, p *Plugin, timeout time.Duration, updates ...sdk.Update) []sdk.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	results := p.Fire(ctx, updates)
	if len(results) != len(updates) {
		t.Fatalf("Fire(%d updates) gave %d results", len(updates), len(results))
	}
	return results
}

// state reads the test plugin's state file.
func state(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// alive reports whether a process with id pid exists.
func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// outcome summarises a result for comparisons.
type outcome struct {
	OK, Permanent bool
	Err, Detail   string
}

func outcomes(rs []sdk.Result) []outcome {
	out := make([]outcome, len(rs))
	for i, r := range rs {
		out[i] = outcome{OK: r.Err == nil, Permanent: sdk.IsPermanent(r.Err), Detail: r.Detail}
		if r.Err != nil {
			out[i].Err = r.Err.Error()
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	h, _ := newHost(t, Options{})
	p := open(t, h, testSpec())

	want := sdk.Description{Type: "test", Description: "a trigger for tests", Options: []sdk.Option{
		{Name: "MODE", Description: "what Fire does: ok, retry, fail, crash, hang or crash-once", Default: "ok"},
		{Name: "STATE_FILE", Description: "a file to record calls in"},
		{Name: "ENV", Description: "a variable whose value OK results report"},
		{Name: "COUNT", Description: "an integer from 1 to 9"},
		{Name: "TOKEN", Description: "a secret", Secret: true},
	}}
	if diff := cmp.Diff(want, p.Describe(context.Background())); diff != "" {
		t.Errorf("Describe() (-want +got):\n%s", diff)
	}
	pid := p.Pid()
	if !alive(pid) {
		t.Fatalf("after Describe, Pid() = %d, not a running process", pid)
	}
	configure(t, p, map[string]string{"COUNT": "3"})
	got := outcomes(fire(t, p, 10*time.Second, update("k1", "ok"), update("k2", "retry"), update("k3", "fail")))
	wantResults := []outcome{
		{OK: true, Detail: "env="},
		{Err: "peer busy"},
		{Err: "peer refused", Permanent: true},
	}
	if diff := cmp.Diff(wantResults, got); diff != "" {
		t.Errorf("Fire results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, p.Describe(context.Background())); diff != "" {
		t.Errorf("Describe() again (-want +got):\n%s", diff)
	}
	if p.Pid() != pid {
		t.Errorf("Pid() = %d after the calls, want the same process %d", p.Pid(), pid)
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("TIDEWATCH_TEST_CANARY", "canary-value")
	tests := []struct {
		name string
		env  []string
		read string
		want string
	}{
		{"host environment is not passed", nil, "TIDEWATCH_TEST_CANARY", "env="},
		{"host environment is not passed even with Env", []string{"OTHER=1"}, "TIDEWATCH_TEST_CANARY", "env="},
		{"Spec.Env is the environment", []string{"VISIBLE=yes"}, "VISIBLE", "env=yes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newHost(t, Options{})
			spec := testSpec()
			spec.Env = tc.env
			p := open(t, h, spec)
			configure(t, p, map[string]string{"ENV": tc.read})
			r := fire(t, p, 10*time.Second, update("k", ""))[0]
			if r.Err != nil || r.Detail != tc.want {
				t.Errorf("Fire reading %s with Env %q = %q, %v; want %q", tc.read, tc.env, r.Detail, r.Err, tc.want)
			}
		})
	}
}

func TestConfigureErrors(t *testing.T) {
	h, _ := newHost(t, Options{})
	p := open(t, h, testSpec())
	err := p.Configure(context.Background(), "inst", map[string]string{"MODE": "bogus", "COUNT": "x", "EXTRA": "1"})
	if err == nil {
		t.Fatal("Configure with bad options succeeded")
	}
	var got []sdk.OptionError
	for _, e := range sdk.OptionErrors(err) {
		got = append(got, *e)
	}
	slices.SortFunc(got, func(a, b sdk.OptionError) int { return strings.Compare(a.Option, b.Option) })
	want := []sdk.OptionError{
		{Option: "COUNT", Message: `"x" is not an integer from 1 to 9`},
		{Option: "EXTRA", Message: "unknown option"},
		{Option: "MODE", Message: `"bogus" is not a mode; expected ok, retry, fail, crash, hang or crash-once`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("option errors (-want +got):\n%s", diff)
	}
	var oe *sdk.OptionError
	if !errors.As(err, &oe) {
		t.Errorf("Configure error %v holds no *sdk.OptionError", err)
	}
}

func TestCrashMidFire(t *testing.T) {
	h, _ := newHost(t, Options{})
	p := open(t, h, testSpec())
	file := filepath.Join(t.TempDir(), "state")
	configure(t, p, map[string]string{"MODE": "crash-once", "STATE_FILE": file})
	first := p.Pid()

	r := fire(t, p, 10*time.Second, update("a", ""))[0]
	if r.Err == nil || sdk.IsPermanent(r.Err) || !errors.Is(r.Err, ErrExited) {
		t.Fatalf("Fire on a crashing plugin = %v; want a retryable error wrapping ErrExited", r.Err)
	}
	if alive(first) {
		t.Errorf("the crashed process %d is still there", first)
	}
	r = fire(t, p, 10*time.Second, update("a", ""))[0]
	if r.Err != nil || r.Detail != "after crash" {
		t.Fatalf("Fire after the crash = %q, %v; want OK from a fresh process", r.Detail, r.Err)
	}
	second := p.Pid()
	want := []string{
		fmt.Sprintf("configure inst %d", first),
		fmt.Sprintf("fire a %d", first),
		"crashed",
		fmt.Sprintf("configure inst %d", second),
		fmt.Sprintf("fire a %d", second),
	}
	if diff := cmp.Diff(want, state(t, file)); diff != "" {
		t.Errorf("calls the plugin saw (-want +got):\n%s", diff)
	}
}

func TestHangIsCutOff(t *testing.T) {
	h, _ := newHost(t, Options{})
	p := open(t, h, testSpec())
	file := filepath.Join(t.TempDir(), "state")
	configure(t, p, map[string]string{"MODE": "hang", "STATE_FILE": file})
	hung := p.Pid()

	begin := time.Now()
	r := fire(t, p, time.Second, update("a", ""))[0]
	if took := time.Since(begin); took > 2500*time.Millisecond {
		t.Errorf("Fire on a hanging plugin with a 1s deadline took %s", took)
	}
	if r.Err == nil || sdk.IsPermanent(r.Err) || !errors.Is(r.Err, ErrCutOff) || !strings.Contains(r.Err.Error(), "cut off after 1s") {
		t.Fatalf("Fire on a hanging plugin = %v; want a retryable error saying it was cut off after 1s", r.Err)
	}
	if alive(hung) {
		t.Errorf("the hanging process %d was not killed", hung)
	}
	r = fire(t, p, 10*time.Second, update("b", "ok"))[0]
	if r.Err != nil {
		t.Fatalf("Fire after the cut-off = %v; want OK from a fresh process", r.Err)
	}
	fresh := p.Pid()
	want := []string{
		fmt.Sprintf("configure inst %d", hung),
		fmt.Sprintf("fire a %d", hung),
		fmt.Sprintf("configure inst %d", fresh),
		fmt.Sprintf("fire b %d", fresh),
	}
	if diff := cmp.Diff(want, state(t, file)); diff != "" {
		t.Errorf("calls the plugin saw (-want +got):\n%s", diff)
	}
}

func TestChecksumPin(t *testing.T) {
	b, err := os.ReadFile(testPlugin)
	if err != nil {
		t.Fatal(err)
	}
	right := fmt.Sprintf("%x", sha256.Sum256(b))
	wrong := strings.Repeat("ab", 32)

	h, _ := newHost(t, Options{})
	spec := testSpec()
	spec.SHA256 = wrong
	p := open(t, h, spec)
	err = p.Configure(context.Background(), "inst", nil)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("Configure with a wrong pin = %v; want ErrChecksum", err)
	}
	for _, want := range []string{"TIDEWATCH_PLUGIN_TEST_SHA256", testPlugin, right, wrong} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if p.Pid() != 0 {
		t.Errorf("a refused plugin runs as %d", p.Pid())
	}
	if r := fire(t, p, 10*time.Second, update("a", ""))[0]; !errors.Is(r.Err, ErrChecksum) {
		t.Errorf("Fire with a wrong pin = %v; want ErrChecksum", r.Err)
	}

	spec.SHA256 = strings.ToUpper(right)
	p = open(t, h, spec)
	configure(t, p, nil)
	if r := fire(t, p, 10*time.Second, update("a", ""))[0]; r.Err != nil {
		t.Errorf("Fire with the right pin = %v", r.Err)
	}

	spec.SHA256 = "abc"
	if _, err := h.Open(context.Background(), spec, "inst"); err == nil || !strings.Contains(err.Error(), "TIDEWATCH_PLUGIN_TEST_SHA256") {
		t.Errorf("Open with a malformed pin = %v; want an error naming the variable", err)
	}
}

func TestDescribeWrongType(t *testing.T) {
	h, _ := newHost(t, Options{})
	p := open(t, h, Spec{Type: "other", Path: testPlugin})
	_, err := p.Description(context.Background())
	if err == nil || !strings.Contains(err.Error(), `type "test", not "other"`) {
		t.Errorf("Description of a plugin of another type = %v; want an error", err)
	}
}

func TestLogs(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		want  []entry
	}{
		{"debug", slog.LevelDebug, []entry{
			{Msg: "bad options", Level: "ERROR", Plugin: "test", Instance: "inst"},
			{Msg: "configured", Level: "INFO", Plugin: "test", Instance: "inst"},
			{Msg: "firing", Level: "DEBUG", Plugin: "test", Instance: "inst", Key: "k1"},
			{Msg: "fire result", Level: "WARN", Plugin: "test", Instance: "inst", Key: "k1"},
		}},
		{"info", slog.LevelInfo, []entry{
			{Msg: "bad options", Level: "ERROR", Plugin: "test", Instance: "inst"},
			{Msg: "configured", Level: "INFO", Plugin: "test", Instance: "inst"},
			{Msg: "fire result", Level: "WARN", Plugin: "test", Instance: "inst", Key: "k1"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, logs := newHost(t, Options{Level: tc.level})
			p := open(t, h, testSpec())
			if err := p.Configure(context.Background(), "inst", map[string]string{"COUNT": "0"}); err == nil {
				t.Fatal("Configure with COUNT=0 succeeded")
			}
			configure(t, p, nil)
			fire(t, p, 10*time.Second, update("k1", "ok"))
			// "fire result" is logged after sdk.Serve, through go-plugin's
			// stdio stream, which Close does not drain: wait for it.
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(logs.String(), `"msg":"fire result"`) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			p.Close() // waits for the process, and so for its last stderr lines
			var got []entry
			for _, e := range logs.entries(t) {
				if slices.Contains([]string{"bad options", "configured", "firing", "fire result"}, e.Msg) {
					got = append(got, e)
				}
			}
			// Lines logged before and after sdk.Serve reach the host by
			// different paths (stderr, go-plugin's stdio stream): unordered.
			byMsg := func(a, b entry) int { return strings.Compare(a.Msg, b.Msg) }
			slices.SortFunc(tc.want, byMsg)
			slices.SortFunc(got, byMsg)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plugin log lines at level %s (-want +got):\n%s", tc.level, diff)
			}
		})
	}
}

func TestCloseStopsProcesses(t *testing.T) {
	h, _ := newHost(t, Options{})
	var pids []int
	var plugins []*Plugin
	for range 3 {
		p := open(t, h, testSpec())
		if err := p.Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		pids = append(pids, p.Pid())
		plugins = append(plugins, p)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("process %d is not running before Close", pid)
		}
	}
	h.Close()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still runs after Close", pid)
		}
	}
	if r := fire(t, plugins[0], time.Second, update("a", ""))[0]; !errors.Is(r.Err, ErrClosed) {
		t.Errorf("Fire after Close = %v; want ErrClosed", r.Err)
	}
	if _, err := h.Open(context.Background(), testSpec(), "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close = %v; want ErrClosed", err)
	}
}

func TestRestartAfterExitBetweenCalls(t *testing.T) {
	h, _ := newHost(t, Options{})
	p := open(t, h, testSpec())
	file := filepath.Join(t.TempDir(), "state")
	configure(t, p, map[string]string{"STATE_FILE": file})
	first := p.Pid()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Ping(context.Background()) == nil && p.Pid() == first {
		if time.Now().After(deadline) {
			t.Fatal("Ping still succeeds on a killed process")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := fire(t, p, 10*time.Second, update("a", ""))[0]; r.Err != nil {
		t.Fatalf("Fire after the process was killed = %v; want OK", r.Err)
	}
	second := p.Pid()
	if second == first || !alive(second) {
		t.Errorf("Pid() = %d after a restart (was %d)", second, first)
	}
	if got := state(t, file); got[len(got)-2] != fmt.Sprintf("configure inst %d", second) {
		t.Errorf("the restarted process was not configured before Fire: %q", got)
	}
}

func TestRestartLimit(t *testing.T) {
	h, _ := newHost(t, Options{MaxRestarts: 2})
	p := open(t, h, testSpec())
	configure(t, p, map[string]string{"MODE": "crash"})
	want := []error{ErrExited, ErrExited, ErrExited, ErrRestartLimit}
	for i, w := range want {
		r := fire(t, p, 10*time.Second, update("a", ""))[0]
		if !errors.Is(r.Err, w) || sdk.IsPermanent(r.Err) {
			t.Fatalf("Fire #%d = %v; want a retryable %v", i+1, r.Err, w)
		}
	}
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(Prefix+"good", 0o755)
	write(Prefix+"noexec", 0o644)
	write(Prefix+"Upper", 0o755)
	write(Prefix+"with-dash", 0o755)
	write(Prefix, 0o755)
	write("other", 0o755)
	if err := os.Mkdir(filepath.Join(dir, Prefix+"dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, Prefix+"good"), filepath.Join(dir, Prefix+"link2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, Prefix+"dangling")); err != nil {
		t.Fatal(err)
	}

	h, logs := newHost(t, Options{Level: slog.LevelDebug})
	got, err := h.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []Spec{
		{Type: "good", Path: filepath.Join(dir, Prefix+"good")},
		{Type: "link2", Path: filepath.Join(dir, Prefix+"link2")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Discover (-want +got):\n%s", diff)
	}
	if n := strings.Count(logs.String(), "ignoring file in plugins folder"); n != 7 {
		t.Errorf("%d files logged as ignored, want 7:\n%s", n, logs)
	}

	if got, err := Discover(""); err != nil || got != nil {
		t.Errorf(`Discover("") = %v, %v; want nothing`, got, err)
	}
	missing := filepath.Join(dir, "nope")
	if _, err := Discover(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Discover(missing folder) = %v; want an error naming it", err)
	}
}

func TestBuiltins(t *testing.T) {
	got := Builtins("/usr/bin/tidewatch", "webhook", "email")
	want := []Spec{
		{Type: "webhook", Path: "/usr/bin/tidewatch", Args: []string{"trigger", "serve", "webhook"}, Builtin: true},
		{Type: "email", Path: "/usr/bin/tidewatch", Args: []string{"trigger", "serve", "email"}, Builtin: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Builtins (-want +got):\n%s", diff)
	}
}

func TestConcurrentFire(t *testing.T) {
	h, _ := newHost(t, Options{})
	p := open(t, h, testSpec())
	configure(t, p, nil)
	pid := p.Pid()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if r := p.Fire(ctx, []sdk.Update{update(fmt.Sprint(i), "")}); r[0].Err != nil {
				errs <- r[0].Err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Fire: %v", err)
	}
	if p.Pid() != pid {
		t.Errorf("Pid() = %d after concurrent calls, want the one process %d", p.Pid(), pid)
	}
}

func TestCloseDuringHang(t *testing.T) {
	h, _ := newHost(t, Options{})
	p := open(t, h, testSpec())
	file := filepath.Join(t.TempDir(), "state")
	configure(t, p, map[string]string{"MODE": "hang", "STATE_FILE": file})
	pid := p.Pid()
	done := make(chan sdk.Result, 1)
	go func() { done <- p.Fire(context.Background(), []sdk.Update{update("a", "")})[0] }()
	deadline := time.Now().Add(10 * time.Second)
	for len(state(t, file)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the plugin never saw the Fire")
		}
		time.Sleep(10 * time.Millisecond)
	}
	begin := time.Now()
	h.Close()
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("Close with a hanging call took %s", took)
	}
	if alive(pid) {
		t.Errorf("process %d still runs after Close", pid)
	}
	select {
	case r := <-done:
		if r.Err == nil || sdk.IsPermanent(r.Err) {
			t.Errorf("the hanging Fire cut short by Close = %v; want a retryable error", r.Err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the hanging Fire did not return after Close")
	}
}

// BenchmarkFire measures Fire of one update through a real plugin process,
// from 8 goroutines.
func BenchmarkFire(b *testing.B) {
	h := New(Options{}, nil)
	defer h.Close()
	p, err := h.Open(context.Background(), testSpec(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Configure(context.Background(), "bench", nil); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			begin := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r := p.Fire(ctx, []sdk.Update{update("k", "")})
			cancel()
			if r[0].Err != nil {
				b.Error(r[0].Err)
				return
			}
			mine = append(mine, time.Since(begin))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fires/s")
	}
}

// TestDiscoverRefusesWhatOthersMayWrite: a plugins folder, or a plugin, that
// someone else than tidewatch's user or root may change is refused, naming
// it; the trustworthy plugins beside it are still found.
func TestDiscoverRefusesWhatOthersMayWrite(t *testing.T) {
	write := func(dir, name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dir := t.TempDir()
	write(dir, Prefix+"good", 0o755)
	worldWritable := write(dir, Prefix+"world", 0o757)
	groupWritable := write(dir, Prefix+"group", 0o775)
	outside := t.TempDir()
	if err := os.Chmod(outside, 0o777); err != nil {
		t.Fatal(err)
	}
	target := write(outside, "plugin", 0o755)
	if err := os.Symlink(target, filepath.Join(dir, Prefix+"viaopenfolder")); err != nil {
		t.Fatal(err)
	}
	var otherOwner string
	if os.Geteuid() == 0 { // only root can give a file away
		otherOwner = write(dir, Prefix+"nobody", 0o755)
		if err := os.Chown(otherOwner, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Discover(dir)
	if len(got) != 1 || got[0].Type != "good" {
		t.Errorf("Discover = %+v, want only the good plugin", got)
	}
	for _, name := range []string{worldWritable, groupWritable, filepath.Join(dir, Prefix+"viaopenfolder"), otherOwner} {
		if name != "" && (err == nil || !strings.Contains(err.Error(), name)) {
			t.Errorf("Discover error = %v, want one naming %s", err, name)
		}
	}
	if otherOwner != "" && !strings.Contains(err.Error(), "owned by user 65534") {
		t.Errorf("Discover error = %v, want the owner named", err)
	}

	open := t.TempDir()
	write(open, Prefix+"good", 0o755)
	if err := os.Chmod(open, 0o775); err != nil {
		t.Fatal(err)
	}
	if got, err := Discover(open); err == nil || got != nil || !strings.Contains(err.Error(), open) || !strings.Contains(err.Error(), "writable by its group") {
		t.Errorf("Discover(group-writable folder) = %v, %v; want an error naming the folder", got, err)
	}
}
