package gitsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Defaults of a Committer.
const (
	// DefaultAuthorName and DefaultAuthorEmail sign commits when no author
	// is configured.
	DefaultAuthorName  = "tidewatch"
	DefaultAuthorEmail = "tidewatch@localhost"
	// DefaultMessage is the commit message template.
	DefaultMessage = "{{.Container}}: {{.From}} → {{.To}} ({{.Kind}}, {{.Outcome}})\n\n" +
		"Rolled out by tidewatch; files: {{range $i, $f := .Files}}{{if $i}}, {{end}}{{$f}}{{end}}.\n"
	// DefaultMaxFileSize bounds the files a commit reads (8 MiB).
	DefaultMaxFileSize = 8 << 20
)

// CommitConfig configures a Committer. Zero fields take the defaults.
type CommitConfig struct {
	// AuthorName and AuthorEmail sign the commits (author and committer);
	// default DefaultAuthorName, DefaultAuthorEmail.
	AuthorName, AuthorEmail string
	// Message is a text/template over MessageData; default DefaultMessage.
	// It has no functions.
	Message string
	// Push pushes each commit to the branch's upstream.
	Push bool
	// Credentials authenticate the push.
	Credentials Credentials
	// MaxFileSize bounds each file read; default DefaultMaxFileSize.
	MaxFileSize int64
}

// MessageData is what a commit message template sees.
type MessageData struct {
	// Container is the container whose rollout changed the files.
	Container string
	// From and To are the image references (or tags) before and after.
	From, To string
	// Kind is the update's kind: major, minor, patch, prerelease, digest.
	Kind string
	// Outcome is the rollout's outcome, "applied" for a healthy one.
	Outcome string
	// Files are the committed files, relative to the work tree.
	Files []string
}

// Change is what a rollout changed: its files and what to say about it.
type Change struct {
	// Container, From, To, Kind and Outcome go into the message.
	Container, From, To, Kind, Outcome string
	// Files are the files the rollout rewrote.
	Files []FileChange
}

// FileChange is one file a rollout rewrote.
type FileChange struct {
	// Path is the file's absolute path.
	Path string
	// Before is the file's content before the rollout (its backup);
	// required, since it tells the rollout's edit from the user's own
	// uncommitted edits of the same file.
	Before []byte
	// After is the content the rollout wrote; nil reads the file.
	After []byte
}

// Result is what Commit did in one work tree.
type Result struct {
	// WorkTree is the work tree's root folder; Branch its branch.
	WorkTree, Branch string
	// Commit is the id of the commit made (after a rebase, the rebased
	// one); empty when nothing needed committing.
	Commit string
	// Files are the committed files, relative to WorkTree, with slashes.
	Files []string
	// Skipped are the files left out, with why.
	Skipped []Skip
	// Pushed reports a push; Rebased that the commit was replayed on a
	// remote head that had moved.
	Pushed, Rebased bool
	// Remote is the URL pushed to, without credentials.
	Remote string
}

// Skip is a file a commit left out.
type Skip struct {
	// Path is the file's path; Reason why it was left out.
	Path, Reason string
}

// Committer commits the files rollouts rewrote, in the git work trees that
// hold them, and pushes the commits when configured. It commits exactly the
// rollout's edit: nothing else staged or modified in the work tree goes in,
// and a user's own uncommitted edits of the same file stay uncommitted. Only
// files git tracks are committed (an untracked or ignored .env, which may
// hold secrets, is skipped). Hooks are not run. Safe for concurrent use.
type Committer struct {
	author    string
	email     string
	message   *template.Template
	push      bool
	creds     Credentials
	maxFile   int64
	log       *slog.Logger
	mu        sync.Mutex
	workTrees map[string]*sync.Mutex
}

// NewCommitter returns a Committer; it fails on a message template that
// does not parse.
func NewCommitter(cfg CommitConfig, log *slog.Logger) (*Committer, error) {
	c := &Committer{
		author: cmpOr(cfg.AuthorName, DefaultAuthorName), email: cmpOr(cfg.AuthorEmail, DefaultAuthorEmail),
		push: cfg.Push, creds: cfg.Credentials, maxFile: cfg.MaxFileSize, log: log,
		workTrees: map[string]*sync.Mutex{},
	}
	if c.maxFile <= 0 {
		c.maxFile = DefaultMaxFileSize
	}
	t, err := ParseMessage(cmpOr(cfg.Message, DefaultMessage))
	if err != nil {
		return nil, err
	}
	c.message = t
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// ParseMessage parses a commit message template (no functions; a missing
// field is an error) and proves it against sample data.
func ParseMessage(text string) (*template.Template, error) {
	t, err := template.New("message").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parsing the commit message template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, MessageData{Container: "app", From: "1.0", To: "1.1", Kind: "minor", Outcome: "applied", Files: []string{"compose.yaml"}}); err != nil {
		return nil, fmt.Errorf("trying the commit message template: %w", err)
	}
	if strings.TrimSpace(b.String()) == "" {
		return nil, errors.New("the commit message template gives an empty message")
	}
	return t, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Commit commits the change in the work tree(s) holding its files and, when
// configured, pushes. It returns ErrNotWorkTree (cheaply) when no file lies
// in a work tree, a *ConflictError when the edit cannot be applied or the
// remote moved in a way it cannot be replayed on, and ErrBusy while another
// git process holds the repository. A push that fails after a commit
// returns the Result (with the commit) and the error.
func (c *Committer) Commit(ctx context.Context, ch Change) ([]Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("committing the rollout of %s: %w", ch.Container, err)
	}
	groups := map[string][]FileChange{}
	var order []string
	var outside []Skip
	for _, f := range ch.Files {
		if f.Before == nil {
			return nil, fmt.Errorf("committing %s: the content before the rollout is needed", f.Path)
		}
		root, err := FindWorkTree(f.Path)
		if errors.Is(err, ErrNotWorkTree) {
			outside = append(outside, Skip{Path: f.Path, Reason: "not in a git work tree"})
			continue
		}
		if err != nil {
			return nil, err
		}
		if _, ok := groups[root]; !ok {
			order = append(order, root)
		}
		groups[root] = append(groups[root], f)
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("committing the rollout of %s: %w", ch.Container, ErrNotWorkTree)
	}
	var results []Result
	for i, root := range order {
		res, err := c.commitIn(ctx, root, groups[root], ch)
		if i == 0 {
			res.Skipped = append(res.Skipped, outside...)
		}
		results = append(results, res)
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// lockWorkTree serializes this process's commits to one work tree.
func (c *Committer) lockWorkTree(root string) func() {
	c.mu.Lock()
	m := c.workTrees[root]
	if m == nil {
		m = &sync.Mutex{}
		c.workTrees[root] = m
	}
	c.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// commitIn commits files in the work tree at root, then pushes.
func (c *Committer) commitIn(ctx context.Context, root string, files []FileChange, ch Change) (Result, error) {
	defer c.lockWorkTree(root)()
	res := Result{WorkTree: root}
	dir, err := gitDir(root)
	if err != nil {
		return res, err
	}
	repo, err := git.PlainOpenWithOptions(root, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		return res, fmt.Errorf("opening the git work tree %s: %w", root, err)
	}
	head, err := repo.Reference(plumbing.HEAD, false)
	if err != nil {
		return res, fmt.Errorf("reading HEAD of %s: %w", root, err)
	}
	if head.Type() != plumbing.SymbolicReference || !head.Target().IsBranch() {
		return res, fmt.Errorf("committing in %s: %w", root, ErrDetached)
	}
	branch := head.Target()
	res.Branch = branch.Short()
	lock, err := lockIndex(dir)
	if err != nil {
		return res, err
	}
	defer lock.release()

	tip, err := repo.Reference(branch, true)
	if err != nil {
		return res, fmt.Errorf("reading branch %s of %s (does it have a commit?): %w", res.Branch, root, err)
	}
	parent, err := repo.CommitObject(tip.Hash())
	if err != nil {
		return res, fmt.Errorf("reading commit %s: %w", tip.Hash(), err)
	}
	tree, err := parent.Tree()
	if err != nil {
		return res, fmt.Errorf("reading the tree of %s: %w", tip.Hash(), err)
	}

	type staged struct {
		rel      string
		old, new plumbing.Hash
		content  []byte
	}
	var changes []staged
	for _, f := range files {
		rel, err := relPath(root, f.Path)
		if err != nil {
			res.Skipped = append(res.Skipped, Skip{Path: f.Path, Reason: err.Error()})
			continue
		}
		entry, err := tree.FindEntry(rel)
		if err != nil || (entry.Mode != filemode.Regular && entry.Mode != filemode.Executable) {
			res.Skipped = append(res.Skipped, Skip{Path: rel, Reason: "not a file tracked by git"})
			continue
		}
		after := f.After
		if after == nil {
			if after, err = readBounded(f.Path, c.maxFile); err != nil {
				return res, fmt.Errorf("reading %s: %w", f.Path, err)
			}
		}
		committed, err := blobContent(repo.Storer, entry.Hash, c.maxFile)
		if err != nil {
			return res, fmt.Errorf("reading %s at %s: %w", rel, res.Branch, err)
		}
		content, ok := replay(f.Before, after, committed)
		if !ok {
			return res, &ConflictError{WorkTree: root, Branch: res.Branch, Local: tip.Hash().String(), Paths: []string{rel},
				Reason: "the file has uncommitted changes in the lines the rollout changed"}
		}
		if bytes.Equal(content, committed) {
			res.Skipped = append(res.Skipped, Skip{Path: rel, Reason: "already committed"})
			continue
		}
		h, err := writeBlob(repo.Storer, content)
		if err != nil {
			return res, err
		}
		changes = append(changes, staged{rel: rel, old: entry.Hash, new: h, content: content})
	}
	if len(changes) == 0 {
		return res, nil
	}

	blobs := map[string]plumbing.Hash{}
	for _, s := range changes {
		blobs[s.rel] = s.new
		res.Files = append(res.Files, s.rel)
	}
	slices.Sort(res.Files)
	newTree, err := replaceBlobs(repo.Storer, tree.Hash, blobs)
	if err != nil {
		return res, err
	}
	msg, err := c.render(ch, res.Files)
	if err != nil {
		return res, err
	}
	commit, err := c.writeCommit(repo.Storer, newTree, tip.Hash(), msg, time.Now())
	if err != nil {
		return res, err
	}

	// The index follows the commit for the committed files, unless the
	// user had staged something else there: that stays staged.
	idx, err := lock.read()
	if err != nil {
		return res, err
	}
	for _, s := range changes {
		e, err := idx.Entry(s.rel)
		if err != nil || e.Hash != s.old {
			continue
		}
		e.Hash = s.new
		e.Size, e.ModifiedAt = 0, time.Time{} // unknown: git re-reads the file
		if fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(s.rel))); err == nil {
			if disk, err := readBounded(filepath.Join(root, filepath.FromSlash(s.rel)), c.maxFile); err == nil && bytes.Equal(disk, s.content) {
				e.Size, e.ModifiedAt = uint32(fi.Size()), fi.ModTime()
			}
		}
	}
	if err := repo.Storer.CheckAndSetReference(plumbing.NewHashReference(branch, commit), tip); err != nil {
		return res, fmt.Errorf("moving %s to the new commit (did it move meanwhile?): %w", res.Branch, err)
	}
	if err := lock.commit(idx); err != nil {
		return res, err
	}
	res.Commit = commit.String()
	c.log.Info("committed rollout", "work_tree", root, "branch", res.Branch, "commit", res.Commit, "container", ch.Container, "files", res.Files)
	if !c.push {
		return res, nil
	}
	return res, c.pushCommit(ctx, repo, dir, &res, tip.Hash(), commit)
}

// render executes the message template.
func (c *Committer) render(ch Change, files []string) (string, error) {
	var b bytes.Buffer
	err := c.message.Execute(&b, MessageData{Container: ch.Container, From: ch.From, To: ch.To, Kind: ch.Kind, Outcome: ch.Outcome, Files: files})
	if err != nil {
		return "", fmt.Errorf("writing the commit message: %w", err)
	}
	msg := b.String()
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	return msg, nil
}

// writeCommit stores a commit of tree on parent, signed by the configured
// author, and returns its id.
func (c *Committer) writeCommit(s storer.EncodedObjectStorer, tree, parent plumbing.Hash, msg string, when time.Time) (plumbing.Hash, error) {
	sig := object.Signature{Name: c.author, Email: c.email, When: when}
	return storeCommit(s, &object.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: tree, ParentHashes: []plumbing.Hash{parent}})
}

func storeCommit(s storer.EncodedObjectStorer, commit *object.Commit) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encoding the commit: %w", err)
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing the commit: %w", err)
	}
	return h, nil
}

// relPath returns path relative to root with slashes, refusing a path
// outside root or inside .git.
func relPath(root, p string) (string, error) {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == "." || !filepath.IsLocal(rel) {
		return "", errors.New("not inside the work tree")
	}
	rel = filepath.ToSlash(rel)
	for _, part := range strings.Split(rel, "/") {
		if strings.EqualFold(part, ".git") {
			return "", errors.New("inside the .git folder")
		}
	}
	return rel, nil
}

// blobContent reads a blob of at most max bytes.
func blobContent(s storer.EncodedObjectStorer, h plumbing.Hash, max int64) ([]byte, error) {
	obj, err := s.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, err
	}
	if obj.Size() > max {
		return nil, fmt.Errorf("blob %s is %d bytes, more than %d: %w", h, obj.Size(), max, ErrTooLarge)
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readAllBounded(r, max, "blob "+h.String())
}

// writeBlob stores content as a blob and returns its id.
func writeBlob(s storer.EncodedObjectStorer, content []byte) (plumbing.Hash, error) {
	obj := s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(content)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(content); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing a blob: %w", err)
	}
	return h, nil
}

// replaceBlobs stores a copy of the tree treeHash in which the files named
// by blobs (path → blob id; each must exist in the tree) point to new blobs,
// and returns its id. Only the trees on those paths are rewritten.
func replaceBlobs(s storer.EncodedObjectStorer, treeHash plumbing.Hash, blobs map[string]plumbing.Hash) (plumbing.Hash, error) {
	t, err := object.GetTree(s, treeHash)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("reading tree %s: %w", treeHash, err)
	}
	direct := map[string]plumbing.Hash{}
	sub := map[string]map[string]plumbing.Hash{}
	for p, h := range blobs {
		first, rest, nested := strings.Cut(p, "/")
		if !nested {
			direct[first] = h
			continue
		}
		if sub[first] == nil {
			sub[first] = map[string]plumbing.Hash{}
		}
		sub[first][rest] = h
	}
	entries := slices.Clone(t.Entries)
	found := 0
	for i, e := range entries {
		if h, ok := direct[e.Name]; ok && e.Mode.IsFile() {
			entries[i].Hash = h
			found++
		}
		if m, ok := sub[e.Name]; ok && e.Mode == filemode.Dir {
			h, err := replaceBlobs(s, e.Hash, m)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			entries[i].Hash = h
			found++
		}
	}
	if found != len(direct)+len(sub) {
		return plumbing.ZeroHash, fmt.Errorf("replacing files in tree %s: a path is missing", treeHash)
	}
	obj := s.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encoding a tree: %w", err)
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("writing a tree: %w", err)
	}
	return h, nil
}
