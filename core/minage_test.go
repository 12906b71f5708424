package core

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestTriggerMinAge: a trigger with MIN_AGE, or a container with
// tidewatch.update.min-age, refuses by itself a candidate younger than the
// longer of the two, counted from its creation time (else its first
// sighting); a person asking is not refused.
func TestTriggerMinAge(t *testing.T) {
	now := time.Now()
	withMinAge := func(v string) TriggerPolicy {
		p := DefaultTriggerPolicy()
		if err := p.Set(OptionMinAge, v); err != nil {
			t.Fatalf("Set(MIN_AGE, %q) = %v", v, err)
		}
		return p
	}
	update := func(created, first time.Time, label string) Update {
		u := Update{ContainerName: "web", Kind: KindMinor, CandidateCreated: created, FirstSeen: first}
		if label != "" {
			u.Labels = map[string]string{LabelUpdateMinAge: label}
		}
		return u
	}
	withStatus := func(u Update, s UpdateStatus) Update { u.Status = s; return u }
	day := 24 * time.Hour
	tests := []struct {
		name     string
		policy   TriggerPolicy
		u        Update
		manual   bool
		wantRule string // "" when not refused
	}{
		{name: "no cooldown", policy: DefaultTriggerPolicy(), u: update(now, now, "")},
		{name: "MIN_AGE=3d, created a day ago", policy: withMinAge("3d"), u: update(now.Add(-day), now, ""), wantRule: "MIN_AGE=3d"},
		{name: "MIN_AGE=3d, created four days ago", policy: withMinAge("3d"), u: update(now.Add(-4*day), now, "")},
		{name: "MIN_AGE=3d, age unknown, first seen four days ago", policy: withMinAge("3d"), u: update(time.Time{}, now.Add(-4*day), "")},
		{name: "MIN_AGE=3d, age unknown, first seen now", policy: withMinAge("3d"), u: update(time.Time{}, now, ""), wantRule: "MIN_AGE=3d"},
		{name: "label 12h, created an hour ago", policy: DefaultTriggerPolicy(), u: update(now.Add(-time.Hour), now, "12h"), wantRule: "label tidewatch.update.min-age=12h"},
		{name: "label longer than MIN_AGE wins", policy: withMinAge("1h"), u: update(now.Add(-2*time.Hour), now, "1d"), wantRule: "label tidewatch.update.min-age=1d"},
		{name: "MIN_AGE longer than the label wins", policy: withMinAge("2d"), u: update(now.Add(-30*time.Hour), now, "1d"), wantRule: "MIN_AGE=2d"},
		{name: "a bad label refuses", policy: DefaultTriggerPolicy(), u: update(now.Add(-400*day), now, "-3d"), wantRule: "label tidewatch.update.min-age"},
		{name: "a person asking is not held back", policy: withMinAge("3d"), u: update(now, now, "3d"), manual: true},
		{name: "pending: held back", policy: withMinAge("3d"), u: withStatus(update(now, now, ""), StatusPending), wantRule: "MIN_AGE=3d"},
		{name: "notified: held back", policy: withMinAge("3d"), u: withStatus(update(now, now, ""), StatusNotified), wantRule: "MIN_AGE=3d"},
		{name: "the news of a rollout a person started is not held back", policy: withMinAge("3d"), u: withStatus(update(now, now, "3d"), StatusApplying)},
		{name: "nor of one that rolled back", policy: withMinAge("3d"), u: withStatus(update(now, now, "3d"), StatusRolledBack)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Refusal(tc.u, "webhook.ops", tc.manual)
			if tc.wantRule == "" {
				if err != nil {
					t.Errorf("Refusal = %v, want none", err)
				}
				return
			}
			var re *RefusalError
			if !errors.As(err, &re) || re.Rule != tc.wantRule && !strings.HasPrefix(re.Rule, tc.wantRule) {
				t.Errorf("Refusal = %v, want one by %s", err, tc.wantRule)
			}
		})
	}
}

func TestTriggerMinAgeOption(t *testing.T) {
	for _, bad := range []string{"-1d", "soon", "1.5d", "400d", "99999999999999w", strings.Repeat("9", 5000)} {
		p := DefaultTriggerPolicy()
		err := p.Set(OptionMinAge, bad)
		var ve *OptionValueError
		if !errors.As(err, &ve) || !strings.Contains(ve.Expected, "365d") || p.MinAge != 0 {
			t.Errorf("Set(MIN_AGE, %.30q) = %v (MinAge %v), want an option error saying what is expected, MinAge unchanged", bad, err, p.MinAge)
		}
		if err != nil && len(err.Error()) > 600 {
			t.Errorf("Set(MIN_AGE, %.30q) error is %d bytes long", bad, len(err.Error()))
		}
	}
	p := DefaultTriggerPolicy()
	if err := p.Set(OptionMinAge, "1d12h"); err != nil || p.MinAge != 36*time.Hour {
		t.Errorf("Set(MIN_AGE, 1d12h) = %v, MinAge %v; want 36h", err, p.MinAge)
	}
}
