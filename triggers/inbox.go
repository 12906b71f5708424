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

// inboxCap bounds the deliveries held per instance; past it the loop reads
// the outbox instead.
const inboxCap = 256

// inbox holds the deliveries handed to the loop, by instance.
type inbox struct {
	mu   sync.Mutex
	by   map[string][]store.Delivery
	scan map[string]bool // instances whose handed deliveries did not all fit
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
	for _, dl := range ds {
		switch {
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

// take empties the inbox: the deliveries by instance, and the instances
// whose outbox must be read.
func (b *inbox) take() (by map[string][]store.Delivery, scan map[string]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	by, scan = b.by, b.scan
	b.by, b.scan = nil, nil
	return by, scan
}

// empty reports whether nothing waits in the inbox.
func (b *inbox) empty() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.by) == 0 && len(b.scan) == 0
}

// handOver puts created (deliveries just written, without their update) in
// the inbox with their updates, found in ups by ID, and wakes the loop.
func (d *Dispatcher) handOver(created []store.Delivery, ups func(id int64) (core.Update, bool)) {
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
