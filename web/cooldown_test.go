package web

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// TestUpdateWaitUntil: the API shows a candidate's creation time and, while
// its container's cooldown holds it back, until when; a cooldown passed or
// absent shows no wait_until.
func TestUpdateWaitUntil(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	mk := func(name, minAge string, created time.Time) core.Check {
		ref, _ := core.ParseImageRef("registry.example/" + name + ":1.0.0")
		return core.Check{Container: core.Container{ID: "id-" + name, Name: name, Image: ref.String(), State: "running",
			Labels: map[string]string{core.LabelUpdateMinAge: minAge}},
			Ref: ref, Current: "1.0.0", Candidate: "1.1.0", Kind: core.KindMinor, CandidateCreated: created}
	}
	if _, err := e.st.RecordRun(ctx, "cool", []core.Check{mk("young", "3d", now.Add(-24*time.Hour)), mk("old", "3d", now.Add(-96*time.Hour))}, now); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Updates []Update `json:"updates"`
	}
	if err := json.Unmarshal(e.do(t, "GET", "/api/updates?host=cool", "").Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	got := map[string]Update{}
	for _, u := range body.Updates {
		got[u.Container] = u
	}
	if u := got["young"]; !u.WaitUntil.Equal(now.Add(48*time.Hour)) || !u.CandidateCreated.Equal(now.Add(-24*time.Hour)) {
		t.Errorf("young: wait_until %v candidate_created %v, want %v and %v", u.WaitUntil, u.CandidateCreated, now.Add(48*time.Hour), now.Add(-24*time.Hour))
	}
	if u := got["old"]; !u.WaitUntil.IsZero() || u.CandidateCreated.IsZero() {
		t.Errorf("old: wait_until %v candidate_created %v, want no wait and its creation time", u.WaitUntil, u.CandidateCreated)
	}
}
