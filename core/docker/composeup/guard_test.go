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
	if created, stopped, archived := g.done(); len(created) > 0 || stopped || archived {
		t.Errorf("journal %v %v %v after refusals only, want empty", created, stopped, archived)
	}
}

// TestGuardJournal: the journal hears of a stop and of the archiving of the
// current container before they happen (an error from it stops them), and
// of each container created.
func TestGuardJournal(t *testing.T) {
	bed := testbed.Require(t)
	ctx := t.Context()
	c, err := newClient(Options{Host: bed.DockerHost})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	repo := bed.Registry + "/" + uniqueName("guardapp")
	bed.BuildImage(t, repo+":1.0.0", testbed.AppOptions{Version: "1.0.0"})
	cur := bed.RunContainer(t, uniqueName("guardcur"), repo+":1.0.0", nil)
	archive := uniqueName("guardarchive")
	var heard []Event
	refuse := errors.New("the disk is full")
	failing := true
	g := &guard{APIClient: c, current: cur.ID, archive: archive, journal: func(e Event) error {
		heard = append(heard, e)
		if failing {
			return refuse
		}
		// Told before: the container still runs under its name.
		if info := bed.Inspect(t, cur.ID); !info.State.Running || info.Name == "/"+archive {
			t.Errorf("journal told %s after the fact: running %v, name %s", e.Kind, info.State.Running, info.Name)
		}
		return nil
	}}
	if _, err := g.ContainerStop(ctx, cur.ID, client.ContainerStopOptions{}); !errors.Is(err, refuse) {
		t.Errorf("stop with a failing journal = %v, want its error", err)
	}
	if _, err := g.ContainerRemove(ctx, cur.ID, client.ContainerRemoveOptions{}); !errors.Is(err, refuse) {
		t.Errorf("archive with a failing journal = %v, want its error", err)
	}
	if info := bed.Inspect(t, cur.ID); !info.State.Running || info.Name != "/"+cur.Name {
		t.Errorf("after refusals the container is %s, running %v; want it untouched", info.Name, info.State.Running)
	}
	failing = false
	heard = nil
	if _, err := g.ContainerRemove(ctx, cur.ID, client.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(heard) != 1 || heard[0] != (Event{Kind: EventArchiving, ID: cur.ID}) {
		t.Errorf("journal heard %+v, want the archiving of %s", heard, cur.ID)
	}
	if info := bed.Inspect(t, cur.ID); info.Name != "/"+archive {
		t.Errorf("the container is named %s, want %s", info.Name, archive)
	}
}
