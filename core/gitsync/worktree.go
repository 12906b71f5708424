package gitsync

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/index"
)

// FindWorkTree returns the root of the git work tree that holds path (a
// file or folder), looking for a ".git" folder or file in path's folder and
// each parent. It only stats, so it is cheap; it returns ErrNotWorkTree when
// no parent holds one.
func FindWorkTree(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("finding the work tree of %s: %w", path, err)
	}
	dir := abs
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		dir = filepath.Dir(abs)
	}
	for {
		if fi, err := os.Lstat(filepath.Join(dir, ".git")); err == nil && (fi.IsDir() || fi.Mode().IsRegular()) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s: %w", path, ErrNotWorkTree)
		}
		dir = parent
	}
}

// gitDir returns the git folder of the work tree root: root/.git, or the
// folder a ".git" file points to ("gitdir: ..."), as linked work trees and
// submodules have.
func gitDir(root string) (string, error) {
	p := filepath.Join(root, ".git")
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", p, err)
	}
	if fi.IsDir() {
		return p, nil
	}
	b, err := readBounded(p, 4<<10)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	dir, ok := strings.CutPrefix(strings.TrimSpace(line), "gitdir:")
	if !ok {
		return "", fmt.Errorf("%s is not a gitdir file", p)
	}
	dir = strings.TrimSpace(dir)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	return dir, nil
}

// readBounded reads a file of at most max bytes, or fails with ErrTooLarge.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllBounded(f, max, path)
}

func readAllBounded(r io.Reader, max int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("reading %s: larger than %d bytes: %w", what, max, ErrTooLarge)
	}
	return b, nil
}

// indexLock is git's own lock on a repository: the file index.lock in its
// git folder, created exclusively. Holding it keeps git commands that write
// the index away, and git holding it keeps us away (ErrBusy). Commit writes
// the new index into it and renames it over index, as git does.
type indexLock struct {
	dir  string
	f    *os.File
	done bool
}

func lockIndex(gitDir string) (*indexLock, error) {
	f, err := os.OpenFile(filepath.Join(gitDir, "index.lock"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("locking %s: %w", gitDir, ErrBusy)
	}
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", gitDir, err)
	}
	return &indexLock{dir: gitDir, f: f}, nil
}

// read returns the index as it is.
func (l *indexLock) read() (*index.Index, error) {
	idx := &index.Index{Version: 2}
	f, err := os.Open(filepath.Join(l.dir, "index"))
	if errors.Is(err, fs.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	defer f.Close()
	if err := index.NewDecoder(bufio.NewReader(f)).Decode(idx); err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	return idx, nil
}

// commit writes idx and puts it in place of the index; the lock is released.
// The cache-tree extension is dropped (git rebuilds it), since entries
// changed under it.
func (l *indexLock) commit(idx *index.Index) error {
	idx.Cache = nil
	var buf bytes.Buffer
	if err := index.NewEncoder(&buf).Encode(idx); err != nil {
		l.release()
		return fmt.Errorf("encoding the index: %w", err)
	}
	if _, err := l.f.Write(buf.Bytes()); err != nil {
		l.release()
		return fmt.Errorf("writing the index: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		l.release()
		return fmt.Errorf("writing the index: %w", err)
	}
	l.f.Close()
	if err := os.Rename(filepath.Join(l.dir, "index.lock"), filepath.Join(l.dir, "index")); err != nil {
		l.release()
		return fmt.Errorf("writing the index: %w", err)
	}
	l.done = true
	return nil
}

// release drops the lock without changing the index; it is safe to call
// after commit.
func (l *indexLock) release() {
	if l.done {
		return
	}
	l.done = true
	l.f.Close()
	os.Remove(filepath.Join(l.dir, "index.lock"))
}
