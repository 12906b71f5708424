package gitsync

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Webhook providers, as Push.Provider names them.
const (
	GitHub  = "github"
	GitLab  = "gitlab"
	Gitea   = "gitea"
	Forgejo = "forgejo"
)

// DefaultMaxBody bounds a webhook body (5 MiB): push payloads list at most
// 20 commits on GitHub and GitLab.
const DefaultMaxBody = 5 << 20

// Webhook errors. A request that fails with ErrUnknownProvider,
// ErrSignature or ErrNoSecret is refused (401 or 403); ErrNotPush is
// answered 2xx and ignored (GitHub's ping, for example).
var (
	ErrUnknownProvider = errors.New("not a GitHub, GitLab, Gitea or Forgejo webhook")
	ErrSignature       = errors.New("webhook signature or token missing or wrong")
	ErrNoSecret        = errors.New("no webhook secret configured: unsigned webhooks are refused")
	ErrNotPush         = errors.New("not a push event")
	ErrPayload         = errors.New("malformed push payload")
)

// Push is a verified push event.
type Push struct {
	// Provider is GitHub, GitLab, Gitea or Forgejo.
	Provider string
	// Ref is the pushed ref, "refs/heads/main" or "refs/tags/v1".
	Ref string
	// Branch is the branch of Ref, "" for a tag.
	Branch string
	// Before and After are the ref's commits before and after the push.
	Before, After string
	// Deleted reports a deleted ref (After is all zeros).
	Deleted bool
	// Repository is the repository's full name, "owner/name".
	Repository string
	// URLs are the repository's clone and web URLs, as the payload gives them.
	URLs []string
}

// ReadBody reads a webhook body of at most max bytes (DefaultMaxBody when
// max <= 0); a longer one fails with ErrTooLarge after reading max+1 bytes.
func ReadBody(r io.Reader, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxBody
	}
	return readAllBounded(r, max, "the webhook body")
}

// ParsePush verifies a webhook's signature (GitHub X-Hub-Signature-256,
// GitLab X-Gitlab-Token, Gitea X-Gitea-Signature, Forgejo
// X-Forgejo-Signature) with secret, in constant time, and then parses the
// push it carries. The provider is told by its headers. It reads nothing
// but its arguments.
func ParsePush(h http.Header, body, secret []byte) (Push, error) {
	if len(secret) == 0 {
		return Push{}, ErrNoSecret
	}
	provider, sig, event := "", "", ""
	switch {
	case h.Get("X-Forgejo-Event") != "" || h.Get("X-Forgejo-Signature") != "":
		provider, sig, event = Forgejo, h.Get("X-Forgejo-Signature"), h.Get("X-Forgejo-Event")
	case h.Get("X-Gitea-Event") != "" || h.Get("X-Gitea-Signature") != "":
		provider, sig, event = Gitea, h.Get("X-Gitea-Signature"), h.Get("X-Gitea-Event")
	case h.Get("X-Gitlab-Event") != "" || h.Get("X-Gitlab-Token") != "":
		provider, sig, event = GitLab, h.Get("X-Gitlab-Token"), h.Get("X-Gitlab-Event")
	case h.Get("X-GitHub-Event") != "" || h.Get("X-Hub-Signature-256") != "":
		provider, sig, event = GitHub, h.Get("X-Hub-Signature-256"), h.Get("X-GitHub-Event")
	default:
		return Push{}, ErrUnknownProvider
	}
	if !verify(provider, sig, body, secret) {
		return Push{}, fmt.Errorf("%s webhook: %w", provider, ErrSignature)
	}
	switch {
	case provider == GitLab && (event == "Push Hook" || event == "Tag Push Hook"):
	case provider != GitLab && event == "push":
	default:
		return Push{}, fmt.Errorf("%s webhook event %q: %w", provider, clip(event), ErrNotPush)
	}
	return parsePayload(provider, body)
}

// verify checks a signature or token in constant time.
func verify(provider, sig string, body, secret []byte) bool {
	if sig == "" {
		return false
	}
	if provider == GitLab {
		// Hashing both sides first keeps the comparison's time independent
		// of the token's length.
		a, b := sha256.Sum256([]byte(sig)), sha256.Sum256(secret)
		return subtle.ConstantTimeCompare(a[:], b[:]) == 1
	}
	if provider == GitHub {
		var ok bool
		if sig, ok = strings.CutPrefix(sig, "sha256="); !ok {
			return false
		}
	}
	given, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(given, mac.Sum(nil))
}

// payload holds the fields of a push event that GitHub, GitLab, Gitea and
// Forgejo share, and the ones where they differ.
type payload struct {
	Ref         string  `json:"ref"`
	Before      string  `json:"before"`
	After       string  `json:"after"`
	CheckoutSHA *string `json:"checkout_sha"`
	Repository  struct {
		FullName string `json:"full_name"`
		CloneURL string `json:"clone_url"`
		SSHURL   string `json:"ssh_url"`
		HTMLURL  string `json:"html_url"`
		// GitLab's repository block.
		GitHTTPURL string `json:"git_http_url"`
		GitSSHURL  string `json:"git_ssh_url"`
		Homepage   string `json:"homepage"`
	} `json:"repository"`
	Project struct {
		PathWithNamespace string `json:"path_with_namespace"`
		GitHTTPURL        string `json:"git_http_url"`
		GitSSHURL         string `json:"git_ssh_url"`
		WebURL            string `json:"web_url"`
	} `json:"project"`
}

func parsePayload(provider string, body []byte) (Push, error) {
	if provider == GitHub && len(body) > 0 && body[0] != '{' {
		// GitHub's form encoding: payload=<json>.
		v, err := url.ParseQuery(string(body))
		if err != nil || v.Get("payload") == "" {
			return Push{}, fmt.Errorf("%s webhook: %w: neither JSON nor a form with a payload", provider, ErrPayload)
		}
		body = []byte(v.Get("payload"))
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return Push{}, fmt.Errorf("%s webhook: %w: %v", provider, ErrPayload, err)
	}
	push := Push{Provider: provider, Ref: p.Ref, Before: p.Before, After: p.After, Repository: p.Repository.FullName}
	if !strings.HasPrefix(p.Ref, "refs/") || len(p.Ref) > 1024 || strings.ContainsAny(p.Ref, " \x00\n") {
		return Push{}, fmt.Errorf("%s webhook: %w: ref %q", provider, ErrPayload, clip(p.Ref))
	}
	push.Branch, _ = strings.CutPrefix(p.Ref, "refs/heads/")
	if push.Branch == p.Ref {
		push.Branch = ""
	}
	if !isCommitID(push.After) {
		return Push{}, fmt.Errorf("%s webhook: %w: commit %q", provider, ErrPayload, clip(push.After))
	}
	push.Deleted = strings.Trim(push.After, "0") == ""
	if provider == GitLab {
		push.Repository = p.Project.PathWithNamespace
	}
	for _, u := range []string{p.Repository.CloneURL, p.Repository.SSHURL, p.Repository.HTMLURL, p.Repository.GitHTTPURL,
		p.Repository.GitSSHURL, p.Repository.Homepage, p.Project.GitHTTPURL, p.Project.GitSSHURL, p.Project.WebURL} {
		if u != "" && len(u) < 2048 {
			push.URLs = append(push.URLs, u)
		}
	}
	return push, nil
}

// isCommitID reports a full SHA-1 or SHA-256 commit id in hex.
func isCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// clip shortens a hostile value for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Matches reports whether the push moved the branch a source follows in
// the source's repository. Repository URLs are compared without scheme,
// credentials, port, ".git" and case, so the https and ssh forms of one
// repository match. A deleted branch never matches.
func (p Push) Matches(repoURL, branch string) bool {
	if p.Deleted || p.Branch == "" || p.Branch != branch {
		return false
	}
	want := repoKey(repoURL)
	if want == "" {
		return false
	}
	for _, u := range p.URLs {
		if repoKey(u) == want {
			return true
		}
	}
	return false
}

// repoKey turns a repository URL into "host/path" for comparison.
func repoKey(raw string) string {
	raw = strings.TrimSpace(raw)
	var host, p string
	if isSCPLike(raw) {
		at := strings.Index(raw, "@")
		host, p, _ = strings.Cut(raw[at+1:], ":")
	} else {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return ""
		}
		host, p = u.Hostname(), u.Path
	}
	p = strings.Trim(p, "/")
	p = strings.TrimSuffix(p, ".git")
	if host == "" || p == "" {
		return ""
	}
	return strings.ToLower(host + "/" + p)
}
