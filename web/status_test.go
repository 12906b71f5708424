package web

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestReadyzSaysLittleToStrangers asks a real server's /readyz, with one
// check failing, as each kind of caller: strangers (no credentials, wrong
// ones, a token scoped to deploying) hear only ready or not; a user and an
// unscoped token hear which check fails; with auth off on loopback, anyone.
func TestReadyzSaysLittleToStrangers(t *testing.T) {
	failing := func(d *Deps, _ *Config) {
		d.Ready["engine edge"] = func(context.Context) error { return errors.New("dial tcp edge:2376: refused " + canary) }
	}
	authed := newEnv(t, withAuth(t), withDeployToken, failing)
	la := authed.serveLive(t)
	wrong := []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wrong"))}
	for _, tc := range []struct {
		name    string
		creds   []string
		details bool
	}{
		{"no credentials", nil, false},
		{"wrong password", wrong, false},
		{"unknown token", []string{"Authorization", "Bearer nope"}, false},
		{"token scoped to deploying", asShopCI, false},
		{"user", asAlice, true},
		{"token", asCI, true},
	} {
		code, body, _ := la.send(t, "GET", "/readyz", "", "", tc.creds...)
		want := `{"status":"not ready"}` + "\n"
		if tc.details {
			want = `{"checks":{"engine edge":"failing","store":"ok"},"status":"not ready"}` + "\n"
		}
		if code != http.StatusServiceUnavailable || body != want {
			t.Errorf("GET /readyz, %s = %d %q, want 503 %q", tc.name, code, body, want)
		}
		if strings.Contains(body, canary) {
			t.Errorf("GET /readyz, %s shows a check's error: %s", tc.name, body)
		}
	}
	// Ready: the same word, 200.
	fine := newEnv(t, withAuth(t))
	lf := fine.serveLive(t)
	if code, body, _ := lf.send(t, "GET", "/readyz", "", ""); code != http.StatusOK || body != `{"status":"ready"}`+"\n" {
		t.Errorf("GET /readyz, ready, no credentials = %d %q, want 200 {\"status\":\"ready\"}", code, body)
	}

	// Auth off, on loopback: this machine's callers hear everything.
	open := newEnv(t, failing)
	lo := open.serveLive(t)
	if code, body, _ := lo.send(t, "GET", "/readyz", "", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, `"engine edge":"failing"`) {
		t.Errorf("GET /readyz, auth off = %d %q, want 503 naming the failing check", code, body)
	}
}
