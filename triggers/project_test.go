package triggers

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// composeChk is a check of a container of compose project (in folder dir).
func composeChk(name, project, dir string) core.Check {
	c := chk(name, "1.0.0", "1.1.0", core.KindMinor)
	if project != "" {
		c.Container.Labels = map[string]string{labelComposeProject: project, labelComposeWorkingDir: dir, "com.docker.compose.service": name}
	}
	return c
}

// Deploying instances fire one delivery per compose project at a time,
// across their CONCURRENCY and across instances; other projects, and
// containers outside compose, go beside them.
func TestOneRolloutPerComposeProjectAtATime(t *testing.T) {
	s := openStore(t)
	var (
		mu        sync.Mutex
		inFlight  = map[string]int{} // by project
		maxPer    = map[string]int{}
		total     int
		maxTotal  int
		gate      = make(chan struct{})
		gateOnce  sync.Once
		openGate  = func() { gateOnce.Do(func() { close(gate) }) }
		projectOf = func(u sdk.Update) string {
			return u.Labels[labelComposeProject] + "|" + u.Labels[labelComposeWorkingDir]
		}
	)
	t.Cleanup(openGate)
	fire := func(_ context.Context, _ int, ups []sdk.Update) []sdk.Result {
		p := projectOf(ups[0])
		mu.Lock()
		inFlight[p]++
		maxPer[p] = max(maxPer[p], inFlight[p])
		total++
		maxTotal = max(maxTotal, total)
		mu.Unlock()
		<-gate
		mu.Lock()
		inFlight[p]--
		total--
		mu.Unlock()
		return sdk.All(len(ups), sdk.OK("rolled"))
	}
	a, b := &fake{fire: fire}, &fake{fire: fire}
	manual := policy(func(p *core.TriggerPolicy) { p.Auto, p.Concurrency = false, 4 })
	d := New(s, []Instance{
		{Name: "fake.a", Trigger: a, Policy: manual, Deploys: true},
		{Name: "fake.b", Trigger: b, Policy: manual, Deploys: true},
	}, nil, WithPollInterval(time.Hour))
	r := watchRun(t, s,
		composeChk("web", "shop", "/srv/shop"), composeChk("db", "shop", "/srv/shop"), composeChk("cache", "shop", "/srv/shop"),
		composeChk("blog", "blog", "/srv/blog"),
		composeChk("other-shop", "shop", "/srv/other"), // the same name in another folder: another project
		composeChk("plain", "", ""))
	ctx := context.Background()
	// web and db through one instance, cache through the other: all three
	// are the shop project.
	for i, u := range r.Updates {
		inst := "fake.a"
		if u.ContainerName == "cache" {
			inst = "fake.b"
		}
		if _, err := d.Request(ctx, u.ID, inst, "user:test"); err != nil {
			t.Fatalf("Request(%d: %s) error = %v", i, u.ContainerName, err)
		}
	}
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		errc <- d.Drain(ctx)
	}()
	// shop (one of three), blog, other-shop and plain go at once.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := total
		mu.Unlock()
		if n >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in flight reached %d within 10s, want 4 (one per project, and the plain container)", n)
		}
		time.Sleep(time.Millisecond)
	}
	openGate()
	if err := <-errc; err != nil {
		t.Fatalf("Drain error = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := maxPer["shop|/srv/shop"]; got != 1 {
		t.Errorf("rollouts of shop in flight at once = %d, want 1", got)
	}
	if maxTotal != 4 {
		t.Errorf("rollouts in flight at once = %d, want 4", maxTotal)
	}
	calls, _, _ := a.snapshot()
	callsB, _, _ := b.snapshot()
	if len(calls)+len(callsB) != 6 {
		t.Errorf("fires = %d, want 6", len(calls)+len(callsB))
	}
}
