package gitsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
)

const stackV1 = `# the app stack
x-common: &common
  restart: unless-stopped
services:
  app:
    <<: *common
    image: "nginx:${TAG}"
    ports: ["8080:80"]
  db:
    <<: *common
    image: postgres:16.1
    environment:
      POSTGRES_DB: app
`

func newMirror(t *testing.T, srv *gittest.Server, url, path string) *Mirror {
	t.Helper()
	m, err := NewMirror(Source{Name: "stack", URL: url, Path: path, Credentials: Credentials{Username: gittest.User, Token: core.Secret(testToken)}}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fetch(t *testing.T, m *Mirror) string {
	t.Helper()
	start := time.Now()
	c, err := m.Fetch(context.Background())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	t.Logf("fetch took %v", time.Since(start))
	return c
}

func changes(t *testing.T, m *Mirror, from, to string) []FileDiff {
	t.Helper()
	d, err := m.Changes(context.Background(), from, to)
	if err != nil {
		t.Fatalf("Changes(%.7s, %.7s): %v", from, to, err)
	}
	return d
}

func TestMirrorFollowsTheBranchAndListsChangedServices(t *testing.T) {
	t.Parallel()
	srv := gittest.NewServer(t, testToken)
	url := srv.NewRepo(t, "stacks", map[string]string{
		"stack/compose.yaml": stackV1, "stack/.env": "TAG=1.25.0\n",
		"other/compose.yaml": "services:\n  x:\n    image: busybox\n", "README.md": "hi\n",
	})
	m := newMirror(t, srv, url, "stack")
	c1 := fetch(t, m)
	if m.Branch() != "main" {
		t.Fatalf("Branch() = %q, want the remote's default, main", m.Branch())
	}
	if got := gittest.Run(t, srv.Bare("stacks"), "rev-parse", "main"); got != c1 {
		t.Fatalf("Fetch = %s, want %s", c1, got)
	}
	if b, err := os.ReadFile(filepath.Join(m.Dir(), ".git", core.GitSourceMarker)); err != nil || string(b) != "stack\n" {
		t.Fatalf("the clone's marker = %q, %v; want the source's name", b, err)
	}
	if diff := cmp.Diff([]FileDiff{{Path: "compose.yaml", Status: Added, Added: []string{"app", "db"}, Other: []string{"x-common"}}}, changes(t, m, "", c1)); diff != "" {
		t.Fatalf("Changes from nothing (-want +got):\n%s", diff)
	}

	steps := []struct {
		name  string
		files map[string]string
		want  []FileDiff
	}{
		{"comments, layout, quoting and key order are no change", map[string]string{"stack/compose.yaml": strings.NewReplacer(
			"# the app stack", "# the app stack, reformatted",
			`image: "nginx:${TAG}"`, `image: 'nginx:${TAG}'   # quoted differently`,
			`ports: ["8080:80"]`, "ports:\n      - \"8080:80\"",
			"    image: postgres:16.1\n    environment:\n      POSTGRES_DB: app\n", "    environment: {POSTGRES_DB: app}\n    image: postgres:16.1\n",
		).Replace(stackV1)}, nil},
		{"one service's image", map[string]string{"stack/compose.yaml": strings.Replace(stackV1, "postgres:16.1", "postgres:16.2", 1)},
			[]FileDiff{{Path: "compose.yaml", Status: Modified, Changed: []string{"db"}}}},
		{"an anchor shared by both services", map[string]string{"stack/compose.yaml": strings.NewReplacer("postgres:16.1", "postgres:16.2", "unless-stopped", "always").Replace(stackV1)},
			[]FileDiff{{Path: "compose.yaml", Status: Modified, Changed: []string{"app", "db"}, Other: []string{"x-common"}}}},
		{"a .env variable interpolated by one service", map[string]string{"stack/.env": "# tag\nTAG=1.25.3\n"},
			[]FileDiff{{Path: "compose.yaml", Status: Modified, Changed: []string{"app"}, Env: []string{"TAG"}}}},
		{"only a comment of .env", map[string]string{"stack/.env": "# the tag\nTAG=1.25.3\n"}, nil},
		{"files outside the path", map[string]string{"other/compose.yaml": "services:\n  x:\n    image: busybox:2\n", "README.md": "ho\n"}, nil},
		{"a service added and one removed, an override file added", map[string]string{
			"stack/compose.yaml":          "services:\n  app:\n    image: \"nginx:${TAG}\"\n    ports: [\"8080:80\"]\n    restart: always\n  cache:\n    image: redis:7\n",
			"stack/compose.override.yaml": "services:\n  app:\n    environment: {DEBUG: \"1\"}\n",
		}, []FileDiff{
			{Path: "compose.override.yaml", Status: Added, Added: []string{"app"}},
			{Path: "compose.yaml", Status: Modified, Added: []string{"cache"}, Removed: []string{"db"}, Other: []string{"x-common"}},
		}},
	}
	prev := c1
	for _, step := range steps {
		srv.Push(t, url, step.name, step.files)
		next := fetch(t, m)
		if next == prev {
			t.Fatalf("%s: Fetch returned the old commit", step.name)
		}
		if diff := cmp.Diff(step.want, changes(t, m, prev, next)); diff != "" {
			t.Errorf("%s: Changes (-want +got):\n%s", step.name, diff)
		}
		prev = next
	}

	dir, err := m.Checkout(context.Background(), prev)
	if err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "compose.yaml")); err != nil || !strings.Contains(string(b), "cache:") {
		t.Fatalf("checked-out compose.yaml = %q, %v", b, err)
	}
	if dir != filepath.Join(m.Dir(), "stack") {
		t.Fatalf("Checkout = %s, want the path inside the clone", dir)
	}
	// The deployed commit can be checked out again (a rollback).
	if _, err := m.Checkout(context.Background(), c1); err != nil {
		t.Fatalf("Checkout of the first commit: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "compose.yaml")); string(b) != stackV1 {
		t.Fatalf("compose.yaml after checking out the first commit =\n%s", b)
	}
}

func TestMirrorUnknownFromCountsEverythingAdded(t *testing.T) {
	t.Parallel()
	srv := gittest.NewServer(t, testToken)
	url := srv.NewRepo(t, "s", map[string]string{"compose.yaml": stackV1})
	m := newMirror(t, srv, url, "")
	c := fetch(t, m)
	got := changes(t, m, strings.Repeat("ab", 20), c) // a commit this clone never saw
	if len(got) != 1 || got[0].Status != Added || len(got[0].Added) != 2 {
		t.Fatalf("Changes from an unknown commit = %+v, want every service added", got)
	}
}

// TestMirrorBoundedWork: a long history is not downloaded (one commit
// deep), and a huge compose file is reported, not parsed.
func TestMirrorBoundedWork(t *testing.T) {
	t.Parallel()
	srv := gittest.NewServer(t, testToken)
	const commits = 3000
	bare := srv.Bare("long")
	gittest.Run(t, "", "init", "--quiet", "--bare", "--initial-branch=main", bare)
	// fast-import makes thousands of commits in well under a second.
	var in strings.Builder
	for i := 1; i <= commits; i++ {
		body := fmt.Sprintf("services:\n  app:\n    image: nginx:1.%d\n", i)
		if i == commits {
			body += "# " + strings.Repeat("x", MaxComposeSize) + "\n"
		}
		fmt.Fprintf(&in, "commit refs/heads/main\ncommitter T <t@example.com> %d +0000\ndata 2\nc\n", 1700000000+i)
		fmt.Fprintf(&in, "M 644 inline compose.yaml\ndata %d\n%s\n", len(body), body)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir, cmd.Env, cmd.Stdin = bare, gittest.Env(t.TempDir()), strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fast-import: %v\n%s", err, out)
	}
	m := newMirror(t, srv, srv.URL+"/long.git", "")
	start := time.Now()
	c, err := m.Fetch(context.Background())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	t.Logf("clone of a %d-commit repository took %v", commits, time.Since(start))
	if n := gittest.Run(t, m.Dir(), "rev-list", "--count", c); n != "1" {
		t.Fatalf("the clone holds %s commits, want 1 (shallow)", n)
	}
	got := changes(t, m, "", c)
	if len(got) != 1 || !strings.Contains(got[0].Error, "larger than") && !strings.Contains(got[0].Error, "too large") {
		t.Fatalf("Changes with a huge compose file = %+v, want an error saying it is too large", got)
	}
}

func TestMirrorHangingRemoteEndsAtTheDeadline(t *testing.T) {
	t.Parallel()
	srv := gittest.NewServer(t, testToken)
	url := srv.NewRepo(t, "s", map[string]string{"compose.yaml": stackV1})
	for _, first := range []bool{true, false} {
		m := newMirror(t, srv, url, "")
		if !first {
			fetch(t, m)
		}
		srv.Hang()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		_, err := m.Fetch(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Fetch (clone=%v) from a hanging remote = %v, want DeadlineExceeded", first, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Fetch took %v after a 300ms deadline", d)
		}
		if first {
			if _, err := os.Stat(m.Dir()); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("a clone cut short left its folder")
			}
		}
		srv = gittest.NewServer(t, testToken)
		url = srv.NewRepo(t, "s", map[string]string{"compose.yaml": stackV1})
	}
}

func TestMirrorWrongTokenNeverShowsIt(t *testing.T) {
	t.Parallel()
	srv := gittest.NewServer(t, testToken)
	url := srv.NewRepo(t, "s", map[string]string{"compose.yaml": stackV1})
	wrong := "wrong-token-canary-777"
	m, err := NewMirror(Source{Name: "s", URL: url, Credentials: Credentials{Token: core.Secret(wrong)}}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Fetch(context.Background())
	if err == nil || strings.Contains(err.Error(), wrong) {
		t.Fatalf("Fetch with a wrong token = %v, want an error without the token", err)
	}
	if !errors.Is(err, transport.ErrAuthenticationRequired) && !errors.Is(err, transport.ErrAuthorizationFailed) {
		t.Fatalf("Fetch with a wrong token = %v, want an authentication error", err)
	}
}

func TestMirrorRefusesASymlinkedPathOutOfTheClone(t *testing.T) {
	t.Parallel()
	srv := gittest.NewServer(t, testToken)
	url := srv.NewRepo(t, "s", map[string]string{"compose.yaml": stackV1})
	work := srv.Clone(t, url)
	os.Symlink("/etc", filepath.Join(work, "stack"))
	os.Symlink("/etc/passwd", filepath.Join(work, "compose.override.yaml"))
	gittest.Run(t, work, "add", "-A")
	gittest.Run(t, work, "commit", "--quiet", "-m", "links")
	gittest.Run(t, work, "push", "--quiet", strings.Replace(url, "http://", "http://"+gittest.User+":"+testToken+"@", 1), "main")

	m := newMirror(t, srv, url, "stack")
	c := fetch(t, m)
	if _, err := m.Checkout(context.Background(), c); err == nil {
		t.Fatalf("Checkout of a path that is a symlink to /etc = %v, want refused", err)
	}
	root := newMirror(t, srv, url, "")
	c = fetch(t, root)
	for _, d := range changes(t, root, "", c) {
		if d.Path == "compose.override.yaml" && !strings.Contains(d.Error, "not a regular file") {
			t.Fatalf("a symlinked compose file = %+v, want an error, not its target's content", d)
		}
	}
}

func TestSourceValidate(t *testing.T) {
	t.Parallel()
	ok := Source{Name: "stack", URL: "https://git.example.com/ops/stack.git"}
	tests := []struct {
		name    string
		edit    func(*Source)
		want    string // a part of the error; "" for none
		notWant string // never in the error
	}{
		{"valid https", func(*Source) {}, "", ""},
		{"valid scp-like ssh", func(s *Source) { s.URL = "git@git.example.com:ops/stack.git" }, "", ""},
		{"valid ssh with path", func(s *Source) { s.URL = "ssh://git@git.example.com:2222/ops/stack.git"; s.Path = "prod/app" }, "", ""},
		{"token in the URL", func(s *Source) { s.URL = "https://ghp_canary123@git.example.com/x.git" }, "holds credentials", "ghp_canary123"},
		{"password in the URL", func(s *Source) { s.URL = "https://u:pw-canary@git.example.com/x.git" }, "holds credentials", "pw-canary"},
		{"local path", func(s *Source) { s.URL = "/srv/repo" }, "not an http(s) or ssh URL", ""},
		{"file scheme", func(s *Source) { s.URL = "file:///srv/repo" }, "not an http(s) or ssh URL", ""},
		{"git scheme", func(s *Source) { s.URL = "git://git.example.com/x.git" }, "not supported", ""},
		{"path escaping", func(s *Source) { s.Path = "../../etc" }, "leaves the repository", ""},
		{"absolute path", func(s *Source) { s.Path = "/etc" }, "leaves the repository", ""},
		{"path into .git", func(s *Source) { s.Path = "a/.GIT/hooks" }, "inside .git", ""},
		{"name with a slash", func(s *Source) { s.Name = "../x" }, "source name", ""},
		{"branch with ..", func(s *Source) { s.Branch = "a..b" }, "not a branch name", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.edit(&s)
			err := s.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
			if tc.notWant != "" && strings.Contains(err.Error(), tc.notWant) {
				t.Fatalf("Validate = %v shows a credential", err)
			}
		})
	}
}
