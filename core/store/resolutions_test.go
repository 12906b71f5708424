package store

import (
	"context"
	"testing"
)

func TestResolutionsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Resolution(ctx, "k1"); ok || err != nil {
		t.Fatalf("Resolution of an unknown key = ok %v, err %v; want not ok", ok, err)
	}
	for _, kv := range []struct {
		key  string
		same bool
	}{{"k1", true}, {"k2", false}, {"k1", false}} {
		if err := s.RememberResolution(ctx, kv.key, kv.same); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for key, want := range map[string]bool{"k1": false, "k2": false} {
		same, ok, err := s.Resolution(ctx, key)
		if err != nil || !ok || same != want {
			t.Errorf("Resolution(%s) = %v, %v, %v; want %v, true, nil", key, same, ok, err, want)
		}
	}
}
