package watch

import (
	"iter"
	"log/slog"
	"sync"
	"time"
)

// Phases is where a full run's time went. Each phase but Select is the wall
// time from the start of its first piece of work to the end of its last
// one; the phases overlap (inspects, registry requests and selection run
// side by side), so they do not add up to Total.
type Phases struct {
	// List is the engine's container list.
	List time.Duration
	// Inspect spans the image inspects the run made (none when every image
	// was known from an earlier run).
	Inspect time.Duration
	// Registry spans the registry requests: tag lists, digests, the
	// resolutions of changed digests and the reading of candidates' ages.
	Registry time.Duration
	// Select is the time spent choosing each container's candidate from
	// the answers, added up (it is done repository by repository, as their
	// answers come in, inside the registry phase).
	Select time.Duration
	// Store is the run's one transaction (RecordFullRun).
	Store time.Duration
	// Dispatch is handing the updates to the Dispatcher (the outbox write).
	Dispatch time.Duration
	// Total is the whole run, from before the list to after the dispatch.
	Total time.Duration
}

// PhaseNames are the names of the phases, in the order of a run, as
// metrics and logs give them.
var PhaseNames = []string{"list", "inspect", "registry", "select", "store", "dispatch"}

// All yields each phase's name (PhaseNames) and duration, Total left out.
func (p Phases) All() iter.Seq2[string, time.Duration] {
	return func(yield func(string, time.Duration) bool) {
		for i, d := range []time.Duration{p.List, p.Inspect, p.Registry, p.Select, p.Store, p.Dispatch} {
			if !yield(PhaseNames[i], d) {
				return
			}
		}
	}
}

// logGroup is the phases for the "run done" line: phase_ms.list=…
func (p Phases) logGroup() slog.Attr {
	var attrs []any
	for name, d := range p.All() {
		attrs = append(attrs, name, d.Milliseconds())
	}
	return slog.Group("phase_ms", attrs...)
}

// span is the wall time covered by one kind of work, done any number of
// times, from any goroutine.
type span struct {
	mu          sync.Mutex
	first, last time.Time
}

// time runs do and stretches the span over it.
func (s *span) time(now func() time.Time, do func() error) error {
	start := now()
	err := do()
	end := now()
	s.mu.Lock()
	if s.first.IsZero() || start.Before(s.first) {
		s.first = start
	}
	if end.After(s.last) {
		s.last = end
	}
	s.mu.Unlock()
	return err
}

func (s *span) duration() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first.IsZero() {
		return 0
	}
	return s.last.Sub(s.first)
}

// total is time spent on one kind of work, added up over every time it
// is done, from any goroutine.
type total struct {
	mu  sync.Mutex
	sum time.Duration
}

// time runs do and adds its duration.
func (t *total) time(now func() time.Time, do func() error) error {
	start := now()
	err := do()
	d := now().Sub(start)
	t.mu.Lock()
	t.sum += d
	t.mu.Unlock()
	return err
}

func (t *total) duration() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sum
}

// phaseClock times the phases of one run.
type phaseClock struct {
	start                                    time.Time
	list, inspect, registry, store, dispatch span
	selection                                total // added up: it happens inside the registry's span
}

func newPhaseClock(start time.Time) *phaseClock { return &phaseClock{start: start} }

// done returns the phases of a run that ends at end.
func (c *phaseClock) done(end time.Time) Phases {
	return Phases{
		List: c.list.duration(), Inspect: c.inspect.duration(), Registry: c.registry.duration(),
		Select: c.selection.duration(), Store: c.store.duration(), Dispatch: c.dispatch.duration(),
		Total: end.Sub(c.start),
	}
}
