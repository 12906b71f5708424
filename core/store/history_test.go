package store

import (
	"context"
	"testing"
)

func TestAddEvent(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	if err := s.AddEvent(ctx, Event{Host: "local", Container: "web", Image: "registry/app", Kind: "update-applied", From: "1.0.0", To: "1.1.0", Detail: "deploy by ci"}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.History(ctx, HistoryFilter{Kinds: []string{"update-applied"}, Container: "web"})
	if err != nil || len(evs) != 1 || evs[0].From != "1.0.0" || evs[0].To != "1.1.0" || evs[0].Detail != "deploy by ci" {
		t.Errorf("History = %+v, %v; want the event added", evs, err)
	}
	if err := s.AddEvent(ctx, Event{Host: "local"}); err == nil {
		t.Error("AddEvent without a kind succeeded")
	}
}
