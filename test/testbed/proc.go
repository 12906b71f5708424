package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// startProcess starts args in its own process group with stdin from /dev/null
// and its output appended to logPath, so that it outlives the caller and holds
// none of the caller's pipes open. The child is reaped in the background.
// exited is closed when it ends, while this process is its parent.
func startProcess(args []string, logPath string) (p *Process, exited <-chan struct{}, err error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("opening log of %s: %w", args[0], err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n--- %s starting: %s\n", time.Now().Format(time.RFC3339), strings.Join(args, " "))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting %s: %w", args[0], err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return &Process{PID: cmd.Process.Pid, Args: args, Log: logPath}, done, nil
}

// alive tells whether p still runs: it exists, is no zombie, and its command
// line still starts with the same program (so a reused PID does not count).
func (p *Process) alive() bool {
	if p == nil || p.PID <= 0 {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		if s := stat[i+2]; s == 'Z' || s == 'X' {
			return false
		}
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
	if err != nil {
		return false
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return len(p.Args) > 0 && filepath.Base(string(argv0)) == filepath.Base(p.Args[0])
}

// stop sends SIGTERM to p's process group, waits up to grace for p to end,
// then sends SIGKILL to the group and waits a little more.
func (p *Process) stop(ctx context.Context, grace time.Duration) error {
	if !p.alive() {
		return nil
	}
	name := filepath.Base(p.Args[0])
	if err := syscall.Kill(-p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping %s (pid %d): %w", name, p.PID, err)
	}
	if waitFor(ctx, grace, func() bool { return !p.alive() }) {
		return nil
	}
	if err := syscall.Kill(-p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s (pid %d): %w", name, p.PID, err)
	}
	if waitFor(ctx, 10*time.Second, func() bool { return !p.alive() }) {
		return nil
	}
	return fmt.Errorf("stopping %s (pid %d): still running after SIGKILL", name, p.PID)
}

// waitFor polls cond every 100ms until it holds (true), or until timeout or
// ctx ends (false).
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
}

// logTail returns the last n bytes of the file at path, for error messages.
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, 0)
	}
	b := make([]byte, n)
	k, _ := f.Read(b)
	return strings.TrimSpace(string(b[:k]))
}
