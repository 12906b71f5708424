package triggers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
)

// runLoop runs d until the test ends.
func runLoop(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}

// waitFires polls f until it has seen want keys, or fails after 20s.
func waitFires(t *testing.T, f *fake, want int) map[string]int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, perKey, _ := f.snapshot()
		if len(perKey) >= want {
			return perKey
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys fired = %d within 20s, want %d", len(perKey), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// With the outbox never polled, Run fires what Notify hands over, and
// reads the outbox for what the inbox could not hold: each key once.
func TestRunFiresMoreThanTheInboxHolds(t *testing.T) {
	s := openStore(t)
	f := &fake{}
	d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: core.DefaultTriggerPolicy()}}, nil, WithPollInterval(time.Hour))
	runLoop(t, d)
	var checks []core.Check
	n := inboxCap + 44
	for i := range n {
		checks = append(checks, chk(fmt.Sprintf("c%03d", i), "1.0.0", "1.1.0", core.KindMinor))
	}
	notify(t, d, watchRun(t, s, checks...))
	perKey := waitFires(t, f, n)
	for k, times := range perKey {
		if times != 1 {
			t.Errorf("key %s fired %d times, want once", k, times)
		}
	}
	// And one more run after the overflow: handed over again.
	notify(t, d, watchRun(t, s, chk("late", "1.0.0", "1.1.0", core.KindMinor)))
	waitFires(t, f, n+1)
}

// A delivery handed over after it was finished (its handing-over thread
// was slow) is not fired again: the store's claim does not confirm it.
func TestHandedOverButFinishedIsNotFired(t *testing.T) {
	s := openStore(t)
	f := &fake{}
	d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: core.DefaultTriggerPolicy()}}, nil, WithPollInterval(time.Hour))
	r := watchRun(t, s, chk("done", "1.0.0", "1.1.0", core.KindMinor), chk("todo", "1.0.0", "1.1.0", core.KindMinor))
	ctx := context.Background()
	created, err := s.Enqueue(ctx, []store.NewDelivery{
		{UpdateID: r.Updates[0].ID, Trigger: "fake.one", Candidate: "1.1.0", Event: core.EventUpdateAvailable},
		{UpdateID: r.Updates[1].ID, Trigger: "fake.one", Candidate: "1.1.0", Event: core.EventUpdateAvailable},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(ctx, created[0].ID, "by an earlier attempt", time.Now()); err != nil {
		t.Fatal(err)
	}
	runLoop(t, d)
	// Wait for the loop's first read of the outbox to fire the pending one.
	waitFires(t, f, 1)
	byID := map[int64]core.Update{r.Updates[0].ID: r.Updates[0], r.Updates[1].ID: r.Updates[1]}
	d.handOver(created, func(id int64) (core.Update, bool) { u, ok := byID[id]; return u, ok })
	// A later delivery, handed over behind them, is fired: the loop took the inbox.
	notify(t, d, watchRun(t, s, chk("next", "1.0.0", "1.1.0", core.KindMinor)))
	perKey := waitFires(t, f, 2)
	if _, fired := perKey[created[0].Key]; fired {
		t.Errorf("the delivered delivery was fired again: %v", perKey)
	}
	if perKey[created[1].Key] != 1 {
		t.Errorf("the pending delivery fired %d times, want once", perKey[created[1].Key])
	}
}

// A delivery not due yet, written by an earlier process, is fired when it
// becomes due, though the outbox is never polled.
func TestRunWakesForADeliveryDueLater(t *testing.T) {
	s := openStore(t)
	f := &fake{}
	r := watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor))
	due := time.Now().Add(300 * time.Millisecond)
	if _, err := s.Enqueue(context.Background(), []store.NewDelivery{{UpdateID: r.Updates[0].ID, Trigger: "fake.one",
		Candidate: "1.1.0", Event: core.EventUpdateAvailable, NotBefore: due}}); err != nil {
		t.Fatal(err)
	}
	d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: core.DefaultTriggerPolicy()}}, nil, WithPollInterval(time.Hour))
	runLoop(t, d)
	waitFires(t, f, 1)
	f.mu.Lock()
	at := f.at[0]
	f.mu.Unlock()
	if at.Before(due) {
		t.Errorf("fired at %v, before it was due (%v)", at, due)
	}
}
