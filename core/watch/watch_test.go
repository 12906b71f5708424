package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/core"
)

// fakeEngine is an engine whose containers and events a test sets. Its
// list leaves the images' RepoDigests and platform to Image, as the
// Docker adapter does.
type fakeEngine struct {
	mu       sync.Mutex
	ctrs     []core.Container
	listErr  error
	pingErr  error
	imageErr map[string]error // image ID → Image's error
	inspects map[string]int   // image ID → Image calls
	events   chan core.EngineEvent
	subs     int // Events calls
}

func (e *fakeEngine) Containers(ctx context.Context, all bool) ([]core.Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.listErr != nil {
		return nil, e.listErr
	}
	out := make([]core.Container, len(e.ctrs))
	for i, c := range e.ctrs {
		c.RepoDigests, c.Platform = nil, core.Platform{}
		out[i] = c
	}
	return out, nil
}

func (e *fakeEngine) Image(ctx context.Context, id string) (core.LocalImage, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inspects == nil {
		e.inspects = map[string]int{}
	}
	e.inspects[id]++
	if err := e.imageErr[id]; err != nil {
		return core.LocalImage{}, err
	}
	for _, c := range e.ctrs {
		if c.ImageID == id {
			return core.LocalImage{RepoDigests: c.RepoDigests, Platform: c.Platform}, nil
		}
	}
	return core.LocalImage{}, nil
}

// imageInspects returns how many times Image was called, all images together.
func (e *fakeEngine) imageInspects() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, v := range e.inspects {
		n += v
	}
	return n
}

func (e *fakeEngine) Inspect(ctx context.Context, id string) (core.Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.ctrs {
		if c.ID == id {
			return c, nil
		}
	}
	return core.Container{}, core.ErrNotFound
}

func (e *fakeEngine) Ping(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pingErr
}

// Events streams e.events until the test breaks the stream with breakStream.
func (e *fakeEngine) Events(ctx context.Context, since time.Time) (<-chan core.EngineEvent, <-chan error) {
	e.mu.Lock()
	e.subs++
	src := e.events
	e.mu.Unlock()
	out := make(chan core.EngineEvent)
	errs := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			case ev, ok := <-src:
				if !ok {
					errs <- errors.New("stream broke")
					return
				}
				out <- ev
			}
		}
	}()
	return out, errs
}

func (e *fakeEngine) breakStream() {
	e.mu.Lock()
	defer e.mu.Unlock()
	close(e.events)
	e.events = make(chan core.EngineEvent)
}

func (e *fakeEngine) subscriptions() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.subs
}

// fakeRegistry answers from maps and counts what it was asked.
type fakeRegistry struct {
	mu         sync.Mutex
	tags       map[string][]string // repo → tags
	digests    map[string]string   // repo:tag → digest
	same       map[string]bool     // digest → Resolve answer
	failRepo   map[string]error
	createdAt  map[string]time.Time // repo@digest → creation time
	createdErr error
	calls      map[string]int // "tags repo", "digest repo:tag", "resolve digest", "created repo@digest", "prepare"
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{tags: map[string][]string{}, digests: map[string]string{}, same: map[string]bool{}, failRepo: map[string]error{},
		createdAt: map[string]time.Time{}, calls: map[string]int{}}
}

func (r *fakeRegistry) count(k string) {
	r.mu.Lock()
	r.calls[k]++
	r.mu.Unlock()
}

func (r *fakeRegistry) Prepare(repos []core.ImageRef) { r.count("prepare") }

func (r *fakeRegistry) Tags(ctx context.Context, ref core.ImageRef) ([]string, error) {
	r.count("tags " + ref.Repo())
	if err := r.failRepo[ref.Repo()]; err != nil {
		return nil, err
	}
	return r.tags[ref.Repo()], nil
}

func (r *fakeRegistry) Digest(ctx context.Context, ref core.ImageRef) (string, error) {
	r.count("digest " + ref.Repo() + ":" + ref.Tag)
	if err := r.failRepo[ref.Repo()]; err != nil {
		return "", err
	}
	d, ok := r.digests[ref.Repo()+":"+ref.Tag]
	if !ok {
		return "", fmt.Errorf("%s:%s: %w", ref.Repo(), ref.Tag, core.ErrNotFound)
	}
	return d, nil
}

func (r *fakeRegistry) Resolve(ctx context.Context, ref core.ImageRef, digest string, local []string, imageID string, platform core.Platform) (bool, error) {
	r.count("resolve " + digest)
	return r.same[digest], nil
}

func (r *fakeRegistry) Created(ctx context.Context, ref core.ImageRef, platform core.Platform) (time.Time, error) {
	r.count("created " + ref.Repo() + "@" + ref.Digest)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.createdErr; err != nil {
		return time.Time{}, err
	}
	return r.createdAt[ref.Repo()+"@"+ref.Digest], nil
}

func (r *fakeRegistry) calledWith(prefix string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.calls {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

func digestOf(n int) string { return fmt.Sprintf("sha256:%064d", n) }

func ctr(id, image string, labels map[string]string, digests ...string) core.Container {
	ref, _ := core.ParseImageRef(image)
	var rd []string
	for _, d := range digests {
		rd = append(rd, ref.Repo()+"@"+d)
	}
	return core.Container{ID: id, Name: id, Image: image, ImageID: "sha256:img-" + id, RepoDigests: rd, Labels: labels, State: "running"}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type summary struct {
	Current, Candidate string
	Kind               core.UpdateKind
	Err                string
}

func summarize(checks []core.Check) map[string]summary {
	m := map[string]summary{}
	for _, c := range checks {
		s := summary{Current: c.Current, Candidate: c.Candidate, Kind: c.Kind}
		if c.Err != nil {
			s.Err = c.Err.Error()
		}
		m[c.Container.Name] = s
	}
	return m
}

func TestRunAsksEachRepositoryOnce(t *testing.T) {
	eng := &fakeEngine{}
	reg := newFakeRegistry()
	reg.tags["registry.example/a"] = []string{"1.0.0", "1.1.0", "2.0.0", "latest"}
	reg.tags["registry.example/b"] = []string{"3.1", "3.2", "3.10", "4.0-alpine"}
	reg.digests["index.docker.io/library/c:latest"] = digestOf(2)
	for i := range 10 {
		eng.ctrs = append(eng.ctrs, ctr(fmt.Sprintf("a%d", i), "registry.example/a:1.0.0", nil))
		eng.ctrs = append(eng.ctrs, ctr(fmt.Sprintf("b%d", i), "registry.example/b:3.2", nil))
		eng.ctrs = append(eng.ctrs, ctr(fmt.Sprintf("c%d", i), "c", nil, digestOf(1)))
	}
	w := New(Options{Host: "local", WatchByDefault: true}, eng, reg, nil, discard())
	checks, err := w.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 30 {
		t.Fatalf("Run checked %d containers, want 30", len(checks))
	}
	want := map[string]int{"tags registry.example/a": 1, "tags registry.example/b": 1}
	if diff := cmp.Diff(want, reg.calledWith("tags ")); diff != "" {
		t.Errorf("tag listings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"digest index.docker.io/library/c:latest": 1}, reg.calledWith("digest ")); diff != "" {
		t.Errorf("digest requests (-want +got):\n%s", diff)
	}
	got := summarize(checks)
	wantS := map[string]summary{
		"a0": {Current: "1.0.0", Candidate: "2.0.0", Kind: core.KindMajor},
		"b0": {Current: "3.2", Candidate: "3.10", Kind: core.KindMinor},
		"c0": {Current: "latest", Candidate: "latest", Kind: core.KindDigest},
	}
	for name, w := range wantS {
		if diff := cmp.Diff(w, got[name]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	for _, c := range checks {
		if c.Container.Host != "local" {
			t.Errorf("%s: host %q, want local", c.Container.Name, c.Container.Host)
		}
	}
}

func TestDigestComparison(t *testing.T) {
	tests := []struct {
		name        string
		local       []string // the running image's digests in its repository
		remote      string
		sameByGET   bool // what resolving the remote manifest says
		wantKind    core.UpdateKind
		wantResolve int
	}{
		{name: "same digest: no update, no GET", local: []string{digestOf(1)}, remote: digestOf(1), wantResolve: 0},
		{name: "one of several RepoDigests matches", local: []string{digestOf(7), digestOf(1)}, remote: digestOf(1), wantResolve: 0},
		{name: "new digest: update after one resolve", local: []string{digestOf(1)}, remote: digestOf(2), wantKind: core.KindDigest, wantResolve: 1},
		{name: "index whose platform child runs here: no update", local: []string{digestOf(1)}, remote: digestOf(3), sameByGET: true, wantResolve: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eng := &fakeEngine{ctrs: []core.Container{ctr("app", "registry.example/app:latest", nil, tc.local...)}}
			reg := newFakeRegistry()
			reg.digests["registry.example/app:latest"] = tc.remote
			reg.same[tc.remote] = tc.sameByGET
			w := New(Options{Host: "local", WatchByDefault: true}, eng, reg, nil, discard())
			for run := range 2 { // the second run must not resolve again
				checks, err := w.Run(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if got := checks[0]; got.Kind != tc.wantKind || got.Err != nil {
					t.Errorf("run %d: kind %q err %v, want %q", run, got.Kind, got.Err, tc.wantKind)
				}
			}
			if got := reg.calledWith("resolve ")["resolve "+tc.remote]; got != tc.wantResolve {
				t.Errorf("Resolve called %d times over two runs, want %d", got, tc.wantResolve)
			}
		})
	}
}

// memo is a Memo in memory, standing for the store.
type memo struct {
	mu      sync.Mutex
	m       map[string]bool
	created map[string]time.Time
}

func (m *memo) ImageCreated(ctx context.Context, key string) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.created[key]
	return v, ok, nil
}

func (m *memo) RememberImageCreated(ctx context.Context, key string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.created == nil {
		m.created = map[string]time.Time{}
	}
	m.created[key] = at
	return nil
}

func (m *memo) Resolution(ctx context.Context, key string) (bool, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	return v, ok, nil
}

func (m *memo) RememberResolution(ctx context.Context, key string, same bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[key] = same
	return nil
}

// TestResolutionRememberedAcrossWatchers: `tidewatch check` builds a new
// Watcher on every run; a changed digest is resolved (GET) once, not per run.
func TestResolutionRememberedAcrossWatchers(t *testing.T) {
	eng := &fakeEngine{ctrs: []core.Container{ctr("app", "registry.example/app:latest", nil, digestOf(1))}}
	reg := newFakeRegistry()
	reg.digests["registry.example/app:latest"] = digestOf(2)
	m := &memo{m: map[string]bool{}}
	for run := range 3 {
		w := New(Options{Host: "local", WatchByDefault: true, Memo: m}, eng, reg, nil, discard())
		checks, err := w.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if checks[0].Kind != core.KindDigest {
			t.Errorf("run %d: kind %q, want digest", run, checks[0].Kind)
		}
	}
	if got := reg.calledWith("resolve ")["resolve "+digestOf(2)]; got != 1 {
		t.Errorf("Resolve called %d times over three watchers, want 1", got)
	}
}

func TestNotWatchedWithANote(t *testing.T) {
	built := ctr("built", "myproject-web", nil) // a compose build: no RepoDigests
	built.RepoDigests = nil
	tests := []struct {
		name string
		c    core.Container
		note string
	}{
		{name: "built locally", c: built, note: "built locally"},
		{name: "image ID", c: ctr("byid", "sha256:"+strings.Repeat("ab", 32), nil), note: "image ID"},
		{name: "name@digest", c: ctr("pinned", "registry.example/app@"+digestOf(1), nil), note: "pinned by digest"},
		{name: "name:tag@digest", c: ctr("pinnedtag", "registry.example/app:1.0@"+digestOf(1), nil), note: "pinned by digest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFakeRegistry()
			w := New(Options{Host: "local", WatchByDefault: true}, &fakeEngine{ctrs: []core.Container{tc.c}}, reg, nil, discard())
			checks, err := w.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			c := checks[0]
			if c.Err != nil || c.Kind != core.KindNone || !strings.Contains(c.Note, tc.note) {
				t.Errorf("check = kind %q err %v note %q, want no update, no error, a note with %q", c.Kind, c.Err, c.Note, tc.note)
			}
			if n := len(reg.calledWith("tags ")) + len(reg.calledWith("digest ")); n != 0 {
				t.Errorf("the registry was asked %d times, want never", n)
			}
		})
	}
}

func TestErrorsStayWithTheirContainer(t *testing.T) {
	eng := &fakeEngine{ctrs: []core.Container{
		ctr("good", "registry.example/good:1.0", nil),
		ctr("badlabel", "registry.example/good:1.0", map[string]string{core.LabelTagInclude: "(("}),
		ctr("down", "registry.example/down:1.0", nil),
		ctr("badwatch", "registry.example/good:1.0", map[string]string{core.LabelWatch: "maybe"}),
	}}
	reg := newFakeRegistry()
	reg.tags["registry.example/good"] = []string{"1.0", "1.1"}
	reg.failRepo["registry.example/down"] = fmt.Errorf("listing tags of registry.example/down: %w", core.ErrUnavailable)
	w := New(Options{Host: "local", WatchByDefault: true}, eng, reg, nil, discard())
	checks, err := w.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := summarize(checks)
	if s := got["good"]; s.Candidate != "1.1" || s.Err != "" {
		t.Errorf("good: %+v, want candidate 1.1 and no error", s)
	}
	for name, want := range map[string]string{"badlabel": core.LabelTagInclude, "down": "registry.example/down", "badwatch": core.LabelWatch} {
		if s := got[name]; !strings.Contains(s.Err, want) {
			t.Errorf("%s: error %q, want one naming %q", name, s.Err, want)
		}
	}
}

func TestWhichContainersAreWatched(t *testing.T) {
	stopped := ctr("stopped", "registry.example/a:1.0", nil)
	stopped.State = "exited"
	all := []core.Container{
		ctr("plain", "registry.example/a:1.0", nil),
		ctr("optin", "registry.example/a:1.0", map[string]string{core.LabelWatch: "true"}),
		ctr("optout", "registry.example/a:1.0", map[string]string{core.LabelWatch: "false"}),
		stopped,
	}
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{name: "watch by default", opts: Options{WatchByDefault: true}, want: []string{"optin", "plain"}},
		{name: "opt-in only", opts: Options{}, want: []string{"optin"}},
		{name: "watch all", opts: Options{WatchByDefault: true, WatchAll: true}, want: []string{"optin", "plain", "stopped"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFakeRegistry()
			reg.tags["registry.example/a"] = []string{"1.0"}
			w := New(tc.opts, &fakeEngine{ctrs: all}, reg, nil, discard())
			checks, err := w.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range checks {
				got = append(got, c.Container.Name)
			}
			sort.Strings(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("watched (-want +got):\n%s", diff)
			}
		})
	}
}

// recorder keeps what was recorded.
type recorder struct {
	mu   sync.Mutex
	runs [][]core.Check
	next int64
}

// RecordRun keeps the checks and returns an update for each one that found
// one, numbered in the order recorded, as the store does.
func (r *recorder) RecordRun(ctx context.Context, host string, checks []core.Check, at time.Time) ([]core.Update, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, checks)
	var out []core.Update
	for _, c := range checks {
		if c.HasUpdate() {
			r.next++
			out = append(out, core.Update{ID: r.next, Host: host, ContainerName: c.Container.Name, Candidate: c.Candidate, Kind: c.Kind, Status: core.StatusPending})
		}
	}
	return out, nil
}

// RecordFullRun is RecordRun; the recorder keeps no containers to mark gone.
func (r *recorder) RecordFullRun(ctx context.Context, host string, checks []core.Check, at time.Time) ([]core.Update, error) {
	return r.RecordRun(ctx, host, checks, at)
}

// dispatcher records what it is handed.
type dispatcher struct {
	mu   sync.Mutex
	runs []string
	ups  [][]core.Update
	err  error
}

func (d *dispatcher) Notify(ctx context.Context, runID string, updates []core.Update) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.runs, d.ups = append(d.runs, runID), append(d.ups, updates)
	return d.err
}

func TestRunHandsTheRecordedUpdatesToTheDispatcher(t *testing.T) {
	eng := &fakeEngine{ctrs: []core.Container{
		ctr("web", "registry.example/a:1.0", nil),
		ctr("db", "registry.example/b:2.0", nil),
		ctr("cache", "registry.example/a:1.1", nil),
	}}
	reg := newFakeRegistry()
	reg.tags["registry.example/a"] = []string{"1.0", "1.1"}
	reg.tags["registry.example/b"] = []string{"2.0"}
	disp := &dispatcher{}
	w := New(Options{Host: "local", WatchByDefault: true, Dispatcher: disp}, eng, reg, &recorder{}, discard())
	if _, err := w.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(disp.ups) != 1 || len(disp.ups[0]) != 1 || disp.ups[0][0].ContainerName != "web" || disp.ups[0][0].ID != 1 {
		t.Fatalf("dispatcher was handed %+v, want web's update (ID 1) once", disp.ups)
	}
	// A single container's run hands its own update, under another run ID.
	if _, _, err := w.RunContainer(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	if len(disp.ups) != 2 || len(disp.ups[1]) != 1 || disp.ups[1][0].ID != 2 || disp.runs[0] == disp.runs[1] {
		t.Fatalf("after RunContainer the dispatcher was handed %+v in runs %v", disp.ups, disp.runs)
	}
	// Nothing found, nothing handed.
	if _, _, err := w.RunContainer(context.Background(), "db"); err != nil {
		t.Fatal(err)
	}
	if len(disp.ups) != 2 {
		t.Errorf("a run without update was handed to the dispatcher: %+v", disp.ups)
	}
	// A dispatcher that cannot enqueue fails the run, loudly.
	disp.err = errors.New("disk full")
	if _, err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Run with a failing dispatcher = %v, want its error", err)
	}
}

func TestWatchChecksStartedContainerAndReconcilesAfterReconnect(t *testing.T) {
	eng := &fakeEngine{events: make(chan core.EngineEvent), ctrs: []core.Container{ctr("old", "registry.example/a:1.0", nil)}}
	reg := newFakeRegistry()
	reg.tags["registry.example/a"] = []string{"1.0", "1.1"}
	w := New(Options{Host: "local", WatchByDefault: true}, eng, reg, &recorder{}, discard())
	reports := make(chan RunReport, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- w.Watch(ctx, LoopOptions{Schedule: "0 0 1 1 *", Debounce: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, OnRun: func(r RunReport) { reports <- r }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v", err)
		}
	}()
	waitFor(t, func() bool { return eng.subscriptions() >= 1 })

	// A container starts: only it is checked.
	eng.mu.Lock()
	eng.ctrs = append(eng.ctrs, ctr("new", "registry.example/a:1.0", nil))
	eng.mu.Unlock()
	eng.events <- core.EngineEvent{ContainerID: "new", Action: "start"}
	r := next(t, reports)
	if r.Full || r.Reason != "event" || len(r.Checks) != 1 || r.Checks[0].Container.ID != "new" || r.Checks[0].Candidate != "1.1" {
		t.Fatalf("after a start event: report %+v, want a check of only the new container with candidate 1.1", r)
	}

	// The stream breaks (the engine restarted): reconnect, then a full run.
	eng.breakStream()
	r = next(t, reports)
	if !r.Full || r.Reason != "reconnect" || len(r.Checks) != 2 || r.Err != nil {
		t.Fatalf("after the stream broke: report full=%v reason=%q checks=%d err=%v, want a full reconnect run of 2", r.Full, r.Reason, len(r.Checks), r.Err)
	}
	if got := eng.subscriptions(); got < 2 {
		t.Errorf("subscribed %d times, want a new subscription after the break", got)
	}
}

func TestWatchRejectsBadSchedule(t *testing.T) {
	w := New(Options{Host: "local"}, &fakeEngine{}, newFakeRegistry(), nil, discard())
	err := w.Watch(context.Background(), LoopOptions{Schedule: "every hour"})
	if err == nil || !strings.Contains(err.Error(), "every hour") {
		t.Errorf("Watch with a bad schedule = %v, want an error naming it", err)
	}
}

func next(t *testing.T, reports <-chan RunReport) RunReport {
	t.Helper()
	select {
	case r := <-reports:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no run reported within 10s")
		return RunReport{}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
