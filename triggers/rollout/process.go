//go:build unix

package rollout

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Process names a process across PID reuse: its ID and the time it
// started, in clock ticks since boot (field 22 of /proc/<pid>/stat).
type Process struct {
	// PID is the process's ID; for a process started by RunTied, also its
	// process group's.
	PID int `json:"pid"`
	// Start is when it started; 0 when unknown (not Linux).
	Start uint64 `json:"start,omitempty"`
}

// Self is this process.
func Self() Process {
	p, _ := ProcessOf(os.Getpid())
	return p
}

// ProcessOf returns the identity of the running process pid.
func ProcessOf(pid int) (Process, error) {
	st, err := readStat(pid)
	if err != nil {
		return Process{PID: pid}, err
	}
	return Process{PID: pid, Start: st.start}, nil
}

// Alive reports whether p still runs: a process with its ID that started
// when it did. A zero Process is not alive.
func (p Process) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	st, err := readStat(p.PID)
	if err != nil {
		return false
	}
	return p.Start == 0 || st.start == p.Start
}

// stat is what a rollout reads of /proc/<pid>/stat.
type stat struct {
	pgid  int
	start uint64
	state byte
}

// readStat reads /proc/<pid>/stat. The command name is in parentheses and
// may hold anything, spaces and parentheses included: the fields are read
// after its last ')'.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return stat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("reading /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); pgid is field 5, starttime field 22.
	if len(f) < 20 {
		return stat{}, fmt.Errorf("reading /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	pgid, err1 := strconv.Atoi(f[2])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || len(f[0]) != 1 {
		return stat{}, fmt.Errorf("reading /proc/%d/stat: unexpected fields", pid)
	}
	if f[0][0] == 'Z' || f[0][0] == 'X' {
		return stat{}, fmt.Errorf("process %d has exited", pid)
	}
	return stat{pgid: pgid, start: start, state: f[0][0]}, nil
}

// reapOrphans kills what a rollout whose owner died left running: the
// processes of the groups it recorded (started after the group's leader)
// that still hold its lock file open. Holding that file is what makes them
// the rollout's for sure; a live owner keeps its processes.
func reapOrphans(rec *Record, lockPath string) (killed []int) {
	if len(rec.Processes) == 0 || rec.Owner.Alive() {
		return nil
	}
	if real, err := filepath.EvalSymlinks(lockPath); err == nil {
		lockPath = real // as /proc/<pid>/fd shows it
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		for _, g := range rec.Processes {
			if st.pgid == g.PID && st.start >= g.Start && holdsOpen(pid, lockPath) {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					killed = append(killed, pid)
				}
				break
			}
		}
	}
	return killed
}

// holdsOpen reports whether process pid has path open.
func holdsOpen(pid int, path string) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && target == path {
			return true
		}
	}
	return false
}

// RunTied runs cmd to its end tied to this process: in a process group of
// its own, killed (the whole group) when ctx ends, and, on Linux, killed by
// the kernel when this process dies (a parent-death signal). Go delivers
// that signal when the OS thread that started the child ends, not the
// process, so cmd is started and waited for on a thread locked for the
// while. started, when not nil, is called with the child's identity as soon
// as it runs (to record it). cmd must have been made with exec.Command, not
// CommandContext.
func RunTied(ctx context.Context, cmd *exec.Cmd, started func(Process)) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	tieToParent(cmd.SysProcAttr)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			done <- err
			return
		}
		waited := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			case <-waited:
			}
		}()
		if started != nil {
			p, _ := ProcessOf(cmd.Process.Pid)
			started(p)
		}
		err := cmd.Wait()
		close(waited)
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		done <- err
	}()
	return <-done
}
