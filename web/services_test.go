package web

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidewatch/tidewatch/core"
)

// TestServicesInContainersAPI: a Swarm service recorded by a manager's
// watcher is listed among the containers with type service and its
// replicas, nodes and update state; the type filter keeps services or
// containers only, and refuses anything else naming the parameter.
func TestServicesInContainersAPI(t *testing.T) {
	e := newEnv(t)
	ref, _ := core.ParseImageRef("registry.example/shop/web:1.0.0")
	svc := &core.Service{Mode: "replicated", Running: 2, Desired: 2, Nodes: []string{"node-a", "node-b"}, Stack: "shop", UpdateState: "completed", UpdateMessage: "update completed"}
	check := core.Check{Container: core.Container{ID: "svc-id", Name: "shop_web", Image: "registry.example/shop/web:1.0.0", State: "running",
		Kind: core.ObjectService, Service: svc}, Ref: ref, Current: "1.0.0", Candidate: "1.1.0", Kind: core.KindMinor, CheckedAt: time.Now()}
	if _, err := e.st.RecordRun(context.Background(), "manager", []core.Check{check}, time.Now()); err != nil {
		t.Fatal(err)
	}

	list := func(query string) []Container {
		t.Helper()
		w := e.do(t, "GET", "/api/containers"+query, "")
		if w.Code != 200 {
			t.Fatalf("GET /api/containers%s = %d %s", query, w.Code, w.Body.String())
		}
		return decode[struct{ Containers []Container }](t, w).Containers
	}
	services := list("?type=service")
	if len(services) != 1 || services[0].Name != "shop_web" || services[0].Type != TypeService {
		t.Fatalf("services = %+v, want shop_web", services)
	}
	if diff := cmp.Diff(svc, services[0].Service); diff != "" {
		t.Errorf("service details (-want +got):\n%s", diff)
	}
	if services[0].Kind != core.KindMinor || services[0].Candidate != "1.1.0" {
		t.Errorf("service update = %s %s, want minor 1.1.0", services[0].Kind, services[0].Candidate)
	}
	containers := list("?type=container")
	for _, c := range containers {
		if c.Type != TypeContainer || c.Service != nil {
			t.Errorf("?type=container listed %s (type %q, service %+v)", c.Name, c.Type, c.Service)
		}
	}
	if all := list(""); len(all) != len(containers)+1 {
		t.Errorf("all = %d rows, want %d containers and the service", len(all), len(containers))
	}
	for _, bad := range []string{"?type=services", "?type=%3Cscript%3E", "?type=SERVICE"} {
		w := e.do(t, "GET", "/api/containers"+bad, "")
		if w.Code != 400 || errorOf(t, w).Field != "type" {
			t.Errorf("GET /api/containers%s = %d %s, want 400 naming type", bad, w.Code, w.Body.String())
		}
	}
}
