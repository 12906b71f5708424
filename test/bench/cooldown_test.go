package bench

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/core/watch"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/registries/registrytest"
	"github.com/tidewatch/tidewatch/triggers"
)

// counting is a trigger that counts what it is fired with.
type counting struct {
	mu    sync.Mutex
	fired []string
}

func (c *counting) Describe(context.Context) sdk.Description {
	return sdk.Description{Type: "counting"}
}
func (c *counting) Configure(context.Context, string, map[string]string) error { return nil }
func (c *counting) Fire(ctx context.Context, ups []sdk.Update) []sdk.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range ups {
		c.fired = append(c.fired, u.Container+" "+u.Candidate)
	}
	return sdk.All(len(ups), sdk.OK("ok"))
}

func (c *counting) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.fired)
}

// TestCooldownEndToEnd runs the watch loop, the store and the dispatcher
// over a registry whose candidate was just pushed, for a container with
// tidewatch.update.min-age=3s and a trigger with MIN_AGE=1h beside a plain
// one: the first run records the update with its creation time and
// dispatches nothing; runs before the time read no manifest (HEAD only) and
// dispatch nothing; the first run after it dispatches to the plain trigger,
// once; the MIN_AGE trigger is still waiting.
func TestCooldownEndToEnd(t *testing.T) {
	ctx := context.Background()
	s := registrytest.New(t, registrytest.WithBearerAuth("", ""))
	s.PushCreated(t, "app", "1.0", time.Now().Add(-30*24*time.Hour))
	pushed := time.Now().UTC().Truncate(time.Second)
	s.PushCreated(t, "app", "2.0", pushed)
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	plain, patient := &counting{}, &counting{}
	hour := core.DefaultTriggerPolicy()
	if err := hour.Set(core.OptionMinAge, "1h"); err != nil {
		t.Fatal(err)
	}
	disp := triggers.New(st, []triggers.Instance{
		{Name: "counting.plain", Trigger: plain, Policy: core.DefaultTriggerPolicy()},
		{Name: "counting.patient", Trigger: patient, Policy: hour},
	}, quiet())
	e := engine{ctrs: []core.Container{{ID: "web", Name: "web", State: "running", Image: s.Host + "/app:1.0", ImageID: "sha256:web",
		Labels: map[string]string{core.LabelUpdateMinAge: "3s"}}}}
	reg := registries.New(registries.Options{Keychain: authn.NewMultiKeychain()}, quiet())
	w := watch.New(watch.Options{Host: "local", WatchByDefault: true, Memo: st, Dispatcher: disp, ReadCreated: true}, e, reg, st, quiet())
	run := func() registrytest.Counts {
		t.Helper()
		s.ResetCounts()
		checks, err := w.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c := checks[0]; c.Err != nil || c.Candidate != "2.0" {
			t.Fatalf("check = candidate %q err %v, want 2.0", c.Candidate, c.Err)
		}
		if err := disp.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		return s.Counts()
	}

	first := run()
	if first.ManifestGet != 1 || first.BlobGet != 1 {
		t.Errorf("first run: %d manifest GETs, %d blob GETs; want 1 and 1 (the candidate's config, once)", first.ManifestGet, first.BlobGet)
	}
	ups, err := st.Updates(ctx, "")
	if err != nil || len(ups) != 1 {
		t.Fatalf("updates = %+v, %v; want one", ups, err)
	}
	if !ups[0].CandidateCreated.Equal(pushed) {
		t.Errorf("update's candidate created %v, want %v (from its config)", ups[0].CandidateCreated, pushed)
	}
	if wait := ups[0].WaitUntil(time.Now()); !wait.Equal(pushed.Add(3*time.Second)) && time.Now().Before(pushed.Add(3*time.Second)) {
		t.Errorf("WaitUntil = %v, want %v", wait, pushed.Add(3*time.Second))
	}
	deadline := time.Now().Add(20 * time.Second)
	runs := 1
	for plain.count() == 0 {
		if time.Now().Before(pushed.Add(3 * time.Second)) {
			again := run()
			runs++
			if again.ManifestGet != 0 || again.BlobGet != 0 || again.TagList != 1 || again.ManifestHead != 1 {
				t.Errorf("run %d, nothing changed: %d manifest GETs, %d blob GETs, %d tag lists, %d HEADs; want 0, 0, 1, 1", runs, again.ManifestGet, again.BlobGet, again.TagList, again.ManifestHead)
			}
			if n := plain.count(); n != 0 && time.Now().Before(pushed.Add(3*time.Second)) {
				t.Fatalf("dispatched %d times before the candidate was 3s old", n)
			}
		} else {
			run()
			runs++
		}
		if time.Now().After(deadline) {
			t.Fatalf("not dispatched within 20s of the push")
		}
		time.Sleep(100 * time.Millisecond) // the next scheduled run
	}
	run() // and one more: ONCE
	if n, m := plain.count(), patient.count(); n != 1 || m != 0 {
		t.Errorf("fired plain %d times, patient %d times; want once and never (MIN_AGE=1h)", n, m)
	}
}
