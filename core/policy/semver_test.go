package policy

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/tidewatch/tidewatch/core"
)

func mustConstraint(t testing.TB, s string) *semver.Constraints {
	t.Helper()
	c, err := ParseConstraint(s)
	if err != nil {
		t.Fatalf("ParseConstraint(%q): %v", s, err)
	}
	return c
}

// TestSelectConstraint: with tidewatch.tag.constraint only candidates inside
// the range are offered, the shape rules deciding what the version is.
func TestSelectConstraint(t *testing.T) {
	tests := []struct {
		name, current, constraint, transform string
		tags                                 []string
		want                                 string
	}{
		{name: "tilde stays on the minor", current: "1.4.2", constraint: "~1.4", tags: []string{"1.4.5", "1.5.0", "2.0.0"}, want: "1.4.5"},
		{name: "caret stays on the major", current: "1.4.2", constraint: "^1", tags: []string{"1.4.5", "1.9.0", "2.0.0"}, want: "1.9.0"},
		{name: "a range with a comma", current: "2.1.0", constraint: ">=2.0, <3", tags: []string{"2.5.0", "3.0.0", "2.9.9"}, want: "2.9.9"},
		{name: "alternatives", current: "1.2.0", constraint: "1.2.x || 3.x", tags: []string{"1.2.7", "2.0.0", "3.1.0"}, want: "3.1.0"},
		{name: "a hyphen range", current: "1.2.0", constraint: "1.2 - 1.4", tags: []string{"1.3.9", "1.4.0", "1.5.0"}, want: "1.4.0"},
		{name: "nothing inside", current: "1.4.2", constraint: "~1.4", tags: []string{"1.5.0", "2.0.0"}, want: ""},
		{name: "running outside the range: only newer tags inside it", current: "3.1.0", constraint: "^2", tags: []string{"3.2.0", "2.9.0"}, want: ""},
		{name: "a variant is not a prerelease for the range", current: "1.4.2-alpine", constraint: "~1.4", tags: []string{"1.4.9-alpine", "1.5.0-alpine", "1.4.10"}, want: "1.4.9-alpine"},
		{name: "a prerelease is outside a range without one", current: "2.0.0-rc.1", constraint: "~2.0", tags: []string{"2.0.0-rc.2", "2.0.0"}, want: "2.0.0"},
		{name: "a range naming a prerelease takes prereleases", current: "2.0.0-rc.1", constraint: ">=2.0.0-0, <2.1.0", tags: []string{"2.0.0-rc.2", "2.1.0"}, want: "2.0.0-rc.2"},
		{name: "two parts read as x.y.0", current: "1.25", constraint: "<1.27", tags: []string{"1.26", "1.27", "2.0"}, want: "1.26"},
		{name: "four parts read as their first three", current: "1.2.3.4", constraint: "<1.2.4", tags: []string{"1.2.3.9", "1.2.4.0"}, want: "1.2.3.9"},
		{name: "a date stamp is the major", current: "20240102", constraint: "<20250000", tags: []string{"20240215", "20250101"}, want: "20240215"},
		{name: "v prefix", current: "v1.4.2", constraint: "~1.4", tags: []string{"v1.4.3", "v1.5.0"}, want: "v1.4.3"},
		{name: "after the transform", current: "1.4-2", constraint: "~1.4", transform: `^(\d+)\.(\d+)-(\d+)$ => $1.$2.$3`, tags: []string{"1.4-3", "1.5-0"}, want: "1.4-3"},
		{name: "a part too large for semver is outside", current: "1.0.0", constraint: ">=1", tags: []string{"1.0.99999999999999999999", "1.0.5"}, want: "1.0.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Policy{Constraint: mustConstraint(t, tc.constraint)}
			if tc.transform != "" {
				tr, err := ParseTransform(tc.transform)
				if err != nil {
					t.Fatal(err)
				}
				p.Transform = tr
			}
			for _, tags := range [][]string{tc.tags, reversed(tc.tags)} {
				if got := Select(tc.current, tags, p); got.Candidate != tc.want {
					t.Errorf("Select(%s, %q, constraint %q) = %q, want %q", tc.current, tags, tc.constraint, got.Candidate, tc.want)
				}
			}
		})
	}
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// semverPick is what semver alone would offer: the greatest tag that
// Masterminds/semver parses and finds greater than current.
func semverPick(t *testing.T, current string, tags []string) string {
	t.Helper()
	cur, err := semver.NewVersion(current)
	if err != nil {
		t.Fatalf("semver.NewVersion(%q): %v", current, err)
	}
	best, bestRaw := cur, ""
	for _, raw := range tags {
		if v, err := semver.NewVersion(raw); err == nil && v.GreaterThan(best) {
			best, bestRaw = v, raw
		}
	}
	return bestRaw
}

// TestSemverAndShapeDisagree: where semver's order and the shape rules
// disagree, the rule that keeps the running tag's shape wins. Each row checks
// first that semver alone would pick otherwise.
func TestSemverAndShapeDisagree(t *testing.T) {
	tests := []struct {
		name, current string
		tags          []string
		want          string // the shape rules' pick
	}{
		{name: "semver reads -alpine as a prerelease and leaves the variant", current: "1.2.3-alpine", tags: []string{"1.2.4", "1.2.4-alpine"}, want: "1.2.4-alpine"},
		{name: "the release of a variant's prerelease keeps the variant", current: "2.0.0-rc1-alpine", tags: []string{"2.0.0", "2.0.0-alpine"}, want: "2.0.0-alpine"},
		{name: "a package revision is a variant, not a prerelease", current: "1.2.3-1", tags: []string{"1.2.4", "1.2.3-2"}, want: "1.2.3-2"},
		{name: "a counter in a variant is a number, not a word", current: "1.2.3-ls100", tags: []string{"1.2.3-ls99", "1.2.3-ls101"}, want: "1.2.3-ls101"},
		{name: "build metadata numbers order variants", current: "1.2.3+build1", tags: []string{"1.2.3+build2"}, want: "1.2.3+build2"},
		{name: "the v prefix stays", current: "v1.2.3", tags: []string{"1.3.0", "v1.2.4"}, want: "v1.2.4"},
		{name: "the number of parts stays", current: "1.2", tags: []string{"1.3.1", "1.3"}, want: "1.3"},
		{name: "a date stamp does not replace a version", current: "1.2.3", tags: []string{"2024.1.2", "1.2.4"}, want: "1.2.4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if sv := semverPick(t, tc.current, tc.tags); sv == tc.want {
				t.Fatalf("semver alone also picks %q for %s: not a disagreement", sv, tc.current)
			}
			if got := Select(tc.current, tc.tags, Policy{}); got.Candidate != tc.want {
				t.Errorf("Select(%s, %q) = %q, want %q (the shape rules' pick)", tc.current, tc.tags, got.Candidate, tc.want)
			}
		})
	}
}

// TestSemverOrdersSemverShapedTags: semver-shaped tags are ordered as
// Masterminds/semver orders them, prerelease identifiers by the spec.
func TestSemverOrdersSemverShapedTags(t *testing.T) {
	tags := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
		"1.0.0-rc.1", "1.0.0", "1.0.0-rc1", "1.0.0-rc10", "1.0.0-rc9", "1.0.0-dev", "1.0.0-RC.2", "1.0.0-pre.3",
		"1.0.0-preview", "1.0.0-nightly.20240102", "1.0.1", "1.10.0", "1.9.0", "2.0.0-canary.7",
	}
	for _, a := range tags {
		for _, b := range tags {
			ta, okA := ParseTag(a)
			tb, okB := ParseTag(b)
			if !okA || !okB || !ta.SemverShaped() || !tb.SemverShaped() {
				continue // "1.0.0-alpha.beta": the shape rules read a variant
			}
			want := semver.MustParse(a).Compare(semver.MustParse(b))
			if got := Compare(ta, tb); got != want {
				t.Errorf("Compare(%s, %s) = %d, semver says %d", a, b, got, want)
			}
		}
	}
}

// FuzzSemverOrder: for any two semver-shaped tags of the same shape that are
// valid semantic versions, Compare agrees with Masterminds/semver.
func FuzzSemverOrder(f *testing.F) {
	f.Add("1.0.0-rc.1", "1.0.0-rc.2")
	f.Add("1.0.0-rc10", "1.0.0-rc9")
	f.Add("v2.0.0-beta.11", "v2.0.0-beta.2")
	f.Add("1.0.0-alpha", "1.0.0-alpha.1")
	f.Add("1.0.0-RC.1", "1.0.0-beta")
	f.Add("1.0.0-rc-1", "1.0.0-rc.1")
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, okA := ParseTag(a)
		tb, okB := ParseTag(b)
		if !okA || !okB || !ta.SemverShaped() || !ta.SameShape(tb) || !semverSuffix(ta) || !semverSuffix(tb) {
			return
		}
		va, errA := semver.StrictNewVersion(strings.TrimPrefix(a, "v"))
		vb, errB := semver.StrictNewVersion(strings.TrimPrefix(b, "v"))
		if errA != nil || errB != nil || hugeIdentifier(a) || hugeIdentifier(b) {
			return // not semver, or numbers Masterminds reads as words
		}
		if got, want := Compare(ta, tb), va.Compare(vb); got != want {
			t.Fatalf("Compare(%s, %s) = %d, semver says %d", a, b, got, want)
		}
	})
}

// semverSuffix reports whether the prerelease the shape rules read is the
// one semver reads: none, or one after '-'. Semver reads "1.0.0+rc1" as
// build metadata, "1.0.0-rc+1" as the prerelease "rc" and metadata, and
// "1.0.0_rc1" as no version; the shape rules read a prerelease in each ("rc1",
// "rc+1", "rc1") and order it with the others (see compareSemverPre).
func semverSuffix(t Tag) bool {
	return t.Suffix == "" || t.Suffix[0] == '-' && !strings.ContainsAny(t.Prerelease, "+_")
}

// hugeIdentifier reports a run of digits too long for a uint64, which
// Masterminds/semver compares as text where the spec says number.
func hugeIdentifier(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			if run++; run > 18 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// FuzzConstraintLabel: any tidewatch.tag.constraint value is either a
// policy or a *LabelError naming the label, never a panic; a candidate found
// under it is inside it.
func FuzzConstraintLabel(f *testing.F) {
	for _, s := range []string{"~1.4", ">=2.0, <3", "^2", "1.2.x || 2.x", "1.2 - 1.4", "", "~>1", ">= <", "||", "!=1.2.3-", "^0.0.0-0", "1.2.3 - ", "x.X.*", strings.Repeat("1||", 40), "=v1.2.3-rc.1+b", "~1.4\x00"} {
		f.Add(s, "1.4.2", "1.4.5,1.5.0,2.0.0-rc.1,2.0.0")
	}
	f.Fuzz(func(t *testing.T, label, current, list string) {
		p, err := FromLabels(map[string]string{core.LabelTagConstraint: label})
		if err != nil {
			var le *LabelError
			if !errors.As(err, &le) || le.Label != core.LabelTagConstraint || !strings.Contains(err.Error(), core.LabelTagConstraint) {
				t.Fatalf("FromLabels(constraint %q) = %v, want a *LabelError naming %s", label, err, core.LabelTagConstraint)
			}
			if p.Constraint != nil {
				t.Fatalf("FromLabels(constraint %q) failed but kept a constraint", label)
			}
			return
		}
		got := Select(current, strings.Split(list, ","), p)
		if got.Candidate == "" || p.Constraint == nil {
			return
		}
		tag, _ := ParseTag(got.Candidate)
		if !InConstraint(p.Constraint, tag) {
			t.Fatalf("Select(%s, %q, constraint %q) = %s, which is outside the range", current, list, label, got.Candidate)
		}
	})
}

// TestFromLabelsConstraint: a good constraint label gives a policy, a bad
// one a visible error on that container, naming the label.
func TestFromLabelsConstraint(t *testing.T) {
	tests := []struct {
		value string
		bad   bool
	}{
		{value: "~1.4"},
		{value: " >=2.0, <3 "},
		{value: "^2 || ~1.4"},
		{value: "   "},
		{value: "~>1.4x", bad: true},
		{value: ">= banana", bad: true},
		{value: "1.2.3.4", bad: true},
		{value: strings.Repeat("1.2.3 || ", 100), bad: true},
		{value: "~1.4\n; rm -rf /", bad: true},
	}
	for _, tc := range tests {
		p, err := FromLabels(map[string]string{core.LabelTagConstraint: tc.value})
		var le *LabelError
		switch {
		case tc.bad && (!errors.As(err, &le) || le.Label != core.LabelTagConstraint || le.Problem != "invalid constraint"):
			t.Errorf("FromLabels(%s=%q) = %v, want a LabelError: invalid constraint", core.LabelTagConstraint, tc.value, err)
		case !tc.bad && err != nil:
			t.Errorf("FromLabels(%s=%q) = %v, want no error", core.LabelTagConstraint, tc.value, err)
		case !tc.bad && strings.TrimSpace(tc.value) != "" && p.Constraint == nil:
			t.Errorf("FromLabels(%s=%q).Constraint = nil, want the range", core.LabelTagConstraint, tc.value)
		}
	}
}

// TestSelectConstraintOrderFree: a constraint does not make Select depend on
// the order of the tag list.
func TestSelectConstraintOrderFree(t *testing.T) {
	tags := nginxTags(19)
	p := Policy{Constraint: mustConstraint(t, ">=1.10, <1.15")}
	want := Select("1.5.3-alpine", tags, p)
	if want.Candidate != "1.14.11-alpine" {
		t.Fatalf("Select(1.5.3-alpine, nginx tags, >=1.10, <1.15) = %q, want 1.14.11-alpine", want.Candidate)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		r.Shuffle(len(tags), func(i, j int) { tags[i], tags[j] = tags[j], tags[i] })
		if got := Select("1.5.3-alpine", tags, p); got != want {
			t.Fatalf("Select on a shuffled list = %+v, want %+v", got, want)
		}
	}
}
