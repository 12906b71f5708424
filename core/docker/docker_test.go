package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/test/testbed"
)

func unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func newClient(t *testing.T, bed *testbed.Bed) *docker.Client {
	t.Helper()
	c, err := docker.New(docker.Options{Host: bed.DockerHost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func find(ctrs []core.Container, name string) (core.Container, bool) {
	for _, c := range ctrs {
		if c.Name == name {
			return c, true
		}
	}
	return core.Container{}, false
}

// TestListAgainstRealEngine lists a running container and checks what the
// watch loop relies on: the configured image name, labels, and the
// RepoDigests of the image the container runs, even after its tag moved.
func TestListAgainstRealEngine(t *testing.T) {
	bed := testbed.Require(t)
	ctx := context.Background()
	c := newClient(t, bed)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if v := c.APIVersion(); !versionAtMost(v, "1.51") || v == "" {
		t.Errorf("negotiated API version %q, want one the engine speaks", v)
	}

	ref := bed.Registry + "/" + unique("list") + ":1.0.0"
	first := bed.BuildImage(t, ref, testbed.AppOptions{Version: "1.0.0"})
	name := unique("listed")
	bed.RunContainer(t, name, ref, map[string]string{core.LabelDisplayName: "Listed app", "tidewatch.test.extra": "x"})

	ctrs, err := c.List(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := find(ctrs, name)
	if !ok {
		t.Fatalf("List did not return container %s", name)
	}
	if got.Image != ref || got.State != "running" || got.DisplayName != "Listed app" || got.Labels["tidewatch.test.extra"] != "x" {
		t.Errorf("List: image %q state %q display %q labels %v, want %q running \"Listed app\"", got.Image, got.State, got.DisplayName, got.Labels, ref)
	}
	if !strings.HasSuffix(strings.Join(got.RepoDigests, " "), "@"+first) {
		t.Errorf("RepoDigests = %v, want the pushed digest %s", got.RepoDigests, first)
	}

	// The tag moves to a new image, pulled locally: the container still runs
	// the old one, and List must say so rather than follow the tag.
	second := bed.BuildImage(t, ref, testbed.AppOptions{Version: "1.0.0-rebuilt"})
	bed.PullImage(t, ref)
	ctrs, err = c.List(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = find(ctrs, name)
	if got.Image != ref {
		t.Errorf("after the tag moved: image %q, want the configured %q", got.Image, ref)
	}
	joined := strings.Join(got.RepoDigests, " ")
	if !strings.Contains(joined, first) || strings.Contains(joined, second) {
		t.Errorf("after the tag moved: RepoDigests %v, want the running image's %s and not %s", got.RepoDigests, first, second)
	}

	byInspect, err := c.Inspect(ctx, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if byInspect.Image != ref || byInspect.ImageID != got.ImageID || byInspect.Name != name {
		t.Errorf("Inspect = %+v, want image %q image ID %q name %q", byInspect, ref, got.ImageID, name)
	}
	if _, err := c.Inspect(ctx, unique("nosuch")); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Inspect of a missing container: %v, want ErrNotFound", err)
	}
}

// TestEventsReportStart sees the start of a new container on the event stream.
func TestEventsReportStart(t *testing.T) {
	bed := testbed.Require(t)
	c := newClient(t, bed)
	ref := bed.Registry + "/" + unique("events") + ":1.0.0"
	bed.BuildImage(t, ref, testbed.AppOptions{Version: "1.0.0"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events, errs := c.Events(ctx, time.Time{})
	name := unique("started")
	started := bed.RunContainer(t, name, ref, nil)
	for {
		select {
		case ev := <-events:
			if ev.ContainerID == started.ID && ev.Action == "start" {
				return
			}
		case err := <-errs:
			t.Fatalf("event stream ended: %v", err)
		case <-ctx.Done():
			t.Fatal("no start event for the new container within a minute")
		}
	}
}

func TestUnreachableEngine(t *testing.T) {
	c, err := docker.New(docker.Options{Host: "unix://" + t.TempDir() + "/none.sock"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("Ping of a missing socket = %v, want an error naming it", err)
	}
	if _, err := c.List(ctx, false); err == nil {
		t.Error("List of a missing socket succeeded")
	}
}

func versionAtMost(v, max string) bool {
	a, b := strings.Split(v, "."), strings.Split(max, ".")
	for i := 0; i < len(a) && i < len(b); i++ {
		x, _ := strconv.Atoi(a[i])
		y, _ := strconv.Atoi(b[i])
		if x != y {
			return x < y
		}
	}
	return len(a) <= len(b)
}
