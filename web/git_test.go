package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/gitsync"
	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
	"github.com/tidewatch/tidewatch/core/sources"
)

const (
	gitToken  = "git-canary-token-7c2e"
	gitSecret = "webhook-secret-4b9a1e77"
)

// gitEnv is a server with auth on over a runner of two real sources served
// by a git server on 127.0.0.1: prod (with a webhook secret) and lab
// (without). Nothing deploys: the runner fetches and shows drift.
func gitEnv(t *testing.T) (*env, *gittest.Server, string, *sources.Runner) {
	t.Helper()
	srv := gittest.NewServer(t, gitToken)
	url := srv.NewRepo(t, "ops", map[string]string{"compose.yaml": "services:\n  web:\n    image: a:1\n"})
	creds := gitsync.Credentials{Username: gittest.User, Token: core.Secret(gitToken)}
	r, err := sources.New([]sources.Config{
		{Source: gitsync.Source{Name: "prod", URL: url, Credentials: creds}, Interval: time.Hour, Timeout: 30 * time.Second, WebhookSecret: gitSecret},
		{Source: gitsync.Source{Name: "lab", URL: url, Branch: "main", Path: "lab", Credentials: creds}, Interval: time.Hour, Timeout: 30 * time.Second},
	}, t.TempDir(), gitsync.NewFileState(filepath.Join(t.TempDir(), "state.json")), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	auth := withAuth(t)
	e := newEnv(t, auth, func(d *Deps, _ *Config) { d.Git = r })
	return e, srv, url, r
}

func githubPush(ref, after, url string) string {
	return fmt.Sprintf(`{"ref":%q,"before":"%s","after":%q,"repository":{"full_name":"o/ops","clone_url":%q}}`, ref, strings.Repeat("0", 40), after, url)
}

func hubSignature(body string) string {
	mac := hmac.New(sha256.New, []byte(gitSecret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestGitWebhookAndStatus(t *testing.T) {
	e, srv, url, r := gitEnv(t)
	fetched := func() string {
		sts, _ := r.Status(context.Background())
		return sts[1].Fetched // sorted: lab, prod
	}
	waitUntilTrue(t, "the first fetch at start", func() bool { return fetched() != "" })
	first := fetched()

	next := srv.Push(t, url, "web 2", map[string]string{"compose.yaml": "services:\n  web:\n    image: a:2\n"})
	good := githubPush("refs/heads/main", next, url)
	other := githubPush("refs/heads/dev", next, url)
	huge := `{"ref":"refs/heads/main","pad":"` + strings.Repeat("x", MaxWebhookBytes) + `"}`
	push := []string{"X-GitHub-Event", "push", "Content-Type", "application/json"}
	tests := []struct {
		name, path, body string
		headers          []string
		status           int
		code             string // error.code, or the result
	}{
		{"unsigned", "/api/git/prod/webhook", good, push, 401, "bad_signature"},
		{"bad signature", "/api/git/prod/webhook", good, append(push, "X-Hub-Signature-256", hubSignature("something else")), 401, "bad_signature"},
		{"no event header", "/api/git/prod/webhook", good, []string{"X-Hub-Signature-256", hubSignature(good)}, 202, "ignored"},
		{"unknown provider", "/api/git/prod/webhook", good, []string{"X-Signature", hubSignature(good)}, 401, "bad_signature"},
		{"no secret configured", "/api/git/lab/webhook", good, append(push, "X-Hub-Signature-256", hubSignature(good)), 403, "no_secret"},
		{"unknown source", "/api/git/nope/webhook", good, append(push, "X-Hub-Signature-256", hubSignature(good)), 404, "not_found"},
		{"too large", "/api/git/prod/webhook", huge, append(push, "X-Hub-Signature-256", hubSignature(huge)), 413, "too_large"},
		{"ping", "/api/git/prod/webhook", `{"zen":"hi"}`, []string{"X-GitHub-Event", "ping", "X-Hub-Signature-256", hubSignature(`{"zen":"hi"}`)}, 202, "ignored"},
		{"other branch", "/api/git/prod/webhook", other, append(push, "X-Hub-Signature-256", hubSignature(other)), 202, "ignored"},
		{"malformed", "/api/git/prod/webhook", `{"ref":5}`, append(push, "X-Hub-Signature-256", hubSignature(`{"ref":5}`)), 400, "bad_request"},
	}
	for _, tc := range tests {
		w := e.do(t, "POST", tc.path, tc.body, tc.headers...)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.code) {
			t.Errorf("%s: POST %s = %d %.200s, want %d %s", tc.name, tc.path, w.Code, w.Body.String(), tc.status, tc.code)
		}
		if got := fetched(); got != first {
			t.Fatalf("%s: the source fetched %.7s, want nothing fetched by a refused or ignored webhook", tc.name, got)
		}
	}

	// A good one, without API credentials: fetched at once.
	w := e.do(t, "POST", "/api/git/prod/webhook", good, append(push, "X-Hub-Signature-256", hubSignature(good))...)
	if w.Code != 202 || !strings.Contains(w.Body.String(), `"fetching"`) {
		t.Fatalf("signed push = %d %s, want 202 fetching", w.Code, w.Body.String())
	}
	waitUntilTrue(t, "the fetch the webhook asked for", func() bool { return fetched() == next })

	// GitLab's token and Gitea's and Forgejo's signatures are checked too.
	lab := fmt.Sprintf(`{"ref":"refs/heads/main","before":"%s","after":%q,"project":{"path_with_namespace":"o/ops","git_http_url":%q}}`, strings.Repeat("0", 40), next, url)
	hex := func(body string) string { return strings.TrimPrefix(hubSignature(body), "sha256=") }
	for _, tc := range []struct {
		name    string
		body    string
		headers []string
		status  int
	}{
		{"gitlab", lab, []string{"X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", gitSecret}, 202},
		{"gitlab wrong token", lab, []string{"X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", "wrong-token-0123456789"}, 401},
		{"gitea", good, []string{"X-Gitea-Event", "push", "X-Gitea-Signature", hex(good)}, 202},
		{"forgejo", good, []string{"X-Forgejo-Event", "push", "X-Forgejo-Signature", hex(good)}, 202},
		{"forgejo wrong signature", good, []string{"X-Forgejo-Event", "push", "X-Forgejo-Signature", hex("x")}, 401},
	} {
		if w := e.do(t, "POST", "/api/git/prod/webhook", tc.body, tc.headers...); w.Code != tc.status {
			t.Errorf("%s webhook = %d %s, want %d", tc.name, w.Code, w.Body.String(), tc.status)
		}
	}

	// GET /api/git needs credentials, and never shows the token.
	if w := e.do(t, "GET", "/api/git", ""); w.Code != 401 {
		t.Errorf("GET /api/git without credentials = %d, want 401", w.Code)
	}
	w = e.do(t, "GET", "/api/git", "", asAlice...)
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, `"name":"prod"`) || !strings.Contains(body, `"fetched":"`+next+`"`) ||
		!strings.Contains(body, `"in_sync":false`) || !strings.Contains(body, `"url":"`+url+`"`) || strings.Contains(body, gitToken) || strings.Contains(body, gitSecret) {
		t.Errorf("GET /api/git = %d %s", w.Code, body)
	}
	w = e.do(t, "GET", "/metrics", "", asAlice...)
	if m := w.Body.String(); !strings.Contains(m, `tidewatch_git_drift{source="prod"} 1`) || !strings.Contains(m, `tidewatch_git_syncs_total{result="drift",source="prod"} `) ||
		strings.Contains(m, `tidewatch_git_syncs_total{result="drift",source="prod"} 0`) {
		t.Errorf("/metrics lacks the git drift and sync counts:\n%s", grepLines(m, "tidewatch_git"))
	}
	if logs := e.logs.String(); strings.Contains(logs, gitToken) || strings.Contains(logs, gitSecret) {
		t.Errorf("the server's log shows the token or the webhook secret:\n%s", logs)
	}
}

func waitUntilTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
