package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tidewatch/tidewatch/core"
)

func TestParseTag(t *testing.T) {
	tests := []struct {
		in    string
		want  Tag
		parts int
	}{
		{"1", Tag{Release: "1"}, 1},
		{"1.25", Tag{Release: "1.25"}, 2},
		{"1.25.3", Tag{Release: "1.25.3"}, 3},
		{"v1.2.3", Tag{Prefix: "v", Release: "1.2.3"}, 3},
		{"V1.2.3", Tag{Prefix: "V", Release: "1.2.3"}, 3},
		{"1.2.3.4", Tag{Release: "1.2.3.4"}, 4},
		{"2024.01.02", Tag{Release: "2024.01.02"}, 3},
		{"20240102", Tag{Release: "20240102"}, 1},
		{"1.25-alpine", Tag{Release: "1.25", Suffix: "-alpine", Variant: "-alpine"}, 2},
		{"1.25.3-alpine3.19-perl", Tag{Release: "1.25.3", Suffix: "-alpine3.19-perl", Variant: "-alpine3.19-perl"}, 3},
		{"1.2.3-ls100", Tag{Release: "1.2.3", Suffix: "-ls100", Variant: "-ls100"}, 3},
		{"8.0.35-1", Tag{Release: "8.0.35", Suffix: "-1", Variant: "-1"}, 3},
		{"2.0.0-rc1", Tag{Release: "2.0.0", Suffix: "-rc1", Prerelease: "rc1"}, 3},
		{"2.0.0-beta.2", Tag{Release: "2.0.0", Suffix: "-beta.2", Prerelease: "beta.2"}, 3},
		{"1.0.0-alpha", Tag{Release: "1.0.0", Suffix: "-alpha", Prerelease: "alpha"}, 3},
		{"1.0.0-RC-1", Tag{Release: "1.0.0", Suffix: "-RC-1", Prerelease: "RC-1"}, 3},
		{"2.0.0.RC1", Tag{Release: "2.0.0", Suffix: ".RC1", Prerelease: "RC1"}, 3},
		{"2.0.0-rc1-alpine", Tag{Release: "2.0.0", Suffix: "-rc1-alpine", Prerelease: "rc1", Variant: "-alpine"}, 3},
		{"2.0.0-alpine-rc1", Tag{Release: "2.0.0", Suffix: "-alpine-rc1", Prerelease: "rc1", Variant: "-alpine"}, 3},
		{"2.0.0-alpine-rc1-slim", Tag{Release: "2.0.0", Suffix: "-alpine-rc1-slim", Prerelease: "rc1", Variant: "-alpine-slim"}, 3},
		{"1.0.0-dev", Tag{Release: "1.0.0", Suffix: "-dev", Prerelease: "dev"}, 3},
		{"1.0.0-develop", Tag{Release: "1.0.0", Suffix: "-develop", Variant: "-develop"}, 3},
		{"1.0.0-rcfoo", Tag{Release: "1.0.0", Suffix: "-rcfoo", Variant: "-rcfoo"}, 3},
		{"1.0.0-beta.x", Tag{Release: "1.0.0", Suffix: "-beta.x", Variant: "-beta.x"}, 3},
		{"1.2.3_1", Tag{Release: "1.2.3", Suffix: "_1", Variant: "_1"}, 3},
		{"1.2.3+build.5", Tag{Release: "1.2.3", Suffix: "+build.5", Variant: "+build.5"}, 3},
		{"version-1.2.3", Tag{Prefix: "version-", Release: "1.2.3"}, 3},
		{"release_4.0.0-rc2", Tag{Prefix: "release_", Release: "4.0.0", Suffix: "-rc2", Prerelease: "rc2"}, 3},
		{"jammy-20240111", Tag{Prefix: "jammy-", Release: "20240111"}, 1},
		{"RELEASE.2024-01-16T16-07-38Z", Tag{Prefix: "RELEASE.", Release: "2024", Suffix: "-01-16T16-07-38Z", Variant: "-01-16T16-07-38Z"}, 1},
		{"va-1.0", Tag{Prefix: "va-", Release: "1.0"}, 2},
		{"amd64-1.2.4-ls1", Tag{Prefix: "amd64-", Release: "1.2.4", Suffix: "-ls1", Variant: "-ls1"}, 3},
		{"arm32v7_2.0", Tag{Prefix: "arm32v7_", Release: "2.0"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := ParseTag(tc.in)
			if !ok {
				t.Fatalf("ParseTag(%q) = not a version, want a version", tc.in)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreUnexported(Tag{})); diff != "" {
				t.Errorf("ParseTag(%q) mismatch (-want +got):\n%s", tc.in, diff)
			}
			if got.Len() != tc.parts {
				t.Errorf("ParseTag(%q).Len() = %d, want %d", tc.in, got.Len(), tc.parts)
			}
			if got.String() != tc.in {
				t.Errorf("ParseTag(%q).String() = %q, want the input", tc.in, got.String())
			}
		})
	}
}

func TestParseTagNotVersions(t *testing.T) {
	for _, in := range []string{
		"", "latest", "stable", "main", "alpine", "noble", "mainline", "stable-perl",
		"alpine3.19", "sha256-0123abcd.sig", "v", "v.1", ".1", "1.", "1..2", "1.2.",
		"1.2a", "1234abc", "1.2-", "1.2.-x", "1.2_", "x1.2", "vv1.2", "1.2-al pine", "1.2-é",
		"sha-1234567", "SHA256-1234", "git-1234567", "commit_1234", "r-1.2", "v-1.2", "version-", "version--1.2",
		"version-x1.2", "ver sion-1.2", "php8.2-apache", "version-1.2a", "alpine3.19", "alpine3.19-1.2",
		"sha1-1234", "sha256_1234", "x1.2", "amd64.1.2", "1st-1.2",
	} {
		t.Run(in, func(t *testing.T) {
			if got, ok := ParseTag(in); ok {
				t.Errorf("ParseTag(%q) = %+v, want not a version", in, got)
			}
		})
	}
}

func TestTagPart(t *testing.T) {
	tag, _ := ParseTag("v1.025.3-rc1")
	for i, want := range []string{"1", "025", "3", ""} {
		if got := tag.Part(i); got != want {
			t.Errorf("ParseTag(v1.025.3-rc1).Part(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.10", "1.9", 1},
		{"1.9", "1.10", -1},
		{"1.2", "1.02", 0},
		{"1.2.3", "1.2.3", 0},
		{"2.0.0", "1.99.99", 1},
		{"1.2.3.10", "1.2.3.9", 1},
		{"2024.01.10", "2024.01.09", 1},
		{"20240215", "20240102", 1},
		{"99999999999999999999999.1", "99999999999999999999998.1", 1},
		{"1.2.3-ls100", "1.2.3-ls45", 1},
		{"1.2.3-ls45", "1.2.4-ls1", -1},
		{"1.25-alpine3.20", "1.25-alpine3.19", 1},
		{"1.25-alpine3.9", "1.25-alpine3.19", -1},
		{"2.0.0", "2.0.0-rc1", 1},
		{"2.0.0-rc2", "2.0.0-rc1", 1},
		// Semver-shaped prereleases by the spec: identifiers, numbers as
		// numbers below words, words in ASCII order.
		{"2.0.0-rc10", "2.0.0-rc9", -1},
		{"2.0.0-rc.10", "2.0.0-rc.9", 1},
		{"2.0.0-rc1", "2.0.0-rc", 1},
		{"2.0.0-rc1", "2.0.0-beta.10", 1},
		{"2.0.0-beta.10", "2.0.0-beta.2", 1},
		{"2.0.0-beta", "2.0.0-alpha.9", 1},
		{"2.0.0-alpha", "2.0.0-dev", -1},
		{"2.0.0-preview1", "2.0.0-pre1", 1},
		{"2.0.0-RC1", "2.0.0-rc1", -1},
		{"2.0.0-rc.1", "2.0.0-rc-1", -1},
		{"2.0.0-rc.1", "2.0.0-rc_1", 0},
		{"2.0.0-alpha.1", "2.0.0-alpha.1.1", -1},
		{"v2.0.0-rc.2", "v2.0.0-rc.1", 1},
		// Other shapes by word rank, then numbers.
		{"2.0-rc10", "2.0-rc9", 1},
		{"2.0-alpha", "2.0-dev", 1},
		{"2.0-preview1", "2.0-pre1", 0},
		{"2.0-RC1", "2.0-rc1", 0},
		{"1.2.3.4-rc10", "1.2.3.4-rc9", 1},
		{"2.0.0-rc10-alpine", "2.0.0-rc9-alpine", 1},
		{"2.0.0-rc1-ls9", "2.0.0-ls1", -1},
		{"1.32.5.7349-8f4248874-ls197", "1.32.5.7349-0123abc-ls197", 0},
		{"1.32.5.7349-8f4248874-ls198", "1.32.5.7349-fffffff9-ls197", 1},
		{"v0.4.0-14-g0a1b2c3", "v0.4.0-12-g3c5d9a1", 1},
		{"1.0-deb12", "1.0-deb9", 1},
	}
	for _, tc := range tests {
		a, okA := ParseTag(tc.a)
		b, okB := ParseTag(tc.b)
		if !okA || !okB {
			t.Fatalf("ParseTag(%q), ParseTag(%q) = %v, %v, want versions", tc.a, tc.b, okA, okB)
		}
		if got := Compare(a, b); got != tc.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := Compare(b, a); got != -tc.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestSameShape(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"1.25.3", "1.26.0", true},
		{"1.25", "1.26.1", false},
		{"1.25.0", "1.26", false},
		{"v1.2.3", "1.3.0", false},
		{"v1.2.3", "V1.3.0", false},
		{"1.25-alpine", "1.26-alpine", true},
		{"1.25-alpine", "1.26-bookworm", false},
		{"1.25-alpine", "1.26", false},
		{"1.25-alpine", "1.26-alpine3.19", false},
		{"1.25-alpine3.19", "1.26-alpine3.20", true},
		{"1.25-alpine3.19", "1.26-alpine3", false},
		{"1.25-alpine", "1.26-Alpine", false},
		{"1.2.3-ls45", "1.2.3-ls100", true},
		{"2.0.0-rc1", "2.0.0", true},
		{"2.0.0-rc1-alpine", "2.0.1-alpine", true},
		{"2.0.0-rc1-alpine", "2.0.1", false},
		{"7", "20240102", false},
		{"20240102", "20240215", true},
		{"2024.01.02", "2024.02.01", true},
		{"1.2.3", "2024.01.02", false},
		{"999.0", "1000.0", false},
		{"1000.0", "2024.01", true},
		{"2024", "20240102", false},
		{"0999.1", "999.1", true},
		{"01000.1", "1000.1", true},
		{"20240102", "202401021530", false},
		{"1.32.5.7349-8f4248874-ls197", "1.40.2.8395-c67dce28e-ls215", true},
		{"1.32.5.7349-8f4248874-ls197", "1.40.2.8395-ls215", false},
		{"1.32.5.7349-8f4248874-ls197", "1.40.2.8395-c67dce28e", false},
		{"1.2-8f4248874", "1.3-abcdef0123456789abcdef0123456789abcdef01", true},
		{"1.2-8f4248874", "1.3-abcdef0123456789abcdef0123456789abcdef012", false},
		{"1.2-8f4248874", "1.3-8F42488", false},
		{"1.2-8f4248874", "1.3-1234567", false},
		{"1.2.3+8f42488.1", "1.2.4+c67dce2.2", true},
		{"1.0-cafe", "1.0-beef", false},
		{"1.0-cafe", "1.0-abc1234", false},
		{"1.0-ls100", "1.0-abc1234", false},
		{"1.0-alpine", "1.0-abc1234", false},
		{"1.0-debian12", "1.0-abc1234", false},
		{"1.0-bookworm", "1.0-abc1234", false},
		{"1.0-abc123", "1.0-abc1234", false},
		{"v0.4.0-12-g3c5d9a1", "v0.4.0-14-g0a1b2c3", true},
	}
	for _, tc := range tests {
		a, _ := ParseTag(tc.a)
		b, _ := ParseTag(tc.b)
		if got := a.SameShape(b); got != tc.want {
			t.Errorf("ParseTag(%s).SameShape(%s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := b.SameShape(a); got != tc.want {
			t.Errorf("ParseTag(%s).SameShape(%s) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestKind(t *testing.T) {
	tests := []struct {
		from, to string
		want     core.UpdateKind
	}{
		{"1.2.3", "2.0.0", core.KindMajor},
		{"1.2.3", "1.3.0", core.KindMinor},
		{"1.2.3", "1.2.4", core.KindPatch},
		{"1.2.3.4", "1.2.3.5", core.KindPatch},
		{"1.2.3.4", "1.2.4.0", core.KindPatch},
		{"2024.01.02", "2025.01.01", core.KindMajor},
		{"2024.01.02", "2024.02.01", core.KindMinor},
		{"2024.01.02", "2024.01.03", core.KindPatch},
		{"20240102", "20240215", core.KindMajor},
		{"1.2.3-ls45", "1.2.3-ls100", core.KindPatch},
		{"1.25-alpine3.19", "1.25-alpine3.20", core.KindPatch},
		{"2.0.0-rc1", "2.0.0-rc2", core.KindPrerelease},
		{"2.0.0-rc1", "2.0.0", core.KindPrerelease},
		{"2.0.0-beta.2", "2.0.0-rc1", core.KindPrerelease},
		{"2.0.0-rc1", "2.0.1-rc1", core.KindPatch},
		{"2.0.0-rc1", "3.0.0-beta1", core.KindMajor},
		{"2.0.0-rc1-ls5", "2.0.0-rc2-ls6", core.KindPatch},
		{"1.2", "1.02", core.KindNone},
		{"1.32.5.7349-8f4248874-ls197", "1.40.2.8395-c67dce28e-ls215", core.KindMinor},
		{"1.32.5.7349-8f4248874-ls196", "1.32.5.7349-8f4248874-ls197", core.KindPatch},
		{"1.32.5.7349-8f4248874-ls197", "1.32.5.7349-c67dce28e-ls197", core.KindNone},
	}
	for _, tc := range tests {
		from, _ := ParseTag(tc.from)
		to, _ := ParseTag(tc.to)
		if got := Kind(from, to); got != tc.want {
			t.Errorf("Kind(%s, %s) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestIsHash(t *testing.T) {
	tests := []struct {
		seg  string
		want bool
	}{
		{"8f4248874", true},
		{"c67dce28e", true},
		{"0123abc", true},
		{"abcdef0123456789abcdef0123456789abcdef01", true}, // 40, a full SHA-1
		{"g3c5d9a1", true}, // git describe
		{"gabcdef0", true},
		{"0123ab", false}, // 6: too short
		{"abcdef0123456789abcdef0123456789abcdef012", false}, // 41
		{"cafe", false},
		{"deadbeef", false}, // no digit
		{"1234567", false},  // no letter
		{"8F42488", false},  // upper case
		{"ls100", false},
		{"alpine3", false},
		{"debian12", false},
		{"bookworm", false},
		{"g123456", false}, // "g" + 6
		{"", false},
	}
	for _, tc := range tests {
		if got := isHash(tc.seg); got != tc.want {
			t.Errorf("isHash(%q) = %v, want %v", tc.seg, got, tc.want)
		}
	}
}
