package triggers

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// TestServiceObserverSeesEachAttemptsServices: the per-service outcomes a
// trigger reports reach the service observer once per delivery attempt, the
// failed attempt's and the retry's (which reports only the service it sent
// to again); results without them are not observed.
func TestServiceObserverSeesEachAttemptsServices(t *testing.T) {
	s := openStore(t)
	f := &fake{fire: func(_ context.Context, call int, ups []sdk.Update) []sdk.Result {
		if call == 0 {
			r := sdk.Retry(errors.New("gotify#2: HTTP 502"))
			r.Services = []sdk.ServiceOutcome{{Service: "telegram#1"}, {Service: "gotify#2", Failed: true}}
			return sdk.All(len(ups), r)
		}
		r := sdk.OK("sent")
		r.Services = []sdk.ServiceOutcome{{Service: "gotify#2"}}
		return sdk.All(len(ups), r)
	}}
	plain := &fake{}
	var mu sync.Mutex
	var seen [][]sdk.ServiceOutcome
	var names []string
	d := New(s, []Instance{
		{Name: "notify.ops", Trigger: f, Policy: core.DefaultTriggerPolicy()},
		{Name: "webhook.ops", Trigger: plain, Policy: core.DefaultTriggerPolicy()},
	}, nil, fastBackoff, WithServiceObserver(func(trigger string, outcomes []sdk.ServiceOutcome) {
		mu.Lock()
		defer mu.Unlock()
		names = append(names, trigger)
		seen = append(seen, outcomes)
	}))
	notify(t, d, watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor)))
	drain(t, d)
	mu.Lock()
	defer mu.Unlock()
	want := [][]sdk.ServiceOutcome{{{Service: "telegram#1"}, {Service: "gotify#2", Failed: true}}, {{Service: "gotify#2"}}}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"notify.ops", "notify.ops"}, names); diff != "" {
		t.Errorf("observed triggers (-want +got):\n%s", diff)
	}
}
