package triggers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
)

// Notify enqueues, after a watch run (runID; one is made up when empty),
// one update-available delivery per update the run recorded and automatic
// instance whose policy matches it (pending and notified updates only: not
// dismissed or being applied), in one transaction; Run or Drain fires them.
// In batch mode an instance's deliveries of the run share one batch. With
// ONCE on, an update already delivered (or queued) for the same candidate is
// not enqueued again.
func (d *Dispatcher) Notify(ctx context.Context, runID string, updates []core.Update) error {
	if runID == "" {
		runID = newID("run")
	}
	var ds []store.NewDelivery
	for _, in := range d.insts {
		if !in.Policy.Auto || !in.Policy.Hears(core.EventUpdateAvailable) {
			continue
		}
		batch := ""
		if in.Policy.Mode == core.ModeBatch {
			batch = runID + "/" + in.Name
		}
		for _, u := range updates {
			if u.Status != core.StatusPending && u.Status != core.StatusNotified {
				continue
			}
			if !in.Policy.Matches(u, in.Name) {
				continue
			}
			nd := store.NewDelivery{UpdateID: u.ID, Trigger: in.Name, Candidate: u.CandidateRef(),
				Event: core.EventUpdateAvailable, Batch: batch, MarkApplying: in.Deploys}
			if !in.Policy.Once {
				nd.Run = runID
			}
			ds = append(ds, nd)
		}
	}
	reserved := d.preclaim(ds)
	created, err := d.out.Enqueue(ctx, ds)
	if err != nil {
		d.inbox.unreserve(reserved)
		return fmt.Errorf("notifying run %s: %w", runID, err)
	}
	if len(created) == 0 {
		d.inbox.unreserve(reserved)
	} else {
		d.log.Debug("deliveries enqueued", "run", runID, "deliveries", len(created))
		byID := make(map[int64]int, len(updates))
		for i, u := range updates {
			byID[u.ID] = i
		}
		d.handOver(created, reserved, func(id int64) (core.Update, bool) {
			i, ok := byID[id]
			if !ok {
				return core.Update{}, false
			}
			return updates[i], true
		})
	}
	return nil
}

// NotifyEvent enqueues a delivery of event (a rollout's outcome:
// core.EventUpdateApplied, …) about u, with detail, to every automatic
// instance whose Events include it and whose policy matches u. Each call is
// a distinct occurrence, delivered once.
func (d *Dispatcher) NotifyEvent(ctx context.Context, u core.Update, event core.Event, detail string) error {
	occurrence := newID("event")
	var ds []store.NewDelivery
	for _, in := range d.insts {
		if !in.Policy.Auto || !in.Policy.Hears(event) || !in.Policy.Matches(u, in.Name) {
			continue
		}
		ds = append(ds, store.NewDelivery{UpdateID: u.ID, Trigger: in.Name, Candidate: u.CandidateRef(),
			Event: event, Run: occurrence, EventDetail: detail})
	}
	reserved := d.preclaim(ds)
	created, err := d.out.Enqueue(ctx, ds)
	if err != nil {
		d.inbox.unreserve(reserved)
		return fmt.Errorf("notifying %s of update %d: %w", event, u.ID, err)
	}
	d.handOver(created, reserved, func(id int64) (core.Update, bool) { return u, id == u.ID })
	return nil
}

// Request enqueues a delivery of update updateID to instance because
// principal (a user or token of the API, "mqtt") asked: Apply in the UI,
// POST /api/deploy, Home Assistant's Install. It goes through the same
// outbox, retries and history as automatic deliveries, and through the
// instance's policy, but for AUTO and THRESHOLD, which say what the trigger
// does by itself: INCLUDE, EXCLUDE and the container's tidewatch.watch,
// tidewatch.trigger.include and tidewatch.trigger.exclude labels apply. A
// refusal is a *core.RefusalError naming the rule, also written to the
// history. Through a deploying instance the update becomes applying, in the
// same transaction; an update already applying is ErrApplying. Run or Drain
// fires the delivery; Await waits for its outcome.
func (d *Dispatcher) Request(ctx context.Context, updateID int64, instance, principal string) (store.Delivery, error) {
	in, u, err := d.check(ctx, updateID, instance)
	if err != nil {
		if _, refused := IsRefusal(err); refused {
			d.refused(ctx, u, in.Name, principal, err)
		}
		return store.Delivery{}, fmt.Errorf("requesting %s for update %d: %w", instance, updateID, err)
	}
	// Not written claimed: the delivery returned is pending, to follow.
	created, err := d.out.Enqueue(ctx, []store.NewDelivery{{UpdateID: u.ID, Trigger: in.Name, Candidate: u.CandidateRef(),
		Event: core.EventUpdateAvailable, Run: newID("request"), Principal: principal, MarkApplying: in.Deploys}})
	if err != nil {
		return store.Delivery{}, fmt.Errorf("requesting %s for update %d: %w", instance, updateID, err)
	}
	d.handOver(created, nil, func(id int64) (core.Update, bool) { return u, id == u.ID })
	if len(created) != 1 {
		return store.Delivery{}, fmt.Errorf("requesting %s for update %d: delivery not created", instance, updateID)
	}
	created[0].Update = u
	if in.Deploys {
		created[0].Update.Status = core.StatusApplying
	}
	return created[0], nil
}

// Declare enqueues the deploy of what a git source's compose files declare
// (nd.Declared: one service of one commit) to the deploying instance, and
// returns its delivery; Run or Drain fires it, Await waits for its outcome.
// It goes through the same outbox, retries, history and notifications as
// any rollout, and through the instance's own rules: WATCHER, INCLUDE and
// EXCLUDE (of "<project>/<service>") apply; AUTO, THRESHOLD and MIN_AGE do
// not (a commit is no image update, and the source's TRIGGER asked for it),
// nor do the service's tidewatch.* labels (tidewatch.watch,
// tidewatch.trigger.include, tidewatch.trigger.exclude), which speak of the
// image updates the watcher finds, while the source's files are themselves
// the declaration of what runs. A refusal is a *core.RefusalError naming the
// rule, also written to the history. nd.Host defaults to the instance's one watcher. The same
// instance, To and Run give the same delivery: asked again (after a
// restart), the one enqueued before is returned as it stands.
func (d *Dispatcher) Declare(ctx context.Context, instance string, nd store.NewDeclared) (store.Delivery, error) {
	in, ok := d.byName[instance]
	if !ok {
		return store.Delivery{}, fmt.Errorf("declaring %s to %s: %w", nd.Declared.Target(), instance, ErrUnknownTrigger)
	}
	if !in.Deploys {
		return store.Delivery{}, fmt.Errorf("declaring %s to %s: %w", nd.Declared.Target(), instance, ErrNotDeploying)
	}
	if nd.Host == "" && len(in.Policy.Watchers) == 1 {
		nd.Host = in.Policy.Watchers[0]
	}
	nd.Trigger = instance
	u := core.Update{Host: nd.Host, ContainerName: nd.Declared.Target(), DisplayName: nd.Declared.Target(), Image: nd.Image,
		Current: nd.From, Candidate: nd.To, Kind: core.KindGit, Status: core.StatusApplying, Labels: nd.Labels}
	ruled := u
	ruled.Labels = nil // the labels' rules are for image updates
	if err := in.Policy.Refusal(ruled, in.Name, true); err != nil {
		d.refused(ctx, u, in.Name, nd.Principal, err)
		return store.Delivery{}, fmt.Errorf("declaring %s to %s: %w", nd.Declared.Target(), instance, err)
	}
	dl, created, err := d.out.EnqueueDeclared(ctx, nd)
	if err != nil {
		return store.Delivery{}, fmt.Errorf("declaring %s to %s: %w", nd.Declared.Target(), instance, err)
	}
	if created {
		d.handOver([]store.Delivery{dl}, nil, func(id int64) (core.Update, bool) { return dl.Update, id == dl.UpdateID })
	} else {
		d.signal()
	}
	return dl, nil
}

// UnfinishedDeclared returns the declared deploys to instance trigger that
// principal asked for (Declare) and that have no final outcome yet, oldest
// first: what a deploy cut short by a stop left, which Run resumes.
func (d *Dispatcher) UnfinishedDeclared(ctx context.Context, trigger, principal string) ([]int64, error) {
	return d.out.UnfinishedDeclared(ctx, trigger, principal)
}

// Check says what Request would say of update updateID and instance,
// without enqueuing or recording anything: nil when it would enqueue a
// delivery, else the error it would return (a *core.RefusalError naming the
// rule, ErrApplying, ErrUnknownTrigger, the store's core.ErrNotFound). It is
// the dry run of an Apply.
func (d *Dispatcher) Check(ctx context.Context, updateID int64, instance string) error {
	if _, _, err := d.check(ctx, updateID, instance); err != nil {
		return fmt.Errorf("checking %s for update %d: %w", instance, updateID, err)
	}
	return nil
}

// check finds instance and update updateID and applies the instance's
// policy to a person's request for it.
func (d *Dispatcher) check(ctx context.Context, updateID int64, instance string) (*Instance, core.Update, error) {
	in, ok := d.byName[instance]
	if !ok {
		return nil, core.Update{}, ErrUnknownTrigger
	}
	u, err := d.out.Update(ctx, updateID)
	if err != nil {
		return in, u, err
	}
	if err := in.Policy.Refusal(u, in.Name, true); err != nil {
		return in, u, err
	}
	if in.Deploys && u.Status == core.StatusApplying {
		return in, u, ErrApplying
	}
	return in, u, nil
}

// refused records in the history that instance's policy refused u when principal asked.
func (d *Dispatcher) refused(ctx context.Context, u core.Update, instance, principal string, why error) {
	e := store.Event{Host: u.Host, Container: u.ContainerName, Image: u.Image, Kind: store.EventRefused,
		From: u.CurrentRef(), To: u.CandidateRef(), UpdateKind: u.Kind, UpdateID: u.ID, Trigger: instance, Principal: principal,
		Detail: instance + ": " + why.Error()}
	if err := d.out.AddEvent(context.WithoutCancel(ctx), e); err != nil {
		d.log.Error("recording a refusal in the history", "trigger", instance, "update", u.ID, "error", err)
	}
}

// Await waits until delivery id has its final outcome (delivered, or
// failed: retries are waited out) and returns it, or until ctx ends, when it
// returns the delivery as it stands with ctx's error.
func (d *Dispatcher) Await(ctx context.Context, id int64) (store.Delivery, error) {
	ch := d.waiters.add(id)
	defer d.waiters.remove(id, ch)
	t := time.NewTicker(2 * time.Second) // in case the outcome is written by another path
	defer t.Stop()
	for {
		dl, err := d.out.Delivery(context.WithoutCancel(ctx), id)
		if err != nil {
			return dl, fmt.Errorf("awaiting delivery %d: %w", id, err)
		}
		if dl.Finished() {
			return dl, nil
		}
		select {
		case <-ctx.Done():
			return dl, fmt.Errorf("awaiting delivery %d: %w", id, ctx.Err())
		case <-ch:
		case <-t.C:
		}
	}
}

// waiters are the channels of Await calls, by delivery; each is signalled
// when an outcome of its delivery is written.
type waiters struct {
	mu sync.Mutex
	m  map[int64][]chan struct{}
}

func (w *waiters) add(id int64) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[int64][]chan struct{}{}
	}
	ch := make(chan struct{}, 1)
	w.m[id] = append(w.m[id], ch)
	return ch
}

func (w *waiters) remove(id int64, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := w.m[id]
	for i, c := range list {
		if c == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(w.m, id)
	} else {
		w.m[id] = list
	}
}

// wake signals the waiters of id without blocking.
func (w *waiters) wake(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.m[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// IsRefusal reports whether err is a policy's refusal, and returns it.
func IsRefusal(err error) (*core.RefusalError, bool) {
	var r *core.RefusalError
	ok := errors.As(err, &r)
	return r, ok
}
