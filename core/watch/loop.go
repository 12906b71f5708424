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
	report := func(r RunReport) {
		if r.Err != nil {
			w.log.Error("run failed", "reason", r.Reason, "error", r.Err)
		}
		if o.OnRun != nil {
			o.OnRun(r)
		}
	}
	full := func(reason string) {
		start := time.Now()
		checks, err := w.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		report(RunReport{Full: true, Reason: reason, Checks: checks, Err: err, Start: start})
	}

	fullRuns := make(chan string, 1)
	requestFull := func(reason string) {
		select {
		case fullRuns <- reason:
		default: // one is already queued
		}
	}
	if o.RunAtStart {
		requestFull("start")
	}

	started := make(chan string, 64)
	go w.follow(ctx, o, started, requestFull)

	pending := map[string]time.Time{} // container ID → when to check it
	var next time.Time                // the next scheduled full run, jitter included
	for {
		if next.IsZero() {
			next = sched.Next(time.Now())
			if o.Jitter > 0 {
				next = next.Add(rand.N(o.Jitter))
			}
		}
		var soonest time.Time
		for _, at := range pending {
			if soonest.IsZero() || at.Before(soonest) {
				soonest = at
			}
		}
		wake := next
		if !soonest.IsZero() && soonest.Before(wake) {
			wake = soonest
		}
		timer := time.NewTimer(time.Until(wake))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case reason := <-fullRuns:
			timer.Stop()
			clear(pending) // a full run covers them
			full(reason)
		case id := <-started:
			timer.Stop()
			if _, ok := pending[id]; !ok {
				pending[id] = time.Now().Add(o.Debounce)
			}
		case <-timer.C:
			now := time.Now()
			if !now.Before(next) {
				next = time.Time{}
				clear(pending)
				full("schedule")
				continue
			}
			for id, at := range pending {
				if at.After(now) {
					continue
				}
				delete(pending, id)
				start := time.Now()
				check, watched, err := w.RunContainer(ctx, id)
				if errors.Is(err, core.ErrNotFound) || (!watched && err == nil) {
					continue // gone again, or not ours to watch
				}
				if ctx.Err() != nil {
					return nil
				}
				r := RunReport{Reason: "event", Err: err, Start: start}
				if watched {
					r.Checks = []core.Check{check}
				}
				report(r)
			}
		}
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
