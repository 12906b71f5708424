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
	toWrite  []store.Outcome  // outcomes waiting for the writer
	writing  bool             // a write is in progress
	writeAt  time.Time        // when to try a failed write again
	retryAt  time.Time        // earliest retry scheduled by this loop
	events   map[int64]caused // final outcomes that caused an event, by delivery, until written
}

// caused is an event a delivery caused (a rollout's outcome), handed to the
// listening triggers once its outcome is written.
type caused struct {
	update core.Update
	event  core.Event
	detail string
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
		if in.Policy.Mode == core.ModeBatch {
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
