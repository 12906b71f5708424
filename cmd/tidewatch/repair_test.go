package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/web"
)

// notified records the events handed to the triggers.
type notified struct {
	events []core.Event
	err    error
}

func (n *notified) NotifyEvent(_ context.Context, _ core.Update, event core.Event, _ string) error {
	n.events = append(n.events, event)
	return n.err
}

// TestRepairNotifierTellsTheStream: a rollout the repair loop settled goes
// to the triggers, and the event stream hears that its update changed, even
// when handing it to the triggers failed (its status is written anyway).
func TestRepairNotifierTellsTheStream(t *testing.T) {
	for _, failing := range []error{nil, errors.New("the outbox is full")} {
		next := &notified{err: failing}
		events := web.NewBroker()
		ctx, cancel := context.WithCancel(context.Background())
		sub := events.Subscribe(ctx)
		n := repairNotifier{next: next, events: events}
		err := n.NotifyEvent(ctx, core.Update{ID: 7}, core.EventUpdateRolledBack, "settled")
		if !errors.Is(err, failing) || (failing == nil) != (err == nil) {
			t.Errorf("NotifyEvent = %v, want %v", err, failing)
		}
		if len(next.events) != 1 || next.events[0] != core.EventUpdateRolledBack {
			t.Errorf("the triggers were handed %v, want update-rolled-back", next.events)
		}
		select {
		case e := <-sub:
			data, _ := e.Data.(map[string]any)
			if e.Type != web.EventUpdate || data["id"] != int64(7) {
				t.Errorf("the stream heard %+v, want an update event of update 7", e)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("the stream heard nothing of the settled update")
		}
		cancel()
	}
}
