package gitsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/tidewatch/tidewatch/core"
)

// Source is a git repository tidewatch deploys from: the compose files
// under Path on Branch.
type Source struct {
	// Name names the source and its clone's folder: letters, digits, "_"
	// and "-".
	Name string
	// URL is the repository: https://, http:// or ssh:// (or scp-like
	// git@host:path). Credentials never go in it: see Credentials.
	URL string
	// Branch is the branch deployed; empty takes the remote's default
	// branch at the first clone.
	Branch string
	// Path is the folder inside the repository that holds the compose
	// files, with slashes; "" or "." is the root. It cannot leave the
	// repository.
	Path string
	// Credentials authenticate to the remote.
	Credentials Credentials
}

var sourceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Validate reports a problem with the source. It never shows credentials.
func (s Source) Validate() error {
	var es []error
	if !sourceName.MatchString(s.Name) {
		es = append(es, fmt.Errorf("source name %q: letters, digits, _ and - only", s.Name))
	}
	if _, err := urlScheme(s.URL); err != nil {
		es = append(es, err)
	} else if hasCredentials(s.URL) {
		es = append(es, fmt.Errorf("source %s: the URL %s holds credentials; give them as a token or key instead", s.Name, RedactURL(s.URL)))
	}
	if s.Branch != "" && !plumbing.NewBranchReferenceName(s.Branch).IsBranch() || strings.ContainsAny(s.Branch, " ~^:?*[\\") || strings.Contains(s.Branch, "..") {
		es = append(es, fmt.Errorf("source %s: branch %q is not a branch name", s.Name, s.Branch))
	}
	if _, err := CleanPath(s.Path); err != nil {
		es = append(es, fmt.Errorf("source %s: %w", s.Name, err))
	}
	return errors.Join(es...)
}

// hasCredentials reports whether an http(s) or ssh URL carries a password,
// or an http(s) URL any user information (a token may be the user name).
func hasCredentials(raw string) bool {
	if isSCPLike(raw) {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return false
	}
	if _, ok := u.User.Password(); ok {
		return true
	}
	return !strings.EqualFold(u.Scheme, "ssh")
}

// CleanPath returns a path inside a repository in clean form ("." for the
// root), or an error when it is absolute or leaves the repository.
func CleanPath(p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	if strings.ContainsRune(p, 0) || strings.Contains(p, "\\") {
		return "", fmt.Errorf("path %q: not a path inside the repository", p)
	}
	c := path.Clean(p)
	if path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("path %q: leaves the repository", p)
	}
	for _, part := range strings.Split(c, "/") {
		if strings.EqualFold(part, ".git") {
			return "", fmt.Errorf("path %q: inside .git", p)
		}
	}
	return c, nil
}

// Mirror keeps tidewatch's own clone of a Source in a folder: shallow (one
// commit deep) and of one branch, so a long history costs nothing. Only
// tidewatch writes in it. Safe for concurrent use: its operations run one
// at a time (an interval fetch and a webhook's wait for each other).
type Mirror struct {
	mu     sync.Mutex
	src    Source
	dir    string
	path   string
	log    *slog.Logger
	branch string
}

// NewMirror returns the mirror of src in the folder root/<src.Name>. It
// does no I/O; Fetch clones on first use.
func NewMirror(src Source, root string, log *slog.Logger) (*Mirror, error) {
	if err := src.Validate(); err != nil {
		return nil, err
	}
	p, _ := CleanPath(src.Path)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Mirror{src: src, dir: filepath.Join(root, src.Name), path: p, branch: src.Branch,
		log: log.With("source", src.Name)}, nil
}

// Dir returns the clone's folder.
func (m *Mirror) Dir() string { return m.dir }

// Branch returns the branch followed (known after the first Fetch when the
// source names none).
func (m *Mirror) Branch() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.branch
}

// secrets are the values scrubbed from this mirror's errors.
func (m *Mirror) secrets() []string {
	return append(m.src.Credentials.secrets(), urlSecrets(m.src.URL)...)
}

// Fetch brings the clone up to the remote branch, cloning it the first
// time, and returns the commit fetched. It reads one commit deep whatever
// the history's length. ctx bounds it: a remote that hangs ends with
// ctx's error.
func (m *Mirror) Fetch(ctx context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	auth, err := m.src.Credentials.authFor(m.src.URL)
	if err != nil {
		return "", scrub(fmt.Errorf("source %s: %w", m.src.Name, err), m.secrets()...)
	}
	repo, err := git.PlainOpen(m.dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return m.clone(ctx, auth)
	}
	if err != nil {
		return "", fmt.Errorf("opening the clone of %s: %w", m.src.Name, err)
	}
	if err := m.mark(m.dir); err != nil {
		return "", err
	}
	if m.branch == "" {
		head, err := repo.Reference(plumbing.HEAD, false)
		if err != nil || !head.Target().IsBranch() {
			return "", fmt.Errorf("source %s: the clone's HEAD names no branch", m.src.Name)
		}
		m.branch = head.Target().Short()
	}
	tracking := plumbing.NewRemoteReferenceName("origin", m.branch)
	err = repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RemoteURL:  m.src.URL,
		RefSpecs:   []config.RefSpec{config.RefSpec("+" + plumbing.NewBranchReferenceName(m.branch).String() + ":" + tracking.String())},
		Depth:      1, Auth: auth, Tags: git.NoTags, Force: true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return "", scrub(fmt.Errorf("fetching %s of source %s from %s: %w", m.branch, m.src.Name, RedactURL(m.src.URL), err), m.secrets()...)
	}
	ref, err := repo.Reference(tracking, true)
	if err != nil {
		return "", fmt.Errorf("source %s: reading %s: %w", m.src.Name, tracking, err)
	}
	return ref.Hash().String(), nil
}

// clone makes the first, shallow clone in a temporary folder that is
// renamed into place, so that a clone cut short leaves nothing behind.
func (m *Mirror) clone(ctx context.Context, auth transport.AuthMethod) (string, error) {
	if err := os.MkdirAll(filepath.Dir(m.dir), 0o755); err != nil {
		return "", fmt.Errorf("creating the folder of source %s: %w", m.src.Name, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(m.dir), "."+m.src.Name+".clone-")
	if err != nil {
		return "", fmt.Errorf("cloning source %s: %w", m.src.Name, err)
	}
	defer os.RemoveAll(tmp)
	opts := &git.CloneOptions{URL: m.src.URL, Auth: auth, SingleBranch: true, Depth: 1, Tags: git.NoTags, NoCheckout: true}
	if m.branch != "" {
		opts.ReferenceName = plumbing.NewBranchReferenceName(m.branch)
	}
	repo, err := git.PlainCloneContext(ctx, tmp, false, opts)
	if err != nil {
		return "", scrub(fmt.Errorf("cloning source %s from %s: %w", m.src.Name, RedactURL(m.src.URL), err), m.secrets()...)
	}
	head, err := repo.Reference(plumbing.HEAD, false)
	if err != nil || !head.Target().IsBranch() {
		return "", fmt.Errorf("source %s: the remote's HEAD names no branch", m.src.Name)
	}
	m.branch = head.Target().Short()
	ref, err := repo.Reference(head.Target(), true)
	if err == nil {
		// Fetch reads the remote-tracking branch: make it as a clone does.
		err = repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewRemoteReferenceName("origin", m.branch), ref.Hash()))
	}
	if err != nil {
		return "", fmt.Errorf("source %s: reading the fetched branch %s: %w", m.src.Name, m.branch, err)
	}
	if err := m.mark(tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, m.dir); err != nil {
		return "", fmt.Errorf("cloning source %s: %w", m.src.Name, err)
	}
	m.log.Info("cloned git source", "branch", m.branch, "commit", ref.Hash().String())
	return ref.Hash().String(), nil
}

// mark writes core.GitSourceMarker into the clone's git folder (once), so
// that a deploying trigger asked to rewrite a file in the clone knows it is
// a source's and refuses.
func (m *Mirror) mark(dir string) error {
	p := filepath.Join(dir, ".git", core.GitSourceMarker)
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == m.src.Name {
		return nil
	}
	if err := os.WriteFile(p, []byte(m.src.Name+"\n"), 0o644); err != nil {
		return fmt.Errorf("marking the clone of source %s: %w", m.src.Name, err)
	}
	return nil
}

// Checkout puts the clone's work tree at commit (tidewatch's own clone:
// anything else in it is overwritten) and returns the folder of the
// source's Path in it, where the compose files are.
func (m *Mirror) Checkout(ctx context.Context, commit string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	repo, err := git.PlainOpen(m.dir)
	if err != nil {
		return "", fmt.Errorf("opening the clone of %s: %w", m.src.Name, err)
	}
	h, err := m.commitHash(commit)
	if err != nil {
		return "", err
	}
	w, err := repo.Worktree()
	if err != nil {
		return "", fmt.Errorf("source %s: %w", m.src.Name, err)
	}
	if err := w.Reset(&git.ResetOptions{Commit: h, Mode: git.HardReset}); err != nil {
		return "", fmt.Errorf("checking out %s of source %s: %w", commit, m.src.Name, err)
	}
	dir := filepath.Join(m.dir, filepath.FromSlash(m.path))
	// A symlink on the path could lead out of the clone.
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("source %s: path %s: %w", m.src.Name, m.path, err)
	}
	base, err := filepath.EvalSymlinks(m.dir)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(base, real); err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", fmt.Errorf("source %s: path %s leads out of the clone", m.src.Name, m.path)
	}
	return dir, nil
}

// commitHash checks a full commit id.
func (m *Mirror) commitHash(commit string) (plumbing.Hash, error) {
	if !plumbing.IsHash(commit) {
		return plumbing.ZeroHash, fmt.Errorf("source %s: %q is not a commit id", m.src.Name, commit)
	}
	return plumbing.NewHash(commit), nil
}

// Changes lists the compose files under the source's Path that differ
// between the commits from and to, with the services that changed in each.
// An empty from, or one the clone does not hold (a clone made anew), counts
// every compose file as added.
func (m *Mirror) Changes(ctx context.Context, from, to string) ([]FileDiff, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	repo, err := git.PlainOpen(m.dir)
	if err != nil {
		return nil, fmt.Errorf("opening the clone of %s: %w", m.src.Name, err)
	}
	th, err := m.commitHash(to)
	if err != nil {
		return nil, err
	}
	toTree, err := subtree(repo, th, m.path)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", m.src.Name, err)
	}
	fromTree := &object.Tree{}
	if from != "" {
		fh, err := m.commitHash(from)
		if err != nil {
			return nil, err
		}
		if t, err := subtree(repo, fh, m.path); err == nil {
			fromTree = t
		} else if !errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, fmt.Errorf("source %s: %w", m.src.Name, err)
		}
	}
	return diffCompose(ctx, repo.Storer, fromTree, toTree)
}

// subtree returns the tree at p in commit h; an empty tree when p is not in
// the commit.
func subtree(repo *git.Repository, h plumbing.Hash, p string) (*object.Tree, error) {
	c, err := repo.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", h, err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("reading the tree of %s: %w", h, err)
	}
	if p == "." {
		return t, nil
	}
	sub, err := t.Tree(p)
	if errors.Is(err, object.ErrDirectoryNotFound) {
		return &object.Tree{}, nil
	}
	return sub, err
}
