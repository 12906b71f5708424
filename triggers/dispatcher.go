package triggers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Outbox is the part of the store the dispatcher uses; *store.Store has it.
// Its methods are documented there.
type Outbox interface {
	Enqueue(ctx context.Context, ds []store.NewDelivery) ([]store.Delivery, error)
	Due(ctx context.Context, now time.Time, limit int, triggers ...string) ([]store.Delivery, error)
	MarkRunning(ctx context.Context, ids []int64, at, lease time.Time) error
	Resume(ctx context.Context, at time.Time, triggers ...string) (int, error)
	Release(ctx context.Context, ids []int64, at time.Time) error
	Finish(ctx context.Context, outs []store.Outcome) error
	Outstanding(ctx context.Context, triggers ...string) (int, time.Time, error)
	Update(ctx context.Context, id int64) (store.UpdateRecord, error)
}

var _ Outbox = (*store.Store)(nil)

// Errors callers branch on.
var (
	// ErrUnknownTrigger: no instance has that name.
	ErrUnknownTrigger = errors.New("unknown trigger")
	// ErrBusy: Run or Drain is already running on this dispatcher.
	ErrBusy = errors.New("dispatcher already running")
)

// Instance is a configured trigger.
type Instance struct {
	// Name is the instance, "type.name" ("webhook.ops").
	Name string
	// Trigger is the trigger, configured.
	Trigger sdk.Trigger
	// Policy is what tidewatch decides for it; its zero fields get defaults.
	Policy Policy
}

// RunResult is what a watch run hands the dispatcher: the updates it found,
// as the store holds them after RecordRun (the outbox refers to them by ID),
// with their containers' labels. Build it with NewRunResult.
type RunResult struct {
	// ID identifies the run; with ONCE off it is part of each delivery's key,
	// so that every run delivers again. Notify makes one up when empty.
	ID string
	// Updates are the open updates the run found.
	Updates []store.UpdateRecord
}

// NewRunResult keeps, of the open updates of host (Store.OpenUpdates after
// RecordRun), those of the containers whose check in checks found an update:
// a run that checked one container notifies for that one only.
func NewRunResult(id, host string, checks []core.Check, open []store.UpdateRecord) RunResult {
	found := make(map[string]bool, len(checks))
	for _, c := range checks {
		if c.HasUpdate() {
			found[c.Container.Name] = true
		}
	}
	r := RunResult{ID: id}
	for _, u := range open {
		if u.Host == host && found[u.ContainerName] {
			r.Updates = append(r.Updates, u)
		}
	}
	return r
}

// Option configures a Dispatcher.
type Option func(*Dispatcher)

// WithBackoff sets the retry delay: base after the first failed attempt,
// multiplied by factor after each next one, at most max; each delay is
// drawn at random from its upper half (jitter). Default 1s, 2, 5m.
func WithBackoff(base time.Duration, factor float64, max time.Duration) Option {
	return func(d *Dispatcher) { d.base, d.factor, d.max = base, factor, max }
}

// WithPollInterval sets how often an idle dispatcher looks at the outbox
// for deliveries it was not told about. Default 5s.
func WithPollInterval(p time.Duration) Option { return func(d *Dispatcher) { d.poll = p } }

// WithShutdownGrace sets how long Run, when its context ends, lets Fire
// calls in flight finish before cutting them off. Default: until their own
// deadline (Policy.Timeout).
func WithShutdownGrace(g time.Duration) Option { return func(d *Dispatcher) { d.grace = g } }

// WithObserver calls observe after every finished attempt: the instance,
// the delivery, its new status (delivered, pending for a retry, failed) and
// the event it caused, if any (a rollout's outcome). It must not block.
// Default: none.
func WithObserver(observe func(trigger string, id int64, status store.DeliveryStatus, event string)) Option {
	return func(d *Dispatcher) { d.observe = observe }
}

// WithPrefetch sets how many deliveries (or batches) per instance are claimed
// ahead of free Fire slots, so that claims are written several at a time.
// Default 32.
func WithPrefetch(n int) Option { return func(d *Dispatcher) { d.prefetch = n } }

// Dispatcher fans updates out to trigger instances through the outbox.
type Dispatcher struct {
	out      Outbox
	insts    []*Instance
	byName   map[string]*Instance
	names    []string
	log      *slog.Logger
	base     time.Duration
	factor   float64
	max      time.Duration
	poll     time.Duration
	grace    time.Duration
	prefetch int
	wake     chan struct{}
	running  sync.Mutex
	observe  func(trigger string, id int64, status store.DeliveryStatus, event string)
}

// New returns a dispatcher over out for instances, whose policies get their
// defaults. Instances after the first of the same name are ignored.
func New(out Outbox, instances []Instance, log *slog.Logger, opts ...Option) *Dispatcher {
	d := &Dispatcher{
		out: out, byName: map[string]*Instance{}, log: log,
		base: time.Second, factor: 2, max: 5 * time.Minute, poll: 5 * time.Second, prefetch: 32,
		wake: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(d)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	for _, in := range instances {
		if _, dup := d.byName[in.Name]; dup {
			d.log.Warn("trigger configured twice; keeping the first", "trigger", in.Name)
			continue
		}
		in := in
		in.Policy.SetDefaults()
		d.insts = append(d.insts, &in)
		d.byName[in.Name] = &in
		d.names = append(d.names, in.Name)
	}
	return d
}

// signal wakes the loop.
func (d *Dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Notify enqueues, after a watch run, one update-available delivery per
// update and automatic instance whose policy matches it (pending and
// notified updates only: not dismissed or being applied), in one
// transaction; Run or Drain fires them. In batch mode an instance's
// deliveries of the run share one batch. With ONCE on, an update already
// delivered (or queued) for the same candidate is not enqueued again.
func (d *Dispatcher) Notify(ctx context.Context, run RunResult) error {
	if run.ID == "" {
		run.ID = newID("run")
	}
	var ds []store.NewDelivery
	for _, in := range d.insts {
		if !in.Policy.Auto || !slices.Contains(in.Policy.Events, sdk.EventUpdateAvailable) {
			continue
		}
		batch := ""
		if in.Policy.Mode == ModeBatch {
			batch = run.ID + "/" + in.Name
		}
		for _, u := range run.Updates {
			if u.Status != core.StatusPending && u.Status != core.StatusNotified {
				continue
			}
			if !in.Policy.Matches(u.Update, u.Labels, in.Name) {
				continue
			}
			nd := store.NewDelivery{UpdateID: u.ID, Trigger: in.Name, Candidate: store.CandidateRef(u.Update),
				Event: sdk.EventUpdateAvailable, Batch: batch}
			if !in.Policy.Once {
				nd.Run = run.ID
			}
			ds = append(ds, nd)
		}
	}
	created, err := d.out.Enqueue(ctx, ds)
	if err != nil {
		return fmt.Errorf("notifying run %s: %w", run.ID, err)
	}
	if len(created) > 0 {
		d.log.Debug("deliveries enqueued", "run", run.ID, "deliveries", len(created))
		d.signal()
	}
	return nil
}

// NotifyEvent enqueues a delivery of event (a rollout's outcome:
// sdk.EventUpdateApplied, …) about u, with detail, to every automatic
// instance whose Events include it and whose policy matches u. Each call is
// a distinct occurrence, delivered once.
func (d *Dispatcher) NotifyEvent(ctx context.Context, u store.UpdateRecord, event, detail string) error {
	occurrence := newID("event")
	var ds []store.NewDelivery
	for _, in := range d.insts {
		if !in.Policy.Auto || !slices.Contains(in.Policy.Events, event) || !in.Policy.Matches(u.Update, u.Labels, in.Name) {
			continue
		}
		ds = append(ds, store.NewDelivery{UpdateID: u.ID, Trigger: in.Name, Candidate: store.CandidateRef(u.Update),
			Event: event, Run: occurrence, EventDetail: detail})
	}
	if _, err := d.out.Enqueue(ctx, ds); err != nil {
		return fmt.Errorf("notifying %s of update %d: %w", event, u.ID, err)
	}
	if len(ds) > 0 {
		d.signal()
	}
	return nil
}

// Request enqueues a delivery of update updateID to instance, because a
// person asked: whatever the instance's Auto, threshold and filters, and
// again each time it is asked. Run or Drain fires it.
func (d *Dispatcher) Request(ctx context.Context, updateID int64, instance string) (store.Delivery, error) {
	in, ok := d.byName[instance]
	if !ok {
		return store.Delivery{}, fmt.Errorf("requesting %s for update %d: %w", instance, updateID, ErrUnknownTrigger)
	}
	u, err := d.out.Update(ctx, updateID)
	if err != nil {
		return store.Delivery{}, fmt.Errorf("requesting %s for update %d: %w", instance, updateID, err)
	}
	created, err := d.out.Enqueue(ctx, []store.NewDelivery{{UpdateID: u.ID, Trigger: in.Name,
		Candidate: store.CandidateRef(u.Update), Event: sdk.EventUpdateAvailable, Run: newID("request")}})
	if err != nil {
		return store.Delivery{}, fmt.Errorf("requesting %s for update %d: %w", instance, updateID, err)
	}
	if len(created) != 1 {
		return store.Delivery{}, fmt.Errorf("requesting %s for update %d: delivery not created", instance, updateID)
	}
	d.signal()
	created[0].Update = u
	return created[0], nil
}

// Run fires due deliveries until ctx ends: first those left unfinished by a
// previous process, then each one as it becomes due, retrying failed ones
// with backoff. When ctx ends it releases what it claimed but did not fire,
// lets Fire calls in flight finish (or cuts them off after the shutdown
// grace), records their outcomes, and returns nil; what was cut off stays
// resumable.
func (d *Dispatcher) Run(ctx context.Context) error {
	return d.loop(ctx, false)
}

// Drain fires every delivery due and waits until none of its instances'
// deliveries is pending or running, retries included (waiting out their
// backoff), or until ctx ends, whose error it then returns. It is for
// `tidewatch check`, which fires automatic triggers once and exits.
func (d *Dispatcher) Drain(ctx context.Context) error {
	return d.loop(ctx, true)
}

// group is what one Fire delivers: one delivery, or a batch.
type group struct {
	in *Instance
	ds []store.Delivery
}

// fired is the end of one Fire.
type fired struct {
	g       group
	results []sdk.Result
	err     error // the whole call failed (cut off, wrong number of results)
	aborted bool  // cut off by shutdown: no outcome, released
	at      time.Time
}

// state is the loop's own state.
type state struct {
	held     map[int64]string   // claimed by this loop and not yet recorded → instance
	heldN    map[string]int     // len(held) per instance
	queue    map[string][]group // claimed, waiting for a Fire slot
	busy     map[string]int     // Fire calls in flight
	inFlight int
	toWrite  []store.Outcome  // outcomes waiting for the writer
	writing  bool             // a write is in progress
	writeAt  time.Time        // when to try a failed write again
	retryAt  time.Time        // earliest retry scheduled by this loop
	events   map[int64]caused // final outcomes that caused an event, by delivery, until written
}

// caused is an event a delivery caused (a rollout's outcome), handed to the
// listening triggers once its outcome is written.
type caused struct {
	update        store.UpdateRecord
	event, detail string
}

// written is the end of one write of outcomes.
type written struct {
	outs []store.Outcome
	err  error
}

func (d *Dispatcher) loop(ctx context.Context, drain bool) error {
	if !d.running.TryLock() {
		return ErrBusy
	}
	defer d.running.Unlock()
	if len(d.insts) == 0 {
		if drain {
			return nil
		}
		<-ctx.Done()
		return nil
	}
	if n, err := d.out.Resume(ctx, time.Now(), d.names...); err != nil {
		return fmt.Errorf("resuming unfinished deliveries: %w", err)
	} else if n > 0 {
		d.log.Info("resuming deliveries left unfinished", "deliveries", n)
	}
	st := &state{held: map[int64]string{}, heldN: map[string]int{}, queue: map[string][]group{}, busy: map[string]int{}, events: map[int64]caused{}}
	done := make(chan fired, 64)
	wrote := make(chan written, 1)
	// fireCtx outlives ctx so that Fire calls in flight may finish at shutdown.
	fireCtx, cutOff := context.WithCancel(context.WithoutCancel(ctx))
	defer cutOff()
	var wg sync.WaitGroup

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if err := d.fill(ctx, st); err != nil {
			if ctx.Err() != nil {
				break
			}
			d.log.Error("reading the outbox", "error", err)
		}
		d.start(fireCtx, st, done, &wg)
		d.write(ctx, st, wrote)

		wait := d.poll
		if st.inFlight == 0 && queued(st) == 0 {
			n, next, err := d.out.Outstanding(ctx, d.names...)
			switch {
			case err != nil && ctx.Err() != nil:
			case err != nil:
				d.log.Error("reading the outbox", "error", err)
			case drain && n == 0 && !st.writing && len(st.toWrite) == 0:
				return nil
			case !next.IsZero():
				wait = min(wait, max(time.Until(next), time.Millisecond))
			}
		}
		if !st.retryAt.IsZero() {
			wait = min(wait, max(time.Until(st.retryAt), time.Millisecond))
		}
		if !st.writeAt.IsZero() {
			wait = min(wait, max(time.Until(st.writeAt), time.Millisecond))
		}
		timer.Reset(wait)

		select {
		case <-ctx.Done():
		case <-d.wake:
		case <-timer.C:
			now := time.Now()
			if !st.retryAt.IsZero() && !now.Before(st.retryAt) {
				st.retryAt = time.Time{}
			}
			if !st.writeAt.IsZero() && !now.Before(st.writeAt) {
				st.writeAt = time.Time{}
			}
		case f := <-done:
			d.collect(ctx, st, done, f)
		case w := <-wrote:
			d.wrote(ctx, st, w)
		}
		timer.Stop()
		if ctx.Err() != nil {
			break
		}
	}
	d.shutdown(ctx, st, done, wrote, &wg, cutOff)
	if drain {
		return ctx.Err()
	}
	return nil
}

func queued(st *state) int {
	n := 0
	for _, q := range st.queue {
		n += len(q)
	}
	return n
}

// fill claims due deliveries for the instances with room in their queue.
func (d *Dispatcher) fill(ctx context.Context, st *state) error {
	now := time.Now()
	var claim []int64
	lease := now
	var errs []error
	for _, in := range d.insts {
		// Refill at low water only, so that claims are written several at a time.
		if len(st.queue[in.Name]) > in.Policy.Concurrency {
			continue
		}
		want := d.prefetch + in.Policy.Concurrency - len(st.queue[in.Name]) - st.busy[in.Name]
		if want <= 0 {
			continue
		}
		// Those held here are running under a lease and not due, unless
		// their lease ended while they waited: a little slack for those.
		limit := want + min(st.heldN[in.Name], 8)
		if in.Policy.Mode == ModeBatch {
			limit = 1024 + st.heldN[in.Name]
		}
		if l := now.Add(d.lease(in)); l.After(lease) {
			lease = l
		}
		ds, err := d.out.Due(ctx, now, limit, in.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		groups := map[string]int{} // batch → index in st.queue
		for _, dl := range ds {
			if _, ok := st.held[dl.ID]; ok {
				continue
			}
			if dl.Batch != "" {
				if i, ok := groups[dl.Batch]; ok {
					q := st.queue[in.Name]
					q[i].ds = append(q[i].ds, dl)
					st.hold(dl.ID, in.Name)
					claim = append(claim, dl.ID)
					continue
				}
			}
			if want == 0 {
				continue
			}
			want--
			st.hold(dl.ID, in.Name)
			claim = append(claim, dl.ID)
			st.queue[in.Name] = append(st.queue[in.Name], group{in: in, ds: []store.Delivery{dl}})
			if dl.Batch != "" {
				groups[dl.Batch] = len(st.queue[in.Name]) - 1
			}
		}
	}
	if len(claim) > 0 {
		if err := d.out.MarkRunning(ctx, claim, now, lease); err != nil {
			// Not claimed: forget them, they stay pending.
			for name, q := range st.queue {
				st.queue[name] = slices.DeleteFunc(q, func(g group) bool {
					for _, dl := range g.ds {
						if slices.Contains(claim, dl.ID) {
							for _, dl := range g.ds {
								st.unhold(dl.ID)
							}
							return true
						}
					}
					return false
				})
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lease is how long in's claimed deliveries may wait in the queue and be
// fired before they count as abandoned.
func (d *Dispatcher) lease(in *Instance) time.Duration {
	rounds := (d.prefetch+in.Policy.Concurrency-1)/in.Policy.Concurrency + 2
	return time.Duration(rounds)*in.Policy.Timeout + cutOffGrace
}

func (st *state) hold(id int64, name string) {
	st.held[id] = name
	st.heldN[name]++
}

func (st *state) unhold(id int64) {
	if name, ok := st.held[id]; ok {
		delete(st.held, id)
		st.heldN[name]--
	}
}

// start fires queued groups while their instances have free slots.
func (d *Dispatcher) start(fireCtx context.Context, st *state, done chan<- fired, wg *sync.WaitGroup) {
	for _, in := range d.insts {
		for st.busy[in.Name] < in.Policy.Concurrency && len(st.queue[in.Name]) > 0 {
			g := st.queue[in.Name][0]
			st.queue[in.Name] = st.queue[in.Name][1:]
			st.busy[in.Name]++
			st.inFlight++
			wg.Add(1)
			go func() {
				defer wg.Done()
				done <- d.fire(fireCtx, g)
			}()
		}
	}
}

// cutOffGrace is how long after its deadline a Fire that ignores its
// context is waited for before it is abandoned.
const cutOffGrace = time.Second

// fire calls the trigger for one group under the instance's Timeout.
func (d *Dispatcher) fire(fireCtx context.Context, g group) fired {
	ctx, cancel := context.WithTimeout(fireCtx, g.in.Policy.Timeout)
	defer cancel()
	ups := make([]sdk.Update, len(g.ds))
	for i, dl := range g.ds {
		ups[i] = toSDK(dl)
	}
	ch := make(chan []sdk.Result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				d.log.Error("trigger panicked", "trigger", g.in.Name, "panic", fmt.Sprint(r))
				ch <- nil
			}
		}()
		ch <- g.in.Trigger.Fire(ctx, ups)
	}()
	var rs []sdk.Result
	select {
	case rs = <-ch:
	case <-ctx.Done():
		t := time.NewTimer(cutOffGrace)
		select {
		case rs = <-ch:
		case <-t.C:
			t.Stop()
			f := fired{g: g, at: time.Now(), err: fmt.Errorf("cut off: no answer %s after the deadline of %s", cutOffGrace, g.in.Policy.Timeout)}
			f.aborted = fireCtx.Err() != nil
			return f
		}
		t.Stop()
	}
	f := fired{g: g, results: rs, at: time.Now()}
	if fireCtx.Err() != nil {
		// Cut off by shutdown: an error now says nothing about the trigger.
		for _, r := range rs {
			if r.Err != nil {
				f.aborted = true
			}
		}
		if len(rs) != len(ups) {
			f.aborted = true
		}
	}
	if len(rs) != len(ups) {
		f.err = fmt.Errorf("trigger returned %d results for %d updates", len(rs), len(ups))
	}
	return f
}

// toSDK is the update a trigger is handed for dl.
func toSDK(dl store.Delivery) sdk.Update {
	u := dl.Update
	name := u.DisplayName
	if name == "" {
		name = u.ContainerName
	}
	return sdk.Update{
		Key: dl.Key, Event: dl.Event, Host: u.Host, Container: name, ContainerID: u.ContainerID,
		Image: u.Image, Current: u.Current, CurrentDigest: u.CurrentDigest,
		Candidate: u.Candidate, CandidateDigest: u.CandidateDigest, Kind: string(u.Kind), Link: u.Link,
		DetectedAt: u.FirstSeen, Labels: u.Labels, Detail: dl.EventDetail,
	}
}

// collect takes f and every other Fire already done, and hands their
// outcomes to the writer.
func (d *Dispatcher) collect(ctx context.Context, st *state, done <-chan fired, f fired) {
	fs := []fired{f}
	for more := true; more; {
		select {
		case f := <-done:
			fs = append(fs, f)
		default:
			more = false
		}
	}
	var release []int64
	for _, f := range fs {
		st.busy[f.g.in.Name]--
		st.inFlight--
		if f.aborted {
			for _, dl := range f.g.ds {
				release = append(release, dl.ID)
			}
			continue
		}
		attempts := 0
		for _, dl := range f.g.ds {
			attempts = max(attempts, dl.Attempts+1)
		}
		next := f.at.Add(d.backoff(attempts)) // one for the group: a batch is retried together
		for i, dl := range f.g.ds {
			st.toWrite = append(st.toWrite, d.outcome(st, f, i, dl, next))
		}
	}
	if len(release) > 0 {
		if err := d.out.Release(context.WithoutCancel(ctx), release, time.Now()); err != nil {
			d.log.Error("releasing deliveries", "error", err)
		}
		for _, id := range release {
			st.unhold(id)
		}
	}
}

// write starts writing the outcomes waiting, in one transaction, unless a
// write is in progress or a failed one waits to be tried again: outcomes
// that end during a write are written together by the next (group commit).
func (d *Dispatcher) write(ctx context.Context, st *state, wrote chan<- written) {
	if st.writing || len(st.toWrite) == 0 || !st.writeAt.IsZero() {
		return
	}
	outs := st.toWrite
	st.toWrite, st.writing = nil, true
	bg := context.WithoutCancel(ctx)
	go func() { wrote <- written{outs: outs, err: d.out.Finish(bg, outs)} }()
}

// wrote takes the end of a write: its deliveries are no longer held, or,
// when it failed, its outcomes wait to be tried again (their deliveries
// still held, so that they are not fired again meanwhile).
func (d *Dispatcher) wrote(ctx context.Context, st *state, w written) {
	st.writing = false
	if w.err != nil {
		d.log.Error("recording delivery outcomes", "deliveries", len(w.outs), "error", w.err)
		st.toWrite = append(w.outs, st.toWrite...)
		st.writeAt = time.Now().Add(500 * time.Millisecond)
		return
	}
	for _, o := range w.outs {
		st.unhold(o.ID)
		if c, ok := st.events[o.ID]; ok {
			delete(st.events, o.ID)
			if err := d.NotifyEvent(context.WithoutCancel(ctx), c.update, c.event, c.detail); err != nil {
				d.log.Error("notifying an event", "event", c.event, "update", c.update.ID, "error", err)
			}
		}
	}
}

// outcome classifies the result of delivery i of f.
func (d *Dispatcher) outcome(st *state, f fired, i int, dl store.Delivery, next time.Time) store.Outcome {
	in := f.g.in
	err := f.err
	var detail, event string
	if err == nil {
		err, detail, event = f.results[i].Err, f.results[i].Detail, f.results[i].Event
	}
	log := d.log.With("trigger", in.Name, "container", dl.Update.ContainerName, "new_tag", dl.Candidate,
		"key", dl.Key, "attempt", dl.Attempts+1)
	o := store.Outcome{ID: dl.ID, At: f.at, Detail: detail}
	switch {
	case err == nil:
		o.Status = store.DeliveryDelivered
		log.Debug("delivered", "detail", detail)
	case sdk.IsPermanent(err):
		o.Status, o.Error = store.DeliveryFailed, err.Error()
		log.Error("delivery failed for good", "error", err)
	case dl.Attempts+1 >= in.Policy.Retries:
		o.Status, o.Error = store.DeliveryFailed, fmt.Sprintf("giving up after %d attempts: %v", dl.Attempts+1, err)
		log.Error("delivery failed: attempts spent", "error", err)
	default:
		o.Status, o.Error = store.DeliveryPending, err.Error()
		o.Next = next
		if st.retryAt.IsZero() || o.Next.Before(st.retryAt) {
			st.retryAt = o.Next
		}
		log.Warn("delivery failed; retrying", "error", err, "next_attempt", o.Next)
	}
	if event != "" && o.Status != store.DeliveryPending {
		// A final outcome that caused an event (a rollout applied, rolled
		// back, failed): recorded on the update with the outcome, then
		// handed to the triggers listening for it.
		o.Event = event
		why := detail
		if o.Error != "" {
			why = o.Error
		}
		st.events[dl.ID] = caused{update: dl.Update, event: event, detail: why}
	}
	if d.observe != nil {
		d.observe(in.Name, dl.ID, o.Status, o.Event)
	}
	return o
}

// backoff is the delay after attempt n (from 1) failed: base·factor^(n-1),
// at most max, drawn from its upper half.
func (d *Dispatcher) backoff(n int) time.Duration {
	f := float64(d.base) * math.Pow(d.factor, float64(n-1))
	if f > float64(d.max) || math.IsInf(f, 0) || math.IsNaN(f) {
		f = float64(d.max)
	}
	half := time.Duration(f / 2)
	if half <= 0 {
		return time.Duration(f)
	}
	return half + mrand.N(half+1)
}

// shutdown releases what was claimed and not fired, waits for the Fire
// calls in flight (cutting them off after the grace, when set), and records
// their outcomes.
func (d *Dispatcher) shutdown(ctx context.Context, st *state, done chan fired, wrote chan written, wg *sync.WaitGroup, cutOff context.CancelFunc) {
	bg := context.WithoutCancel(ctx)
	var release []int64
	for name, q := range st.queue {
		for _, g := range q {
			for _, dl := range g.ds {
				release = append(release, dl.ID)
			}
		}
		delete(st.queue, name)
	}
	if len(release) > 0 {
		if err := d.out.Release(bg, release, time.Now()); err != nil {
			d.log.Error("releasing deliveries at shutdown", "error", err)
		}
	}
	if d.grace > 0 {
		t := time.AfterFunc(d.grace, cutOff)
		defer t.Stop()
	}
	for st.inFlight > 0 || st.writing {
		select {
		case f := <-done:
			d.collect(bg, st, done, f)
		case w := <-wrote:
			d.wrote(ctx, st, w)
		}
	}
	wg.Wait()
	if len(st.toWrite) > 0 {
		outs := st.toWrite
		st.toWrite = nil
		st.writing = true
		d.wrote(ctx, st, written{outs: outs, err: d.out.Finish(bg, outs)})
		if st.writing = false; len(st.toWrite) > 0 {
			d.log.Error("recording delivery outcomes at shutdown; they will be fired again", "deliveries", len(st.toWrite))
		}
	}
}

// newID returns prefix-<16 hex digits>, unique enough for runs and requests.
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}
