package core

import (
	"strings"
	"testing"
	"time"
)

func TestParseMinAge(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "3d", want: 3 * day},
		{in: "12h", want: 12 * time.Hour},
		{in: " 1d12h ", want: 36 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "2w", want: 14 * day},
		{in: "45s", want: 45 * time.Second},
		{in: "0", want: 0},
		{in: "0d", want: 0},
		{in: "365d", want: MaxMinAge},
		{in: "366d", wantErr: "longer than 365d"},
		{in: "53w", wantErr: "longer than"},
		{in: "99999999999d", wantErr: "longer than"},
		{in: "9999999w", wantErr: "longer than"},
		{in: "-3d", wantErr: "negative"},
		{in: "", wantErr: "empty"},
		{in: "3", wantErr: "without a unit"},
		{in: "1.5d", wantErr: "unknown unit"},
		{in: "3 days", wantErr: "unknown unit"},
		{in: "3D", wantErr: "unknown unit"},
		{in: "d", wantErr: "not a duration"},
		{in: "3d\x00", wantErr: `unknown unit "d\x00"`},
		{in: "1h1h", want: 2 * time.Hour},
		{in: strings.Repeat("1d", 400), wantErr: "longer than"},
		{in: strings.Repeat("x", 100000), wantErr: "… (100000 bytes)"},
	}
	for _, tc := range tests {
		got, err := ParseMinAge(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseMinAge(%.40q) = %v, %v; want an error with %q", tc.in, got, err, tc.wantErr)
			}
			if err != nil && len(err.Error()) > 2*MaxQuoted+100 {
				t.Errorf("ParseMinAge(%.40q) error is %d bytes long", tc.in, len(err.Error()))
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseMinAge(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseMinAge(f *testing.F) {
	for _, s := range []string{"3d", "12h", "1d12h", "0", "-1d", "366d", "9999999w", "1.5h", "1h30m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseMinAge(s)
		if err != nil {
			return
		}
		if d < 0 || d > MaxMinAge {
			t.Fatalf("ParseMinAge(%q) = %v, outside [0, %v]", s, d, MaxMinAge)
		}
		if back, err := ParseMinAge(FormatMinAge(d)); err != nil || back != d {
			t.Fatalf("ParseMinAge(FormatMinAge(%v) = %q) = %v, %v", d, FormatMinAge(d), back, err)
		}
	})
}

// TestUpdateWaitUntil: the container's own cooldown counts from the
// candidate's creation time, else from when it was first seen; a label
// that does not parse holds the update back.
func TestUpdateWaitUntil(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	label := func(v string) map[string]string { return map[string]string{LabelUpdateMinAge: v} }
	tests := []struct {
		name string
		u    Update
		want time.Time
	}{
		{name: "no label", u: Update{FirstSeen: now}, want: time.Time{}},
		{name: "created a day ago, 3d", u: Update{Labels: label("3d"), CandidateCreated: now.Add(-24 * time.Hour), FirstSeen: now}, want: now.Add(48 * time.Hour)},
		{name: "created a week ago, 3d: ready", u: Update{Labels: label("3d"), CandidateCreated: now.Add(-7 * 24 * time.Hour), FirstSeen: now}, want: time.Time{}},
		{name: "creation unknown: from first seen", u: Update{Labels: label("12h"), FirstSeen: now.Add(-time.Hour)}, want: now.Add(11 * time.Hour)},
		{name: "bad label: held back", u: Update{Labels: label("-1d"), FirstSeen: now}, want: now.Add(MaxMinAge)},
	}
	for _, tc := range tests {
		if got := tc.u.WaitUntil(now); !got.Equal(tc.want) {
			t.Errorf("%s: WaitUntil = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPlausibleCreated(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   time.Time
		keep bool
	}{
		{time.Unix(0, 0), false},              // SOURCE_DATE_EPOCH=0
		{time.Time{}, false},                  // 0001-01-01 (ko)
		{now.Add(-48 * time.Hour), true},      // a real one
		{now.Add(2 * time.Hour), true},        // a registry's clock a little ahead
		{now.Add(30 * 24 * time.Hour), false}, // from the future
		{time.Date(2012, 12, 31, 0, 0, 0, 0, time.UTC), false},
	} {
		got := PlausibleCreated(tc.in, now)
		if (!got.IsZero()) != tc.keep {
			t.Errorf("PlausibleCreated(%v) = %v, keep %v", tc.in, got, tc.keep)
		}
	}
}
