package triggers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// The loop: it claims due deliveries from the outbox, fires them in groups
// (a delivery, or a batch) at most Concurrency at a time per instance, and
// hands what they answered to outcome.go; at shutdown it lets Fire calls in
// flight end and releases what it claimed but did not fire.

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
	toWrite  []store.Outcome    // outcomes waiting for the writer
	writing  bool               // a write is in progress
	writeAt  time.Time          // when to try a failed write again
	groupAt  time.Time          // when the outcomes waiting are written, however few
	retries  []time.Time        // the retries this loop scheduled, earliest first
	events   map[int64]caused   // final outcomes that caused an event, by delivery, until written
	observed map[int64]observed // outcomes the observers hear of once written, by delivery

	fresh     map[string][]store.Delivery // handed over by the inbox, not yet claimed
	scan      map[string]bool             // the outbox may hold due deliveries of the instance that fresh lacks
	pollAt    time.Time                   // when to read the whole outbox again, whatever the inbox said
	nextDue   time.Time                   // the earliest due time Outstanding reported
	checkNext bool                        // ask Outstanding for it when idle
	rolling   map[string]bool             // compose projects with a rollout in flight (project.go)
	claimed   map[string][]store.Delivery // written claimed (inbox.go), not yet queued
}

// scanAll makes the next fill read the outbox for every instance.
func (d *Dispatcher) scanAll(st *state, now time.Time) {
	for _, in := range d.insts {
		st.scan[in.Name] = true
	}
	st.fresh = map[string][]store.Delivery{}
	st.pollAt = now.Add(d.poll)
	st.checkNext = true
}

// timers starts what is due by the clock: a scan at each retry's time, at
// the earliest due time the outbox reported, and every poll interval.
func (d *Dispatcher) timers(st *state, now time.Time) {
	for _, t := range []*time.Time{&st.nextDue, &st.pollAt} {
		if !t.IsZero() && !now.Before(*t) {
			*t = time.Time{}
			d.scanAll(st, now)
		}
	}
	due := 0
	for due < len(st.retries) && !st.retries[due].After(now) {
		due++
	}
	if due > 0 {
		st.retries = slices.Delete(st.retries, 0, due)
		d.scanAll(st, now)
	}
	if !st.writeAt.IsZero() && !now.Before(st.writeAt) {
		st.writeAt = time.Time{}
	}
}

// caused is an event a delivery caused (a rollout's outcome), handed to the
// listening triggers once its outcome is written.
type caused struct {
	update  core.Update
	event   core.Event
	detail  string
	rollout *core.Rollout
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
	st := &state{held: map[int64]string{}, heldN: map[string]int{}, queue: map[string][]group{}, busy: map[string]int{}, events: map[int64]caused{}, observed: map[int64]observed{},
		scan: map[string]bool{}, rolling: map[string]bool{}}
	// What was handed over before the loop ran is in the outbox, but for
	// what was written claimed (and resumed above): keep that.
	_, _, claimed := d.inbox.take()
	st.claimed = claimed
	d.looping.Store(true)
	defer d.looping.Store(false)
	d.scanAll(st, time.Now())
	done := make(chan fired, 64)
	wrote := make(chan written, 1)
	// fireCtx outlives ctx so that Fire calls in flight may finish at shutdown.
	fireCtx, cutOff := context.WithCancel(context.WithoutCancel(ctx))
	defer cutOff()
	var wg sync.WaitGroup

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		d.timers(st, time.Now())
		if err := d.fill(ctx, st); err != nil {
			if ctx.Err() != nil {
				break
			}
			d.log.Error("reading the outbox", "error", err)
		}
		d.start(fireCtx, st, done, &wg)
		d.write(ctx, st, wrote)

		// Idle: Drain ends when nothing is outstanding; Run learns when the
		// outbox's next delivery is due (a retry left by an earlier process).
		if st.inFlight == 0 && queued(st) == 0 && (drain || st.checkNext) {
			n, next, err := d.out.Outstanding(ctx, d.names...)
			switch {
			case err != nil && ctx.Err() != nil:
			case err != nil:
				d.log.Error("reading the outbox", "error", err)
			case drain && n == 0 && !st.writing && len(st.toWrite) == 0 && d.inbox.empty():
				return nil
			default:
				// One due already is claimed by a fill, or found by the poll.
				st.checkNext, st.nextDue = false, time.Time{}
				if next.After(time.Now()) {
					st.nextDue = next
				}
			}
		}
		wait := time.Until(st.pollAt)
		for _, t := range []time.Time{st.nextDue, st.writeAt} {
			if !t.IsZero() {
				wait = min(wait, time.Until(t))
			}
		}
		if len(st.retries) > 0 {
			wait = min(wait, time.Until(st.retries[0]))
		}
		if !st.writing && st.writeAt.IsZero() && len(st.toWrite) > 0 {
			wait = min(wait, time.Until(st.groupAt))
		}
		timer.Reset(max(wait, time.Millisecond))

		select {
		case <-ctx.Done():
		case <-d.wake:
		case <-timer.C:
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

// fill claims deliveries for the instances with room in their queue:
// those the inbox handed over and, for an instance whose outbox may hold
// others (st.scan), the due ones it reads there.
func (d *Dispatcher) fill(ctx context.Context, st *state) error {
	by, scan, preclaimed := d.inbox.take()
	for name, ds := range preclaimed {
		if st.claimed == nil {
			st.claimed = map[string][]store.Delivery{}
		}
		st.claimed[name] = append(st.claimed[name], ds...)
	}
	// Written claimed: queued at once, whatever the room (a few per call).
	for name, ds := range st.claimed {
		in := d.byName[name]
		for _, dl := range ds {
			if _, held := st.held[dl.ID]; held || in == nil {
				continue
			}
			st.hold(dl.ID, name)
			st.queue[name] = append(st.queue[name], group{in: in, ds: []store.Delivery{dl}})
		}
		delete(st.claimed, name)
	}
	for name := range scan {
		st.scan[name] = true
	}
	for name, ds := range by {
		if st.fresh[name] = append(st.fresh[name], ds...); len(st.fresh[name]) > inboxCap {
			st.scan[name] = true
		}
	}
	now := time.Now()
	var claim []int64
	lease := now
	var errs []error
	for _, in := range d.insts {
		// Refill at low water only, so that claims are written several at
		// a time. Groups waiting for their project's rollout do not count,
		// up to a bound, so that other projects' rollouts are not held up.
		queued, ready := len(st.queue[in.Name]), len(st.queue[in.Name])
		if in.Deploys {
			for _, g := range st.queue[in.Name] {
				if st.blocked(g) {
					ready--
				}
			}
		}
		if ready > in.Policy.Concurrency {
			continue
		}
		want := min(d.prefetch+in.Policy.Concurrency-ready-st.busy[in.Name], 4*d.prefetch-queued)
		if want <= 0 {
			continue
		}
		ds := st.fresh[in.Name]
		if st.scan[in.Name] {
			// Those held here are running under a lease and not due, unless
			// their lease ended while they waited: a little slack for those.
			limit := want + min(st.heldN[in.Name], 8)
			if in.Policy.Mode == core.ModeBatch {
				limit = 1024 + st.heldN[in.Name]
			}
			var err error
			if ds, err = d.out.Due(ctx, now, limit, in.Name); err != nil {
				errs = append(errs, err)
				continue
			}
			// What was handed over is in the outbox: among what Due read,
			// or behind it, still to read.
			st.scan[in.Name], st.fresh[in.Name] = len(ds) >= limit, nil
			st.checkNext = true
		}
		left := false // due deliveries read and not taken, for want of room
		if len(ds) == 0 {
			continue
		}
		if l := now.Add(d.lease(in)); l.After(lease) {
			lease = l
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
				left = true
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
		if left && len(st.fresh[in.Name]) == 0 {
			st.scan[in.Name] = true // read from the outbox: read it again
		}
		st.fresh[in.Name] = slices.DeleteFunc(st.fresh[in.Name], func(dl store.Delivery) bool {
			_, held := st.held[dl.ID]
			return held
		})
	}
	if len(claim) == 0 {
		return errors.Join(errs...)
	}
	claimed, err := d.out.Claim(ctx, claim, now, lease)
	if err != nil {
		errs = append(errs, err)
	}
	// Fire only what the store confirmed: a delivery finished meanwhile, or
	// not claimed at all when the write failed, is forgotten (one that is
	// still pending is found in the outbox again).
	if len(claimed) < len(claim) {
		ok := make(map[int64]bool, len(claimed))
		for _, id := range claimed {
			ok[id] = true
		}
		for name, q := range st.queue {
			kept := q[:0]
			for _, g := range q {
				g.ds = slices.DeleteFunc(g.ds, func(dl store.Delivery) bool {
					if slices.Contains(claim, dl.ID) && !ok[dl.ID] {
						st.unhold(dl.ID)
						st.scan[name] = st.scan[name] || err != nil
						return true
					}
					return false
				})
				if len(g.ds) > 0 {
					kept = append(kept, g)
				}
			}
			st.queue[name] = kept
		}
	}
	return errors.Join(errs...)
}

// lease is how long in's claimed deliveries may wait in the queue and be
// fired before they count as abandoned.
func (d *Dispatcher) lease(in *Instance) time.Duration {
	rounds := (d.prefetch+in.Policy.Concurrency-1)/in.Policy.Concurrency + 2
	return time.Duration(rounds)*in.Policy.Deadline + cutOffGrace
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

// start fires queued groups, in order, while their instances have free
// slots; a deploying instance's group waits while another rollout of its
// compose project is in flight, and those behind it go first.
func (d *Dispatcher) start(fireCtx context.Context, st *state, done chan<- fired, wg *sync.WaitGroup) {
	for _, in := range d.insts {
		for i := 0; st.busy[in.Name] < in.Policy.Concurrency && i < len(st.queue[in.Name]); {
			g := st.queue[in.Name][i]
			if st.blocked(g) {
				i++
				continue
			}
			st.queue[in.Name] = slices.Delete(st.queue[in.Name], i, i+1)
			st.roll(g, true)
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

// fire calls the trigger for one group under the instance's Deadline.
func (d *Dispatcher) fire(fireCtx context.Context, g group) fired {
	ctx, cancel := context.WithTimeout(fireCtx, g.in.Policy.Deadline)
	defer cancel()
	ups := make([]sdk.Update, len(g.ds))
	for i, dl := range g.ds {
		ups[i] = toSDK(dl, g.in)
		if g.in.Deploys {
			ups[i].RegistryAuth = d.registryAuth(ctx, dl.Update.Image)
		}
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
			f := fired{g: g, at: time.Now(), err: fmt.Errorf("cut off: no answer %s after the deadline of %s", cutOffGrace, g.in.Policy.Deadline)}
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

// shutdown releases what was claimed and not fired, waits for the Fire
// calls in flight (cutting them off after the grace, when set), and records
// their outcomes.
func (d *Dispatcher) shutdown(ctx context.Context, st *state, done chan fired, wrote chan written, wg *sync.WaitGroup, cutOff context.CancelFunc) {
	bg := context.WithoutCancel(ctx)
	d.looping.Store(false)
	var release []int64
	_, _, claimed := d.inbox.take()
	for _, ds := range claimed {
		for _, dl := range ds {
			if _, held := st.held[dl.ID]; !held {
				release = append(release, dl.ID)
			}
		}
	}
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
