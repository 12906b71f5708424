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
	// Debounce waits this long after a container starts before checking it,
	// so that a burst of starts (compose up) is checked once each. Default 500ms.
	Debounce time.Duration
	// MaxBackoff caps the wait between reconnections to the engine. Default 30s.
	MaxBackoff time.Duration
	// OnRun, when set, is called after each full or single-container run (for metrics and tests).
	OnRun func(RunReport)
}

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
}

// Watch runs full checks on the schedule and checks each newly started
// container within seconds, until ctx ends. When the engine's event stream
// breaks, it reconnects with backoff and runs a full check to reconcile.
// It returns nil when ctx ends, or an error for a bad schedule.
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
	sched, err := cron.ParseStandard(o.Schedule)
	if err != nil {
		return fmt.Errorf("parsing schedule %q of %s: %w", o.Schedule, w.opts.Host, err)
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
	go w.follow(ctx, o, l.started, l.requestFull)
	l.run(ctx)
	return nil
}

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
}

// run serves the loop until ctx ends: full runs when asked for or due, and
// the started containers once their debounce has passed.
func (l *loop) run(ctx context.Context) {
	for {
		if l.next.IsZero() {
			l.next = l.nextScheduled()
		}
		timer := time.NewTimer(time.Until(l.wake()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case reason := <-l.fullRuns:
			timer.Stop()
			clear(l.pending) // a full run covers them
			l.full(ctx, reason)
		case id := <-l.started:
			timer.Stop()
			if _, ok := l.pending[id]; !ok {
				l.pending[id] = time.Now().Add(l.o.Debounce)
			}
		case <-timer.C:
			if !time.Now().Before(l.next) {
				l.next = time.Time{}
				clear(l.pending)
				l.full(ctx, "schedule")
				continue
			}
			if !l.checkDue(ctx) {
				return
			}
		}
	}
}

// nextScheduled returns the schedule's next time after now, jitter added.
func (l *loop) nextScheduled() time.Time {
	next := l.sched.Next(time.Now())
	if l.o.Jitter > 0 {
		next = next.Add(rand.N(l.o.Jitter))
	}
	return next
}

// wake returns when the loop has something to do: the next scheduled run,
// or a pending container's check if that comes first.
func (l *loop) wake() time.Time {
	wake := l.next
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
	checks, err := l.w.Run(ctx)
	if ctx.Err() != nil {
		return
	}
	l.report(RunReport{Full: true, Reason: reason, Checks: checks, Err: err, Start: start})
}

// checkDue checks each pending container whose debounce has passed. It
// reports false when ctx ended meanwhile.
func (l *loop) checkDue(ctx context.Context) bool {
	now := time.Now()
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
