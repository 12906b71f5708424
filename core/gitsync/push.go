package gitsync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
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
	// maxOwnCommits bounds tidewatch's own unpushed commits pushed at once.
	maxOwnCommits = 100
)

// pushCommit pushes the branch, whose tip is commit on base, to its
// upstream, with tidewatch's own earlier commits that were not pushed. When
// the upstream moved, it replays them on the upstream's head first, and
// updates the work tree (only files the user has not modified; otherwise it
// is a conflict and nothing changes). Commits of anyone else that are not
// pushed make it a conflict.
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
		if upstream.IsZero() {
			return fmt.Errorf("pushing %s: %s has no branch %s: %w", res.Branch, res.Remote, bc.Merge.Short(), ErrNoUpstream)
		}
		fork, own, ok := c.forkPoint(repo.Storer, local, upstream)
		switch {
		case ok && len(own) == 0:
			res.Pushed = true // the remote already holds the local tip
			return nil
		case !ok:
			return &ConflictError{WorkTree: res.WorkTree, Branch: res.Branch, Local: local.String(), Remote: upstream.String(), Paths: res.Files,
				Reason: "the local branch has commits that are not pushed and are not tidewatch's, or has diverged: tidewatch pushes only its own"}
		case fork == upstream:
			// A fast-forward (of tidewatch's earlier, unpushed commits too).
		default:
			rebased, err := c.replayOnto(repo, gitDir, res, own, upstream)
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
		}
		err = remote.PushContext(ctx, pushOpts(upstream))
		if err == nil || errors.Is(err, git.NoErrAlreadyUpToDate) {
			return pushed()
		}
		if attempt < pushAttempts && remoteMoved(err) {
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

// replayOnto replays chain (tidewatch's own commits, oldest first, the
// last one the branch's tip local) on upstream, moves the branch there and
// brings the work tree along, and returns the new tip. A commit whose change
// the remote already holds is dropped; when all are, it returns upstream.
func (c *Committer) replayOnto(repo *git.Repository, gitDir string, res *Result, chain []plumbing.Hash, upstream plumbing.Hash) (plumbing.Hash, error) {
	s := repo.Storer
	local := chain[len(chain)-1]
	conflict := func(reason string, paths []string) error {
		return &ConflictError{WorkTree: res.WorkTree, Branch: res.Branch, Local: local.String(), Remote: upstream.String(), Paths: paths, Reason: reason}
	}
	ourTree, err := commitTree(s, local)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	target := upstream
	newTree, err := commitTree(s, upstream)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	for _, h := range chain {
		next, tree, err := c.replayCommit(s, h, target, newTree, conflict)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		target, newTree = next, tree
	}
	if err := c.moveWorkTree(repo, gitDir, res, ourTree, newTree, local, target, conflict); err != nil {
		return plumbing.ZeroHash, err
	}
	return target, nil
}

// replayCommit replays the file edits of commit h on onto (whose tree is
// ontoTree) and returns the new commit and its tree; onto itself when the
// edits are all there already.
func (c *Committer) replayCommit(s storer.EncodedObjectStorer, h, onto plumbing.Hash, ontoTree *object.Tree, conflict func(string, []string) error) (plumbing.Hash, *object.Tree, error) {
	ours, err := object.GetCommit(s, h)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	if len(ours.ParentHashes) != 1 {
		return plumbing.ZeroHash, nil, fmt.Errorf("replaying %s: not a commit with one parent", h)
	}
	baseTree, err := commitTree(s, ours.ParentHashes[0])
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	ourTree, err := ours.Tree()
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	changes, err := object.DiffTree(baseTree, ourTree)
	if err != nil {
		return plumbing.ZeroHash, nil, fmt.Errorf("replaying %s: %w", h, err)
	}
	blobs := map[string]plumbing.Hash{}
	for _, ch := range changes {
		rel := ch.To.Name
		if ch.From.Name == "" || rel == "" || ch.From.Name != rel {
			return plumbing.ZeroHash, nil, fmt.Errorf("replaying %s: %s was added, removed or renamed, which tidewatch's commits never do", h, ch.From.Name+ch.To.Name)
		}
		b, o := ch.From.TreeEntry, ch.To.TreeEntry
		t, errT := ontoTree.FindEntry(rel)
		if errT != nil || !t.Mode.IsFile() {
			return plumbing.ZeroHash, nil, conflict("the remote removed or replaced a file the rollout changed", []string{rel})
		}
		switch t.Hash {
		case b.Hash:
			blobs[rel] = o.Hash
		case o.Hash:
		default:
			bc, err := blobContent(s, b.Hash, c.maxFile)
			if err != nil {
				return plumbing.ZeroHash, nil, err
			}
			oc, err := blobContent(s, o.Hash, c.maxFile)
			if err != nil {
				return plumbing.ZeroHash, nil, err
			}
			tc, err := blobContent(s, t.Hash, c.maxFile)
			if err != nil {
				return plumbing.ZeroHash, nil, err
			}
			merged, ok := replay(bc, oc, tc)
			if !ok {
				return plumbing.ZeroHash, nil, conflict("the remote changed the lines the rollout changed", []string{rel})
			}
			mh, err := writeBlob(s, merged)
			if err != nil {
				return plumbing.ZeroHash, nil, err
			}
			if mh != t.Hash {
				blobs[rel] = mh
			}
		}
	}
	if len(blobs) == 0 {
		return onto, ontoTree, nil
	}
	th, err := replaceBlobs(s, ontoTree.Hash, blobs)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	tree, err := object.GetTree(s, th)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	committer := ours.Committer
	committer.When = time.Now()
	next, err := storeCommit(s, &object.Commit{Author: ours.Author, Committer: committer, Message: ours.Message, TreeHash: th, ParentHashes: []plumbing.Hash{onto}})
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	return next, tree, nil
}

// forkPoint walks back from the branch tip local, over tidewatch's own
// commits (one parent, committed by this Committer's identity), to the
// first commit the upstream holds. It returns that commit and the own
// commits after it, oldest first; ok is false when a commit that is not
// tidewatch's stands in the way (the user's own unpushed work), or when the
// upstream is not found within maxWalk commits.
func (c *Committer) forkPoint(s storer.EncodedObjectStorer, local, upstream plumbing.Hash) (fork plumbing.Hash, own []plumbing.Hash, ok bool) {
	inUpstream := ancestors(s, upstream)
	for x, n := local, 0; n < maxOwnCommits; n++ {
		if inUpstream[x] {
			slices.Reverse(own)
			return x, own, true
		}
		cm, err := object.GetCommit(s, x)
		if err != nil || len(cm.ParentHashes) != 1 || cm.Committer.Name != c.author || cm.Committer.Email != c.email {
			return plumbing.ZeroHash, nil, false
		}
		own = append(own, x)
		x = cm.ParentHashes[0]
	}
	return plumbing.ZeroHash, nil, false
}

// ancestors returns h and its ancestors, at most maxWalk of them.
func ancestors(s storer.EncodedObjectStorer, h plumbing.Hash) map[plumbing.Hash]bool {
	seen := map[plumbing.Hash]bool{h: true}
	queue := []plumbing.Hash{h}
	for n := 0; len(queue) > 0 && n < maxWalk; n++ {
		cm, err := object.GetCommit(s, queue[0])
		queue = queue[1:]
		if err != nil {
			continue // a shallow boundary
		}
		for _, p := range cm.ParentHashes {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return seen
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
