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
)

// WorkTree is a configured git work tree whose rewritten files are committed
// (TIDEWATCH_GIT_<name>_WORKTREE), with how its commits are made.
type WorkTree struct {
	// Name is the configuration's <name>; Root the work tree's absolute path.
	Name, Root string
	// Config says how commits are made and pushed there.
	Config CommitConfig
}

// Keeper commits the files rollouts rewrote that lie in one of the
// configured work trees, and only those: committing is opt-in, per work
// tree. Safe for concurrent use.
type Keeper struct {
	trees []keptTree
}

type keptTree struct {
	name, root string
	c          *Committer
}

// NewKeeper returns a Keeper over trees; it fails on a commit message
// template that does not parse (naming the work tree).
func NewKeeper(trees []WorkTree, log *slog.Logger) (*Keeper, error) {
	k := &Keeper{}
	for _, t := range trees {
		c, err := NewCommitter(t.Config, log)
		if err != nil {
			return nil, fmt.Errorf("work tree %s: %w", t.Name, err)
		}
		root := filepath.Clean(t.Root)
		if r, err := filepath.EvalSymlinks(root); err == nil {
			root = r
		}
		if err := ExcludeBackups(root); err != nil {
			return nil, fmt.Errorf("work tree %s: %w", t.Name, err)
		}
		k.trees = append(k.trees, keptTree{name: t.Name, root: root, c: c})
	}
	return k, nil
}

// Empty reports whether no work tree is configured.
func (k *Keeper) Empty() bool { return k == nil || len(k.trees) == 0 }

// Commit commits ch's files that lie in a configured work tree, each with
// the content before the rollout read from its backup (Backup paths), and
// returns what each work tree's commit did. Files outside every configured
// work tree are left alone; ErrNotWorkTree when none is inside one.
func (k *Keeper) Commit(ctx context.Context, ch Change) ([]Result, error) {
	groups := map[int][]FileChange{}
	for _, f := range ch.Files {
		if i := k.treeOf(f.Path); i >= 0 {
			groups[i] = append(groups[i], f)
		}
	}
	if len(groups) == 0 {
		return nil, fmt.Errorf("committing the rollout of %s: no file in a configured work tree: %w", ch.Container, ErrNotWorkTree)
	}
	var out []Result
	for i, t := range k.trees {
		files := groups[i]
		if len(files) == 0 {
			continue
		}
		c := ch
		c.Files = files
		res, err := t.c.Commit(ctx, c)
		out = append(out, res...)
		if err != nil {
			return out, fmt.Errorf("work tree %s: %w", t.name, err)
		}
	}
	return out, nil
}

// treeOf returns the index of the configured work tree that holds path, -1 for none.
func (k *Keeper) treeOf(path string) int {
	p := filepath.Clean(path)
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	for i, t := range k.trees {
		if p == t.root || strings.HasPrefix(p, t.root+string(filepath.Separator)) {
			return i
		}
	}
	return -1
}

// BackupPattern matches the backups a compose rollout keeps beside each
// file it rewrites (<file>.tidewatch-<UTC timestamp>.bak).
const BackupPattern = "*.tidewatch-*.bak"

// RolloutPattern matches the rollout record and lock a compose rollout
// keeps in the project's folder (.tidewatch-rollout-<project>-<hash>.json
// and .lock).
const RolloutPattern = ".tidewatch-rollout-*"

// excludePatterns are what ExcludeBackups adds, in order.
var excludePatterns = []string{BackupPattern, RolloutPattern}

// excludeComment marks the lines ExcludeBackups adds.
const excludeComment = "# tidewatch: the backups, records and locks its rollouts keep beside the files they rewrite"

// ExcludeBackups adds BackupPattern and RolloutPattern to the work tree's
// own exclude file (info/exclude in its git folder, shared by linked work
// trees), each once, so that the backups, records and locks rollouts keep
// never show in git status nor get added by the user's `git add -A`. The
// repository's .gitignore is not touched.
func ExcludeBackups(root string) error {
	dir, err := gitDir(root)
	if err != nil {
		return fmt.Errorf("excluding rollout backups from %s: %w", root, err)
	}
	if b, err := readBounded(filepath.Join(dir, "commondir"), 4<<10); err == nil {
		common := strings.TrimSpace(string(b))
		if !filepath.IsAbs(common) {
			common = filepath.Join(dir, common)
		}
		dir = common
	}
	path := filepath.Join(dir, "info", "exclude")
	old, err := readBounded(path, 1<<20)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("excluding rollout backups from %s: %w", root, err)
	}
	missing := slices.Clone(excludePatterns)
	for _, line := range strings.Split(string(old), "\n") {
		missing = slices.DeleteFunc(missing, func(p string) bool { return strings.TrimSpace(line) == p })
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("excluding rollout backups from %s: %w", root, err)
	}
	add := excludeComment + "\n" + strings.Join(missing, "\n") + "\n"
	if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		add = "\n" + add
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("excluding rollout backups from %s: %w", root, err)
	}
	if _, err := f.WriteString(add); err != nil {
		f.Close()
		return fmt.Errorf("excluding rollout backups from %s: %w", root, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("excluding rollout backups from %s: %w", root, err)
	}
	return nil
}

// ReadBackup returns the bytes of a rollout's backup of a file: the file's
// content before the rollout, bounded by DefaultMaxFileSize.
func ReadBackup(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading the backup %s: %w", path, err)
	}
	if fi.Size() > DefaultMaxFileSize {
		return nil, fmt.Errorf("reading the backup %s: %w", path, ErrTooLarge)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the backup %s: %w", path, err)
	}
	return b, nil
}
