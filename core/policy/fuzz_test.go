package policy

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/core"
)

func FuzzParseTag(f *testing.F) {
	for _, s := range []string{
		"1", "1.25.3", "v1.2.3", "1.25-alpine3.19-perl", "2.0.0-rc1-alpine", "2.0.0-alpine-rc1-slim",
		"1.0.0-RC-1-2", "2.0.0.RC1", "1.2.3+build.5", "20240102", "latest", "1..2", "v", "1.2-",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag, ok := ParseTag(s)
		if !ok {
			if tag != (Tag{}) {
				t.Fatalf("ParseTag(%q) = %+v, false; want the zero Tag", s, tag)
			}
			return
		}
		if tag.String() != s {
			t.Fatalf("ParseTag(%q).String() = %q, want the input", s, tag.String())
		}
		if n := strings.Count(tag.Release, ".") + 1; tag.Len() != n {
			t.Fatalf("ParseTag(%q).Len() = %d, want %d", s, tag.Len(), n)
		}
		if !strings.Contains(tag.Suffix, tag.Prerelease) || len(tag.Variant)+len(tag.Prerelease) > len(tag.Suffix) {
			t.Fatalf("ParseTag(%q) = %+v: prerelease and variant do not come from the suffix", s, tag)
		}
		if Compare(tag, tag) != 0 || !tag.SameShape(tag) || Kind(tag, tag) != core.KindNone {
			t.Fatalf("ParseTag(%q) is not equal to itself", s)
		}
	})
}

// eligible reports whether raw may replace cur under p, by the rules of Select, written out plainly.
func eligible(cur Tag, raw string, p Policy) (Tag, bool) {
	t, ok := ParseTag(p.Transform.Apply(raw))
	if !ok || !cur.SameShape(t) || t.IsPrerelease() && !cur.IsPrerelease() || Compare(t, cur) <= 0 {
		return Tag{}, false
	}
	if p.Include != nil && !p.Include.MatchString(raw) || p.Exclude != nil && p.Exclude.MatchString(raw) {
		return Tag{}, false
	}
	return t, true
}

func FuzzSelect(f *testing.F) {
	f.Add("1.25.0", "1.25.1,1.26.0,2.0.0,1.26,latest", uint64(1))
	f.Add("1.25-alpine", "1.26-alpine,1.26.0,1.26-bookworm,1.26", uint64(2))
	f.Add("v1.2.3", "1.3.0,v1.3.0,V1.4.0", uint64(3))
	f.Add("1.2.3-ls45", "1.2.3-ls100,1.2.3-ls9,1.2.4-ls1", uint64(4))
	f.Add("2.0.0-rc1", "2.0.0-rc2,2.0.0,2.1.0-beta.1,2.0.0-beta", uint64(5))
	f.Add("1.1", "1.2,1.02,1.002,01.2", uint64(6))
	f.Add("20240102", "20240215,7,2024.02.01", uint64(7))
	f.Add("latest", "1.0,latest", uint64(8))
	f.Add("1.2-3", "1.2-4,1.3-1,1.2.5", uint64(9))
	policies := []Policy{
		{},
		{Exclude: regexp.MustCompile(`rc|alpine`)},
		{Include: regexp.MustCompile(`^v?1\.`)},
		{Transform: &Transform{re: regexp.MustCompile(`^(\d+)\.(\d+)-(\d+)$`), repl: "$1.$2.$3"}},
	}
	f.Fuzz(func(t *testing.T, current, list string, seed uint64) {
		tags := strings.Split(list, ",")
		p := policies[seed%uint64(len(policies))]
		got := Select(current, tags, p)

		cur, ok := ParseTag(p.Transform.Apply(current))
		if !ok {
			if got != (Selection{}) {
				t.Fatalf("Select(%q, %q) = %+v, want nothing for a non-versioned tag", current, tags, got)
			}
			return
		}
		if !got.Versioned {
			t.Fatalf("Select(%q, %q).Versioned = false, want true", current, tags)
		}
		// Oracle: the newest eligible tag, by a plain scan.
		var newest *Tag
		for _, raw := range tags {
			if tag, ok := eligible(cur, raw, p); ok && (newest == nil || Compare(tag, *newest) > 0) {
				newest = &tag
			}
		}
		if got.Candidate == "" {
			if newest != nil || got.Kind != core.KindNone {
				t.Fatalf("Select(%q, %q) = %+v, want %s", current, tags, got, newest)
			}
		} else {
			if !containsTag(tags, got.Candidate) {
				t.Fatalf("Select(%q, %q) = %q, which is not in the list", current, tags, got.Candidate)
			}
			cand, ok := eligible(cur, got.Candidate, p)
			if !ok {
				t.Fatalf("Select(%q, %q) = %q, which is not an eligible candidate", current, tags, got.Candidate)
			}
			if newest == nil || Compare(cand, *newest) != 0 {
				t.Fatalf("Select(%q, %q) = %q, want a tag equal to %s", current, tags, got.Candidate, newest)
			}
			if k := Kind(cur, cand); got.Kind != k || k == core.KindNone {
				t.Fatalf("Select(%q, %q).Kind = %q, want %q (not none)", current, tags, got.Kind, k)
			}
			if again := Select(got.Candidate, tags, p); again.Candidate != "" {
				t.Fatalf("Select(%q, %q) = %q, but Select from it offers %q", current, tags, got.Candidate, again.Candidate)
			}
		}
		// The order of the list does not matter.
		shuffled := append([]string(nil), tags...)
		r := rand.New(rand.NewPCG(seed, seed>>32))
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if again := Select(current, shuffled, p); again != got {
			t.Fatalf("Select(%q, %q) = %+v, but %+v for the list %q", current, tags, got, again, shuffled)
		}
	})
}

func containsTag(tags []string, s string) bool {
	for _, t := range tags {
		if t == s {
			return true
		}
	}
	return false
}
