package store

import (
	"context"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// TestRecordFullRun: a full run's checks are recorded and the host's
// containers it did not list are marked gone, in one transaction: a run
// that fails to record leaves neither its checks nor its gone marks.
func TestRecordFullRun(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	record(t, s, "local", t0, check("web", "1.25.0", "1.26.0", core.KindMinor), check("db", "1.25.0", "", core.KindNone))
	record(t, s, "remote", t0, check("web", "1.25.0", "1.26.0", core.KindMinor))

	// A run that lists db only, and fails on its second check: nothing changes.
	bad := check("", "1.25.0", "1.26.0", core.KindMinor) // no name: rejected
	if _, err := s.RecordFullRun(ctx, "local", []core.Check{check("db", "1.25.0", "1.25.1", core.KindPatch), bad}, t1); err == nil {
		t.Fatal("RecordFullRun(a check without name) error = nil, want an error")
	}
	if cs, err := s.Containers(ctx, "local"); err != nil || len(cs) != 2 {
		t.Errorf("Containers(local) after a failed full run = %d, %v; want both still present", len(cs), err)
	}
	if got := history(t, s, HistoryFilter{Kinds: []string{EventGone}}); len(got) != 0 {
		t.Errorf("gone events after a failed full run = %q, want none", kinds(got))
	}
	if got := updates(t, s, ""); len(got) != 2 {
		t.Errorf("updates after a failed full run = %d, want the 2 recorded before", len(got))
	}

	// The same run without the bad check: db's update is recorded, web is gone.
	found, err := s.RecordFullRun(ctx, "local", []core.Check{check("db", "1.25.0", "1.25.1", core.KindPatch)}, t1)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].ContainerName != "db" || found[0].Candidate != "1.25.1" {
		t.Errorf("RecordFullRun found %+v, want db's 1.25.1", found)
	}
	cs, err := s.Containers(ctx, "local")
	if err != nil || len(cs) != 1 || cs[0].Container.Name != "db" {
		t.Errorf("Containers(local) = %+v, %v; want db only", cs, err)
	}
	gone := history(t, s, HistoryFilter{Kinds: []string{EventGone}})
	if len(gone) != 1 || gone[0].Container != "web" || gone[0].Host != "local" || !gone[0].At.Equal(t1) {
		t.Errorf("gone events = %q, want local/web at t1", kinds(gone))
	}
	if cs, _ := s.Containers(ctx, "remote"); len(cs) != 1 {
		t.Errorf("the other host's containers = %d, want 1 (untouched)", len(cs))
	}
}

// TestCandidateCreatedKept: an update keeps its candidate's creation time,
// through a refresh that does not know it, and the creation times of
// images are remembered by key, a zero time included.
func TestCandidateCreatedKept(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	created := t0.Add(-72 * time.Hour)
	c := check("web", "1.25.0", "1.26.0", core.KindMinor)
	c.CandidateCreated = created
	if us := record(t, s, "local", t0, c); len(us) != 1 || !us[0].CandidateCreated.Equal(created) {
		t.Fatalf("RecordRun returned %+v, want the candidate's creation time", us)
	}
	c.CandidateCreated = time.Time{}
	if us := record(t, s, "local", t1, c); len(us) != 1 || !us[0].CandidateCreated.Equal(created) {
		t.Errorf("a refresh without the time returned %+v, want the time kept", us)
	}
	if us := updates(t, s, ""); len(us) != 1 || !us[0].CandidateCreated.Equal(created) {
		t.Errorf("Updates() = %+v, want the candidate's creation time", us)
	}

	for key, at := range map[string]time.Time{"r/app@sha256:1|linux/amd64": created, "r/app@sha256:2|": {}} {
		if _, ok, err := s.ImageCreated(ctx, key); ok || err != nil {
			t.Errorf("ImageCreated(%s) before = ok %v err %v, want not known", key, ok, err)
		}
		if err := s.RememberImageCreated(ctx, key, at); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.ImageCreated(ctx, key)
		if !ok || err != nil || !got.Equal(at) {
			t.Errorf("ImageCreated(%s) = %v %v %v, want %v", key, got, ok, err, at)
		}
	}
}
