package watch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/tidewatch/tidewatch/core"
)

// scheduleFunc is a cron.Schedule no expression writes: one whose next time
// is now, or in the past.
type scheduleFunc func(time.Time) time.Time

func (f scheduleFunc) Next(t time.Time) time.Time { return f(t) }

var _ cron.Schedule = scheduleFunc(nil)

// TestWatchRefusesScheduleThatNeverFires: February 31st has no next time
// (robfig/cron's Next returns the zero time); Watch returns ErrNeverFires at
// once instead of running full checks in a loop, and so does a schedule
// that stops having a next time while it runs.
func TestWatchRefusesScheduleThatNeverFires(t *testing.T) {
	calls := 0
	tests := []struct {
		name     string
		schedule string
		sched    cron.Schedule
		wantRuns int
	}{
		{name: "February 31st", schedule: "0 0 31 2 *"},
		{name: "April 31st", schedule: "30 4 31 4 *"},
		{name: "stops firing after the first run", schedule: "custom", wantRuns: 1, sched: scheduleFunc(func(t time.Time) time.Time {
			// Watch's start asks twice (the first time and the gap after
			// it), the loop once for the first run; then nothing is left.
			if calls++; calls <= 3 {
				return t.Add(time.Millisecond)
			}
			return time.Time{}
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eng := &fakeEngine{events: make(chan core.EngineEvent)}
			w := New(Options{Host: "local"}, eng, newFakeRegistry(), &recorder{}, discard())
			var mu sync.Mutex
			runs := 0
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- w.Watch(ctx, LoopOptions{Schedule: tc.schedule, schedule: tc.sched, OnRun: func(RunReport) {
					mu.Lock()
					runs++
					mu.Unlock()
				}})
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrNeverFires) {
					t.Errorf("Watch(%q) = %v, want ErrNeverFires", tc.schedule, err)
				}
			case <-time.After(5 * time.Second):
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("Watch(%q) still running after 5s (%d full checks), want ErrNeverFires at once", tc.schedule, runs)
			}
			mu.Lock()
			defer mu.Unlock()
			if runs != tc.wantRuns {
				t.Errorf("Watch(%q) ran %d full checks, want %d", tc.schedule, runs, tc.wantRuns)
			}
		})
	}
}

// TestWatchKeepsMinGapBetweenFullRuns: whatever asks for a full run (a
// schedule whose next time is now or already past, a reconnection right
// after the start run), it starts at least MinGap after the previous one ended.
func TestWatchKeepsMinGapBetweenFullRuns(t *testing.T) {
	const gap = 150 * time.Millisecond
	tests := []struct {
		name       string
		sched      cron.Schedule
		runAtStart bool
		reconnect  bool // break the event stream after the first run
		wantRuns   int
	}{
		{name: "next time is now", sched: scheduleFunc(func(t time.Time) time.Time { return t }), wantRuns: 4},
		{name: "next time is in the past", sched: scheduleFunc(func(t time.Time) time.Time { return t.Add(-time.Hour) }), wantRuns: 4},
		{name: "every second, start run first", sched: cron.Every(time.Second), runAtStart: true, wantRuns: 2},
		{name: "reconnection right after the start run", sched: scheduleFunc(func(t time.Time) time.Time { return t.Add(time.Hour) }), runAtStart: true, reconnect: true, wantRuns: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eng := &fakeEngine{events: make(chan core.EngineEvent), ctrs: []core.Container{ctr("a", "registry.example/a:1.0", nil)}}
			w := New(Options{Host: "local", WatchByDefault: true}, eng, newFakeRegistry(), &recorder{}, discard())
			type run struct {
				reason string
				start  time.Time
			}
			runs := make(chan run, 1024)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- w.Watch(ctx, LoopOptions{Schedule: "test", schedule: tc.sched, RunAtStart: tc.runAtStart, MinGap: gap, MaxBackoff: 10 * time.Millisecond,
					OnRun: func(r RunReport) { runs <- run{r.Reason, r.Start} }})
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Watch returned %v", err)
				}
			}()
			var got []run
			for len(got) < tc.wantRuns {
				select {
				case r := <-runs:
					got = append(got, r)
					if tc.reconnect && len(got) == 1 {
						waitFor(t, func() bool { return eng.subscriptions() >= 1 })
						eng.breakStream()
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%d full runs within 10s, want %d", len(got), tc.wantRuns)
				}
			}
			// Each run starts at least gap after the previous one ended, so
			// at least gap after it started (its end is read in OnRun, a
			// little after the loop reads it).
			for i := 1; i < len(got); i++ {
				if d := got[i].start.Sub(got[i-1].start); d < gap {
					t.Errorf("run %d (%s) started %v after run %d started, want at least %v", i, got[i].reason, d, i-1, gap)
				}
			}
			if tc.reconnect && got[1].reason != "reconnect" {
				t.Errorf("second run's reason = %q, want reconnect", got[1].reason)
			}
		})
	}
}

// TestWatchIgnoreEvents: with IgnoreEvents (WATCHEVENTS=false) the loop never
// subscribes to the engine's events, so a container that starts is left to
// the schedule; without it, the same start is checked within seconds.
func TestWatchIgnoreEvents(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		t.Run(map[bool]string{false: "events followed", true: "events ignored"}[ignore], func(t *testing.T) {
			events := make(chan core.EngineEvent) // unbuffered: a send completes only when the loop reads events
			eng := &fakeEngine{events: events, ctrs: []core.Container{ctr("a", "registry.example/a:1.0", nil)}}
			w := New(Options{Host: "local", WatchByDefault: true}, eng, newFakeRegistry(), &recorder{}, discard())
			reports := make(chan RunReport, 16)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- w.Watch(ctx, LoopOptions{Schedule: "0 0 1 1 *", RunAtStart: true, IgnoreEvents: ignore, Debounce: time.Millisecond,
					OnRun: func(r RunReport) { reports <- r }})
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Watch returned %v", err)
				}
			}()
			if r := next(t, reports); !r.Full || r.Reason != "start" {
				t.Fatalf("first run %+v, want the start run", r)
			}
			// Followed, the event is taken once the loop has subscribed;
			// ignored, nobody ever reads it: a bounded wait for what must not happen.
			wait := time.Second
			if !ignore {
				waitFor(t, func() bool { return eng.subscriptions() >= 1 })
				wait = 10 * time.Second
			}
			select {
			case events <- core.EngineEvent{ContainerID: "a", Action: "start"}:
				if ignore {
					t.Fatal("the loop read an engine event with IgnoreEvents set")
				}
				if r := next(t, reports); r.Full || r.Reason != "event" {
					t.Errorf("after a start event: report %+v, want the container's check", r)
				}
			case <-time.After(wait):
				if !ignore {
					t.Fatalf("the loop did not read the engine's event within %v", wait)
				}
			}
			if got := eng.subscriptions(); ignore && got != 0 {
				t.Errorf("subscribed to events %d times with IgnoreEvents, want 0", got)
			}
		})
	}
}
