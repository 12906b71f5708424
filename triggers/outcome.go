package triggers

import (
	"context"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// What the loop does with what a Fire answered: classify each result
// (delivered, retried with backoff, failed), write the outcomes in one
// transaction, and hand the events they caused to the triggers listening.

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
		st.roll(f.g, false)
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
		if st.groupAt.IsZero() {
			st.groupAt = time.Now().Add(groupWait)
		}
	}
	if len(release) > 0 {
		if err := d.out.Release(context.WithoutCancel(ctx), release, time.Now()); err != nil {
			d.log.Error("releasing deliveries", "error", err)
		}
		for _, id := range release {
			if name, ok := st.held[id]; ok {
				st.scan[name] = true // pending again: read it back
			}
			st.unhold(id)
		}
	}
}

// Group commit: the outcomes of Fire calls that end close together are
// written in one transaction. While other calls are in flight, outcomes wait
// for them up to groupWait, or until groupMax wait; with none in flight
// (one delivery at a time) they are written at once.
const (
	groupWait = 5 * time.Millisecond
	groupMax  = 64
)

// write starts writing the outcomes waiting, in one transaction, unless a
// write is in progress, a failed one waits to be tried again, or more are
// worth waiting for (group commit); outcomes that end during a write are
// written together by the next.
func (d *Dispatcher) write(ctx context.Context, st *state, wrote chan<- written) {
	if st.writing || len(st.toWrite) == 0 || !st.writeAt.IsZero() {
		return
	}
	if st.inFlight > 0 && len(st.toWrite) < groupMax && time.Now().Before(st.groupAt) {
		return
	}
	outs := st.toWrite
	st.toWrite, st.writing, st.groupAt = nil, true, time.Time{}
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
	now := time.Now()
	for _, o := range w.outs {
		if o.Status == store.DeliveryPending && !o.Next.After(now) {
			// Its retry came while the outcome was being written: the scan
			// at that time passed it by (held), so read it back now rather
			// than at the next poll.
			if name, ok := st.held[o.ID]; ok {
				st.scan[name] = true
			}
		}
		st.unhold(o.ID)
		d.waiters.wake(o.ID)
		if ob, ok := st.observed[o.ID]; ok {
			delete(st.observed, o.ID)
			if d.observe != nil {
				d.observe(ob.trigger, o.ID, o.Status, o.Event)
			}
			if d.services != nil && len(ob.services) > 0 {
				d.services(ob.trigger, ob.services)
			}
		}
		if c, ok := st.events[o.ID]; ok {
			delete(st.events, o.ID)
			if err := d.NotifyEvent(context.WithoutCancel(ctx), c.update, c.event, c.detail); err != nil {
				d.log.Error("notifying an event", "event", c.event, "update", c.update.ID, "error", err)
			}
			if d.rollouts != nil && c.rollout != nil {
				d.rollouts(ctx, c.update, *c.rollout)
			}
		}
	}
}

// observed is what the observers are told of an outcome once it is written.
type observed struct {
	trigger  string
	services []sdk.ServiceOutcome
}

// outcome classifies the result of delivery i of f.
func (d *Dispatcher) outcome(st *state, f fired, i int, dl store.Delivery, next time.Time) store.Outcome {
	in := f.g.in
	err := f.err
	var r sdk.Result
	if err == nil {
		r = f.results[i]
		err = r.Err
	}
	log := d.log.With("trigger", in.Name, "container", dl.Update.ContainerName, "new_tag", dl.Candidate,
		"key", dl.Key, "attempt", dl.Attempts+1)
	o := store.Outcome{ID: dl.ID, At: f.at, Detail: r.Detail, Rollout: fromSDKRollout(r.Rollout), Deploys: in.Deploys}
	event := d.eventOf(in, r, o.Rollout)
	if o.Rollout != nil && o.Detail == "" {
		o.Detail = o.Rollout.Text()
	}
	detail := o.Detail
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
		i, _ := slices.BinarySearchFunc(st.retries, o.Next, time.Time.Compare)
		st.retries = slices.Insert(st.retries, i, o.Next)
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
		st.events[dl.ID] = caused{update: dl.Update, event: event, detail: why, rollout: o.Rollout}
	}
	if d.observe != nil || (d.services != nil && len(r.Services) > 0) {
		// Told once the outcome is written: an observer that reads the
		// store on hearing it (the UI's event stream, Home Assistant's
		// entity refreshing from the API) must find it there.
		st.observed[dl.ID] = observed{trigger: in.Name, services: r.Services}
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
