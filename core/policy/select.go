package policy

import "github.com/tidewatch/tidewatch/core"

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
// current is one, it is strictly newer than current (see Compare), and, as
// written, it matches p.Include and does not match p.Exclude. Among equal
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
		// The regular expressions cost the most: they run last, on tags that would win.
		if p.Include != nil && !p.Include.MatchString(raw) || p.Exclude != nil && p.Exclude.MatchString(raw) {
			continue
		}
		best, bestRaw, found = t, raw, true
	}
	if !found {
		return Selection{Versioned: true}
	}
	return Selection{Candidate: bestRaw, Kind: Kind(cur, best), Versioned: true}
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
