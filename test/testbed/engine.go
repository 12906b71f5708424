package testbed

import "testing"

// StopEngine stops the dockerd that the bed started (SIGTERM, then SIGKILL
// after 30s) and waits until its socket stops answering. It skips the test
// when the engine ran before the bed came up: stopping it would disturb
// others. It first waits until no other test process uses the engine, and
// other test processes wait in Require until StartEngine. When the test ends
// with the engine still stopped, it is started again.
func (b *Bed) StopEngine(t testing.TB) {
	t.Helper()
	st := b.engineState(t)
	ctx, cancel := testContext(t)
	defer cancel()
	if err := takeEngineExclusive(ctx); err != nil {
		t.Fatalf("stopping engine: %v", err)
	}
	if err := stopEngine(ctx, st.Engine, st.DockerHost); err != nil {
		releaseEngineExclusive()
		t.Fatalf("stopping engine: %v", err)
	}
	b.mu.Lock()
	first := !b.engineDown
	b.engineDown = true
	b.mu.Unlock()
	if first {
		t.Cleanup(func() {
			b.mu.Lock()
			down := b.engineDown
			b.mu.Unlock()
			if down {
				t.Log("test ended with the engine stopped: starting it again")
				b.StartEngine(t)
			}
		})
	}
}

// StartEngine starts the bed's dockerd again after StopEngine, with the same
// arguments, waits until it answers and records its new PID in the state file.
// Without a StopEngine before, it starts the engine only when it does not answer.
func (b *Bed) StartEngine(t testing.TB) {
	t.Helper()
	st := b.engineState(t)
	ctx, cancel := testContext(t)
	defer cancel()
	b.mu.Lock()
	down := b.engineDown
	b.mu.Unlock()
	if !down { // not after our own StopEngine: make sure no one else uses or starts it meanwhile
		if err := takeEngineExclusive(ctx); err != nil {
			t.Fatalf("starting engine again: %v", err)
		}
		if PingEngine(ctx, st.DockerHost) == nil {
			releaseEngineExclusive()
			return
		}
	}
	p, err := startEngine(ctx, st.Engine.Args, st.Engine.Log, st.DockerHost)
	if err != nil {
		releaseEngineExclusive()
		t.Fatalf("starting engine again: %v", err)
	}
	st.Engine = p
	if err := st.write(); err != nil {
		releaseEngineExclusive()
		t.Fatalf("starting engine again: %v", err)
	}
	b.mu.Lock()
	b.State, b.engineDown = st, false
	b.mu.Unlock()
	releaseEngineExclusive()
}

// RestartEngine stops the bed's dockerd and starts it again; see StopEngine.
func (b *Bed) RestartEngine(t testing.TB) {
	t.Helper()
	b.StopEngine(t)
	b.StartEngine(t)
}

// engineState reads the current state and skips the test when the bed did
// not start the engine.
func (b *Bed) engineState(t testing.TB) *State {
	t.Helper()
	st, err := ReadState(b.statePath)
	if err != nil {
		t.Fatalf("reading test bed: %v", err)
	}
	if !st.StartedEngine || st.Engine == nil {
		t.Skipf("cannot stop or restart the engine: %v", errNotStarted)
	}
	return st
}
