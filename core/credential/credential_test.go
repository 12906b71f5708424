package credential

import "testing"

func TestMayDeploy(t *testing.T) {
	scope := []DeployTarget{{Project: "shop"}, {Project: "blog", Service: "web"}}
	for _, tc := range []struct {
		project, service string
		want             bool
	}{
		{"shop", "web", true}, {"shop", "worker", true}, {"blog", "web", true},
		{"blog", "db", false}, {"other", "web", false}, {"Shop", "web", false}, {"shopx", "web", false}, {"", "", false},
	} {
		if got := MayDeploy(scope, tc.project, tc.service); got != tc.want {
			t.Errorf("MayDeploy(%v, %q, %q) = %v, want %v", scope, tc.project, tc.service, got, tc.want)
		}
	}
	if MayDeploy(nil, "shop", "web") {
		t.Error("MayDeploy(nil scope) = true; a nil scope is no deploy target (callers check Scoped first)")
	}
}
