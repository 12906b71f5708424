//go:build !unix

package rollout

import (
	"context"
	"errors"
	"os"
	"os/exec"
)

// errUnsupported: rollouts need flock(2) and process groups.
var errUnsupported = errors.New("rollouts need a Unix system (flock, process groups)")

// Process names a process; see the Unix build.
type Process struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start,omitempty"`
}

// Self is this process.
func Self() Process { return Process{PID: os.Getpid()} }

// ProcessOf returns the identity of the process pid.
func ProcessOf(pid int) (Process, error) { return Process{PID: pid}, errUnsupported }

// Alive reports false: it cannot be told here.
func (p Process) Alive() bool { return false }

// Lock is a rollout lock; see the Unix build.
type Lock struct{}

// Lock fails: there is no flock here.
func (j *Journal) Lock(context.Context, string) (*Lock, error) { return nil, errUnsupported }

// TryLock fails: there is no flock here.
func (j *Journal) TryLock(string) (*Lock, error) { return nil, errUnsupported }

// File returns nil.
func (l *Lock) File() *os.File { return nil }

// Unlock does nothing.
func (l *Lock) Unlock() {}

// RunTied fails.
func RunTied(context.Context, *exec.Cmd, func(Process)) error { return errUnsupported }
