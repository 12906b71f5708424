package gitsync

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Redacted replaces credentials in URLs and errors.
const Redacted = "[redacted]"

// RedactURL returns raw without credentials: for http(s) and other URLs with
// a scheme, the user information (a token may stand there, as user name or
// password) and the query are replaced; for ssh URLs the user name, which is
// not secret ("git"), stays and a password goes. A value that does not parse
// as a URL is shown only up to its first "@" or "?", if it has one.
func RedactURL(raw string) string {
	if !strings.Contains(raw, "://") {
		// scp-like "git@host:path" has no password; anything else unparsed
		// with an "@" or "?" is cut there.
		if isSCPLike(raw) {
			return raw
		}
		if i := strings.IndexAny(raw, "@?"); i >= 0 {
			return Redacted + raw[i:i+1] + "…"
		}
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		scheme, _, _ := strings.Cut(raw, "://")
		return scheme + "://" + Redacted
	}
	if u.User != nil {
		if strings.EqualFold(u.Scheme, "ssh") {
			u.User = url.User(u.User.Username())
		} else {
			u.User = url.User(Redacted)
		}
	}
	if u.RawQuery != "" {
		u.RawQuery = Redacted
	}
	u.Fragment = ""
	s := u.String()
	return strings.ReplaceAll(s, url.QueryEscape(Redacted), Redacted)
}

// isSCPLike reports whether s is "user@host:path" (no password possible).
func isSCPLike(s string) bool {
	at := strings.Index(s, "@")
	colon := strings.Index(s, ":")
	return at > 0 && colon > at && !strings.ContainsAny(s[:at], ":/?")
}

// scrubbedError carries an error's message with secrets replaced, and keeps
// only the well-known sentinels of its chain (never the original error,
// whose message may hold a URL with credentials).
type scrubbedError struct {
	msg   string
	kinds []error
}

func (e *scrubbedError) Error() string   { return e.msg }
func (e *scrubbedError) Unwrap() []error { return e.kinds }

// sentinels are the errors a scrubbed error still matches with errors.Is.
var sentinels = []error{
	context.Canceled, context.DeadlineExceeded,
	transport.ErrAuthenticationRequired, transport.ErrAuthorizationFailed,
	transport.ErrRepositoryNotFound, transport.ErrEmptyRemoteRepository,
	ErrNotWorkTree, ErrDetached, ErrNoUpstream, ErrBusy, ErrConflict, ErrTooLarge,
}

// scrub returns err with every secret (raw URLs, tokens) and every URL's
// user information removed from its message. The result matches the
// sentinels err matched, and ConflictErrors pass through unchanged.
func scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var ce *ConflictError
	if errors.As(err, &ce) {
		return err
	}
	msg := err.Error()
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, Redacted)
		}
	}
	msg = redactURLsIn(msg)
	var kinds []error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			kinds = append(kinds, s)
		}
	}
	return &scrubbedError{msg: msg, kinds: kinds}
}

// redactURLsIn replaces the user information of every "scheme://user@"
// in s.
func redactURLsIn(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		ssh := strings.HasSuffix(strings.ToLower(s[:i]), "ssh")
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, "/ \t\n\"'")
		if end < 0 {
			end = len(s)
		}
		if at := strings.LastIndex(s[:end], "@"); at >= 0 {
			if user, _, hasPassword := strings.Cut(s[:at], ":"); ssh && !hasPassword {
				b.WriteString(user)
			} else if ssh {
				b.WriteString(user + ":" + Redacted)
			} else {
				b.WriteString(Redacted)
			}
			s = s[at:]
		}
	}
}

// urlSecrets returns the credentials a URL carries (its password, and for
// http(s) its user name, where a token may stand), to scrub from messages.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndex(raw, "@"); i > 0 {
			return []string{raw[:i]}
		}
		return nil
	}
	if u.User == nil {
		return nil
	}
	var out []string
	if p, ok := u.User.Password(); ok {
		out = append(out, p)
	}
	if !strings.EqualFold(u.Scheme, "ssh") {
		out = append(out, u.User.Username())
	}
	return out
}
