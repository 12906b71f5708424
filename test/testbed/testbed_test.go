package testbed_test

import (
	"crypto/rand"
	"encoding/hex"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// unique returns a repository or container name that no other run uses.
func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "tbtest-" + prefix + "-" + hex.EncodeToString(b)
}

func TestBuildPushRunServesVersion(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("app")
	versions := []string{"1.0.0", "2.0.0"}
	digests := map[string]string{}
	for _, v := range versions {
		digests[v] = bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v, Labels: map[string]string{"org.example.version": v}})
		if !strings.HasPrefix(digests[v], "sha256:") {
			t.Fatalf("BuildImage(%s) = %q, want a sha256 digest", v, digests[v])
		}
	}
	if digests["1.0.0"] == digests["2.0.0"] {
		t.Fatalf("versions 1.0.0 and 2.0.0 have the same digest %s", digests["1.0.0"])
	}
	if again := bed.BuildImage(t, repo+":1.0.0-again", testbed.AppOptions{Version: "1.0.0", Labels: map[string]string{"org.example.version": "1.0.0"}}); again != digests["1.0.0"] {
		t.Errorf("building 1.0.0 twice gave %s and %s, want the same digest", digests["1.0.0"], again)
	}

	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			ref := repo + ":" + v
			c := bed.RunContainer(t, unique("run"), ref, map[string]string{"org.example.role": "web"}, testbed.RunOptions{Publish: true})
			if !strings.HasPrefix(c.URL, "http://127.0.0.1:") {
				t.Fatalf("RunContainer URL = %q, want http://127.0.0.1:PORT", c.URL)
			}
			if got := strings.TrimSpace(bed.WaitHTTP(t, c.URL+"/")); got != v {
				t.Errorf("GET %s/ = %q, want %q", c.URL, got, v)
			}

			info := bed.Inspect(t, c.ID)
			for k, want := range map[string]string{testbed.LabelTest: "1", testbed.LabelBed: bed.State.ID, "org.example.role": "web", "org.example.version": v} {
				if got := info.Config.Labels[k]; got != want {
					t.Errorf("container label %s = %q, want %q", k, got, want)
				}
			}
			if info.HostConfig.RestartPolicy.Name != "no" {
				t.Errorf("restart policy = %q, want no", info.HostConfig.RestartPolicy.Name)
			}
			img := bed.ImageInspect(t, info.Image)
			want := repo + "@" + digests[v]
			if !slices.Contains(img.RepoDigests, want) {
				t.Errorf("image RepoDigests = %v, want it to hold %s", img.RepoDigests, want)
			}
			if !slices.Contains(img.Config.Env, "VERSION="+v) {
				t.Errorf("image env = %v, want VERSION=%s", img.Config.Env, v)
			}
		})
	}
}

func TestFailingApps(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("fail")
	tests := []struct {
		name     string
		opts     testbed.AppOptions
		exitCode int    // when the container must exit
		health   string // when the container must reach a health status
	}{
		{name: "exit at start", opts: testbed.AppOptions{Version: "1.0.0", Fail: testbed.FailExit}, exitCode: 1},
		{name: "crash later", opts: testbed.AppOptions{Version: "1.0.0", Fail: testbed.FailCrashLater, CrashAfter: time.Second}, exitCode: 2},
		{name: "unhealthy", opts: testbed.AppOptions{Version: "1.0.0", Fail: testbed.FailUnhealthy, Healthcheck: true}, health: "unhealthy"},
		{name: "healthy", opts: testbed.AppOptions{Version: "1.0.0", Healthcheck: true}, health: "healthy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref := repo + ":" + strings.ReplaceAll(tc.name, " ", "-")
			bed.BuildImage(t, ref, tc.opts)
			c := bed.RunContainer(t, unique("fail"), ref, nil, testbed.RunOptions{NoWait: true})
			if tc.health != "" {
				info := bed.WaitHealth(t, c.ID, tc.health)
				if !info.State.Running {
					t.Errorf("container %s is %s, want it running while %s", c.Name, info.State.Status, tc.health)
				}
				return
			}
			if got := bed.WaitExited(t, c.ID); got != tc.exitCode {
				t.Errorf("exit code = %d, want %d; logs:\n%s", got, tc.exitCode, bed.Logs(t, c.ID))
			}
		})
	}
}

func TestRetagLocal(t *testing.T) {
	bed := testbed.Require(t)
	src := bed.Registry + "/" + unique("retag") + ":1.0.0"
	bed.BuildImage(t, src, testbed.AppOptions{Version: "1.0.0"})
	dst := bed.RetagLocal(t, src, "127.0.0.1:9/"+unique("nowhere")+":1.0.0")
	// 127.0.0.1:9 does not answer: the container can only run from the local tag.
	c := bed.RunContainer(t, unique("retag"), dst, nil, testbed.RunOptions{Publish: true})
	if got := strings.TrimSpace(bed.WaitHTTP(t, c.URL+"/")); got != "1.0.0" {
		t.Errorf("GET %s/ = %q, want 1.0.0", c.URL, got)
	}
	if got := bed.Inspect(t, c.ID).Config.Image; got != dst {
		t.Errorf("container image = %q, want %q", got, dst)
	}
}

func TestRestartEngine(t *testing.T) {
	bed := testbed.Require(t)
	before := bed.State.Engine
	bed.RestartEngine(t) // skips when the bed reused an engine
	after := bed.State.Engine
	if after.PID == before.PID {
		t.Errorf("engine PID after restart = %d, want a new one", after.PID)
	}
	// The engine serves again: run a container on it.
	ref := bed.Registry + "/" + unique("restart") + ":1.0.0"
	bed.BuildImage(t, ref, testbed.AppOptions{Version: "1.0.0"})
	c := bed.RunContainer(t, unique("restart"), ref, nil, testbed.RunOptions{Publish: true})
	if got := strings.TrimSpace(bed.WaitHTTP(t, c.URL+"/")); got != "1.0.0" {
		t.Errorf("after restart: GET %s/ = %q, want 1.0.0", c.URL, got)
	}
}

func TestPushIndexRunsPlatformImage(t *testing.T) {
	bed := testbed.Require(t)
	ref := bed.Registry + "/" + unique("index") + ":1.0.0"
	img := bed.AppImage(t, testbed.AppOptions{Version: "1.0.0"})
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        img,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}},
	})
	digest := bed.PushIndex(t, ref, idx)
	c := bed.RunContainer(t, unique("index"), ref, nil, testbed.RunOptions{Publish: true})
	if got := strings.TrimSpace(bed.WaitHTTP(t, c.URL+"/")); got != "1.0.0" {
		t.Errorf("GET %s/ = %q, want 1.0.0", c.URL, got)
	}
	repo, _, _ := strings.Cut(ref, ":1.0.0")
	if got := bed.ImageInspect(t, bed.Inspect(t, c.ID).Image).RepoDigests; !slices.Contains(got, repo+"@"+digest) {
		t.Errorf("image RepoDigests = %v, want it to hold the index digest %s", got, repo+"@"+digest)
	}
}
