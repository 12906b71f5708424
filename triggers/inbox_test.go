package triggers

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
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
	d.handOver(created, nil, func(id int64) (core.Update, bool) { u, ok := byID[id]; return u, ok })
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

// countingOutbox counts the claims a dispatcher writes.
type countingOutbox struct {
	*store.Store
	mu     sync.Mutex
	claims int
}

func (c *countingOutbox) Claim(ctx context.Context, ids []int64, at, lease time.Time) ([]int64, error) {
	c.mu.Lock()
	c.claims++
	c.mu.Unlock()
	return c.Store.Claim(ctx, ids, at, lease)
}

func (c *countingOutbox) claimed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.claims
}

// While Run runs, a Notify of no more updates than an instance's
// CONCURRENCY writes them claimed (one commit fewer) and they are fired
// without a claim of their own; a larger one is claimed by the loop.
func TestNotifyWritesAFewDeliveriesClaimed(t *testing.T) {
	s := openStore(t)
	out := &countingOutbox{Store: s}
	running := make(chan int, 1)
	f := &fake{fire: func(ctx context.Context, call int, ups []sdk.Update) []sdk.Result {
		if call == 0 {
			ds, _ := s.Deliveries(ctx, store.DeliveryFilter{Status: store.DeliveryRunning})
			running <- len(ds)
		}
		return sdk.All(len(ups), sdk.OK(""))
	}}
	d := New(out, []Instance{{Name: "fake.one", Trigger: f, Policy: policy(func(p *core.TriggerPolicy) { p.Concurrency = 2 })}}, nil,
		WithPollInterval(time.Hour))
	runLoop(t, d)
	// The loop's first read of the outbox (nothing due) happens before
	// the Notify, so that the loop is running when it comes.
	deadline := time.Now().Add(10 * time.Second)
	for !d.looping.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the loop did not start within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	before := out.claimed()
	notify(t, d, watchRun(t, s, chk("one", "1.0.0", "1.1.0", core.KindMinor)))
	waitFires(t, f, 1)
	if got := <-running; got != 1 {
		t.Errorf("running deliveries while the first was fired = %d, want 1", got)
	}
	if n := out.claimed() - before; n != 0 {
		t.Errorf("claims written for a delivery written claimed = %d, want 0", n)
	}
	notify(t, d, watchRun(t, s, chk("a", "1.0.0", "1.1.0", core.KindMinor), chk("b", "1.0.0", "1.1.0", core.KindMinor),
		chk("c", "1.0.0", "1.1.0", core.KindMinor)))
	perKey := waitFires(t, f, 4)
	if n := out.claimed() - before; n == 0 {
		t.Errorf("claims written for 3 deliveries to an instance of CONCURRENCY 2 = 0, want the loop's")
	}
	for k, n := range perKey {
		if n != 1 {
			t.Errorf("key %s fired %d times, want once", k, n)
		}
	}
}

// Drain of many more deliveries than it claims at a time finishes without
// waiting for a poll of the outbox: each read of the outbox that left due
// deliveries behind is followed by another.
func TestDrainReadsTheBacklogWithoutPolling(t *testing.T) {
	s := openStore(t)
	var checks []core.Check
	for i := range 600 {
		checks = append(checks, chk(fmt.Sprintf("c%03d", i), "1.0.0", "1.1.0", core.KindMinor))
	}
	r := watchRun(t, s, checks...)
	f := &fake{fire: func(_ context.Context, call int, ups []sdk.Update) []sdk.Result {
		if call%7 == 0 {
			runtime.Gosched() // let the loop run between fires
		}
		return sdk.All(len(ups), sdk.OK(""))
	}}
	d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: policy(func(p *core.TriggerPolicy) { p.Concurrency = 8 })}}, nil,
		WithPollInterval(time.Hour))
	notify(t, d, r)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Drain(ctx); err != nil {
		t.Fatalf("Drain error = %v (a backlog left for the hourly poll?)", err)
	}
	if _, perKey, _ := f.snapshot(); len(perKey) != 600 {
		t.Errorf("keys fired = %d, want 600", len(perKey))
	}
}
