package policy

import (
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/tidewatch/tidewatch/core"
)

// Selection is what Select found for one container.
type Selection struct {
	// Candidate is the best tag as written in the registry's list, "" when none is newer.
	Candidate string
	// Kind is how far Candidate is from the running tag; KindNone when there is no candidate.
	Kind core.UpdateKind
	// Versioned reports whether the running tag parsed as a version (after
	// the transform). When false the container is watched by digest, if at all.
	Versioned bool
}

// Select picks, among tags, the newest one that may replace current under p.
// A tag is a candidate when, after p.Transform, it parses as a version of the
// same shape as current (see Tag.SameShape), it is not a prerelease unless
// current is one, it is strictly newer than current (see Compare), as
// written it matches p.Include and does not match p.Exclude, and, read as a
// semver (see InConstraint), it is inside p.Constraint. Among equal
// versions ("1.2" and "1.02") the shortest tag wins, then the one first in
// byte order, so the result does not depend on the order of tags.
func Select(current string, tags []string, p Policy) Selection {
	cur, ok := ParseTag(p.Transform.Apply(current))
	if !ok {
		return Selection{}
	}
	var (
		best    Tag
		bestRaw string
		found   bool
	)
	for _, raw := range tags {
		if found && raw == bestRaw {
			continue
		}
		t, ok := ParseTag(p.Transform.Apply(raw))
		if !ok || !cur.SameShape(t) || (t.Prerelease != "" && cur.Prerelease == "") {
			continue
		}
		if Compare(t, cur) <= 0 {
			continue
		}
		if found {
			c := Compare(t, best)
			if c < 0 || c == 0 && !shorterOrFirst(raw, bestRaw) {
				continue
			}
		}
		// The regular expressions and the constraint cost the most: they run
		// last, on tags that would win.
		if p.Include != nil && !p.Include.MatchString(raw) || p.Exclude != nil && p.Exclude.MatchString(raw) {
			continue
		}
		if p.Constraint != nil && !InConstraint(p.Constraint, t) {
			continue
		}
		best, bestRaw, found = t, raw, true
	}
	if !found {
		return Selection{Versioned: true}
	}
	return Selection{Candidate: bestRaw, Kind: Kind(cur, best), Versioned: true}
}

// InConstraint reports whether t, read as a semver, is inside c. The shape
// rules say what the version is: its first three numeric parts are major,
// minor and patch (missing ones are 0, later ones are left out: "1.25" is
// 1.25.0, "1.2.3.4" is 1.2.3, "20240102" is 20240102.0.0), its prerelease
// is the prerelease the shape rules find ("2.0.0-rc1-alpine" is 2.0.0-rc1),
// and its variant does not count ("1.4.2-alpine" is 1.4.2, inside "~1.4",
// where semver alone would read "-alpine" as a prerelease and leave it out).
// As Masterminds/semver reads a range, a prerelease is inside only a range
// that names a prerelease (">=2.0.0-0"). A part too large for a uint64 is
// outside every range.
func InConstraint(c *semver.Constraints, t Tag) bool {
	var n [3]uint64
	rest := t.Release
	for i := 0; i < 3 && rest != ""; i++ {
		var part string
		part, rest, _ = strings.Cut(rest, ".")
		v, err := strconv.ParseUint(part, 10, 64)
		if err != nil {
			return false
		}
		n[i] = v
	}
	return c.Check(semver.New(n[0], n[1], n[2], t.Prerelease, ""))
}

// shorterOrFirst breaks a tie between two tags of equal versions.
func shorterOrFirst(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// WatchesTags reports whether the running tag current is a version (after the
// transform), so the repository's tag list is needed to find a newer one.
func (p Policy) WatchesTags(current string) bool {
	_, ok := ParseTag(p.Transform.Apply(current))
	return ok
}

// WatchesDigest reports whether the digest of the running tag current is
// watched: always with DigestOn, never with DigestOff, and with DigestAuto
// only when current is not a version ("latest", "stable", "main", "alpine").
func (p Policy) WatchesDigest(current string) bool {
	switch p.Digest {
	case DigestOn:
		return true
	case DigestOff:
		return false
	}
	return !p.WatchesTags(current)
}
