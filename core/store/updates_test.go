package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidewatch/tidewatch/core"
)

// listed returns "host/container" of each update ListUpdates(f) returns.
func listed(t *testing.T, s *Store, f UpdateFilter) []string {
	t.Helper()
	us, err := s.ListUpdates(context.Background(), f)
	if err != nil {
		t.Fatalf("ListUpdates(%+v) error = %v", f, err)
	}
	var out []string
	for _, u := range us {
		out = append(out, u.Host+"/"+u.ContainerName)
	}
	return out
}

func openUpdateID(t *testing.T, s *Store, name string) int64 {
	t.Helper()
	for _, u := range updates(t, s, "") {
		if u.ContainerName == name {
			return u.ID
		}
	}
	t.Fatalf("no open update for %s", name)
	return 0
}

func TestSnoozeHidesUntilItEnds(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	record(t, s, "local", t0, check("api", "1.0.0", "1.1.0", core.KindMinor), check("web", "1.25.0", "1.26.0", core.KindMinor))
	web := openUpdateID(t, s, "web")
	until := t0.Add(24 * time.Hour)
	if err := s.Snooze(ctx, web, until); err != nil {
		t.Fatalf("Snooze(%d) error = %v", web, err)
	}
	before, after := until.Add(-time.Second), until.Add(time.Second)
	if diff := cmp.Diff([]string{"local/api"}, listed(t, s, UpdateFilter{Now: before})); diff != "" {
		t.Errorf("ListUpdates(before the snooze ends) mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"local/api", "local/web"}, listed(t, s, UpdateFilter{Now: before, Snoozed: true})); diff != "" {
		t.Errorf("ListUpdates(Snoozed) mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"local/api", "local/web"}, listed(t, s, UpdateFilter{Now: after})); diff != "" {
		t.Errorf("ListUpdates(after the snooze ends) mismatch (-want +got):\n%s", diff)
	}

	// The snooze survives a restart, and a run that sees the same candidate.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatalf("Open(again) error = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	record(t, s, "local", t0.Add(time.Hour), check("api", "1.0.0", "1.1.0", core.KindMinor), check("web", "1.25.0", "1.26.0", core.KindMinor))
	if diff := cmp.Diff([]string{"local/api"}, listed(t, s, UpdateFilter{Now: before})); diff != "" {
		t.Errorf("ListUpdates(after restart, before the end) mismatch (-want +got):\n%s", diff)
	}
	us, err := s.ListUpdates(ctx, UpdateFilter{Now: before, Snoozed: true, Host: "local"})
	if err != nil || len(us) != 2 || !us[1].SnoozedUntil.Equal(until) || !us[1].Snoozed(before) || us[1].Snoozed(after) {
		t.Errorf("ListUpdates(Snoozed) = %+v, %v; want web snoozed until %s", us, err, until)
	}

	// A newer candidate is a new update, not snoozed.
	record(t, s, "local", t0.Add(2*time.Hour), check("web", "1.25.0", "1.27.0", core.KindMinor))
	if diff := cmp.Diff([]string{"local/api", "local/web"}, listed(t, s, UpdateFilter{Now: before})); diff != "" {
		t.Errorf("ListUpdates(after a newer candidate) mismatch (-want +got):\n%s", diff)
	}
	// The snooze is in the history (at the time it was asked, now).
	if got := history(t, s, HistoryFilter{Container: "web", Kinds: []string{EventSnoozed}}); len(got) != 1 ||
		got[0].Detail != "snoozed until "+until.Format(time.RFC3339) || got[0].To != "1.26.0" {
		t.Errorf("snoozed events of web = %+v, want one, until %s, of 1.26.0", got, until)
	}
}

func TestListUpdatesStatuses(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	record(t, s, "a", t0, check("api", "1.0.0", "1.1.0", core.KindMinor))
	record(t, s, "b", t0, check("web", "1.25.0", "1.26.0", core.KindMinor), check("db", "1.0.0", "2.0.0", core.KindMajor))
	if err := s.SetUpdateStatus(ctx, openUpdateID(t, s, "db"), core.StatusApplied, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUpdateStatus(ctx, openUpdateID(t, s, "web"), core.StatusNotified, t0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    UpdateFilter
		want []string
	}{
		{"default", UpdateFilter{}, []string{"a/api", "b/web"}},
		{"host", UpdateFilter{Host: "b"}, []string{"b/web"}},
		{"applied", UpdateFilter{Statuses: []core.UpdateStatus{core.StatusApplied}}, []string{"b/db"}},
		{"several", UpdateFilter{Statuses: []core.UpdateStatus{core.StatusApplied, core.StatusPending}}, []string{"a/api", "b/db"}},
		{"none", UpdateFilter{Statuses: []core.UpdateStatus{core.StatusDismissed}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, listed(t, s, tc.f)); diff != "" {
				t.Errorf("ListUpdates(%+v) mismatch (-want +got):\n%s", tc.f, diff)
			}
		})
	}
}

func TestDismiss(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	record(t, s, "local", t0, check("web", "1.25.0", "1.26.0", core.KindMinor))
	id := openUpdateID(t, s, "web")
	if err := s.Dismiss(ctx, id, t0.Add(time.Minute)); err != nil {
		t.Fatalf("Dismiss(%d) error = %v", id, err)
	}
	if got := listed(t, s, UpdateFilter{}); len(got) != 0 {
		t.Errorf("ListUpdates() after Dismiss = %v, want none", got)
	}
	u, err := s.Update(ctx, id)
	if err != nil || u.Status != core.StatusDismissed {
		t.Errorf("Update(%d) = %v, %v; want status dismissed", id, u.Status, err)
	}
	// The same candidate stays dismissed; a newer one is offered.
	record(t, s, "local", t0.Add(time.Hour), check("web", "1.25.0", "1.26.0", core.KindMinor))
	if got := listed(t, s, UpdateFilter{}); len(got) != 0 {
		t.Errorf("ListUpdates() after the same candidate = %v, want none", got)
	}
	record(t, s, "local", t0.Add(2*time.Hour), check("web", "1.25.0", "1.27.0", core.KindMinor))
	if diff := cmp.Diff([]string{"local/web"}, listed(t, s, UpdateFilter{})); diff != "" {
		t.Errorf("ListUpdates() after a newer candidate mismatch (-want +got):\n%s", diff)
	}
	ev := history(t, s, HistoryFilter{Kinds: []string{EventDismissed}})
	want := []Event{{At: t0.Add(time.Minute), Host: "local", Container: "web", Image: "index.docker.io/library/nginx", Kind: EventDismissed,
		From: "1.25.0", To: "1.26.0", UpdateKind: core.KindMinor, Detail: "dismissed"}}
	if diff := cmp.Diff(want, ev, ignoreEventID); diff != "" {
		t.Errorf("dismissed events mismatch (-want +got):\n%s", diff)
	}
	// The closed (superseded) update can be neither dismissed nor snoozed.
	if err := s.Dismiss(ctx, id, time.Time{}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Dismiss(closed update) error = %v, want ErrNotFound", err)
	}
	if err := s.Snooze(ctx, 9999, t0); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Snooze(unknown update) error = %v, want ErrNotFound", err)
	}
}

func TestCountHistory(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	for i := range 5 {
		record(t, s, "local", t0.Add(time.Duration(i)*time.Hour), check("web", "1.25.0", "1.2"+string(rune('6'+i))+".0", core.KindMinor))
	}
	for _, f := range []HistoryFilter{{}, {Kinds: []string{EventSuperseded}}, {Since: t0.Add(2 * time.Hour)}, {Container: "db"}, {Limit: 2, Offset: 1}} {
		all := f
		all.Limit, all.Offset = 0, 0
		want := len(history(t, s, all))
		got, err := s.CountHistory(ctx, f)
		if err != nil || got != want {
			t.Errorf("CountHistory(%+v) = %d, %v; want %d", f, got, err, want)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping() error = %v", err)
	}
}
