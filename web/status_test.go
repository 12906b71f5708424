package web

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/tidewatch/tidewatch/core/config"
)

// TestReadyzSaysLittleToStrangers asks a real server's /readyz, with one
// check failing, as each kind of caller: strangers (no credentials, wrong
// ones, a token scoped to deploying) hear only ready or not; a user and an
// unscoped token hear which check fails; with auth off on loopback, anyone.
func TestReadyzSaysLittleToStrangers(t *testing.T) {
	failing := func(d *Deps, _ *config.Server) {
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

// TestWarnsCredentialsInClear: a server whose users' passwords would cross
// the network in clear text says so at start-up, at warn level, naming the
// variables; with TLS, or on loopback, it does not.
func TestWarnsCredentialsInClear(t *testing.T) {
	bc, _ := bcrypt.GenerateFromPassword([]byte(password), 10)
	ph, _ := config.ParsePasswordHash(string(bc))
	users := []config.User{{Name: "alice", Hash: ph}}
	for _, tc := range []struct {
		name string
		cfg  config.Server
		warn bool
	}{
		{"every interface, no TLS", config.Server{Address: "0.0.0.0", Users: users}, true},
		{"every interface, TLS", config.Server{Address: "0.0.0.0", Users: users, TLSCert: "c.pem", TLSKey: "k.pem"}, false},
		{"loopback", config.Server{Address: "127.0.0.1", Users: users}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf syncBuffer
			New(Deps{}, tc.cfg, slog.New(slog.NewTextHandler(&buf, nil)))
			out := buf.String()
			got := strings.Contains(out, "level=WARN") && strings.Contains(out, "clear text") &&
				strings.Contains(out, "TIDEWATCH_SERVER_AUTH_USERS") && strings.Contains(out, "TIDEWATCH_SERVER_TLS_CERT") &&
				strings.Contains(out, "variable=TIDEWATCH_SERVER_ADDRESS")
			if got != tc.warn {
				t.Errorf("start-up log (warning wanted: %v):\n%s", tc.warn, out)
			}
			if !tc.warn && strings.Contains(out, "level=WARN") {
				t.Errorf("start-up log warns:\n%s", out)
			}
		})
	}
}
