package docker_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/test/testbed"
)

func TestSplitPinned(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct{ in, name, digest string }{
		{"127.0.0.1:5000/app:1.0.0@" + d, "127.0.0.1:5000/app:1.0.0", d},
		{"nginx:latest@" + d, "nginx:latest", d},
		{"nginx:1.25", "nginx:1.25", ""},
		{"127.0.0.1:5000/app@" + d, "127.0.0.1:5000/app@" + d, ""}, // no tag to follow: kept whole
		{"localhost:5000/a/b@" + d, "localhost:5000/a/b@" + d, ""},
		{"", "", ""},
		{"@", "@", ""},
		{"app:1@", "app:1", ""},
	} {
		name, digest := docker.SplitPinned(tc.in)
		if name != tc.name || digest != tc.digest {
			t.Errorf("SplitPinned(%q) = %q, %q; want %q, %q", tc.in, name, digest, tc.name, tc.digest)
		}
	}
}

// TestServicesOnAManager puts the engine in swarm mode and checks what the
// watch loop sees there: each service once, as a core.Container (the spec's
// image without the pinned digest, which is its RepoDigest; the service's
// labels; replicas and nodes; the image its tasks run here), no task
// container, a service scaled to zero only when all are asked for, a
// service named like a container told apart; Inspect of a task container,
// of a service's name or ID gives the service; service events come as
// "start" of the service; with NoServices, none of it.
func TestServicesOnAManager(t *testing.T) {
	bed := testbed.Require(t)
	ctx := context.Background()
	repo := bed.Registry + "/" + unique("svc")
	digest := bed.BuildImage(t, repo+":1.0.0", testbed.AppOptions{Version: "1.0.0", Healthcheck: true})
	c := newClient(t, bed)
	off, err := docker.New(docker.Options{Host: bed.DockerHost, NoServices: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { off.Close() })

	bed.Swarm(t)
	events, errs := c.Events(ctx, time.Time{})
	web := unique("web")
	webID := bed.CreateService(t, web, repo+":1.0.0", testbed.ServiceOptions{Replicas: 2,
		Labels: map[string]string{core.LabelWatch: "true", core.LabelDisplayName: "The web", docker.LabelStack: "shop"}})
	idle := unique("idle")
	idleID := bed.CreateService(t, idle, repo+":1.0.0", testbed.ServiceOptions{NoReplicas: true})
	twin := unique("twin")
	bed.RunContainer(t, twin, repo+":1.0.0", nil)
	twinID := bed.CreateService(t, twin, repo+":1.0.0", testbed.ServiceOptions{})
	hostname, _ := os.Hostname()
	info, _ := bed.Docker().Info(ctx)
	if info.Name != "" {
		hostname = info.Name
	}

	ctrs, err := c.List(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, ctr := range ctrs {
		if ctr.Labels[docker.LabelServiceID] != "" {
			t.Errorf("List returned task container %s of service %s", ctr.Name, ctr.Labels[docker.LabelServiceID])
		}
	}
	got, ok := find(ctrs, web)
	if !ok {
		t.Fatalf("List did not return service %s", web)
	}
	want := core.Service{Mode: "replicated", Running: 2, Desired: 2, Nodes: []string{hostname}, Stack: "shop"}
	if got.Kind != core.ObjectService || got.ID != webID || got.Image != repo+":1.0.0" || got.State != docker.ServiceRunning ||
		got.DisplayName != "The web" || got.Labels[core.LabelWatch] != "true" || got.Service == nil {
		t.Fatalf("service %s listed as kind %q id %q image %q state %q display %q labels %v service %+v", web, got.Kind, got.ID, got.Image, got.State, got.DisplayName, got.Labels, got.Service)
	}
	s := *got.Service
	s.UpdateState, s.UpdateMessage = "", ""
	if !slices.Equal(s.Nodes, want.Nodes) || s.Mode != want.Mode || s.Running != want.Running || s.Desired != want.Desired || s.Stack != want.Stack {
		t.Errorf("service %s: %+v, want %+v", web, s, want)
	}
	if !slices.Contains(got.RepoDigests, repo+"@"+digest) {
		t.Errorf("service RepoDigests = %v, want the pinned %s", got.RepoDigests, repo+"@"+digest)
	}
	if got.ImageID == "" || got.Platform.OS != "linux" || got.Platform.Architecture == "" {
		t.Errorf("service image ID %q, platform %+v: want those of the image its tasks run here", got.ImageID, got.Platform)
	}
	if _, ok := find(ctrs, idle); ok {
		t.Errorf("List(all=false) returned service %s, which has no replica", idle)
	}
	// Containers, as the watch loop lists: the spec's pin alone and the
	// image ID of a task here, whose inspect adds its digests after the pin.
	bare, err := c.Containers(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := find(bare, web); !ok || !slices.Equal(b.RepoDigests, []string{repo + "@" + digest}) || b.ImageID != got.ImageID || b.Platform != (core.Platform{}) {
		t.Errorf("Containers: service %s = digests %v image ID %q platform %+v; want only the pin %s, image ID %q, no platform", web, b.RepoDigests, b.ImageID, b.Platform, repo+"@"+digest, got.ImageID)
	} else {
		img, err := c.Image(ctx, b.ImageID)
		if err != nil {
			t.Fatal(err)
		}
		b.SetImage(img)
		if len(b.RepoDigests) == 0 || b.RepoDigests[0] != repo+"@"+digest || b.Platform != got.Platform {
			t.Errorf("Containers then Image: service %s digests %v platform %+v; want the pin first and the image's platform %+v", web, b.RepoDigests, b.Platform, got.Platform)
		}
	}
	if c, ok := find(ctrs, twin); !ok || c.IsService() {
		t.Errorf("List: container %s = %+v, %v; want the container", twin, c, ok)
	}
	if s, ok := find(ctrs, twin+docker.ServiceNameSuffix); !ok || s.ID != twinID {
		t.Errorf("List: service %s named %q, want it told apart from the container of the same name", twin, twin+docker.ServiceNameSuffix)
	}
	all, err := c.List(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := find(all, idle); !ok || s.State != docker.ServiceScaledToZero || s.Service.Desired != 0 || s.ID != idleID {
		t.Errorf("List(all=true): service %s = %+v, %v; want it scaled to zero", idle, s, ok)
	}

	// Inspect: a task container, the service's name, its ID, the suffixed twin.
	view := bed.Service(t, webID)
	for _, id := range []string{view.Running[0].ID, web, webID} {
		got, err := c.Inspect(ctx, id)
		if err != nil || got.ID != webID || !got.IsService() || got.Image != repo+":1.0.0" || got.Service.Running != 2 ||
			len(got.RepoDigests) == 0 || got.RepoDigests[0] != repo+"@"+digest || got.Platform.OS != "linux" {
			t.Errorf("Inspect(%s) = %+v, %v; want service %s", id, got, err, web)
		}
	}
	if got, err := c.Inspect(ctx, twin+docker.ServiceNameSuffix); err != nil || got.ID != twinID || got.Name != twin+docker.ServiceNameSuffix {
		t.Errorf("Inspect(%s) = %q %q, %v; want service %s", twin+docker.ServiceNameSuffix, got.ID, got.Name, err, twinID)
	}
	if got, err := c.Inspect(ctx, twin); err != nil || got.IsService() {
		t.Errorf("Inspect(%s) = %+v, %v; want the container", twin, got, err)
	}
	if _, err := c.Inspect(ctx, unique("nothing")); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Inspect(unknown) = %v, want ErrNotFound", err)
	}

	// Without services: no service, still no task container; a task is not found.
	offList, err := off.List(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, ctr := range offList {
		if ctr.IsService() || ctr.Labels[docker.LabelServiceID] != "" {
			t.Errorf("NoServices: List returned %s (kind %q)", ctr.Name, ctr.Kind)
		}
	}
	if _, err := off.Inspect(ctx, view.Running[0].ID); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("NoServices: Inspect(task container) = %v, want ErrNotFound", err)
	}

	// Events: the services created came as "start" of each service.
	seen := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for !seen[webID] || !seen[idleID] {
		select {
		case ev := <-events:
			if ev.Action == "start" {
				seen[ev.ContainerID] = true
			}
		case err := <-errs:
			t.Fatalf("events: %v", err)
		case <-deadline:
			t.Fatalf("events: no start of services %s and %s within 30s; saw %v", webID, idleID, seen)
		}
	}
}

// TestServicesOnAPlainEngine: an engine that is no swarm manager lists no
// service and says so without an error.
func TestServicesOnAPlainEngine(t *testing.T) {
	bed := testbed.Require(t)
	ctx := context.Background()
	c := newClient(t, bed)
	info, err := bed.Docker().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Swarm.ControlAvailable {
		t.Skip("the engine is a swarm manager now")
	}
	ctrs, err := c.List(ctx, true)
	if err != nil {
		t.Fatalf("List on a plain engine: %v", err)
	}
	for _, ctr := range ctrs {
		if ctr.IsService() {
			t.Errorf("List on a plain engine returned service %s", ctr.Name)
		}
	}
	if _, err := c.InspectService(ctx, "anything"); !errors.Is(err, core.ErrNotFound) || !strings.Contains(err.Error(), "not a swarm manager") {
		t.Errorf("InspectService on a plain engine = %v, want ErrNotFound saying it is no manager", err)
	}
}
