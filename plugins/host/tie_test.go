package host

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// parentEnv makes the test binary act as tidewatch: it starts the plugin
// named by the variable, prints the plugin process's PID, and waits to be killed.
const parentEnv = "HOST_TEST_PARENT_OF"

func actAsParent() int {
	h := New(Options{}, slog.New(slog.DiscardHandler))
	p, err := h.Open(context.Background(), Spec{Type: "test", Path: os.Getenv(parentEnv)}, "inst")
	if err == nil {
		err = p.Ping(context.Background())
	}
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println(p.Pid())
	select {}
}

// gone reports whether process pid has exited (or is a zombie no one reaped).
func gone(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) == 0 || f[0] == "Z" || f[0] == "X"
}

// TestPluginDiesWithTidewatch: a plugin process is killed by the kernel
// when the tidewatch that started it is killed (SIGKILL: no chance to stop
// it), so that none goes on acting beside the tidewatch started next.
func TestPluginDiesWithTidewatch(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parent-death signals are Linux's")
	}
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), parentEnv+"="+testPlugin)
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("the parent printed %q (%v), want the plugin's PID", line, err)
	}
	if gone(pid) {
		t.Fatalf("plugin process %d is not running", pid)
	}
	_ = parent.Process.Signal(syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("plugin process %d still runs 5s after tidewatch was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPluginOutlivesEndedThreads: the parent-death signal follows the OS
// thread that started the process; threads that Go ends (a goroutine that
// exits while locked to its thread) must not take a plugin process with them.
func TestPluginOutlivesEndedThreads(t *testing.T) {
	h, _ := newHost(t, Options{})
	p := open(t, h, testSpec())
	if err := p.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // never unlocked: Go ends this thread when the goroutine exits
			time.Sleep(time.Millisecond)
		}()
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // the kernel delivers the signal at once; give it a moment to show
	if gone(pid) {
		t.Fatalf("plugin process %d died with an ended thread", pid)
	}
	if err := p.Ping(context.Background()); err != nil {
		t.Errorf("Ping after threads ended: %v", err)
	}
}
