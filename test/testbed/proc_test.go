package testbed

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProcessStop(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		grace time.Duration
		// minWait is the least time stop must take: a process that ignores
		// SIGTERM is only gone after the grace period and SIGKILL.
		minWait time.Duration
	}{
		{name: "ends on SIGTERM", args: []string{"sh", "-c", `echo ready; sleep 30`}, grace: 10 * time.Second},
		{name: "ignores SIGTERM", args: []string{"sh", "-c", `trap "" TERM; echo ready; sleep 30`}, grace: 500 * time.Millisecond, minWait: 500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bin, err := exec.LookPath(tc.args[0])
			if err != nil {
				t.Skipf("%s not found", tc.args[0])
			}
			args := append([]string{bin}, tc.args[1:]...)
			logPath := filepath.Join(t.TempDir(), "log")
			p, exited, err := startProcess(args, logPath)
			if err != nil {
				t.Fatalf("startProcess(%v): %v", args, err)
			}
			t.Cleanup(func() { _ = p.stop(context.Background(), time.Second) })
			ready := func() bool { return strings.HasSuffix(logTail(logPath, 100), "ready") }
			if !waitFor(t.Context(), 5*time.Second, ready) {
				t.Fatalf("process %v (pid %d) did not say ready; log: %s", args, p.PID, logTail(logPath, 500))
			}
			if !p.alive() {
				t.Fatalf("process %v (pid %d) not alive after start", args, p.PID)
			}
			start := time.Now()
			if err := p.stop(t.Context(), tc.grace); err != nil {
				t.Fatalf("stop: %v", err)
			}
			took := time.Since(start)
			if p.alive() {
				t.Errorf("process %d alive after stop", p.PID)
			}
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				t.Errorf("process %d not reaped after stop", p.PID)
			}
			if took < tc.minWait {
				t.Errorf("stop took %s, want at least %s (the grace period before SIGKILL)", took, tc.minWait)
			}
		})
	}
}

func TestProcessAliveChecksProgram(t *testing.T) {
	self := &Process{PID: os.Getpid(), Args: []string{os.Args[0]}}
	if !self.alive() {
		t.Errorf("alive() = false for this test process, want true")
	}
	other := &Process{PID: os.Getpid(), Args: []string{"/usr/sbin/dockerd"}}
	if other.alive() {
		t.Errorf("alive() = true for this process recorded as dockerd, want false (a reused PID)")
	}
	if (&Process{}).alive() || (*Process)(nil).alive() {
		t.Errorf("alive() = true for an empty process, want false")
	}
}

// TestRegistryUpDown starts a real docker-registry the way Up does, pushes
// nothing, and checks that Down stops it and removes its storage and state.
func TestRegistryUpDown(t *testing.T) {
	bin, err := lookCommand("docker-registry")
	if err != nil {
		MissingPart(t, PartRegistry, err)
	}
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	st := &State{ID: newID(), Dir: dir, StartedAt: time.Now(), RegistryData: filepath.Join(dir, "registry-data"),
		Parts: map[string]string{PartRegistry: bin}}
	if err := st.startRegistry(ctx, log); err != nil {
		t.Fatalf("startRegistry: %v", err)
	}
	t.Cleanup(func() { _ = st.RegistryProcess.stop(context.Background(), time.Second) })
	if err := PingRegistry(ctx, st.Registry); err != nil {
		t.Fatalf("registry does not answer after start: %v", err)
	}
	if err := st.write(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if got.Registry != st.Registry || got.RegistryProcess.PID != st.RegistryProcess.PID {
		t.Errorf("ReadState = registry %s pid %d, want %s pid %d", got.Registry, got.RegistryProcess.PID, st.Registry, st.RegistryProcess.PID)
	}

	if err := Down(ctx, dir, log); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if st.RegistryProcess.alive() {
		t.Errorf("registry pid %d alive after Down", st.RegistryProcess.PID)
	}
	if err := PingRegistry(ctx, st.Registry); err == nil {
		t.Errorf("registry %s answers after Down", st.Registry)
	}
	for _, p := range []string{st.RegistryData, filepath.Join(dir, StateFile)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after Down: stat error %v, want it gone", p, err)
		}
	}
	if err := Down(ctx, dir, log); err != nil {
		t.Errorf("second Down: %v, want nil (nothing to stop)", err)
	}
}

func TestFindState(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, StateFile)
	t.Setenv(EnvState, path)
	if _, err := FindState(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FindState() with a missing file: error %v, want os.ErrNotExist", err)
	}
	if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := FindState(); err != nil || got != path {
		t.Errorf("FindState() = %q, %v, want %q, nil", got, err, path)
	}
}

// TestMQTTUpDown starts a real mosquitto the way Up does, in a state folder
// of its own, and checks what the state records (two listeners on
// 127.0.0.1, the user, a CA file, a password file only its owner reads),
// that the user is accepted on both listeners, and that Down stops the
// broker and removes its folder.
func TestMQTTUpDown(t *testing.T) {
	parts := map[string]string{}
	for _, name := range []string{PartMosquitto, PartMosquittoPasswd} {
		p, err := lookCommand(name)
		if err != nil {
			MissingPart(t, name, err)
		}
		parts[name] = p
	}
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	st := &State{ID: newID(), Dir: dir, StartedAt: time.Now(), Parts: parts}
	if err := st.startMQTT(ctx, log); err != nil {
		t.Fatalf("startMQTT: %v", err)
	}
	t.Cleanup(func() { _ = st.MQTTProcess.stop(context.Background(), time.Second) })
	if err := st.write(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if got.MQTTAddr == "" || got.MQTTTLSAddr == "" || got.MQTTAddr == got.MQTTTLSAddr || got.MQTTUser == "" || got.MQTTPassword == "" || got.MQTTCAFile == "" {
		t.Fatalf("state records broker %q, TLS %q, user %q, password set %v, CA %q; want two listeners, a user, a password and a CA",
			got.MQTTAddr, got.MQTTTLSAddr, got.MQTTUser, got.MQTTPassword != "", got.MQTTCAFile)
	}
	if !got.mqttHealthy(ctx) {
		t.Errorf("the broker of the state is not healthy after start")
	}
	if info, err := os.Stat(filepath.Join(st.MQTTData, "passwd")); err != nil {
		t.Errorf("password file: %v", err)
	} else if info.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v, want 0600", info.Mode().Perm())
	}
	if err := Down(ctx, dir, log); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if st.MQTTProcess.alive() {
		t.Errorf("mosquitto pid %d alive after Down", st.MQTTProcess.PID)
	}
	if code, err := mqttConnect(ctx, st.MQTTAddr, nil, st.MQTTUser, st.MQTTPassword); err == nil {
		t.Errorf("broker %s answers CONNACK %d after Down", st.MQTTAddr, code)
	}
	if _, err := os.Stat(st.MQTTData); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Down: stat error %v, want it gone", st.MQTTData, err)
	}
}
