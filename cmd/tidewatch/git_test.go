package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
	"github.com/tidewatch/tidewatch/core/store"
)

// TestGitCommitsFollowRolloutOutcomes: the committer of a configured work
// tree commits an applied rollout's rewrite (the history says so), commits
// nothing for a rolled-back or failed one, nor for a rollout that wrote no
// file, and records commit-failed (naming the file) when the backup it needs
// is gone.
func TestGitCommitsFollowRolloutOutcomes(t *testing.T) {
	gittest.Require(t)
	srv := gittest.NewServer(t, "canary-token-7c1e")
	url := srv.NewRepo(t, "ops", map[string]string{"compose.yaml": "services:\n  web:\n    image: app:1.0.0\n"})
	work := srv.Clone(t, url)
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := config.Config{Git: []config.Git{{Name: "ops", WorkTree: work}}}
	g, err := newGitCommits(cfg, st, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil || g == nil {
		t.Fatalf("newGitCommits = %v, %v", g, err)
	}
	file := filepath.Join(work, "compose.yaml")
	before, _ := os.ReadFile(file)
	backup := file + ".tidewatch-20261206T000000.000000000Z.bak"
	if err := os.WriteFile(backup, before, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(before), "1.0.0", "1.1.0", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	u := core.Update{Host: "local", ContainerName: "web-1", DisplayName: "web-1", Image: "app", Current: "1.0.0", Candidate: "1.1.0", Kind: core.KindMinor}
	files := []core.FileChange{{Path: file, Backup: backup}}
	head := gittest.Run(t, work, "rev-parse", "HEAD")

	for _, outcome := range []core.Outcome{core.OutcomeRolledBack, core.OutcomeFailed} {
		g.rolledOut(ctx, u, core.Rollout{Outcome: outcome, Files: files})
	}
	g.rolledOut(ctx, u, core.Rollout{Outcome: core.OutcomeApplied})
	g.wait()
	if got := gittest.Run(t, work, "rev-parse", "HEAD"); got != head {
		t.Fatal("a rollout that was not applied, or wrote nothing, was committed")
	}

	g.rolledOut(ctx, u, core.Rollout{Outcome: core.OutcomeApplied, Files: files})
	g.wait()
	if got := gittest.Run(t, work, "log", "-1", "--format=%s"); !strings.Contains(got, "web-1") || !strings.Contains(got, "1.0.0 → 1.1.0") {
		t.Errorf("last commit %q, want the applied rollout's", got)
	}
	events, err := st.History(ctx, store.HistoryFilter{Kinds: []string{store.EventCommitted, string(core.EventCommitFailed)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Kind != store.EventCommitted || !strings.Contains(events[0].Detail, "compose.yaml") || events[0].Container != "web-1" {
		t.Fatalf("history = %+v, want one committed event naming compose.yaml for web-1", events)
	}

	os.Remove(backup)
	g.rolledOut(ctx, u, core.Rollout{Outcome: core.OutcomeApplied, Files: files})
	g.wait()
	events, _ = st.History(ctx, store.HistoryFilter{Kinds: []string{string(core.EventCommitFailed)}})
	if len(events) != 1 || !strings.Contains(events[0].Detail, "compose.yaml") {
		t.Fatalf("history = %+v, want one commit-failed naming compose.yaml", events)
	}
}

// TestGitCommitsNeedAWorkTree: no work tree configured means no committer;
// a source (URL) is not a work tree; a WORKTREE that is no git work tree is
// an error naming the variable.
func TestGitCommitsNeedAWorkTree(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if g, err := newGitCommits(config.Config{Git: []config.Git{{Name: "src", URL: "https://example.com/x.git"}}}, nil, log); g != nil || err != nil {
		t.Errorf("newGitCommits with a source only = %v, %v, want none", g, err)
	}
	_, err := newGitCommits(config.Config{Git: []config.Git{{Name: "ops", WorkTree: t.TempDir()}}}, nil, log)
	if err == nil || !strings.Contains(err.Error(), "TIDEWATCH_GIT_") || !strings.Contains(err.Error(), "ops") {
		t.Errorf("newGitCommits on a plain folder = %v, want an error naming the variable and the work tree", err)
	}
}
