// Package policy decides, without any I/O, which tag a container should be
// offered: it reads a container's watch policy from its labels (FromLabels)
// and picks the best candidate from a repository's tag list (Select).
//
// # Tags
//
// A tag is a version when it is, in order (see ParseTag):
//   - an optional prefix "v" or "V";
//   - one or more numeric parts separated by dots: "1", "1.25", "1.2.3.4", "2024.01.02", "20240102";
//   - an optional suffix starting with '-', '_', '+', or '.' followed by a
//     letter, and made of letters, digits and ". - _ +".
//
// Anything else is not a version: "latest", "stable-perl", "alpine3.19",
// "noble", "1.2a". Such a tag is watched by its digest (by default) and never
// offered a different tag.
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
//   - the same number of numeric parts: "1.25" is offered "1.26", not
//     "1.26.1"; "1.25.0" is offered "1.26.0", not "1.26";
//   - the same variant skeleton, the variant with each digit run read as one
//     placeholder: "-alpine3.19" and "-alpine3.20" are both "-alpine#.#", so
//     "1.25-alpine3.19" may go to "1.25-alpine3.20" or "1.26-alpine3.19",
//     but "1.25-alpine" is never offered "1.26-bookworm", "1.26-alpine3.19"
//     or "1.26". The skeleton's letters compare exactly, case included;
//   - a first part of 8 digits or more (a date stamp such as 20240102, or a
//     build number) only on both sides, so "7" is never offered "20240102".
//
// A prerelease is offered only to a container that runs a prerelease.
//
// # Order
//
// Versions compare numerically, never lexically ("1.10" > "1.9", numbers of
// any length): first the numeric parts one by one; then the prerelease (a
// release is newer than its prereleases; two prereleases compare by word
// rank, then by their numbers: "rc2" > "rc1" > "rc" > "beta.10" > "beta.2");
// then the numbers of the variant, in order ("-ls100" > "-ls45",
// "-alpine3.20" > "-alpine3.19"). Only strictly newer versions are offered.
// Equal versions written differently ("1.2" and "1.02") are a tie, broken
// for the shortest tag, then the first in byte order, so Select does not
// depend on the order of the tag list.
//
// # Kind
//
// The kind of an update (Kind) is major when the first numeric part changed,
// minor when the second did, patch when any later numeric part or a number of
// the variant did ("1.2.3-ls45" → "1.2.3-ls100"), and prerelease when only
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
//   - tidewatch.watch.digest (default: auto): "true" watches the running
//     tag's digest always, "false" never; unset, only for tags that are not
//     versions.
//   - tidewatch.link.template (default: none): a text/template rendered with
//     LinkData, with missingkey=error; it is rendered once with sample data
//     when read, so a misspelt field is reported with the labels.
//
// An absent or empty label keeps its default. FromLabels reports every bad
// label at once.
package policy
