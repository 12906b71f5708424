package gitsync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeeperCommitsOnlyInConfiguredWorkTrees: a rollout's files are
// committed in the configured work tree that holds them; a file in another
// git work tree, not configured, is left alone (ErrNotWorkTree when no file
// is kept), and its repository gets no commit.
func TestKeeperCommitsOnlyInConfiguredWorkTrees(t *testing.T) {
	t.Parallel()
	kept, other := newStack(t, nil), newStack(t, nil)
	k, err := NewKeeper([]WorkTree{{Name: "ops", Root: kept.work, Config: CommitConfig{AuthorName: "Tide Bot"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherHead := other.git(t, "rev-parse", "HEAD")
	fc := other.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
	if _, err := k.Commit(context.Background(), nginxChange(fc)); !errors.Is(err, ErrNotWorkTree) {
		t.Fatalf("Commit of a file outside every configured work tree = %v, want ErrNotWorkTree", err)
	}
	if got := other.git(t, "rev-parse", "HEAD"); got != otherHead {
		t.Fatal("a work tree that is not configured got a commit")
	}

	in := kept.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
	out := other.rollout(t, "compose.yaml", "postgres:16.1", "postgres:16.2")
	res, err := k.Commit(context.Background(), nginxChange(in, out))
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if len(res) != 1 || res[0].Commit == "" || len(res[0].Files) != 1 || res[0].Files[0] != "compose.yaml" {
		t.Fatalf("Commit = %+v, want one commit of compose.yaml in the kept work tree", res)
	}
	if got := kept.git(t, "log", "-1", "--format=%an"); got != "Tide Bot" {
		t.Errorf("author %q, want the work tree's configured one", got)
	}
	if got := other.git(t, "rev-parse", "HEAD"); got != otherHead {
		t.Fatal("a work tree that is not configured got a commit")
	}
}

// TestKeeperHidesRolloutBackups: a backup a rollout leaves beside the file
// does not show in git status, through the work tree's own exclude file
// (not .gitignore), written once however often the keeper starts, after
// what the user had there; in a linked work tree too.
func TestKeeperHidesRolloutBackups(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	exclude := filepath.Join(s.work, ".git", "info", "exclude")
	if err := os.WriteFile(exclude, []byte("secrets.env"), 0o644); err != nil { // no final newline
		t.Fatal(err)
	}
	for range 3 {
		if _, err := NewKeeper([]WorkTree{{Name: "ops", Root: s.work}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	backup := filepath.Join(s.work, "compose.yaml.tidewatch-20261206T010651.527884715Z.bak")
	if err := os.WriteFile(backup, []byte(composeV1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{".tidewatch-rollout-app_unix-1a2b3c4d.lock", ".tidewatch-rollout-app_unix-1a2b3c4d.json"} {
		if err := os.WriteFile(filepath.Join(s.work, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.git(t, "status", "--porcelain"); got != "" {
		t.Errorf("git status with a rollout backup, record and lock =\n%s", got)
	}
	b, _ := os.ReadFile(exclude)
	if strings.Count(string(b), BackupPattern) != 1 || strings.Count(string(b), RolloutPattern) != 1 || !strings.HasPrefix(string(b), "secrets.env\n") {
		t.Errorf("info/exclude =\n%s\nwant the user's line kept and each pattern once", b)
	}
	if _, err := os.Stat(filepath.Join(s.work, ".gitignore")); err == nil {
		t.Error("a .gitignore was written")
	}

	linked := filepath.Join(t.TempDir(), "feature")
	s.git(t, "worktree", "add", "--quiet", "-b", "feature", linked)
	if _, err := NewKeeper([]WorkTree{{Name: "feature", Root: linked}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(linked, "compose.yaml.tidewatch-20261206T010652.000000000Z.bak"), []byte(composeV1), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := s.git(t, "-C", linked, "status", "--porcelain"); got != "" {
		t.Errorf("git status in the linked work tree =\n%s", got)
	}
}

// TestKeeperRefusesAFolderThatIsNotAWorkTree: a WORKTREE that holds no git
// repository is an error at start, naming the work tree.
func TestKeeperRefusesAFolderThatIsNotAWorkTree(t *testing.T) {
	t.Parallel()
	_, err := NewKeeper([]WorkTree{{Name: "ops", Root: t.TempDir()}}, nil)
	if err == nil || !strings.Contains(err.Error(), "work tree ops") {
		t.Fatalf("NewKeeper on a plain folder = %v, want an error naming the work tree", err)
	}
}
