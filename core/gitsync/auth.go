package gitsync

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"

	"github.com/tidewatch/tidewatch/core"
)

// DefaultUsername is the HTTPS user name sent with a token when none is
// configured; GitHub, GitLab (personal and project tokens), Gitea and
// Forgejo accept any non-empty name with a token.
const DefaultUsername = "tidewatch"

// Credentials authenticate to a remote: a token over HTTPS, or a private key
// over SSH. The zero value is anonymous.
type Credentials struct {
	// Username goes with Token over HTTPS (default DefaultUsername), or is
	// the SSH user when the URL names none (default "git").
	Username string
	// Token is sent as the HTTP basic-auth password.
	Token core.Secret
	// SSHKey is a PEM private key (OpenSSH or PKCS#8), for ssh:// and
	// scp-like (git@host:path) URLs.
	SSHKey core.Secret
	// SSHPassphrase decrypts SSHKey when it is encrypted.
	SSHPassphrase core.Secret
	// SSHKnownHosts is a known_hosts file that must hold the server's host
	// key; required with SSHKey (no trust on first use).
	SSHKnownHosts string
}

// secrets returns the credential values to scrub from messages.
func (c Credentials) secrets() []string {
	return []string{c.Token.Reveal(), c.SSHKey.Reveal(), c.SSHPassphrase.Reveal()}
}

// Scheme classes of a remote URL.
const (
	schemeHTTP = "http"
	schemeSSH  = "ssh"
)

// urlScheme returns schemeHTTP or schemeSSH for a remote URL, or an error
// (without the URL's credentials) for anything else: local paths, file://
// and git:// are not accepted.
func urlScheme(raw string) (string, error) {
	if isSCPLike(raw) {
		return schemeSSH, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("remote %s is not an http(s) or ssh URL", RedactURL(raw))
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return schemeHTTP, nil
	case "ssh":
		return schemeSSH, nil
	}
	return "", fmt.Errorf("remote %s: scheme %q is not supported (http, https or ssh)", RedactURL(raw), u.Scheme)
}

// authFor returns the go-git auth method for remote. Anonymous credentials
// give nil. An SSH remote needs SSHKey and SSHKnownHosts; a token is only
// sent over http(s).
func (c Credentials) authFor(remote string) (transport.AuthMethod, error) {
	scheme, err := urlScheme(remote)
	if err != nil {
		return nil, err
	}
	switch scheme {
	case schemeHTTP:
		if c.Token == "" {
			return nil, nil
		}
		user := c.Username
		if user == "" {
			user = DefaultUsername
		}
		return &githttp.BasicAuth{Username: user, Password: c.Token.Reveal()}, nil
	default:
		if c.SSHKey == "" {
			return nil, fmt.Errorf("remote %s is an SSH URL: an SSH key is needed", RedactURL(remote))
		}
		if c.SSHKnownHosts == "" {
			return nil, fmt.Errorf("remote %s is an SSH URL: a known_hosts file holding its host key is needed", RedactURL(remote))
		}
		user := sshUser(remote)
		if user == "" {
			user = c.Username
		}
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeys(user, []byte(c.SSHKey.Reveal()), c.SSHPassphrase.Reveal())
		if err != nil {
			// The parser's message may quote key material; keep only its class.
			return nil, errors.New("reading the SSH key: not a PEM private key, or wrong passphrase")
		}
		cb, err := gitssh.NewKnownHostsCallback(c.SSHKnownHosts)
		if err != nil {
			return nil, fmt.Errorf("reading known_hosts %s: %w", c.SSHKnownHosts, err)
		}
		keys.HostKeyCallback = cb
		return keys, nil
	}
}

// sshUser returns the user named in an ssh URL ("git" in git@host:path).
func sshUser(raw string) string {
	if isSCPLike(raw) {
		return raw[:strings.Index(raw, "@")]
	}
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.User.Username()
	}
	return ""
}

// CheckSSHKey reports whether key is a PEM private key that passphrase (if
// any) opens. Its error never quotes the key.
func CheckSSHKey(key, passphrase core.Secret) error {
	if _, err := gitssh.NewPublicKeys("git", []byte(key.Reveal()), passphrase.Reveal()); err != nil {
		return errors.New("not a PEM private key, or the passphrase does not open it")
	}
	return nil
}
