package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidewatch/tidewatch/core"
)

func TestEndpoints(t *testing.T) {
	e := newEnv(t, withAuth(t))
	id := fmt.Sprint(e.updateID)
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name, method, path, body string
		status                   int
		// contains is in the body on success; field is error.field on failure.
		contains, field string
	}{
		{"health", "GET", "/healthz", "", 200, `"ok"`, ""},
		{"ready", "GET", "/readyz", "", 200, `"store":"ok"`, ""},
		{"metrics", "GET", "/metrics", "", 200, "tidewatch_containers_watched", ""},
		{"openapi", "GET", "/api/openapi.json", "", 200, `"openapi":"3.0.3"`, ""},
		{"ui index", "GET", "/", "", 200, "<title>tidewatch</title>", ""},
		{"ui file", "GET", "/app.js", "", 200, "console.log", ""},
		{"ui missing", "GET", "/nope.js", "", 404, "", ""},

		{"containers", "GET", "/api/containers", "", 200, `"name":"web"`, ""},
		{"containers by host", "GET", "/api/containers?host=remote", "", 200, `"name":"db"`, ""},
		{"containers with update", "GET", "/api/containers?has_update=true&status=pending", "", 200, `"candidate":"1.1.0"`, ""},
		{"containers bad has_update", "GET", "/api/containers?has_update=maybe", "", 400, "", "has_update"},
		{"containers bad status", "GET", "/api/containers?status=late", "", 400, "", "status"},
		{"container", "GET", "/api/containers/local/broken", "", 200, `"error":"listing tags: unauthorized"`, ""},
		{"container policy", "GET", "/api/containers/local/web", "", 200, `"policy":{"tag.include":"^1\\.`, ""},
		{"container unknown", "GET", "/api/containers/local/nope", "", 404, "", ""},
		{"container unknown host", "GET", "/api/containers/mars/web", "", 404, "", ""},
		{"watch container", "POST", "/api/containers/local/web/watch", "", 200, `"candidate":"1.1.0"`, ""},
		{"watch unknown container", "POST", "/api/containers/local/nope/watch", "", 404, "", ""},
		{"watch all", "POST", "/api/watch", "", 202, `"started"`, ""},

		{"updates", "GET", "/api/updates", "", 200, `"container":"web"`, ""},
		{"updates by status", "GET", "/api/updates?status=pending,notified&host=remote", "", 200, `"container":"db"`, ""},
		{"updates bad status", "GET", "/api/updates?status=soon", "", 400, "", "status"},
		{"updates bad include_snoozed", "GET", "/api/updates?include_snoozed=perhaps", "", 400, "", "include_snoozed"},
		{"apply bad id", "POST", "/api/updates/abc/apply", `{"trigger":"compose.prod"}`, 400, "", "id"},
		{"apply zero id", "POST", "/api/updates/0/apply", `{"trigger":"compose.prod"}`, 400, "", "id"},
		{"apply unknown update", "POST", "/api/updates/9999/apply", `{"trigger":"compose.prod"}`, 404, "", ""},
		{"apply unknown trigger", "POST", "/api/updates/" + id + "/apply", `{"trigger":"compose.nope"}`, 404, "", ""},
		{"apply unknown field", "POST", "/api/updates/" + id + "/apply", `{"trigger":"compose.prod","force":true}`, 400, "", "force"},
		{"apply wrong type", "POST", "/api/updates/" + id + "/apply", `{"trigger":5}`, 400, "", "trigger"},
		{"apply malformed", "POST", "/api/updates/" + id + "/apply", `{"trigger":`, 400, "", "body"},
		{"dismiss bad id", "POST", "/api/updates/-1/dismiss", "", 400, "", "id"},
		{"dismiss unknown", "POST", "/api/updates/9999/dismiss", "", 404, "", ""},
		{"snooze bad until", "POST", "/api/updates/" + id + "/snooze", `{"until":"tomorrow"}`, 400, "", "until"},
		{"snooze past", "POST", "/api/updates/" + id + "/snooze", `{"until":"2001-01-01T00:00:00Z"}`, 400, "", "until"},
		{"snooze no until", "POST", "/api/updates/" + id + "/snooze", `{}`, 400, "", "until"},
		{"snooze no body", "POST", "/api/updates/" + id + "/snooze", ``, 400, "", "body"},
		{"snooze unknown", "POST", "/api/updates/9999/snooze", `{"until":"` + future + `"}`, 404, "", ""},

		{"deliveries", "GET", "/api/deliveries?update_id=" + id + "&status=pending&trigger=compose.prod", "", 200, `"deliveries":[]`, ""},
		{"deliveries bad update_id", "GET", "/api/deliveries?update_id=x", "", 400, "", "update_id"},
		{"deliveries bad status", "GET", "/api/deliveries?status=lost", "", 400, "", "status"},
		{"deliveries bad limit", "GET", "/api/deliveries?limit=0", "", 400, "", "limit"},

		{"history", "GET", "/api/history?kind=detected,error,gone", "", 200, `"total":3`, ""},
		{"history filtered", "GET", "/api/history?container=web&host=local&kind=detected&since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z&limit=10&offset=0", "", 200, `"total":1`, ""},
		{"history bad since", "GET", "/api/history?since=yesterday", "", 400, "", "since"},
		{"history bad until", "GET", "/api/history?until=2026-13-01", "", 400, "", "until"},
		{"history until before since", "GET", "/api/history?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "", 400, "", "until"},
		{"history bad kind", "GET", "/api/history?kind=exploded", "", 400, "", "kind"},
		{"history bad limit", "GET", "/api/history?limit=100000", "", 400, "", "limit"},
		{"history bad offset", "GET", "/api/history?offset=-3", "", 400, "", "offset"},

		{"triggers", "GET", "/api/triggers", "", 200, `"value":"[redacted]"`, ""},
		{"trigger test", "POST", "/api/triggers/webhook.ops/test", "", 200, `"ok":true`, ""},
		{"trigger test unknown", "POST", "/api/triggers/webhook.nope/test", "", 404, "", ""},
		{"watchers", "GET", "/api/watchers", "", 200, `"containers":3`, ""},
		{"registries", "GET", "/api/registries", "", 200, `"ratelimit_remaining":90`, ""},

		{"deploy", "POST", "/api/deploy", `{"project":"demo","service":"web","tag":"1.1.0"}`, 200, `"result":"applied"`, ""},
		{"deploy no tag", "POST", "/api/deploy", `{"project":"demo","service":"web"}`, 400, "", "tag"},
		{"deploy bad project", "POST", "/api/deploy", `{"project":"../etc","service":"web","tag":"1"}`, 400, "", "project"},
		{"deploy bad service", "POST", "/api/deploy", `{"project":"demo","service":"","tag":"1"}`, 400, "", "service"},
		{"deploy bad tag", "POST", "/api/deploy", `{"project":"demo","service":"web","tag":"1 2"}`, 400, "", "tag"},

		{"unknown api route", "GET", "/api/nope", "", 404, "", ""},
		{"wrong method", "DELETE", "/api/updates", "", 405, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(t, tc.method, tc.path, tc.body, asAlice...)
			if w.Code != tc.status {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, w.Code, w.Body.String(), tc.status)
			}
			if tc.status >= 400 {
				got := errorOf(t, w)
				if got.Field != tc.field {
					t.Errorf("%s %s error field = %q (%s), want %q", tc.method, tc.path, got.Field, got.Message, tc.field)
				}
				return
			}
			if !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("%s %s body = %s, want it to contain %s", tc.method, tc.path, w.Body.String(), tc.contains)
			}
		})
	}
	if len(e.deployer.got) != 1 || e.deployer.got[0] != (DeployRequest{Project: "demo", Service: "web", Tag: "1.1.0"}) {
		t.Errorf("deploys = %+v, want one of demo/web to 1.1.0", e.deployer.got)
	}
	if e.watcher.runs != 1 {
		t.Errorf("RunAll calls = %d, want 1", e.watcher.runs)
	}
}

func TestApplyDismissSnooze(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	events := e.broker.Subscribe(t.Context())
	id := fmt.Sprint(e.updateID)

	// Apply through the only manual trigger, chosen by default.
	w := e.do(t, "POST", "/api/updates/"+id+"/apply", "")
	if w.Code != http.StatusAccepted {
		t.Fatalf("apply = %d %s, want 202", w.Code, w.Body.String())
	}
	got := decode[ApplyResponse](t, w)
	if got.Delivery.Trigger != "compose.prod" || got.Delivery.Status != "pending" || got.Delivery.ID == 0 || got.Delivery.UpdateID != e.updateID {
		t.Errorf("apply delivery = %+v, want a pending delivery of update %d to compose.prod", got.Delivery, e.updateID)
	}
	u, err := e.st.Update(ctx, e.updateID)
	if err != nil || u.Status != core.StatusApplying {
		t.Errorf("update after apply through a deploying trigger = %v, %v; want applying", u.Status, err)
	}
	for _, want := range []string{EventUpdate, EventDelivery} {
		select {
		case ev := <-events:
			if ev.Type != want {
				t.Errorf("event = %s, want %s", ev.Type, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event after apply", want)
		}
	}
	if w := e.do(t, "POST", "/api/updates/"+id+"/apply", `{"trigger":"compose.prod"}`); w.Code != http.StatusConflict {
		t.Errorf("apply while applying = %d %s, want 409", w.Code, w.Body.String())
	}
	ds := decode[struct{ Deliveries []Delivery }](t, e.do(t, "GET", "/api/deliveries?update_id="+id, ""))
	if len(ds.Deliveries) != 1 || ds.Deliveries[0].ID != got.Delivery.ID || ds.Deliveries[0].Update == nil {
		t.Errorf("deliveries of update = %+v, want the one applied, with its update", ds.Deliveries)
	}

	// Snooze: the update leaves the default list until the time given.
	if err := e.st.SetUpdateStatus(ctx, e.updateID, core.StatusPending, time.Time{}); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	w = e.do(t, "POST", "/api/updates/"+id+"/snooze", `{"until":"`+until.Format(time.RFC3339)+`"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("snooze = %d %s, want 200", w.Code, w.Body.String())
	}
	if su := decode[Update](t, w); !su.SnoozedUntil.Equal(until) {
		t.Errorf("snoozed update = %+v, want snoozed until %s", su, until)
	}
	names := func(path string) []string {
		var out []string
		for _, u := range decode[struct{ Updates []Update }](t, e.do(t, "GET", path, "")).Updates {
			out = append(out, u.Host+"/"+u.Container)
		}
		return out
	}
	if diff := cmp.Diff([]string{"remote/db"}, names("/api/updates")); diff != "" {
		t.Errorf("pending updates after snooze (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"local/web", "remote/db"}, names("/api/updates?include_snoozed=true")); diff != "" {
		t.Errorf("updates with snoozed (-want +got):\n%s", diff)
	}

	// Dismiss: gone from the list, and in the history.
	if w := e.do(t, "POST", "/api/updates/"+id+"/dismiss", ""); w.Code != http.StatusOK || decode[Update](t, w).Status != core.StatusDismissed {
		t.Fatalf("dismiss = %d %s, want 200 and dismissed", w.Code, w.Body.String())
	}
	if diff := cmp.Diff([]string{"local/web"}, names("/api/updates?status=dismissed")); diff != "" {
		t.Errorf("dismissed updates (-want +got):\n%s", diff)
	}
	h := decode[HistoryPage](t, e.do(t, "GET", "/api/history?kind=dismissed,snoozed", ""))
	if h.Total != 2 || len(h.Events) != 2 || h.Events[0].Kind != "dismissed" {
		t.Errorf("history of dismissed and snoozed = %+v, want both, dismissed first", h)
	}
}

func TestApplyNeedsTriggerWhenSeveralManual(t *testing.T) {
	e := newEnv(t)
	e.triggers.list = append(e.triggers.list, TriggerInfo{Name: "command.deploy", Type: "command"})
	w := e.do(t, "POST", fmt.Sprintf("/api/updates/%d/apply", e.updateID), "")
	if w.Code != http.StatusBadRequest || errorOf(t, w).Field != "trigger" {
		t.Errorf("apply without trigger among two manual ones = %d %s, want 400 naming trigger", w.Code, w.Body.String())
	}
	// A trigger that does not deploy leaves the status alone.
	w = e.do(t, "POST", fmt.Sprintf("/api/updates/%d/apply", e.updateID), `{"trigger":"command.deploy"}`)
	if w.Code != http.StatusAccepted {
		t.Fatalf("apply through command.deploy = %d %s", w.Code, w.Body.String())
	}
	if u, _ := e.st.Update(context.Background(), e.updateID); u.Status != core.StatusPending {
		t.Errorf("status after a non-deploying apply = %s, want pending", u.Status)
	}
}

func TestDeployOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		deps   func(*env)
		status int
		code   string
	}{
		{"rolled back", func(e *env) { e.deployer.result = DeployResult{Result: "rolled-back", Detail: "health check failed"} }, 409, "deploy_rolled-back"},
		{"unknown service", func(e *env) { e.deployer.err = fmt.Errorf("no service web: %w", core.ErrNotFound) }, 404, "not_found"},
		{"busy", func(e *env) { e.deployer.err = fmt.Errorf("rollout of demo in progress: %w", ErrConflict) }, 409, "conflict"},
		{"internal", func(e *env) { e.deployer.err = fmt.Errorf("docker said: secret path /root/%s", canary) }, 500, "internal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.deps(e)
			w := e.do(t, "POST", "/api/deploy", `{"project":"demo","service":"web","tag":"1.1.0"}`)
			if w.Code != tc.status || errorOf(t, w).Code != tc.code {
				t.Errorf("deploy = %d %s, want %d with code %s", w.Code, w.Body.String(), tc.status, tc.code)
			}
			if strings.Contains(w.Body.String(), canary) {
				t.Errorf("deploy error shows internals: %s", w.Body.String())
			}
		})
	}
	t.Run("no deployer", func(t *testing.T) {
		e := newEnv(t, func(d *Deps, _ *Config) { d.Deployer = nil })
		w := e.do(t, "POST", "/api/deploy", `{"project":"demo","service":"web","tag":"1.1.0"}`)
		if w.Code != http.StatusNotImplemented || !strings.Contains(errorOf(t, w).Message, "compose trigger") {
			t.Errorf("deploy without deployer = %d %s, want 501 naming the compose trigger", w.Code, w.Body.String())
		}
	})
}

func TestPanicIsA500(t *testing.T) {
	e := newEnv(t)
	e.watcher.panics = true
	w := e.do(t, "GET", "/api/watchers", "")
	if w.Code != http.StatusInternalServerError || errorOf(t, w).Code != "internal" {
		t.Fatalf("panicking handler = %d %s, want 500", w.Code, w.Body.String())
	}
	if strings.Contains(w.Body.String(), canary) || w.Header().Get("X-Request-Id") == "" {
		t.Errorf("panic response = %s (request id %q), want no panic text and a request id", w.Body.String(), w.Header().Get("X-Request-Id"))
	}
	if !strings.Contains(w.Body.String(), w.Header().Get("X-Request-Id")) {
		t.Errorf("panic response %s does not name the request id %s", w.Body.String(), w.Header().Get("X-Request-Id"))
	}
}

func TestReadyzFails(t *testing.T) {
	e := newEnv(t, func(d *Deps, _ *Config) {
		d.Ready["engine local"] = func(context.Context) error { return fmt.Errorf("dial unix %s: refused", canary) }
	})
	w := e.do(t, "GET", "/readyz", "")
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"engine local":"failing"`) || strings.Contains(w.Body.String(), canary) {
		t.Errorf("readyz with a failing engine = %d %s, want 503 naming the check without its error", w.Code, w.Body.String())
	}
}

// TestApplyRefusalAndPrincipal: a trigger's policy refusing an apply
// answers 403 naming the rule; an accepted one is asked on behalf of the
// authenticated principal.
func TestApplyRefusalAndPrincipal(t *testing.T) {
	e := newEnv(t, withAuth(t))
	ctx := context.Background()
	ref, _ := core.ParseImageRef("registry.example/excluded:1.0.0")
	ups, err := e.st.RecordRun(ctx, "local", []core.Check{{Container: core.Container{ID: "id-excluded", Name: "excluded", Image: ref.String(), State: "running"},
		Ref: ref, Current: "1.0.0", Candidate: "1.1.0", Kind: core.KindMinor}}, time.Time{})
	if err != nil || len(ups) != 1 {
		t.Fatalf("RecordRun = %v, %v", ups, err)
	}
	auth := []string{"Authorization", "Bearer " + apiToken}
	w := e.do(t, "POST", fmt.Sprintf("/api/updates/%d/apply", ups[0].ID), `{"trigger":"compose.prod"}`, auth...)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"code":"refused"`) || !strings.Contains(w.Body.String(), "EXCLUDE=excluded") {
		t.Errorf("apply of an excluded container = %d %s, want 403 refused naming EXCLUDE=excluded", w.Code, w.Body.String())
	}
	w = e.do(t, "POST", fmt.Sprintf("/api/updates/%d/apply", e.updateID), `{"trigger":"compose.prod"}`, auth...)
	if w.Code != http.StatusAccepted {
		t.Fatalf("apply = %d %s", w.Code, w.Body.String())
	}
	if got := e.triggers.principals; len(got) != 1 || got[0] != "token:ci" {
		t.Errorf("principals asked for = %v, want [token:ci]", got)
	}
}
