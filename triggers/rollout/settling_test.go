package rollout

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// TestSettling: the start of a settle, for each state the record may be in;
// a rollout cut off before its health gate ended is marked rolling back and
// saved, so that a second settle finds it so.
func TestSettling(t *testing.T) {
	const key, delivery = "unix:///var/run/docker.sock|web", "tw-1"
	failed := &Failure{Step: "health", Reason: "unhealthy"}
	tests := []struct {
		name        string
		saved       *Record // nil: no record
		corrupt     bool    // the record file holds garbage
		wantErr     error
		wantOutcome string
		wantRetry   bool
		wantPhase   string
		wantFailure Failure
	}{
		{name: "no record", wantErr: ErrNothingToSettle, wantOutcome: sdk.OutcomeRefused},
		{name: "another delivery's record", saved: &Record{Key: "tw-2", Phase: PhaseRollingBack, Failure: failed},
			wantErr: ErrNothingToSettle, wantOutcome: sdk.OutcomeRefused},
		{name: "unreadable", corrupt: true, wantErr: ErrUnreadable, wantOutcome: sdk.OutcomeFailed},
		{name: "prepared", saved: &Record{Key: delivery, Phase: PhasePrepared},
			wantPhase: PhaseRollingBack, wantFailure: Failure{Step: "resume", Reason: "the rollout ended unfinished"}},
		{name: "applying, failed at the health gate", saved: &Record{Key: delivery, Phase: PhaseApplying, Failure: failed},
			wantPhase: PhaseRollingBack, wantFailure: *failed},
		{name: "rolling back", saved: &Record{Key: delivery, Phase: PhaseRollingBack, Failure: failed},
			wantPhase: PhaseRollingBack, wantFailure: *failed},
		{name: "applied", saved: &Record{Key: delivery, Phase: PhaseApplied}, wantPhase: PhaseApplied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := NewJournal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if tc.saved != nil {
				if err := j.Save(key, tc.saved); err != nil {
					t.Fatal(err)
				}
			}
			if tc.corrupt {
				if err := os.WriteFile(j.RecordPath(key), []byte("{half"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			rec, err := j.Settling(key, delivery, "resume")
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || rec != nil { // (a record is returned only with an error saving it)
					t.Fatalf("Settling = %+v, %v; want %v", rec, err, tc.wantErr)
				}
				outcome, _, res := SettlingResult(err)
				if outcome != tc.wantOutcome || !sdk.IsPermanent(res.Err) {
					t.Errorf("SettlingResult(%v) = %s, %v; want %s, permanent", err, outcome, res.Err, tc.wantOutcome)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stored, err := j.Load(key)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []*Record{rec, stored} {
				var f Failure
				if r.Failure != nil {
					f = *r.Failure
				}
				if r.Phase != tc.wantPhase || !cmp.Equal(f, tc.wantFailure) {
					t.Errorf("record phase %q, failure %+v; want %q, %+v", r.Phase, f, tc.wantPhase, tc.wantFailure)
				}
			}
		})
	}
	// A record that cannot be saved: tried again.
	if outcome, _, res := SettlingResult(errors.New("disk full")); outcome != sdk.OutcomeFailed || sdk.IsPermanent(res.Err) || res.Err == nil {
		t.Errorf("SettlingResult(a save error) = %s, %v; want failed, to be retried", outcome, res.Err)
	}
}
