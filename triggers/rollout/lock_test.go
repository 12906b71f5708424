//go:build unix

package rollout

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary a helper process instead of running tests.
const helperEnv = "TIDEWATCH_ROLLOUT_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "lock": // take the lock of key "k" in the folder given, say so, wait to be killed
		j, err := NewJournal(os.Getenv("JOURNAL"))
		if err == nil {
			_, err = j.Lock(context.Background(), "k")
		}
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		select {}
	case "tied": // run a sleep tied to this process, print its PID, wait to be killed
		cmd := exec.Command("sleep", "300")
		_ = RunTied(context.Background(), cmd, func(p Process) { fmt.Println(p.PID) })
		os.Exit(1)
	}
	os.Exit(2)
}

// helper starts the test binary as helper kind and returns it and the
// first line it prints.
func helper(t *testing.T, kind string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, helperEnv+"="+kind)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper %s printed nothing: %v", kind, err)
	}
	return cmd, strings.TrimSpace(line)
}

// waitGone waits until process pid has exited (or is a zombie), failing
// the test after timeout.
func waitGone(t *testing.T, pid int, timeout time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := readStat(pid); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still runs %s later", what, pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lockWithin(j *Journal, key string, d time.Duration) (*Lock, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return j.Lock(ctx, key)
}

// TestLockAcrossProcesses: a lock another process holds is waited for,
// and is free as soon as that process is killed.
func TestLockAcrossProcesses(t *testing.T) {
	j, _ := NewJournal(t.TempDir())
	h, line := helper(t, "lock", "JOURNAL="+j.Dir())
	if line != "locked" {
		t.Fatalf("helper: %s", line)
	}
	if l, err := lockWithin(j, "k", 300*time.Millisecond); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		l.Unlock()
		t.Fatalf("Lock while another process holds it = %v, want a wait that ends with the deadline", err)
	}
	if l, err := lockWithin(j, "other", time.Second); err != nil {
		t.Errorf("another key's lock: %v", err)
	} else {
		l.Unlock()
	}
	_ = h.Process.Signal(syscall.SIGKILL)
	began := time.Now()
	l, err := lockWithin(j, "k", 5*time.Second)
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	defer l.Unlock()
	t.Logf("the lock was free %s after the holder was killed", time.Since(began).Round(time.Millisecond))
}

// TestLockWithinProcess: two Locks of one key in one process exclude each other.
func TestLockWithinProcess(t *testing.T) {
	j, _ := NewJournal(t.TempDir())
	first, err := lockWithin(j, "k", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := lockWithin(j, "k", 200*time.Millisecond); err == nil {
		l.Unlock()
		t.Fatal("a second Lock in the same process got the held lock")
	}
	first.Unlock()
	first.Unlock() // twice is harmless
	l, err := lockWithin(j, "k", time.Second)
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	l.Unlock()
}

// TestLockHeldByChildren: a child given the lock file, and the child it
// starts in turn, keep the lock after the parent lets go, until they end:
// an orphaned compose CLI keeps a resumed rollout waiting.
func TestLockHeldByChildren(t *testing.T) {
	j, _ := NewJournal(t.TempDir())
	l, err := lockWithin(j, "k", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "sleep 1.5 & wait")
	cmd.ExtraFiles = []*os.File{l.File()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	l.Unlock()
	if other, err := lockWithin(j, "k", 500*time.Millisecond); err == nil {
		other.Unlock()
		t.Fatal("the lock was free while a child holding it ran")
	}
	other, err := lockWithin(j, "k", 10*time.Second)
	if err != nil {
		t.Fatalf("Lock after the child ended: %v", err)
	}
	other.Unlock()
	_ = cmd.Wait()
	if took := time.Since(began); took < 1400*time.Millisecond {
		t.Errorf("the lock was free after %s, before the grandchild's 1.5s sleep ended", took)
	}
}

// TestLockReapsOrphans: a lock held by processes of a rollout whose owner
// died is taken from them (they are killed); one whose owner lives is waited for.
func TestLockReapsOrphans(t *testing.T) {
	j, _ := NewJournal(t.TempDir())
	l, err := lockWithin(j, "k", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.ExtraFiles = []*os.File{l.File()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	reaped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(reaped) }()
	l.Unlock()
	orphan, err := ProcessOf(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	rec := &Record{Key: "d1", Target: "p/s", Phase: PhaseApplying, Processes: []Process{orphan}, Owner: Self()}
	if err := j.Save("k", rec); err != nil {
		t.Fatal(err)
	}
	if other, err := lockWithin(j, "k", 400*time.Millisecond); err == nil {
		other.Unlock()
		t.Fatal("got the lock from the processes of a rollout whose owner lives")
	}
	if !orphan.Alive() {
		t.Fatal("a live owner's process was killed")
	}
	dead := deadProcess(t)
	rec.Owner = dead
	if err := j.Save("k", rec); err != nil {
		t.Fatal(err)
	}
	other, err := lockWithin(j, "k", 5*time.Second)
	if err != nil {
		t.Fatalf("Lock with the owner dead: %v", err)
	}
	other.Unlock()
	select {
	case <-reaped:
	case <-time.After(5 * time.Second):
		t.Fatal("the orphan still runs")
	}
}

// deadProcess returns the identity of a process that ran and ended.
func deadProcess(t *testing.T) Process {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p, err := ProcessOf(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if p.Alive() {
		t.Fatal("a reaped process is alive")
	}
	return p
}

// TestRunTiedDiesWithParent: a child started with RunTied is killed when
// the process that started it is killed (Linux: the parent-death signal).
func TestRunTiedDiesWithParent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parent-death signals are Linux's")
	}
	h, line := helper(t, "tied")
	pid, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("helper printed %q, want a PID", line)
	}
	st, err := readStat(pid)
	if err != nil || st.pgid != pid {
		t.Errorf("the tied child's process group = %d (%v), want its own (%d)", st.pgid, err, pid)
	}
	_ = h.Process.Signal(syscall.SIGKILL)
	waitGone(t, pid, 5*time.Second, "the child of a killed process")
}

// TestRunTiedContext: when ctx ends, the child's whole process group is
// killed, its own children too.
func TestRunTiedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.Command("sh", "-c", "sleep 300 & echo $!; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var started Process
	go func() { done <- RunTied(ctx, cmd, func(p Process) { started = p }) }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	grandchild, _ := strconv.Atoi(strings.TrimSpace(line))
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("RunTied after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunTied did not return after its context ended")
	}
	if started.PID != cmd.Process.Pid {
		t.Errorf("started got %+v, want the child's PID %d", started, cmd.Process.Pid)
	}
	waitGone(t, grandchild, 5*time.Second, "the child's own child")
}

func TestReadStatOddNames(t *testing.T) {
	// A command name with spaces and parentheses: the fields after the last ')'.
	dir := t.TempDir()
	exe := dir + "/a) (b c"
	if err := os.Symlink("/bin/sleep", exe); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	p, err := ProcessOf(cmd.Process.Pid)
	if err != nil || p.Start == 0 || !p.Alive() {
		t.Errorf("ProcessOf(%q) = %+v, %v; want its start time, alive", exe, p, err)
	}
	if (Process{PID: p.PID, Start: p.Start + 1}).Alive() {
		t.Errorf("a process with another start time is taken for alive")
	}
}

// TestUnlockRemovesLockFile: the lock file exists while the lock is held
// and is gone once it is released; a child given the file keeps it (and
// the lock) until it ends, and the next holder's Unlock removes it.
func TestUnlockRemovesLockFile(t *testing.T) {
	j, _ := NewJournal(t.TempDir())
	l, err := lockWithin(j, "k", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(j.LockPath("k")); err != nil {
		t.Fatalf("the lock file while the lock is held: %v", err)
	}
	l.Unlock()
	if _, err := os.Stat(j.LockPath("k")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the lock file after Unlock: %v, want it gone", err)
	}

	l, err = lockWithin(j, "k", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "1")
	cmd.ExtraFiles = []*os.File{l.File()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	if _, err := os.Stat(j.LockPath("k")); err != nil {
		t.Fatalf("the lock file was removed while a child holding it runs: %v", err)
	}
	_ = cmd.Wait()
	l, err = lockWithin(j, "k", 5*time.Second)
	if err != nil {
		t.Fatalf("Lock after the child ended: %v", err)
	}
	l.Unlock()
	if _, err := os.Stat(j.LockPath("k")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the lock file after the next Unlock: %v, want it gone", err)
	}
}

// TestLockExcludesDespiteRemoval: many lockers of one key, each removing
// the file as it lets go while others wait on it, never hold the lock at
// the same time (a waiter that got the lock of a removed file starts over).
func TestLockExcludesDespiteRemoval(t *testing.T) {
	j, _ := NewJournal(t.TempDir())
	const lockers, rounds = 6, 20
	var held, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range lockers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				l, err := lockWithin(j, "k", 30*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				if held.Add(1) != 1 {
					overlaps.Add(1)
				}
				time.Sleep(2 * time.Millisecond) // the holder's work: others wait on the file meanwhile
				held.Add(-1)
				l.Unlock()
			}
		}()
	}
	wg.Wait()
	if n := overlaps.Load(); n > 0 {
		t.Errorf("the lock was held by two lockers at once %d times", n)
	}
	if _, err := os.Stat(j.LockPath("k")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock file after the last Unlock: %v, want it gone", err)
	}
}

// TestTryLock: TryLock takes a free lock and fails with ErrBusy at once
// when another holds it.
func TestTryLock(t *testing.T) {
	j, _ := NewJournal(t.TempDir())
	l, err := j.TryLock("k")
	if err != nil {
		t.Fatalf("TryLock of a free lock: %v", err)
	}
	began := time.Now()
	if other, err := j.TryLock("k"); !errors.Is(err, ErrBusy) {
		other.Unlock()
		t.Fatalf("TryLock of a held lock = %v, want ErrBusy", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("TryLock of a held lock took %s", took)
	}
	l.Unlock()
	if l, err = j.TryLock("k"); err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	l.Unlock()
}

// TestLockWaiterOnRemovedFile: a waiter that opened the lock file before
// its holder removed it does not take the lock of that removed file while
// another holds the path's new one.
func TestLockWaiterOnRemovedFile(t *testing.T) {
	j, _ := NewJournal(t.TempDir())
	first, err := lockWithin(j, "k", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Lock, 1)
	go func() {
		l, err := lockWithin(j, "k", 30*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	waitUntilOpen(t, j.LockPath("k"), 2) // the waiter has the old file open
	first.Unlock()                       // removes it
	third, err := j.TryLock("k")         // a new file under the path
	if err != nil {
		t.Fatalf("TryLock once the first holder let go: %v", err)
	}
	select {
	case l := <-got:
		l.Unlock()
		t.Fatal("the waiter got the lock of the removed file while another held the path's")
	case <-time.After(500 * time.Millisecond):
	}
	third.Unlock()
	select {
	case l := <-got:
		l.Unlock()
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter never got the lock")
	}
}

// waitUntilOpen waits until this process has path open n times.
func waitUntilOpen(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ents, _ := os.ReadDir("/proc/self/fd")
		open := 0
		for _, e := range ents {
			if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == path {
				open++
			}
		}
		if open >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is open %d times, want %d", path, open, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
