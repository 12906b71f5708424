// Package policy decides, without any I/O, which tag a container should be
// offered: it reads a container's watch policy from its labels (FromLabels)
// and picks the best candidate from a repository's tag list (Select).
//
// # Tags
//
// A tag is a version when it is, in order (see ParseTag):
//   - an optional prefix: "v" or "V", or a word (a letter, then letters and
//     digits) and its separator '-' or '_', or '.' after a word without
//     digits ("version-", "jammy-", "amd64-", "RELEASE."), unless the word
//     names a hash ("sha-", "git-", "commit-": see hashWords);
//   - one or more numeric parts separated by dots: "1", "1.25", "1.2.3.4", "2024.01.02", "20240102";
//   - an optional suffix starting with '-', '_', '+', or '.' followed by a
//     letter, and made of letters, digits and ". - _ +".
//
// Anything else is not a version: "latest", "stable-perl", "alpine3.19",
// "noble", "1.2a", "sha-1234567". Such a tag is watched by its digest (by
// default) and never offered a different tag. A transform makes it a
// version: "^build(\d+)$ => $1".
//
// The suffix is cut into segments at '-', '_' and '+'. The first segment that
// is a prerelease word followed only by digits and dots ("rc1", "beta.2",
// "alpha", "RC.3"), together with the purely numeric segments right after it
// ("rc-1"), is the prerelease. The prerelease words, oldest first, are:
// dev, snapshot, nightly, canary, unstable, experimental, next (all equal);
// alpha; beta; pre, preview (equal); rc, cr (equal); case does not matter.
// The rest of the suffix is the variant: "-alpine", "-bookworm", "-ls100",
// "-alpine3.19-perl". So "2.0.0-rc1-alpine" is a prerelease of the
// "-alpine" variant; "1.2.3-1" (a package revision) is a variant. semver's
// rule, where any suffix is a prerelease, would make "-alpine" a prerelease.
//
// # Shape
//
// A candidate must have the running tag's shape (Tag.SameShape):
//   - the same prefix: "v1.2.3" is offered "v1.3.0", never "1.3.0";
//     "version-1.2.3" is offered "version-1.2.4", never "release-1.3.0";
//   - the same number of numeric parts: "1.25" is offered "1.26", not
//     "1.26.1"; "1.25.0" is offered "1.26.0", not "1.26";
//   - the same variant skeleton: the variant cut into segments at '-', '_',
//     '+' and '.', each hash segment read as one placeholder and each other
//     digit run as another. "-alpine3.19" and "-alpine3.20" are both
//     "-alpine#.#", so "1.25-alpine3.19" may go to "1.25-alpine3.20" or
//     "1.26-alpine3.19", but "1.25-alpine" is never offered "1.26-bookworm",
//     "1.26-alpine3.19" or "1.26", and "10.11.6-jammy" is never offered
//     "11.4.3-noble". The skeleton's letters and separators compare exactly,
//     case included;
//   - a hash segment is a commit hash: 7 to 40 characters of 0-9 and a-f,
//     lower case, with at least one digit and at least one letter, optionally
//     after a "g" (git describe). "8f4248874" and "g3c5d9a1" are hashes;
//     "cafe", "deadbeef" (no digit), "1234567" (no letter), "ls100",
//     "debian12", "alpine3" and "ABCDEF1" are not. So linuxserver's
//     "1.32.5.7349-8f4248874-ls197" is offered "1.40.2.8395-c67dce28e-ls215".
//     A hash only matches a hash, never another word;
//   - first parts of the same class. A first part below 1000 is a version
//     number; one of 4 digits or more (leading zeros aside) is a year, a date
//     or a build stamp, and competes only with first parts of as many
//     digits. So "1.2.3" is never offered "2024.01.02", "7" never "20240102",
//     "2024" never "20240102", "20240102" never "202401021530" (a longer
//     stamp that is not newer). The price: a version number that grows from
//     999 to 1000, or a build number from 9999 to 10000, is not offered
//     (use a transform); and "1000.0" is read as a year, offered "2024.01".
//
// A prerelease is offered only to a container that runs a prerelease.
//
// Semver and the shape rules may disagree on what a tag is; the rule that
// keeps the running tag's shape wins. Semver reads "1.2.3-alpine", "1.2.3-1"
// and "1.2.3-ls100" as prereleases and would offer "1.2.4" for them; here
// they are variants, offered only "1.2.4-alpine", "1.2.3-2", "1.2.3-ls101"
// (numbers compared as numbers, where semver would put "ls99" above
// "ls100"). Semver strips a "v" and pads "1.2" to 1.2.0; here the prefix and
// the number of parts stay.
//
// # Order
//
// Versions compare numerically, never lexically ("1.10" > "1.9", numbers of
// any length): first the numeric parts one by one; then the prerelease (a
// release is newer than its prereleases). Two prereleases of semver-shaped
// tags (three numeric parts and no variant: "1.2.3-rc.1", Tag.SemverShaped)
// compare as the semver spec and github.com/Masterminds/semver/v3 say:
// identifier by identifier (split at '.'), numbers as numbers and below
// words, words in ASCII order: "rc.10" > "rc.2" > "rc" > "dev" > "beta.11" >
// "beta.2", and "rc9" > "rc10" (one word each; semver projects write
// "rc.10"). Other prereleases compare by word rank, then by their numbers:
// "1.25-rc10" > "1.25-rc2" > "1.25-rc" > "1.25-beta" > "1.25-dev";
// then the numbers of the variant, in order ("-ls100" > "-ls45",
// "-alpine3.20" > "-alpine3.19"), hash segments aside: two tags that differ
// only by a hash are equal versions, so neither is offered for the other. Only strictly newer versions are offered.
// Equal versions written differently ("1.2" and "1.02") are a tie, broken
// for the shortest tag, then the first in byte order, so Select does not
// depend on the order of the tag list.
//
// # Kind
//
// The kind of an update (Kind) is major when the first numeric part changed,
// minor when the second did, patch when any later numeric part or a number of
// the variant outside hashes did ("1.2.3-ls45" → "1.2.3-ls100"), and prerelease when only
// the prerelease changed: "2.0.0-rc1" → "2.0.0-rc2", and also "2.0.0-rc1" →
// "2.0.0", the release of the prerelease one runs. A newer version, with or
// without prerelease, is major, minor or patch by its numeric parts.
// Date-like and 4-part tags follow the same rule: "2024.01.02" →
// "2024.02.01" is minor, "20240102" → "20240215" is major.
//
// # Labels and defaults
//
//   - tidewatch.tag.include (default: none): a Go regular expression each
//     candidate tag, as written in the registry, must match.
//   - tidewatch.tag.exclude (default: none): a Go regular expression a
//     candidate tag, as written, must not match.
//   - tidewatch.tag.transform (default: none): "REGEX => REPLACEMENT"; every
//     tag, the running one included, whose text the expression matches is
//     replaced, before parsing, by the replacement with $1, ${1} or ${name}
//     filled from the match; other tags are kept as they are. The candidate
//     returned is the tag as written, not its transformed form.
//   - tidewatch.tag.constraint (default: none): a semver range in
//     github.com/Masterminds/semver/v3's syntax ("~1.4", "^2", ">=2.0, <3",
//     "1.2 - 1.4", "1.2.x || 2.x"); only candidates inside it are offered.
//     A candidate is read as a semver by the shape rules (see InConstraint):
//     its first three numeric parts, its prerelease, not its variant, so
//     "1.4.5-alpine" is inside "~1.4". As in that library, a prerelease is
//     inside only a range that names one (">=2.0.0-0"). A bad range is the
//     container's error, naming the label.
//   - tidewatch.watch.digest (default: auto): "true" watches the running
//     tag's digest always, "false" never; unset, only for tags that are not
//     versions.
//   - tidewatch.link.template (default: none): a text/template over LinkData
//     that may only fill in fields. It may hold text, fields printed as they
//     are ({{.Candidate}}, {{.Major}}…), and {{if .Field}} … {{else if
//     .Field}} … {{else}} … {{end}} on a field; nothing else: no function
//     (builtins print, printf, len, index, call, urlquery… included), pipe,
//     variable, literal, {{.}}, range, with, define, block or template. So
//     nothing from a label runs a loop or a function, and a label is checked
//     when read: the parse tree is walked, then the template is rendered once
//     with sample data. A rendered link is at most MaxLinkLen (2 KiB) bytes;
//     past that RenderLink fails with ErrLinkTooLong.
//
// An absent or empty label keeps its default. FromLabels reports every bad
// label at once.
package policy
