package policy

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/tidewatch/tidewatch/core"
)

func TestSelect(t *testing.T) {
	tests := []struct {
		name    string
		current string
		tags    []string
		policy  Policy
		want    Selection
	}{
		{
			name:    "newest patch, minor and major",
			current: "1.25.0",
			tags:    []string{"1.24.9", "1.25.0", "1.25.1", "1.26.0", "2.0.0", "1.26", "2", "latest"},
			want:    Selection{Candidate: "2.0.0", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "minor",
			current: "1.25.0",
			tags:    []string{"1.25.1", "1.26.0", "1.26", "1.27"},
			want:    Selection{Candidate: "1.26.0", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "patch",
			current: "1.25.0",
			tags:    []string{"1.25.1", "1.26", "1.25.2-alpine", "1.25.3-rc1"},
			want:    Selection{Candidate: "1.25.1", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "two parts stay two parts",
			current: "1.25",
			tags:    []string{"1.26.1", "1.26", "1.26-alpine", "2.0.0"},
			want:    Selection{Candidate: "1.26", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "numeric order not lexical",
			current: "1.9",
			tags:    []string{"1.10", "1.8", "1.9"},
			want:    Selection{Candidate: "1.10", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "v prefix kept",
			current: "v1.2.3",
			tags:    []string{"1.3.0", "1.4.0", "v1.3.0", "V1.5.0"},
			want:    Selection{Candidate: "v1.3.0", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "no prefix kept",
			current: "1.2.3",
			tags:    []string{"v1.4.0", "1.3.0"},
			want:    Selection{Candidate: "1.3.0", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "variant kept",
			current: "1.25-alpine",
			tags:    []string{"1.26.0", "1.26-bookworm", "1.26", "1.26-alpine", "1.27-alpine3.19", "1.26-alpine-slim"},
			want:    Selection{Candidate: "1.26-alpine", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "variant with numbers",
			current: "1.25-alpine3.19",
			tags:    []string{"1.25-alpine3.20", "1.25-alpine", "1.25-alpine3.9"},
			want:    Selection{Candidate: "1.25-alpine3.20", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "linuxserver build number",
			current: "1.2.3-ls45",
			tags:    []string{"1.2.3-ls100", "1.2.3-ls46", "1.2.3-ls9", "1.2.3"},
			want:    Selection{Candidate: "1.2.3-ls100", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "linuxserver new version",
			current: "1.2.3-ls45",
			tags:    []string{"1.2.3-ls100", "1.2.4-ls1"},
			want:    Selection{Candidate: "1.2.4-ls1", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "no prerelease for a release",
			current: "1.2.3",
			tags:    []string{"2.0.0-rc1", "2.0.0-beta.2", "1.3.0-alpha", "1.2.4-dev"},
			want:    Selection{Versioned: true},
		},
		{
			name:    "release still offered past a newer prerelease",
			current: "1.2.3",
			tags:    []string{"2.0.0-rc1", "1.2.4"},
			want:    Selection{Candidate: "1.2.4", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "next prerelease",
			current: "2.0.0-rc1",
			tags:    []string{"2.0.0-rc2", "2.0.0-beta.5", "1.9.9"},
			want:    Selection{Candidate: "2.0.0-rc2", Kind: core.KindPrerelease, Versioned: true},
		},
		{
			name:    "release of the prerelease",
			current: "2.0.0-rc1",
			tags:    []string{"2.0.0-rc2", "2.0.0"},
			want:    Selection{Candidate: "2.0.0", Kind: core.KindPrerelease, Versioned: true},
		},
		{
			name:    "newer version from a prerelease",
			current: "2.0.0-rc1",
			tags:    []string{"2.0.0", "2.1.0-beta.1"},
			want:    Selection{Candidate: "2.1.0-beta.1", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "prerelease with variant",
			current: "2.0.0-rc1-alpine",
			tags:    []string{"2.0.0", "2.0.0-rc2", "2.0.0-rc2-alpine", "2.0.0-rc3-bookworm"},
			want:    Selection{Candidate: "2.0.0-rc2-alpine", Kind: core.KindPrerelease, Versioned: true},
		},
		{
			name:    "four parts",
			current: "1.2.3.4",
			tags:    []string{"1.2.3.10", "1.2.4", "1.2.3.9"},
			want:    Selection{Candidate: "1.2.3.10", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "dotted date",
			current: "2024.01.02",
			tags:    []string{"2024.01.10", "2024.02.01", "2023.12.31"},
			want:    Selection{Candidate: "2024.02.01", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "date stamp",
			current: "20240102",
			tags:    []string{"20240215", "20231231", "7"},
			want:    Selection{Candidate: "20240215", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "short number not offered a date stamp",
			current: "7",
			tags:    []string{"20240215", "8"},
			want:    Selection{Candidate: "8", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "nothing newer",
			current: "1.25.3",
			tags:    []string{"1.25.3", "1.25.03", "1.25.2", "1.24.9"},
			want:    Selection{Versioned: true},
		},
		{
			name:    "empty list",
			current: "1.25.3",
			want:    Selection{Versioned: true},
		},
		{
			name:    "equal versions pick the shortest",
			current: "1.1",
			tags:    []string{"1.002", "1.02", "1.2"},
			want:    Selection{Candidate: "1.2", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "equal versions of equal length pick the first in byte order",
			current: "2.0-rc1",
			tags:    []string{"2.0-rc02", "2.0-RC02"},
			want:    Selection{Candidate: "2.0-RC02", Kind: core.KindPrerelease, Versioned: true},
		},
		{
			name:    "equal semver prereleases pick the first in byte order",
			current: "2.0.0-rc.1",
			tags:    []string{"2.0.0-rc_2", "2.0.0-rc.2"},
			want:    Selection{Candidate: "2.0.0-rc.2", Kind: core.KindPrerelease, Versioned: true},
		},
		{
			name:    "latest is not versioned",
			current: "latest",
			tags:    []string{"1.0.0", "latest"},
			want:    Selection{},
		},
		{
			name:    "named tags are not versioned",
			current: "noble",
			tags:    []string{"noble", "24.04"},
			want:    Selection{},
		},
		{
			name:    "include",
			current: "1.25.0",
			tags:    []string{"1.26.0", "1.25.1", "2.0.0"},
			policy:  Policy{Include: regexp.MustCompile(`^1\.`)},
			want:    Selection{Candidate: "1.26.0", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "exclude",
			current: "1.25.0",
			tags:    []string{"1.26.0", "1.25.1", "2.0.0"},
			policy:  Policy{Exclude: regexp.MustCompile(`^2\.|^1\.26`)},
			want:    Selection{Candidate: "1.25.1", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "include and exclude",
			current: "1.25.0",
			tags:    []string{"1.26.0", "1.25.1", "1.25.2", "2.0.0"},
			policy:  Policy{Include: regexp.MustCompile(`^1\.25\.`), Exclude: regexp.MustCompile(`\.2$`)},
			want:    Selection{Candidate: "1.25.1", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "exclude the best of equal versions",
			current: "1.1",
			tags:    []string{"1.2", "1.02"},
			policy:  Policy{Exclude: regexp.MustCompile(`^1\.2$`)},
			want:    Selection{Candidate: "1.02", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "transform returns the original tag",
			current: "1.2-3",
			tags:    []string{"1.2-4", "1.3-1", "1.2.5", "junk"},
			policy:  Policy{Transform: mustTransform(t, `^(\d+)\.(\d+)-(\d+)$ => $1.$2.$3`)},
			want:    Selection{Candidate: "1.3-1", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "transform makes a named tag versioned",
			current: "release-2024-01",
			tags:    []string{"release-2024-02", "release-2023-12", "2025.01"},
			policy:  Policy{Transform: mustTransform(t, `^release-(\d+)-(\d+)$ => $1.$2`)},
			want:    Selection{Candidate: "2025.01", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "include sees the tag as written",
			current: "release-2024-01",
			tags:    []string{"release-2024-02", "2025.01"},
			policy: Policy{
				Transform: mustTransform(t, `^release-(\d+)-(\d+)$ => $1.$2`),
				Include:   regexp.MustCompile(`^release-`),
			},
			want: Selection{Candidate: "release-2024-02", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "linuxserver plex: git hash in the variant",
			current: "1.32.5.7349-8f4248874-ls197",
			tags: []string{"1.40.2.8395-c67dce28e-ls215", "1.32.5.7349-8f4248874-ls196", "1.40.1.8227-c0dd5a73e-ls214",
				"1.40.2.8395-c67dce28e", "version-1.40.2.8395-c67dce28e", "latest", "1.41.0.8930-ab6e1a058-ls300-beta"},
			want: Selection{Candidate: "1.40.2.8395-c67dce28e-ls215", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "linuxserver plex: new build of the same version",
			current: "1.32.5.7349-8f4248874-ls196",
			tags:    []string{"1.32.5.7349-8f4248874-ls197", "1.32.5.7349-8f4248874-ls196"},
			want:    Selection{Candidate: "1.32.5.7349-8f4248874-ls197", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "another hash of the same version is not newer",
			current: "1.32.5.7349-8f4248874-ls197",
			tags:    []string{"1.32.5.7349-0123abc-ls197", "1.32.5.7349-fffffff9-ls197"},
			want:    Selection{Versioned: true},
		},
		{
			name:    "git describe",
			current: "v0.4.0-12-g3c5d9a1",
			tags:    []string{"v0.4.0-9-gab12cd3", "v0.4.0-14-g0a1b2c3", "v0.4.0", "v0.4.0-14"},
			want:    Selection{Candidate: "v0.4.0-14-g0a1b2c3", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "hex-letter words are variants, not hashes",
			current: "1.0-cafe",
			tags:    []string{"1.1-beef", "1.1-abc1234", "1.1-cafe", "1.2-caffe"},
			want:    Selection{Candidate: "1.1-cafe", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "semver not offered a calendar version",
			current: "1.2.3",
			tags:    []string{"2024.01.02", "1.2.4", "1000.0.0"},
			want:    Selection{Candidate: "1.2.4", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "calendar version: next month",
			current: "2024.01.02",
			tags:    []string{"2024.02.01", "1.2.4", "3.0.0", "20240301"},
			want:    Selection{Candidate: "2024.02.01", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "calendar version: next year",
			current: "2024.01.02",
			tags:    []string{"2024.02.01", "2025.01.01", "999.0.0", "10000.0.0"},
			want:    Selection{Candidate: "2025.01.01", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "a first number of 1000 is read as a year",
			current: "1000.0",
			tags:    []string{"1000.1", "999.9", "2024.01"},
			want:    Selection{Candidate: "2024.01", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "999 is never offered 1000",
			current: "999.0",
			tags:    []string{"1000.0", "999.0.1"},
			want:    Selection{Versioned: true},
		},
		{
			name:    "year is not offered a date stamp",
			current: "2024",
			tags:    []string{"20240102", "2025", "202501"},
			want:    Selection{Candidate: "2025", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "date stamp is not offered a longer time stamp",
			current: "20240102",
			tags:    []string{"202401021530", "20240103"},
			want:    Selection{Candidate: "20240103", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "node: one part with a numbered variant",
			current: "20-alpine3.19",
			tags: []string{"22-alpine3.19", "20-alpine", "22-alpine", "20.11.1-alpine3.19", "22", "21-alpine3.18",
				"lts-alpine3.19", "alpine3.19", "23-alpine3.19-slim"},
			want: Selection{Candidate: "22-alpine3.19", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "node: a newer alpine goes with a newer version",
			current: "20-alpine3.19",
			tags:    []string{"22-alpine3.19", "22-alpine3.20"},
			want:    Selection{Candidate: "22-alpine3.20", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "node: newer alpine only",
			current: "20.11.1-alpine3.19",
			tags:    []string{"20.11.1-alpine3.20", "20.11.1-alpine3.18", "20.11.1"},
			want:    Selection{Candidate: "20.11.1-alpine3.20", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "postgres: two parts",
			current: "16.4",
			tags:    []string{"16.6", "17.2", "17", "16.4-bookworm", "17.2-alpine3.20", "17rc1", "18beta1", "16"},
			want:    Selection{Candidate: "17.2", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "postgres: staying on 16",
			current: "16.4",
			tags:    []string{"16.6", "17.2", "16.5"},
			policy:  Policy{Include: regexp.MustCompile(`^16\.`)},
			want:    Selection{Candidate: "16.6", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "postgres: debian variant",
			current: "16.4-bookworm",
			tags:    []string{"16.6-bookworm", "17.2-bookworm", "16.6", "17.2-alpine", "17.2-bullseye"},
			want:    Selection{Candidate: "17.2-bookworm", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "nginx: two-word variant",
			current: "1.25.3-alpine-slim",
			tags:    []string{"1.27.3-alpine-slim", "1.27.3-alpine3.20-slim", "1.27.3-alpine", "1.27.3"},
			want:    Selection{Candidate: "1.27.3-alpine-slim", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "redis: alpine release moves with the version",
			current: "7.2.4-alpine3.19",
			tags:    []string{"7.2.5-alpine3.19", "7.4.1-alpine3.20", "7.4.1-alpine", "7.4.1", "7.4-alpine3.20"},
			want:    Selection{Candidate: "7.4.1-alpine3.20", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "traefik: major",
			current: "v2.11.0",
			tags:    []string{"v2.11.2", "v3.1.2", "2.11.2", "v3.1", "v3.2.0-rc1", "v3.1.2-windowsservercore-ltsc2022", "latest"},
			want:    Selection{Candidate: "v3.1.2", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "traefik: staying on v2",
			current: "v2.11.0",
			tags:    []string{"v2.11.2", "v3.1.2", "2.11.3"},
			policy:  Policy{Include: regexp.MustCompile(`^v2\.`)},
			want:    Selection{Candidate: "v2.11.2", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "mariadb: another distribution is another variant",
			current: "10.11.6-jammy",
			tags:    []string{"11.4.3-noble", "11.4-noble", "lts-noble", "11.4.3"},
			want:    Selection{Versioned: true},
		},
		{
			name:    "mariadb: same distribution",
			current: "10.11.6-jammy",
			tags:    []string{"11.4.3-noble", "10.11.9-jammy"},
			want:    Selection{Candidate: "10.11.9-jammy", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "word prefix kept",
			current: "version-1.2.3",
			tags:    []string{"version-1.2.4", "1.3.0", "release-1.4.0", "version-1.2.10-ls3", "Version-1.5.0"},
			want:    Selection{Candidate: "version-1.2.4", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "codename and date stamp",
			current: "jammy-20240111",
			tags:    []string{"jammy-20240212", "noble-20240801", "jammy", "20240301", "jammy-20231004"},
			want:    Selection{Candidate: "jammy-20240212", Kind: core.KindMajor, Versioned: true},
		},
		{
			name:    "dotted word prefix and a time stamp",
			current: "RELEASE.2024-01-16T16-07-38Z",
			tags:    []string{"RELEASE.2024-02-09T21-25-16Z", "RELEASE.2024-01-18T22-51-28Z", "RELEASE.2024-02-09T21-25-16Z.fips", "latest", "RELEASE.2023-12-23T07-19-11Z"},
			want:    Selection{Candidate: "RELEASE.2024-02-09T21-25-16Z", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "platform word kept",
			current: "amd64-1.2.3-ls40",
			tags:    []string{"arm64v8-1.2.5-ls42", "amd64-1.2.4-ls41", "1.2.5-ls42", "amd64-latest", "amd64-1.3.0-ls1-alpine"},
			want:    Selection{Candidate: "amd64-1.2.4-ls41", Kind: core.KindPatch, Versioned: true},
		},
		{
			name:    "a word naming a hash is no prefix",
			current: "sha-1234567",
			tags:    []string{"sha-7654321", "sha-2345678"},
			want:    Selection{},
		},
		{
			name:    "one letter before a separator is no prefix",
			current: "r-1.2.3",
			tags:    []string{"r-1.2.4"},
			want:    Selection{},
		},
		{
			name:    "word prefix through a transform",
			current: "version-1.2.3",
			tags:    []string{"version-1.2.4", "version-1.3.0", "1.4.0-ls20", "1.4.0", "latest"},
			policy: Policy{
				Transform: mustTransform(t, `^version-(.+)$ => $1`),
				Include:   regexp.MustCompile(`^version-`),
			},
			want: Selection{Candidate: "version-1.3.0", Kind: core.KindMinor, Versioned: true},
		},
		{
			name:    "linuxserver plex version prefix through a transform",
			current: "version-1.32.5.7349-8f4248874",
			tags:    []string{"version-1.40.2.8395-c67dce28e", "1.40.2.8395-c67dce28e-ls215", "version-1.32.5.7349-8f4248874"},
			policy:  Policy{Transform: mustTransform(t, `^version-(.+)$ => $1`)},
			want:    Selection{Candidate: "version-1.40.2.8395-c67dce28e", Kind: core.KindMinor, Versioned: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Select(tc.current, tc.tags, tc.policy)
			if got != tc.want {
				t.Errorf("Select(%s, %v) = %+v, want %+v", tc.current, tc.tags, got, tc.want)
			}
			// The order of the list never matters.
			rev := append([]string(nil), tc.tags...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			if got := Select(tc.current, rev, tc.policy); got != tc.want {
				t.Errorf("Select(%s, %v) = %+v, want %+v", tc.current, rev, got, tc.want)
			}
		})
	}
}

func mustTransform(t *testing.T, s string) *Transform {
	t.Helper()
	tr, err := ParseTransform(s)
	if err != nil {
		t.Fatalf("ParseTransform(%q): %v", s, err)
	}
	return tr
}

// nginxTags returns the tags of nginx-like releases 1.1 to 1.<minors>, shaped
// like Docker Hub's nginx list (157 tags per minor release, plus named tags),
// in a shuffled order.
func nginxTags(minors int) []string {
	variants := []string{"", "-alpine", "-alpine-slim", "-alpine-perl", "-alpine3.19", "-alpine3.19-perl",
		"-bookworm", "-bookworm-perl", "-perl", "-otel", "-alpine-otel", "-bullseye"}
	tags := []string{"latest", "mainline", "stable", "alpine", "perl", "stable-perl", "mainline-alpine",
		"stable-alpine-slim", "bookworm", "mainline-bookworm-perl"}
	for minor := 1; minor <= minors; minor++ {
		tags = append(tags, fmt.Sprintf("1.%d.0-rc1", minor), fmt.Sprintf("1.%d.0-rc2-alpine", minor))
		for patch := 0; patch < 12; patch++ {
			for _, v := range variants {
				tags = append(tags, fmt.Sprintf("1.%d.%d%s", minor, patch, v))
			}
			tags = append(tags, fmt.Sprintf("1.%d%s", minor, variants[patch]))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(tags), func(i, j int) { tags[i], tags[j] = tags[j], tags[i] })
	return tags
}

func TestNginxTags(t *testing.T) {
	tags := nginxTags(19)
	tests := []struct {
		current string
		want    Selection
	}{
		{"1.5.3", Selection{Candidate: "1.19.11", Kind: core.KindMinor, Versioned: true}},
		{"1.19.3", Selection{Candidate: "1.19.11", Kind: core.KindPatch, Versioned: true}},
		{"1.5.3-alpine", Selection{Candidate: "1.19.11-alpine", Kind: core.KindMinor, Versioned: true}},
		{"1.5.3-alpine3.19-perl", Selection{Candidate: "1.19.11-alpine3.19-perl", Kind: core.KindMinor, Versioned: true}},
		{"1.5-perl", Selection{Candidate: "1.19-perl", Kind: core.KindMinor, Versioned: true}},
		{"1.19.0-rc1", Selection{Candidate: "1.19.11", Kind: core.KindPatch, Versioned: true}},
		{"1.19.0-rc1-alpine", Selection{Candidate: "1.19.11-alpine", Kind: core.KindPatch, Versioned: true}},
		{"1.19.11-otel", Selection{Versioned: true}},
		{"mainline-alpine", Selection{}},
	}
	for _, tc := range tests {
		if got := Select(tc.current, tags, Policy{}); got != tc.want {
			t.Errorf("Select(%s, nginx tags) = %+v, want %+v", tc.current, got, tc.want)
		}
	}
}

func BenchmarkSelect(b *testing.B) {
	tags := nginxTags(19) // 2,993 tags
	policies := map[string]Policy{
		"default": {},
		"include": {Include: regexp.MustCompile(`^1\.\d+\.\d+-alpine$`), Exclude: regexp.MustCompile(`-rc`)},
		"transform": {Transform: func() *Transform {
			tr, _ := ParseTransform(`^(\d+)\.(\d+)\.(\d+)-alpine$ => $1.$2.$3`)
			return tr
		}()},
		"constraint":  {Constraint: mustConstraint(b, ">=1.10, <1.15")},
		"prereleases": {},
	}
	current := map[string]string{"prereleases": "1.19.0-rc1"}
	for _, name := range []string{"default", "include", "transform", "constraint", "prereleases"} {
		p := policies[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cur := cmp.Or(current[name], "1.5.3-alpine")
				if s := Select(cur, tags, p); s.Candidate == "" && name != "transform" {
					b.Fatalf("Select(%s, nginx tags) found no candidate", cur)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(tags))*1000, "ns/1000tags")
		})
	}
}
