package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// helperEnv makes the test binary play a part of TestCtrlCStopsDemo instead
// of running the tests: "run" is bedctl run without the bed (takeTerminal
// and runCommand, the code that run uses), "demo" a demo that waits for
// Ctrl-C, "fg" a check that the terminal came back to make's group.
const helperEnv = "BEDCTL_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "run":
		os.Exit(helperRun())
	case "demo":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		fmt.Println("demo ready")
		<-ctx.Done()
		fmt.Println("demo stopped")
		os.Exit(0)
	case "fg":
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			fmt.Println("foreground: no terminal:", err)
			os.Exit(1)
		}
		fg, err := tcgetpgrp(int(tty.Fd()))
		fmt.Printf("foreground: %v (terminal's group %d, make's %d, err %v)\n", err == nil && fg == syscall.Getpgrp(), fg, syscall.Getpgrp(), err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperRun is bedctl run -- DEMO without the bed.
func helperRun() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	took := false
	if os.Getenv("BEDCTL_TEST_NO_TERMINAL") != "1" {
		restore, ok, err := takeTerminal()
		if err != nil {
			log.Error("taking the terminal", "err", err)
			return 1
		}
		defer restore()
		took = ok
	}
	fmt.Println("bedctl took the terminal:", took)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	self, err := os.Executable()
	if err != nil {
		return 1
	}
	env := append(os.Environ(), helperEnv+"=demo")
	return runCommand([]string{self}, env, sigs, took, log)
}

// TestCtrlCStopsDemo runs make on a pseudo-terminal, as a person does at a
// shell, with a recipe that runs bedctl run's terminal handling around a
// demo, and presses Ctrl-C once the demo is ready. With bedctl taking the
// terminal, make exits 0 with no error line, the demo says it stopped, and
// the terminal is make's again afterwards. Without it (the old way) make
// gets the Ctrl-C too and fails.
func TestCtrlCStopsDemo(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		terminal bool // bedctl takes the terminal
		wantOK   bool
	}{
		{name: "bedctl takes the terminal: make exits 0", terminal: true, wantOK: true},
		{name: "without: make gets Ctrl-C and fails", terminal: false, wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			noTerminal := ""
			if !tc.terminal {
				noTerminal = "BEDCTL_TEST_NO_TERMINAL=1 "
			}
			mk := fmt.Sprintf("demo:\n\t%s%s=run %s\n\t@%s=fg %s\n", noTerminal, helperEnv, self, helperEnv, self)
			if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o644); err != nil {
				t.Fatal(err)
			}
			master, slave := openPTY(t)
			cmd := exec.Command(makeBin, "-C", dir, "demo")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
			cmd.Env = append(os.Environ(), "MAKEFLAGS=")
			// make leads a session on the terminal: its group is the foreground
			// one, which is what a shell gives the job it starts.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Start(); err != nil {
				t.Fatalf("starting make: %v", err)
			}
			slave.Close()
			out := &syncBuffer{}
			go func() { _, _ = io.Copy(out, master) }()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			if !pollFor(10*time.Second, func() bool { return strings.Contains(out.String(), "demo ready") }) {
				t.Fatalf("the demo did not get ready; output:\n%s", out.String())
			}
			if _, err := master.Write([]byte{0x03}); err != nil { // Ctrl-C
				t.Fatal(err)
			}
			var waitErr error
			select {
			case waitErr = <-exited:
			case <-time.After(20 * time.Second):
				t.Fatalf("make did not end within 20s of Ctrl-C; output:\n%s", out.String())
			}
			pollFor(2*time.Second, func() bool { return strings.Contains(out.String(), "foreground:") || waitErr != nil })
			text := out.String()
			t.Logf("make: %v; output:\n%s", waitErr, text)
			ok := waitErr == nil
			if ok != tc.wantOK {
				t.Fatalf("make ended with %v, want success %v; output:\n%s", waitErr, tc.wantOK, text)
			}
			if !tc.wantOK {
				return
			}
			for _, want := range []string{"bedctl took the terminal: true", "demo stopped", "foreground: true"} {
				if !strings.Contains(text, want) {
					t.Errorf("output lacks %q; output:\n%s", want, text)
				}
			}
			for _, bad := range []string{"***", "Interrupt", "Error"} {
				if strings.Contains(text, bad) {
					t.Errorf("output holds %q; output:\n%s", bad, text)
				}
			}
		})
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatalf("unlocking the pseudo-terminal: %v", errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("naming the pseudo-terminal: %v", errno)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pseudo-terminal: %v", err)
	}
	return master, slave
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pollFor polls cond every 20ms until it holds or timeout passes.
func pollFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
