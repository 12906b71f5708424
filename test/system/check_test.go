package system

import (
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/test/testbed"
)

var watched = map[string]string{"tidewatch.watch": "true"}

func labels(extra map[string]string) map[string]string {
	m := map[string]string{"tidewatch.watch": "true"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// TestCheckSemver: a container on 1.0.0 is offered 2.0.0 (major); with an
// include regex it is offered 1.1.0 (minor); a container whose label regex
// is invalid shows its error while the others still report.
func TestCheckSemver(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("semver")
	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v})
	}
	plain := unique("plain")
	pinned := unique("include")
	broken := unique("broken")
	bed.RunContainer(t, plain, repo+":1.0.0", watched)
	bed.RunContainer(t, pinned, repo+":1.0.0", labels(map[string]string{"tidewatch.tag.include": `^1\.`}))
	bed.RunContainer(t, broken, repo+":1.0.0", labels(map[string]string{"tidewatch.tag.include": `^1\.(`}))

	r := tidewatch(t, envFor(t, bed.DockerHost), "check", "--format", "json")
	if r.code != 1 {
		t.Errorf("check with a broken label: exit code %d, want 1 (an error is shown)\nstderr:\n%s", r.code, r.stderr)
	}
	rows := parseRows(t, r)
	tests := []struct {
		container      string
		candidate      string
		kind           string
		errorSubstring string
	}{
		{container: plain, candidate: "2.0.0", kind: "major"},
		{container: pinned, candidate: "1.1.0", kind: "minor"},
		{container: broken, errorSubstring: "tidewatch.tag.include"},
	}
	for _, tc := range tests {
		got, ok := rows[tc.container]
		if !ok {
			t.Errorf("container %s missing from the output:\n%s", tc.container, r.stdout)
			continue
		}
		if got.Current != "1.0.0" && tc.errorSubstring == "" {
			t.Errorf("%s: current = %q, want 1.0.0", tc.container, got.Current)
		}
		if got.Candidate != tc.candidate || got.Kind != tc.kind {
			t.Errorf("%s: candidate, kind = %q, %q, want %q, %q (error %q)", tc.container, got.Candidate, got.Kind, tc.candidate, tc.kind, got.Error)
		}
		if tc.errorSubstring == "" && got.Error != "" {
			t.Errorf("%s: unexpected error %q", tc.container, got.Error)
		}
		if tc.errorSubstring != "" && !strings.Contains(got.Error, tc.errorSubstring) {
			t.Errorf("%s: error = %q, want it to name %q", tc.container, got.Error, tc.errorSubstring)
		}
		if got.Host != "local" {
			t.Errorf("%s: host = %q, want local", tc.container, got.Host)
		}
	}

	// The table form says the same for people.
	table := tidewatch(t, envFor(t, bed.DockerHost), "check")
	for _, want := range []string{plain, "1.0.0", "2.0.0", "major", pinned, "1.1.0", "minor", broken, "error:"} {
		if !strings.Contains(table.stdout, want) {
			t.Errorf("table output lacks %q:\n%s", want, table.stdout)
		}
	}
}

// TestCheckExitCode: with no error, --exit-code gives 2 when updates exist and 0 without the flag.
func TestCheckExitCode(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("exitcode")
	bed.BuildImage(t, repo+":1.0.0", testbed.AppOptions{Version: "1.0.0"})
	bed.BuildImage(t, repo+":1.0.1", testbed.AppOptions{Version: "1.0.1"})
	name := unique("exitcode")
	bed.RunContainer(t, name, repo+":1.0.0", watched)

	env := envFor(t, bed.DockerHost)
	if r := tidewatch(t, env, "check", "--exit-code"); r.code != 2 {
		t.Errorf("check --exit-code with an update: exit code %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := tidewatch(t, env, "check", "--format", "json")
	if r.code != 0 {
		t.Errorf("check without --exit-code: exit code %d, want 0\n%s", r.code, r.stderr)
	}
	if got := parseRows(t, r)[name]; got.Candidate != "1.0.1" || got.Kind != "patch" {
		t.Errorf("%s: candidate, kind = %q, %q, want 1.0.1, patch", name, got.Candidate, got.Kind)
	}
}

// TestCheckDigest: a container on `latest` reports nothing while the tag is
// unchanged, and a digest update once a new image is pushed under `latest`.
func TestCheckDigest(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("digest")
	first := bed.BuildImage(t, repo+":latest", testbed.AppOptions{Version: "1"})
	name := unique("latest")
	bed.RunContainer(t, name, repo+":latest", watched)
	env := envFor(t, bed.DockerHost)

	before := parseRows(t, tidewatch(t, env, "check", "--format", "json"))[name]
	if before.Kind != "" || before.Candidate != "" || before.Error != "" {
		t.Fatalf("before a new push: candidate %q kind %q error %q, want no update", before.Candidate, before.Kind, before.Error)
	}
	if before.CurrentDigest != first {
		t.Errorf("current digest = %q, want the pushed %q", before.CurrentDigest, first)
	}

	second := bed.BuildImage(t, repo+":latest", testbed.AppOptions{Version: "2"})
	if second == first {
		t.Fatal("the second build has the same digest as the first")
	}
	after := parseRows(t, tidewatch(t, env, "check", "--format", "json"))[name]
	if after.Kind != "digest" || after.Candidate != "latest" || after.Digest != second {
		t.Errorf("after a new push: candidate %q kind %q digest %q (error %q), want latest, digest, %s", after.Candidate, after.Kind, after.Digest, after.Error, second)
	}
}

// TestCheckUnreachableRegistry: a container whose registry does not answer
// shows the error, and the exit code says so.
func TestCheckUnreachableRegistry(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("gone")
	bed.BuildImage(t, repo+":1.0.0", testbed.AppOptions{Version: "1.0.0"})
	ok := unique("reachable")
	bed.RunContainer(t, ok, repo+":1.0.0", watched)
	// Retag the local image under a registry address where nothing listens.
	gone := unique("unreachable")
	bed.RunContainer(t, gone, bed.RetagLocal(t, repo+":1.0.0", "127.0.0.1:9/"+unique("nothing")+":1.0.0"), watched)

	r := tidewatch(t, envFor(t, bed.DockerHost), "check", "--format", "json")
	rows := parseRows(t, r)
	if r.code != 1 {
		t.Errorf("exit code %d, want 1", r.code)
	}
	if rows[gone].Error == "" || !strings.Contains(rows[gone].Error, "127.0.0.1:9") {
		t.Errorf("unreachable registry: error = %q, want one naming 127.0.0.1:9", rows[gone].Error)
	}
	if rows[ok].Error != "" {
		t.Errorf("reachable registry: error = %q, want none", rows[ok].Error)
	}
}
