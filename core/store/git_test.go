package store

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidewatch/tidewatch/core/gitsync"
)

func TestGitStateRoundTripAndReopen(t *testing.T) {
	ctx := context.Background()
	s, dir := openStore(t)
	g := s.GitState()
	got, err := g.Get(ctx, "prod")
	if err != nil || got != (gitsync.Record{}) {
		t.Fatalf("Get(unknown) = %+v, %v; want the zero record", got, err)
	}
	at := time.Date(2026, 12, 6, 1, 2, 3, 4, time.UTC)
	steps := []gitsync.Record{
		gitsync.Record{}.Succeeded("aaaa", at),
		gitsync.Record{}.Succeeded("aaaa", at).Marked("bbbb", "health: unhealthy; 'quoted' \x00 reason", at.Add(time.Second)),
		gitsync.Record{}.Succeeded("cccc", at.Add(2*time.Second)),
	}
	for i, want := range steps {
		if err := g.Put(ctx, "prod", want); err != nil {
			t.Fatalf("Put #%d: %v", i, err)
		}
		got, err := g.Get(ctx, "prod")
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Get after Put #%d (-want +got):\n%s", i, d)
		}
	}
	if other, _ := g.Get(ctx, "other"); other != (gitsync.Record{}) {
		t.Errorf("Get(other) = %+v, want the zero record: sources are kept apart", other)
	}
	s.Close()
	s2, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err = s2.GitState().Get(ctx, "prod")
	if err != nil || got.Deployed != "cccc" || got.Failed != "" {
		t.Errorf("after reopening: %+v, %v; want deployed cccc and no failed commit", got, err)
	}
}
