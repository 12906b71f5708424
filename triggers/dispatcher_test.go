package triggers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// fake is an in-process trigger that records its calls. fire, when set,
// decides the results; nil delivers everything.
type fake struct {
	fire func(ctx context.Context, call int, ups []sdk.Update) []sdk.Result

	mu          sync.Mutex
	calls       [][]sdk.Update
	at          []time.Time
	perKey      map[string]int
	inFlight    int
	maxInFlight int
}

var _ sdk.Trigger = (*fake)(nil)

func (f *fake) Describe(context.Context) sdk.Description { return sdk.Description{Type: "fake"} }

func (f *fake) Configure(context.Context, string, map[string]string) error { return nil }

func (f *fake) Fire(ctx context.Context, ups []sdk.Update) []sdk.Result {
	f.mu.Lock()
	call := len(f.calls)
	f.calls = append(f.calls, ups)
	f.at = append(f.at, time.Now())
	if f.perKey == nil {
		f.perKey = map[string]int{}
	}
	for _, u := range ups {
		f.perKey[u.Key]++
	}
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if f.fire != nil {
		return f.fire(ctx, call, ups)
	}
	return sdk.All(len(ups), sdk.OK("ok"))
}

func (f *fake) snapshot() (calls [][]sdk.Update, perKey map[string]int, maxInFlight int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	perKey = map[string]int{}
	for k, v := range f.perKey {
		perKey[k] = v
	}
	return append([][]sdk.Update(nil), f.calls...), perKey, f.maxInFlight
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("store.Open error = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// chk is a check of container name (image app) on current with candidate offered.
func chk(name, current, candidate string, kind core.UpdateKind) core.Check {
	ref, err := core.ParseImageRef("registry.local/app:" + current)
	if err != nil {
		panic(err)
	}
	return core.Check{
		Container: core.Container{ID: "id-" + name, Name: name, DisplayName: name, Image: "registry.local/app:" + current,
			Labels: map[string]string{"team": "ops"}, State: "running"},
		Ref: ref, Current: current, Candidate: candidate, Kind: kind,
	}
}

// run is what a watch run hands the dispatcher: its ID and the updates it recorded.
type run struct {
	ID      string
	Updates []core.Update
}

// watchRun records checks as one run on host "local" and returns what Notify takes.
func watchRun(t testing.TB, s *store.Store, checks ...core.Check) run {
	t.Helper()
	ups, err := s.RecordRun(context.Background(), "local", checks, time.Time{})
	if err != nil {
		t.Fatalf("RecordRun error = %v", err)
	}
	return run{ID: newID("run"), Updates: ups}
}

func policy(edit func(*core.TriggerPolicy)) core.TriggerPolicy {
	p := core.DefaultTriggerPolicy()
	if edit != nil {
		edit(&p)
	}
	return p
}

// fastBackoff keeps retries short in tests.
var fastBackoff = WithBackoff(20*time.Millisecond, 2, 200*time.Millisecond)

func notify(t testing.TB, d *Dispatcher, r run) {
	t.Helper()
	if err := d.Notify(context.Background(), r.ID, r.Updates); err != nil {
		t.Fatalf("Notify error = %v", err)
	}
}

func drain(t testing.TB, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Drain(ctx); err != nil {
		t.Fatalf("Drain error = %v", err)
	}
}

func deliveries(t testing.TB, s *store.Store, f store.DeliveryFilter) []store.Delivery {
	t.Helper()
	ds, err := s.Deliveries(context.Background(), f)
	if err != nil {
		t.Fatalf("Deliveries error = %v", err)
	}
	return ds
}

func TestDeliveryIsWrittenBeforeFire(t *testing.T) {
	s := openStore(t)
	var seen []store.DeliveryStatus
	f := &fake{}
	f.fire = func(ctx context.Context, _ int, ups []sdk.Update) []sdk.Result {
		for _, d := range deliveries(t, s, store.DeliveryFilter{Trigger: "fake.one"}) {
			if d.Key == ups[0].Key {
				seen = append(seen, d.Status)
			}
		}
		return sdk.All(len(ups), sdk.OK("sent"))
	}
	d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: core.DefaultTriggerPolicy()}}, nil)
	notify(t, d, watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor)))
	drain(t, d)
	if diff := cmp.Diff([]store.DeliveryStatus{store.DeliveryRunning}, seen); diff != "" {
		t.Errorf("status of the delivery while fired (-want +got):\n%s", diff)
	}
	calls, _, _ := f.snapshot()
	u := calls[0][0]
	want := sdk.Update{Key: u.Key, Event: "update-available", Host: "local", Container: "web", ContainerName: "web", ContainerID: "id-web",
		Image: "registry.local/app", Current: "1.0.0", Candidate: "1.1.0", Kind: "minor", DetectedAt: u.DetectedAt}
	if diff := cmp.Diff(want, u); diff != "" || u.DetectedAt.IsZero() || !strings.HasPrefix(u.Key, "tw-") {
		t.Errorf("update fired (-want +got):\n%s", diff)
	}
	ds := deliveries(t, s, store.DeliveryFilter{})
	if len(ds) != 1 || ds[0].Status != store.DeliveryDelivered || ds[0].Detail != "sent" || ds[0].Key != u.Key {
		t.Errorf("deliveries after Drain = %+v, want one delivered with detail sent and the key fired", ds)
	}
	if ds[0].Update.Status != core.StatusNotified {
		t.Errorf("update status after delivery = %s, want notified", ds[0].Update.Status)
	}
}

func TestOncePerCandidateOrPerRun(t *testing.T) {
	for _, tc := range []struct {
		name           string
		once           bool
		wantFirstTwo   int // fires after two runs finding the same candidate
		wantAfterNewer int // fires after a third run finding a newer candidate
	}{
		{"once on: one delivery per candidate", true, 1, 2},
		{"once off: one delivery per run", false, 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			f := &fake{}
			d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: policy(func(p *core.TriggerPolicy) { p.Once = tc.once })}}, nil)
			for range 2 {
				notify(t, d, watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor)))
				drain(t, d)
			}
			calls, perKey, _ := f.snapshot()
			if len(calls) != tc.wantFirstTwo {
				t.Errorf("fires after two runs = %d, want %d", len(calls), tc.wantFirstTwo)
			}
			for k, n := range perKey {
				if n != 1 {
					t.Errorf("key %s fired %d times, want 1", k, n)
				}
			}
			notify(t, d, watchRun(t, s, chk("web", "1.0.0", "1.2.0", core.KindMinor)))
			drain(t, d)
			calls, _, _ = f.snapshot()
			if len(calls) != tc.wantAfterNewer {
				t.Fatalf("fires after a newer candidate = %d, want %d", len(calls), tc.wantAfterNewer)
			}
			if got := calls[len(calls)-1][0].Candidate; got != "1.2.0" {
				t.Errorf("last fire's candidate = %s, want 1.2.0", got)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	type attempt struct {
		status        store.DeliveryStatus
		attempts      int
		lastErrPrefix string
	}
	stuck := make(chan struct{})
	tests := []struct {
		name      string
		retries   int
		timeout   time.Duration
		fire      func(ctx context.Context, call int) sdk.Result
		wantFires int
		want      attempt
		wantKinds []string // history, oldest first
	}{
		{
			name: "retryable twice then delivered", retries: 5,
			fire: func(_ context.Context, call int) sdk.Result {
				if call < 2 {
					return sdk.Retry(errors.New("503 Service Unavailable"))
				}
				return sdk.OK("200 OK")
			},
			wantFires: 3, want: attempt{store.DeliveryDelivered, 3, ""},
			wantKinds: []string{"delivery-retry", "delivery-retry", "delivered"},
		},
		{
			name: "permanent error fails at once", retries: 5,
			fire:      func(context.Context, int) sdk.Result { return sdk.Fail(errors.New("404 Not Found")) },
			wantFires: 1, want: attempt{store.DeliveryFailed, 1, "404 Not Found"},
			wantKinds: []string{"delivery-failed"},
		},
		{
			name: "retries spent", retries: 3,
			fire:      func(context.Context, int) sdk.Result { return sdk.Retry(errors.New("connection refused")) },
			wantFires: 3, want: attempt{store.DeliveryFailed, 3, "giving up after 3 attempts: connection refused"},
			wantKinds: []string{"delivery-retry", "delivery-retry", "delivery-failed"},
		},
		{
			name: "deadline overrun is retried", retries: 5, timeout: 50 * time.Millisecond,
			fire: func(ctx context.Context, call int) sdk.Result {
				if call == 0 {
					<-ctx.Done()
					return sdk.Retry(ctx.Err())
				}
				return sdk.OK("")
			},
			wantFires: 2, want: attempt{store.DeliveryDelivered, 2, ""},
			wantKinds: []string{"delivery-retry", "delivered"},
		},
		{
			name: "a trigger ignoring its deadline is abandoned and retried", retries: 5, timeout: 20 * time.Millisecond,
			fire: func(ctx context.Context, call int) sdk.Result {
				if call == 0 {
					<-stuck
				}
				return sdk.OK("")
			},
			wantFires: 2, want: attempt{store.DeliveryDelivered, 2, ""},
			wantKinds: []string{"delivery-retry", "delivered"},
		},
	}
	t.Cleanup(func() { close(stuck) })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			f := &fake{fire: func(ctx context.Context, call int, ups []sdk.Update) []sdk.Result {
				return sdk.All(len(ups), tc.fire(ctx, call))
			}}
			p := policy(func(p *core.TriggerPolicy) { p.Retries, p.Deadline = tc.retries, tc.timeout })
			d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: p}}, nil, fastBackoff)
			notify(t, d, watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor)))
			drain(t, d)

			calls, perKey, _ := f.snapshot()
			if len(calls) != tc.wantFires || len(perKey) != 1 {
				t.Errorf("fires = %d with %d keys, want %d with one key", len(calls), len(perKey), tc.wantFires)
			}
			f.mu.Lock()
			for i := 1; i < len(f.at); i++ {
				// The n-th retry waits at least half of base·2^(n-1).
				if gap, least := f.at[i].Sub(f.at[i-1]), 10*time.Millisecond<<(i-1); gap < least {
					t.Errorf("attempt %d came %v after the previous one, want at least %v", i+1, gap, least)
				}
			}
			f.mu.Unlock()
			ds := deliveries(t, s, store.DeliveryFilter{})
			got := attempt{ds[0].Status, ds[0].Attempts, ds[0].LastError}
			if tc.want.status == store.DeliveryDelivered {
				got.lastErrPrefix = "" // the last error of an earlier attempt stays for the record
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(attempt{})); diff != "" {
				t.Errorf("delivery (-want +got):\n%s", diff)
			}
			evs, err := s.History(context.Background(), store.HistoryFilter{Kinds: []string{"delivered", "delivery-retry", "delivery-failed"}})
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for i := len(evs) - 1; i >= 0; i-- {
				kinds = append(kinds, evs[i].Kind)
				if !strings.HasPrefix(evs[i].Detail, "fake.one: ") || evs[i].Container != "web" || evs[i].To != "1.1.0" {
					t.Errorf("event %+v does not name the trigger, container and update", evs[i])
				}
			}
			if diff := cmp.Diff(tc.wantKinds, kinds); diff != "" {
				t.Errorf("history (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRestartResumesAndNeverRefires(t *testing.T) {
	s := openStore(t)
	inst := func(f *fake) []Instance {
		return []Instance{{Name: "fake.one", Trigger: f, Policy: core.DefaultTriggerPolicy()}}
	}

	// A first process enqueues three deliveries, claims two and "crashes"
	// (it never fires them, never records an outcome); the third it delivers.
	first := &fake{}
	d1 := New(s, inst(first), nil)
	notify(t, d1, watchRun(t, s,
		chk("a", "1.0.0", "1.1.0", core.KindMinor), chk("b", "1.0.0", "2.0.0", core.KindMajor), chk("c", "1.0.0", "1.0.1", core.KindPatch)))
	ds := deliveries(t, s, store.DeliveryFilter{})
	if len(ds) != 3 {
		t.Fatalf("deliveries enqueued = %d, want 3", len(ds))
	}
	if err := s.MarkDelivered(context.Background(), ds[0].ID, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRunning(context.Background(), []int64{ds[1].ID}, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	// A new process over the same store.
	second := &fake{}
	drain(t, New(s, inst(second), nil))
	_, perKey, _ := second.snapshot()
	want := map[string]int{ds[1].Key: 1, ds[2].Key: 1}
	if diff := cmp.Diff(want, perKey); diff != "" {
		t.Errorf("keys fired after restart (-want +got):\n%s", diff)
	}

	// And another: everything is finished, nothing is fired.
	third := &fake{}
	drain(t, New(s, inst(third), nil))
	if calls, _, _ := third.snapshot(); len(calls) != 0 {
		t.Errorf("fires after everything was delivered = %d, want 0", len(calls))
	}
	for _, d := range deliveries(t, s, store.DeliveryFilter{}) {
		if d.Status != store.DeliveryDelivered {
			t.Errorf("delivery %d is %s, want delivered", d.ID, d.Status)
		}
	}
}

func TestShutdownLeavesCutOffDeliveriesResumable(t *testing.T) {
	s := openStore(t)
	started := make(chan struct{}, 10)
	hang := &fake{fire: func(ctx context.Context, _ int, ups []sdk.Update) []sdk.Result {
		started <- struct{}{}
		<-ctx.Done()
		return sdk.All(len(ups), sdk.Retry(ctx.Err()))
	}}
	d := New(s, []Instance{{Name: "fake.one", Trigger: hang, Policy: policy(func(p *core.TriggerPolicy) { p.Concurrency = 1 })}}, nil,
		WithShutdownGrace(10*time.Millisecond))
	notify(t, d, watchRun(t, s, chk("a", "1.0.0", "1.1.0", core.KindMinor), chk("b", "1.0.0", "1.1.0", core.KindMinor)))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing fired within 10s")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	for _, dl := range deliveries(t, s, store.DeliveryFilter{}) {
		if dl.Status != store.DeliveryPending || dl.Attempts != 0 {
			t.Errorf("delivery %d after shutdown: %s with %d attempts, want pending with 0", dl.ID, dl.Status, dl.Attempts)
		}
	}
	ok := &fake{}
	drain(t, New(s, []Instance{{Name: "fake.one", Trigger: ok, Policy: core.DefaultTriggerPolicy()}}, nil))
	if _, perKey, _ := ok.snapshot(); len(perKey) != 2 {
		t.Errorf("keys delivered after restart = %d, want 2", len(perKey))
	}
}

func TestConcurrencyIsBoundedPerInstance(t *testing.T) {
	s := openStore(t)
	var checks []core.Check
	for i := range 12 {
		checks = append(checks, chk(fmt.Sprintf("c%02d", i), "1.0.0", "1.1.0", core.KindMinor))
	}
	gate := make(chan struct{})
	block := func(_ context.Context, _ int, ups []sdk.Update) []sdk.Result {
		<-gate
		return sdk.All(len(ups), sdk.OK(""))
	}
	a, b := &fake{fire: block}, &fake{fire: block}
	d := New(s, []Instance{
		{Name: "fake.a", Trigger: a, Policy: policy(func(p *core.TriggerPolicy) { p.Concurrency = 3 })},
		{Name: "fake.b", Trigger: b, Policy: policy(func(p *core.TriggerPolicy) { p.Concurrency = 1 })},
	}, nil)
	notify(t, d, watchRun(t, s, checks...))
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		errc <- d.Drain(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, ma := a.snapshot()
		_, _, mb := b.snapshot()
		if ma >= 3 && mb >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in flight never reached the limits: a %d, b %d", ma, mb)
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	if err := <-errc; err != nil {
		t.Fatalf("Drain error = %v", err)
	}
	for _, tc := range []struct {
		f    *fake
		want int
	}{{a, 3}, {b, 1}} {
		calls, _, got := tc.f.snapshot()
		if got != tc.want || len(calls) != 12 {
			t.Errorf("max in flight = %d over %d fires, want %d over 12", got, len(calls), tc.want)
		}
	}
}

func TestBatchModeFiresOnceWithEveryUpdate(t *testing.T) {
	s := openStore(t)
	f := &fake{fire: func(_ context.Context, call int, ups []sdk.Update) []sdk.Result {
		rs := sdk.All(len(ups), sdk.OK("batch"))
		if call == 0 {
			for i, u := range ups {
				if u.Container == "b" {
					rs[i] = sdk.Retry(errors.New("mailbox busy"))
				}
			}
		}
		return rs
	}}
	d := New(s, []Instance{{Name: "fake.batch", Trigger: f, Policy: policy(func(p *core.TriggerPolicy) { p.Mode = core.ModeBatch })}}, nil, fastBackoff)
	notify(t, d, watchRun(t, s,
		chk("a", "1.0.0", "1.1.0", core.KindMinor), chk("b", "1.0.0", "2.0.0", core.KindMajor),
		chk("c", "1.0.0", "1.0.1", core.KindPatch), chk("d", "1.0.0", "", core.KindNone)))
	drain(t, d)
	calls, _, _ := f.snapshot()
	var got [][]string
	for _, c := range calls {
		var names []string
		for _, u := range c {
			names = append(names, u.Container)
		}
		got = append(got, names)
	}
	if diff := cmp.Diff([][]string{{"a", "b", "c"}, {"b"}}, got); diff != "" {
		t.Errorf("containers per fire (-want +got):\n%s", diff)
	}
	ds := deliveries(t, s, store.DeliveryFilter{Status: store.DeliveryDelivered})
	if len(ds) != 3 || ds[0].Batch == "" || ds[0].Batch != ds[2].Batch {
		t.Errorf("delivered = %+v, want 3 of one batch", ds)
	}
}

func TestRequestFiresAManualTrigger(t *testing.T) {
	s := openStore(t)
	manual := &fake{}
	d := New(s, []Instance{{Name: "fake.manual", Trigger: manual, Policy: policy(func(p *core.TriggerPolicy) { p.Auto = false })}}, nil)
	run := watchRun(t, s, chk("web", "1.0.0", "2.0.0", core.KindMajor))
	notify(t, d, run)
	drain(t, d)
	if calls, _, _ := manual.snapshot(); len(calls) != 0 {
		t.Fatalf("a manual trigger fired %d times on detection, want 0", len(calls))
	}
	ctx := context.Background()
	if _, err := d.Request(ctx, run.Updates[0].ID, "fake.other", ""); !errors.Is(err, ErrUnknownTrigger) {
		t.Errorf("Request(unknown trigger) error = %v, want ErrUnknownTrigger", err)
	}
	if _, err := d.Request(ctx, 999, "fake.manual", ""); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Request(unknown update) error = %v, want core.ErrNotFound", err)
	}
	var keys []string
	for range 2 {
		dl, err := d.Request(ctx, run.Updates[0].ID, "fake.manual", "user:alice")
		if err != nil {
			t.Fatalf("Request error = %v", err)
		}
		if dl.Status != store.DeliveryPending || dl.Trigger != "fake.manual" || dl.Update.Candidate != "2.0.0" {
			t.Errorf("Request = %+v, want a pending delivery of 2.0.0 to fake.manual", dl)
		}
		keys = append(keys, dl.Key)
		drain(t, d)
	}
	calls, _, _ := manual.snapshot()
	if len(calls) != 2 || calls[0][0].Key != keys[0] || calls[1][0].Key != keys[1] || keys[0] == keys[1] {
		t.Errorf("fires = %v, want one per request with its own key %v", calls, keys)
	}
}

func TestRunFiresWhatNotifyEnqueues(t *testing.T) {
	s := openStore(t)
	f := &fake{}
	d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: core.DefaultTriggerPolicy()}}, nil, WithPollInterval(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	notify(t, d, watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if calls, _, _ := f.snapshot(); len(calls) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not fire within 10s of Notify")
		}
		time.Sleep(time.Millisecond)
	}
	if err := d.Drain(ctx); !errors.Is(err, ErrBusy) {
		t.Errorf("Drain while Run runs = %v, want ErrBusy", err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

func TestNotifyEventGoesToTheInstancesThatWantIt(t *testing.T) {
	s := openStore(t)
	rollouts, updates := &fake{}, &fake{}
	d := New(s, []Instance{
		{Name: "fake.rollouts", Trigger: rollouts, Policy: policy(func(p *core.TriggerPolicy) { p.Events = []core.Event{core.EventUpdateRolledBack} })},
		{Name: "fake.updates", Trigger: updates, Policy: core.DefaultTriggerPolicy()},
	}, nil)
	run := watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor))
	for range 2 { // each occurrence is delivered
		if err := d.NotifyEvent(context.Background(), run.Updates[0], core.EventUpdateRolledBack, "health check failed"); err != nil {
			t.Fatalf("NotifyEvent error = %v", err)
		}
	}
	drain(t, d)
	calls, _, _ := rollouts.snapshot()
	if len(calls) != 2 || calls[0][0].Event != sdk.EventUpdateRolledBack || calls[0][0].Detail != "health check failed" || calls[0][0].Key == calls[1][0].Key {
		t.Errorf("rollout trigger fires = %+v, want two rolled-back events with their detail and distinct keys", calls)
	}
	if calls, _, _ := updates.snapshot(); len(calls) != 0 {
		t.Errorf("update-available trigger fired %d times on a rollout event, want 0", len(calls))
	}
	if u, _ := s.Update(context.Background(), run.Updates[0].ID); u.Status != core.StatusPending {
		t.Errorf("update status after a rollout event delivery = %s, want pending (left alone)", u.Status)
	}
}

func TestBackoffGrowsWithJitterUpToMax(t *testing.T) {
	d := New(nil, nil, nil, WithBackoff(time.Second, 2, 5*time.Minute))
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: 5 * time.Minute, 100: 5 * time.Minute} {
		for range 20 {
			if got := d.backoff(n); got < want/2 || got > want {
				t.Errorf("backoff(%d) = %v, want within [%v, %v]", n, got, want/2, want)
			}
		}
	}
}

// BenchmarkDispatch measures deliveries per second through the outbox
// (enqueue, claim, fire, record) to an in-process trigger that does nothing.
func BenchmarkDispatch(b *testing.B) {
	s := openStore(b)
	f := &fake{fire: func(_ context.Context, _ int, ups []sdk.Update) []sdk.Result { return sdk.All(len(ups), sdk.OK("")) }}
	d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: policy(func(p *core.TriggerPolicy) { p.Once = false })}}, nil)
	var checks []core.Check
	for i := range 100 {
		checks = append(checks, chk(fmt.Sprintf("c%03d", i), "1.0.0", "1.1.0", core.KindMinor))
	}
	run := watchRun(b, s, checks...)
	b.ResetTimer()
	start := time.Now()
	n := 0
	for n < b.N {
		r := run
		r.ID = ""
		r.Updates = run.Updates[:min(len(run.Updates), b.N-n)]
		notify(b, d, r)
		n += len(r.Updates)
	}
	drain(b, d)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}

// TestRolloutOutcomeReachesListeners: a trigger that deploys (compose)
// reports its outcome as an event; the update takes the matching status, the
// history records it, and the triggers listening for it are fired with it.
func TestRolloutOutcomeReachesListeners(t *testing.T) {
	tests := []struct {
		name   string
		result sdk.Result
		status core.UpdateStatus
		event  core.Event
	}{
		{name: "applied", result: sdk.Result{Detail: "1.0.0 → 1.1.0 healthy", Event: sdk.EventUpdateApplied}, status: core.StatusApplied, event: core.EventUpdateApplied},
		{name: "rolled back", result: sdk.Result{Err: sdk.Permanent(errors.New("health check failed")), Event: sdk.EventUpdateRolledBack}, status: core.StatusRolledBack, event: core.EventUpdateRolledBack},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			deploy := &fake{fire: func(_ context.Context, _ int, ups []sdk.Update) []sdk.Result { return sdk.All(len(ups), tc.result) }}
			listener := &fake{}
			d := New(s, []Instance{
				{Name: "compose.prod", Trigger: deploy, Policy: core.DefaultTriggerPolicy(), Deploys: true},
				{Name: "fake.oncall", Trigger: listener, Policy: policy(func(p *core.TriggerPolicy) { p.Events = []core.Event{tc.event} })},
			}, nil)
			run := watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor))
			notify(t, d, run)
			drain(t, d)
			calls, _, _ := listener.snapshot()
			if len(calls) != 1 || calls[0][0].Event != string(tc.event) || calls[0][0].Container != "web" {
				t.Fatalf("listener fires = %+v, want one %s about web", calls, tc.event)
			}
			if !strings.Contains(calls[0][0].Detail, firstNonEmpty(tc.result.Detail, "health check failed")) {
				t.Errorf("event detail = %q, want the rollout's", calls[0][0].Detail)
			}
			u, err := s.Update(context.Background(), run.Updates[0].ID)
			if err != nil || u.Status != tc.status {
				t.Errorf("update status = %s (%v), want %s", u.Status, err, tc.status)
			}
			evs, err := s.History(context.Background(), store.HistoryFilter{Kinds: []string{string(tc.event)}})
			if err != nil || len(evs) != 1 {
				t.Errorf("history of %s = %v, %v; want one event", tc.event, evs, err)
			}
		})
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestObserverSeesEveryAttempt: the observer hears each attempt once its
// outcome is written, so that what it reads of the store on hearing it (the
// UI's event stream; Home Assistant's entity, refreshed from the API) is that
// outcome, not the state before it: the delivery's status and the rolled-out
// update's.
func TestObserverSeesEveryAttempt(t *testing.T) {
	s := openStore(t)
	calls := 0
	f := &fake{fire: func(_ context.Context, call int, ups []sdk.Update) []sdk.Result {
		calls++
		if call == 0 {
			return sdk.All(len(ups), sdk.Retry(errors.New("busy")))
		}
		return sdk.All(len(ups), sdk.Result{Event: sdk.EventUpdateApplied})
	}}
	var mu sync.Mutex
	var seen []string
	d := New(s, []Instance{{Name: "compose.prod", Trigger: f, Policy: core.DefaultTriggerPolicy(), Deploys: true}}, nil, fastBackoff,
		WithObserver(func(trigger string, id int64, status store.DeliveryStatus, event core.Event) {
			dl, err := s.Delivery(context.Background(), id)
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, trigger+" "+string(status)+" "+string(event))
			if err != nil || dl.Status != status {
				t.Errorf("told of delivery %d %s; the store holds %s (%v)", id, status, dl.Status, err)
			}
			if event == core.EventUpdateApplied && dl.Update.Status != core.StatusApplied {
				t.Errorf("told of delivery %d %s; the store holds its update %s", id, event, dl.Update.Status)
			}
		}))
	notify(t, d, watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor)))
	drain(t, d)
	mu.Lock()
	defer mu.Unlock()
	want := []string{"compose.prod pending ", "compose.prod delivered update-applied"}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
}

// TestRolloutEndingAtShutdownIsNotified: a rollout that ends while the
// dispatcher shuts down still hands its event to the listening triggers
// (their delivery waits in the outbox for the next start).
func TestRolloutEndingAtShutdownIsNotified(t *testing.T) {
	s := openStore(t)
	firing := make(chan struct{})
	release := make(chan struct{})
	deploy := &fake{fire: func(_ context.Context, _ int, ups []sdk.Update) []sdk.Result {
		close(firing)
		<-release
		return sdk.All(len(ups), sdk.Result{Err: sdk.Permanent(errors.New("health check failed")), Event: sdk.EventUpdateRolledBack})
	}}
	listener := &fake{}
	d := New(s, []Instance{
		{Name: "compose.prod", Trigger: deploy, Policy: core.DefaultTriggerPolicy(), Deploys: true},
		{Name: "fake.oncall", Trigger: listener, Policy: policy(func(p *core.TriggerPolicy) { p.Events = []core.Event{core.EventUpdateRolledBack} })},
	}, nil, WithShutdownGrace(10*time.Second))
	notify(t, d, watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	<-firing
	cancel() // shutdown begins while the rollout runs
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	pending := deliveries(t, s, store.DeliveryFilter{Trigger: "fake.oncall"})
	if len(pending) != 1 || pending[0].Event != core.EventUpdateRolledBack {
		t.Errorf("listener deliveries after the shutdown = %+v, want one update-rolled-back waiting", pending)
	}
}

// TestRequestGoesThroughThePolicy: Apply and deploys are requests of a
// deploying trigger: its policy refuses an excluded container (saying which
// rule, in the answer and the history), its threshold does not stop a
// person, the update is applying while the rollout runs, and the rollout's
// typed report comes back with its outcome.
func TestRequestGoesThroughThePolicy(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	release := make(chan struct{})
	var seen []sdk.Update
	var mu sync.Mutex
	deploy := &fake{fire: func(_ context.Context, _ int, ups []sdk.Update) []sdk.Result {
		mu.Lock()
		seen = append(seen, ups...)
		mu.Unlock()
		<-release
		return sdk.All(len(ups), sdk.Result{Rollout: &sdk.Rollout{Outcome: sdk.OutcomeApplied, Method: "compose cli", Target: "shop/web",
			Steps: []sdk.RolloutStep{{Name: "pull", Duration: time.Second}, {Name: "recreate", Duration: 2 * time.Second}}}})
	}}
	d := New(s, []Instance{{Name: "compose.prod", Trigger: deploy, Deploys: true, Policy: policy(func(p *core.TriggerPolicy) {
		p.Auto, p.Threshold, p.Exclude = false, core.ThresholdPatch, []string{"db-*"}
	})}}, nil)
	db := chk("db-1", "1.0.0", "2.0.0", core.KindMajor)
	web := chk("web", "1.0.0", "2.0.0", core.KindMajor)
	web.Container.Labels = map[string]string{"com.docker.compose.project": "shop", "secret.token": "s3cr3t"}
	r := watchRun(t, s, db, web)
	dbU, webU := r.Updates[0], r.Updates[1]

	_, err := d.Request(ctx, dbU.ID, "compose.prod", "user:alice")
	refusal, ok := IsRefusal(err)
	if !ok || refusal.Rule != "EXCLUDE=db-*" {
		t.Fatalf("Request(db-1) = %v, want a refusal by EXCLUDE=db-*", err)
	}
	evs, _ := s.History(ctx, store.HistoryFilter{Kinds: []string{store.EventRefused}})
	if len(evs) != 1 || evs[0].Principal != "user:alice" || !strings.Contains(evs[0].Detail, "EXCLUDE=db-*") || evs[0].Trigger != "compose.prod" {
		t.Errorf("history of the refusal = %+v", evs)
	}
	if ds := deliveries(t, s, store.DeliveryFilter{UpdateID: dbU.ID}); len(ds) != 0 {
		t.Errorf("a refused request enqueued %+v", ds)
	}

	// A major update, beyond THRESHOLD=patch: a person may still apply it.
	dl, err := d.Request(ctx, webU.ID, "compose.prod", "token:ci")
	if err != nil {
		t.Fatalf("Request(web) = %v", err)
	}
	if dl.Update.Status != core.StatusApplying || dl.Principal != "token:ci" {
		t.Errorf("Request(web) = %+v, want the update applying, asked by token:ci", dl)
	}
	if got, _ := s.Update(ctx, webU.ID); got.Status != core.StatusApplying {
		t.Errorf("stored status = %s, want applying", got.Status)
	}
	if _, err := d.Request(ctx, webU.ID, "compose.prod", "token:ci"); !errors.Is(err, ErrApplying) {
		t.Errorf("a second Request while applying = %v, want ErrApplying", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go d.Run(runCtx)
	close(release)
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	done, err := d.Await(waitCtx, dl.ID)
	if err != nil {
		t.Fatalf("Await = %v", err)
	}
	if done.Status != store.DeliveryDelivered || done.Rollout == nil || done.Rollout.Outcome != core.OutcomeApplied ||
		len(done.Rollout.Steps) != 2 || done.Rollout.Steps[1].Duration != 2*time.Second || done.Update.Status != core.StatusApplied {
		t.Errorf("delivery after the rollout = %+v (rollout %+v)", done, done.Rollout)
	}
	if !strings.HasPrefix(done.Detail, "applied ") || !strings.Contains(done.Detail, "recreate 2000ms") {
		t.Errorf("detail = %q, want the rollout's summary and steps", done.Detail)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0].Principal != "token:ci" || seen[0].Labels["secret.token"] != "s3cr3t" {
		t.Errorf("the deploying trigger was handed %+v, want the principal and every label", seen)
	}
}

// TestLabelsSharedWithNotifyingTriggers: a notifying trigger sees
// tidewatch.* labels and those its LABELS option lists, nothing else.
func TestLabelsSharedWithNotifyingTriggers(t *testing.T) {
	s := openStore(t)
	plain, listed := &fake{}, &fake{}
	d := New(s, []Instance{
		{Name: "webhook.plain", Trigger: plain, Policy: core.DefaultTriggerPolicy()},
		{Name: "webhook.listed", Trigger: listed, Policy: policy(func(p *core.TriggerPolicy) { p.Labels = []string{"com.example.*"} })},
	}, nil)
	c := chk("web", "1.0.0", "1.1.0", core.KindMinor)
	c.Container.Labels = map[string]string{"tidewatch.display.name": "Web", "com.example.team": "ops", "db.password": "hunter2"}
	notify(t, d, watchRun(t, s, c))
	drain(t, d)
	for _, tc := range []struct {
		f    *fake
		want map[string]string
	}{
		{plain, map[string]string{"tidewatch.display.name": "Web"}},
		{listed, map[string]string{"tidewatch.display.name": "Web", "com.example.team": "ops"}},
	} {
		calls, _, _ := tc.f.snapshot()
		if len(calls) != 1 {
			t.Fatalf("calls = %v", calls)
		}
		if diff := cmp.Diff(tc.want, calls[0][0].Labels); diff != "" {
			t.Errorf("labels handed (-want +got):\n%s", diff)
		}
	}
}

// TestOnlyDeployingTriggersCauseRolloutEvents: a notifying trigger that
// claims an update-applied does not mark the update applied.
func TestOnlyDeployingTriggersCauseRolloutEvents(t *testing.T) {
	s := openStore(t)
	liar := &fake{fire: func(_ context.Context, _ int, ups []sdk.Update) []sdk.Result {
		return sdk.All(len(ups), sdk.Result{Event: sdk.EventUpdateApplied, Rollout: &sdk.Rollout{Outcome: sdk.OutcomeApplied}})
	}}
	d := New(s, []Instance{{Name: "webhook.liar", Trigger: liar, Policy: core.DefaultTriggerPolicy()}}, nil)
	r := watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor))
	notify(t, d, r)
	drain(t, d)
	if u, _ := s.Update(context.Background(), r.Updates[0].ID); u.Status != core.StatusNotified {
		t.Errorf("status = %s, want notified (a notification applies nothing)", u.Status)
	}
}

// TestDeployingTriggerDefaultsToALongDeadline: a trigger that deploys gets
// 10m unless DEADLINE is set.
func TestDeployingTriggerDefaultsToALongDeadline(t *testing.T) {
	set := policy(func(p *core.TriggerPolicy) { _ = p.Set(core.OptionDeadline, "2m") })
	d := New(nil, []Instance{
		{Name: "compose.a", Trigger: &fake{}, Deploys: true, Policy: core.DefaultTriggerPolicy()},
		{Name: "compose.b", Trigger: &fake{}, Deploys: true, Policy: set},
		{Name: "webhook.c", Trigger: &fake{}, Policy: core.DefaultTriggerPolicy()},
	}, nil)
	for name, want := range map[string]time.Duration{"compose.a": core.DefaultDeployDeadline, "compose.b": 2 * time.Minute, "webhook.c": core.DefaultDeadline} {
		if in, _ := d.Instance(name); in.Policy.Deadline != want {
			t.Errorf("%s deadline = %s, want %s", name, in.Policy.Deadline, want)
		}
	}
}

// fakeCreds answers every registry with the same credentials.
type fakeCreds struct{ auth core.RegistryAuth }

func (f fakeCreds) Credentials(context.Context, string) (core.RegistryAuth, error) {
	return f.auth, nil
}

// TestDeployingTriggersGetRegistryCredentials: a trigger that deploys is
// handed the credentials detection reads the registry with, so its pull sees
// what detection saw; a notifying trigger is not.
func TestDeployingTriggersGetRegistryCredentials(t *testing.T) {
	s := openStore(t)
	deploy, notifyOnly := &fake{fire: func(_ context.Context, _ int, ups []sdk.Update) []sdk.Result {
		return sdk.All(len(ups), sdk.Result{Rollout: &sdk.Rollout{Outcome: sdk.OutcomeApplied}})
	}}, &fake{}
	d := New(s, []Instance{
		{Name: "compose.prod", Trigger: deploy, Policy: core.DefaultTriggerPolicy(), Deploys: true},
		{Name: "webhook.ops", Trigger: notifyOnly, Policy: core.DefaultTriggerPolicy()},
	}, nil, WithCredentials(fakeCreds{core.RegistryAuth{Server: "registry.local", Username: "bot", Password: "canary-9d1"}}))
	notify(t, d, watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor)))
	drain(t, d)
	calls, _, _ := deploy.snapshot()
	if len(calls) != 1 || calls[0][0].RegistryAuth == nil || calls[0][0].RegistryAuth.Password != "canary-9d1" || calls[0][0].RegistryAuth.Server != "registry.local" {
		t.Errorf("the deploying trigger got %+v, want the registry's credentials", calls)
	}
	calls, _, _ = notifyOnly.snapshot()
	if len(calls) != 1 || calls[0][0].RegistryAuth != nil {
		t.Errorf("the notifying trigger got %+v, want no credentials", calls)
	}
}

// TestRetryDueWhileItsOutcomeIsWrittenIsNotLeftToThePoll: a retry whose
// time comes before its failed attempt's outcome is written (a short
// backoff, a slow disk) is fired once the write ends, not at the next poll
// an hour later.
func TestRetryDueWhileItsOutcomeIsWrittenIsNotLeftToThePoll(t *testing.T) {
	s := openStore(t)
	f := &fake{fire: func(_ context.Context, call int, ups []sdk.Update) []sdk.Result {
		if call == 0 {
			return sdk.All(len(ups), sdk.Retry(errors.New("503 Service Unavailable")))
		}
		return sdk.All(len(ups), sdk.OK("200 OK"))
	}}
	d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: core.DefaultTriggerPolicy()}}, nil,
		WithPollInterval(time.Hour), WithBackoff(time.Microsecond, 1, time.Microsecond))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-errc
	}()
	notify(t, d, watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if calls, _, _ := f.snapshot(); len(calls) == 2 {
			break
		}
		if time.Now().After(deadline) {
			calls, _, _ := f.snapshot()
			t.Fatalf("%d Fire calls within 10s, want the retry fired after the first attempt's outcome was written", len(calls))
		}
		time.Sleep(time.Millisecond)
	}
}
