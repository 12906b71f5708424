package triggers

import (
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
)

// The inbox: Notify, NotifyEvent and Request hand the deliveries they have
// just written to the loop, with their updates, so that the loop claims
// them without reading back from the outbox what was written a moment ago.
// The outbox stays the truth: what the inbox cannot hold (a batch, more
// than inboxCap per instance, a delivery not due yet) only makes the loop
// read the outbox for that instance, and the loop claims nothing a store
// claim does not confirm (a delivery finished meanwhile is not fired).
//
// While the loop runs, a few deliveries of Notify and NotifyEvent (at most
// CONCURRENCY per instance and call) are written claimed already (store.NewDelivery.Lease): one
// commit fewer before they are fired. Room for them is reserved in the
// inbox before they are written, and the inbox never drops them.

// inboxCap bounds the deliveries held per instance; past it the loop reads
// the outbox instead.
const inboxCap = 256

// inbox holds the deliveries handed to the loop, by instance.
type inbox struct {
	mu       sync.Mutex
	by       map[string][]store.Delivery // pending: hints, the outbox has them too
	scan     map[string]bool             // instances whose handed deliveries did not all fit
	claimed  map[string][]store.Delivery // written claimed: the loop must fire them
	reserved map[string]int              // room promised to claimed ones being written
}

// reserve promises room for n claimed deliveries of instance, and reports
// whether there was.
func (b *inbox) reserve(instance string, n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reserved == nil {
		b.reserved = map[string]int{}
	}
	if b.reserved[instance]+len(b.claimed[instance])+n > inboxCap {
		return false
	}
	b.reserved[instance] += n
	return true
}

// unreserve takes back the room reserve promised.
func (b *inbox) unreserve(reserved map[string]int) {
	if len(reserved) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, n := range reserved {
		b.reserved[name] -= n
	}
}

// put hands ds (just written, with their Update) to the loop; one without
// its Update is to be read from the outbox.
func (b *inbox) put(ds []store.Delivery, batch func(instance string) bool) {
	if len(ds) == 0 {
		return
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.by == nil {
		b.by, b.scan = map[string][]store.Delivery{}, map[string]bool{}
	}
	if b.claimed == nil {
		b.claimed = map[string][]store.Delivery{}
	}
	for _, dl := range ds {
		switch {
		case dl.Status == store.DeliveryRunning:
			b.claimed[dl.Trigger] = append(b.claimed[dl.Trigger], dl)
		case b.scan[dl.Trigger]:
		case dl.Update.ID == 0, batch(dl.Trigger), dl.NextAttemptAt.After(now), len(b.by[dl.Trigger]) >= inboxCap:
			// A batch is read whole from the outbox; the others are found there.
			b.scan[dl.Trigger] = true
			delete(b.by, dl.Trigger)
		default:
			b.by[dl.Trigger] = append(b.by[dl.Trigger], dl)
		}
	}
}

// take empties the inbox: the pending deliveries by instance, the
// instances whose outbox must be read, and the claimed deliveries.
func (b *inbox) take() (by map[string][]store.Delivery, scan map[string]bool, claimed map[string][]store.Delivery) {
	b.mu.Lock()
	defer b.mu.Unlock()
	by, scan, claimed = b.by, b.scan, b.claimed
	b.by, b.scan, b.claimed = nil, nil, nil
	return by, scan, claimed
}

// empty reports whether nothing waits in the inbox.
func (b *inbox) empty() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.by) == 0 && len(b.scan) == 0 && len(b.claimed) == 0
}

// preclaim gives a lease to the deliveries of ds that the running loop
// can fire at once (up to CONCURRENCY per instance, of instances not in
// batch mode), so that Enqueue writes them claimed, and returns the room
// it reserved for them in the inbox; handOver gives it back.
func (d *Dispatcher) preclaim(ds []store.NewDelivery) map[string]int {
	if !d.looping.Load() {
		return nil
	}
	count := map[string]int{}
	for _, nd := range ds {
		count[nd.Trigger]++
	}
	reserved := map[string]int{}
	now := time.Now()
	for i := range ds {
		in := d.byName[ds[i].Trigger]
		n := count[ds[i].Trigger]
		if in == nil || in.Policy.Mode == core.ModeBatch || n > in.Policy.Concurrency || ds[i].Batch != "" || !ds[i].NotBefore.IsZero() {
			continue
		}
		if _, ok := reserved[in.Name]; !ok {
			if !d.inbox.reserve(in.Name, n) {
				count[in.Name] = in.Policy.Concurrency + 1 // no room: none of this instance
				continue
			}
			reserved[in.Name] = n
		}
		ds[i].Lease = now.Add(d.lease(in))
	}
	return reserved
}

// handOver puts created (deliveries just written, without their update) in
// the inbox with their updates, found in ups by ID, gives back the room
// preclaim reserved, and wakes the loop.
func (d *Dispatcher) handOver(created []store.Delivery, reserved map[string]int, ups func(id int64) (core.Update, bool)) {
	defer d.inbox.unreserve(reserved)
	if len(created) == 0 {
		return
	}
	ds := make([]store.Delivery, 0, len(created))
	for _, dl := range created {
		u, ok := ups(dl.UpdateID)
		if !ok {
			ds = append(ds, dl) // without its update: read from the outbox
			continue
		}
		if in := d.byName[dl.Trigger]; in != nil && in.Deploys && dl.Event == core.EventUpdateAvailable {
			u.Status = core.StatusApplying // as the enqueue marked it
		}
		dl.Update = u
		ds = append(ds, dl)
	}
	d.inbox.put(ds, d.batched)
	d.signal()
}

// batched reports whether instance fires in batches.
func (d *Dispatcher) batched(instance string) bool {
	in := d.byName[instance]
	return in == nil || in.Policy.Mode == core.ModeBatch
}
