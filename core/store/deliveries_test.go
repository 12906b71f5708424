package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidewatch/tidewatch/core"
)

// openUpdateOf records a run on host "local" where container name has
// candidate 1.26.0 and returns the open update RecordRun returned.
func openUpdateOf(t *testing.T, s *Store, name string) core.Update {
	t.Helper()
	c := check(name, "1.25.0", "1.26.0", core.KindMinor)
	c.Container.Labels = map[string]string{"tidewatch.trigger.include": "webhook"}
	us := record(t, s, "local", t0, c)
	if len(us) != 1 || us[0].ContainerName != name {
		t.Fatalf("RecordRun(%s) returned %v, want its update", name, us)
	}
	return us[0]
}

func enqueue(t *testing.T, s *Store, ds ...NewDelivery) []Delivery {
	t.Helper()
	out, err := s.Enqueue(context.Background(), ds)
	if err != nil {
		t.Fatalf("Enqueue(%d) error = %v", len(ds), err)
	}
	return out
}

func TestRecordRunReturnsWhatUpdateReads(t *testing.T) {
	s, _ := openStore(t)
	u := openUpdateOf(t, s, "web")
	want := core.Update{ID: u.ID, Host: "local", ContainerName: "web", ContainerID: "id-web", DisplayName: "web",
		Image: "index.docker.io/library/nginx", Current: "1.25.0", CurrentDigest: "sha256:1.25.0",
		Candidate: "1.26.0", CandidateDigest: "sha256:1.26.0", Kind: core.KindMinor, Status: core.StatusPending,
		Labels: map[string]string{"tidewatch.trigger.include": "webhook"}, FirstSeen: t0, LastSeen: t0}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("RecordRun's update (-want +got):\n%s", diff)
	}
	got, err := s.Update(context.Background(), u.ID)
	if err != nil {
		t.Fatalf("Update(%d) error = %v", u.ID, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Update(%d) (-want +got):\n%s", u.ID, diff)
	}
	if _, err := s.Update(context.Background(), 999); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Update(999) error = %v, want core.ErrNotFound", err)
	}
	// Found again by a later run: the same update, refreshed, its status kept.
	if err := s.SetUpdateStatus(context.Background(), u.ID, core.StatusNotified, t0); err != nil {
		t.Fatal(err)
	}
	c := check("web", "1.25.0", "1.26.0", core.KindMinor)
	c.Container.Labels = map[string]string{"tidewatch.trigger.include": "webhook"}
	again := record(t, s, "local", t1, c)
	want.Status, want.LastSeen = core.StatusNotified, t1
	if len(again) != 1 {
		t.Fatalf("RecordRun again returned %v", again)
	}
	if diff := cmp.Diff(want, again[0]); diff != "" {
		t.Errorf("RecordRun's update found again (-want +got):\n%s", diff)
	}
	// A run without update returns none.
	if got := record(t, s, "local", t1, check("web", "1.26.0", "", core.KindNone)); len(got) != 0 {
		t.Errorf("RecordRun without update returned %v", got)
	}
}

func TestRequestOpensTheCandidate(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	open := openUpdateOf(t, s, "web")
	if _, err := s.Request(ctx, "local", "nope", "1.30.0", core.KindMinor, "token:ci"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Request(unknown container) = %v, want core.ErrNotFound", err)
	}
	same, err := s.Request(ctx, "local", "web", "1.26.0", core.KindMinor, "token:ci")
	if err != nil || same.ID != open.ID {
		t.Errorf("Request(the open candidate) = %+v, %v; want the open update %d", same, err, open.ID)
	}
	u, err := s.Request(ctx, "local", "web", "1.24.0", core.KindMinor, "token:ci")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == open.ID || u.Candidate != "1.24.0" || u.Current != "1.25.0" || u.Status != core.StatusPending || u.Labels["tidewatch.trigger.include"] != "webhook" {
		t.Errorf("Request(1.24.0) = %+v", u)
	}
	if got := updates(t, s, ""); len(got) != 1 || got[0].ID != u.ID {
		t.Errorf("open updates after Request = %+v, want only %d", got, u.ID)
	}
	evs, err := s.History(ctx, HistoryFilter{Kinds: []string{EventRequested}})
	// Both requests are in the history, newest first, with who asked.
	if err != nil || len(evs) != 2 || evs[0].Principal != "token:ci" || evs[0].UpdateID != u.ID || evs[0].To != "1.24.0" ||
		evs[1].UpdateID != open.ID || evs[1].To != "1.26.0" {
		t.Errorf("history of the requests = %+v, %v", evs, err)
	}
}

func TestEnqueueOncePerCandidateOrPerRun(t *testing.T) {
	s, _ := openStore(t)
	u := openUpdateOf(t, s, "web")
	cand := u.CandidateRef()
	once := NewDelivery{UpdateID: u.ID, Trigger: "webhook.ops", Candidate: cand, Event: core.EventUpdateAvailable}
	perRun := func(run string) NewDelivery {
		d := once
		d.Trigger, d.Run = "email.me", run
		return d
	}
	tests := []struct {
		name string
		in   []NewDelivery
		want int
	}{
		{"first run", []NewDelivery{once, perRun("r1")}, 2},
		{"second run: once is not repeated, per run is", []NewDelivery{once, perRun("r2")}, 1},
		{"same run again", []NewDelivery{perRun("r2")}, 0},
		{"another event is another delivery", []NewDelivery{{UpdateID: u.ID, Trigger: "webhook.ops", Candidate: cand, Event: "update-applied"}}, 1},
		{"another candidate is another delivery", []NewDelivery{{UpdateID: u.ID, Trigger: "webhook.ops", Candidate: "1.27.0", Event: core.EventUpdateAvailable}}, 1},
	}
	for _, tc := range tests {
		got := enqueue(t, s, tc.in...)
		if len(got) != tc.want {
			t.Errorf("%s: Enqueue created %d deliveries, want %d: %+v", tc.name, len(got), tc.want, got)
		}
		for _, d := range got {
			if d.Status != DeliveryPending || d.Key == "" || (d.Run != "" && d.Key != DeliveryKey(d.UpdateID, d.Trigger, d.Candidate, d.Event, d.Run)) || d.ID == 0 {
				t.Errorf("%s: created %+v, want a pending delivery with its key", tc.name, d)
			}
		}
	}
	all, err := s.Deliveries(context.Background(), DeliveryFilter{UpdateID: u.ID})
	if err != nil || len(all) != 5 {
		t.Fatalf("Deliveries(update %d) = %d, %v; want 5", u.ID, len(all), err)
	}
	if _, err := s.Enqueue(context.Background(), []NewDelivery{{UpdateID: 999, Trigger: "x.y", Event: core.EventUpdateAvailable}}); err == nil {
		t.Errorf("Enqueue(delivery of unknown update) error = nil, want a foreign key error")
	}
}

func TestDeliveryKeyIsStableAndDistinct(t *testing.T) {
	k := DeliveryKey(1, "webhook.ops", "1.2.0", core.EventUpdateAvailable, "")
	if k != DeliveryKey(1, "webhook.ops", "1.2.0", core.EventUpdateAvailable, "") {
		t.Errorf("DeliveryKey is not stable")
	}
	for _, other := range []string{
		DeliveryKey(2, "webhook.ops", "1.2.0", core.EventUpdateAvailable, ""),
		DeliveryKey(1, "webhook.dev", "1.2.0", core.EventUpdateAvailable, ""),
		DeliveryKey(1, "webhook.ops", "1.2.1", core.EventUpdateAvailable, ""),
		DeliveryKey(1, "webhook.ops", "1.2.0", "update-applied", ""),
		DeliveryKey(1, "webhook.ops", "1.2.0", core.EventUpdateAvailable, "run-1"),
	} {
		if other == k {
			t.Errorf("DeliveryKey collides: %s", k)
		}
	}
	if len(k) != 35 {
		t.Errorf("DeliveryKey = %q, want tw- and 32 hex digits", k)
	}
}

func TestDueRunningAndOutstanding(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	u := openUpdateOf(t, s, "web")
	now := time.Now()
	ds := enqueue(t, s,
		NewDelivery{UpdateID: u.ID, Trigger: "a.one", Candidate: "1.26.0", Event: core.EventUpdateAvailable, NotBefore: now.Add(-time.Second)},
		NewDelivery{UpdateID: u.ID, Trigger: "a.one", Candidate: "1.26.0", Event: core.EventUpdateAvailable, Run: "later", NotBefore: now.Add(time.Hour)},
		NewDelivery{UpdateID: u.ID, Trigger: "b.two", Candidate: "1.26.0", Event: core.EventUpdateAvailable, NotBefore: now.Add(-2 * time.Second)},
	)
	ids := func(ds []Delivery) []int64 {
		var out []int64
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	due, err := s.Due(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{ds[2].ID, ds[0].ID}, ids(due)); diff != "" {
		t.Errorf("Due(now) (-want +got):\n%s", diff)
	}
	if due[0].Update.ContainerName != "web" || due[0].Update.Labels["tidewatch.trigger.include"] != "webhook" {
		t.Errorf("Due(now)[0].Update = %+v, want the update of web with its labels", due[0].Update)
	}
	// Claimed with a lease: not due while the lease runs.
	if err := s.MarkRunning(ctx, []int64{ds[0].ID}, now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	due, err = s.Due(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{ds[2].ID}, ids(due)); diff != "" {
		t.Errorf("Due(now) during the lease (-want +got):\n%s", diff)
	}
	// Once the lease is over it is abandoned, and due again.
	due, err = s.Due(ctx, now.Add(2*time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{ds[2].ID, ds[0].ID}, ids(due)); diff != "" {
		t.Errorf("Due(after the lease) (-want +got):\n%s", diff)
	}
	if due[1].Status != DeliveryRunning {
		t.Errorf("Due(after the lease)[1].Status = %s, want running", due[1].Status)
	}
	// A dispatcher that starts resumes it at once.
	if n, err := s.Resume(ctx, now, "a.one"); err != nil || n != 1 {
		t.Errorf("Resume(a.one) = %d, %v; want 1", n, err)
	}
	due, err = s.Due(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{ds[2].ID, ds[0].ID}, ids(due)); diff != "" {
		t.Errorf("Due(now) after Resume (-want +got):\n%s", diff)
	}
	due, err = s.Due(ctx, now, 10, "b.two")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{ds[2].ID}, ids(due)); diff != "" {
		t.Errorf("Due(now, b.two) (-want +got):\n%s", diff)
	}
	n, next, err := s.Outstanding(ctx, "a.one")
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || !next.Equal(now.UTC()) {
		t.Errorf("Outstanding(a.one) = %d, %v; want 2, %v", n, next, now.UTC())
	}
	if err := s.Release(ctx, []int64{ds[0].ID}, now); err != nil {
		t.Fatal(err)
	}
	got, err := s.Deliveries(ctx, DeliveryFilter{Trigger: "a.one", Status: DeliveryPending})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].ID != ds[0].ID || got[1].Attempts != 0 {
		t.Errorf("Deliveries(a.one, pending) after Release = %+v, want both, the released one without an attempt", got)
	}
}

func TestFinishWritesHistoryAndStatus(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	web := openUpdateOf(t, s, "web")
	db := openUpdateOf(t, s, "db")
	if err := s.SetUpdateStatus(ctx, db.ID, core.StatusDismissed, t0); err != nil {
		t.Fatal(err)
	}
	ds := enqueue(t, s,
		NewDelivery{UpdateID: web.ID, Trigger: "webhook.ops", Candidate: "1.26.0", Event: core.EventUpdateAvailable},
		NewDelivery{UpdateID: web.ID, Trigger: "email.me", Candidate: "1.26.0", Event: core.EventUpdateAvailable},
		NewDelivery{UpdateID: db.ID, Trigger: "webhook.ops", Candidate: "1.26.0", Event: core.EventUpdateAvailable},
	)
	at := t0.Add(time.Minute)
	next := at.Add(2 * time.Second)
	if err := s.MarkRetry(ctx, ds[1].ID, errors.New("503 Service Unavailable"), next); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, []Outcome{
		{ID: ds[0].ID, Status: DeliveryDelivered, Detail: "HTTP 200", At: at},
		{ID: ds[2].ID, Status: DeliveryDelivered, At: at},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed(ctx, ds[1].ID, errors.New("401 Unauthorized"), at); err != nil {
		t.Fatal(err)
	}
	// Finished deliveries take no more outcomes.
	if err := s.MarkDelivered(ctx, ds[1].ID, "", at); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("MarkDelivered(failed delivery) error = %v, want core.ErrNotFound", err)
	}

	got, err := s.Deliveries(ctx, DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Trigger           string
		Status            DeliveryStatus
		Attempts          int
		LastError, Detail string
	}
	var rows []row
	for _, d := range got {
		rows = append(rows, row{d.Trigger, d.Status, d.Attempts, d.LastError, d.Detail})
	}
	want := []row{
		{"webhook.ops", DeliveryDelivered, 1, "", ""},
		{"email.me", DeliveryFailed, 2, "401 Unauthorized", ""},
		{"webhook.ops", DeliveryDelivered, 1, "", "HTTP 200"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("Deliveries (-want +got):\n%s", diff)
	}

	// The update delivered is notified; the dismissed one stays dismissed.
	for id, want := range map[int64]core.UpdateStatus{web.ID: core.StatusNotified, db.ID: core.StatusDismissed} {
		u, err := s.Update(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if u.Status != want {
			t.Errorf("Update(%d).Status = %s, want %s", id, u.Status, want)
		}
	}

	evs := history(t, s, HistoryFilter{Kinds: []string{EventDelivered, EventDeliveryRetry, EventDeliveryFailed}})
	var lines []string
	for _, e := range evs {
		lines = append(lines, e.Kind+" "+e.Container+" "+e.From+"→"+e.To+" | "+e.Detail)
	}
	wantLines := []string{
		"delivery-failed web 1.25.0→1.26.0 | email.me: failed after 2 attempt(s): 401 Unauthorized",
		"delivered db 1.25.0→1.26.0 | webhook.ops: update-available delivered",
		"delivered web 1.25.0→1.26.0 | webhook.ops: update-available delivered: HTTP 200",
		"delivery-retry web 1.25.0→1.26.0 | email.me: attempt 1 failed: 503 Service Unavailable; next attempt at " + next.Format(time.RFC3339),
	}
	// The retry was recorded now, the others at t0+1m: order the retry last.
	if len(lines) == 4 && lines[0] != wantLines[0] {
		lines = append(lines[1:], lines[0])
	}
	if diff := cmp.Diff(wantLines, lines); diff != "" {
		t.Errorf("History (-want +got):\n%s", diff)
	}
	var trigger string
	if err := s.db.QueryRowContext(ctx, `SELECT trigger FROM events WHERE kind = 'delivery-failed'`).Scan(&trigger); err != nil || trigger != "email.me" {
		t.Errorf("events.trigger of the failure = %q, %v; want email.me", trigger, err)
	}
}

func TestSetUpdateStatus(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	u := openUpdateOf(t, s, "web")
	if err := s.SetUpdateStatus(ctx, u.ID, core.StatusApplying, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := updates(t, s, core.StatusApplying); len(got) != 1 || got[0].ID != u.ID {
		t.Errorf("Updates(applying) = %v, want update %d", got, u.ID)
	}
	if err := s.SetUpdateStatus(ctx, 999, core.StatusDismissed, t0); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("SetUpdateStatus(999) error = %v, want core.ErrNotFound", err)
	}
}

// TestOnceAcrossUpdateRows: a candidate found again in a new update row (the
// rollout briefly ran it, then rolled back) is not delivered again, and the
// new row keeps the rolled-back status.
func TestOnceAcrossUpdateRows(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	first := openUpdateOf(t, s, "web")
	d := NewDelivery{UpdateID: first.ID, Trigger: "compose.prod", Candidate: first.CandidateRef(), Event: core.EventUpdateAvailable}
	if got := enqueue(t, s, d); len(got) != 1 {
		t.Fatalf("first Enqueue created %d, want 1", len(got))
	}
	// The new container runs the candidate for a while: the update resolves.
	record(t, s, "local", t0.Add(time.Minute), check("web", "1.26.0", "", core.KindNone))
	if err := s.Finish(ctx, []Outcome{{ID: 1, Status: DeliveryFailed, Error: "health check failed", Event: "update-rolled-back"}}); err != nil {
		t.Fatal(err)
	}
	// Rolled back: the old version runs, and the candidate is found again.
	c := check("web", "1.25.0", "1.26.0", core.KindMinor)
	c.Container.Labels = map[string]string{"tidewatch.trigger.include": "webhook"}
	record(t, s, "local", t0.Add(2*time.Minute), c)
	again := openUpdateOf(t, s, "web")
	if again.ID == first.ID {
		t.Fatalf("expected a new update row after the resolution")
	}
	if again.Status != core.StatusRolledBack {
		t.Errorf("the candidate found again has status %s, want rolled-back", again.Status)
	}
	d.UpdateID = again.ID
	if got := enqueue(t, s, d); len(got) != 0 {
		t.Errorf("Enqueue for the candidate found again created %d deliveries, want 0 (once per candidate)", len(got))
	}
}

// TestApplyingReleasedWithoutRollout: a deploying trigger that ends without
// a rollout (refused, dry run, attempts spent) leaves the update pending,
// (notified, for a dry run that delivered its report), not applying for
// good; another trigger's delivery of the same update (a
// notification, Home Assistant's entity) ending meanwhile leaves it
// applying: the rollout still runs, and Apply is not offered again.
func TestApplyingReleasedWithoutRollout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trigger string
		deploys bool
		status  DeliveryStatus
		want    core.UpdateStatus
	}{
		{"deploying trigger refused", "compose.prod", true, DeliveryFailed, core.StatusPending},
		{"deploying trigger dry run", "compose.prod", true, DeliveryDelivered, core.StatusNotified},
		{"notification delivered", "mqtt.ha", false, DeliveryDelivered, core.StatusApplying},
		{"notification failed", "webhook.ops", false, DeliveryFailed, core.StatusApplying},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openStore(t)
			ctx := context.Background()
			u := openUpdateOf(t, s, "web")
			if err := s.SetUpdateStatus(ctx, u.ID, core.StatusApplying, t0); err != nil {
				t.Fatal(err)
			}
			ds := enqueue(t, s, NewDelivery{UpdateID: u.ID, Trigger: tc.trigger, Candidate: u.CandidateRef(), Event: core.EventUpdateAvailable, Run: "request-1"})
			o := Outcome{ID: ds[0].ID, Status: tc.status, Deploys: tc.deploys}
			if tc.status == DeliveryFailed {
				o.Error = "refused: a build: service"
			}
			if err := s.Finish(ctx, []Outcome{o}); err != nil {
				t.Fatal(err)
			}
			got, err := s.Update(ctx, u.ID)
			if err != nil || got.Status != tc.want {
				t.Errorf("status after %s = %s (%v), want %s", tc.name, got.Status, err, tc.want)
			}
		})
	}
}

func TestEnqueueApplyingAndFinishWithRollout(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	u := openUpdateOf(t, s, "web")
	nd := NewDelivery{UpdateID: u.ID, Trigger: "compose.prod", Candidate: u.CandidateRef(), Event: core.EventUpdateAvailable,
		Run: "request-1", Principal: "user:alice", MarkApplying: true}
	ds := enqueue(t, s, nd)
	if len(ds) != 1 || ds[0].Principal != "user:alice" {
		t.Fatalf("Enqueue = %+v", ds)
	}
	if got, _ := s.Update(ctx, u.ID); got.Status != core.StatusApplying {
		t.Errorf("status after enqueuing an apply = %s, want applying", got.Status)
	}
	// The same delivery again (a double click) creates nothing and changes nothing.
	if again := enqueue(t, s, nd); len(again) != 0 {
		t.Errorf("Enqueue of an existing key = %+v, want none", again)
	}
	r := &core.Rollout{Outcome: core.OutcomeApplied, Method: "compose cli", Target: "shop/web", From: "nginx:1.25.0", To: "nginx:1.26.0",
		Steps: []core.RolloutStep{{Name: "pull", At: t0, Duration: 2 * time.Second}}, Files: []core.FileChange{{Path: "/srv/compose.yml", Backup: "/srv/.compose.yml.1"}}}
	if err := s.Finish(ctx, []Outcome{{ID: ds[0].ID, Status: DeliveryDelivered, Detail: r.Summary(), Event: core.EventUpdateApplied, Rollout: r}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Delivery(ctx, ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got.Rollout); diff != "" || got.Principal != "user:alice" || got.Update.Status != core.StatusApplied {
		t.Errorf("delivery after Finish = %+v; rollout (-want +got):\n%s", got, diff)
	}
	evs, err := s.History(ctx, HistoryFilter{Kinds: []string{string(core.EventUpdateApplied)}})
	if err != nil || len(evs) != 1 || evs[0].Principal != "user:alice" || evs[0].Trigger != "compose.prod" {
		t.Errorf("history of the rollout = %+v, %v; want one update-applied by user:alice through compose.prod", evs, err)
	}
	if _, err := s.Delivery(ctx, 999); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Delivery(999) = %v, want core.ErrNotFound", err)
	}
}

// TestRolloutKeepsItsUpdate: while an update is being applied, a run that
// sees the container on the candidate (the rollout's new container, maybe
// broken) does not resolve it; the rollout's outcome lands on that update,
// and the run after a rollback finds the same update again, not a new one.
func TestRolloutKeepsItsUpdate(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	u := openUpdateOf(t, s, "web")
	ds := enqueue(t, s, NewDelivery{UpdateID: u.ID, Trigger: "compose.prod", Candidate: u.CandidateRef(), Event: core.EventUpdateAvailable,
		Run: "auto-1", MarkApplying: true})
	// Mid-rollout: the broken 1.26.0 runs; nothing newer.
	record(t, s, "local", t0.Add(time.Minute), check("web", "1.26.0", "", core.KindNone))
	if got, err := s.Update(ctx, u.ID); err != nil || got.Status != core.StatusApplying {
		t.Fatalf("update during its rollout = %+v, %v; want it open, applying", got, err)
	}
	if got := history(t, s, HistoryFilter{Kinds: []string{EventResolved}}); len(got) != 0 {
		t.Errorf("history during the rollout has %q, want no resolved", kinds(got))
	}
	r := &core.Rollout{Outcome: core.OutcomeRolledBack, Method: "compose engine", Target: "shop/web", FailedStep: "health", Reason: "unhealthy"}
	if err := s.Finish(ctx, []Outcome{{ID: ds[0].ID, Status: DeliveryFailed, Error: "rolled back", Event: core.EventUpdateRolledBack, Rollout: r}}); err != nil {
		t.Fatal(err)
	}
	// After the rollback 1.25.0 runs again, and 1.26.0 is still offered.
	again := record(t, s, "local", t0.Add(2*time.Minute), check("web", "1.25.0", "1.26.0", core.KindMinor))
	if len(again) != 1 || again[0].ID != u.ID || again[0].Status != core.StatusRolledBack {
		t.Errorf("the run after the rollback returned %+v, want update %d, rolled-back", again, u.ID)
	}
	all, err := s.Updates(ctx, "")
	if err != nil || len(all) != 1 || all[0].ID != u.ID {
		t.Errorf("Updates() = %+v, %v; want update %d only", all, err, u.ID)
	}
	want := []string{"detected web 1.25.0→1.26.0", "update-rolled-back web 1.25.0→1.26.0"}
	var got []string
	for _, k := range kinds(history(t, s, HistoryFilter{})) {
		if !strings.HasPrefix(k, "delivery") {
			got = append(got, k)
		}
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	// Once applied, the next run without update resolves it as before.
	if err := s.SetUpdateStatus(ctx, u.ID, core.StatusApplied, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	record(t, s, "local", t0.Add(4*time.Minute), check("web", "1.26.0", "", core.KindNone))
	if got := history(t, s, HistoryFilter{Kinds: []string{EventResolved}}); len(got) != 1 {
		t.Errorf("resolved events after the applied update's next run = %q, want one", kinds(got))
	}
}

// TestRolloutKeepsItsUpdateWhenRenamedAside: a run during an engine-mode
// rollout does not list the container by its ID under its name (it is
// renamed aside, or replaced); the update being applied stays open through
// MarkGone, and once the rollback brings the container back, the rollout's
// outcome and the next run find that update, not a new row.
func TestRolloutKeepsItsUpdateWhenRenamedAside(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	u := openUpdateOf(t, s, "web")
	other := openUpdateOf(t, s, "db")
	ds := enqueue(t, s, NewDelivery{UpdateID: u.ID, Trigger: "compose.prod", Candidate: u.CandidateRef(), Event: core.EventUpdateAvailable,
		Run: "auto-1", MarkApplying: true})
	// Mid-rollout: neither web nor db is listed.
	if err := s.MarkGone(ctx, "local", nil, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Update(ctx, u.ID); err != nil || got.Status != core.StatusApplying {
		t.Fatalf("update being applied after MarkGone = %+v, %v; want it open, applying", got, err)
	}
	if all, err := s.Updates(ctx, ""); err != nil || len(all) != 1 || all[0].ID != u.ID {
		t.Errorf("open updates after MarkGone = %+v, %v; want %d only (db's %d closed: it is not being applied)", all, err, u.ID, other.ID)
	}
	r := &core.Rollout{Outcome: core.OutcomeRolledBack, Method: "compose engine", Target: "shop/web", FailedStep: "health", Reason: "unhealthy"}
	if err := s.Finish(ctx, []Outcome{{ID: ds[0].ID, Status: DeliveryFailed, Error: "rolled back", Event: core.EventUpdateRolledBack, Rollout: r}}); err != nil {
		t.Fatal(err)
	}
	again := record(t, s, "local", t0.Add(2*time.Minute), check("web", "1.25.0", "1.26.0", core.KindMinor))
	if len(again) != 1 || again[0].ID != u.ID || again[0].Status != core.StatusRolledBack {
		t.Errorf("the run after the rollback returned %+v, want update %d, rolled-back", again, u.ID)
	}
}
