package policy

import (
	"errors"
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
		"1.32.5.7349-8f4248874-ls197", "2024.01.02", "v0.4.0-12-g3c5d9a1", "1.2.3+8f42488.1",
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
		// Another hash in place of each hash segment keeps the shape and the version.
		if other, ok := ParseTag(rehash(s)); ok && other.Variant != "" {
			if !tag.SameShape(other) || Compare(tag, other) != 0 {
				t.Fatalf("ParseTag(%q) and ParseTag(%q) differ only by hashes, but SameShape = %v, Compare = %d",
					s, other.String(), tag.SameShape(other), Compare(tag, other))
			}
		}
	})
}

// rehash returns s with every hash-like segment of its suffix (see isHash)
// replaced by "0000000a", a different hash.
func rehash(s string) string {
	tag, ok := ParseTag(s)
	if !ok || tag.Prerelease != "" {
		return s
	}
	var b strings.Builder
	b.WriteString(tag.Prefix + tag.Release)
	v := tag.Suffix
	for v != "" {
		e := segEnd(v[1:]) + 1 // v starts with a separator
		if seg := v[1:e]; isHash(seg) {
			b.WriteString(v[:1] + "0000000a")
		} else {
			b.WriteString(v[:e])
		}
		v = v[e:]
	}
	return b.String()
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
	if p.Constraint != nil && !InConstraint(p.Constraint, t) {
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
	f.Add("1.32.5.7349-8f4248874-ls197", "1.40.2.8395-c67dce28e-ls215,1.32.5.7349-8f4248874-ls196,1.32.5.7349-0123abc-ls197", uint64(10))
	f.Add("1.2.3", "2024.01.02,1.2.4,999.0.0,1000.0.0", uint64(11))
	f.Add("2024.01.02", "2024.02.01,2025.01.01,20250101,1.2.4", uint64(12))
	f.Add("v0.4.0-12-g3c5d9a1", "v0.4.0-14-g0a1b2c3,v0.4.0-14", uint64(13))
	f.Add("1.0-cafe", "1.1-beef,1.1-abc1234,1.1-cafe", uint64(14))
	f.Add("2.0.0-rc.1", "2.0.0-rc.2,2.0.0-rc10,2.0.0-rc9,2.0.0-rc_3,2.1.0,3.0.0", uint64(4))
	f.Add("2.0.0-rc9", "2.0.0-rc10,2.0.0-dev,2.0.0-RC9,2.0.0-rc.9", uint64(5))
	policies := []Policy{
		{},
		{Exclude: regexp.MustCompile(`rc|alpine`)},
		{Include: regexp.MustCompile(`^v?1\.`)},
		{Transform: &Transform{re: regexp.MustCompile(`^(\d+)\.(\d+)-(\d+)$`), repl: "$1.$2.$3"}},
		{Constraint: mustConstraint(f, "~1.2 || >=2.0.0-0, <3")},
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
		// Shape is symmetric, Compare antisymmetric, and Kind is none only for equal versions.
		for _, raw := range tags {
			tag, ok := ParseTag(p.Transform.Apply(raw))
			if !ok {
				continue
			}
			same := cur.SameShape(tag)
			if tag.SameShape(cur) != same {
				t.Fatalf("ParseTag(%q).SameShape(%q) = %v, but not the other way round", current, raw, same)
			}
			if !same {
				continue
			}
			c := Compare(cur, tag)
			if Compare(tag, cur) != -c {
				t.Fatalf("Compare(%q, %q) = %d, but Compare(%q, %q) = %d", current, raw, c, raw, current, Compare(tag, cur))
			}
			if c < 0 && Kind(cur, tag) == core.KindNone || c == 0 && Kind(cur, tag) != core.KindNone {
				t.Fatalf("Compare(%q, %q) = %d, but Kind = %q", current, raw, c, Kind(cur, tag))
			}
			if firstClass(cur) != firstClass(tag) {
				t.Fatalf("ParseTag(%q).SameShape(%q) = true, but their first parts are %q and %q", current, raw, cur.Part(0), tag.Part(0))
			}
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

// firstClass reads a tag's first part as a number: below 1000 it is 0,
// else its number of digits (strconv-free, so numbers of any length work).
func firstClass(t Tag) int {
	n := strings.TrimLeft(t.Part(0), "0")
	if len(n) < 4 {
		return 0
	}
	return len(n)
}

func containsTag(tags []string, s string) bool {
	for _, t := range tags {
		if t == s {
			return true
		}
	}
	return false
}

func FuzzLinkTemplate(f *testing.F) {
	for _, s := range []string{
		"https://example.com/{{.Major}}.{{.Minor}}", "{{if .Prerelease}}-{{.Prerelease}}{{else}}x{{end}}",
		"{{range 100000000000}}{{end}}", "{{with .Major}}{{.}}{{end}}", `{{printf "%s" .Major}}`, "{{$x := .Major}}{{$x}}",
		`{{define "x"}}{{.Major}}{{end}}{{template "x" .}}`, "{{.Major | print}}", "{{if .Image}}{{else if .Major}}{{end}}",
	} {
		f.Add(s)
	}
	long := strings.Repeat("x", 300)
	d := LinkData{Image: long, Current: long, Candidate: long, Major: long, Minor: long, Patch: long, Prerelease: long}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := FromLabels(map[string]string{core.LabelLinkTemplate: s})
		if err != nil {
			if p.Link != nil {
				t.Fatalf("FromLabels(link=%q) = %v, but Link is set", s, err)
			}
			return
		}
		if p.Link == nil {
			if s != "" {
				t.Fatalf("FromLabels(link=%q) = no error and no Link", s)
			}
			return
		}
		got, err := p.RenderLink(d)
		if err != nil && !errors.Is(err, ErrLinkTooLong) {
			t.Fatalf("RenderLink(%q) = %v, want a link or ErrLinkTooLong", s, err)
		}
		if len(got) > MaxLinkLen {
			t.Fatalf("RenderLink(%q) = %d bytes, want at most %d", s, len(got), MaxLinkLen)
		}
		for _, word := range []string{"range", "with", "define", "block", "template", "$", "|", "print", "len", "index", "call"} {
			if strings.Contains(p.Link.Root.String(), "{{"+word) {
				t.Fatalf("FromLabels(link=%q) accepted %q", s, word)
			}
		}
	})
}
