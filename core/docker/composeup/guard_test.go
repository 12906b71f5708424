package composeup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/moby/moby/client"

	"github.com/tidewatch/tidewatch/test/testbed"
)

func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestGuardRefuses: through the guard, compose can remove no volume,
// network, image or container it did not create, nor stop a container
// other than the service's; each stays.
func TestGuardRefuses(t *testing.T) {
	bed := testbed.Require(t)
	ctx := t.Context()
	c, err := newClient(Options{Host: bed.DockerHost})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	labels := map[string]string{testbed.LabelTest: "1"}
	vol, err := c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: uniqueName("guardvol"), Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.VolumeRemove(context.Background(), vol.Volume.Name, client.VolumeRemoveOptions{Force: true})
	})
	net, err := c.NetworkCreate(ctx, uniqueName("guardnet"), client.NetworkCreateOptions{Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	// Not ctx: t.Context() ends before the clean-ups run, and the network would be left.
	t.Cleanup(func() { _, _ = c.NetworkRemove(context.Background(), net.ID, client.NetworkRemoveOptions{}) })
	repo := bed.Registry + "/" + uniqueName("guardapp")
	bed.BuildImage(t, repo+":1.0.0", testbed.AppOptions{Version: "1.0.0"})
	other := bed.RunContainer(t, uniqueName("guardother"), repo+":1.0.0", nil)

	g := &guard{APIClient: c, current: "0123456789ab", archive: "x-old"}
	checks := []struct {
		name string
		do   func() error
	}{
		{"volume remove", func() error {
			_, err := g.VolumeRemove(ctx, vol.Volume.Name, client.VolumeRemoveOptions{Force: true})
			return err
		}},
		{"volume prune", func() error { _, err := g.VolumePrune(ctx, client.VolumePruneOptions{}); return err }},
		{"network remove", func() error { _, err := g.NetworkRemove(ctx, net.ID, client.NetworkRemoveOptions{}); return err }},
		{"image remove", func() error {
			_, err := g.ImageRemove(ctx, repo+":1.0.0", client.ImageRemoveOptions{Force: true})
			return err
		}},
		{"container remove", func() error {
			_, err := g.ContainerRemove(ctx, other.ID, client.ContainerRemoveOptions{Force: true})
			return err
		}},
		{"container stop", func() error { _, err := g.ContainerStop(ctx, other.ID, client.ContainerStopOptions{}); return err }},
		{"container prune", func() error { _, err := g.ContainerPrune(ctx, client.ContainerPruneOptions{}); return err }},
	}
	for _, tc := range checks {
		if err := tc.do(); !errors.Is(err, ErrRefused) {
			t.Errorf("%s through the guard = %v, want refused", tc.name, err)
		}
	}
	if _, err := c.VolumeInspect(ctx, vol.Volume.Name, client.VolumeInspectOptions{}); err != nil {
		t.Errorf("the volume is gone: %v", err)
	}
	if _, err := c.NetworkInspect(ctx, net.ID, client.NetworkInspectOptions{}); err != nil {
		t.Errorf("the network is gone: %v", err)
	}
	if info := bed.Inspect(t, other.ID); !info.State.Running {
		t.Errorf("the other container was stopped")
	}
	if created, stopped, archived := g.journal(); len(created) > 0 || stopped || archived {
		t.Errorf("journal %v %v %v after refusals only, want empty", created, stopped, archived)
	}
}
