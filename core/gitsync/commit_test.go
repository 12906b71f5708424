package gitsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
)

const (
	testToken   = "s3cret-token-canary-4242"
	composeV1   = "services:\n  app:\n    image: nginx:1.25.0 # pinned\n    ports:\n      - \"8080:80\"\n  db:\n    image: postgres:16.1\n"
	composeRepo = "app"
)

// stack is a served repository and a clone of it, as a user keeps one on a
// server.
type stack struct {
	srv  *gittest.Server
	url  string
	work string
}

func newStack(t *testing.T, files map[string]string) stack {
	t.Helper()
	srv := gittest.NewServer(t, testToken)
	if files == nil {
		files = map[string]string{"compose.yaml": composeV1, "README.md": "# app\n", "other.txt": "other\n"}
	}
	url := srv.NewRepo(t, composeRepo, files)
	return stack{srv: srv, url: url, work: srv.Clone(t, url)}
}

// rollout rewrites old to new in the work tree's file, as the compose
// trigger does, and returns the change for Commit.
func (s stack) rollout(t *testing.T, file, old, new string) FileChange {
	t.Helper()
	p := filepath.Join(s.work, file)
	before, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(before, []byte(old)) {
		t.Fatalf("%s does not hold %q", file, old)
	}
	after := bytes.Replace(before, []byte(old), []byte(new), 1)
	if err := os.WriteFile(p, after, 0o644); err != nil {
		t.Fatal(err)
	}
	return FileChange{Path: p, Before: before, After: after}
}

func (s stack) git(t *testing.T, args ...string) string {
	t.Helper()
	return gittest.Run(t, s.work, args...)
}

func newCommitter(t *testing.T, push bool, token string) *Committer {
	t.Helper()
	c, err := NewCommitter(CommitConfig{
		AuthorName: "Tide Bot", AuthorEmail: "bot@example.com", Push: push,
		Credentials: Credentials{Username: gittest.User, Token: core.Secret(token)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func nginxChange(files ...FileChange) Change {
	return Change{Container: "app-app-1", From: "nginx:1.25.0", To: "nginx:1.25.3", Kind: "patch", Outcome: "applied", Files: files}
}

func TestCommitCommitsOnlyTheRolloutsEdit(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	head := s.git(t, "rev-parse", "HEAD")
	// The user left work of their own: a staged file, a modified file, and
	// an uncommitted edit of another line of the compose file itself.
	gittest.WriteFiles(t, s.work, map[string]string{"other.txt": "staged by the user\n", "README.md": "# app, edited\n"})
	s.git(t, "add", "other.txt")
	p := filepath.Join(s.work, "compose.yaml")
	userEdit := strings.Replace(composeV1, `"8080:80"`, `"8081:80"`, 1)
	if err := os.WriteFile(p, []byte(userEdit), 0o644); err != nil {
		t.Fatal(err)
	}
	fc := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")

	start := time.Now()
	res, err := newCommitter(t, false, "").Commit(context.Background(), nginxChange(fc))
	t.Logf("commit took %v", time.Since(start))
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if len(res) != 1 || res[0].Commit == "" || res[0].Branch != "main" || len(res[0].Files) != 1 || res[0].Files[0] != "compose.yaml" {
		t.Fatalf("Commit = %+v, want one commit of compose.yaml on main", res)
	}
	if got := s.git(t, "rev-parse", "HEAD"); got != res[0].Commit {
		t.Fatalf("HEAD = %s, want the new commit %s", got, res[0].Commit)
	}
	if got := s.git(t, "rev-parse", "HEAD^"); got != head {
		t.Fatalf("parent = %s, want %s", got, head)
	}
	// The commit holds exactly the image line.
	if got := s.git(t, "diff", "--name-only", "HEAD^", "HEAD"); got != "compose.yaml" {
		t.Fatalf("files in commit = %q, want compose.yaml", got)
	}
	want := strings.Replace(composeV1, "nginx:1.25.0", "nginx:1.25.3", 1)
	if got := s.git(t, "show", "HEAD:compose.yaml") + "\n"; got != want {
		t.Fatalf("committed compose.yaml =\n%s\nwant\n%s", got, want)
	}
	// The message names container, from → to, kind and outcome; the author is the configured one.
	msg := s.git(t, "log", "-1", "--format=%an <%ae>|%s")
	if msg != "Tide Bot <bot@example.com>|app-app-1: nginx:1.25.0 → nginx:1.25.3 (patch, applied)" {
		t.Fatalf("author|subject = %q", msg)
	}
	// The user's work is as they left it: staged, modified, and their edit
	// of the compose file still uncommitted; the file holds both edits.
	if got := s.git(t, "status", "--porcelain"); got != "M README.md\n M compose.yaml\nM  other.txt" && got != " M README.md\n M compose.yaml\nM  other.txt" {
		t.Fatalf("git status =\n%s", got)
	}
	if got := s.git(t, "diff", "--", "compose.yaml"); !strings.Contains(got, `-      - "8080:80"`) || !strings.Contains(got, `+      - "8081:80"`) || strings.Contains(got, "-    image: nginx") || strings.Contains(got, "+    image: nginx") {
		t.Fatalf("uncommitted diff of compose.yaml =\n%s\nwant only the user's port edit", got)
	}
	if b, _ := os.ReadFile(p); string(b) != string(fc.After) {
		t.Fatalf("compose.yaml on disk changed:\n%s", b)
	}
	if got := s.git(t, "diff", "--cached", "--name-only"); got != "other.txt" {
		t.Fatalf("staged = %q, want other.txt", got)
	}
	s.git(t, "fsck", "--no-progress")
}

func TestCommitNotInWorkTree(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "compose.yaml")
	os.WriteFile(p, []byte(composeV1), 0o644)
	_, err := newCommitter(t, false, "").Commit(context.Background(), nginxChange(FileChange{Path: p, Before: []byte(composeV1)}))
	if !errors.Is(err, ErrNotWorkTree) {
		t.Fatalf("Commit outside a work tree = %v, want ErrNotWorkTree", err)
	}
}

func TestCommitSkipsUntrackedAndIgnoredFiles(t *testing.T) {
	t.Parallel()
	s := newStack(t, map[string]string{"compose.yaml": composeV1, ".gitignore": ".env\n"})
	head := s.git(t, "rev-parse", "HEAD")
	gittest.WriteFiles(t, s.work, map[string]string{".env": "TAG=1.25.0\nPASSWORD=hunter2\n", "new.yaml": "a: 1\n"})
	env := s.rollout(t, ".env", "TAG=1.25.0", "TAG=1.25.3")
	untracked := s.rollout(t, "new.yaml", "a: 1", "a: 2")
	res, err := newCommitter(t, false, "").Commit(context.Background(), nginxChange(env, untracked))
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if res[0].Commit != "" || len(res[0].Skipped) != 2 {
		t.Fatalf("Commit = %+v, want no commit and two skipped files", res)
	}
	if got := s.git(t, "rev-parse", "HEAD"); got != head {
		t.Fatal("HEAD moved")
	}
}

func TestCommitRefusesOverlappingUncommittedEdit(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	head := s.git(t, "rev-parse", "HEAD")
	// The user changed the very line the rollout changes, without committing.
	p := filepath.Join(s.work, "compose.yaml")
	os.WriteFile(p, []byte(strings.Replace(composeV1, "nginx:1.25.0 # pinned", "nginx:1.25.1 # pinned by hand", 1)), 0o644)
	fc := s.rollout(t, "compose.yaml", "nginx:1.25.1", "nginx:1.25.3")
	_, err := newCommitter(t, false, "").Commit(context.Background(), nginxChange(fc))
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) || len(ce.Paths) != 1 || ce.Paths[0] != "compose.yaml" {
		t.Fatalf("Commit = %v, want a ConflictError on compose.yaml", err)
	}
	if got := s.git(t, "rev-parse", "HEAD"); got != head {
		t.Fatal("HEAD moved on a conflict")
	}
	if b, _ := os.ReadFile(p); string(b) != string(fc.After) {
		t.Fatal("the file changed on a conflict")
	}
}

func TestCommitBusyWhileGitHoldsTheIndex(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	lock := filepath.Join(s.work, ".git", "index.lock")
	os.WriteFile(lock, nil, 0o644)
	fc := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
	_, err := newCommitter(t, false, "").Commit(context.Background(), nginxChange(fc))
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("Commit with index.lock held = %v, want ErrBusy", err)
	}
	if _, err := os.Stat(lock); err != nil {
		t.Fatal("git's own index.lock was removed")
	}
}

func TestCommitDetachedHead(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	s.git(t, "checkout", "--quiet", "--detach")
	fc := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
	if _, err := newCommitter(t, false, "").Commit(context.Background(), nginxChange(fc)); !errors.Is(err, ErrDetached) {
		t.Fatalf("Commit on a detached HEAD = %v, want ErrDetached", err)
	}
}

func TestCommitPushes(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	fc := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
	start := time.Now()
	res, err := newCommitter(t, true, testToken).Commit(context.Background(), nginxChange(fc))
	t.Logf("commit and push took %v", time.Since(start))
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if !res[0].Pushed || res[0].Rebased || res[0].Remote != s.url {
		t.Fatalf("Commit = %+v, want pushed to %s without rebase", res[0], s.url)
	}
	if got := gittest.Run(t, s.srv.Bare(composeRepo), "rev-parse", "main"); got != res[0].Commit {
		t.Fatalf("remote main = %s, want %s", got, res[0].Commit)
	}
	// A fresh clone shows the new tag.
	if got := s.srv.Show(t, composeRepo, "main", "compose.yaml"); !strings.Contains(got, "nginx:1.25.3 # pinned") {
		t.Fatalf("remote compose.yaml =\n%s", got)
	}
}

func TestCommitRebasesOnAMovedRemote(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	// Someone else pushed meanwhile: another file and another line of the compose file.
	theirs := strings.Replace(composeV1, "postgres:16.1", "postgres:16.2", 1)
	s.srv.Push(t, s.url, "bump db", map[string]string{"README.md": "# app, by someone else\n", "compose.yaml": theirs})
	fc := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
	res, err := newCommitter(t, true, testToken).Commit(context.Background(), nginxChange(fc))
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if !res[0].Pushed || !res[0].Rebased {
		t.Fatalf("Commit = %+v, want rebased and pushed", res[0])
	}
	bare := s.srv.Bare(composeRepo)
	if got := gittest.Run(t, bare, "rev-parse", "main"); got != res[0].Commit {
		t.Fatalf("remote main = %s, want %s", got, res[0].Commit)
	}
	if got := gittest.Run(t, bare, "log", "--format=%s", "main"); got != "app-app-1: nginx:1.25.0 → nginx:1.25.3 (patch, applied)\nbump db\ninitial" {
		t.Fatalf("remote history =\n%s", got)
	}
	want := strings.Replace(theirs, "nginx:1.25.0", "nginx:1.25.3", 1)
	if got := s.srv.Show(t, composeRepo, "main", "compose.yaml") + "\n"; got != want {
		t.Fatalf("remote compose.yaml =\n%s\nwant\n%s", got, want)
	}
	// The work tree followed, and is clean.
	if got := s.git(t, "status", "--porcelain"); got != "" {
		t.Fatalf("git status after rebase =\n%s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(s.work, "compose.yaml")); string(b) != want {
		t.Fatalf("work tree compose.yaml =\n%s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(s.work, "README.md")); string(b) != "# app, by someone else\n" {
		t.Fatalf("work tree README.md = %q", b)
	}
	s.git(t, "fsck", "--no-progress")
}

func TestCommitReportsAConflictingRemoteAndLosesNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	s.srv.Push(t, s.url, "pin by hand", map[string]string{"compose.yaml": strings.Replace(composeV1, "nginx:1.25.0", "nginx:1.26.0", 1)})
	remoteHead := gittest.Run(t, s.srv.Bare(composeRepo), "rev-parse", "main")
	fc := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
	res, err := newCommitter(t, true, testToken).Commit(context.Background(), nginxChange(fc))
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Remote != remoteHead || len(ce.Paths) != 1 {
		t.Fatalf("Commit = %v, want a ConflictError against %s", err, remoteHead)
	}
	if len(res) != 1 || res[0].Commit == "" || res[0].Pushed {
		t.Fatalf("Commit = %+v, want a local commit, not pushed", res)
	}
	if got := gittest.Run(t, s.srv.Bare(composeRepo), "rev-parse", "main"); got != remoteHead {
		t.Fatal("the remote changed")
	}
	// Nothing lost: the rollout's file is as it left it, committed locally,
	// the work tree clean, no rebase in progress.
	if b, _ := os.ReadFile(fc.Path); string(b) != string(fc.After) {
		t.Fatalf("compose.yaml changed:\n%s", b)
	}
	if got := s.git(t, "status", "--porcelain"); got != "" {
		t.Fatalf("git status =\n%s", got)
	}
	if got := s.git(t, "rev-parse", "HEAD"); got != res[0].Commit {
		t.Fatal("the local commit is gone")
	}
	if _, err := os.Stat(filepath.Join(s.work, ".git", "rebase-merge")); err == nil {
		t.Fatal("a rebase was left in progress")
	}
}

func TestCommitRefusesToPushTheUsersUnpushedCommits(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	gittest.WriteFiles(t, s.work, map[string]string{"other.txt": "mine\n"})
	s.git(t, "commit", "--quiet", "-am", "my own, not pushed")
	fc := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
	_, err := newCommitter(t, true, testToken).Commit(context.Background(), nginxChange(fc))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Commit = %v, want a conflict", err)
	}
	if got := gittest.Run(t, s.srv.Bare(composeRepo), "log", "--format=%s", "main"); got != "initial" {
		t.Fatalf("remote history = %q, want untouched", got)
	}
}

func TestCommitPushErrorsKeepCredentialsOut(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	// A remote URL carrying a (wrong) token, as some users configure it.
	leaky := strings.Replace(s.url, "http://", "http://"+gittest.User+":wrong-token-in-url@", 1)
	s.git(t, "remote", "set-url", "origin", leaky)
	fc := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
	res, err := newCommitter(t, true, "wrong-"+testToken).Commit(context.Background(), nginxChange(fc))
	if err == nil {
		t.Fatal("Commit with a wrong token succeeded")
	}
	if !errors.Is(err, transport.ErrAuthorizationFailed) && !errors.Is(err, transport.ErrAuthenticationRequired) {
		t.Errorf("Commit = %v, want an authentication error", err)
	}
	for _, secret := range []string{"wrong-token-in-url", testToken} {
		if strings.Contains(err.Error(), secret) || strings.Contains(res[0].Remote, secret) {
			t.Fatalf("a credential leaked: err=%q remote=%q", err, res[0].Remote)
		}
	}
	if res[0].Commit == "" {
		t.Fatal("the local commit is missing after a failed push")
	}
}

func TestCommitPushToAHangingRemoteEndsAtTheDeadline(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	fc := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
	s.srv.Hang()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newCommitter(t, true, testToken).Commit(ctx, nginxChange(fc))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Commit to a hanging remote = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Commit took %v after a 500ms deadline", d)
	}
}

func TestCommitComposeAndEnvInOneCommit(t *testing.T) {
	t.Parallel()
	s := newStack(t, map[string]string{"compose.yaml": "services:\n  app:\n    image: nginx:${TAG}\n", ".env": "# versions\nTAG=1.25.0\nOTHER=x\n"})
	env := s.rollout(t, ".env", "TAG=1.25.0", "TAG=1.25.3")
	res, err := newCommitter(t, false, "").Commit(context.Background(), nginxChange(env))
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if len(res[0].Files) != 1 || res[0].Files[0] != ".env" {
		t.Fatalf("Commit = %+v, want .env committed", res[0])
	}
	if got := s.git(t, "show", "HEAD:.env"); got != "# versions\nTAG=1.25.3\nOTHER=x" {
		t.Fatalf("committed .env = %q", got)
	}
	// Both files of one rollout go into one commit.
	s2 := newStack(t, map[string]string{"compose.yaml": composeV1, ".env": "TAG=1.25.0\n"})
	a := s2.rollout(t, "compose.yaml", "postgres:16.1", "postgres:16.2")
	b := s2.rollout(t, ".env", "TAG=1.25.0", "TAG=1.25.3")
	res, err = newCommitter(t, false, "").Commit(context.Background(), nginxChange(a, b))
	if err != nil || len(res) != 1 || len(res[0].Files) != 2 {
		t.Fatalf("Commit of two files = %+v, %v; want one commit of both", res, err)
	}
	if got := s2.git(t, "rev-list", "--count", "HEAD"); got != "2" {
		t.Fatalf("commits = %s, want 2 (initial and one for the rollout)", got)
	}
	if got := s2.git(t, "status", "--porcelain"); got != "" {
		t.Fatalf("git status =\n%s", got)
	}
}

func TestCommitRefusesAFileLargerThanTheBound(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	fc := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
	c, err := NewCommitter(CommitConfig{MaxFileSize: 64}, nil)
	if err != nil {
		t.Fatal(err)
	}
	head := s.git(t, "rev-parse", "HEAD")
	if _, err := c.Commit(context.Background(), nginxChange(fc)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Commit of a file over the bound = %v, want ErrTooLarge", err)
	}
	if got := s.git(t, "rev-parse", "HEAD"); got != head {
		t.Fatal("HEAD moved")
	}
	if _, err := os.Stat(filepath.Join(s.work, ".git", "index.lock")); err == nil {
		t.Fatal("index.lock left behind")
	}
}

func TestCommitRebaseNeverOverwritesTheUsersModifiedFile(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	s.srv.Push(t, s.url, "readme by someone else", map[string]string{"README.md": "# theirs\n"})
	gittest.WriteFiles(t, s.work, map[string]string{"README.md": "# mine, not committed\n"})
	fc := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
	res, err := newCommitter(t, true, testToken).Commit(context.Background(), nginxChange(fc))
	var ce *ConflictError
	if !errors.As(err, &ce) || len(ce.Paths) != 1 || ce.Paths[0] != "README.md" {
		t.Fatalf("Commit = %v, want a conflict on README.md", err)
	}
	if b, _ := os.ReadFile(filepath.Join(s.work, "README.md")); string(b) != "# mine, not committed\n" {
		t.Fatalf("README.md = %q: the user's edit was lost", b)
	}
	if b, _ := os.ReadFile(fc.Path); string(b) != string(fc.After) {
		t.Fatal("compose.yaml changed")
	}
	if got := s.git(t, "rev-parse", "HEAD"); got != res[0].Commit {
		t.Fatal("the local commit is gone")
	}
	if got := s.git(t, "status", "--porcelain"); got != "M README.md" && got != " M README.md" {
		t.Fatalf("git status =\n%s\nwant only the user's README.md", got)
	}
}

func TestCommitPushesItsEarlierUnpushedCommitsToo(t *testing.T) {
	t.Parallel()
	for _, moved := range []bool{false, true} {
		t.Run(fmt.Sprintf("remote moved %v", moved), func(t *testing.T) {
			s := newStack(t, nil)
			// The first push fails (a wrong token, as a network outage would).
			first := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
			if _, err := newCommitter(t, true, "wrong").Commit(context.Background(), nginxChange(first)); err == nil {
				t.Fatal("the first push succeeded with a wrong token")
			}
			if moved {
				s.srv.Push(t, s.url, "readme by someone else", map[string]string{"README.md": "# theirs\n"})
			}
			second := s.rollout(t, "compose.yaml", "postgres:16.1", "postgres:16.2")
			res, err := newCommitter(t, true, testToken).Commit(context.Background(), nginxChange(second))
			if err != nil {
				t.Fatalf("second Commit: %v", err)
			}
			if !res[0].Pushed || res[0].Rebased != moved {
				t.Fatalf("second Commit = %+v, want pushed, rebased=%v", res[0], moved)
			}
			want := "app-app-1: nginx:1.25.0 → nginx:1.25.3 (patch, applied)\napp-app-1: nginx:1.25.0 → nginx:1.25.3 (patch, applied)\ninitial"
			if moved {
				want = strings.Replace(want, "\ninitial", "\nreadme by someone else\ninitial", 1)
			}
			if got := gittest.Run(t, s.srv.Bare(composeRepo), "log", "--format=%s", "main"); got != want {
				t.Fatalf("remote history =\n%s\nwant\n%s", got, want)
			}
			remote := s.srv.Show(t, composeRepo, "main", "compose.yaml")
			if !strings.Contains(remote, "nginx:1.25.3") || !strings.Contains(remote, "postgres:16.2") {
				t.Fatalf("remote compose.yaml =\n%s\nwant both rollouts", remote)
			}
			if got := s.git(t, "status", "--porcelain"); got != "" {
				t.Fatalf("git status =\n%s", got)
			}
		})
	}
}

func TestCommitInALinkedWorkTree(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	linked := filepath.Join(t.TempDir(), "feature")
	s.git(t, "worktree", "add", "--quiet", "-b", "feature", linked)
	p := filepath.Join(linked, "compose.yaml")
	before, _ := os.ReadFile(p)
	after := []byte(strings.Replace(string(before), "nginx:1.25.0", "nginx:1.25.3", 1))
	os.WriteFile(p, after, 0o644)
	res, err := newCommitter(t, false, "").Commit(context.Background(), nginxChange(FileChange{Path: p, Before: before, After: after}))
	if err != nil {
		t.Fatalf("Commit in a linked work tree: %v", err)
	}
	if res[0].Branch != "feature" || res[0].WorkTree != linked {
		t.Fatalf("Commit = %+v, want branch feature in %s", res[0], linked)
	}
	if got := gittest.Run(t, linked, "rev-parse", "HEAD"); got != res[0].Commit {
		t.Fatalf("feature = %s, want %s", got, res[0].Commit)
	}
	if got := gittest.Run(t, linked, "status", "--porcelain"); got != "" {
		t.Fatalf("git status in the linked work tree =\n%s", got)
	}
	if got := s.git(t, "status", "--porcelain"); got != "" {
		t.Fatalf("git status in the main work tree =\n%s", got)
	}
}
