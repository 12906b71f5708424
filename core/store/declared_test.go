package store

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/core"
)

// TestEnqueueDeclared: a declared deploy is one pending delivery carrying
// its Declared, whose update and container rows are never listed as
// running nor offered; asked for again (a restart), the same delivery is
// returned, not a second; hostile names are refused.
func TestEnqueueDeclared(t *testing.T) {
	s, _ := openStore(t)
	ctx := t.Context()
	dec := core.Declared{Source: "prod", Commit: strings.Repeat("a", 40), Project: "shop", WorkingDir: "/data/git/prod/shop",
		Files: []string{"/data/git/prod/shop/compose.yaml"}, Service: "web",
		PreviousFiles: []core.FileChange{{Path: "/data/git/prod/shop/compose.yaml", Backup: "/data/git/.prod.backup-a/shop/compose.yaml"}}}
	nd := NewDeclared{Host: "local", Trigger: "compose.git", Declared: dec, Run: "git:prod@aaaa/shop/web", From: "bbbb", To: "aaaa",
		Labels: map[string]string{"com.docker.compose.project": "shop"}, Principal: "git:prod"}
	d, created, err := s.EnqueueDeclared(ctx, nd)
	if err != nil || !created {
		t.Fatalf("EnqueueDeclared = %v, created %v", err, created)
	}
	if d.Status != DeliveryPending || d.Update.ContainerName != "shop/web" || d.Update.Status != core.StatusApplying || d.Update.Kind != core.KindGit {
		t.Errorf("delivery = %+v, want pending, for shop/web, applying, kind git", d)
	}
	due, err := s.Due(ctx, time.Now(), 10, "compose.git")
	if err != nil || len(due) != 1 {
		t.Fatalf("Due = %v, %v; want the declared deploy", due, err)
	}
	if diff := cmp.Diff(&dec, due[0].Declared); diff != "" {
		t.Errorf("Declared read back (-want +got):\n%s", diff)
	}
	if due[0].Update.Host != "local" || due[0].Update.Labels["com.docker.compose.project"] != "shop" || due[0].Principal != "git:prod" {
		t.Errorf("due delivery = %+v", due[0])
	}
	again, created, err := s.EnqueueDeclared(ctx, nd)
	if err != nil || created || again.ID != d.ID {
		t.Errorf("asked again: delivery %d created %v (%v), want %d as it stands", again.ID, created, err, d.ID)
	}
	if ids, err := s.UnfinishedDeclared(ctx, "compose.git", "git:prod"); err != nil || len(ids) != 1 || ids[0] != d.ID {
		t.Errorf("UnfinishedDeclared(git:prod) = %v, %v; want [%d]", ids, err, d.ID)
	}
	if ids, err := s.UnfinishedDeclared(ctx, "compose.git", "git:other"); err != nil || len(ids) != 0 {
		t.Errorf("UnfinishedDeclared(git:other) = %v, %v; want none", ids, err)
	}
	if ids, err := s.UnfinishedDeclared(ctx, "compose.other", "git:prod"); err != nil || len(ids) != 0 {
		t.Errorf("UnfinishedDeclared(compose.other) = %v, %v; want none: another trigger's", ids, err)
	}
	if cs, _ := s.Containers(ctx, ""); len(cs) != 0 {
		t.Errorf("Containers lists %d, want none: a declared service's row is not a running container", len(cs))
	}
	if us, _ := s.ListUpdates(ctx, UpdateFilter{Statuses: []core.UpdateStatus{core.StatusApplying, core.StatusPending}}); len(us) != 0 {
		t.Errorf("ListUpdates lists %+v, want none", us)
	}
	// The outcome settles its update and writes the history as any rollout's.
	if err := s.Finish(ctx, []Outcome{{ID: d.ID, Status: DeliveryDelivered, Event: core.EventUpdateApplied, Deploys: true}}); err != nil {
		t.Fatal(err)
	}
	if u, err := s.Update(ctx, d.UpdateID); err != nil || u.Status != core.StatusApplied {
		t.Errorf("update after the outcome = %+v, %v; want applied", u, err)
	}
	if ids, err := s.UnfinishedDeclared(ctx, "compose.git", "git:prod"); err != nil || len(ids) != 0 {
		t.Errorf("UnfinishedDeclared(git:prod) after the outcome = %v, %v; want none", ids, err)
	}

	for _, tc := range []struct {
		name   string
		change func(*NewDeclared)
	}{
		{"slash in project", func(n *NewDeclared) { n.Declared.Project = "shop/../x" }},
		{"NUL in service", func(n *NewDeclared) { n.Declared.Service = "web\x00" }},
		{"no run", func(n *NewDeclared) { n.Run = "" }},
		{"no trigger", func(n *NewDeclared) { n.Trigger = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := nd
			bad.Run += "-" + tc.name
			tc.change(&bad)
			if _, _, err := s.EnqueueDeclared(ctx, bad); err == nil {
				t.Errorf("EnqueueDeclared(%+v) succeeded, want refused", bad)
			}
		})
	}
}
