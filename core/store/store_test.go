package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tidewatch/tidewatch/core"
)

var (
	t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	t1 = t0.Add(time.Hour)
)

// openStore opens a store in a fresh folder and closes it when the test ends.
func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("Open(%s) error = %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() error = %v", err)
		}
	})
	return s, dir
}

// check builds a check of the nginx container name running current, with
// candidate offered when kind is not KindNone.
func check(name, current, candidate string, kind core.UpdateKind) core.Check {
	ref, err := core.ParseImageRef("nginx:" + current)
	if err != nil {
		panic(err)
	}
	return core.Check{
		Container: core.Container{
			ID: "id-" + name, Name: name, DisplayName: name, Image: "nginx:" + current, ImageID: "sha256:img",
			Labels: map[string]string{"tidewatch.watch": "true"}, State: "running",
			RepoDigests: []string{"sha256:" + current}, Created: t0.Add(-time.Hour),
		},
		Ref: ref, Current: current, CurrentDigest: "sha256:" + current,
		Candidate: candidate, CandidateDigest: digestOf(candidate), Kind: kind,
	}
}

func digestOf(tag string) string {
	if tag == "" {
		return ""
	}
	return "sha256:" + tag
}

func record(t *testing.T, s *Store, host string, at time.Time, checks ...core.Check) []core.Update {
	t.Helper()
	us, err := s.RecordRun(context.Background(), host, checks, at)
	if err != nil {
		t.Fatalf("RecordRun(%s, %d checks) error = %v", host, len(checks), err)
	}
	return us
}

func updates(t *testing.T, s *Store, status core.UpdateStatus) []core.Update {
	t.Helper()
	us, err := s.Updates(context.Background(), status)
	if err != nil {
		t.Fatalf("Updates(%q) error = %v", status, err)
	}
	return us
}

func history(t *testing.T, s *Store, f HistoryFilter) []Event {
	t.Helper()
	es, err := s.History(context.Background(), f)
	if err != nil {
		t.Fatalf("History(%+v) error = %v", f, err)
	}
	return es
}

// kinds lists "kind container from→to" of events, for compact comparisons.
func kinds(es []Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s %s %s→%s", e.Kind, e.Container, e.From, e.To))
	}
	return out
}

var ignoreEventID = cmpopts.IgnoreFields(Event{}, "ID", "UpdateID") // update IDs: TestRecordRunReturnsWhatUpdateReads

func TestOpenCreatesFolderAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "b")
	for i := range 3 {
		s, err := Open(ctx, dir)
		if err != nil {
			t.Fatalf("Open #%d error = %v", i+1, err)
		}
		var n, version int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &version); err != nil {
			t.Fatal(err)
		}
		ms, err := loadMigrations()
		if err != nil {
			t.Fatal(err)
		}
		if want := len(ms); n != want || version != ms[want-1].version {
			t.Errorf("Open #%d: schema_migrations has %d rows up to version %d, want %d up to %d", i+1, n, version, want, ms[want-1].version)
		}
		var mode string
		if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" {
			t.Errorf("journal_mode = %q, want wal", mode)
		}
		var fk int
		if err := s.db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if fk != 1 {
			t.Errorf("foreign_keys = %d, want 1", fk)
		}
		// Migrating an up-to-date database changes nothing.
		if err := migrate(ctx, s.db); err != nil {
			t.Errorf("migrate(up-to-date database) error = %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o750 {
		t.Errorf("store folder mode = %o, want 750", got)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	s, dir := openStore(t)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(ctx, dir); err == nil {
		s2.Close()
		t.Fatalf("Open(database at version 999) error = nil, want an error")
	}
}

func TestRecordRunRoundTrip(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	web := check("web", "1.25.0", "1.26.0", core.KindMinor)
	web.Link = "https://nginx.org/en/CHANGES-1.26"
	web.CheckedAt = t0.Add(-time.Second)
	db := check("db", "1.25.0", "", core.KindNone)
	db.Note = "watched by digest"
	broken := check("broken", "1.25.0", "", core.KindNone)
	broken.Err = errors.New("listing tags: unauthorized")
	record(t, s, "local", t0, web, db, broken)

	gotC, err := s.Containers(ctx, "")
	if err != nil {
		t.Fatalf("Containers() error = %v", err)
	}
	rec := func(c core.Check, checked time.Time, lastErr string) ContainerRecord {
		ct := c.Container
		ct.Host = "local"
		return ContainerRecord{Container: ct, Repo: "index.docker.io/library/nginx", Current: c.Current, CurrentDigest: c.CurrentDigest,
			Note: c.Note, FirstSeen: t0, LastChecked: checked, LastError: lastErr}
	}
	wantC := []ContainerRecord{
		rec(broken, t0, "listing tags: unauthorized"),
		rec(db, t0, ""),
		rec(web, t0.Add(-time.Second), ""),
	}
	if diff := cmp.Diff(wantC, gotC); diff != "" {
		t.Errorf("Containers() mismatch (-want +got):\n%s", diff)
	}

	wantU := []core.Update{{
		Host: "local", ContainerName: "web", ContainerID: "id-web", DisplayName: "web", Labels: web.Container.Labels,
		Image:   "index.docker.io/library/nginx",
		Current: "1.25.0", CurrentDigest: "sha256:1.25.0", Candidate: "1.26.0", CandidateDigest: "sha256:1.26.0",
		Kind: core.KindMinor, Link: web.Link, Status: core.StatusPending, FirstSeen: t0, LastSeen: t0,
	}}
	if diff := cmp.Diff(wantU, updates(t, s, ""), cmpopts.IgnoreFields(core.Update{}, "ID")); diff != "" {
		t.Errorf("Updates(\"\") mismatch (-want +got):\n%s", diff)
	}
	if got := updates(t, s, core.StatusPending); len(got) != 1 {
		t.Errorf("Updates(pending) = %d updates, want 1", len(got))
	}
	if got := updates(t, s, core.StatusNotified); len(got) != 0 {
		t.Errorf("Updates(notified) = %v, want none", got)
	}

	wantE := []Event{
		{At: t0, Host: "local", Container: "broken", Image: "index.docker.io/library/nginx", Kind: EventError, Detail: "listing tags: unauthorized"},
		{At: t0, Host: "local", Container: "web", Image: "index.docker.io/library/nginx", Kind: EventDetected, From: "1.25.0", To: "1.26.0", UpdateKind: core.KindMinor},
	}
	if diff := cmp.Diff(wantE, history(t, s, HistoryFilter{}), ignoreEventID); diff != "" {
		t.Errorf("History() mismatch (-want +got):\n%s", diff)
	}
}

func TestRestartKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	record(t, s, "local", t0, check("web", "1.25.0", "1.26.0", core.KindMinor))
	wantU, wantE := updates(t, s, ""), history(t, s, HistoryFilter{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatalf("Open(again) error = %v", err)
	}
	defer s.Close()
	if diff := cmp.Diff(wantU, updates(t, s, "")); diff != "" || len(wantU) != 1 {
		t.Errorf("Updates() after restart mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantE, history(t, s, HistoryFilter{})); diff != "" || len(wantE) != 1 {
		t.Errorf("History() after restart mismatch (-want +got):\n%s", diff)
	}
	// The same candidate after a restart is still not new.
	record(t, s, "local", t0.Add(time.Hour), check("web", "1.25.0", "1.26.0", core.KindMinor))
	if got := history(t, s, HistoryFilter{}); len(got) != 1 {
		t.Errorf("History() after restart and same candidate = %v, want 1 event", kinds(got))
	}
}

func TestSameCandidateTwice(t *testing.T) {
	s, _ := openStore(t)
	t1 := t0.Add(time.Hour)
	record(t, s, "local", t0, check("web", "1.25.0", "1.26.0", core.KindMinor))
	first := updates(t, s, "")
	// The second run did not read the digest: still the same candidate.
	c := check("web", "1.25.0", "1.26.0", core.KindMinor)
	c.CandidateDigest = ""
	c.Link = "https://example.com/notes"
	record(t, s, "local", t1, c)
	got := updates(t, s, "")
	if len(got) != 1 || len(first) != 1 {
		t.Fatalf("Updates() = %d then %d updates, want 1 and 1", len(first), len(got))
	}
	want := first[0]
	want.LastSeen, want.Link = t1, c.Link
	if diff := cmp.Diff(want, got[0]); diff != "" {
		t.Errorf("Updates()[0] after the same candidate again mismatch (-want +got):\n%s", diff)
	}
	if got := kinds(history(t, s, HistoryFilter{})); !cmp.Equal(got, []string{"detected web 1.25.0→1.26.0"}) {
		t.Errorf("History() = %q, want one detected event", got)
	}
}

func TestSameCandidateKeepsStatus(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	record(t, s, "local", t0, check("web", "1.25.0", "1.26.0", core.KindMinor))
	if _, err := s.db.ExecContext(ctx, `UPDATE updates SET status = ?`, string(core.StatusDismissed)); err != nil {
		t.Fatal(err)
	}
	record(t, s, "local", t0.Add(time.Hour), check("web", "1.25.0", "1.26.0", core.KindMinor))
	if got := updates(t, s, core.StatusDismissed); len(got) != 1 {
		t.Errorf("Updates(dismissed) after the same candidate = %v, want the dismissed update", got)
	}
	record(t, s, "local", t0.Add(2*time.Hour), check("web", "1.25.0", "1.27.0", core.KindMinor))
	got := updates(t, s, "")
	if len(got) != 1 || got[0].Status != core.StatusPending || got[0].Candidate != "1.27.0" {
		t.Errorf("Updates() after a new candidate = %+v, want one pending 1.27.0", got)
	}
}

func TestNewerCandidateSupersedes(t *testing.T) {
	s, _ := openStore(t)
	t1 := t0.Add(time.Hour)
	record(t, s, "local", t0, check("web", "1.25.0", "1.26.0", core.KindMinor))
	old := updates(t, s, "")
	record(t, s, "local", t1, check("web", "1.25.0", "1.27.0", core.KindMinor))
	got := updates(t, s, "")
	if len(got) != 1 {
		t.Fatalf("Updates() = %d updates, want 1", len(got))
	}
	if got[0].Candidate != "1.27.0" || got[0].FirstSeen != t1 || got[0].ID == old[0].ID {
		t.Errorf("Updates()[0] = %+v, want a new update to 1.27.0 first seen %v", got[0], t1)
	}
	wantE := []Event{
		{At: t1, Host: "local", Container: "web", Image: "index.docker.io/library/nginx", Kind: EventDetected, From: "1.25.0", To: "1.27.0", UpdateKind: core.KindMinor},
		{At: t1, Host: "local", Container: "web", Image: "index.docker.io/library/nginx", Kind: EventSuperseded, From: "1.25.0", To: "1.26.0", UpdateKind: core.KindMinor, Detail: "superseded by 1.27.0"},
		{At: t0, Host: "local", Container: "web", Image: "index.docker.io/library/nginx", Kind: EventDetected, From: "1.25.0", To: "1.26.0", UpdateKind: core.KindMinor},
	}
	if diff := cmp.Diff(wantE, history(t, s, HistoryFilter{}), ignoreEventID); diff != "" {
		t.Errorf("History() mismatch (-want +got):\n%s", diff)
	}
}

func TestDigestCandidate(t *testing.T) {
	s, _ := openStore(t)
	c := check("web", "1.25", "1.25", core.KindDigest)
	c.CandidateDigest = "sha256:new"
	record(t, s, "local", t0, c)
	c.CandidateDigest = "sha256:newer"
	record(t, s, "local", t0.Add(time.Hour), c)
	want := []string{
		"detected web 1.25@sha256:1.25→1.25@sha256:newer",
		"superseded web 1.25@sha256:1.25→1.25@sha256:new",
		"detected web 1.25@sha256:1.25→1.25@sha256:new",
	}
	if diff := cmp.Diff(want, kinds(history(t, s, HistoryFilter{}))); diff != "" {
		t.Errorf("History() of digest updates mismatch (-want +got):\n%s", diff)
	}
}

func TestNoUpdateResolves(t *testing.T) {
	s, _ := openStore(t)
	t1 := t0.Add(time.Hour)
	record(t, s, "local", t0, check("web", "1.25.0", "1.26.0", core.KindMinor))
	// Updated by hand: now runs 1.26.0, nothing newer.
	record(t, s, "local", t1, check("web", "1.26.0", "", core.KindNone))
	if got := updates(t, s, ""); len(got) != 0 {
		t.Errorf("Updates() after resolution = %+v, want none", got)
	}
	got := history(t, s, HistoryFilter{Kinds: []string{EventResolved}})
	want := []Event{{At: t1, Host: "local", Container: "web", Image: "index.docker.io/library/nginx", Kind: EventResolved,
		From: "1.25.0", To: "1.26.0", UpdateKind: core.KindMinor, Detail: "no update found; running 1.26.0"}}
	if diff := cmp.Diff(want, got, ignoreEventID); diff != "" {
		t.Errorf("History(resolved) mismatch (-want +got):\n%s", diff)
	}
	// A further run without update records nothing more.
	record(t, s, "local", t1.Add(time.Hour), check("web", "1.26.0", "", core.KindNone))
	if got := history(t, s, HistoryFilter{}); len(got) != 2 {
		t.Errorf("History() = %q, want detected and resolved only", kinds(got))
	}
	cs, err := s.Containers(context.Background(), "local")
	if err != nil || len(cs) != 1 || cs[0].Current != "1.26.0" {
		t.Errorf("Containers(local) = %+v, %v; want web running 1.26.0", cs, err)
	}
}

func TestErrorsRecorded(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	record(t, s, "local", t0, check("web", "1.25.0", "1.26.0", core.KindMinor))
	failing := func(msg string) core.Check {
		c := check("web", "1.25.0", "", core.KindNone)
		c.Current, c.CurrentDigest, c.Ref = "", "", core.ImageRef{}
		c.Err = errors.New(msg)
		return c
	}
	record(t, s, "local", t0.Add(1*time.Hour), failing("registry: 503"))
	record(t, s, "local", t0.Add(2*time.Hour), failing("registry: 503"))
	record(t, s, "local", t0.Add(3*time.Hour), failing("registry: 429"))

	if got := updates(t, s, core.StatusPending); len(got) != 1 || got[0].Candidate != "1.26.0" {
		t.Errorf("Updates(pending) after errors = %+v, want the 1.26.0 update kept", got)
	}
	cs, err := s.Containers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].LastError != "registry: 429" || cs[0].Current != "1.25.0" || cs[0].CurrentDigest != "sha256:1.25.0" || cs[0].Repo == "" {
		t.Errorf("Containers() after errors = %+v, want last error 429 and the known image details kept", cs)
	}
	wantDetails := []string{"registry: 429", "registry: 503"}
	var gotDetails []string
	for _, e := range history(t, s, HistoryFilter{Kinds: []string{EventError}}) {
		gotDetails = append(gotDetails, e.Detail)
	}
	if diff := cmp.Diff(wantDetails, gotDetails); diff != "" {
		t.Errorf("error events mismatch (-want +got):\n%s", diff)
	}

	record(t, s, "local", t0.Add(4*time.Hour), check("web", "1.25.0", "1.26.0", core.KindMinor))
	cs, err = s.Containers(ctx, "")
	if err != nil || len(cs) != 1 || cs[0].LastError != "" {
		t.Errorf("Containers() after a good check = %+v, %v; want the error cleared", cs, err)
	}
}

func TestMarkGone(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	t1 := t0.Add(time.Hour)
	record(t, s, "local", t0, check("web", "1.25.0", "1.26.0", core.KindMinor), check("db", "1.25.0", "", core.KindNone))
	record(t, s, "remote", t0, check("web", "1.25.0", "1.26.0", core.KindMinor))
	if err := s.MarkGone(ctx, "local", []string{"id-db"}, t1); err != nil {
		t.Fatalf("MarkGone() error = %v", err)
	}
	cs, err := s.Containers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Container.Host+"/"+c.Container.Name)
	}
	if diff := cmp.Diff([]string{"local/db", "remote/web"}, names); diff != "" {
		t.Errorf("Containers() after MarkGone mismatch (-want +got):\n%s", diff)
	}
	us := updates(t, s, "")
	if len(us) != 1 || us[0].Host != "remote" {
		t.Errorf("Updates() after MarkGone = %+v, want only remote/web", us)
	}
	gone := history(t, s, HistoryFilter{Kinds: []string{EventGone}})
	want := []Event{{At: t1, Host: "local", Container: "web", Image: "index.docker.io/library/nginx", Kind: EventGone}}
	if diff := cmp.Diff(want, gone, ignoreEventID); diff != "" {
		t.Errorf("History(gone) mismatch (-want +got):\n%s", diff)
	}
	// Marking again changes nothing; seeing the container again brings it back.
	if err := s.MarkGone(ctx, "local", []string{"id-db"}, t1.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := history(t, s, HistoryFilter{Kinds: []string{EventGone}}); len(got) != 1 {
		t.Errorf("History(gone) after a second MarkGone = %q, want 1 event", kinds(got))
	}
	record(t, s, "local", t1.Add(2*time.Hour), check("web", "1.25.0", "1.26.0", core.KindMinor))
	if cs, err := s.Containers(ctx, "local"); err != nil || len(cs) != 2 {
		t.Errorf("Containers(local) after the container came back = %d, %v; want 2", len(cs), err)
	}
	if got := updates(t, s, ""); len(got) != 2 {
		t.Errorf("Updates() after the container came back = %d, want 2", len(got))
	}
}

func TestHistoryFilter(t *testing.T) {
	s, _ := openStore(t)
	for i := range 5 {
		at := t0.Add(time.Duration(i) * time.Hour)
		record(t, s, "local", at, check("web", "1.25.0", fmt.Sprintf("1.%d.0", 26+i), core.KindMinor))
	}
	record(t, s, "remote", t0, check("db", "1.0.0", "2.0.0", core.KindMajor))
	// local/web: detected ×5, superseded ×4; remote/db: detected ×1. 10 events.
	tests := []struct {
		name string
		f    HistoryFilter
		want []string
	}{
		{"all newest first", HistoryFilter{Limit: 3}, []string{
			"detected web 1.25.0→1.30.0", "superseded web 1.25.0→1.29.0", "detected web 1.25.0→1.29.0"}},
		// Events at the same time come newest-recorded first.
		{"offset", HistoryFilter{Limit: 2, Offset: 8}, []string{"detected db 1.0.0→2.0.0", "detected web 1.25.0→1.26.0"}},
		{"offset without limit", HistoryFilter{Offset: 9}, []string{"detected web 1.25.0→1.26.0"}},
		{"by host", HistoryFilter{Host: "remote"}, []string{"detected db 1.0.0→2.0.0"}},
		{"by container", HistoryFilter{Container: "db"}, []string{"detected db 1.0.0→2.0.0"}},
		{"by host and container", HistoryFilter{Host: "remote", Container: "web"}, nil},
		{"by kind", HistoryFilter{Kinds: []string{EventSuperseded}, Limit: 10}, []string{
			"superseded web 1.25.0→1.29.0", "superseded web 1.25.0→1.28.0", "superseded web 1.25.0→1.27.0", "superseded web 1.25.0→1.26.0"}},
		{"time range", HistoryFilter{Host: "local", Since: t0.Add(time.Hour), Until: t0.Add(2 * time.Hour)}, []string{
			"detected web 1.25.0→1.27.0", "superseded web 1.25.0→1.26.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, kinds(history(t, s, tc.f))); diff != "" {
				t.Errorf("History(%+v) mismatch (-want +got):\n%s", tc.f, diff)
			}
		})
	}
	if got := history(t, s, HistoryFilter{}); len(got) != 10 {
		t.Errorf("History() = %d events, want 10", len(got))
	}
}

func TestConcurrentRecordRun(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	const writers, runs = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*runs*2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := fmt.Sprintf("host%d", w)
			for r := range runs {
				at := t0.Add(time.Duration(r) * time.Minute)
				checks := []core.Check{
					check("web", "1.25.0", fmt.Sprintf("1.%d.0", 26+r), core.KindMinor),
					check("db", "1.0.0", "", core.KindNone),
				}
				if _, err := s.RecordRun(ctx, host, checks, at); err != nil {
					errs <- fmt.Errorf("RecordRun(%s, run %d): %w", host, r, err)
				}
				if _, err := s.Updates(ctx, ""); err != nil {
					errs <- fmt.Errorf("Updates() during writes: %w", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	us := updates(t, s, "")
	if len(us) != writers {
		t.Fatalf("Updates() = %d updates, want %d (one per host)", len(us), writers)
	}
	for _, u := range us {
		if want := fmt.Sprintf("1.%d.0", 26+runs-1); u.Candidate != want {
			t.Errorf("Updates(): %s/%s candidate %s, want %s", u.Host, u.ContainerName, u.Candidate, want)
		}
	}
	if got, want := len(history(t, s, HistoryFilter{})), writers*(runs+runs-1); got != want {
		t.Errorf("History() = %d events, want %d", got, want)
	}
}

func TestContextIsUsed(t *testing.T) {
	s, _ := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.RecordRun(ctx, "local", []core.Check{check("web", "1.25.0", "1.26.0", core.KindMinor)}, t0); err == nil {
		t.Errorf("RecordRun(cancelled context) error = nil, want an error")
	}
	if _, err := s.Updates(ctx, ""); err == nil {
		t.Errorf("Updates(cancelled context) error = nil, want an error")
	}
	if _, err := s.History(ctx, HistoryFilter{}); err == nil {
		t.Errorf("History(cancelled context) error = nil, want an error")
	}
	if _, err := Open(ctx, t.TempDir()); err == nil {
		t.Errorf("Open(cancelled context) error = nil, want an error")
	}
	if got := updates(t, s, ""); len(got) != 0 {
		t.Errorf("Updates() after a cancelled RecordRun = %+v, want none", got)
	}
}

func TestRecordRunIsAtomic(t *testing.T) {
	s, _ := openStore(t)
	bad := check("", "1.25.0", "1.26.0", core.KindMinor) // no name: rejected
	_, err := s.RecordRun(context.Background(), "local", []core.Check{check("web", "1.25.0", "1.26.0", core.KindMinor), bad}, t0)
	if err == nil {
		t.Fatalf("RecordRun(a check without name) error = nil, want an error")
	}
	if got := updates(t, s, ""); len(got) != 0 {
		t.Errorf("Updates() after a failed RecordRun = %+v, want none (rolled back)", got)
	}
}
