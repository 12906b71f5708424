package testbed_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// TestSwarmModeForOneTest: inside a test, the engine is a one-node swarm
// manager that runs a 2-replica service from a scratch image with a
// healthcheck, pinned by digest; when the test ends the engine has left the
// swarm and the docker_gwbridge network is gone.
func TestSwarmModeForOneTest(t *testing.T) {
	bed := testbed.Require(t)
	ref := bed.Registry + "/" + unique("swarm") + ":1.0.0"
	digest := bed.BuildImage(t, ref, testbed.AppOptions{Version: "1.0.0", Healthcheck: true})
	t.Run("in swarm mode", func(t *testing.T) {
		bed.Swarm(t)
		info, err := bed.Docker().Info(context.Background())
		if err != nil || !info.Swarm.ControlAvailable {
			t.Fatalf("engine after Swarm: manager=%v, %v; want a manager", info.Swarm.ControlAvailable, err)
		}
		id := bed.CreateService(t, unique("svc"), ref, testbed.ServiceOptions{Replicas: 2})
		v := bed.Service(t, id)
		if want := ref + "@" + digest; v.Image() != want {
			t.Errorf("service image = %q, want it pinned: %q", v.Image(), want)
		}
		if got := v.Versions(); len(got) != 2 || got[0] != "1.0.0" || got[1] != "1.0.0" {
			t.Errorf("running replicas' versions = %v, want [1.0.0 1.0.0]", got)
		}
		for _, c := range v.Running {
			if c.State.Health == nil || c.State.Health.Status != "healthy" {
				t.Errorf("replica %s health = %+v, want healthy (the image's exec-form HEALTHCHECK)", c.Name, c.State.Health)
			}
		}
	})
	if t.Failed() || t.Skipped() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := bed.Docker().Info(ctx)
	if err != nil || info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
		t.Errorf("engine after the test: swarm %q, %v; want inactive", info.Swarm.LocalNodeState, err)
	}
	if _, err := bed.Docker().NetworkInspect(ctx, "docker_gwbridge", network.InspectOptions{}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("docker_gwbridge after the test: %v; want it removed", err)
	}
}
