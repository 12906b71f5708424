package web

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core/store"
)

// TestPrincipalRecorded: every state-changing request's log line names its
// principal, and so does the history event it leaves (its own, or the one
// the request records: apply, watch, trigger test), for users, tokens and
// the anonymous caller of a server without auth. A deploy's context carries
// the principal to the deployer, which records the deploy with it.
func TestPrincipalRecorded(t *testing.T) {
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	type request struct {
		method, path, body string
		status             int
		route              string // in the log line
		kind, container    string // the history event it leaves
	}
	requests := func(e *env) []request {
		id := itoa(e.updateID)
		return []request{
			{"POST", "/api/containers/local/web/watch", "", 200, "/api/containers/{host}/{name}/watch", store.EventWatchRequested, "web"},
			{"POST", "/api/watch", "", 202, "/api/watch", store.EventWatchRequested, ""},
			{"POST", "/api/triggers/webhook.ops/test", "", 200, "/api/triggers/{name}/test", store.EventTriggerTested, ""},
			{"POST", "/api/updates/" + id + "/snooze", `{"until":"` + until + `"}`, 200, "/api/updates/{id}/snooze", store.EventSnoozed, "web"},
			{"POST", "/api/updates/" + id + "/apply", `{"trigger":"webhook.ops"}`, 202, "/api/updates/{id}/apply", store.EventApplyRequested, "web"},
			{"POST", "/api/updates/" + id + "/dismiss", "", 200, "/api/updates/{id}/dismiss", store.EventDismissed, "web"},
			{"POST", "/api/deploy", `{"project":"demo","service":"web","tag":"1.1.0"}`, 200, "/api/deploy", "", ""},
		}
	}
	for _, tc := range []struct {
		name  string
		opts  []option
		creds []string
		want  string
	}{
		{"user", []option{withAuth(t)}, asAlice, "user:alice"},
		{"token", []option{withAuth(t)}, asCI, "token:ci"},
		{"auth off", nil, nil, "anonymous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			for _, rq := range requests(e) {
				w := e.do(t, rq.method, rq.path, rq.body, tc.creds...)
				if w.Code != rq.status {
					t.Fatalf("%s %s = %d %s, want %d", rq.method, rq.path, w.Code, w.Body.String(), rq.status)
				}
				line := regexp.MustCompile(`(?m)^.*msg=request .*method=` + rq.method + ` route=` + regexp.QuoteMeta(rq.route) + ` .*$`).FindString(e.logs.String())
				if !strings.Contains(line, "level=INFO") || !strings.Contains(line, " principal="+tc.want) {
					t.Errorf("log line of %s %s = %q, want it at info with principal=%s", rq.method, rq.route, line, tc.want)
				}
			}
			page := decode[HistoryPage](t, e.do(t, "GET", "/api/history?limit=100", "", tc.creds...))
			for _, rq := range requests(e) {
				if rq.kind == "" {
					continue
				}
				found := false
				for _, ev := range page.Events {
					if ev.Kind == rq.kind && ev.Container == rq.container {
						found = true
						if ev.Principal != tc.want {
							t.Errorf("history event %s of %s %s has principal %q, want %q", ev.Kind, rq.method, rq.route, ev.Principal, tc.want)
						}
					}
				}
				if !found {
					t.Errorf("%s %s left no %s event in the history: %+v", rq.method, rq.route, rq.kind, page.Events)
				}
			}
			// The watch runs and detections of the daemon are nobody's.
			for _, ev := range page.Events {
				if ev.Kind == store.EventDetected && ev.Principal != "" {
					t.Errorf("a detection has principal %q, want none", ev.Principal)
				}
			}
			if len(e.deployer.actors) != 1 || e.deployer.actors[0] != tc.want {
				t.Errorf("the deployer's contexts carried actors %q, want [%s]", e.deployer.actors, tc.want)
			}
		})
	}
}

// TestFailedLoginLogLine: a refused request is logged without a principal.
func TestFailedLoginLogLine(t *testing.T) {
	e := newEnv(t, withAuth(t))
	if w := e.do(t, "POST", "/api/watch", "", "Authorization", "Bearer nope"); w.Code != http.StatusUnauthorized {
		t.Fatalf("POST /api/watch with a wrong token = %d", w.Code)
	}
	if !regexp.MustCompile(`msg=request .*method=POST .*status=401 .*principal=""`).MatchString(e.logs.String()) {
		t.Errorf("log of a refused request:\n%s\nwant status=401 and an empty principal", e.logs.String())
	}
}
