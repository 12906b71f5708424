//go:build unix

package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
//
// The lock file exists only while a rollout holds it: Unlock removes it,
// still holding the lock, unless a child process given File still holds
// it open. A process that was waiting on the file removed meanwhile finds,
// once it has the lock, that the path no longer names the file it locked
// (another inode, or none), and starts over with the path's file.
type Lock struct {
	f      *os.File
	path   string
	shared bool // File was handed out: children may hold the lock too
}

// Lock takes key's lock, waiting until it is free or ctx ends. While it
// waits, processes left by a rollout whose owner died (a compose CLI whose
// plugin process was killed), still holding the lock, are killed: they
// belong to no one any more.
func (j *Journal) Lock(ctx context.Context, key string) (*Lock, error) {
	return j.lock(ctx, key, true)
}

// TryLock takes key's lock when it is free, and fails with ErrBusy when
// another rollout holds it, without waiting.
func (j *Journal) TryLock(key string) (*Lock, error) {
	return j.lock(context.Background(), key, false)
}

func (j *Journal) lock(ctx context.Context, key string, wait bool) (*Lock, error) {
	path := j.LockPath(key)
	reaped := false
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening rollout lock %s: %w", path, err)
		}
		for {
			err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
				f.Close()
				return nil, fmt.Errorf("locking %s: %w", path, err)
			}
			if !wait {
				f.Close()
				return nil, fmt.Errorf("locking %s: %w", path, ErrBusy)
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
		same, err := sameFile(f, path)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if same {
			return &Lock{f: f, path: path}, nil
		}
		// The holder removed the file as it let go: this lock guards
		// nothing any more; the path's file (or a new one) is the lock.
		f.Close()
	}
}

// sameFile reports whether path still names the file f has open.
func sameFile(f *os.File, path string) (bool, error) {
	held, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(held, now), nil
}

// File is the open lock file. Handed to a child process (exec.Cmd's
// ExtraFiles), it makes the lock last until that process, and those it
// starts in turn, end too.
func (l *Lock) File() *os.File {
	l.shared = true
	return l.f
}

// Unlock releases the lock (for this process; children given File keep it
// until they end) and removes the lock file, while still holding the lock,
// unless such a child still has it open. Calling it again does nothing.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	if !l.shared || !openElsewhere(l.f) {
		if same, err := sameFile(l.f, l.path); err == nil && same {
			_ = os.Remove(l.path)
		}
	}
	// Only closed, not LOCK_UN: that would release the lock of the open file
	// for the children sharing it too.
	_ = l.f.Close()
	l.f = nil
}

// openElsewhere reports whether another process has f's file open (a child
// given the lock file, or one it started). When that cannot be told, it
// says yes: the file then stays, which is always safe.
func openElsewhere(f *os.File) bool {
	held, err := f.Stat()
	if err != nil {
		return true
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil || p.Name() == self {
			continue
		}
		dir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or not ours to read (then not our child either)
		}
		for _, fd := range fds {
			if st, err := os.Stat(filepath.Join(dir, fd.Name())); err == nil && os.SameFile(held, st) {
				return true
			}
		}
	}
	return false
}
