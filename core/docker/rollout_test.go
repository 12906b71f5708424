package docker_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/test/testbed"
)

// rolloutImages are the test app images the rollout tests share, pushed once.
var rolloutImages struct {
	once                            sync.Once
	repo                            string
	healthy, next, sick, dies, bare string
}

func images(t *testing.T, bed *testbed.Bed) {
	t.Helper()
	rolloutImages.once.Do(func() {
		repo := bed.Registry + "/" + unique("rollout")
		rolloutImages.repo = repo
		rolloutImages.healthy, rolloutImages.next = repo+":1.0.0", repo+":1.1.0"
		rolloutImages.sick, rolloutImages.dies, rolloutImages.bare = repo+":1.2.0", repo+":1.3.0", repo+":1.4.0"
		bed.BuildImage(t, rolloutImages.healthy, testbed.AppOptions{Version: "1.0.0", Healthcheck: true})
		bed.BuildImage(t, rolloutImages.next, testbed.AppOptions{Version: "1.1.0", Healthcheck: true})
		bed.BuildImage(t, rolloutImages.sick, testbed.AppOptions{Version: "1.2.0", Healthcheck: true, Fail: testbed.FailUnhealthy})
		bed.BuildImage(t, rolloutImages.dies, testbed.AppOptions{Version: "1.3.0", Fail: testbed.FailExit})
		bed.BuildImage(t, rolloutImages.bare, testbed.AppOptions{Version: "1.4.0"})
	})
	if rolloutImages.bare == "" || t.Failed() {
		t.Fatal("building the rollout test images failed")
	}
}

func TestPull(t *testing.T) {
	bed := testbed.Require(t)
	images(t, bed)
	c := newClient(t, bed)
	ctx := t.Context()
	if err := c.Pull(ctx, rolloutImages.next, core.RegistryAuth{}); err != nil {
		t.Fatalf("Pull(%s) = %v", rolloutImages.next, err)
	}
	id, err := c.ImageID(ctx, rolloutImages.next)
	if err != nil || !strings.HasPrefix(id, "sha256:") {
		t.Errorf("ImageID(%s) = %q, %v; want an image ID", rolloutImages.next, id, err)
	}
	missing := rolloutImages.repo + ":9.9.9"
	err = c.Pull(ctx, missing, core.RegistryAuth{})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Pull(%s) = %v, want an error naming it", missing, err)
	}
	if _, err := c.ImageID(ctx, missing); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("ImageID(%s) = %v, want ErrNotFound", missing, err)
	}
}

// TestCreateLike recreates a container on a user network, with a published
// port, an alias, its own environment and a label, from a new image, and
// checks that what the container was given is kept and what its image gave
// comes from the new image.
func TestCreateLike(t *testing.T) {
	bed := testbed.Require(t)
	images(t, bed)
	c := newClient(t, bed)
	api := bed.Docker()
	ctx := t.Context()
	bed.PullImage(t, rolloutImages.healthy)
	bed.PullImage(t, rolloutImages.next)

	netName := unique("rollnet")
	if _, err := api.NetworkCreate(ctx, netName, network.CreateOptions{Labels: map[string]string{testbed.LabelTest: "1"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.NetworkRemove(context.Background(), netName) })
	extraNet := unique("rollnet2")
	if _, err := api.NetworkCreate(ctx, extraNet, network.CreateOptions{Labels: map[string]string{testbed.LabelTest: "1"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.NetworkRemove(context.Background(), extraNet) })

	name := unique("like")
	port := nat.Port("8080/tcp")
	created, err := api.ContainerCreate(ctx,
		&container.Config{Image: rolloutImages.healthy, Env: []string{"OWN=1"}, Labels: map[string]string{testbed.LabelTest: "1", "app": "x"}, ExposedPorts: nat.PortSet{port: {}}},
		&container.HostConfig{NetworkMode: container.NetworkMode(netName), PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1"}}}},
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: {Aliases: []string{"web"}}}}, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Remove(context.Background(), created.ID, true) })
	if err := api.NetworkConnect(ctx, extraNet, created.ID, &network.EndpointSettings{Aliases: []string{"web-extra"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	old, err := c.WaitHealthy(ctx, created.ID, docker.WaitOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("the original container: %v", err)
	}

	archive := name + "-old"
	if err := c.Rename(ctx, created.ID, archive); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateLike(ctx, created.ID, rolloutImages.next, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Remove(context.Background(), id, true) })
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, err := c.WaitHealthy(ctx, id, docker.WaitOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("the new container: %v", err)
	}
	if st.Name != name || st.Image != rolloutImages.next || st.ImageID == old.ImageID || !st.Healthcheck {
		t.Errorf("new container: name %q image %q (ID %s, old %s) healthcheck %v; want %q on %s with the image's healthcheck", st.Name, st.Image, st.ImageID, old.ImageID, st.Healthcheck, name, rolloutImages.next)
	}
	info := bed.Inspect(t, id)
	if !slices.Contains(info.Config.Env, "OWN=1") || !slices.Contains(info.Config.Env, "VERSION=1.1.0") || slices.Contains(info.Config.Env, "VERSION=1.0.0") {
		t.Errorf("Env = %v, want OWN=1 kept and VERSION from the new image", info.Config.Env)
	}
	if info.Config.Labels["app"] != "x" {
		t.Errorf("Labels = %v, want app=x kept", info.Config.Labels)
	}
	if b := info.HostConfig.PortBindings[port]; len(b) != 1 || b[0].HostIP != "127.0.0.1" {
		t.Errorf("PortBindings = %v, want 8080 published on 127.0.0.1", info.HostConfig.PortBindings)
	}
	for net, alias := range map[string]string{netName: "web", extraNet: "web-extra"} {
		ep := info.NetworkSettings.Networks[net]
		if ep == nil || !slices.Contains(ep.Aliases, alias) || slices.Contains(ep.Aliases, created.ID[:12]) {
			t.Errorf("network %s: endpoint %+v, want alias %s and not the old container's ID", net, ep, alias)
		}
	}
	if info.Config.Hostname == created.ID[:12] {
		t.Errorf("Hostname = %s, the old container's ID; want the new one's", info.Config.Hostname)
	}

	lines, err := c.Logs(ctx, id, 5)
	if err != nil || len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n"), "1.1.0") {
		t.Errorf("Logs = %q, %v; want the app's start line with its version", lines, err)
	}
	found, err := c.FindContainers(ctx, map[string]string{"app": "x", testbed.LabelTest: "1"})
	if err != nil || len(found) != 2 || found[0].ID != id || found[1].ID != created.ID {
		t.Errorf("FindContainers = %d containers (%v), want the new then the old", len(found), err)
	}
	if err := c.Remove(ctx, created.ID, false); err != nil {
		t.Errorf("Remove(stopped) = %v", err)
	}
	if _, err := c.InspectState(ctx, created.ID); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("InspectState after Remove = %v, want ErrNotFound", err)
	}
	if err := c.Remove(ctx, created.ID, false); err != nil {
		t.Errorf("Remove of a removed container = %v, want nil", err)
	}
}

func TestWaitHealthy(t *testing.T) {
	bed := testbed.Require(t)
	images(t, bed)
	c := newClient(t, bed)
	tests := []struct {
		name    string
		image   func() string
		restart container.RestartPolicyMode
		reason  string // "" for healthy; alternatives separated by |
	}{
		{name: "healthy", image: func() string { return rolloutImages.healthy }},
		{name: "no healthcheck, stable", image: func() string { return rolloutImages.bare }},
		{name: "unhealthy", image: func() string { return rolloutImages.sick }, reason: "unhealthy"},
		{name: "exits", image: func() string { return rolloutImages.dies }, reason: "exited with code 1"},
		{name: "restarts", image: func() string { return rolloutImages.dies }, restart: container.RestartPolicyAlways, reason: "restart|exited"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctr := bed.RunContainer(t, unique("wait"), tc.image(), nil, testbed.RunOptions{NoWait: true, RestartPolicy: tc.restart})
			begin := time.Now()
			st, err := c.WaitHealthy(t.Context(), ctr.ID, docker.WaitOptions{Timeout: 30 * time.Second, StableFor: 2 * time.Second})
			took := time.Since(begin)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("WaitHealthy = %v, want healthy", err)
				}
				if !st.Running {
					t.Errorf("WaitHealthy returned a container that does not run: %+v", st)
				}
				if !st.Healthcheck && took < 2*time.Second {
					t.Errorf("WaitHealthy of a container without healthcheck returned after %s, before StableFor", took)
				}
				return
			}
			var nr *docker.NotReadyError
			if !errors.As(err, &nr) || !slices.ContainsFunc(strings.Split(tc.reason, "|"), func(r string) bool { return strings.Contains(nr.Reason, r) }) {
				t.Fatalf("WaitHealthy = %v, want a NotReadyError saying %q", err, tc.reason)
			}
			if took > 20*time.Second {
				t.Errorf("WaitHealthy took %s to see it; want it as soon as it shows", took)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		ctr := bed.RunContainer(t, unique("wait"), rolloutImages.bare, nil, testbed.RunOptions{NoWait: true})
		_, err := c.WaitHealthy(t.Context(), ctr.ID, docker.WaitOptions{Timeout: 500 * time.Millisecond, StableFor: time.Minute})
		var nr *docker.NotReadyError
		if !errors.As(err, &nr) || !strings.Contains(nr.Reason, "not stable within") {
			t.Errorf("WaitHealthy = %v, want not stable within the timeout", err)
		}
	})
	t.Run("gone", func(t *testing.T) {
		_, err := c.WaitHealthy(t.Context(), unique("nosuch"), docker.WaitOptions{Timeout: time.Second})
		var nr *docker.NotReadyError
		if !errors.As(err, &nr) || !strings.Contains(nr.Reason, "gone") {
			t.Errorf("WaitHealthy of a missing container = %v, want gone", err)
		}
	})
}

// TestCreateLikeCarriesVolumes recreates a container that has an image
// VOLUME, a volume without a source given at creation (docker run -v /x,
// and as compose v2 gives it: a mount without source) and a named volume:
// the new container mounts the same volumes, a marker written into each
// survives, and removing the old container keeps every volume.
func TestCreateLikeCarriesVolumes(t *testing.T) {
	bed := testbed.Require(t)
	images(t, bed)
	c := newClient(t, bed)
	api := bed.Docker()
	ctx := t.Context()
	repo := bed.Registry + "/" + unique("volapp")
	oldRef, newRef := repo+":1.0.0", repo+":1.1.0"
	bed.BuildVolumeImage(t, oldRef, testbed.AppOptions{Version: "1.0.0"}, "/imgvol")
	bed.BuildVolumeImage(t, newRef, testbed.AppOptions{Version: "1.1.0"}, "/imgvol")
	bed.PullImage(t, oldRef)
	bed.PullImage(t, newRef)
	namedVol := unique("named")
	if _, err := api.VolumeCreate(ctx, volume.CreateOptions{Name: namedVol, Labels: map[string]string{testbed.LabelTest: "1"}}); err != nil {
		t.Fatal(err)
	}

	name := unique("vols")
	created, err := api.ContainerCreate(ctx,
		&container.Config{Image: oldRef, Labels: map[string]string{testbed.LabelTest: "1"}, Volumes: map[string]struct{}{"/runvol": {}}},
		&container.HostConfig{
			Binds:  []string{namedVol + ":/named"},
			Mounts: []mount.Mount{{Type: mount.TypeVolume, Target: "/mountvol"}},
		}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Remove(context.Background(), created.ID, true) })
	dirs := []string{"/imgvol", "/runvol", "/mountvol", "/named"}
	volumes := map[string]string{}
	for _, d := range dirs {
		volumes[d] = bed.VolumeAt(t, created.ID, d)
		bed.WriteFile(t, created.ID, d+"/marker", []byte("kept "+d))
	}
	t.Cleanup(func() {
		for _, v := range volumes {
			_ = api.VolumeRemove(context.Background(), v, true)
		}
	})

	if err := c.Rename(ctx, created.ID, name+"-old"); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateLike(ctx, created.ID, newRef, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Remove(context.Background(), id, true) })
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, created.ID, true); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if got := bed.VolumeAt(t, id, d); got != volumes[d] {
			t.Errorf("%s: the new container mounts volume %s, want the old one's %s", d, got, volumes[d])
		}
		if got, ok := bed.ReadFile(t, id, d+"/marker"); !ok || string(got) != "kept "+d {
			t.Errorf("%s/marker in the new container = %q (found %v), want what was written into the old one", d, got, ok)
		}
		if !bed.VolumeExists(t, volumes[d]) {
			t.Errorf("volume %s (%s) is gone after the old container was removed", volumes[d], d)
		}
	}
}
