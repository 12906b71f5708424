// Package gittest serves real git repositories over HTTP on 127.0.0.1 for
// tests: Debian's git (`git http-backend`) behind a net/http/cgi host that
// checks a token, and helpers that run the git command line in isolation
// (no user or system configuration, fixed identity).
//
// It needs the git binary. When git is missing, Require fails the test if
// TIDEWATCH_TESTBED_REQUIRED=1 or CI=true (the test bed installs git), and
// skips it otherwise.
package gittest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// User is the user name the server expects with Token.
const User = "tidewatch"

// Require returns the path of the git binary, or ends the test: it fails
// when TIDEWATCH_TESTBED_REQUIRED=1 or CI=true, and skips otherwise.
func Require(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		if os.Getenv("TIDEWATCH_TESTBED_REQUIRED") == "1" || os.Getenv("CI") == "true" {
			t.Fatalf("git binary not found (%v): install Debian's git (apt-get install git)", err)
		}
		t.Skip("git binary not found: install Debian's git to run this test")
	}
	return p
}

// Server is a git smart-HTTP server on 127.0.0.1 whose repositories live in
// Root. Every request must carry basic auth User:Token.
type Server struct {
	// URL is the server's base URL, "http://127.0.0.1:port"; a repository
	// named "app" is cloned from URL+"/app.git".
	URL string
	// Root is the folder holding the bare repositories.
	Root string
	// Token is the password the server expects.
	Token string

	git      string
	requests atomic.Int64
	hang     atomic.Bool
	hangDone chan struct{}
	once     sync.Once
}

// NewServer starts a server for the test; it stops at the test's end.
func NewServer(t testing.TB, token string) *Server {
	t.Helper()
	git := Require(t)
	s := &Server{Root: t.TempDir(), Token: token, git: git, hangDone: make(chan struct{})}
	backend := &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=" + User,
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + s.Root,
		},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if s.hang.Load() {
			select {
			case <-r.Context().Done():
			case <-s.hangDone:
			}
			return
		}
		u, p, ok := r.BasicAuth()
		if !ok || u != User || subtle.ConstantTimeCompare([]byte(p), []byte(s.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	s.URL = "http://" + l.Addr().String()
	t.Cleanup(func() {
		s.once.Do(func() { close(s.hangDone) })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return s
}

// Requests returns how many requests the server has had.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Hang makes every later request hang until its client goes away (or the
// test ends), as a remote that stopped answering.
func (s *Server) Hang() { s.hang.Store(true) }

// NewRepo creates the bare repository name.git on the server with one
// commit on branch main holding files (path → content), and returns its URL.
func (s *Server) NewRepo(t testing.TB, name string, files map[string]string) string {
	t.Helper()
	bare := filepath.Join(s.Root, name+".git")
	Run(t, "", "init", "--quiet", "--bare", "--initial-branch=main", bare)
	Run(t, bare, "config", "http.receivepack", "true")
	work := t.TempDir()
	Run(t, "", "init", "--quiet", "--initial-branch=main", work)
	WriteFiles(t, work, files)
	Run(t, work, "add", "-A")
	Run(t, work, "commit", "--quiet", "-m", "initial")
	Run(t, work, "push", "--quiet", bare, "main")
	return s.URL + "/" + name + ".git"
}

// Bare returns the folder of the bare repository name.git.
func (s *Server) Bare(name string) string { return filepath.Join(s.Root, name+".git") }

// WriteFiles writes files (path → content, paths relative to dir with
// slashes), creating folders.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Env is the environment every git command of Run gets: no user or system
// configuration (home should be an empty folder) and a fixed identity.
// (GIT_CONFIG_GLOBAL=/dev/null is avoided: it makes git fast-import ten
// times slower.)
func Env(home string) []string {
	return append(os.Environ(),
		"HOME="+home,
		"XDG_CONFIG_HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Test Person",
		"GIT_AUTHOR_EMAIL=person@example.com",
		"GIT_COMMITTER_NAME=Test Person",
		"GIT_COMMITTER_EMAIL=person@example.com",
		"GIT_TERMINAL_PROMPT=0",
	)
}

// Run runs git with args in dir (the current folder when dir is ""), and
// returns its trimmed standard output. It fails the test when git fails.
func Run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := RunErr(dir, args...)
	if err != nil {
		t.Fatalf("git %s (in %s): %v", strings.Join(args, " "), dir, err)
	}
	return out
}

// RunErr is Run returning git's failure (with its standard error) instead
// of failing a test.
func RunErr(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Env(emptyHome())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", &CommandError{Args: args, Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return strings.TrimSpace(stdout.String()), nil
}

var (
	homeOnce sync.Once
	home     string
)

// emptyHome returns an empty folder made once per process, as HOME for git.
func emptyHome() string {
	homeOnce.Do(func() {
		d, err := os.MkdirTemp("", "gittest-home-")
		if err != nil {
			d = os.TempDir()
		}
		home = d
	})
	return home
}

// CommandError is a failed git command.
type CommandError struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *CommandError) Error() string {
	return "git " + strings.Join(e.Args, " ") + ": " + e.Err.Error() + ": " + e.Stderr
}

// Clone clones url (with the server's credentials) into a new folder and
// returns it; its origin remote carries no credentials.
func (s *Server) Clone(t testing.TB, url string) string {
	t.Helper()
	dir := t.TempDir()
	Run(t, "", "-c", "credential.helper=", "clone", "--quiet", s.authURL(url), dir)
	Run(t, dir, "remote", "set-url", "origin", url)
	return dir
}

// Push commits files (path → content) in a fresh clone of url and pushes
// them to main, as another person would; it returns the new commit id.
func (s *Server) Push(t testing.TB, url, message string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	Run(t, "", "clone", "--quiet", s.authURL(url), dir)
	WriteFiles(t, dir, files)
	Run(t, dir, "add", "-A")
	Run(t, dir, "commit", "--quiet", "-m", message)
	Run(t, dir, "push", "--quiet", "origin", "main")
	return Run(t, dir, "rev-parse", "HEAD")
}

// Show returns the content of path at rev in the bare repository name.git.
func (s *Server) Show(t testing.TB, name, rev, path string) string {
	t.Helper()
	return Run(t, s.Bare(name), "show", rev+":"+path)
}

// authURL puts the server's credentials into url, for the git CLI only.
func (s *Server) authURL(url string) string {
	return strings.Replace(url, "http://", "http://"+User+":"+s.Token+"@", 1)
}
