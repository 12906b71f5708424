package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// gatedEngine is a fakeEngine whose image inspects wait until the registry
// has been asked for a tag list (or a deadline passes), and say whether it
// had been.
type gatedEngine struct {
	*fakeEngine
	asked    <-chan struct{}
	mu       sync.Mutex
	inspects int
	before   int // inspects that returned before any registry request
}

func (e *gatedEngine) Image(ctx context.Context, id string) (core.LocalImage, error) {
	select {
	case <-e.asked:
	case <-time.After(2 * time.Second):
	}
	e.mu.Lock()
	e.inspects++
	select {
	case <-e.asked:
	default:
		e.before++
	}
	e.mu.Unlock()
	return e.fakeEngine.Image(ctx, id)
}

// signallingRegistry closes asked at its first tag list.
type signallingRegistry struct {
	*fakeRegistry
	once  sync.Once
	asked chan struct{}
}

func (r *signallingRegistry) Tags(ctx context.Context, ref core.ImageRef) ([]string, error) {
	r.once.Do(func() { close(r.asked) })
	return r.fakeRegistry.Tags(ctx, ref)
}

// TestRegistryAskedBeforeImagesAreInspected: a run asks the registry as
// soon as the list names the repositories, beside the image inspects, not
// after them. The engine's inspects wait for the first tag list: in a run
// that inspected every image first, each would wait out its deadline and
// return before any request.
func TestRegistryAskedBeforeImagesAreInspected(t *testing.T) {
	base := &fakeEngine{}
	for i := range 12 {
		base.ctrs = append(base.ctrs, ctr(fmt.Sprintf("c%d", i), fmt.Sprintf("registry.example/r%d:1.0", i%4), nil))
	}
	reg := &signallingRegistry{fakeRegistry: newFakeRegistry(), asked: make(chan struct{})}
	for i := range 4 {
		reg.tags[fmt.Sprintf("registry.example/r%d", i)] = []string{"1.0", "1.1"}
	}
	eng := &gatedEngine{fakeEngine: base, asked: reg.asked}
	w := New(Options{Host: "local", WatchByDefault: true}, eng, reg, nil, discard())
	checks, err := w.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.Err != nil || c.Candidate != "1.1" {
			t.Errorf("%s: candidate %q err %v, want 1.1", c.Container.Name, c.Candidate, c.Err)
		}
	}
	if eng.inspects != 12 || eng.before != 0 {
		t.Errorf("%d image inspects, %d of them done before the registry was asked; want 12 and 0", eng.inspects, eng.before)
	}
}

// TestImagesInspectedOncePerIDAcrossRuns: 30 containers over 3 images cost
// 3 inspects in the first run and none in the next; an answer older than
// ImageTTL is read again, an image no run needs any more is forgotten, and
// a failed inspect stays with its containers and is tried again next run.
func TestImagesInspectedOncePerIDAcrossRuns(t *testing.T) {
	eng := &fakeEngine{}
	for i := range 30 {
		c := ctr(fmt.Sprintf("c%02d", i), "registry.example/app:latest", nil, digestOf(i%3))
		c.ImageID = fmt.Sprintf("sha256:image-%d", i%3)
		eng.ctrs = append(eng.ctrs, c)
	}
	reg := newFakeRegistry()
	reg.digests["registry.example/app:latest"] = digestOf(0)
	reg.same[digestOf(0)] = false
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	w := New(Options{Host: "local", WatchByDefault: true, ImageTTL: time.Hour, Now: clock}, eng, reg, nil, discard())

	run := func(name string) []core.Check {
		t.Helper()
		checks, err := w.Run(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return checks
	}
	checks := run("first run")
	if got := eng.imageInspects(); got != 3 {
		t.Errorf("first run: %d image inspects, want 3 (one per image ID)", got)
	}
	for _, c := range checks {
		// Containers on image 0 run the registry's digest; the others do not.
		wantKind := core.KindDigest
		if c.Container.ImageID == "sha256:image-0" {
			wantKind = core.KindNone
		}
		if c.Kind != wantKind || c.Err != nil || len(c.Container.RepoDigests) != 1 {
			t.Errorf("%s: kind %q err %v repo digests %v, want %q and the image's digest", c.Container.Name, c.Kind, c.Err, c.Container.RepoDigests, wantKind)
		}
	}
	run("second run")
	if got := eng.imageInspects(); got != 3 {
		t.Errorf("after a second run: %d image inspects in all, want still 3", got)
	}
	advance(time.Hour)
	run("a run an hour later")
	if got := eng.imageInspects(); got != 6 {
		t.Errorf("an hour later: %d image inspects in all, want 6 (each image read again)", got)
	}
	// An hour later again, image 2 fails to be read; image 1 is no longer
	// used: forgotten, so read again when it comes back.
	advance(time.Hour)
	eng.mu.Lock()
	eng.imageErr = map[string]error{"sha256:image-2": errors.New("engine hiccup")}
	var kept []core.Container
	for _, c := range eng.ctrs {
		if c.ImageID != "sha256:image-1" {
			kept = append(kept, c)
		}
	}
	all := eng.ctrs
	eng.ctrs = kept
	eng.mu.Unlock()
	checks = run("a run with a failing image")
	for _, c := range checks {
		failing := c.Container.ImageID == "sha256:image-2"
		if failing != (c.Err != nil && strings.Contains(c.Err.Error(), "engine hiccup")) {
			t.Errorf("%s: err %v; want the inspect's error on the containers of image 2 only", c.Container.Name, c.Err)
		}
	}
	eng.mu.Lock()
	eng.imageErr = nil
	eng.ctrs = all
	eng.inspects = nil
	eng.mu.Unlock()
	run("a run after it")
	eng.mu.Lock()
	got := eng.inspects
	eng.mu.Unlock()
	if got["sha256:image-0"] != 0 || got["sha256:image-1"] != 1 || got["sha256:image-2"] != 1 {
		t.Errorf("inspects after the failure = %v, want image 1 (forgotten) and image 2 (failed) read again, image 0 not", got)
	}
}

// slowEngine takes its time to list and to inspect, as a busy engine does.
type slowEngine struct {
	*fakeEngine
	list, image time.Duration
}

func (e *slowEngine) Containers(ctx context.Context, all bool) ([]core.Container, error) {
	time.Sleep(e.list)
	return e.fakeEngine.Containers(ctx, all)
}

func (e *slowEngine) Image(ctx context.Context, id string) (core.LocalImage, error) {
	time.Sleep(e.image)
	return e.fakeEngine.Image(ctx, id)
}

// slowRegistry answers tag lists after a delay.
type slowRegistry struct {
	*fakeRegistry
	delay time.Duration
}

func (r *slowRegistry) Tags(ctx context.Context, ref core.ImageRef) ([]string, error) {
	time.Sleep(r.delay)
	return r.fakeRegistry.Tags(ctx, ref)
}

// slowRecorder takes its time to write.
type slowRecorder struct {
	recorder
	delay time.Duration
	full  int
}

func (r *slowRecorder) RecordFullRun(ctx context.Context, host string, checks []core.Check, at time.Time) ([]core.Update, error) {
	time.Sleep(r.delay)
	r.full++
	return r.recorder.RecordRun(ctx, host, checks, at)
}

// TestRunReportsItsPhases: a full run says where its time went, per phase,
// to OnPhases, in its RunReport and in the "run done" log line; the store
// is written once, through RecordFullRun.
func TestRunReportsItsPhases(t *testing.T) {
	base := &fakeEngine{}
	for i := range 6 {
		base.ctrs = append(base.ctrs, ctr(fmt.Sprintf("c%d", i), fmt.Sprintf("registry.example/r%d:1.0", i%2), nil))
	}
	eng := &slowEngine{fakeEngine: base, list: 30 * time.Millisecond, image: 10 * time.Millisecond}
	reg := &slowRegistry{fakeRegistry: newFakeRegistry(), delay: 20 * time.Millisecond}
	reg.tags["registry.example/r0"] = []string{"1.0", "1.1"}
	reg.tags["registry.example/r1"] = []string{"1.0", "2.0"}
	rec := &slowRecorder{delay: 15 * time.Millisecond}
	disp := &dispatcher{}
	var logs bytes.Buffer
	var got []Phases
	w := New(Options{Host: "local", WatchByDefault: true, Dispatcher: disp, OnPhases: func(p Phases) { got = append(got, p) }},
		eng, reg, rec, slog.New(slog.NewTextHandler(&logs, nil)))
	if _, err := w.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("OnPhases called %d times, want once", len(got))
	}
	p := got[0]
	for name, c := range map[string]struct{ got, least time.Duration }{
		"list": {p.List, 30 * time.Millisecond}, "inspect": {p.Inspect, 10 * time.Millisecond},
		"registry": {p.Registry, 20 * time.Millisecond}, "store": {p.Store, 15 * time.Millisecond},
	} {
		if c.got < c.least {
			t.Errorf("phase %s = %s, want at least %s (the fake's delay)", name, c.got, c.least)
		}
	}
	if p.Select <= 0 || p.Dispatch <= 0 || p.Total < p.List+p.Store {
		t.Errorf("phases %+v: want select and dispatch timed, and a total at least list+store", p)
	}
	if rec.full != 1 || len(rec.runs) != 1 {
		t.Errorf("the store was written %d times, %d through RecordFullRun; want once, through it", len(rec.runs), rec.full)
	}
	line := logs.String()
	for _, name := range PhaseNames {
		if !strings.Contains(line, "phase_ms."+name+"=") {
			t.Errorf("run done log lacks phase_ms.%s: %s", name, line)
		}
	}

	// A second run finds every image known: no inspect phase.
	got = nil
	if _, err := w.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got[0].Inspect != 0 {
		t.Errorf("second run: inspect phase %s, want 0 (images known)", got[0].Inspect)
	}
}

// TestSelectIsAddedUp: the select phase is the time spent choosing,
// added up over every container (it happens inside the registry's span,
// whose wall time says nothing of it), while the other phases span their
// work.
func TestSelectIsAddedUp(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { // each reading moves the clock 5 ms on
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(5 * time.Millisecond)
		return clock
	}
	c := newPhaseClock(now())
	for range 3 {
		c.selection.time(now, func() error { return nil })
		c.registry.time(now, func() error { return nil })
	}
	p := c.done(now())
	if p.Select != 15*time.Millisecond {
		t.Errorf("select after 3 choices of 5 ms each, 5 ms apart = %s, want 15ms (added up)", p.Select)
	}
	if p.Registry != 45*time.Millisecond {
		t.Errorf("registry spanning 3 calls = %s, want 45ms (first start to last end)", p.Registry)
	}
}
