//go:build unix

package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockPoll is how often Lock tries a lock another process holds.
const lockPoll = 100 * time.Millisecond

// Lock is a held rollout lock: an exclusive flock(2) on the key's lock file
// in the journal's folder. It holds across processes (every process that
// opens the same file in the same folder, whether tidewatch's plugin
// process, another instance's, or one a crash left behind) and within one
// (each Lock opens the file anew). The lock is the open file's: it is
// released when every process holding it open has closed it or ended, so
// that a child process given File keeps it until it ends too.
type Lock struct {
	f *os.File
}

// Lock takes key's lock, waiting until it is free or ctx ends. While it
// waits, processes left by a rollout whose owner died (a compose CLI whose
// plugin process was killed), still holding the lock, are killed: they
// belong to no one any more.
func (j *Journal) Lock(ctx context.Context, key string) (*Lock, error) {
	path := j.LockPath(key)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening rollout lock %s: %w", path, err)
	}
	for reaped := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !reaped {
			if rec, lerr := j.Load(key); lerr == nil && rec != nil {
				reapOrphans(rec, path)
			}
			reaped = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for rollout lock %s, held by another process: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// File is the open lock file. Handed to a child process (exec.Cmd's
// ExtraFiles), it makes the lock last until that process, and those it
// starts in turn, end too.
func (l *Lock) File() *os.File { return l.f }

// Unlock releases the lock (for this process; children given File keep it
// until they end). Calling it again does nothing.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	// Only closed, not LOCK_UN: that would release the lock of the open file
	// for the children sharing it too.
	_ = l.f.Close()
	l.f = nil
}
