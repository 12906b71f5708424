package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// The types of Event the UI hears.
const (
	// EventRun: a watch run ended (Data: a RunInfo).
	EventRun = "run"
	// EventUpdate: an update changed (Data: the update, or {"id": …}).
	EventUpdate = "update"
	// EventDelivery: a delivery changed (Data: the delivery).
	EventDelivery = "delivery"
)

// Event is one message of the event stream.
type Event struct {
	// Type is EventRun, EventUpdate or EventDelivery; it is the SSE "event:" field.
	Type string
	// Data is encoded as JSON in the SSE "data:" field; it must hold no secret.
	Data any
}

// SubscriberBuffer is how many events a subscriber may fall behind before
// it loses events.
const SubscriberBuffer = 64

// Broker fans published events out to subscribers. Publish never blocks: a
// subscriber whose buffer is full loses the event (and Dropped counts it);
// the UI reloads what it shows on any event, so a lost one is caught up by
// the next.
type Broker struct {
	mu      sync.Mutex
	subs    map[chan Event]struct{}
	dropped int64
}

var _ Events = (*Broker)(nil)

// NewBroker returns a broker without subscribers.
func NewBroker() *Broker { return &Broker{subs: map[chan Event]struct{}{}} }

// Publish sends e to every subscriber that has room for it.
func (b *Broker) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
			b.dropped++
		}
	}
}

// Subscribe returns the events published from now until ctx ends, when the
// channel is closed.
func (b *Broker) Subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, SubscriberBuffer)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
		close(ch)
	})
	return ch
}

// Subscribers counts the current subscribers.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Dropped counts the events lost by slow subscribers since start.
func (b *Broker) Dropped() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// events streams Server-Sent Events until the client leaves or the server
// shuts down, with a comment line every heartbeat so that proxies keep the
// connection open.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	if s.deps.Events == nil {
		return &Error{Status: http.StatusNotImplemented, Code: "not_implemented", Message: "no event stream in this server"}
	}
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !isUnsupported(err) {
		return fmt.Errorf("lifting the write deadline of an event stream: %w", err)
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.closing, cancel)
	defer stop()
	ch := s.deps.Events.Subscribe(ctx)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": tidewatch events\nretry: 3000\n\n"); err != nil {
		return nil
	}
	if rc.Flush() != nil {
		return nil
	}
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return nil
			}
		case e, ok := <-ch:
			if !ok {
				return nil
			}
			data, err := json.Marshal(e.Data)
			if err != nil {
				s.log.Warn("encoding event", "event", e.Type, "error", err)
				continue
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, data); err != nil {
				return nil
			}
		}
		if rc.Flush() != nil {
			return nil
		}
	}
}
