package gitsync

import (
	"context"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/gitsync/gittest"
)

func TestSSHCredentials(t *testing.T) {
	t.Parallel()
	s := newStack(t, nil)
	sshd := s.srv.ServeSSH(t)
	url := sshd.URL(composeRepo)
	creds := Credentials{SSHKey: core.Secret(sshd.ClientKey), SSHKnownHosts: sshd.KnownHosts}

	t.Run("commit pushes over ssh", func(t *testing.T) {
		s.git(t, "remote", "set-url", "origin", url)
		fc := s.rollout(t, "compose.yaml", "nginx:1.25.0", "nginx:1.25.3")
		c, err := NewCommitter(CommitConfig{Push: true, Credentials: creds}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Commit(context.Background(), nginxChange(fc))
		if err != nil {
			t.Fatalf("Commit over ssh: %v", err)
		}
		if got := gittest.Run(t, s.srv.Bare(composeRepo), "rev-parse", "main"); !res[0].Pushed || got != res[0].Commit {
			t.Fatalf("remote main = %s, want the pushed %+v", got, res[0])
		}
	})
	t.Run("a source fetches over ssh", func(t *testing.T) {
		m, err := NewMirror(Source{Name: "s", URL: url, Credentials: creds}, t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.Fetch(context.Background())
		if err != nil {
			t.Fatalf("Fetch over ssh: %v", err)
		}
		if got := gittest.Run(t, s.srv.Bare(composeRepo), "rev-parse", "main"); got != c {
			t.Fatalf("Fetch = %s, want %s", c, got)
		}
	})
	t.Run("an unknown host key is refused", func(t *testing.T) {
		spoofed := creds
		spoofed.SSHKnownHosts = sshd.OtherKnownHosts
		m, _ := NewMirror(Source{Name: "s", URL: url, Credentials: spoofed}, t.TempDir(), nil)
		_, err := m.Fetch(context.Background())
		if err == nil || !strings.Contains(err.Error(), "key mismatch") && !strings.Contains(err.Error(), "knownhosts") {
			t.Fatalf("Fetch from a server with another host key = %v, want a host key error", err)
		}
	})
	t.Run("a key the server does not know is refused", func(t *testing.T) {
		other := gittest.NewServer(t, testToken).ServeSSH(t)
		wrong := creds
		wrong.SSHKey = core.Secret(other.ClientKey)
		m, _ := NewMirror(Source{Name: "s", URL: url, Credentials: wrong}, t.TempDir(), nil)
		_, err := m.Fetch(context.Background())
		if err == nil || strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Fatalf("Fetch with an unknown key = %v, want refused, without the key", err)
		}
	})
	t.Run("an ssh URL without a key is refused before dialling", func(t *testing.T) {
		m, _ := NewMirror(Source{Name: "s", URL: url}, t.TempDir(), nil)
		if _, err := m.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "SSH key is needed") {
			t.Fatalf("Fetch without a key = %v", err)
		}
	})
}
