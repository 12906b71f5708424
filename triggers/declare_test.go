package triggers

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// TestDeclareGoesThroughTheOutboxAndThePolicy: a declared deploy is a
// delivery to the deploying instance, fired with its Declared, its outcome
// heard by a notifying instance; EXCLUDE refuses (named, in the history),
// THRESHOLD, AUTO and the service's tidewatch.* labels do not; a notifying
// instance is refused; asked again after a
// "restart" (a new dispatcher over the same store, the delivery claimed and
// never finished), the same delivery is resumed and fired once more under
// the same key, never enqueued a second time, and once finished is never
// fired again.
func TestDeclareGoesThroughTheOutboxAndThePolicy(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	rolledBack := func(_ context.Context, _ int, ups []sdk.Update) []sdk.Result {
		return sdk.All(len(ups), sdk.Result{Err: sdk.Permanent(errors.New("health failed")), Event: sdk.EventUpdateRolledBack,
			Rollout: &sdk.Rollout{Outcome: sdk.OutcomeRolledBack, Target: "shop/web"}})
	}
	deploy := &fake{fire: rolledBack}
	listener := &fake{}
	insts := func(deploy *fake) []Instance {
		return []Instance{
			{Name: "compose.git", Trigger: deploy, Deploys: true, Policy: policy(func(p *core.TriggerPolicy) {
				p.Auto, p.Threshold, p.Exclude, p.Watchers = false, core.ThresholdDigest, []string{"shop/db"}, []string{"local"}
			})},
			{Name: "webhook.oncall", Trigger: listener, Policy: policy(func(p *core.TriggerPolicy) {
				p.Events = []core.Event{core.EventUpdateRolledBack}
			})},
		}
	}
	d := New(s, insts(deploy), nil)
	nd := func(service string, labels map[string]string) store.NewDeclared {
		return store.NewDeclared{Declared: core.Declared{Source: "prod", Commit: "c2", Previous: "c1", Project: "shop", WorkingDir: "/data/git/prod/shop",
			Files: []string{"/data/git/prod/shop/compose.yaml"}, Service: service}, Run: "git:prod@c2/shop/" + service,
			From: "c1", To: "c2", Labels: labels, Principal: "git:prod"}
	}

	for _, tc := range []struct {
		name, instance string
		nd             store.NewDeclared
		rule           string
		err            error
	}{
		{"excluded by EXCLUDE", "compose.git", nd("db", nil), "EXCLUDE=shop/db", nil},
		{"not a deploying instance", "webhook.oncall", nd("web", nil), "", ErrNotDeploying},
		{"unknown instance", "compose.nope", nd("web", nil), "", ErrUnknownTrigger},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Declare(ctx, tc.instance, tc.nd)
			if refusal, ok := IsRefusal(err); tc.rule != "" && (!ok || refusal.Rule != tc.rule) || tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("Declare = %v, want rule %q / %v", err, tc.rule, tc.err)
			}
		})
	}
	if refused, _ := s.History(ctx, store.HistoryFilter{Kinds: []string{store.EventRefused}}); len(refused) != 1 || refused[0].Container != "shop/db" {
		t.Errorf("refused events = %+v, want shop/db's", refused)
	}

	// THRESHOLD=digest and AUTO=false do not hold a declared deploy back.
	dl, err := d.Declare(ctx, "compose.git", nd("web", nil))
	if err != nil {
		t.Fatal(err)
	}
	if dl.Update.Host != "local" || dl.Update.ContainerName != "shop/web" {
		t.Errorf("declared delivery's update = %+v, want shop/web on the instance's watcher", dl.Update)
	}
	// A process that claimed it and died before firing it.
	if _, err := s.Claim(ctx, []int64{dl.ID}, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	// The next process: asked again, the same delivery; resumed and fired once.
	deploy2 := &fake{fire: rolledBack}
	d2 := New(s, insts(deploy2), nil)
	again, err := d2.Declare(ctx, "compose.git", nd("web", nil))
	if err != nil || again.ID != dl.ID {
		t.Fatalf("Declare again = %d (%v), want delivery %d", again.ID, err, dl.ID)
	}
	drain(t, d2)
	calls, perKey, _ := deploy2.snapshot()
	if len(calls) != 1 || perKey[dl.Key] != 1 || calls[0][0].Declared == nil || calls[0][0].Declared.Service != "web" || calls[0][0].Declared.Commit != "c2" {
		t.Fatalf("fires after the restart = %+v, want the declared deploy of web once under key %s", calls, dl.Key)
	}
	final, err := d2.Await(ctx, dl.ID)
	if err != nil || final.Status != store.DeliveryFailed || final.Rollout == nil || final.Rollout.Outcome != core.OutcomeRolledBack {
		t.Errorf("outcome = %+v (%v), want failed, rolled back", final, err)
	}
	if lc, _, _ := listener.snapshot(); len(lc) != 1 || lc[0][0].Event != string(core.EventUpdateRolledBack) || lc[0][0].Container != "shop/web" || lc[0][0].Declared != nil {
		t.Errorf("the listener heard %+v, want update-rolled-back of shop/web, without the declared files", lc)
	}
	if _, err := d2.Declare(ctx, "compose.git", nd("web", nil)); err != nil {
		t.Fatal(err)
	}
	drain(t, d2)
	if calls, _, _ := deploy2.snapshot(); len(calls) != 1 {
		t.Errorf("a finished declared deploy asked again fired %d times in all, want 1", len(calls))
	}
	if calls, _, _ := deploy.snapshot(); len(calls) != 0 {
		t.Errorf("the process that died fired %d times, want 0", len(calls))
	}

	// The service's tidewatch.* labels speak of image updates, not of what
	// the source's files declare: they do not refuse.
	if _, err := d2.Declare(ctx, "compose.git", nd("cache", map[string]string{core.LabelTriggerExclude: "compose", core.LabelWatch: "false"})); err != nil {
		t.Errorf("Declare(cache, labelled tidewatch.trigger.exclude=compose, tidewatch.watch=false) = %v, want enqueued", err)
	}
	drain(t, d2)
	if calls, _, _ := deploy2.snapshot(); len(calls) != 2 || calls[1][0].Container != "shop/cache" {
		t.Errorf("fires = %d, want cache's deploy fired too", len(calls))
	}
}
