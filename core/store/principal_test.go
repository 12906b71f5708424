package store

import (
	"context"
	"testing"
)

// TestPrincipalRecorded: the events written with a context carrying a principal
// record it, the others none (an event's own Principal wins).
func TestPrincipalRecorded(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	asAlice := WithPrincipal(ctx, "user:alice")
	if err := s.AddEvent(asAlice, Event{Host: "local", Container: "web", Kind: "deploy-applied"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEvent(asAlice, Event{Host: "local", Container: "web", Kind: "apply-requested", Principal: "token:ci"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEvent(ctx, Event{Host: "local", Container: "web", Kind: "update-applied"}); err != nil {
		t.Fatal(err)
	}
	// Through a context that no longer cancels, as a deploy records its outcome.
	if err := s.AddEvent(context.WithoutCancel(WithPrincipal(ctx, "token:deploy")), Event{Host: "local", Container: "api", Kind: "deploy-rolled-back"}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.History(ctx, HistoryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range evs {
		got[e.Kind] = e.Principal
	}
	want := map[string]string{"deploy-applied": "user:alice", "apply-requested": "token:ci", "update-applied": "", "deploy-rolled-back": "token:deploy"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("principal of %s = %q, want %q", k, got[k], v)
		}
	}
}
