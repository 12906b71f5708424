package watch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// TestCandidateAgeReadOncePerCandidate: under a cooldown, a candidate's
// digest is read by HEAD on every run and its creation time once per
// digest (remembered across watchers by the Memo); a tag pushed again is a
// new candidate whose age is read again; without a cooldown neither is read.
func TestCandidateAgeReadOncePerCandidate(t *testing.T) {
	created := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	reg := newFakeRegistry()
	reg.tags["registry.example/app"] = []string{"1.0", "2.0"}
	reg.digests["registry.example/app:2.0"] = digestOf(20)
	reg.createdAt["registry.example/app@"+digestOf(20)] = created
	eng := &fakeEngine{ctrs: []core.Container{
		ctr("cool", "registry.example/app:1.0", map[string]string{core.LabelUpdateMinAge: "3d"}),
		ctr("cool2", "registry.example/app:1.0", map[string]string{core.LabelUpdateMinAge: "12h"}),
		ctr("plain", "registry.example/other:1.0", nil),
	}}
	reg.tags["registry.example/other"] = []string{"1.0", "1.1"}
	m := &memo{m: map[string]bool{}}
	for run := range 3 {
		w := New(Options{Host: "local", WatchByDefault: true, Memo: m}, eng, reg, nil, discard()) // a new watcher each time, as `tidewatch check`
		checks, err := w.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range checks {
			wantCreated, wantDigest := created, digestOf(20)
			if c.Container.Name == "plain" {
				wantCreated, wantDigest = time.Time{}, ""
			}
			if c.Err != nil || !c.CandidateCreated.Equal(wantCreated) || c.CandidateDigest != wantDigest {
				t.Errorf("run %d: %s: created %v digest %q err %v, want %v and %q", run, c.Container.Name, c.CandidateCreated, c.CandidateDigest, c.Err, wantCreated, wantDigest)
			}
		}
	}
	if got := reg.calledWith("created "); got["created registry.example/app@"+digestOf(20)] != 1 || len(got) != 1 {
		t.Errorf("creation times read: %v, want the candidate's once in three runs", got)
	}
	if got := reg.calledWith("digest "); got["digest registry.example/app:2.0"] != 3 || len(got) != 1 {
		t.Errorf("digests read: %v, want the candidate's once per run (two containers share it), and no other", got)
	}

	// The tag is pushed again: a new digest, whose age is read.
	reg.mu.Lock()
	reg.digests["registry.example/app:2.0"] = digestOf(21)
	reg.createdAt["registry.example/app@"+digestOf(21)] = created.Add(time.Hour)
	reg.mu.Unlock()
	w := New(Options{Host: "local", WatchByDefault: true, Memo: m}, eng, reg, nil, discard())
	checks, err := w.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c := checks[0]; c.CandidateDigest != digestOf(21) || !c.CandidateCreated.Equal(created.Add(time.Hour)) {
		t.Errorf("after the tag moved: digest %q created %v, want the new digest and its time", c.CandidateDigest, c.CandidateCreated)
	}
	if got := reg.calledWith("created ")["created registry.example/app@"+digestOf(21)]; got != 1 {
		t.Errorf("the new digest's creation time read %d times, want 1", got)
	}
}

// TestReadCreatedForTriggers: Options.ReadCreated reads the age of every
// candidate, for the triggers' MIN_AGE, without a label; a config with an
// implausible time (1970, as reproducible builds write) gives none.
func TestReadCreatedForTriggers(t *testing.T) {
	reg := newFakeRegistry()
	reg.tags["registry.example/app"] = []string{"1.0", "2.0"}
	reg.tags["registry.example/repro"] = []string{"1.0", "2.0"}
	reg.digests["registry.example/app:2.0"] = digestOf(20)
	reg.digests["registry.example/repro:2.0"] = digestOf(30)
	reg.createdAt["registry.example/app@"+digestOf(20)] = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	reg.createdAt["registry.example/repro@"+digestOf(30)] = time.Unix(0, 0)
	eng := &fakeEngine{ctrs: []core.Container{ctr("app", "registry.example/app:1.0", nil), ctr("repro", "registry.example/repro:1.0", nil)}}
	w := New(Options{Host: "local", WatchByDefault: true, ReadCreated: true}, eng, reg, nil, discard())
	checks, err := w.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	for _, c := range checks {
		got[c.Container.Name] = c.CandidateCreated
	}
	if got["app"].IsZero() || !got["repro"].IsZero() {
		t.Errorf("creation times %v, want app's and none for repro (1970)", got)
	}
}

// TestCandidateAgeUnknown: when the age cannot be read, the check says so
// in its note and is not an error (the cooldown then counts from the first
// sighting); the next run tries again.
func TestCandidateAgeUnknown(t *testing.T) {
	reg := newFakeRegistry()
	reg.tags["registry.example/app"] = []string{"1.0", "2.0"}
	reg.digests["registry.example/app:2.0"] = digestOf(20)
	reg.createdErr = errors.New("manifest unknown")
	eng := &fakeEngine{ctrs: []core.Container{ctr("cool", "registry.example/app:1.0", map[string]string{core.LabelUpdateMinAge: "3d"})}}
	w := New(Options{Host: "local", WatchByDefault: true}, eng, reg, nil, discard())
	for run := range 2 {
		checks, err := w.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c := checks[0]
		if c.Err != nil || c.Candidate != "2.0" || !c.CandidateCreated.IsZero() || !strings.Contains(c.Note, "age of 2.0 unknown") {
			t.Errorf("run %d: candidate %q created %v note %q err %v; want 2.0 offered, its age unknown in the note", run, c.Candidate, c.CandidateCreated, c.Note, c.Err)
		}
	}
	if got := reg.calledWith("created ")["created registry.example/app@"+digestOf(20)]; got != 2 {
		t.Errorf("creation time asked %d times over two failing runs, want 2 (failures are not kept)", got)
	}
}

// TestHostileMinAgeLabel: a min-age label that is negative, huge or garbage
// is an error on its container, naming the label; the registry is not
// asked for it, and the other containers are checked.
func TestHostileMinAgeLabel(t *testing.T) {
	for _, v := range []string{"-3d", "99999999999999d", "400d", "3 days", "1.5d", "soon", "3d\x00", strings.Repeat("7", 100000)} {
		reg := newFakeRegistry()
		reg.tags["registry.example/app"] = []string{"1.0", "2.0"}
		eng := &fakeEngine{ctrs: []core.Container{
			ctr("bad", "registry.example/bad:1.0", map[string]string{core.LabelUpdateMinAge: v}),
			ctr("good", "registry.example/app:1.0", nil),
		}}
		w := New(Options{Host: "local", WatchByDefault: true}, eng, reg, nil, discard())
		checks, err := w.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := summarize(checks)
		if e := got["bad"].Err; !strings.Contains(e, core.LabelUpdateMinAge) || got["bad"].Candidate != "" {
			t.Errorf("label %.20q: bad's error %.200q, candidate %q; want an error naming the label and no candidate", v, e, got["bad"].Candidate)
		}
		if got["good"].Candidate != "2.0" || got["good"].Err != "" {
			t.Errorf("label %.20q: good = %+v, want 2.0", v, got["good"])
		}
		if n := len(reg.calledWith("tags registry.example/bad")); n != 0 {
			t.Errorf("label %.20q: the bad container's repository was asked", v)
		}
	}
}
