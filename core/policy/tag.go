package policy

import (
	"strings"

	"github.com/tidewatch/tidewatch/core"
)

// Tag is a tag read as a version: an optional prefix ("v", or a word such
// as "version-"), one or more
// dot-separated numeric parts (the release), and an optional suffix that
// holds a prerelease and/or a variant. "v1.25.3-rc1-alpine" has Prefix "v",
// Release "1.25.3", Suffix "-rc1-alpine", Prerelease "rc1" and Variant "-alpine".
//
// Prefix + Release + Suffix is always the tag that was parsed.
type Tag struct {
	// Prefix is what comes before the release: "", "v" or "V" right before
	// a digit, or a word of letters and its separator ("version-",
	// "release_", "RELEASE.", "jammy-"). Tags compete only with tags of the
	// same prefix (see SameShape).
	Prefix string
	// Release is the numeric parts as written, dots included: "1.25.3", "20240102".
	Release string
	// Suffix is everything after the release, its leading separator included: "-rc1-alpine". "" when none.
	Suffix string
	// Prerelease is the prerelease segment of the suffix without its leading
	// separator ("rc1", "beta.2", "RC-1"); "" for a release.
	Prerelease string
	// Variant is the suffix without the prerelease segment, separators kept
	// ("-alpine", "-ls100", "-alpine3.19-perl"); "" when none.
	Variant string

	parts int // number of numeric parts in Release
	// class is the number of digits of the first part, leading zeros aside,
	// when it has 4 or more (a year, a date or build stamp); 0 otherwise.
	class int
}

// String returns the tag as parsed.
func (t Tag) String() string { return t.Prefix + t.Release + t.Suffix }

// Len returns the number of numeric parts of the release: 3 for "1.25.3".
func (t Tag) Len() int { return t.parts }

// Part returns numeric part i of the release as written ("25" for part 1 of
// "1.25.3"), or "" when the release has no such part.
func (t Tag) Part(i int) string {
	rest := t.Release
	for n := 0; rest != ""; n++ {
		p, r, _ := strings.Cut(rest, ".")
		if n == i {
			return p
		}
		rest = r
	}
	return ""
}

// IsPrerelease reports whether the tag carries a prerelease segment.
func (t Tag) IsPrerelease() bool { return t.Prerelease != "" }

// ParseTag reads s as a version tag. It reports false for tags that are not
// versions: "latest", "stable-perl", "alpine3.19", "sha256-….sig", "1.2.",
// "1.2a" (a suffix must start with '-', '_', '+', or '.' followed by a letter).
// A word before the release is read as a prefix only when it does not name
// a hash ("sha-1234567" is not a version: the digits are a commit's).
// ParseTag does not allocate, except for a variant on both sides of a
// prerelease ("-alpine-rc1-slim").
func ParseTag(s string) (Tag, bool) {
	var t Tag
	i := prefixEnd(s)
	t.Prefix = s[:i]
	start := i
	for {
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j == i {
			return Tag{}, false
		}
		if t.parts == 0 {
			t.class = numClass(s[i:j])
		}
		t.parts++
		i = j
		if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
			i++
			continue
		}
		break
	}
	t.Release = s[start:i]
	rest := s[i:]
	if rest == "" {
		return t, true
	}
	if len(rest) < 2 {
		return Tag{}, false
	}
	switch rest[0] {
	case '-', '_', '+':
	case '.':
		if !isLetter(rest[1]) {
			return Tag{}, false
		}
	default:
		return Tag{}, false
	}
	for k := 1; k < len(rest); k++ {
		c := rest[k]
		if !isDigit(c) && !isLetter(c) && c != '.' && c != '-' && c != '_' && c != '+' {
			return Tag{}, false
		}
	}
	t.Suffix = rest
	t.Prerelease, t.Variant = splitSuffix(rest)
	return t, true
}

// splitSuffix finds the prerelease segment of suffix (which starts with its
// separator) and returns it, and the suffix without it.
//
// The suffix is cut into segments at '-', '_' and '+'. A segment is a
// prerelease when it is a prerelease word (see preRank) followed only by
// digits and dots ("rc1", "beta.2", "alpha"); the purely numeric segments
// right after it belong to it too ("rc-1"). Only the first such segment counts.
func splitSuffix(suffix string) (pre, variant string) {
	a := 1 // start of the current segment
	for a <= len(suffix) {
		b := a
		for b < len(suffix) && !isSegSep(suffix[b]) {
			b++
		}
		if isPreSegment(suffix[a:b]) {
			end := b
			for end < len(suffix) {
				c := end + 1
				for c < len(suffix) && !isSegSep(suffix[c]) {
					c++
				}
				if !allDigits(suffix[end+1 : c]) {
					break
				}
				end = c
			}
			return suffix[a:end], suffix[:a-1] + suffix[end:]
		}
		a = b + 1
	}
	return "", suffix
}

func isPreSegment(seg string) bool {
	w := leadingLetters(seg)
	if w == "" || preRank(w) < 0 {
		return false
	}
	for k := len(w); k < len(seg); k++ {
		if !isDigit(seg[k]) && seg[k] != '.' {
			return false
		}
	}
	return true
}

// preRank orders prerelease words: development builds < alpha < beta <
// preview < release candidate. It returns -1 for a word that is not a
// prerelease word (that segment is then part of the variant).
func preRank(word string) int {
	if len(word) < 2 || len(word) > len("experimental") {
		return -1
	}
	for _, w := range preWords {
		if len(w.word) == len(word) && strings.EqualFold(w.word, word) {
			return w.rank
		}
	}
	return -1
}

var preWords = []struct {
	word string
	rank int
}{
	{"rc", 4}, {"beta", 2}, {"alpha", 1}, {"dev", 0}, {"pre", 3}, {"preview", 3}, {"cr", 4},
	{"snapshot", 0}, {"nightly", 0}, {"canary", 0}, {"unstable", 0}, {"experimental", 0}, {"next", 0},
}

// numClass returns the class of a first numeric part: 0 below 1000, else its
// number of digits, leading zeros aside (4 for a year, 8 for 20240102).
func numClass(first string) int {
	if n := len(trimZeros(first)); n >= 4 {
		return n
	}
	return 0
}

// SameShape reports whether t and u have the same shape, so that one can
// replace the other: the same prefix, the same number of numeric parts, the
// same variant skeleton (the variant with every digit run read as one
// placeholder and every hash segment as another: "-alpine3.19" and
// "-alpine3.20" are both "-alpine#.#", "-8f4248874-ls197" and
// "-c67dce28e-ls215" both "-<hash>-ls#"; see isHash), and first parts of the
// same class: both below 1000, or both of the same number of digits (2024
// and 2025, 20240102 and 20240215), so "1.2.3" never competes with
// "2024.01.02" and "7" never with "20240102".
// Prereleases do not enter the shape: "2.0.0-rc1" and "2.0.0" have the same shape.
func (t Tag) SameShape(u Tag) bool {
	return t.Prefix == u.Prefix &&
		t.parts == u.parts &&
		t.class == u.class &&
		sameSkeleton(t.Variant, u.Variant)
}

// Compare orders two tags of the same shape by version: -1 when a is older
// than b, 0 when they are equal versions ("1.2" and "1.02"), +1 when a is
// newer. It compares the numeric parts one by one as numbers, then the
// prerelease (a release is newer than any of its prereleases), then the
// numbers of the variant ("-ls100" > "-ls45"), hash segments aside.
//
// Two prereleases of semver-shaped tags (Tag.SemverShaped: "1.2.3-rc.1")
// compare as the semver spec (and github.com/Masterminds/semver/v3) says:
// identifier by identifier, numbers as numbers and below words, words in
// ASCII order, so "beta.11" > "beta.2", "rc" > "dev" > "beta" and "rc9" >
// "rc10". Other prereleases compare by word rank, then their numbers
// ("1.25-rc10" > "1.25-rc9", "-beta" > "-dev"). Tags of different shapes
// get a consistent but meaningless order.
func Compare(a, b Tag) int {
	if c := compareRuns(a.Release, b.Release); c != 0 {
		return c
	}
	switch {
	case a.Prerelease == "" && b.Prerelease != "":
		return 1
	case a.Prerelease != "" && b.Prerelease == "":
		return -1
	case a.Prerelease != "" && a.SemverShaped() && b.SemverShaped():
		if c := compareSemverPre(a.Prerelease, b.Prerelease); c != 0 {
			return c
		}
	case a.Prerelease != "":
		wa, wb := leadingLetters(a.Prerelease), leadingLetters(b.Prerelease)
		if ra, rb := preRank(wa), preRank(wb); ra != rb {
			return cmpInt(ra, rb)
		}
		if c := compareRuns(a.Prerelease[len(wa):], b.Prerelease[len(wb):]); c != 0 {
			return c
		}
	}
	return compareVariants(a.Variant, b.Variant)
}

// SemverShaped reports whether t has the shape of a semantic version:
// exactly three numeric parts and no variant, so that its whole suffix is a
// prerelease ("1.2.3", "v1.2.3-rc.1", "2.0.0-beta.2"). Being a matter of
// shape, it is the same for every tag that may replace t. Semver would read
// "1.2.3-alpine" as a prerelease; the shape rules read "-alpine" as a
// variant, so that tag is not semver-shaped and keeps the shape rules' order.
// A prerelease spelled "+rc1" or "_rc1", which semver would not read as one,
// has the same shape as "-rc1" and is ordered with it by the same rule.
func (t Tag) SemverShaped() bool { return t.parts == 3 && t.Variant == "" }

// compareSemverPre compares two prereleases by the semver spec: identifiers
// split at '.' (and at '_' and '+', which a semver tag cannot hold, so that
// "rc_1" reads as "rc.1"), compared in turn: digits-only identifiers as
// numbers and below the others, the others byte by byte; a list that runs
// out first is the smaller. It does not allocate.
func compareSemverPre(a, b string) int {
	i, j := 0, 0
	for {
		switch {
		case i > len(a) && j > len(b):
			return 0
		case i > len(a):
			return -1
		case j > len(b):
			return 1
		}
		ei, ej := i+identEnd(a[i:]), j+identEnd(b[j:])
		x, y := a[i:ei], b[j:ej]
		switch dx, dy := allDigits(x), allDigits(y); {
		case dx && dy:
			if c := cmpNum(x, y); c != 0 {
				return c
			}
		case dx:
			return -1
		case dy:
			return 1
		default:
			if c := strings.Compare(x, y); c != 0 {
				return c
			}
		}
		i, j = ei+1, ej+1
	}
}

// identEnd returns the index of the first '.', '_' or '+' in s, len(s) when none.
func identEnd(s string) int {
	i := 0
	for i < len(s) && s[i] != '.' && s[i] != '_' && s[i] != '+' {
		i++
	}
	return i
}

// Kind says how far to is from from, two tags of the same shape with to newer:
// major when the first numeric part differs, minor when the second does,
// patch when a later part or a number of the variant (outside hash segments)
// does ("-ls45" → "-ls100"), prerelease when only the prerelease differs ("2.0.0-rc1" →
// "2.0.0-rc2" or "2.0.0"). KindNone when they are equal versions.
func Kind(from, to Tag) core.UpdateKind {
	a, b := from.Release, to.Release
	for i := 0; a != "" || b != ""; i++ {
		var pa, pb string
		pa, a, _ = strings.Cut(a, ".")
		pb, b, _ = strings.Cut(b, ".")
		if cmpNum(pa, pb) != 0 {
			switch i {
			case 0:
				return core.KindMajor
			case 1:
				return core.KindMinor
			default:
				return core.KindPatch
			}
		}
	}
	if compareVariants(from.Variant, to.Variant) != 0 {
		return core.KindPatch
	}
	if Compare(from, to) != 0 {
		return core.KindPrerelease
	}
	return core.KindNone
}

// compareRuns compares the digit runs of a and b in order, as numbers; when
// one runs out first, it is the smaller.
func compareRuns(a, b string) int {
	for {
		var ra, rb string
		ra, a = nextRun(a)
		rb, b = nextRun(b)
		switch {
		case ra == "" && rb == "":
			return 0
		case ra == "":
			return -1
		case rb == "":
			return 1
		}
		if c := cmpNum(ra, rb); c != 0 {
			return c
		}
	}
}

// nextRun returns the first digit run of s and what follows it; "" when s holds no digit.
func nextRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && !isDigit(s[i]) {
		i++
	}
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	return s[i:j], s[j:]
}

// cmpNum compares two digit strings as numbers of any size.
func cmpNum(a, b string) int {
	a, b = trimZeros(a), trimZeros(b)
	if len(a) != len(b) {
		return cmpInt(len(a), len(b))
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func trimZeros(s string) string {
	i := 0
	for i < len(s) && s[i] == '0' {
		i++
	}
	return s[i:]
}

// sameSkeleton reports whether variants a and b are equal once every hash
// segment (see isHash) is read as one placeholder and every other digit run
// as another. Segments are cut at '-', '_', '+' and '.'; the separators must match.
func sameSkeleton(a, b string) bool {
	if a == b {
		return true
	}
	for {
		ea, eb := segEnd(a), segEnd(b)
		sa, sb := a[:ea], b[:eb]
		if ha, hb := isHash(sa), isHash(sb); ha != hb || !ha && !sameDigitSkeleton(sa, sb) {
			return false
		}
		a, b = a[ea:], b[eb:]
		if a == "" || b == "" {
			return a == b
		}
		if a[0] != b[0] {
			return false
		}
		a, b = a[1:], b[1:]
	}
}

// segEnd returns the index of the first separator in s ('-', '_', '+' or '.'), len(s) when none.
func segEnd(s string) int {
	i := 0
	for i < len(s) && !isHashSep(s[i]) {
		i++
	}
	return i
}

// sameDigitSkeleton reports whether a and b are equal once every digit run is read as one placeholder.
func sameDigitSkeleton(a, b string) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		da, db := isDigit(a[i]), isDigit(b[j])
		if da != db {
			return false
		}
		if da {
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			continue
		}
		if a[i] != b[j] {
			return false
		}
		i++
		j++
	}
	return i == len(a) && j == len(b)
}

// compareVariants compares the digit runs of variants a and b in order, as
// numbers, skipping hash segments; when one runs out first, it is the smaller.
func compareVariants(a, b string) int {
	var ra, rb runCursor
	for {
		xa, xb := ra.next(a), rb.next(b)
		switch {
		case xa == "" && xb == "":
			return 0
		case xa == "":
			return -1
		case xb == "":
			return 1
		}
		if c := cmpNum(xa, xb); c != 0 {
			return c
		}
	}
}

// runCursor walks the digit runs of a variant that lie outside hash segments.
type runCursor struct {
	i, end int // position in the variant, end of the current segment
}

// next returns the next digit run of s outside hash segments, "" when none is left.
func (c *runCursor) next(s string) string {
	for {
		if c.i >= c.end {
			for c.i < len(s) && isHashSep(s[c.i]) {
				c.i++
			}
			if c.i >= len(s) {
				return ""
			}
			c.end = c.i + segEnd(s[c.i:])
			if isHash(s[c.i:c.end]) {
				c.i = c.end
				continue
			}
		}
		for c.i < c.end && !isDigit(s[c.i]) {
			c.i++
		}
		if c.i == c.end {
			continue
		}
		j := c.i
		for j < c.end && isDigit(s[j]) {
			j++
		}
		run := s[c.i:j]
		c.i = j
		return run
	}
}

// isHash reports whether a variant segment is a commit hash: 7 to 40
// characters of 0-9 and a-f (lower case) with at least one digit and at
// least one letter, optionally after a "g" (git describe: "g3c5d9a1").
// "8f4248874" and "c67dce28e" are hashes; "cafe" (no digit), "ls100",
// "alpine3", "debian12", "1234567" (no letter) and "ABCDEF1" are not.
func isHash(seg string) bool {
	if len(seg) > 7 && seg[0] == 'g' {
		seg = seg[1:]
	}
	if len(seg) < 7 || len(seg) > 40 {
		return false
	}
	digit, letter := false, false
	for i := 0; i < len(seg); i++ {
		switch c := seg[i]; {
		case isDigit(c):
			digit = true
		case c >= 'a' && c <= 'f':
			letter = true
		default:
			return false
		}
	}
	return digit && letter
}

func leadingLetters(s string) string {
	i := 0
	for i < len(s) && isLetter(s[i]) {
		i++
	}
	return s[:i]
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isSegSep(c byte) bool  { return c == '-' || c == '_' || c == '+' }
func isHashSep(c byte) bool { return c == '-' || c == '_' || c == '+' || c == '.' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }
func isLetter(c byte) bool  { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// prefixEnd returns the length of the prefix of tag s (see Tag.Prefix): 1
// for "v" or "V" before a digit; the word and its separator for a word of
// two or more characters, a letter then letters and digits, followed by '-',
// '_' or '.' and a digit ("version-1.2.3", "RELEASE.2024-01-16T16-07-38Z",
// "amd64-1.2.4-ls1"), where a word holding a digit takes only '-' or '_'
// ("alpine3.19" stays a word, not the release 19 of "alpine3."); 0
// otherwise. A word that names a hash or a commit (hashWords) is no prefix,
// so the tag is not a version.
func prefixEnd(s string) int {
	if len(s) > 1 && (s[0] == 'v' || s[0] == 'V') && isDigit(s[1]) {
		return 1
	}
	if s == "" || !isLetter(s[0]) {
		return 0
	}
	n, digits := 1, false
	for n < len(s) && (isLetter(s[n]) || isDigit(s[n])) {
		digits = digits || isDigit(s[n])
		n++
	}
	if n < 2 || n+1 >= len(s) || !isDigit(s[n+1]) {
		return 0
	}
	switch {
	case s[n] == '-' || s[n] == '_':
	case s[n] == '.' && !digits:
	default:
		return 0
	}
	for _, w := range hashWords {
		if strings.EqualFold(s[:n], w) {
			return 0
		}
	}
	return n + 1
}

// hashWords are the words that, before a separator, announce a commit or a
// content hash rather than a version: "sha-8f42488", "git-1234567".
var hashWords = []string{"sha", "sha1", "sha256", "git", "commit", "hash", "rev", "ref", "digest"}
