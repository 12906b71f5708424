package testbed

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// endingTB records how a helper ended a test: Fatal or Skip.
type endingTB struct {
	testing.TB
	ended, msg string
}

func (e *endingTB) Helper()           {}
func (e *endingTB) Fatal(args ...any) { e.ended, e.msg = "fatal", toString(args) }
func (e *endingTB) Skip(args ...any)  { e.ended, e.msg = "skip", toString(args) }

func toString(args []any) string {
	var b strings.Builder
	for _, a := range args {
		if s, ok := a.(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

// TestMissingPart: a missing part fails the test under make test and CI, and
// skips it otherwise; the message names the part, why, and how to get it.
func TestMissingPart(t *testing.T) {
	tests := []struct {
		name, required, ci, want string
	}{
		{name: "plain go test", want: "skip"},
		{name: "make test", required: "1", want: "fatal"},
		{name: "CI", ci: "true", want: "fatal"},
		{name: "required set to something else", required: "yes", want: "skip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvRequired, tc.required)
			t.Setenv("CI", tc.ci)
			tb := &endingTB{}
			MissingPart(tb, PartChromium, errors.New("/usr/bin/chromium not found"))
			if tb.ended != tc.want {
				t.Errorf("MissingPart ended the test with %q, want %q", tb.ended, tc.want)
			}
			for _, want := range []string{"chromium", "/usr/bin/chromium not found", "bedctl up"} {
				if !strings.Contains(tb.msg, want) {
					t.Errorf("message %q lacks %q", tb.msg, want)
				}
			}
		})
	}
}

func TestComposeCommand(t *testing.T) {
	parts := map[string]string{PartComposeV1: "/usr/bin/docker-compose", PartDocker: "/usr/bin/docker",
		PartComposeV2: "/root/.docker/cli-plugins/docker-compose"}
	tests := []struct {
		name     string
		c        Compose
		parts    map[string]string
		missing  map[string]string
		wantArgv []string
		wantEnv  []string
		wantErr  string
	}{
		{name: "v1", c: ComposeV1, parts: parts, wantArgv: []string{"/usr/bin/docker-compose"}, wantEnv: []string{"DOCKER_HOST=unix:///x.sock"}},
		{name: "v2", c: ComposeV2, parts: parts, wantArgv: []string{"/usr/bin/docker", "compose"},
			wantEnv: []string{"DOCKER_HOST=unix:///x.sock", "DOCKER_CONFIG=/root/.docker"}},
		{name: "v2 not installed", c: ComposeV2, parts: map[string]string{PartDocker: "/usr/bin/docker"},
			missing: map[string]string{PartComposeV2: "building failed"}, wantErr: "building failed"},
		{name: "state of an older bedctl", c: ComposeV1, wantErr: "older bedctl"},
		{name: "no such CLI", c: Compose(7), parts: parts, wantErr: "no such compose CLI"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &Bed{DockerHost: "unix:///x.sock", State: &State{Parts: tc.parts, PartsMissing: tc.missing}}
			argv, env, err := b.composeCommand(tc.c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("composeCommand(%v) error = %v, want one containing %q", tc.c, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantArgv, argv); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantEnv, env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		})
	}
}
