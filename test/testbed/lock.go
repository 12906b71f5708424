package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// The engine lock keeps test processes from using the engine while another
// one has stopped it. `go test ./...` runs several packages' test binaries at
// once; every one that calls Require holds engine.lock shared for its life,
// and StopEngine takes it exclusive, so an engine restart waits until the other
// binaries are done and they wait until it is back. A writer first takes
// engine.gate exclusive, and readers pass through engine.gate shared, so new
// readers do not starve a waiting writer.

var engineLock struct {
	sync.Mutex
	lock *os.File // engine.lock, held shared (or exclusive while the engine is stopped)
	gate *os.File // engine.gate, held exclusive while the engine is stopped
}

// lockTimeout bounds a wait for the engine lock. A writer (swarm mode, an
// engine restart) waits until every other test binary that holds the lock
// shared has ended, and `go test` runs as many binaries at once as there are
// cores: the wait is as long as the longest test package (test/system, 11–14
// minutes on a loaded 2-core machine). It stays below the Makefile's
// per-package -timeout (45m), so a stuck lock fails a test, not the binary.
const lockTimeout = 35 * time.Minute

// holdEngineShared takes engine.lock shared for the rest of this process, once.
func holdEngineShared(ctx context.Context, dir string) error {
	engineLock.Lock()
	defer engineLock.Unlock()
	if engineLock.lock != nil {
		return nil
	}
	gate, err := os.OpenFile(filepath.Join(dir, "engine.gate"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening engine gate: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "engine.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		gate.Close()
		return fmt.Errorf("opening engine lock: %w", err)
	}
	if err := flock(ctx, gate, syscall.LOCK_SH); err != nil {
		gate.Close()
		lock.Close()
		return err
	}
	err = flock(ctx, lock, syscall.LOCK_SH)
	_ = syscall.Flock(int(gate.Fd()), syscall.LOCK_UN)
	if err != nil {
		gate.Close()
		lock.Close()
		return err
	}
	engineLock.lock, engineLock.gate = lock, gate
	return nil
}

// takeEngineExclusive waits until no other test process uses the engine.
func takeEngineExclusive(ctx context.Context) error {
	engineLock.Lock()
	defer engineLock.Unlock()
	if engineLock.lock == nil {
		return fmt.Errorf("taking engine lock: not held shared; call Require first")
	}
	// Drop our shared hold first: two writers that each kept theirs would wait for each other.
	_ = syscall.Flock(int(engineLock.lock.Fd()), syscall.LOCK_UN)
	if err := flock(ctx, engineLock.gate, syscall.LOCK_EX); err != nil {
		_ = flock(context.WithoutCancel(ctx), engineLock.lock, syscall.LOCK_SH)
		return err
	}
	if err := flock(ctx, engineLock.lock, syscall.LOCK_EX); err != nil {
		_ = syscall.Flock(int(engineLock.gate.Fd()), syscall.LOCK_UN)
		_ = flock(context.WithoutCancel(ctx), engineLock.lock, syscall.LOCK_SH)
		return err
	}
	return nil
}

// releaseEngineExclusive goes back to a shared hold and opens the gate.
func releaseEngineExclusive() {
	engineLock.Lock()
	defer engineLock.Unlock()
	if engineLock.lock == nil {
		return
	}
	_ = syscall.Flock(int(engineLock.lock.Fd()), syscall.LOCK_SH)
	_ = syscall.Flock(int(engineLock.gate.Fd()), syscall.LOCK_UN)
}

// flock takes how on f, polling so that it gives up when ctx ends or after lockTimeout.
func flock(ctx context.Context, f *os.File, how int) error {
	var err error
	ok := waitFor(ctx, lockTimeout, func() bool {
		err = syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		return err == nil
	})
	if !ok {
		return fmt.Errorf("locking %s: waited %s or was cancelled: %w", filepath.Base(f.Name()), lockTimeout, err)
	}
	return nil
}
