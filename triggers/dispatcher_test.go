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

func (f *fake) Describe() sdk.Description { return sdk.Description{Type: "fake"} }

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

// watchRun records checks as one run on host "local" and returns what Notify takes.
func watchRun(t testing.TB, s *store.Store, checks ...core.Check) RunResult {
	t.Helper()
	ctx := context.Background()
	if err := s.RecordRun(ctx, "local", checks, time.Time{}); err != nil {
		t.Fatalf("RecordRun error = %v", err)
	}
	open, err := s.OpenUpdates(ctx, "local")
	if err != nil {
		t.Fatalf("OpenUpdates error = %v", err)
	}
	return NewRunResult("", "local", checks, open)
}

func policy(edit func(*Policy)) Policy {
	p := DefaultPolicy()
	if edit != nil {
		edit(&p)
	}
	return p
}

// fastBackoff keeps retries short in tests.
var fastBackoff = WithBackoff(20*time.Millisecond, 2, 200*time.Millisecond)

func notify(t testing.TB, d *Dispatcher, run RunResult) {
	t.Helper()
	if err := d.Notify(context.Background(), run); err != nil {
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

func TestNewRunResultKeepsTheContainersWithUpdates(t *testing.T) {
	open := []store.UpdateRecord{
		{Update: core.Update{ID: 1, Host: "local", ContainerName: "web"}},
		{Update: core.Update{ID: 2, Host: "local", ContainerName: "db"}},
		{Update: core.Update{ID: 3, Host: "other", ContainerName: "web"}},
	}
	checks := []core.Check{chk("web", "1.0.0", "1.1.0", core.KindMinor), chk("db", "1.0.0", "", core.KindNone)}
	got := NewRunResult("r", "local", checks, open)
	if diff := cmp.Diff(RunResult{ID: "r", Updates: open[:1]}, got); diff != "" {
		t.Errorf("NewRunResult (-want +got):\n%s", diff)
	}
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
	d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: DefaultPolicy()}}, nil)
	notify(t, d, watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor)))
	drain(t, d)
	if diff := cmp.Diff([]store.DeliveryStatus{store.DeliveryRunning}, seen); diff != "" {
		t.Errorf("status of the delivery while fired (-want +got):\n%s", diff)
	}
	calls, _, _ := f.snapshot()
	u := calls[0][0]
	want := sdk.Update{Key: u.Key, Event: "update-available", Host: "local", Container: "web", ContainerID: "id-web",
		Image: "registry.local/app", Current: "1.0.0", Candidate: "1.1.0", Kind: "minor", DetectedAt: u.DetectedAt,
		Labels: map[string]string{"team": "ops"}}
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
			d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: policy(func(p *Policy) { p.Once = tc.once })}}, nil)
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
			p := policy(func(p *Policy) { p.Retries, p.Timeout = tc.retries, tc.timeout })
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
	inst := func(f *fake) []Instance { return []Instance{{Name: "fake.one", Trigger: f, Policy: DefaultPolicy()}} }

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
	d := New(s, []Instance{{Name: "fake.one", Trigger: hang, Policy: policy(func(p *Policy) { p.Concurrency = 1 })}}, nil,
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
	drain(t, New(s, []Instance{{Name: "fake.one", Trigger: ok, Policy: DefaultPolicy()}}, nil))
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
		{Name: "fake.a", Trigger: a, Policy: policy(func(p *Policy) { p.Concurrency = 3 })},
		{Name: "fake.b", Trigger: b, Policy: policy(func(p *Policy) { p.Concurrency = 1 })},
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
	d := New(s, []Instance{{Name: "fake.batch", Trigger: f, Policy: policy(func(p *Policy) { p.Mode = ModeBatch })}}, nil, fastBackoff)
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
	d := New(s, []Instance{{Name: "fake.manual", Trigger: manual, Policy: policy(func(p *Policy) { p.Auto = false })}}, nil)
	run := watchRun(t, s, chk("web", "1.0.0", "2.0.0", core.KindMajor))
	notify(t, d, run)
	drain(t, d)
	if calls, _, _ := manual.snapshot(); len(calls) != 0 {
		t.Fatalf("a manual trigger fired %d times on detection, want 0", len(calls))
	}
	ctx := context.Background()
	if _, err := d.Request(ctx, run.Updates[0].ID, "fake.other"); !errors.Is(err, ErrUnknownTrigger) {
		t.Errorf("Request(unknown trigger) error = %v, want ErrUnknownTrigger", err)
	}
	if _, err := d.Request(ctx, 999, "fake.manual"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Request(unknown update) error = %v, want core.ErrNotFound", err)
	}
	var keys []string
	for range 2 {
		dl, err := d.Request(ctx, run.Updates[0].ID, "fake.manual")
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
	d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: DefaultPolicy()}}, nil, WithPollInterval(time.Hour))
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
		{Name: "fake.rollouts", Trigger: rollouts, Policy: policy(func(p *Policy) { p.Events = []string{sdk.EventUpdateRolledBack} })},
		{Name: "fake.updates", Trigger: updates, Policy: DefaultPolicy()},
	}, nil)
	run := watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor))
	for range 2 { // each occurrence is delivered
		if err := d.NotifyEvent(context.Background(), run.Updates[0], sdk.EventUpdateRolledBack, "health check failed"); err != nil {
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
	d := New(s, []Instance{{Name: "fake.one", Trigger: f, Policy: policy(func(p *Policy) { p.Once = false })}}, nil)
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
		event  string
	}{
		{name: "applied", result: sdk.Result{Detail: "1.0.0 → 1.1.0 healthy", Event: sdk.EventUpdateApplied}, status: core.StatusApplied, event: sdk.EventUpdateApplied},
		{name: "rolled back", result: sdk.Result{Err: sdk.Permanent(errors.New("health check failed")), Event: sdk.EventUpdateRolledBack}, status: core.StatusRolledBack, event: sdk.EventUpdateRolledBack},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			deploy := &fake{fire: func(_ context.Context, _ int, ups []sdk.Update) []sdk.Result { return sdk.All(len(ups), tc.result) }}
			listener := &fake{}
			d := New(s, []Instance{
				{Name: "compose.prod", Trigger: deploy, Policy: DefaultPolicy()},
				{Name: "fake.oncall", Trigger: listener, Policy: policy(func(p *Policy) { p.Events = []string{tc.event} })},
			}, nil)
			run := watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor))
			notify(t, d, run)
			drain(t, d)
			calls, _, _ := listener.snapshot()
			if len(calls) != 1 || calls[0][0].Event != tc.event || calls[0][0].Container != "web" {
				t.Fatalf("listener fires = %+v, want one %s about web", calls, tc.event)
			}
			if !strings.Contains(calls[0][0].Detail, firstNonEmpty(tc.result.Detail, "health check failed")) {
				t.Errorf("event detail = %q, want the rollout's", calls[0][0].Detail)
			}
			u, err := s.Update(context.Background(), run.Updates[0].ID)
			if err != nil || u.Status != tc.status {
				t.Errorf("update status = %s (%v), want %s", u.Status, err, tc.status)
			}
			evs, err := s.History(context.Background(), store.HistoryFilter{Kinds: []string{tc.event}})
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
	d := New(s, []Instance{{Name: "compose.prod", Trigger: f, Policy: DefaultPolicy()}}, nil, fastBackoff,
		WithObserver(func(trigger string, id int64, status store.DeliveryStatus, event string) {
			mu.Lock()
			seen = append(seen, trigger+" "+string(status)+" "+event)
			mu.Unlock()
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
		{Name: "compose.prod", Trigger: deploy, Policy: DefaultPolicy()},
		{Name: "fake.oncall", Trigger: listener, Policy: policy(func(p *Policy) { p.Events = []string{sdk.EventUpdateRolledBack} })},
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
	if len(pending) != 1 || pending[0].Event != sdk.EventUpdateRolledBack {
		t.Errorf("listener deliveries after the shutdown = %+v, want one update-rolled-back waiting", pending)
	}
}
