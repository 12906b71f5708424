package gitsync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Bounds of a push.
const (
	// pushAttempts is how often a push is tried when the remote moves
	// between our fetch and our push.
	pushAttempts = 3
	// maxWalk bounds the commits walked to relate the local and remote heads.
	maxWalk = 1000
	// maxRebasePaths bounds the files a rebase may update in the work tree.
	maxRebasePaths = 10000
)

// pushCommit pushes the branch, whose tip is commit on base, to its
// upstream. When the upstream moved past base, it replays the commit on the
// upstream's head first, and updates the work tree (only files the user has
// not modified; otherwise it is a conflict and nothing changes).
func (c *Committer) pushCommit(ctx context.Context, repo *git.Repository, gitDir string, res *Result, base, commit plumbing.Hash) error {
	cfg, err := repo.Config()
	if err != nil {
		return fmt.Errorf("reading the git config of %s: %w", res.WorkTree, err)
	}
	bc := cfg.Branches[res.Branch]
	if bc == nil || bc.Remote == "" || bc.Merge == "" || bc.Remote == "." {
		return fmt.Errorf("pushing %s from %s: %w", res.Branch, res.WorkTree, ErrNoUpstream)
	}
	rc := cfg.Remotes[bc.Remote]
	if rc == nil || len(rc.URLs) == 0 {
		return fmt.Errorf("pushing %s from %s: remote %q is not configured: %w", res.Branch, res.WorkTree, bc.Remote, ErrNoUpstream)
	}
	url := rc.URLs[0]
	res.Remote = RedactURL(url)
	secrets := append(c.creds.secrets(), urlSecrets(url)...)
	auth, err := c.creds.authFor(url)
	if err != nil {
		return scrub(fmt.Errorf("pushing %s: %w", res.Branch, err), secrets...)
	}
	remote, err := repo.Remote(bc.Remote)
	if err != nil {
		return fmt.Errorf("pushing %s: %w", res.Branch, err)
	}
	branch := plumbing.NewBranchReferenceName(res.Branch)
	tracking := plumbing.NewRemoteReferenceName(bc.Remote, bc.Merge.Short())
	local := commit
	pushOpts := func(upstream plumbing.Hash) *git.PushOptions {
		opts := &git.PushOptions{
			RemoteName: bc.Remote,
			RefSpecs:   []config.RefSpec{config.RefSpec(branch.String() + ":" + bc.Merge.String())},
			Auth:       auth,
		}
		if !upstream.IsZero() {
			opts.RequireRemoteRefs = []config.RefSpec{config.RefSpec(upstream.String() + ":" + bc.Merge.String())}
		}
		return opts
	}
	pushed := func() error {
		res.Pushed = true
		c.log.Info("pushed rollout commit", "work_tree", res.WorkTree, "branch", res.Branch, "commit", local.String(), "remote", res.Remote, "rebased", res.Rebased)
		return nil
	}
	// The common case in one round trip: the upstream was at our base when
	// last fetched, so the commit is pushed at once. Should the remote have
	// moved since, the push is refused (the server checks the old value)
	// and the fetch below sorts it out.
	if ref, err := repo.Reference(tracking, true); err == nil && ref.Hash() == base {
		err := remote.PushContext(ctx, pushOpts(base))
		if err == nil || errors.Is(err, git.NoErrAlreadyUpToDate) {
			return pushed()
		}
		if !remoteMoved(err) {
			return scrub(fmt.Errorf("pushing %s to %s: %w", res.Branch, res.Remote, err), secrets...)
		}
	}
	for attempt := 1; ; attempt++ {
		err := remote.FetchContext(ctx, &git.FetchOptions{
			RefSpecs: []config.RefSpec{config.RefSpec("+" + bc.Merge.String() + ":" + tracking.String())},
			Auth:     auth, Tags: git.NoTags,
		})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return scrub(fmt.Errorf("fetching %s from %s: %w", bc.Merge.Short(), res.Remote, err), secrets...)
		}
		upstream := plumbing.ZeroHash
		if ref, err := repo.Reference(tracking, true); err == nil {
			upstream = ref.Hash()
		}
		if upstream == local {
			res.Pushed = true
			return nil
		}
		conflict := func(reason string) error {
			return &ConflictError{WorkTree: res.WorkTree, Branch: res.Branch, Local: local.String(), Remote: upstream.String(), Paths: res.Files, Reason: reason}
		}
		switch {
		case upstream.IsZero() || upstream == base:
			// A fast-forward.
		case reaches(repo.Storer, base, upstream):
			return conflict("the local branch has commits that are not pushed; tidewatch pushes only its own")
		case reaches(repo.Storer, upstream, base):
			rebased, err := c.replayOnto(repo, gitDir, res, base, local, upstream)
			if err != nil {
				return err
			}
			local = rebased
			res.Rebased = true
			res.Commit = local.String()
			if local == upstream {
				res.Pushed = true // the remote already held the change
				return nil
			}
		default:
			return conflict("the local and remote branches have diverged")
		}
		err = remote.PushContext(ctx, pushOpts(upstream))
		if err == nil || errors.Is(err, git.NoErrAlreadyUpToDate) {
			return pushed()
		}
		if attempt < pushAttempts && remoteMoved(err) {
			base = upstream
			continue
		}
		return scrub(fmt.Errorf("pushing %s to %s: %w", res.Branch, res.Remote, err), secrets...)
	}
}

// remoteMoved reports a push refused because the remote branch is not
// where our fetch saw it.
func remoteMoved(err error) bool {
	s := err.Error()
	return strings.Contains(s, "non-fast-forward") || strings.Contains(s, "required to be") || strings.Contains(s, "fetch first")
}

// reaches reports whether from has ancestor as an ancestor (or is it),
// walking at most maxWalk commits: beyond that, it answers no.
func reaches(s storer.EncodedObjectStorer, from, ancestor plumbing.Hash) bool {
	if from == ancestor {
		return true
	}
	seen := map[plumbing.Hash]bool{from: true}
	queue := []plumbing.Hash{from}
	for n := 0; len(queue) > 0 && n < maxWalk; n++ {
		c, err := object.GetCommit(s, queue[0])
		queue = queue[1:]
		if err != nil {
			continue // a shallow boundary
		}
		for _, p := range c.ParentHashes {
			if p == ancestor {
				return true
			}
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return false
}

// replayOnto replays the commit local (made on base) on upstream, moves the
// branch there and brings the work tree along, and returns the new commit.
// When the remote already holds the change it returns upstream itself.
func (c *Committer) replayOnto(repo *git.Repository, gitDir string, res *Result, base, local, upstream plumbing.Hash) (plumbing.Hash, error) {
	s := repo.Storer
	conflict := func(reason string, paths []string) error {
		return &ConflictError{WorkTree: res.WorkTree, Branch: res.Branch, Local: local.String(), Remote: upstream.String(), Paths: paths, Reason: reason}
	}
	ours, err := object.GetCommit(s, local)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	baseTree, err := commitTree(s, base)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	ourTree, err := ours.Tree()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	theirTree, err := commitTree(s, upstream)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	blobs := map[string]plumbing.Hash{}
	for _, rel := range res.Files {
		b, errB := baseTree.FindEntry(rel)
		o, errO := ourTree.FindEntry(rel)
		t, errT := theirTree.FindEntry(rel)
		if errB != nil || errO != nil {
			return plumbing.ZeroHash, fmt.Errorf("replaying %s: %s is not in the commit", res.Commit, rel)
		}
		if errT != nil || !t.Mode.IsFile() {
			return plumbing.ZeroHash, conflict("the remote removed or replaced a file the rollout changed", []string{rel})
		}
		switch t.Hash {
		case b.Hash:
			blobs[rel] = o.Hash
		case o.Hash:
		default:
			bc, err := blobContent(s, b.Hash, c.maxFile)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			oc, err := blobContent(s, o.Hash, c.maxFile)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			tc, err := blobContent(s, t.Hash, c.maxFile)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			merged, ok := replay(bc, oc, tc)
			if !ok {
				return plumbing.ZeroHash, conflict("the remote changed the lines the rollout changed", []string{rel})
			}
			h, err := writeBlob(s, merged)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if h != t.Hash {
				blobs[rel] = h
			}
		}
	}
	target := upstream
	newTree := theirTree
	if len(blobs) > 0 {
		th, err := replaceBlobs(s, theirTree.Hash, blobs)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if newTree, err = object.GetTree(s, th); err != nil {
			return plumbing.ZeroHash, err
		}
		committer := ours.Committer
		committer.When = time.Now()
		target, err = storeCommit(s, &object.Commit{Author: ours.Author, Committer: committer, Message: ours.Message, TreeHash: th, ParentHashes: []plumbing.Hash{upstream}})
		if err != nil {
			return plumbing.ZeroHash, err
		}
	}
	if err := c.moveWorkTree(repo, gitDir, res, ourTree, newTree, local, target, conflict); err != nil {
		return plumbing.ZeroHash, err
	}
	return target, nil
}

func commitTree(s storer.EncodedObjectStorer, h plumbing.Hash) (*object.Tree, error) {
	c, err := object.GetCommit(s, h)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", h, err)
	}
	return c.Tree()
}

// moveWorkTree moves the branch from local (tree from) to target (tree to)
// and updates the index and the work tree to match, for the files that
// differ. Every such file must be unmodified in the index and on disk;
// otherwise nothing changes and it is a conflict.
func (c *Committer) moveWorkTree(repo *git.Repository, gitDir string, res *Result, from, to *object.Tree, local, target plumbing.Hash, conflict func(string, []string) error) error {
	changes, err := object.DiffTree(from, to)
	if err != nil {
		return fmt.Errorf("comparing trees: %w", err)
	}
	if len(changes) > maxRebasePaths {
		return conflict(fmt.Sprintf("the remote changed more than %d files", maxRebasePaths), nil)
	}
	lock, err := lockIndex(gitDir)
	if err != nil {
		return err
	}
	defer lock.release()
	idx, err := lock.read()
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(res.WorkTree)
	if err != nil {
		return fmt.Errorf("opening %s: %w", res.WorkTree, err)
	}
	defer root.Close()

	var dirty []string
	for _, ch := range changes {
		name := ch.From.Name
		if name == "" {
			name = ch.To.Name
		}
		if (ch.From.Name != "" && !checkoutable(ch.From.TreeEntry.Mode)) || (ch.To.Name != "" && !checkoutable(ch.To.TreeEntry.Mode)) {
			dirty = append(dirty, name)
			continue
		}
		if !c.clean(repo.Storer, root, idx, name, ch.From) {
			dirty = append(dirty, name)
		}
	}
	if len(dirty) > 0 {
		return conflict("the remote changed files that are modified here, or that are not plain files", dirty)
	}
	for _, ch := range changes {
		if ch.To.Name == "" {
			if err := root.Remove(ch.From.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing %s: %w", ch.From.Name, err)
			}
			idx.Remove(ch.From.Name)
			continue
		}
		if err := c.checkout(repo.Storer, root, idx, ch.To); err != nil {
			return err
		}
	}
	if err := repo.Storer.CheckAndSetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(res.Branch), target), plumbing.NewHashReference(plumbing.NewBranchReferenceName(res.Branch), local)); err != nil {
		return fmt.Errorf("moving %s to the rebased commit: %w", res.Branch, err)
	}
	return lock.commit(idx)
}

// checkoutable reports whether a tree entry is a file we write: regular,
// executable or symlink (not a submodule).
func checkoutable(m filemode.FileMode) bool {
	return m == filemode.Regular || m == filemode.Executable || m == filemode.Symlink
}

// clean reports whether name is unmodified in the index and on disk with
// respect to the entry e (absent when e.Name is "").
func (c *Committer) clean(s storer.EncodedObjectStorer, root *os.Root, idx *index.Index, name string, e object.ChangeEntry) bool {
	ie, err := idx.Entry(name)
	if e.Name == "" {
		if err == nil {
			return false
		}
		_, err := root.Lstat(name)
		return errors.Is(err, fs.ErrNotExist)
	}
	if err != nil || ie.Hash != e.TreeEntry.Hash {
		return false
	}
	content, err := c.readWorkTree(root, name, e.TreeEntry.Mode)
	if err != nil {
		return false
	}
	return plumbing.ComputeHash(plumbing.BlobObject, content) == e.TreeEntry.Hash
}

// readWorkTree reads a work tree file (a symlink's target for a symlink).
func (c *Committer) readWorkTree(root *os.Root, name string, mode filemode.FileMode) ([]byte, error) {
	if mode == filemode.Symlink {
		t, err := root.Readlink(name)
		return []byte(t), err
	}
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllBounded(f, c.maxFile, name)
}

// checkout writes the entry e into the work tree (through a temporary file
// renamed into place) and records it in the index.
func (c *Committer) checkout(s storer.EncodedObjectStorer, root *os.Root, idx *index.Index, e object.ChangeEntry) error {
	name := e.Name
	content, err := blobContent(s, e.TreeEntry.Hash, c.maxFile)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	tmp := name + ".tidewatch-tmp"
	root.Remove(tmp)
	if e.TreeEntry.Mode == filemode.Symlink {
		if err := root.Symlink(string(content), tmp); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	} else {
		perm := os.FileMode(0o644)
		if e.TreeEntry.Mode == filemode.Executable {
			perm = 0o755
		}
		f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		_, werr := f.Write(content)
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			root.Remove(tmp)
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	if err := root.Rename(tmp, name); err != nil {
		root.Remove(tmp)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	ie, err := idx.Entry(name)
	if err != nil {
		ie = idx.Add(name)
	}
	ie.Hash, ie.Mode = e.TreeEntry.Hash, e.TreeEntry.Mode
	ie.Size, ie.ModifiedAt = 0, time.Time{}
	if fi, err := root.Lstat(name); err == nil {
		ie.Size, ie.ModifiedAt = uint32(fi.Size()), fi.ModTime()
	}
	return nil
}
