package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidewatch/tidewatch/core"
)

// dump is every row of the tables a run writes, as text, for comparing
// two stores.
func dump(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range []string{"containers", "updates", "events"} {
		rows, err := s.db.Query(`SELECT * FROM ` + table + ` ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i, v := range vals {
				fmt.Fprintf(&b, "%s=%v ", cols[i], v)
			}
			out[table] = append(out[table], b.String())
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestRunWritesWhatChanged: a run that writes only the rows that changed
// leaves the store exactly as one that writes every row (the way runs
// wrote before), run after run: every table, every column, and the updates
// each run returns. The runs change one thing at a time (a label, the
// image, the state, digests, the creation time, an error, a candidate's
// link, a container gone and back, a name listed twice) and repeat
// themselves unchanged.
func TestRunWritesWhatChanged(t *testing.T) {
	ctx := context.Background()
	lazy, _ := openStore(t)
	all, _ := openStore(t)
	all.writeAll = true

	web := check("web", "1.25.0", "1.26.0", core.KindMinor)
	web.Link = "https://nginx.org/1.26"
	db := check("db", "1.25.0", "", core.KindNone)
	api := check("api", "1.25.0", "", core.KindNone)
	api.Err = errors.New("listing tags: unauthorized")
	hostile := check("hostile", "1.25.0", "1.25.1", core.KindPatch)
	hostile.Container.Labels = map[string]string{"a<b>&c": "\"quoted\"\n\t\x00\x1f", "bad utf-8": "\xff\xfe", "sep": "\u2028\u2029", "": ""}
	hostile.Container.RepoDigests = []string{"nginx@sha256:1", "<&>"}
	svc := check("svc", "1.25.0", "1.26.0", core.KindMinor)
	svc.Container.Kind = core.ObjectService
	svc.Container.Service = &core.Service{Mode: "replicated", Running: 2, Desired: 2, Nodes: []string{"n1", "n2"}}

	with := func(c core.Check, change func(*core.Check)) core.Check {
		c.Container.Labels = clone(c.Container.Labels)
		c.Container.RepoDigests = append([]string(nil), c.Container.RepoDigests...)
		change(&c)
		return c
	}
	type step struct {
		name   string
		full   bool // RecordFullRun, else RecordRun
		checks []core.Check
	}
	base := []core.Check{web, db, api, hostile, svc}
	steps := []step{
		{"first run", true, base},
		{"the same again", true, base},
		{"a label changed", true, []core.Check{with(web, func(c *core.Check) { c.Container.Labels["tidewatch.watch"] = "1" }), db, api, hostile, svc}},
		{"the image changed", true, []core.Check{web, with(db, func(c *core.Check) {
			c.Container.Image, c.Container.ImageID, c.Current = "nginx:1.25.1", "sha256:other", "1.25.1"
		}), api, hostile, svc}},
		{"the state changed", true, []core.Check{with(web, func(c *core.Check) { c.Container.State = "restarting" }), db, api, hostile, svc}},
		{"digests, creation and note changed", true, []core.Check{web, with(db, func(c *core.Check) {
			c.Container.RepoDigests, c.Container.Created, c.Note = []string{"nginx@sha256:2"}, t0, "a note"
		}), api, hostile, svc}},
		{"an error cleared, a link changed", true, []core.Check{with(web, func(c *core.Check) { c.Link = "https://nginx.org/other" }), db,
			with(api, func(c *core.Check) { c.Err = nil }), hostile, svc}},
		{"an error with no digest keeps the digest", true, []core.Check{with(web, func(c *core.Check) {
			c.Err, c.CurrentDigest, c.Candidate, c.CandidateDigest, c.Kind = errors.New("timeout"), "", "", "", core.KindNone
		}), db, api, hostile, svc}},
		{"a container gone", true, []core.Check{web, db, hostile, svc}},
		{"the same again, gone stays gone", true, []core.Check{web, db, hostile, svc}},
		{"the container back", true, base},
		{"a candidate's creation time known", true, []core.Check{with(web, func(c *core.Check) { c.CandidateCreated = t0 }), db, api, hostile, svc}},
		{"the same without it", true, base},
		{"checked at its own time", true, []core.Check{with(web, func(c *core.Check) { c.CheckedAt = t0.Add(time.Minute) }), db, api, hostile, svc}},
		{"a name listed twice", true, []core.Check{web, db, with(web, func(c *core.Check) { c.Container.State = "paused" }), api, hostile, svc}},
		{"a new candidate supersedes", true, []core.Check{with(web, func(c *core.Check) { c.Candidate, c.CandidateDigest = "1.27.0", "sha256:1.27.0" }), db, api, hostile, svc}},
		{"no update resolves", true, []core.Check{with(web, func(c *core.Check) { c.Candidate, c.CandidateDigest, c.Kind = "", "", core.KindNone }), db, api, hostile, svc}},
		{"one container on its own, unchanged", false, []core.Check{db}},
		{"one container on its own, changed", false, []core.Check{with(db, func(c *core.Check) { c.Container.Labels["x"] = "y" })}},
		{"a full run after it", true, base},
	}
	for i, st := range steps {
		at := t0.Add(time.Duration(i+1) * time.Hour)
		var got [2][]core.Update
		for j, s := range []*Store{lazy, all} {
			var err error
			if st.full {
				got[j], err = s.RecordFullRun(ctx, "local", st.checks, at)
			} else {
				got[j], err = s.RecordRun(ctx, "local", st.checks, at)
			}
			if err != nil {
				t.Fatalf("step %q: %v", st.name, err)
			}
		}
		if diff := cmp.Diff(got[1], got[0]); diff != "" {
			t.Errorf("step %q: the updates returned differ (-writing every row +writing what changed):\n%s", st.name, diff)
		}
		if diff := cmp.Diff(dump(t, all), dump(t, lazy)); diff != "" {
			t.Fatalf("step %q: the stores differ (-writing every row +writing what changed):\n%s", st.name, diff)
		}
	}
}

func clone(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestUnchangedRunMovesOnlyTimes: a run that finds every container as it
// was moves their last_checked and their update's last_seen, and records
// nothing in the history; a changed label, image or state is written; a
// container not listed is marked gone, its update closed.
func TestUnchangedRunMovesOnlyTimes(t *testing.T) {
	ctx := context.Background()
	web := check("web", "1.25.0", "1.26.0", core.KindMinor)
	db := check("db", "1.25.0", "", core.KindNone)
	for _, tc := range []struct {
		name   string
		change func(c *core.Check)
		want   func(r ContainerRecord) string // "" when r shows the change
	}{
		{"nothing", func(*core.Check) {}, func(ContainerRecord) string { return "" }},
		{"a label", func(c *core.Check) { c.Container.Labels = map[string]string{"tidewatch.watch": "false"} },
			func(r ContainerRecord) string {
				return cmp.Diff(map[string]string{"tidewatch.watch": "false"}, r.Container.Labels)
			}},
		{"the image", func(c *core.Check) { c.Container.Image, c.Container.ImageID = "nginx:1.25.0-alpine", "sha256:alpine" },
			func(r ContainerRecord) string {
				return cmp.Diff([]string{"nginx:1.25.0-alpine", "sha256:alpine"}, []string{r.Container.Image, r.Container.ImageID})
			}},
		{"the state", func(c *core.Check) { c.Container.State = "exited" },
			func(r ContainerRecord) string { return cmp.Diff("exited", r.Container.State) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openStore(t)
			if _, err := s.RecordFullRun(ctx, "local", []core.Check{web, db}, t0); err != nil {
				t.Fatal(err)
			}
			changed := web
			tc.change(&changed)
			found, err := s.RecordFullRun(ctx, "local", []core.Check{changed, db}, t1)
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != 1 || !found[0].LastSeen.Equal(t1) || !found[0].FirstSeen.Equal(t0) {
				t.Errorf("RecordFullRun found %+v, want web's update first seen %v, last seen %v", found, t0, t1)
			}
			cs, err := s.Containers(ctx, "local")
			if err != nil || len(cs) != 2 {
				t.Fatalf("Containers(local) = %d, %v; want 2", len(cs), err)
			}
			for _, r := range cs {
				if !r.LastChecked.Equal(t1) || !r.FirstSeen.Equal(t0) {
					t.Errorf("%s: first seen %v, last checked %v; want %v, %v", r.Container.Name, r.FirstSeen, r.LastChecked, t0, t1)
				}
				if r.Container.Name == "web" {
					if diff := tc.want(r); diff != "" {
						t.Errorf("web after the run (-want +got):\n%s", diff)
					}
				}
			}
			us := updates(t, s, "")
			if len(us) != 1 || !us[0].LastSeen.Equal(t1) {
				t.Errorf("Updates() = %+v, want web's, last seen %v", us, t1)
			}
			if got := history(t, s, HistoryFilter{}); len(got) != 1 {
				t.Errorf("History() = %q, want the one detection of the first run", kinds(got))
			}

			// A run without web: web is gone, its update closed.
			if _, err := s.RecordFullRun(ctx, "local", []core.Check{db}, t1.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if cs, _ := s.Containers(ctx, "local"); len(cs) != 1 || cs[0].Container.Name != "db" {
				t.Errorf("Containers(local) after web left = %+v, want db only", cs)
			}
			if got := updates(t, s, ""); len(got) != 0 {
				t.Errorf("Updates() after web left = %+v, want none", got)
			}
			if got := history(t, s, HistoryFilter{Kinds: []string{EventGone}}); len(got) != 1 || got[0].Container != "web" {
				t.Errorf("History(gone) = %+v, want web", got)
			}
		})
	}
}

// TestTouchesInChunks: the deferred writes of a run of any size land on
// every row (the statements of 128, 16 and 1 rows cover each count).
func TestTouchesInChunks(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{1, 15, 16, 17, 129, 300} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s, _ := openStore(t)
			checks := make([]core.Check, n)
			for i := range checks {
				checks[i] = check(fmt.Sprintf("c%03d", i), "1.0.0", "2.0.0", core.KindMajor)
			}
			for _, at := range []time.Time{t0, t1} {
				if _, err := s.RecordFullRun(ctx, "local", checks, at); err != nil {
					t.Fatal(err)
				}
			}
			var stale int
			if err := s.db.QueryRow(`SELECT COUNT(*) FROM containers WHERE last_checked <> ?`, t1.UnixNano()).Scan(&stale); err != nil {
				t.Fatal(err)
			}
			var unseen int
			if err := s.db.QueryRow(`SELECT COUNT(*) FROM updates WHERE last_seen <> ?`, t1.UnixNano()).Scan(&unseen); err != nil {
				t.Fatal(err)
			}
			if stale != 0 || unseen != 0 {
				t.Errorf("after a second run of %d: %d containers not checked at t1, %d updates not seen at t1; want 0, 0", n, stale, unseen)
			}
		})
	}
}

// jsonCases are strings a label or a repo digest may hold, hostile ones
// included.
var jsonCases = []string{
	"", "plain", `"quoted"`, `back\slash`, "<script>&amp;</script>", "\x00\x01\b\f\n\r\t\x1f\x7f",
	"\xff", "a\xffb\xc3", "é ü 漢字 🚀", "\u2028\u2029", "\ufffd", strings.Repeat("long ", 100),
}

// TestAppendJSON: labels and repo digests are encoded exactly as
// encoding/json encodes them (so that a row written before compares
// equal), hostile strings included, and decode back as encoding/json's own
// output does.
func TestAppendJSON(t *testing.T) {
	m := map[string]string{}
	for i, s := range jsonCases {
		m[s] = jsonCases[len(jsonCases)-1-i]
	}
	for _, tc := range []struct {
		name string
		v    any
		got  []byte
	}{
		{"nil map", map[string]string(nil), func() []byte { b, _ := appendJSONObject(nil, nil, nil); return b }()},
		{"hostile map", m, func() []byte { b, _ := appendJSONObject(nil, m, nil); return b }()},
		{"nil slice", []string(nil), appendJSONArray(nil, nil)},
		{"hostile slice", jsonCases, appendJSONArray(nil, jsonCases)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "nil map" {
				want = []byte("{}")
			}
			if tc.name == "nil slice" {
				want = []byte("[]")
			}
			if string(tc.got) != string(want) {
				t.Errorf("encoded %q, encoding/json gives %q", tc.got, want)
			}
		})
	}
}

// FuzzAppendJSONString: any string encodes as encoding/json encodes it.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %q, encoding/json gives %q", s, got, want)
		}
	})
}
