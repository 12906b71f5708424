package testbed

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// Bed is the running test bed as a test sees it.
type Bed struct {
	// DockerHost is the engine's address, e.g. unix:///var/run/docker.sock.
	DockerHost string
	// Registry is the registry's host and port, e.g. 127.0.0.1:41234; it speaks
	// plain HTTP and needs no auth.
	Registry string
	// State is the recorded state of the bed.
	State *State

	statePath string

	mu         sync.Mutex
	docker     *client.Client
	engineDown bool // StopEngine ran and StartEngine has not yet
}

// Require returns the running test bed. When none runs it fails the test if
// TIDEWATCH_TESTBED_REQUIRED=1 or CI=true, and skips it otherwise. It fails
// the test when the bed is recorded but its engine does not answer. It may
// wait while another test process has the engine stopped.
func Require(t testing.TB) *Bed {
	t.Helper()
	path, err := FindState()
	if errors.Is(err, os.ErrNotExist) {
		if Required() {
			t.Fatalf("test bed not running (%v); run make test, or go run ./test/bedctl up", err)
		}
		t.Skip("test bed not running: run make test")
	}
	if err != nil {
		t.Fatalf("finding test bed: %v", err)
	}
	st, err := ReadState(path)
	if err != nil {
		t.Fatalf("reading test bed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lockTimeout)
	defer cancel()
	if err := holdEngineShared(ctx, st.Dir); err != nil {
		t.Fatalf("waiting for the test bed's engine: %v", err)
	}
	// The engine may just have been restarted by another test process: read the state again.
	if st, err = ReadState(path); err != nil {
		t.Fatalf("reading test bed: %v", err)
	}
	b := &Bed{DockerHost: st.DockerHost, Registry: st.Registry, State: st, statePath: path}
	pingCtx, pingCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pingCancel()
	if err := PingEngine(pingCtx, st.DockerHost); err != nil {
		if !st.StartedEngine || st.Engine.alive() {
			t.Fatalf("test bed engine does not answer: %v", err)
		}
		// A test process that stopped the engine died before starting it again.
		t.Logf("test bed engine (pid %d) is gone: starting it again", st.Engine.PID)
		b.StartEngine(t)
	}
	if err := PingRegistry(pingCtx, st.Registry); err != nil {
		t.Fatalf("test bed registry does not answer: %v", err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.docker != nil {
			b.docker.Close()
		}
	})
	return b
}

// Docker returns a client of the bed's engine, API version negotiated. It is
// closed when the test ends.
func (b *Bed) Docker() *client.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.docker == nil {
		cli, err := newClient(b.DockerHost)
		if err != nil {
			panic(err) // only malformed hosts fail here, and Require checked the host answers
		}
		b.docker = cli
	}
	return b.docker
}

// testContext returns a context for a helper's work: the test's deadline, else 2 minutes.
func testContext(t testing.TB) (context.Context, context.CancelFunc) {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok {
			return context.WithDeadline(context.Background(), deadline)
		}
	}
	return context.WithTimeout(context.Background(), 2*time.Minute)
}
