package watch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/tidewatch/tidewatch/core"
)

// LoopOptions tune Watch.
type LoopOptions struct {
	// Schedule is a cron expression (5 fields or a descriptor) for full runs. Default "0 * * * *".
	Schedule string
	// Jitter delays each scheduled run by a random duration up to this much,
	// so that many instances do not hit a registry at the same second. Default 0.
	Jitter time.Duration
	// RunAtStart runs a full check when Watch starts. Default false in the zero value.
	RunAtStart bool
	// IgnoreEvents does not follow the engine's events: no container is
	// checked when it starts, and no full run follows the engine's return;
	// only the schedule (and RunAtStart) runs checks. Default false: events
	// are followed (config's WATCHEVENTS=true).
	IgnoreEvents bool
	// Debounce waits this long after a container starts before checking it,
	// so that a burst of starts (compose up) is checked once each. Default 500ms.
	Debounce time.Duration
	// MaxBackoff caps the wait between reconnections to the engine. Default 30s.
	MaxBackoff time.Duration
	// MinGap is the least time from the end of one full run to the start of
	// the next, whatever asks for it (the schedule, a reconnection, the
	// start), so that no schedule makes a watcher hammer its engine and
	// registries. A run due sooner waits. Default DefaultMinGap.
	MinGap time.Duration
	// OnRun, when set, is called after each full or single-container run (for metrics and tests).
	OnRun func(RunReport)

	schedule cron.Schedule // in place of Schedule, for tests of schedules no expression writes
}

// DefaultMinGap is LoopOptions.MinGap's default: one minute, the finest step
// of a five-field cron expression, so that only a descriptor such as
// "@every 10s" is slowed down by it.
const DefaultMinGap = time.Minute

// RunReport describes one run of Watch.
type RunReport struct {
	// Full is true for a full run, false for a single container's check.
	Full bool
	// Reason says why it ran: "start", "schedule", "reconnect", "event".
	Reason string
	// Checks are the results.
	Checks []core.Check
	// Err is the run's error, if the run as a whole failed.
	Err error
	// Start is when the run began.
	Start time.Time
	// Phases is where a full run's time went; zero for a single container's.
	Phases Phases
}

// Watch runs full checks on the schedule and, unless o.IgnoreEvents, checks
// each newly started container within seconds, until ctx ends. When the
// engine's event stream breaks, it reconnects with backoff and runs a full
// check to reconcile.
// Full runs are at least o.MinGap apart.
// It returns nil when ctx ends, or an error for a bad schedule: one that does
// not parse, or that never fires ("0 0 31 2 *", February 31st).
func (w *Watcher) Watch(ctx context.Context, o LoopOptions) error {
	if o.Schedule == "" {
		o.Schedule = "0 * * * *"
	}
	if o.Debounce <= 0 {
		o.Debounce = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.MinGap <= 0 {
		o.MinGap = DefaultMinGap
	}
	sched := o.schedule
	if sched == nil {
		var err error
		if sched, err = cron.ParseStandard(o.Schedule); err != nil {
			return fmt.Errorf("parsing schedule %q of %s: %w", o.Schedule, w.opts.Host, err)
		}
	}
	first := sched.Next(time.Now())
	if first.IsZero() {
		return fmt.Errorf("schedule %q of %s: %w", o.Schedule, w.opts.Host, ErrNeverFires)
	}
	if gap := sched.Next(first).Sub(first); gap < o.MinGap {
		w.log.Warn("schedule fires more often than full runs may start; they start at least min_gap apart",
			"schedule", o.Schedule, "min_gap", o.MinGap.String())
	}
	l := &loop{
		w:        w,
		o:        o,
		sched:    sched,
		fullRuns: make(chan string, 1),
		started:  make(chan string, 64),
		pending:  map[string]time.Time{},
	}
	if o.RunAtStart {
		l.requestFull("start")
	}
	if !o.IgnoreEvents {
		go w.follow(ctx, o, l.started, l.requestFull)
	}
	if err := l.run(ctx); err != nil {
		return fmt.Errorf("schedule %q of %s: %w", o.Schedule, w.opts.Host, err)
	}
	return nil
}

// ErrNeverFires is Watch's error for a schedule with no next time.
var ErrNeverFires = errors.New("the schedule never fires")

// loop is the state of one Watch: when the next scheduled run is due, the
// full runs asked for, and the started containers waiting to be checked.
type loop struct {
	w     *Watcher
	o     LoopOptions
	sched cron.Schedule

	fullRuns chan string          // reasons of full runs asked for; one is kept
	started  chan string          // IDs of containers the engine started
	pending  map[string]time.Time // container ID → when to check it
	next     time.Time            // the next scheduled full run, jitter included; zero: to compute
	asked    string               // the reason of a full run asked for and not yet run; "" when none
	lastEnd  time.Time            // when the last full run ended; zero before the first
}

// run serves the loop until ctx ends: full runs when asked for or due, at
// least MinGap apart, and the started containers once their debounce has
// passed. It returns an error when the schedule has no next time.
func (l *loop) run(ctx context.Context) error {
	for {
		if l.next.IsZero() {
			next := l.sched.Next(time.Now())
			if next.IsZero() {
				return ErrNeverFires
			}
			if l.o.Jitter > 0 {
				next = next.Add(rand.N(l.o.Jitter))
			}
			l.next = next
		}
		now := time.Now()
		if reason := l.fullDue(now); reason != "" {
			if !now.Before(l.next) {
				l.next = time.Time{} // this run covers the scheduled one that is due
			}
			l.asked = ""
			clear(l.pending) // a full run covers them
			l.full(ctx, reason)
			continue
		}
		if !l.checkDue(ctx, now) {
			return nil
		}
		timer := time.NewTimer(time.Until(l.wake(now)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case reason := <-l.fullRuns:
			timer.Stop()
			if l.asked == "" {
				l.asked = reason
			}
		case id := <-l.started:
			timer.Stop()
			if _, ok := l.pending[id]; !ok {
				l.pending[id] = time.Now().Add(l.o.Debounce)
			}
		case <-timer.C:
		}
	}
}

// fullDue returns why a full run should start at now ("schedule", or the
// reason it was asked for), or "" when none should: none is due, or the last
// one ended less than MinGap ago.
func (l *loop) fullDue(now time.Time) string {
	if !l.lastEnd.IsZero() && now.Before(l.lastEnd.Add(l.o.MinGap)) {
		return ""
	}
	if l.asked != "" {
		return l.asked
	}
	if !now.Before(l.next) {
		return "schedule"
	}
	return ""
}

// wake returns when the loop has something to do: the next full run (asked
// for or scheduled, not before MinGap has passed since the last one), or a
// pending container's check if that comes first.
func (l *loop) wake(now time.Time) time.Time {
	wake := l.next
	if l.asked != "" {
		wake = now
	}
	if !l.lastEnd.IsZero() {
		if earliest := l.lastEnd.Add(l.o.MinGap); wake.Before(earliest) {
			wake = earliest
		}
	}
	for _, at := range l.pending {
		if at.Before(wake) {
			wake = at
		}
	}
	return wake
}

// requestFull asks for a full run; a run already asked for covers it.
func (l *loop) requestFull(reason string) {
	select {
	case l.fullRuns <- reason:
	default: // one is already queued
	}
}

// full runs a full check and reports it, unless ctx ended meanwhile.
func (l *loop) full(ctx context.Context, reason string) {
	start := time.Now()
	checks, phases, err := l.w.run(ctx)
	l.lastEnd = time.Now()
	if ctx.Err() != nil {
		return
	}
	l.report(RunReport{Full: true, Reason: reason, Checks: checks, Err: err, Start: start, Phases: phases})
}

// checkDue checks each pending container whose debounce had passed at now.
// It reports false when ctx ended meanwhile.
func (l *loop) checkDue(ctx context.Context, now time.Time) bool {
	for id, at := range l.pending {
		if at.After(now) {
			continue
		}
		delete(l.pending, id)
		start := time.Now()
		check, watched, err := l.w.RunContainer(ctx, id)
		if errors.Is(err, core.ErrNotFound) || (!watched && err == nil) {
			continue // gone again, or not ours to watch
		}
		if ctx.Err() != nil {
			return false
		}
		r := RunReport{Reason: "event", Err: err, Start: start}
		if watched {
			r.Checks = []core.Check{check}
		}
		l.report(r)
	}
	return true
}

// report logs a failed run and hands every run to OnRun.
func (l *loop) report(r RunReport) {
	if r.Err != nil {
		l.w.log.Error("run failed", "reason", r.Reason, "error", r.Err)
	}
	if l.o.OnRun != nil {
		l.o.OnRun(r)
	}
}

// follow reads engine events into started. When the stream breaks it waits,
// with backoff, until the engine answers a ping again, subscribes anew and
// asks for a full run to reconcile what happened while it was away.
func (w *Watcher) follow(ctx context.Context, o LoopOptions, started chan<- string, requestFull func(string)) {
	const minBackoff = 250 * time.Millisecond
	backoff := minBackoff
	reconnecting := false
	// Events since the loop began are replayed on the first subscription, so
	// a container started while it was opening is not missed; after a break,
	// since the last event seen (a full run reconciles the rest).
	since := time.Now()
	for ctx.Err() == nil {
		if err := w.engine.Ping(ctx); err != nil {
			w.log.Debug("engine not answering; waiting", "error", err, "backoff_ms", backoff.Milliseconds())
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, o.MaxBackoff)
			continue
		}
		backoff = minBackoff
		evCtx, cancel := context.WithCancel(ctx)
		events, errs := w.engine.Events(evCtx, since)
		if reconnecting {
			w.log.Info("engine event stream reconnected; reconciling")
			requestFull("reconnect")
		}
		reconnecting = true
		err := func() error {
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						return <-errs
					}
					if ev.At.After(since) {
						since = ev.At
					}
					if ev.Action != "start" {
						continue
					}
					select {
					case started <- ev.ContainerID:
					case <-ctx.Done():
						return ctx.Err()
					}
				case err := <-errs:
					return err
				}
			}
		}()
		cancel()
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("engine event stream broke; reconnecting", "error", err)
		if !sleep(ctx, backoff) {
			return
		}
	}
}

// sleep waits for d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
