package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/gitsync"
)

// sshKey returns a new OpenSSH private key in PEM form, encrypted with
// passphrase when it is not empty.
func sshKey(t *testing.T, passphrase string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}

// workTree returns a folder holding a .git folder.
func workTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadGit(t *testing.T) {
	token := writeFile(t, "token", "glpat-secret\n", 0o600)
	hook := writeFile(t, "hook", "a-webhook-secret-of-32-characters\n", 0o600)
	key := sshKey(t, "open sesame")
	keyFile := writeFile(t, "id_ed25519", key, 0o600)
	plainKey := sshKey(t, "")
	knownHosts := writeFile(t, "known_hosts", "git.example.com ssh-ed25519 AAAA\n", 0o600)
	tree := workTree(t)
	env := []string{
		"TIDEWATCH_GIT_PROD_URL=https://git.example.com/ops/stacks.git",
		"TIDEWATCH_GIT_PROD_BRANCH=release/1.x",
		"TIDEWATCH_GIT_PROD_PATH=./stacks/prod/",
		"TIDEWATCH_GIT_PROD_INTERVAL=90s",
		"TIDEWATCH_GIT_PROD_TIMEOUT=30s",
		"TIDEWATCH_GIT_PROD_USERNAME=oauth2",
		"TIDEWATCH_GIT_PROD_TOKEN_FILE=" + token,
		"TIDEWATCH_GIT_PROD_WEBHOOK_SECRET_FILE=" + hook,
		"TIDEWATCH_GIT_PROD_REMOVE_ORPHANS=false",
		"TIDEWATCH_GIT_HOME_LAB_WORKTREE=" + tree,
		"TIDEWATCH_GIT_HOME_LAB_PUSH=true",
		"TIDEWATCH_GIT_HOME_LAB_AUTHOR_NAME=Tide Bot",
		"TIDEWATCH_GIT_HOME_LAB_AUTHOR_EMAIL=bot@example.com",
		"TIDEWATCH_GIT_HOME_LAB_MESSAGE=chore({{.Container}}): {{.To}}",
		"TIDEWATCH_GIT_HOME_LAB_SSH_KEY_FILE=" + keyFile,
		"TIDEWATCH_GIT_HOME_LAB_SSH_PASSPHRASE=open sesame",
		"TIDEWATCH_GIT_HOME_LAB_SSH_KNOWN_HOSTS=" + knownHosts,
		"TIDEWATCH_GIT_MIN_URL=git@github.com:ops/min.git",
		"TIDEWATCH_GIT_MIN_SSH_KEY=" + plainKey,
		"TIDEWATCH_GIT_MIN_SSH_KNOWN_HOSTS=" + knownHosts,
	}
	cfg, err := Load(env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []Git{
		{Name: "home_lab", WorkTree: tree, Push: true, AuthorName: "Tide Bot", AuthorEmail: "bot@example.com", Message: "chore({{.Container}}): {{.To}}",
			SSHKey: core.Secret(strings.TrimRight(key, "\n")), SSHPassphrase: "open sesame", SSHKnownHosts: knownHosts,
			Interval: DefaultGitInterval, Timeout: DefaultGitTimeout, RemoveOrphans: true},
		{Name: "min", URL: "git@github.com:ops/min.git", SSHKey: core.Secret(plainKey), SSHKnownHosts: knownHosts,
			Interval: DefaultGitInterval, Timeout: DefaultGitTimeout, RemoveOrphans: true},
		{Name: "prod", URL: "https://git.example.com/ops/stacks.git", Branch: "release/1.x", Path: "stacks/prod", Interval: 90 * time.Second,
			Timeout: 30 * time.Second, Username: "oauth2", Token: "glpat-secret", WebhookSecret: "a-webhook-secret-of-32-characters"},
	}
	if diff := cmp.Diff(want, cfg.Git); diff != "" {
		t.Fatalf("Load git (-want +got):\n%s", diff)
	}
	if !cfg.Git[2].IsSource() || cfg.Git[0].IsSource() {
		t.Error("IsSource: prod is a source, home_lab a work tree")
	}
	if c := cfg.Git[2].Credentials(); c.Token.Reveal() != "glpat-secret" || c.Username != "oauth2" {
		t.Errorf("Credentials() = %+v", c)
	}
	// What config accepts, gitsync accepts.
	for _, g := range cfg.Git {
		if g.IsSource() {
			if err := g.Source().Validate(); err != nil {
				t.Errorf("%s: Source().Validate() = %v", g.Name, err)
			}
			continue
		}
		if _, err := gitsync.NewCommitter(g.CommitConfig(), nil); err != nil {
			t.Errorf("%s: NewCommitter(CommitConfig()) = %v", g.Name, err)
		}
	}
}

func TestLoadGitErrors(t *testing.T) {
	tree := workTree(t)
	missing := filepath.Join(t.TempDir(), "missing")
	knownHosts := writeFile(t, "known_hosts", "h ssh-ed25519 AAAA\n", 0o600)
	key := sshKey(t, "")
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"token in the URL", []string{"TIDEWATCH_GIT_S_URL=https://ghp_canary@github.com/o/r.git"},
			[]string{`TIDEWATCH_GIT_S_URL="https://[redacted]@github.com/o/r.git": holds credentials; expected the URL without them, and TOKEN (or TOKEN_FILE) for the token`}},
		{"password in an ssh URL", []string{"TIDEWATCH_GIT_S_URL=ssh://git:pw-canary@h/r.git", "TIDEWATCH_GIT_S_SSH_KEY=" + key, "TIDEWATCH_GIT_S_SSH_KNOWN_HOSTS=" + knownHosts},
			[]string{`TIDEWATCH_GIT_S_URL="ssh://git@h/r.git": holds credentials; expected the URL without them, and TOKEN (or TOKEN_FILE) for the token`}},
		{"file URL", []string{"TIDEWATCH_GIT_S_URL=file:///srv/repo"},
			[]string{`TIDEWATCH_GIT_S_URL="file:///srv/repo": not a repository URL; expected https://host/owner/repo.git, ssh://git@host/owner/repo.git or git@host:owner/repo.git`}},
		{"git scheme", []string{"TIDEWATCH_GIT_S_URL=git://h/r.git"},
			[]string{`TIDEWATCH_GIT_S_URL="git://h/r.git": scheme "git" is not supported; expected https://host/owner/repo.git, ssh://git@host/owner/repo.git or git@host:owner/repo.git`}},
		{"local path", []string{"TIDEWATCH_GIT_S_URL=/srv/repo"},
			[]string{`TIDEWATCH_GIT_S_URL="/srv/repo": not a repository URL; expected https://host/owner/repo.git, ssh://git@host/owner/repo.git or git@host:owner/repo.git`}},
		{"token over plain http", []string{"TIDEWATCH_GIT_S_URL=http://git.example.com/r.git", "TIDEWATCH_GIT_S_TOKEN=t"},
			[]string{`TIDEWATCH_GIT_S_URL="http://git.example.com/r.git": plain http would send the token unencrypted; expected an https URL`}},
		{"URL and WORKTREE", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_WORKTREE=" + tree},
			[]string{`TIDEWATCH_GIT_S_WORKTREE="` + tree + `": set together with TIDEWATCH_GIT_S_URL; expected one of them: URL for a source to deploy from, WORKTREE for a local clone to commit in`}},
		{"neither URL nor WORKTREE", []string{"TIDEWATCH_GIT_S_BRANCH=main"},
			[]string{`TIDEWATCH_GIT_S_URL: neither URL nor WORKTREE is set; expected URL, the repository to deploy from, or WORKTREE, a local clone to commit rollouts in`}},
		{"work-tree option on a source", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_PUSH=true"},
			[]string{`TIDEWATCH_GIT_S_PUSH: applies only with TIDEWATCH_GIT_S_WORKTREE; expected it unset, or WORKTREE set instead`}},
		{"source option on a work tree", []string{"TIDEWATCH_GIT_S_WORKTREE=" + tree, "TIDEWATCH_GIT_S_PATH=x"},
			[]string{`TIDEWATCH_GIT_S_PATH: applies only with TIDEWATCH_GIT_S_URL; expected it unset, or URL set instead`}},
		{"path escaping", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_PATH=../../etc"},
			[]string{`TIDEWATCH_GIT_S_PATH="../../etc": not a folder inside the repository; expected a relative path like "stacks/prod", without ".."`}},
		{"absolute path", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_PATH=/etc"},
			[]string{`TIDEWATCH_GIT_S_PATH="/etc": not a folder inside the repository; expected a relative path like "stacks/prod", without ".."`}},
		{"interval too short", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_INTERVAL=1s"},
			[]string{`TIDEWATCH_GIT_S_INTERVAL="1s": shorter than 10s; expected a duration of at least 10s, like 5m`}},
		{"interval not a duration", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_INTERVAL=soon"},
			[]string{`TIDEWATCH_GIT_S_INTERVAL="soon": not a positive duration; expected a Go duration like "5m" or "90s"`}},
		{"timeout zero", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_TIMEOUT=0s"},
			[]string{`TIDEWATCH_GIT_S_TIMEOUT="0s": not a positive duration; expected a Go duration like "5m" or "90s"`}},
		{"timeout too long", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_TIMEOUT=2h"},
			[]string{`TIDEWATCH_GIT_S_TIMEOUT="2h0m0s": out of range; expected a duration from 1s to 1h, like 2m`}},
		{"branch with ..", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_BRANCH=a..b"},
			[]string{`TIDEWATCH_GIT_S_BRANCH="a..b": not a branch name; expected a branch like main or release/1.x`}},
		{"trigger not type.name", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_TRIGGER=compose"},
			[]string{`TIDEWATCH_GIT_S_TRIGGER="compose": not a trigger instance; expected "type.name" of a deploying trigger, like compose.prod`}},
		{"trigger on a work tree", []string{"TIDEWATCH_GIT_S_WORKTREE=/srv/x", "TIDEWATCH_GIT_S_TRIGGER=compose.prod"},
			[]string{`TIDEWATCH_GIT_S_TRIGGER: applies only with TIDEWATCH_GIT_S_URL; expected it unset, or URL set instead`,
				`TIDEWATCH_GIT_S_WORKTREE="/srv/x": not a git work tree (no .git in it); expected the root folder of a git clone`}},
		{"short webhook secret", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_WEBHOOK_SECRET=short-canary"},
			[]string{`TIDEWATCH_GIT_S_WEBHOOK_SECRET: too short; expected at least 16 characters (the same secret is set in the git host's webhook)`}},
		{"missing token file", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_TOKEN_FILE=" + missing},
			[]string{`TIDEWATCH_GIT_S_TOKEN_FILE="` + missing + `": cannot read file (no such file or directory); expected a readable file holding the token`}},
		{"token and token file", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_TOKEN=a", "TIDEWATCH_GIT_S_TOKEN_FILE=" + missing},
			[]string{`TIDEWATCH_GIT_S_TOKEN_FILE: set together with TIDEWATCH_GIT_S_TOKEN; expected only one of them`}},
		{"garbage ssh key", []string{"TIDEWATCH_GIT_S_URL=git@h:r.git", "TIDEWATCH_GIT_S_SSH_KEY=key-canary", "TIDEWATCH_GIT_S_SSH_KNOWN_HOSTS=" + knownHosts},
			[]string{`TIDEWATCH_GIT_S_SSH_KEY: not a PEM private key, or the passphrase does not open it; expected a PEM private key (OpenSSH or PKCS#8), with SSH_PASSPHRASE when it is encrypted`}},
		{"ssh URL without a key", []string{"TIDEWATCH_GIT_S_URL=git@h:r.git"},
			[]string{`TIDEWATCH_GIT_S_SSH_KEY: not set, but the URL is an ssh URL; expected SSH_KEY or SSH_KEY_FILE, a PEM private key`}},
		{"ssh key without known hosts", []string{"TIDEWATCH_GIT_S_URL=git@h:r.git", "TIDEWATCH_GIT_S_SSH_KEY=" + key},
			[]string{`TIDEWATCH_GIT_S_SSH_KNOWN_HOSTS: not set, but SSH_KEY is; expected a known_hosts file holding the git server's host key (ssh-keyscan host > known_hosts)`}},
		{"ssh key for an https URL", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_SSH_KEY=" + key, "TIDEWATCH_GIT_S_SSH_KNOWN_HOSTS=" + knownHosts},
			[]string{`TIDEWATCH_GIT_S_SSH_KEY: set for a URL that is not ssh; expected an ssh:// or git@host:path URL, or TOKEN for https`}},
		{"token for an ssh URL", []string{"TIDEWATCH_GIT_S_URL=git@h:r.git", "TIDEWATCH_GIT_S_SSH_KEY=" + key, "TIDEWATCH_GIT_S_SSH_KNOWN_HOSTS=" + knownHosts, "TIDEWATCH_GIT_S_TOKEN=t"},
			[]string{`TIDEWATCH_GIT_S_TOKEN: set for an ssh URL; expected SSH_KEY for ssh, or an https URL for a token`}},
		{"unreadable known hosts", []string{"TIDEWATCH_GIT_S_URL=git@h:r.git", "TIDEWATCH_GIT_S_SSH_KEY=" + key, "TIDEWATCH_GIT_S_SSH_KNOWN_HOSTS=" + missing},
			[]string{`TIDEWATCH_GIT_S_SSH_KNOWN_HOSTS="` + missing + `": cannot read file (no such file or directory); expected a readable known_hosts file`}},
		{"relative work tree", []string{"TIDEWATCH_GIT_S_WORKTREE=srv/stack"},
			[]string{`TIDEWATCH_GIT_S_WORKTREE="srv/stack": not an absolute path; expected the absolute path of a git clone, like /srv/stack`}},
		{"work tree without .git", []string{"TIDEWATCH_GIT_S_WORKTREE=" + filepath.Dir(missing)},
			[]string{`TIDEWATCH_GIT_S_WORKTREE="` + filepath.Dir(missing) + `": not a git work tree (no .git in it); expected the root folder of a git clone`}},
		{"push not a boolean", []string{"TIDEWATCH_GIT_S_WORKTREE=" + tree, "TIDEWATCH_GIT_S_PUSH=sometimes"},
			[]string{`TIDEWATCH_GIT_S_PUSH="sometimes": not a boolean; expected true or false`}},
		{"bad author e-mail", []string{"TIDEWATCH_GIT_S_WORKTREE=" + tree, "TIDEWATCH_GIT_S_AUTHOR_EMAIL=bot <x>"},
			[]string{`TIDEWATCH_GIT_S_AUTHOR_EMAIL="bot <x>": not an e-mail address; expected an address like tidewatch@example.com`}},
		{"author name with a line break", []string{"TIDEWATCH_GIT_S_WORKTREE=" + tree, "TIDEWATCH_GIT_S_AUTHOR_NAME=a\nSigned-off-by: x"},
			[]string{`TIDEWATCH_GIT_S_AUTHOR_NAME="a\nSigned-off-by: x": holds <, > or a line break; expected a plain name`}},
		{"message with an unknown field", []string{"TIDEWATCH_GIT_S_WORKTREE=" + tree, "TIDEWATCH_GIT_S_MESSAGE={{.Secret}}"},
			[]string{`TIDEWATCH_GIT_S_MESSAGE="{{.Secret}}": trying the commit message template: template: message:1:2: executing "message" at <.Secret>: can't evaluate field Secret in type gitsync.MessageData; expected a text/template over .Container, .From, .To, .Kind, .Outcome and .Files`}},
		{"message calling a function", []string{"TIDEWATCH_GIT_S_WORKTREE=" + tree, `TIDEWATCH_GIT_S_MESSAGE={{env "HOME"}}`},
			[]string{`TIDEWATCH_GIT_S_MESSAGE="{{env \"HOME\"}}": parsing the commit message template: template: message:1: function "env" not defined; expected a text/template over .Container, .From, .To, .Kind, .Outcome and .Files`}},
		{"remove orphans not a boolean", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_REMOVE_ORPHANS=maybe"},
			[]string{`TIDEWATCH_GIT_S_REMOVE_ORPHANS="maybe": not a boolean; expected true or false`}},
		{"remove orphans on a work tree", []string{"TIDEWATCH_GIT_S_WORKTREE=" + tree, "TIDEWATCH_GIT_S_REMOVE_ORPHANS=true"},
			[]string{`TIDEWATCH_GIT_S_REMOVE_ORPHANS: applies only with TIDEWATCH_GIT_S_URL; expected it unset, or URL set instead`}},
		{"unknown option", []string{"TIDEWATCH_GIT_S_URL=https://h/r.git", "TIDEWATCH_GIT_S_BRANCHH=main"},
			[]string{`TIDEWATCH_GIT_S_BRANCHH: unknown variable; expected TIDEWATCH_GIT_<name>_<option> with <option> one of URL, BRANCH, PATH, INTERVAL, TIMEOUT, WEBHOOK_SECRET, WEBHOOK_SECRET_FILE, TRIGGER, REMOVE_ORPHANS, WORKTREE, PUSH, AUTHOR_NAME, AUTHOR_EMAIL, MESSAGE, USERNAME, TOKEN, TOKEN_FILE, SSH_KEY, SSH_KEY_FILE, SSH_PASSPHRASE, SSH_PASSPHRASE_FILE, SSH_KNOWN_HOSTS; did you mean TIDEWATCH_GIT_S_BRANCH?`}},
		{"bad name", []string{"TIDEWATCH_GIT_A__B_URL=https://h/r.git"},
			[]string{`TIDEWATCH_GIT_A__B_URL: invalid git name "a__b"; expected letters and digits, in parts joined by single underscores`}},
		{"two entries, one work tree", []string{"TIDEWATCH_GIT_A_WORKTREE=" + tree, "TIDEWATCH_GIT_B_WORKTREE=" + tree + "/"},
			[]string{`TIDEWATCH_GIT_B_WORKTREE: the same as TIDEWATCH_GIT_A_WORKTREE; expected one entry per work tree, and per repository, branch and path`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.env)
			if diff := cmp.Diff(tc.want, leaves(err)); diff != "" {
				t.Fatalf("Load(%q) errors (-want +got):\n%s", tc.env, diff)
			}
			for _, canary := range []string{"canary", "BEGIN OPENSSH"} {
				if err != nil && strings.Contains(err.Error(), canary) {
					t.Fatalf("Load(%q) error shows a secret: %v", tc.env, err)
				}
			}
		})
	}
}

func TestGitSecretsNeverShown(t *testing.T) {
	const canary = "CANARY-git-5e1d-webhook-secret"
	key := sshKey(t, canary)
	knownHosts := writeFile(t, "known_hosts", "h ssh-ed25519 AAAA\n", 0o600)
	cfg, err := Load([]string{
		"TIDEWATCH_GIT_A_URL=https://h/r.git", "TIDEWATCH_GIT_A_TOKEN=" + canary, "TIDEWATCH_GIT_A_WEBHOOK_SECRET=" + canary,
		"TIDEWATCH_GIT_B_URL=git@h:r.git", "TIDEWATCH_GIT_B_SSH_KEY=" + key, "TIDEWATCH_GIT_B_SSH_PASSPHRASE=" + canary, "TIDEWATCH_GIT_B_SSH_KNOWN_HOSTS=" + knownHosts,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, cfg)
		if strings.Contains(out, canary) || strings.Contains(out, "OPENSSH") {
			t.Errorf("fmt.Sprintf(%q, cfg) shows a secret: %s", verb, out)
		}
	}
}
