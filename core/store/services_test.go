package store

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidewatch/tidewatch/core"
)

// TestServiceRoundTrip: a Swarm service recorded by a run comes back with
// its kind, replicas, nodes and update state; a container recorded under
// the same row later (the service gone, a container of that name) has none.
func TestServiceRoundTrip(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	svc := check("web", "1.25.0", "1.26.0", core.KindMinor)
	svc.Container.Kind = core.ObjectService
	svc.Container.Service = &core.Service{Mode: "replicated", Running: 1, Desired: 2, Nodes: []string{"node-a", "node-b"},
		Stack: "shop", UpdateState: "rollback_completed", UpdateMessage: "update rolled back due to failure"}
	record(t, s, "manager", t0, svc)
	got, err := s.Containers(ctx, "manager")
	if err != nil || len(got) != 1 {
		t.Fatalf("Containers() = %v, %v; want the service", got, err)
	}
	if diff := cmp.Diff(svc.Container.Service, got[0].Container.Service); diff != "" || got[0].Container.Kind != core.ObjectService {
		t.Errorf("service read back: kind %q (-want +got):\n%s", got[0].Container.Kind, diff)
	}

	ctr := check("web", "1.25.0", "", core.KindNone)
	record(t, s, "manager", t1, ctr)
	got, err = s.Containers(ctx, "manager")
	if err != nil || len(got) != 1 {
		t.Fatalf("Containers() = %v, %v; want the container", got, err)
	}
	if got[0].Container.Kind != core.ObjectContainer || got[0].Container.Service != nil {
		t.Errorf("container recorded over the service's row: kind %q service %+v, want neither", got[0].Container.Kind, got[0].Container.Service)
	}
}
