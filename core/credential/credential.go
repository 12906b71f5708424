// Package credential holds the credentials tidewatch's API accepts: users
// with their password hashes, and API tokens known by their digest, with
// the scope a token may be limited to. It is what the configuration parses
// them into and what the web server checks requests against; it does no I/O.
package credential

import "github.com/tidewatch/tidewatch/core"

// User is one user allowed to log in.
type User struct {
	// Name is the user name.
	Name string
	// Hash is the user's password hash.
	Hash PasswordHash
}

// PasswordHash is a parsed password hash. It redacts itself when printed,
// logged or encoded: a hash helps an attacker guess the password.
type PasswordHash struct {
	// Scheme is "bcrypt" or "argon2id".
	Scheme string
	// Encoded is the hash as written.
	Encoded core.Secret
	// Cost is the bcrypt cost (log2 of its rounds); zero for argon2id.
	Cost int
	// Memory (KiB), Time (passes), Threads, Salt and Key are the argon2id
	// parameters and digest; zero for bcrypt.
	Memory  uint32
	Time    uint32
	Threads uint8
	Salt    []byte
	Key     []byte
}

// String redacts the hash, naming only its scheme.
func (h PasswordHash) String() string { return h.Scheme + " " + core.Redacted }

// GoString redacts the hash under %#v.
func (h PasswordHash) GoString() string { return h.String() }

// MarshalText redacts the hash in encoders.
func (h PasswordHash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// Token is one API token, known by the SHA-256 of its value.
type Token struct {
	// Name says whose token it is ("ci"); it shows in logs.
	Name string
	// SHA256 is the digest of the token's value.
	SHA256 [32]byte
	// Deploy, when not nil, is the token's scope: it may deploy these
	// compose projects or services (POST /api/deploy) and do nothing else.
	// Nil for a token with every right.
	Deploy []DeployTarget
}

// Scoped reports whether t may only deploy.
func (t Token) Scoped() bool { return t.Deploy != nil }

// DeployTarget is what a scoped token may deploy: a compose project's
// service, or every service of the project when Service is empty.
type DeployTarget struct {
	Project, Service string
}

// String reads "project" or "project/service".
func (d DeployTarget) String() string {
	if d.Service == "" {
		return d.Project
	}
	return d.Project + "/" + d.Service
}

// MayDeploy reports whether one of targets covers service of project.
func MayDeploy(targets []DeployTarget, project, service string) bool {
	for _, d := range targets {
		if d.Project == project && (d.Service == "" || d.Service == service) {
			return true
		}
	}
	return false
}
