package watch_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/core/watch"
	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/test/testbed"
)

// countingEngine counts the inspects of one image the watcher asks of a
// real engine (shared with other tests, whose containers may be watched too).
type countingEngine struct {
	*docker.Client
	id     string
	images atomic.Int64
}

func (e *countingEngine) Image(ctx context.Context, id string) (core.LocalImage, error) {
	if id == e.id {
		e.images.Add(1)
	}
	return e.Client.Image(ctx, id)
}

// TestRunOnRealEngine runs full checks against the test bed's engine and
// registry: two containers of one image cost one image inspect, and the
// next run none; the image's RepoDigests come from the engine; a container
// with tidewatch.update.min-age gets its candidate's creation time from the
// candidate's config, kept in the store, and a wait until it is old enough.
func TestRunOnRealEngine(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("cooled")
	old := time.Now().Add(-30 * 24 * time.Hour).UTC().Truncate(time.Second)
	created := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	bed.BuildImage(t, repo+":1.0.0", testbed.AppOptions{Version: "1.0.0", Created: old})
	bed.BuildImage(t, repo+":1.1.0", testbed.AppOptions{Version: "1.1.0", Created: created})
	// Only these two are watched: the engine is shared with other tests.
	a := bed.RunContainer(t, unique("cool-a"), repo+":1.0.0", map[string]string{core.LabelWatch: "true", core.LabelUpdateMinAge: "3d"})
	b := bed.RunContainer(t, unique("cool-b"), repo+":1.0.0", map[string]string{core.LabelWatch: "true"})

	cli, err := docker.New(docker.Options{Host: bed.DockerHost})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	eng := &countingEngine{Client: cli, id: bed.Inspect(t, a.ID).Image}
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := registries.New(registries.Options{Keychain: authn.NewMultiKeychain()}, log)
	w := watch.New(watch.Options{Host: "bed", Memo: st}, eng, reg, st, log)

	var before int64
	for run := range 2 {
		checks, err := w.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]core.Check{}
		for _, c := range checks {
			got[c.Container.ID] = c
		}
		ca, cb := got[a.ID], got[b.ID]
		if ca.Err != nil || ca.Candidate != "1.1.0" || cb.Err != nil || cb.Candidate != "1.1.0" {
			t.Fatalf("run %d: a = %q %v, b = %q %v; want 1.1.0 for both", run, ca.Candidate, ca.Err, cb.Candidate, cb.Err)
		}
		if len(ca.Container.RepoDigests) == 0 || ca.CurrentDigest == "" {
			t.Errorf("run %d: a's image digests %v, current %q; want the engine's RepoDigests", run, ca.Container.RepoDigests, ca.CurrentDigest)
		}
		if !ca.CandidateCreated.Equal(created) || !cb.CandidateCreated.IsZero() {
			t.Errorf("run %d: candidate created a=%v b=%v; want %v for a (its cooldown) and none for b", run, ca.CandidateCreated, cb.CandidateCreated, created)
		}
		inspects := eng.images.Load() - before
		before = eng.images.Load()
		if want := int64(map[int]int{0: 1, 1: 0}[run]); inspects != want {
			t.Errorf("run %d: %d image inspects, want %d (one image, kept between runs)", run, inspects, want)
		}
	}
	ups, err := st.ListUpdates(ctx, store.UpdateFilter{Host: "bed"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ups {
		if u.ContainerID != a.ID {
			continue
		}
		if wait := u.WaitUntil(time.Now()); !wait.Equal(created.Add(3 * 24 * time.Hour)) {
			t.Errorf("a's update waits until %v, want %v (created + 3d)", wait, created.Add(3*24*time.Hour))
		}
		return
	}
	t.Errorf("no update of a among %+v", ups)
}
