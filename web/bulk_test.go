package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers"
)

// dispatched adapts the real dispatcher to the API, as the daemon does:
// unknown triggers are not found, an update being applied is a conflict.
type dispatched struct {
	d    *triggers.Dispatcher
	list []TriggerInfo
}

func (t *dispatched) List() []TriggerInfo { return t.list }

func (t *dispatched) Request(ctx context.Context, updateID int64, trigger, principal string) (store.Delivery, error) {
	dl, err := t.d.Request(ctx, updateID, trigger, principal)
	return dl, dispatchError(err)
}

func (t *dispatched) Check(ctx context.Context, updateID int64, trigger string) error {
	return dispatchError(t.d.Check(ctx, updateID, trigger))
}

func (t *dispatched) Test(context.Context, string) (TestResult, error) { return TestResult{}, nil }

func dispatchError(err error) error {
	switch {
	case errors.Is(err, triggers.ErrUnknownTrigger):
		return fmt.Errorf("%w: %w", err, core.ErrNotFound)
	case errors.Is(err, triggers.ErrApplying):
		return fmt.Errorf("%w: %w", err, ErrConflict)
	}
	return err
}

// quiet is a deploying trigger that is never fired in these tests (no
// dispatcher loop runs): what is enqueued stays in the outbox.
type quiet struct{}

func (quiet) Describe(context.Context) sdk.Description {
	return sdk.Description{Type: "compose", Deploys: true}
}
func (quiet) Configure(context.Context, string, map[string]string) error {
	return nil
}
func (quiet) Fire(_ context.Context, ups []sdk.Update) []sdk.Result {
	return sdk.All(len(ups), sdk.OK(""))
}

// withDispatcher serves the real dispatcher, with one manual deploying
// trigger, compose.prod, whose EXCLUDE is excl-*.
func withDispatcher(d *Deps, _ *Config) {
	st := d.Updates.(*store.Store)
	pol := core.DefaultTriggerPolicy()
	pol.Auto, pol.Exclude = false, []string{"excl-*"}
	disp := triggers.New(st, []triggers.Instance{{Name: "compose.prod", Trigger: quiet{}, Policy: pol, Deploys: true}}, nil)
	d.Triggers = &dispatched{d: disp, list: []TriggerInfo{{Name: "compose.prod", Type: "compose", Auto: false, Deploys: true}}}
}

// seedBulk records, beside newEnv's web (local, minor) and db (remote,
// major), shop-a and shop-b (local, patch) and excl-1 (local, minor),
// and returns the IDs by container.
func seedBulk(t *testing.T, e *env) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	var checks []core.Check
	for _, c := range []struct {
		name string
		kind core.UpdateKind
		to   string
	}{{"shop-a", core.KindPatch, "1.0.1"}, {"shop-b", core.KindPatch, "1.0.1"}, {"excl-1", core.KindMinor, "1.1.0"}} {
		ref, err := core.ParseImageRef("registry.example/" + c.name + ":1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		checks = append(checks, core.Check{Container: core.Container{ID: "id-" + c.name, Name: c.name, Image: ref.String(), State: "running",
			Labels: map[string]string{"com.docker.compose.project": "shop"}}, Ref: ref, Current: "1.0.0", Candidate: c.to, Kind: c.kind})
	}
	if _, err := e.st.RecordRun(ctx, "local", checks, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ups, err := e.st.ListUpdates(ctx, store.UpdateFilter{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, u := range ups {
		ids[u.ContainerName] = u.ID
	}
	if len(ids) != 5 {
		t.Fatalf("seeded updates = %v, want 5", ids)
	}
	return ids
}

// outcomes is container → outcome of a bulk answer.
func outcomes(t *testing.T, r BulkApplyResponse) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, res := range r.Results {
		name := fmt.Sprint(res.UpdateID)
		if res.Update != nil {
			name = res.Update.Container
		}
		out[name] = res.Outcome
	}
	return out
}

func TestBulkApplyGoesThroughEachUpdatesPolicy(t *testing.T) {
	e := newEnv(t, withAuth(t), withDispatcher)
	ids := seedBulk(t, e)
	ctx := context.Background()

	// A dry run applies nothing and says what the policy would refuse.
	w := e.do(t, "POST", "/api/updates/apply", `{"trigger":"compose.prod","dry_run":true}`, asCI...)
	if w.Code != http.StatusOK {
		t.Fatalf("dry run = %d %s, want 200", w.Code, w.Body.String())
	}
	dry := decode[BulkApplyResponse](t, w)
	want := map[string]string{"web": BulkWouldApply, "db": BulkWouldApply, "shop-a": BulkWouldApply, "shop-b": BulkWouldApply, "excl-1": BulkRefused}
	if diff := cmpMaps(want, outcomes(t, dry)); diff != "" {
		t.Errorf("dry run outcomes: %s", diff)
	}
	if ds, _ := e.st.Deliveries(ctx, store.DeliveryFilter{}); len(ds) != 0 {
		t.Errorf("deliveries after a dry run = %d, want 0", len(ds))
	}

	// Applied: each through the policy, the refusal reported, not fatal.
	w = e.do(t, "POST", "/api/updates/apply", `{"trigger":"compose.prod"}`, asCI...)
	if w.Code != http.StatusAccepted {
		t.Fatalf("bulk apply = %d %s, want 202", w.Code, w.Body.String())
	}
	got := decode[BulkApplyResponse](t, w)
	want = map[string]string{"web": BulkEnqueued, "db": BulkEnqueued, "shop-a": BulkEnqueued, "shop-b": BulkEnqueued, "excl-1": BulkRefused}
	if diff := cmpMaps(want, outcomes(t, got)); diff != "" {
		t.Errorf("bulk apply outcomes: %s", diff)
	}
	if got.Counts[BulkEnqueued] != 4 || got.Counts[BulkRefused] != 1 || got.Trigger != "compose.prod" || got.DryRun {
		t.Errorf("bulk apply = %+v, want 4 enqueued and 1 refused through compose.prod", got)
	}
	for _, res := range got.Results {
		switch res.Outcome {
		case BulkEnqueued:
			if res.Delivery == nil || res.Delivery.Principal != "token:ci" || res.Update.Status != core.StatusApplying {
				t.Errorf("result %+v: want a delivery asked for by token:ci and the update applying", res)
			}
		case BulkRefused:
			if res.Rule != "EXCLUDE=excl-*" || !strings.Contains(res.Message, "excl-1") {
				t.Errorf("refusal %+v, want the rule EXCLUDE=excl-* and the container", res)
			}
		}
	}
	ds, err := e.st.Deliveries(ctx, store.DeliveryFilter{})
	if err != nil || len(ds) != 4 {
		t.Fatalf("deliveries = %d, %v; want 4", len(ds), err)
	}
	evs, err := e.st.History(ctx, store.HistoryFilter{Kinds: []string{store.EventApplyRequested, store.EventRefused}})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, ev := range evs {
		kinds[ev.Kind]++
		if ev.Principal != "token:ci" {
			t.Errorf("history event %s of %s by %q, want token:ci", ev.Kind, ev.Container, ev.Principal)
		}
	}
	if kinds[store.EventApplyRequested] != 4 || kinds[store.EventRefused] != 1 {
		t.Errorf("history = %v, want 4 apply-requested and 1 refused", kinds)
	}

	// Again: those applying are conflicts (by ids, as asked), the refusal stays one.
	w = e.do(t, "POST", "/api/updates/apply", fmt.Sprintf(`{"trigger":"compose.prod","ids":[%d,%d]}`, ids["excl-1"], ids["web"]), asCI...)
	again := decode[BulkApplyResponse](t, w)
	if w.Code != http.StatusOK || len(again.Results) != 2 || again.Results[0].Outcome != BulkRefused || again.Results[1].Outcome != BulkConflict {
		t.Errorf("apply again = %d %s, want 200 with excl-1 refused then web a conflict", w.Code, w.Body.String())
	}

	// A token scoped to deploying may not use it.
	e2 := newEnv(t, withAuth(t), withDeployToken, withDispatcher)
	w = e2.do(t, "POST", "/api/updates/apply", `{"trigger":"compose.prod"}`, asShopCI...)
	if w.Code != http.StatusForbidden {
		t.Errorf("bulk apply with a deploy-scoped token = %d %s, want 403", w.Code, w.Body.String())
	}
	if ds, _ := e2.st.Deliveries(ctx, store.DeliveryFilter{}); len(ds) != 0 {
		t.Errorf("deliveries after the scoped token's bulk apply = %d, want 0", len(ds))
	}
}

func TestBulkApplyFilters(t *testing.T) {
	for _, tc := range []struct {
		name string
		body func(ids map[string]int64) string
		want map[string]string // container (or ID) → outcome
	}{
		{"host", func(map[string]int64) string { return `{"host":"remote"}` }, map[string]string{"db": BulkWouldApply}},
		{"kinds", func(map[string]int64) string { return `{"kinds":["patch","major"]}` },
			map[string]string{"db": BulkWouldApply, "shop-a": BulkWouldApply, "shop-b": BulkWouldApply}},
		{"container glob", func(map[string]int64) string { return `{"container":"shop-*"}` },
			map[string]string{"shop-a": BulkWouldApply, "shop-b": BulkWouldApply}},
		{"host/name glob", func(map[string]int64) string { return `{"container":"remote/*"}` }, map[string]string{"db": BulkWouldApply}},
		{"filters combine", func(map[string]int64) string { return `{"host":"local","kinds":["minor"]}` },
			map[string]string{"web": BulkWouldApply, "excl-1": BulkRefused}},
		{"ids, with one missing and one not matching", func(ids map[string]int64) string {
			return fmt.Sprintf(`{"ids":[%d,999999,%d],"kinds":["patch"]}`, ids["shop-b"], ids["web"])
		}, map[string]string{"shop-b": BulkWouldApply, "999999": BulkNotFound, "web": BulkSkipped}},
		{"nothing matches", func(map[string]int64) string { return `{"container":"nope-*"}` }, map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withDispatcher)
			ids := seedBulk(t, e)
			body := strings.Replace(tc.body(ids), "{", `{"dry_run":true,`, 1)
			w := e.do(t, "POST", "/api/updates/apply", body)
			if w.Code != http.StatusOK {
				t.Fatalf("POST %s = %d %s, want 200", body, w.Code, w.Body.String())
			}
			if diff := cmpMaps(tc.want, outcomes(t, decode[BulkApplyResponse](t, w))); diff != "" {
				t.Errorf("POST %s: %s", body, diff)
			}
		})
	}
}

func TestBulkApplyRefusesBadInputAndTooMany(t *testing.T) {
	e := newEnv(t, withDispatcher)
	many := make([]string, MaxBulkApply+1)
	for i := range many {
		many[i] = fmt.Sprint(i + 1)
	}
	for _, tc := range []struct {
		body, field string
		status      int
	}{
		{`{"kinds":["huge"]}`, "kinds", 400},
		{`{"kinds":["` + strings.Repeat("x", 5000) + `"]}`, "kinds", 400},
		{`{"container":"[a-"}`, "container", 400},
		{`{"container":"a\u0000*"}`, "container", 400},
		{`{"container":"` + strings.Repeat("*a", 300) + `"}`, "container", 400},
		{`{"ids":[0]}`, "ids", 400},
		{`{"ids":[-3]}`, "ids", 400},
		{`{"ids":[5,5]}`, "ids", 400},
		{`{"ids":[` + strings.Join(many, ",") + `]}`, "ids", 400},
		{`{"ids":"1,2"}`, "ids", 400},
		{`{"filter":{}}`, "filter", 400},
		{``, "body", 400},
		{`{"trigger":"nope.none"}`, "", 404},
	} {
		w := e.do(t, "POST", "/api/updates/apply", tc.body)
		if w.Code != tc.status || errorOf(t, w).Field != tc.field {
			t.Errorf("POST %.80s = %d %s, want %d naming %q", tc.body, w.Code, w.Body.String(), tc.status, tc.field)
		}
		if len(w.Body.String()) > 2000 {
			t.Errorf("POST %.80s: the error is %d bytes long; a hostile value must be quoted short", tc.body, len(w.Body.String()))
		}
	}

	// More than MaxBulkApply selected: refused whole, nothing applied.
	ctx := context.Background()
	var checks []core.Check
	for i := range MaxBulkApply {
		ref, _ := core.ParseImageRef(fmt.Sprintf("registry.example/app%03d:1.0.0", i))
		checks = append(checks, core.Check{Container: core.Container{ID: fmt.Sprint("id", i), Name: fmt.Sprintf("app%03d", i), Image: ref.String(), State: "running"},
			Ref: ref, Current: "1.0.0", Candidate: "1.0.1", Kind: core.KindPatch})
	}
	if _, err := e.st.RecordRun(ctx, "bulk", checks, time.Time{}); err != nil {
		t.Fatal(err)
	}
	w := e.do(t, "POST", "/api/updates/apply", `{}`)
	if w.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, w).Message, fmt.Sprintf("selects %d updates; at most %d", MaxBulkApply+2, MaxBulkApply)) {
		t.Errorf("bulk apply of %d = %d %s, want 400 naming the count and the bound", MaxBulkApply+2, w.Code, w.Body.String())
	}
	if ds, _ := e.st.Deliveries(ctx, store.DeliveryFilter{}); len(ds) != 0 {
		t.Errorf("deliveries after a refused bulk apply = %d, want 0", len(ds))
	}
	// Narrowed to the bound, it goes.
	w = e.do(t, "POST", "/api/updates/apply", `{"host":"bulk"}`)
	if r := decode[BulkApplyResponse](t, w); w.Code != http.StatusAccepted || r.Counts[BulkEnqueued] != MaxBulkApply {
		t.Errorf("bulk apply of %d = %d with %v, want 202 with all enqueued", MaxBulkApply, w.Code, r.Counts)
	}
}

// cmpMaps describes the differences between want and got, "" when equal.
func cmpMaps(want, got map[string]string) string {
	var diffs []string
	for k, v := range want {
		if got[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: got %q, want %q", k, got[k], v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: got %q, want none", k, v))
		}
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "; ")
}
