package repair

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// scripted is a deploying trigger that answers each Fire with the next of
// its outcomes ("" : a retryable error without a report), recording what
// it was fired with.
type scripted struct {
	mu       sync.Mutex
	outcomes []string
	fired    []sdk.Update
}

func (s *scripted) Describe(context.Context) sdk.Description {
	return sdk.Description{Type: "compose", Deploys: true}
}
func (s *scripted) Configure(context.Context, string, map[string]string) error { return nil }
func (s *scripted) Fire(_ context.Context, us []sdk.Update) []sdk.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fired = append(s.fired, us...)
	if len(s.outcomes) == 0 {
		return []sdk.Result{{Err: errors.New("no answer scripted")}}
	}
	o := s.outcomes[0]
	s.outcomes = s.outcomes[1:]
	switch o {
	case "":
		return []sdk.Result{{Err: errors.New("another rollout of the project is under way")}}
	case sdk.OutcomeRolledBack:
		return []sdk.Result{{Err: sdk.Permanent(errors.New("rolled back to 1.0.0")), Rollout: &sdk.Rollout{Outcome: o,
			Steps: []sdk.RolloutStep{{Name: "rollback", Note: "app runs again"}}}}}
	case sdk.OutcomeFailed:
		return []sdk.Result{{Err: sdk.Permanent(errors.New("the rollback failed too")), Rollout: &sdk.Rollout{Outcome: o}}}
	default:
		return []sdk.Result{{Err: sdk.Permanent(errors.New(o)), Rollout: &sdk.Rollout{Outcome: o}}}
	}
}

// notified records the events handed to the listening triggers.
type notified struct{ events []core.Event }

func (n *notified) NotifyEvent(_ context.Context, _ core.Update, e core.Event, _ string) error {
	n.events = append(n.events, e)
	return nil
}

// failedRolloutIn records an update of container app whose rollout through
// trigger compose.local failed with its rollback failed (as the
// dispatcher writes it), and returns the delivery.
func failedRolloutIn(t *testing.T, st *store.Store, at time.Time) store.Delivery {
	t.Helper()
	ctx := context.Background()
	ref, _ := core.ParseImageRef("registry.test/app:1.0.0")
	c := core.Check{Container: core.Container{ID: "id-app", Name: "app", DisplayName: "app", Image: "registry.test/app:1.0.0",
		ImageID: "sha256:img", State: "running", Created: at.Add(-time.Hour)}, Ref: ref, Current: "1.0.0", Candidate: "1.1.0", Kind: core.KindMinor}
	us, err := st.RecordRun(ctx, "local", []core.Check{c}, at)
	if err != nil || len(us) != 1 {
		t.Fatalf("RecordRun = %v, %v", us, err)
	}
	ds, err := st.Enqueue(ctx, []store.NewDelivery{{UpdateID: us[0].ID, Trigger: "compose.local", Candidate: us[0].CandidateRef(),
		Event: core.EventUpdateAvailable, MarkApplying: true}})
	if err != nil || len(ds) != 1 {
		t.Fatalf("Enqueue = %v, %v", ds, err)
	}
	if err := st.Finish(ctx, []store.Outcome{{ID: ds[0].ID, Status: store.DeliveryFailed, Error: "health failed, and the rollback failed too",
		At: at, Event: core.EventUpdateFailed, Deploys: true, Rollout: &core.Rollout{Outcome: core.OutcomeFailed, FailedStep: "health"}}}); err != nil {
		t.Fatal(err)
	}
	return ds[0]
}

// TestLoop: a failed rollout is tried at start-up, then an Interval later,
// then twice as long, until its trigger settles it; rolled back (or
// applied), the update takes that status, the history gets the event and
// the listeners hear it, once; a try that fails again records nothing; a
// trigger that says nothing is left ends the tries, telling no one.
func TestLoop(t *testing.T) {
	const interval = time.Minute
	for _, tc := range []struct {
		name     string
		outcomes []string
		tries    []time.Duration // when the trigger is fired, after start-up
		event    core.Event      // recorded and notified at the end; "" for none
		status   core.UpdateStatus
	}{
		{"rolled back at the third try", []string{sdk.OutcomeFailed, "", sdk.OutcomeRolledBack},
			[]time.Duration{0, interval, 3 * interval}, core.EventUpdateRolledBack, core.StatusRolledBack},
		{"only the clean-up was left", []string{sdk.OutcomeApplied}, []time.Duration{0}, core.EventUpdateApplied, core.StatusApplied},
		{"nothing left to settle", []string{sdk.OutcomeRefused}, []time.Duration{0}, "", core.StatusFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, filepath.Join(t.TempDir(), "store"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			t0 := time.Now()
			dl := failedRolloutIn(t, st, t0)
			trig := &scripted{outcomes: slices.Clone(tc.outcomes)}
			var n notified
			l := New(st, &n, []Target{{Name: "compose.local", Trigger: trig, Deadline: time.Minute}},
				Options{Interval: interval, MaxInterval: time.Hour}, slog.New(slog.DiscardHandler))

			var firedAt []time.Duration
			for step := time.Duration(0); step <= 8*interval; step += interval / 2 {
				now := t0.Add(step)
				if err := l.scan(ctx, now, step == 0); err != nil {
					t.Fatal(err)
				}
				before := len(trig.fired)
				l.tryDue(ctx, now)
				if len(trig.fired) > before {
					firedAt = append(firedAt, step)
				}
			}
			if !slices.Equal(firedAt, tc.tries) {
				t.Errorf("fired at %v after start-up, want %v", firedAt, tc.tries)
			}
			for _, u := range trig.fired {
				if u.Key != dl.Key || u.Event != sdk.EventUpdateFailed || u.ContainerName != "app" {
					t.Errorf("fired with key %q, event %q, container %q; want the failed delivery's key %q, update-failed, app", u.Key, u.Event, u.ContainerName, dl.Key)
				}
			}
			var want []core.Event
			if tc.event != "" {
				want = []core.Event{tc.event}
			}
			if !slices.Equal(n.events, want) {
				t.Errorf("the listeners heard %v, want %v", n.events, want)
			}
			hist, err := st.History(ctx, store.HistoryFilter{Kinds: []string{string(core.EventUpdateRolledBack), string(core.EventUpdateApplied), string(core.EventUpdateFailed)}})
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, e := range hist {
				kinds = append(kinds, e.Kind)
			}
			wantKinds := []string{string(core.EventUpdateFailed)}
			if tc.event != "" {
				wantKinds = append([]string{string(tc.event)}, wantKinds...) // newest first
			}
			if !slices.Equal(kinds, wantKinds) {
				t.Errorf("the history holds %v, want %v", kinds, wantKinds)
			}
			u, err := st.Update(ctx, dl.UpdateID)
			if err != nil {
				t.Fatal(err)
			}
			if u.Status != tc.status {
				t.Errorf("the update is %s, want %s", u.Status, tc.status)
			}
		})
	}
}

// TestLoopIgnoresOtherDeliveries: a delivery that was rolled back, one
// that failed with no report, a notification, and a git source's deploy
// (settled by the source's next deploy) are not tried.
func TestLoopIgnoresOtherDeliveries(t *testing.T) {
	for _, tc := range []struct {
		name string
		dl   store.Delivery
	}{
		{"rolled back", store.Delivery{Trigger: "compose.local", Event: core.EventUpdateAvailable, Rollout: &core.Rollout{Outcome: core.OutcomeRolledBack}}},
		{"no report", store.Delivery{Trigger: "compose.local", Event: core.EventUpdateAvailable}},
		{"a git source's deploy", store.Delivery{Trigger: "compose.local", Event: core.EventUpdateAvailable, Rollout: &core.Rollout{Outcome: core.OutcomeFailed},
			Declared: &core.Declared{Source: "prod", Project: "shop", Service: "web"}}},
		{"a notification", store.Delivery{Trigger: "compose.local", Event: core.EventUpdateFailed, Rollout: &core.Rollout{Outcome: core.OutcomeFailed}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if failedRollout(tc.dl) {
				t.Errorf("failedRollout(%s) = true, want false", tc.name)
			}
		})
	}
	if !failedRollout(store.Delivery{Event: core.EventUpdateAvailable, Rollout: &core.Rollout{Outcome: core.OutcomeFailed}}) {
		t.Error("failedRollout(a failed rollout) = false, want true")
	}
}
