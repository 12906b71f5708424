package web

import (
	"context"
	"crypto/sha256"
	"github.com/tidewatch/tidewatch/core/credential"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// deployToken is a token scoped to deploying shop (every service) and blog/web.
var deployToken = "tok-shop-" + canary

var asShopCI = []string{"Authorization", "Bearer " + deployToken}

func withDeployToken(_ *Deps, c *Config) {
	c.Tokens = append(c.Tokens, credential.Token{Name: "shop-ci", SHA256: sha256.Sum256([]byte(deployToken)),
		Deploy: []credential.DeployTarget{{Project: "shop"}, {Project: "blog", Service: "web"}}})
}

// TestScopedTokenOnlyDeploys: a token scoped to deploying may deploy its
// projects and services and nothing else — every other route but the open
// ones answers 403 and changes nothing, reads nothing; deploys of other
// projects or services are refused before the deployer hears of them.
// Users and unscoped tokens keep every right.
func TestScopedTokenOnlyDeploys(t *testing.T) {
	e := newEnv(t, withAuth(t), withDeployToken)
	n := 0
	for _, rt := range routeList(t, e.h) {
		method, route, _ := strings.Cut(rt, " ")
		if openRoutes[rt] || rt == "POST /api/deploy" {
			continue
		}
		n++
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // the event stream, were it let through, ends at once
		r := httptest.NewRequest(method, e.concrete(route), strings.NewReader(`{"trigger":"compose.prod","until":"2999-01-01T00:00:00Z"}`)).WithContext(ctx)
		r.Host = "127.0.0.1:8080"
		r.Header.Set(asShopCI[0], asShopCI[1])
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != http.StatusForbidden || errorOf(t, w).Code != "forbidden" || !strings.Contains(w.Body.String(), "shop, blog/web") {
			t.Errorf("%s %s with the scoped token = %d %s, want 403 naming its scope", method, e.concrete(route), w.Code, w.Body.String())
		}
	}
	if n < 17 {
		t.Errorf("tried %d routes, want every one", n)
	}
	e.untouched(t)

	// Deploys: the scope decides.
	for _, tc := range []struct {
		project, service string
		status           int
	}{
		{"shop", "web", 200}, {"shop", "worker", 200}, {"blog", "web", 200},
		{"blog", "db", 403}, {"other", "web", 403}, {"Shop", "web", 403}, {"shopping", "web", 403},
	} {
		body := `{"project":"` + tc.project + `","service":"` + tc.service + `","tag":"1.4.2"}`
		if w := e.do(t, "POST", "/api/deploy", body, asShopCI...); w.Code != tc.status {
			t.Errorf("scoped deploy of %s/%s = %d %s, want %d", tc.project, tc.service, w.Code, w.Body.String(), tc.status)
		}
	}
	want := []DeployRequest{{Project: "shop", Service: "web", Tag: "1.4.2"}, {Project: "shop", Service: "worker", Tag: "1.4.2"}, {Project: "blog", Service: "web", Tag: "1.4.2"}}
	if len(e.deployer.got) != len(want) {
		t.Fatalf("the deployer got %+v, want %+v", e.deployer.got, want)
	}
	for i := range want {
		if e.deployer.got[i] != want[i] {
			t.Errorf("deploy %d = %+v, want %+v", i, e.deployer.got[i], want[i])
		}
	}
	if e.deployer.actors[0] != "token:shop-ci" {
		t.Errorf("the deploy's actor = %q, want token:shop-ci", e.deployer.actors[0])
	}

	// A user and an unscoped token may do anything, deploys of any project too.
	for _, creds := range [][]string{asAlice, asCI} {
		if w := e.do(t, "POST", "/api/deploy", `{"project":"other","service":"db","tag":"2"}`, creds...); w.Code != http.StatusOK {
			t.Errorf("deploy of other/db by %s = %d %s, want 200", creds[1][:12], w.Code, w.Body.String())
		}
		for _, p := range []string{"/api/containers", "/api/history", "/metrics"} {
			if w := e.do(t, "GET", p, "", creds...); w.Code != http.StatusOK {
				t.Errorf("GET %s by %s = %d, want 200", p, creds[1][:12], w.Code)
			}
		}
		if w := e.do(t, "POST", "/api/watch", "", creds...); w.Code != http.StatusAccepted {
			t.Errorf("POST /api/watch by %s = %d, want 202", creds[1][:12], w.Code)
		}
	}
}
