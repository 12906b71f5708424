package system

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
	"github.com/tidewatch/tidewatch/test/testbed"
)

// gitStack is a compose project whose file lives in a git repository served
// over HTTP with a token, checked out in a work tree that tidewatch is told
// to keep (TIDEWATCH_GIT_OPS_WORKTREE), and running on the test bed.
type gitStack struct {
	srv      *gittest.Server
	url      string // the remote repository
	work     string // the work tree
	file     string // the compose file in the work tree
	compose  string // its content as committed
	name     string // the service's container
	appURL   string
	repoName string
}

// newGitStack builds v1 and v2 of an app, commits a compose file running v1
// to a new remote, clones it, and starts the project from the clone.
func newGitStack(t *testing.T, bed *testbed.Bed, prefix, v1, v2 string) *gitStack {
	t.Helper()
	repo := bed.Registry + "/" + unique(prefix)
	bed.BuildImage(t, repo+":"+v1, testbed.AppOptions{Version: v1, Healthcheck: true})
	bed.BuildImage(t, repo+":"+v2, testbed.AppOptions{Version: v2, Healthcheck: true})
	project := strings.ReplaceAll(unique(prefix), "-", "")
	port := freePort(t)
	s := &gitStack{srv: gittest.NewServer(t, "canary-git-token-5f1d"), repoName: "stack"}
	s.compose = fmt.Sprintf("# the app, kept in git\nservices:\n  web:\n    image: %s:%s\n    ports: [\"127.0.0.1:%d:8080\"]\n    labels: {tidewatch.test: \"1\", tidewatch.watch: \"true\"}\n", repo, v1, port)
	s.url = s.srv.NewRepo(t, s.repoName, map[string]string{"app/docker-compose.yml": s.compose, "README.md": "the stack\n"})
	s.work = s.srv.Clone(t, s.url)
	s.file = filepath.Join(s.work, "app", "docker-compose.yml")
	bed.ComposeUp(t, filepath.Dir(s.file), project)
	s.appURL = fmt.Sprintf("http://127.0.0.1:%d/", port)
	bed.WaitHTTP(t, s.appURL)
	s.name = strings.TrimPrefix(bed.ComposeContainer(t, project, "web").Name, "/")
	return s
}

// env configures an automatic compose trigger for the stack's service and
// the work tree, pushing with the server's token.
func (s *gitStack) env(t *testing.T, bed *testbed.Bed, extra ...string) []string {
	return envFor(t, bed.DockerHost, append([]string{
		"TIDEWATCH_TRIGGER_COMPOSE_AUTO_INCLUDE=" + s.name,
		"TIDEWATCH_TRIGGER_COMPOSE_AUTO_DEADLINE=3m",
		"TIDEWATCH_TRIGGER_COMPOSE_AUTO_HEALTH_TIMEOUT=60s",
		"TIDEWATCH_TRIGGER_COMPOSE_AUTO_STABLE_FOR=1s",
		"TIDEWATCH_GIT_OPS_WORKTREE=" + s.work,
		"TIDEWATCH_GIT_OPS_PUSH=true",
		"TIDEWATCH_GIT_OPS_TOKEN=" + s.srv.Token,
		"TIDEWATCH_GIT_OPS_AUTHOR_NAME=tidewatch bot",
	}, extra...)...)
}

// historyEvent is one event of /api/history.
type historyEvent struct {
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
	From   string `json:"from"`
	To     string `json:"to"`
}

func (d *daemon) history(t *testing.T, kind, container string) []historyEvent {
	t.Helper()
	var h struct {
		Events []historyEvent `json:"events"`
	}
	d.getJSON(t, "/api/history?kind="+kind+"&container="+container, &h)
	return h.Events
}

// TestRolloutCommittedAndPushed: an update the watcher finds is rolled out
// by the compose trigger, and its rewrite of the compose file is committed
// in the work tree and pushed; someone else had pushed meanwhile, so the
// commit is rebased on theirs. A fresh clone of the remote shows both, the
// commit says what changed, and the history records the commit.
func TestRolloutCommittedAndPushed(t *testing.T) {
	bed := testbed.Require(t)
	s := newGitStack(t, bed, "gitops", "3.0.0", "3.1.0")
	theirs := s.srv.Push(t, s.url, "docs by a colleague", map[string]string{"README.md": "the stack, documented\n"})

	d := startServe(t, s.env(t, bed))
	var events []historyEvent
	waitUntil(t, 3*time.Minute, "the rollout's commit in the history", func() bool {
		events = d.history(t, "committed", s.name)
		return len(events) > 0 || len(d.history(t, "commit-failed", s.name)) > 0
	})
	if len(events) != 1 || !strings.Contains(events[0].Detail, "pushed") || !strings.Contains(events[0].Detail, "rebased") ||
		!strings.Contains(events[0].Detail, "app/docker-compose.yml") || strings.Contains(events[0].Detail, s.srv.Token) {
		t.Fatalf("committed events = %+v, want one naming the file, rebased and pushed, without the token\ncommit-failed: %+v\ntidewatch log:\n%s",
			events, d.history(t, "commit-failed", s.name), d.log.String())
	}
	if got := bed.WaitHTTP(t, s.appURL); !strings.Contains(got, "3.1.0") {
		t.Errorf("the app answers %q, want 3.1.0", got)
	}

	clone := s.srv.Clone(t, s.url)
	want := strings.Replace(s.compose, ":3.0.0", ":3.1.0", 1)
	if b, _ := os.ReadFile(filepath.Join(clone, "app", "docker-compose.yml")); string(b) != want {
		t.Errorf("the remote's compose file:\n%s\nwant only the tag changed:\n%s", b, want)
	}
	if b, _ := os.ReadFile(filepath.Join(clone, "README.md")); string(b) != "the stack, documented\n" {
		t.Errorf("the colleague's README was lost: %q", b)
	}
	if parent := gittest.Run(t, clone, "rev-parse", "HEAD~1"); parent != theirs {
		t.Errorf("the commit's parent is %s, want the colleague's %s (rebased)", parent, theirs)
	}
	msg := gittest.Run(t, clone, "log", "-1", "--format=%an%n%B")
	if !strings.Contains(msg, "tidewatch bot") || !strings.Contains(msg, s.name) || !strings.Contains(msg, "3.0.0 → 3.1.0") {
		t.Errorf("commit message:\n%s\nwant the author, the container and 3.0.0 → 3.1.0", msg)
	}
	if st := gittest.Run(t, s.work, "status", "--porcelain"); st != "" {
		t.Errorf("the work tree is not clean:\n%s", st)
	}
}

// TestRolloutCommitConflictReported: the remote changed the same line
// meanwhile; the rollout itself is applied, the commit stays local (nothing
// lost, the work tree clean, the remote untouched), the history records
// commit-failed with the conflict, and a webhook listening for
// commit-failed is told.
func TestRolloutCommitConflictReported(t *testing.T) {
	bed := testbed.Require(t)
	s := newGitStack(t, bed, "gitconflict", "4.0.0", "4.1.0")
	s.srv.Push(t, s.url, "pinned by hand", map[string]string{"app/docker-compose.yml": strings.Replace(s.compose, ":4.0.0", ":4.0.9", 1)})
	remoteHead := gittest.Run(t, s.srv.Bare(s.repoName), "rev-parse", "main")

	rcv := newReceiver(t)
	d := startServe(t, s.env(t, bed,
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_URL="+rcv.srv.URL,
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_EVENTS=commit-failed",
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_INCLUDE="+s.name,
	))
	waitUntil(t, 3*time.Minute, "the on-call webhook to hear of the failed commit", func() bool { return len(rcv.got()) > 0 })
	p := payloadFor(t, rcv.got()[0])
	if p.Event != "commit-failed" || len(p.Updates) != 1 || p.Updates[0].Candidate != "4.1.0" || !strings.Contains(p.Updates[0].Detail, "conflict") {
		t.Errorf("webhook payload = %+v, want commit-failed of 4.1.0 naming the conflict", p)
	}
	failed := d.history(t, "commit-failed", s.name)
	if len(failed) != 1 || !strings.Contains(failed[0].Detail, "conflict") || strings.Contains(failed[0].Detail, s.srv.Token) {
		t.Errorf("commit-failed events = %+v, want one naming the conflict, without the token", failed)
	}
	if applied := d.history(t, "update-applied", s.name); len(applied) != 1 {
		t.Errorf("update-applied events = %+v, want the rollout applied all the same", applied)
	}
	if got := gittest.Run(t, s.srv.Bare(s.repoName), "rev-parse", "main"); got != remoteHead {
		t.Error("the remote changed")
	}
	if b, _ := os.ReadFile(s.file); string(b) != strings.Replace(s.compose, ":4.0.0", ":4.1.0", 1) {
		t.Errorf("the work tree's compose file:\n%s\nwant the rollout's rewrite", b)
	}
	if st := gittest.Run(t, s.work, "status", "--porcelain"); st != "" {
		t.Errorf("the work tree is not clean:\n%s", st)
	}
	if msg := gittest.Run(t, s.work, "log", "-1", "--format=%B"); !strings.Contains(msg, "4.0.0 → 4.1.0") {
		t.Errorf("the local commit's message:\n%s\nwant the rollout kept as a local commit", msg)
	}
}
