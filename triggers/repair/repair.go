// Package repair finishes rollouts that failed and left their service
// down: a deploying trigger whose rollout failed and whose rollback failed
// too keeps the rollout's record (triggers/rollout), and the service stays
// as the failed rollback left it until someone acts. The loop here, run by
// `tidewatch serve`, asks that trigger again, at start-up and then every
// minute at first and less often after each failed try (doubling, at most
// an hour), to settle that rollout: fired with the failed delivery's key
// and the event update-failed, the trigger takes the project's lock
// without waiting (a rollout under way settles the record itself), and
// finishes the rollback through the path a resumed rollout takes.
//
// The trigger's answer is recorded as a delivery's would be: the service
// back on what ran before is an update-rolled-back event in the history, on
// the update (whose status becomes rolled-back), and handed to the
// triggers listening for it; only the clean-up left, update-applied. A
// rollback that fails again records nothing new: the delivery's
// update-failed already told the listeners, once; tidewatch's log says
// each try. An update whose trigger says no record of that rollout is left
// (settled by the project's next rollout, or by a person) is not asked
// about again.
package repair

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Store is what the loop reads and writes of the store.
type Store interface {
	Deliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error)
	SetUpdateStatus(ctx context.Context, id int64, status core.UpdateStatus, at time.Time) error
	AddEvent(ctx context.Context, e store.Event) error
}

// Notifier hands an event about an update to the triggers listening for it
// (triggers.Dispatcher).
type Notifier interface {
	NotifyEvent(ctx context.Context, u core.Update, event core.Event, detail string) error
}

// Target is a deploying trigger instance the loop may ask.
type Target struct {
	// Name is the instance, "compose.local".
	Name string
	// Trigger is the configured trigger.
	Trigger sdk.Trigger
	// Deadline bounds one try (the instance's DEADLINE).
	Deadline time.Duration
}

// Options tune the loop; zero values take the defaults.
type Options struct {
	// Interval is how often the store is read for failed rollouts, and the
	// first wait before trying one again after its rollback failed;
	// default 1m.
	Interval time.Duration
	// MaxInterval caps the wait between tries of one rollout, which doubles
	// after each failed try; default 1h.
	MaxInterval time.Duration
}

// Loop tries the rollbacks of failed rollouts again until they settle.
type Loop struct {
	st      Store
	notify  Notifier
	targets map[string]Target
	opts    Options
	log     *slog.Logger

	pending map[int64]*entry // by delivery ID
	done    map[int64]bool   // settled, or nothing to settle
}

// entry is a failed rollout the loop tries to settle.
type entry struct {
	dl    store.Delivery
	next  time.Time
	wait  time.Duration
	tries int
}

// New returns the loop over targets (deploying trigger instances); notify
// may be nil.
func New(st Store, notify Notifier, targets []Target, opts Options, log *slog.Logger) *Loop {
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.MaxInterval < opts.Interval {
		opts.MaxInterval = max(time.Hour, opts.Interval)
	}
	l := &Loop{st: st, notify: notify, targets: map[string]Target{}, opts: opts, log: log.With("component", "rollout-repair"),
		pending: map[int64]*entry{}, done: map[int64]bool{}}
	for _, t := range targets {
		l.targets[t.Name] = t
	}
	return l
}

// Run tries every failed rollout at once, then reads the store every
// Interval for new ones and tries each when due, until ctx ends.
func (l *Loop) Run(ctx context.Context) {
	if len(l.targets) == 0 {
		return
	}
	first := true
	for {
		if err := l.scan(ctx, time.Now(), first); err != nil && ctx.Err() == nil {
			l.log.Warn("reading failed rollouts", "error", err)
		}
		first = false
		l.tryDue(ctx, time.Now())
		wake := time.Now().Add(l.opts.Interval)
		for _, e := range l.pending {
			if e.next.Before(wake) {
				wake = e.next
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(wake)):
		}
	}
}

// scanLimit bounds how many of a trigger's newest failed deliveries a
// scan reads.
const scanLimit = 50

// scan adds the failed rollouts not known yet (each target's newest failed
// deliveries): due at once at start-up, the others an Interval after
// their delivery failed. (Not only open updates: a watch run may close an
// update as resolved while the failed rollout's new container runs.)
func (l *Loop) scan(ctx context.Context, now time.Time, startup bool) error {
	for name := range l.targets {
		ds, err := l.st.Deliveries(ctx, store.DeliveryFilter{Trigger: name, Status: store.DeliveryFailed, Limit: scanLimit})
		if err != nil {
			return err
		}
		for _, dl := range ds {
			if !failedRollout(dl) || l.done[dl.ID] || l.pending[dl.ID] != nil {
				continue
			}
			e := &entry{dl: dl, wait: l.opts.Interval, next: dl.UpdatedAt.Add(l.opts.Interval)}
			if startup || e.next.Before(now) {
				e.next = now
			}
			l.pending[dl.ID] = e
		}
	}
	return nil
}

// failedRollout reports whether dl is a rollout that failed with something
// changed: its report's outcome is failed (a rollback that failed too; or
// a pull that failed before anything was touched, which leaves no record:
// the trigger then says so). A git source's deploy (dl.Declared) is not:
// the settle path would treat it as an image update, without the commit's
// previous files; its record is settled by the project's next deploy or
// rollout, as any record left behind.
func failedRollout(dl store.Delivery) bool {
	return dl.Event == core.EventUpdateAvailable && dl.Declared == nil && dl.Rollout != nil && dl.Rollout.Outcome == core.OutcomeFailed
}

// tryDue tries each pending rollout that is due.
func (l *Loop) tryDue(ctx context.Context, now time.Time) {
	for id, e := range l.pending {
		if ctx.Err() != nil {
			return
		}
		if e.next.After(now) {
			continue
		}
		if l.try(ctx, e, now) {
			delete(l.pending, id)
			l.done[id] = true
			continue
		}
		e.next = now.Add(e.wait)
		e.wait = min(2*e.wait, l.opts.MaxInterval)
	}
}

// try asks the delivery's trigger to settle its rollout once, and records
// the outcome; it reports whether the rollout is settled (or nothing is
// left to settle).
func (l *Loop) try(ctx context.Context, e *entry, now time.Time) bool {
	t := l.targets[e.dl.Trigger]
	u := e.dl.Update
	log := l.log.With("trigger", t.Name, "container", u.ContainerName, "update", u.ID, "key", e.dl.Key)
	e.tries++
	deadline := t.Deadline
	if deadline <= 0 {
		deadline = core.DefaultDeployDeadline
	}
	fctx, cancel := context.WithTimeout(ctx, deadline)
	res := t.Trigger.Fire(fctx, []sdk.Update{request(e.dl)})
	cancel()
	if len(res) != 1 {
		log.Warn("trying a failed rollout's rollback again: the trigger answered no result", "results", len(res))
		return false
	}
	r := res[0]
	outcome := ""
	if r.Rollout != nil {
		outcome = r.Rollout.Outcome
	}
	switch outcome {
	case sdk.OutcomeRolledBack:
		l.record(ctx, log, e, core.EventUpdateRolledBack, core.StatusRolledBack, r)
		return true
	case sdk.OutcomeApplied, sdk.OutcomeAlreadyApplied:
		l.record(ctx, log, e, core.EventUpdateApplied, core.StatusApplied, r)
		return true
	case sdk.OutcomeRefused:
		log.Info("a failed rollout has nothing left to settle", "reason", errText(r.Err))
		return true
	}
	if r.Err != nil && sdk.IsPermanent(r.Err) && outcome == "" {
		log.Info("a failed rollout cannot be settled by its trigger", "error", r.Err)
		return true
	}
	log.Warn("a failed rollout's rollback failed again; the service is not running as it was: a person must look",
		"attempt", e.tries, "next_attempt", now.Add(e.wait).UTC().Format(time.RFC3339), "error", errText(r.Err))
	return false
}

// record writes a settled rollout's outcome: the update's status, the
// history event, and the event to the triggers listening.
func (l *Loop) record(ctx context.Context, log *slog.Logger, e *entry, event core.Event, status core.UpdateStatus, r sdk.Result) {
	u := e.dl.Update
	ctx = context.WithoutCancel(ctx)
	why := summary(r)
	detail := fmt.Sprintf("%s: the failed rollout settled, tried again after its rollback failed (try %d): %s", e.dl.Trigger, e.tries, why)
	log.Info("a failed rollout settled", "event", event, "attempt", e.tries)
	if err := l.st.SetUpdateStatus(ctx, u.ID, status, time.Time{}); err != nil && !errors.Is(err, core.ErrNotFound) {
		log.Error("recording the settled rollout's status", "error", err)
	}
	ev := store.Event{Host: u.Host, Container: u.ContainerName, Image: u.Image, Kind: string(event), From: u.CurrentRef(),
		To: u.CandidateRef(), UpdateKind: u.Kind, UpdateID: u.ID, Detail: detail, Trigger: e.dl.Trigger}
	if err := l.st.AddEvent(ctx, ev); err != nil {
		log.Error("recording the settled rollout in the history", "error", err)
	}
	if l.notify != nil {
		if err := l.notify.NotifyEvent(ctx, u, event, detail); err != nil {
			log.Error("notifying the settled rollout", "error", err)
		}
	}
}

// request is what the trigger is fired with: the failed delivery's update
// and key, and the event update-failed.
func request(dl store.Delivery) sdk.Update {
	u := dl.Update
	return sdk.Update{
		Key: dl.Key, Event: sdk.EventUpdateFailed, Host: u.Host, Container: u.Name(), ContainerName: u.ContainerName,
		ContainerID: u.ContainerID, Image: u.Image, Current: u.Current, CurrentDigest: u.CurrentDigest,
		Candidate: u.Candidate, CandidateDigest: u.CandidateDigest, Kind: string(u.Kind), Link: u.Link,
		DetectedAt: u.FirstSeen, Labels: u.Labels, Detail: "settle the failed rollout of delivery " + dl.Key,
	}
}

// summary says how the settled rollout ended.
func summary(r sdk.Result) string {
	var steps []string
	if r.Rollout != nil {
		for _, s := range r.Rollout.Steps {
			if s.Note != "" {
				steps = append(steps, s.Name+": "+s.Note)
			}
		}
	}
	if len(steps) == 0 {
		return errText(r.Err)
	}
	return strings.Join(steps, "; ")
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
