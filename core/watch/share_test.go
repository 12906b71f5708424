package watch

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// hosts returns n engines that run the same three repositories, and one
// of their own.
func hosts(n int) []*fakeEngine {
	var out []*fakeEngine
	for h := range n {
		e := &fakeEngine{}
		for _, repo := range []string{"a", "b", "c", fmt.Sprintf("own%d", h)} {
			e.ctrs = append(e.ctrs, ctr(fmt.Sprintf("h%d-%s", h, repo), "registry.example/"+repo+":1.0", nil))
		}
		out = append(out, e)
	}
	return out
}

func sharedRegistry() *fakeRegistry {
	reg := newFakeRegistry()
	for _, repo := range []string{"a", "b", "c", "own0", "own1", "own2"} {
		reg.tags["registry.example/"+repo] = []string{"1.0", "1.1"}
	}
	return reg
}

// TestShareAsksEachRepositoryOnceAcrossHosts: three watchers with one
// Share, run together, ask each repository once between them; without a
// Share each asks for itself.
func TestShareAsksEachRepositoryOnceAcrossHosts(t *testing.T) {
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			reg := sharedRegistry()
			var share *Share
			if shared {
				share = NewShare(0)
			}
			var wg sync.WaitGroup
			for h, e := range hosts(3) {
				w := New(Options{Host: fmt.Sprintf("h%d", h), WatchByDefault: true, Share: share}, e, reg, nil, discard())
				wg.Add(1)
				go func() {
					defer wg.Done()
					checks, err := w.Run(context.Background())
					if err != nil {
						t.Error(err)
					}
					for _, c := range checks {
						if c.Err != nil || c.Candidate != "1.1" {
							t.Errorf("%s: candidate %q err %v, want 1.1", c.Container.Name, c.Candidate, c.Err)
						}
					}
				}()
			}
			wg.Wait()
			perRepo := 1
			if !shared {
				perRepo = 3
			}
			got := reg.calledWith("tags ")
			for _, repo := range []string{"a", "b", "c"} {
				if n := got["tags registry.example/"+repo]; n != perRepo {
					t.Errorf("tags of %s asked %d times, want %d", repo, n, perRepo)
				}
			}
			for h := range 3 {
				if n := got[fmt.Sprintf("tags registry.example/own%d", h)]; n != 1 {
					t.Errorf("tags of own%d asked %d times, want 1", h, n)
				}
			}
		})
	}
}

// TestShareNeverServesAWatcherItsOwnAnswers: a single host with a Share
// asks every run, as without one; another host's answer is reused only by
// a run that starts within the window after it was asked.
func TestShareNeverServesAWatcherItsOwnAnswers(t *testing.T) {
	reg := sharedRegistry()
	share := NewShare(time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	share.now = clock
	es := hosts(2)
	w0 := New(Options{Host: "h0", WatchByDefault: true, Share: share, Now: clock}, es[0], reg, nil, discard())
	w1 := New(Options{Host: "h1", WatchByDefault: true, Share: share, Now: clock}, es[1], reg, nil, discard())
	runs := func(w *Watcher) {
		t.Helper()
		if _, err := w.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	asked := func() int { return reg.calledWith("tags ")["tags registry.example/a"] }

	runs(w0)
	runs(w0)
	if n := asked(); n != 2 {
		t.Errorf("one host, two runs: a asked %d times, want 2 (its own answers are never reused)", n)
	}
	mu.Lock()
	now = now.Add(59 * time.Second)
	mu.Unlock()
	runs(w1)
	if n := asked(); n != 2 {
		t.Errorf("another host 59s later: a asked %d times in all, want still 2 (reused)", n)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	runs(w1)
	if n := asked(); n != 3 {
		t.Errorf("that host again, past the window: a asked %d times in all, want 3", n)
	}
}

// TestShareKeepsNoErrors: an ask that failed is repeated by the next
// watcher; one that waited for it while it was in flight gets its error.
func TestShareKeepsNoErrors(t *testing.T) {
	reg := sharedRegistry()
	reg.failRepo["registry.example/a"] = fmt.Errorf("listing tags of registry.example/a: %w", core.ErrNotFound)
	share := NewShare(0)
	es := hosts(2)
	for h, e := range es {
		w := New(Options{Host: fmt.Sprintf("h%d", h), WatchByDefault: true, Share: share}, e, reg, nil, discard())
		checks, err := w.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c := checks[0]; c.Err == nil {
			t.Errorf("h%d: %s checked without error, want the registry's", h, c.Container.Name)
		}
	}
	if n := reg.calledWith("tags ")["tags registry.example/a"]; n != 2 {
		t.Errorf("a failing repository asked %d times by two hosts, want 2 (errors not kept)", n)
	}
}

// blockingRegistry holds tag lists until released, to catch asks in flight.
type blockingRegistry struct {
	*fakeRegistry
	entered chan struct{}
	release chan struct{}
}

func (r *blockingRegistry) Tags(ctx context.Context, ref core.ImageRef) ([]string, error) {
	r.entered <- struct{}{}
	<-r.release
	return r.fakeRegistry.Tags(ctx, ref)
}

// TestShareJoinsAnAskInFlight: a watcher that needs a repository another
// is asking waits for that answer rather than sending its own.
func TestShareJoinsAnAskInFlight(t *testing.T) {
	reg := &blockingRegistry{fakeRegistry: newFakeRegistry(), entered: make(chan struct{}, 4), release: make(chan struct{})}
	reg.tags["registry.example/a"] = []string{"1.0", "1.1"}
	share := NewShare(0)
	var wg sync.WaitGroup
	results := make([][]core.Check, 2)
	for h := range 2 {
		e := &fakeEngine{ctrs: []core.Container{ctr(fmt.Sprintf("h%d", h), "registry.example/a:1.0", nil)}}
		w := New(Options{Host: fmt.Sprintf("h%d", h), WatchByDefault: true, Share: share}, e, reg, nil, discard())
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[h], _ = w.Run(context.Background())
		}()
		if h == 0 {
			<-reg.entered // h0's ask is in flight before h1 starts
		}
	}
	waitFor(t, func() bool { // h1 waits for h0's answer
		share.mu.Lock()
		defer share.mu.Unlock()
		return share.waiting == 1
	})
	close(reg.release)
	wg.Wait()
	if n := reg.calledWith("tags ")["tags registry.example/a"]; n != 1 || share.Reused() != 1 {
		t.Errorf("tags asked %d times, %d answers reused; want 1 and 1 (the second host joined the first's ask)", n, share.Reused())
	}
	for h, cs := range results {
		if len(cs) != 1 || cs[0].Candidate != "1.1" {
			t.Errorf("h%d: %+v, want candidate 1.1", h, cs)
		}
	}
}

// TestShareResolvesOnceAcrossHosts: hosts running the same image, whose
// digest changed in the registry, resolve it (manifest GETs, pulls on
// Docker Hub) once between them.
func TestShareResolvesOnceAcrossHosts(t *testing.T) {
	reg := newFakeRegistry()
	reg.digests["registry.example/app:latest"] = digestOf(2)
	share := NewShare(0)
	var wg sync.WaitGroup
	for h := range 3 {
		c := ctr(fmt.Sprintf("h%d", h), "registry.example/app:latest", nil, digestOf(1))
		c.ImageID = "sha256:same-image"
		w := New(Options{Host: fmt.Sprintf("h%d", h), WatchByDefault: true, Share: share}, &fakeEngine{ctrs: []core.Container{c}}, reg, nil, discard())
		wg.Add(1)
		go func() {
			defer wg.Done()
			checks, err := w.Run(context.Background())
			if err != nil || checks[0].Kind != core.KindDigest {
				t.Errorf("h%d: %+v, %v; want a digest update", h, checks, err)
			}
		}()
	}
	wg.Wait()
	if n := reg.calledWith("resolve ")["resolve "+digestOf(2)]; n != 1 {
		t.Errorf("the changed digest resolved %d times by three hosts, want 1", n)
	}
	if n := reg.calledWith("digest ")["digest registry.example/app:latest"]; n != 1 {
		t.Errorf("the digest read %d times by three hosts, want 1", n)
	}
}
