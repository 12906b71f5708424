package config

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/gitsync"
)

// Defaults of a git entry.
const (
	// DefaultGitInterval is how often a git source is fetched.
	DefaultGitInterval = 5 * time.Minute
	// MinGitInterval is the shortest INTERVAL accepted.
	MinGitInterval = 10 * time.Second
	// DefaultGitTimeout bounds one fetch, clone or push.
	DefaultGitTimeout = 2 * time.Minute
	// minWebhookSecret is the shortest WEBHOOK_SECRET accepted.
	minWebhookSecret = 16
)

// Git options, as they end a TIDEWATCH_GIT_<name>_<option> variable.
var gitOptions = []string{
	"URL", "BRANCH", "PATH", "INTERVAL", "TIMEOUT", "WEBHOOK_SECRET", "WEBHOOK_SECRET_FILE", "TRIGGER", "REMOVE_ORPHANS",
	"WORKTREE", "PUSH", "AUTHOR_NAME", "AUTHOR_EMAIL", "MESSAGE",
	"USERNAME", "TOKEN", "TOKEN_FILE", "SSH_KEY", "SSH_KEY_FILE", "SSH_PASSPHRASE", "SSH_PASSPHRASE_FILE", "SSH_KNOWN_HOSTS",
}

// Git is one git repository, configured by TIDEWATCH_GIT_<name>_<option>.
// It is either a source (URL set): a repository whose compose files
// tidewatch clones under the store path and deploys; or a work tree
// (WORKTREE set): a local clone in which tidewatch commits the compose
// files and .env files its rollouts rewrite, and pushes them when PUSH is
// true. Exactly one of URL and WORKTREE is set.
type Git struct {
	// Name is the lower-cased <name>; it names the source's clone folder.
	Name string

	// URL is the source repository (URL): https://host/owner/repo.git,
	// ssh://git@host/owner/repo.git or git@host:owner/repo.git. It never
	// holds credentials: set TOKEN or SSH_KEY. http:// is accepted only
	// without a token or to a loopback host.
	URL string
	// Branch is the branch deployed (BRANCH); default the remote's default branch.
	Branch string
	// Path is the folder inside the repository holding the compose files
	// (PATH), with slashes; default "." (the root). It cannot leave the repository.
	Path string
	// Interval is how often the source is fetched (INTERVAL, a Go duration,
	// at least 10s); default 5m. A signed push webhook fetches at once.
	Interval time.Duration
	// WebhookSecret checks push webhooks for this source (WEBHOOK_SECRET or
	// WEBHOOK_SECRET_FILE; at least 16 characters): GitHub's and Gitea's
	// HMAC secret, GitLab's token. Without it, webhooks are refused.
	WebhookSecret core.Secret
	// Trigger is the deploying trigger the source's commits are deployed
	// through (TRIGGER, "type.name" like "compose.prod"); default the only
	// compose trigger. Checked against the triggers at start-up.
	Trigger string
	// RemoveOrphans brings down the services a commit removes from the
	// source, as compose's up --remove-orphans (REMOVE_ORPHANS); default
	// true, as doco-cd's remove_orphans and harbormaster. Only containers
	// the source's clone deployed are removed, never a volume.
	RemoveOrphans bool

	// WorkTree is a local git work tree whose rewritten files are committed
	// (WORKTREE, an absolute path).
	WorkTree string
	// Push pushes each commit to the work tree branch's upstream (PUSH);
	// default false.
	Push bool
	// AuthorName and AuthorEmail sign the commits (AUTHOR_NAME,
	// AUTHOR_EMAIL); default "tidewatch" and "tidewatch@localhost".
	AuthorName, AuthorEmail string
	// Message is the commit message template (MESSAGE), text/template over
	// .Container, .From, .To, .Kind, .Outcome and .Files; default
	// gitsync.DefaultMessage.
	Message string

	// Timeout bounds one clone, fetch or push (TIMEOUT, a Go duration);
	// default 2m.
	Timeout time.Duration
	// Username goes with Token over HTTPS (USERNAME); default "tidewatch".
	Username string
	// Token is an HTTPS access token (TOKEN or TOKEN_FILE).
	Token core.Secret
	// SSHKey is a PEM private key for ssh URLs (SSH_KEY or SSH_KEY_FILE).
	SSHKey core.Secret
	// SSHPassphrase opens an encrypted SSHKey (SSH_PASSPHRASE or SSH_PASSPHRASE_FILE).
	SSHPassphrase core.Secret
	// SSHKnownHosts is a known_hosts file holding the server's host key
	// (SSH_KNOWN_HOSTS); required with SSH_KEY.
	SSHKnownHosts string
}

// IsSource reports whether the entry is a source (URL) rather than a work tree.
func (g Git) IsSource() bool { return g.URL != "" }

// Credentials returns the entry's credentials for gitsync.
func (g Git) Credentials() gitsync.Credentials {
	return gitsync.Credentials{Username: g.Username, Token: g.Token, SSHKey: g.SSHKey, SSHPassphrase: g.SSHPassphrase, SSHKnownHosts: g.SSHKnownHosts}
}

// Source returns the entry as a gitsync source (for a URL entry).
func (g Git) Source() gitsync.Source {
	return gitsync.Source{Name: g.Name, URL: g.URL, Branch: g.Branch, Path: g.Path, Credentials: g.Credentials()}
}

// CommitConfig returns the entry's commit settings (for a WORKTREE entry).
func (g Git) CommitConfig() gitsync.CommitConfig {
	return gitsync.CommitConfig{AuthorName: g.AuthorName, AuthorEmail: g.AuthorEmail, Message: g.Message, Push: g.Push, Credentials: g.Credentials()}
}

func newGit(name string) Git {
	g := Git{Name: name, RemoveOrphans: true}
	g.SetDefaults()
	return g
}

// SetDefaults fills a zero Interval and Timeout.
func (g *Git) SetDefaults() {
	if g.Interval == 0 {
		g.Interval = DefaultGitInterval
	}
	if g.Timeout == 0 {
		g.Timeout = DefaultGitTimeout
	}
}

// variable returns the name of the variable that sets option.
func (g Git) variable(option string) string {
	return "TIDEWATCH_GIT_" + strings.ToUpper(g.Name) + "_" + option
}

// gitSlot is the field an option sets: _FILE variants share their option's slot.
func gitSlot(option string) string { return strings.TrimSuffix(option, "_FILE") }

// loadGit applies one TIDEWATCH_GIT_ variable to the entries in gits, kept
// sorted by name.
func loadGit(es *errs, gits *[]Git, key, upper, value string, claim func(field, variable string) bool) {
	rest := upper[len("TIDEWATCH_GIT_"):]
	name, opt, ok := splitOption(rest, gitOptions)
	if !ok {
		es.add(key, "", "unknown variable", "TIDEWATCH_GIT_<name>_<option> with <option> one of "+strings.Join(gitOptions, ", ")+hint("TIDEWATCH_GIT_", rest, gitOptions))
		return
	}
	name = strings.ToLower(name)
	if !validName(name) {
		es.add(key, "", "invalid git name "+quote(name), "letters and digits, in parts joined by single underscores")
		return
	}
	if !claim("TIDEWATCH_GIT_"+strings.ToUpper(name)+"_"+gitSlot(opt), key) {
		return
	}
	i, found := slices.BinarySearchFunc(*gits, name, func(g Git, n string) int { return strings.Compare(g.Name, n) })
	if !found {
		*gits = slices.Insert(*gits, i, newGit(name))
	}
	(*gits)[i].set(es, key, opt, value)
}

// set applies one option's raw value; it records a problem in es. Secret
// values never reach es, nor do URLs with credentials.
func (g *Git) set(es *errs, variable, option, value string) {
	switch option {
	case "URL":
		g.URL = strings.TrimSpace(value)
	case "BRANCH":
		g.Branch = value
	case "TRIGGER":
		g.Trigger = strings.ToLower(strings.TrimSpace(value))
	case "REMOVE_ORPHANS":
		b, ok := parseBool(value)
		if !ok {
			es.add(variable, value, "not a boolean", "true or false")
			return
		}
		g.RemoveOrphans = b
	case "PATH":
		p, err := gitsync.CleanPath(value)
		if err != nil {
			es.add(variable, value, "not a folder inside the repository", "a relative path like \"stacks/prod\", without \"..\"")
			return
		}
		g.Path = p
	case "INTERVAL", "TIMEOUT":
		d, err := time.ParseDuration(strings.TrimSpace(value))
		if err != nil || d <= 0 {
			es.add(variable, value, "not a positive duration", `a Go duration like "5m" or "90s"`)
			return
		}
		if option == "INTERVAL" {
			g.Interval = d
		} else {
			g.Timeout = d
		}
	case "WORKTREE":
		g.WorkTree = value
	case "PUSH":
		b, ok := parseBool(value)
		if !ok {
			es.add(variable, value, "not a boolean", "true or false")
			return
		}
		g.Push = b
	case "AUTHOR_NAME":
		g.AuthorName = value
	case "AUTHOR_EMAIL":
		g.AuthorEmail = value
	case "MESSAGE":
		g.Message = value
	case "USERNAME":
		g.Username = value
	case "SSH_KNOWN_HOSTS":
		g.SSHKnownHosts = value
	case "TOKEN", "SSH_KEY", "SSH_PASSPHRASE", "WEBHOOK_SECRET":
		*g.secret(option) = core.Secret(value)
	case "TOKEN_FILE", "SSH_KEY_FILE", "SSH_PASSPHRASE_FILE", "WEBHOOK_SECRET_FILE":
		base := strings.TrimSuffix(option, "_FILE")
		s, p := readSecretFile(value)
		if p != "" {
			es.add(variable, value, p, "a readable file holding the "+strings.ToLower(strings.ReplaceAll(base, "_", " ")))
			return
		}
		*g.secret(base) = core.Secret(s)
	}
}

func (g *Git) secret(option string) *core.Secret {
	switch option {
	case "TOKEN":
		return &g.Token
	case "SSH_KEY":
		return &g.SSHKey
	case "SSH_PASSPHRASE":
		return &g.SSHPassphrase
	}
	return &g.WebhookSecret
}

// validateGit validates every entry, and that no two entries name the same
// work tree or deploy the same folder of the same branch.
func validateGit(gits []Git, set func(string) bool) error {
	var es errs
	seen := map[string]string{}
	for _, g := range gits {
		es = append(es, g.validate(set))
		key, opt := "", "URL"
		switch {
		case g.WorkTree != "":
			key, opt = "worktree "+filepath.Clean(g.WorkTree), "WORKTREE"
		case g.URL != "":
			key = "source " + strings.ToLower(strings.TrimSuffix(g.URL, ".git")) + " " + g.Branch + " " + g.Path
		default:
			continue
		}
		if prev, ok := seen[key]; ok {
			es.add(g.variable(opt), "", "the same as "+prev, "one entry per work tree, and per repository, branch and path")
			continue
		}
		seen[key] = g.variable(opt)
	}
	return errors.Join(es...)
}

// Validate reports every problem with the entry, each naming its variable.
// Secrets and credentials in URLs never appear in its errors.
func (g Git) Validate() error { return g.validate(unset) }

// validate is Validate, told which variables were set even if their values
// were rejected, so that one mistake is not reported twice.
func (g Git) validate(set func(variable string) bool) error {
	var es errs
	if !validName(g.Name) {
		es.add("TIDEWATCH_GIT_"+strings.ToUpper(g.Name)+"_*", "", "invalid git name", "letters and digits, in parts joined by single underscores")
	}
	isURL := g.URL != "" || set(g.variable("URL"))
	isTree := g.WorkTree != "" || set(g.variable("WORKTREE"))
	switch {
	case isURL && isTree:
		es.add(g.variable("WORKTREE"), g.WorkTree, "set together with "+g.variable("URL"), "one of them: URL for a source to deploy from, WORKTREE for a local clone to commit in")
	case !isURL && !isTree:
		es.add(g.variable("URL"), "", "neither URL nor WORKTREE is set", "URL, the repository to deploy from, or WORKTREE, a local clone to commit rollouts in")
	}
	only := func(opts []string, need string) {
		for _, o := range opts {
			if set(g.variable(o)) {
				es.add(g.variable(o), "", "applies only with "+g.variable(need), "it unset, or "+need+" set instead")
			}
		}
	}
	switch {
	case isURL && !isTree:
		only([]string{"PUSH", "AUTHOR_NAME", "AUTHOR_EMAIL", "MESSAGE"}, "WORKTREE")
	case isTree && !isURL:
		only([]string{"BRANCH", "PATH", "INTERVAL", "WEBHOOK_SECRET", "TRIGGER", "REMOVE_ORPHANS"}, "URL")
	}

	ssh := false
	if g.URL != "" {
		ssh = g.validateURL(&es)
	}
	if g.WorkTree != "" {
		g.validateWorkTree(&es)
	}
	if g.Branch != "" && !validBranch(g.Branch) {
		es.add(g.variable("BRANCH"), g.Branch, "not a branch name", "a branch like main or release/1.x")
	}
	if g.Interval < MinGitInterval {
		es.add(g.variable("INTERVAL"), g.Interval.String(), "shorter than "+MinGitInterval.String(), "a duration of at least 10s, like 5m")
	}
	if g.Timeout < time.Second || g.Timeout > time.Hour {
		es.add(g.variable("TIMEOUT"), g.Timeout.String(), "out of range", "a duration from 1s to 1h, like 2m")
	}
	if g.Trigger != "" {
		if typ, name, ok := strings.Cut(g.Trigger, "."); !ok || !validName(typ) || !validName(name) {
			es.add(g.variable("TRIGGER"), g.Trigger, "not a trigger instance", `"type.name" of a deploying trigger, like compose.prod`)
		}
	}
	if g.WebhookSecret != "" && len(g.WebhookSecret) < minWebhookSecret {
		es.addSecret(g.variable("WEBHOOK_SECRET"), "too short", "at least 16 characters (the same secret is set in the git host's webhook)")
	}

	// Credentials.
	if g.SSHKey != "" {
		if err := gitsync.CheckSSHKey(g.SSHKey, g.SSHPassphrase); err != nil {
			es.addSecret(g.variable("SSH_KEY"), err.Error(), "a PEM private key (OpenSSH or PKCS#8), with SSH_PASSPHRASE when it is encrypted")
		}
		if g.SSHKnownHosts == "" && !set(g.variable("SSH_KNOWN_HOSTS")) {
			es.add(g.variable("SSH_KNOWN_HOSTS"), "", "not set, but SSH_KEY is", "a known_hosts file holding the git server's host key (ssh-keyscan host > known_hosts)")
		}
		if g.URL != "" && !ssh {
			es.add(g.variable("SSH_KEY"), "", "set for a URL that is not ssh", "an ssh:// or git@host:path URL, or TOKEN for https")
		}
	}
	if g.SSHPassphrase != "" && g.SSHKey == "" && !set(g.variable("SSH_KEY")) {
		es.add(g.variable("SSH_PASSPHRASE"), "", "set without SSH_KEY", "SSH_KEY too")
	}
	if g.SSHKnownHosts != "" {
		if p := checkReadableFile(g.SSHKnownHosts); p != "" {
			es.add(g.variable("SSH_KNOWN_HOSTS"), g.SSHKnownHosts, p, "a readable known_hosts file")
		}
	}
	if ssh && g.SSHKey == "" && !set(g.variable("SSH_KEY")) {
		es.add(g.variable("SSH_KEY"), "", "not set, but the URL is an ssh URL", "SSH_KEY or SSH_KEY_FILE, a PEM private key")
	}
	if ssh && g.Token != "" {
		es.add(g.variable("TOKEN"), "", "set for an ssh URL", "SSH_KEY for ssh, or an https URL for a token")
	}
	if g.AuthorEmail != "" && (!strings.Contains(g.AuthorEmail, "@") || strings.ContainsAny(g.AuthorEmail, "<>\n\r ")) {
		es.add(g.variable("AUTHOR_EMAIL"), g.AuthorEmail, "not an e-mail address", "an address like tidewatch@example.com")
	}
	if strings.ContainsAny(g.AuthorName, "<>\n\r") {
		es.add(g.variable("AUTHOR_NAME"), g.AuthorName, "holds <, > or a line break", "a plain name")
	}
	if g.Message != "" {
		if _, err := gitsync.ParseMessage(g.Message); err != nil {
			es.add(g.variable("MESSAGE"), g.Message, err.Error(), "a text/template over .Container, .From, .To, .Kind, .Outcome and .Files")
		}
	}
	return errors.Join(es...)
}

// validateURL checks URL and reports whether it is an ssh URL.
func (g Git) validateURL(es *errs) (ssh bool) {
	shown := gitsync.RedactURL(g.URL)
	expected := "https://host/owner/repo.git, ssh://git@host/owner/repo.git or git@host:owner/repo.git"
	if scp(g.URL) {
		return true
	}
	u, err := url.Parse(g.URL)
	if err != nil || u.Host == "" {
		es.add(g.variable("URL"), shown, "not a repository URL", expected)
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "https", "http", "ssh":
	default:
		es.add(g.variable("URL"), shown, "scheme "+quote(u.Scheme)+" is not supported", expected)
		return false
	}
	if u.User != nil {
		if _, hasPass := u.User.Password(); hasPass || scheme != "ssh" {
			es.add(g.variable("URL"), shown, "holds credentials", "the URL without them, and TOKEN (or TOKEN_FILE) for the token")
		}
	}
	if scheme == "http" && g.Token != "" && !core.IsLoopback(u.Hostname()) {
		es.add(g.variable("URL"), shown, "plain http would send the token unencrypted", "an https URL")
	}
	return scheme == "ssh"
}

// scp reports a scp-like ssh address, user@host:path.
func scp(s string) bool {
	if strings.Contains(s, "://") {
		return false
	}
	at, colon := strings.Index(s, "@"), strings.Index(s, ":")
	return at > 0 && colon > at+1 && colon < len(s)-1 && !strings.ContainsAny(s[:at], ":/?")
}

// validateWorkTree checks that WORKTREE is an absolute path to a git work tree.
func (g Git) validateWorkTree(es *errs) {
	if !filepath.IsAbs(g.WorkTree) {
		es.add(g.variable("WORKTREE"), g.WorkTree, "not an absolute path", "the absolute path of a git clone, like /srv/stack")
		return
	}
	if _, err := os.Stat(filepath.Join(g.WorkTree, ".git")); err != nil {
		es.add(g.variable("WORKTREE"), g.WorkTree, "not a git work tree (no .git in it)", "the root folder of a git clone")
	}
}

// validBranch reports a plausible branch name (git check-ref-format, in short).
func validBranch(b string) bool {
	if b == "" || len(b) > 255 || strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") ||
		strings.HasSuffix(b, ".lock") || strings.HasSuffix(b, ".") || strings.Contains(b, "..") || strings.Contains(b, "//") || strings.Contains(b, "@{") {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return false
		}
	}
	return true
}
