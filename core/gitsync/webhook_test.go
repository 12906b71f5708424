package gitsync

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	hookSecret = "hook-secret-canary"
	commitA    = "1111111111111111111111111111111111111111"
	commitB    = "2222222222222222222222222222222222222222"
)

func sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func githubBody(ref, after string) []byte {
	return []byte(`{"ref":"` + ref + `","before":"` + commitA + `","after":"` + after + `","repository":{"full_name":"ops/stack","clone_url":"https://github.com/ops/stack.git","ssh_url":"git@github.com:ops/stack.git","html_url":"https://github.com/ops/stack"}}`)
}

func gitlabBody(ref, after string) []byte {
	return []byte(`{"object_kind":"push","ref":"` + ref + `","before":"` + commitA + `","after":"` + after + `","checkout_sha":"` + after + `","project":{"path_with_namespace":"ops/stack","git_http_url":"https://gitlab.example.com/ops/stack.git","git_ssh_url":"git@gitlab.example.com:ops/stack.git","web_url":"https://gitlab.example.com/ops/stack"}}`)
}

func giteaBody(ref, after string) []byte {
	return []byte(`{"ref":"` + ref + `","before":"` + commitA + `","after":"` + after + `","repository":{"full_name":"ops/stack","clone_url":"https://git.example.com/ops/stack.git","ssh_url":"ssh://git@git.example.com:2222/ops/stack.git"}}`)
}

func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestParsePush(t *testing.T) {
	gh := githubBody("refs/heads/main", commitB)
	gl := gitlabBody("refs/heads/main", commitB)
	gt := giteaBody("refs/heads/main", commitB)
	form := []byte("payload=" + url.QueryEscape(string(gh)))
	tests := []struct {
		name    string
		h       http.Header
		body    []byte
		secret  string
		want    Push
		wantErr error
	}{
		{"github push", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(gh, hookSecret)), gh, hookSecret,
			Push{Provider: GitHub, Ref: "refs/heads/main", Branch: "main", Before: commitA, After: commitB, Repository: "ops/stack",
				URLs: []string{"https://github.com/ops/stack.git", "git@github.com:ops/stack.git", "https://github.com/ops/stack"}}, nil},
		{"github form-encoded push", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(form, hookSecret)), form, hookSecret,
			Push{Provider: GitHub, Ref: "refs/heads/main", Branch: "main", Before: commitA, After: commitB, Repository: "ops/stack",
				URLs: []string{"https://github.com/ops/stack.git", "git@github.com:ops/stack.git", "https://github.com/ops/stack"}}, nil},
		{"github wrong signature", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(gh, "other")), gh, hookSecret, Push{}, ErrSignature},
		{"github signature of another body", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(gh, hookSecret)), append(bytes.Clone(gh), ' '), hookSecret, Push{}, ErrSignature},
		{"github missing signature", headers("X-GitHub-Event", "push"), gh, hookSecret, Push{}, ErrSignature},
		{"github sha1 signature only", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha1="+sign(gh, hookSecret)), gh, hookSecret, Push{}, ErrSignature},
		{"github signature not hex", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256=zz"+sign(gh, hookSecret)[2:]), gh, hookSecret, Push{}, ErrSignature},
		{"github truncated signature", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(gh, hookSecret)[:32]), gh, hookSecret, Push{}, ErrSignature},
		{"github ping", headers("X-GitHub-Event", "ping", "X-Hub-Signature-256", "sha256="+sign([]byte(`{"zen":"x"}`), hookSecret)), []byte(`{"zen":"x"}`), hookSecret, Push{}, ErrNotPush},
		{"github tag push", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(githubBody("refs/tags/v1", commitB), hookSecret)), githubBody("refs/tags/v1", commitB), hookSecret,
			Push{Provider: GitHub, Ref: "refs/tags/v1", Before: commitA, After: commitB, Repository: "ops/stack",
				URLs: []string{"https://github.com/ops/stack.git", "git@github.com:ops/stack.git", "https://github.com/ops/stack"}}, nil},
		{"github deleted branch", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(githubBody("refs/heads/old", strings.Repeat("0", 40)), hookSecret)), githubBody("refs/heads/old", strings.Repeat("0", 40)), hookSecret,
			Push{Provider: GitHub, Ref: "refs/heads/old", Branch: "old", Before: commitA, After: strings.Repeat("0", 40), Deleted: true, Repository: "ops/stack",
				URLs: []string{"https://github.com/ops/stack.git", "git@github.com:ops/stack.git", "https://github.com/ops/stack"}}, nil},
		{"github signed but not JSON", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign([]byte("{not json"), hookSecret)), []byte("{not json"), hookSecret, Push{}, ErrPayload},
		{"github signed, hostile commit id", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(githubBody("refs/heads/main", "$(rm -rf /)"), hookSecret)), githubBody("refs/heads/main", "$(rm -rf /)"), hookSecret, Push{}, ErrPayload},
		{"github signed, hostile ref", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(githubBody("main\\nx", commitB), hookSecret)), githubBody("main\\nx", commitB), hookSecret, Push{}, ErrPayload},
		{"gitlab push", headers("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", hookSecret), gl, hookSecret,
			Push{Provider: GitLab, Ref: "refs/heads/main", Branch: "main", Before: commitA, After: commitB, Repository: "ops/stack",
				URLs: []string{"https://gitlab.example.com/ops/stack.git", "git@gitlab.example.com:ops/stack.git", "https://gitlab.example.com/ops/stack"}}, nil},
		{"gitlab wrong token", headers("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", hookSecret+"x"), gl, hookSecret, Push{}, ErrSignature},
		{"gitlab token prefix only", headers("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", hookSecret[:4]), gl, hookSecret, Push{}, ErrSignature},
		{"gitlab missing token", headers("X-Gitlab-Event", "Push Hook"), gl, hookSecret, Push{}, ErrSignature},
		{"gitlab merge request event", headers("X-Gitlab-Event", "Merge Request Hook", "X-Gitlab-Token", hookSecret), gl, hookSecret, Push{}, ErrNotPush},
		{"gitea push", headers("X-Gitea-Event", "push", "X-Gitea-Signature", sign(gt, hookSecret), "X-GitHub-Event", "push"), gt, hookSecret,
			Push{Provider: Gitea, Ref: "refs/heads/main", Branch: "main", Before: commitA, After: commitB, Repository: "ops/stack",
				URLs: []string{"https://git.example.com/ops/stack.git", "ssh://git@git.example.com:2222/ops/stack.git"}}, nil},
		{"gitea wrong signature, right github-style one", headers("X-Gitea-Event", "push", "X-Gitea-Signature", sign(gt, "x"), "X-Hub-Signature-256", "sha256="+sign(gt, hookSecret)), gt, hookSecret, Push{}, ErrSignature},
		{"forgejo push", headers("X-Forgejo-Event", "push", "X-Forgejo-Signature", sign(gt, hookSecret), "X-Gitea-Event", "push", "X-Gitea-Signature", sign(gt, hookSecret)), gt, hookSecret,
			Push{Provider: Forgejo, Ref: "refs/heads/main", Branch: "main", Before: commitA, After: commitB, Repository: "ops/stack",
				URLs: []string{"https://git.example.com/ops/stack.git", "ssh://git@git.example.com:2222/ops/stack.git"}}, nil},
		{"forgejo missing signature", headers("X-Forgejo-Event", "push"), gt, hookSecret, Push{}, ErrSignature},
		{"unknown provider", headers("X-Bitbucket-Event", "push"), gt, hookSecret, Push{}, ErrUnknownProvider},
		{"no secret configured", headers("X-GitHub-Event", "push", "X-Hub-Signature-256", "sha256="+sign(gh, "")), gh, "", Push{}, ErrNoSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePush(tc.h, tc.body, []byte(tc.secret))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("ParsePush error = %v, want %v", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), hookSecret) {
				t.Fatalf("ParsePush error shows the secret: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("ParsePush (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadBodyBounded(t *testing.T) {
	if _, err := ReadBody(strings.NewReader(strings.Repeat("x", 1000)), 1000); err != nil {
		t.Fatalf("ReadBody of exactly the bound = %v", err)
	}
	// An endless body is cut after the bound, not read to its end.
	endless := &countingReader{}
	if _, err := ReadBody(endless, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ReadBody of an endless body = %v, want ErrTooLarge", err)
	}
	if endless.n > 2<<20 {
		t.Fatalf("ReadBody read %d bytes past a 1 MiB bound", endless.n)
	}
}

type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	r.n += len(p)
	return len(p), nil
}

func TestPushMatches(t *testing.T) {
	p := Push{Branch: "main", URLs: []string{"https://GitHub.com/ops/stack.git", "git@github.com:ops/stack.git"}}
	tests := []struct {
		url, branch string
		want        bool
	}{
		{"https://github.com/ops/stack.git", "main", true},
		{"https://github.com/ops/stack", "main", true},
		{"ssh://git@github.com:22/ops/stack.git", "main", true},
		{"git@github.com:ops/stack.git", "main", true},
		{"https://github.com/ops/stack.git", "dev", false},
		{"https://github.com/ops/stack-other.git", "main", false},
		{"https://github.com.evil.example/ops/stack.git", "main", false},
		{"not a url", "main", false},
	}
	for _, tc := range tests {
		if got := p.Matches(tc.url, tc.branch); got != tc.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tc.url, tc.branch, got, tc.want)
		}
	}
	deleted := p
	deleted.Deleted = true
	if deleted.Matches("https://github.com/ops/stack.git", "main") {
		t.Error("a deleted branch matched")
	}
}

// FuzzParsePush: hostile bodies and signatures never panic, and nothing
// unsigned is ever accepted.
func FuzzParsePush(f *testing.F) {
	f.Add("push", "sha256=00", string(githubBody("refs/heads/main", commitB)))
	f.Add("push", "", "payload=%7B")
	f.Fuzz(func(t *testing.T, event, sig, body string) {
		h := headers("X-GitHub-Event", event, "X-Hub-Signature-256", sig)
		p, err := ParsePush(h, []byte(body), []byte(hookSecret))
		if err == nil && sig != "sha256="+sign([]byte(body), hookSecret) {
			t.Fatalf("ParsePush accepted %q signed %q: %+v", body, sig, p)
		}
		// Signed correctly, it parses or says why, without panicking.
		h.Set("X-Hub-Signature-256", "sha256="+sign([]byte(body), hookSecret))
		ParsePush(h, []byte(body), []byte(hookSecret))
	})
}
