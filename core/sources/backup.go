package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/tidewatch/tidewatch/core/gitsync"
)

// backup copies, from the clone checked out at deployed, the compose and
// .env files of the folders of files into a folder beside the clone named
// after the commit deployed now (fetched), at the same relative paths, and
// returns it with its cleanup. The folder is made whole under a temporary
// name and renamed into place; one left by a deploy of the same commit cut
// short (tidewatch stopped) is taken as it is, without touching the clone:
// the deliveries of that deploy, resumed meanwhile, name its files. At the
// first deploy (deployed "") the folder stays empty: nothing existed before.
// When the clone no longer holds deployed (it was made anew), what was
// deployed is unknown: "" is returned, and a rollback leaves the files.
func (r *Runner) backup(ctx context.Context, s *source, deployed, fetched string, files []gitsync.FileDiff) (string, func(), error) {
	name := s.cfg.Source.Name
	parent := filepath.Dir(s.m.Dir())
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", nil, fmt.Errorf("source %s: %w", name, err)
	}
	final := filepath.Join(parent, "."+name+".backup-"+short(fetched))
	cleanup := func() { os.RemoveAll(final) }
	if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
		return final, cleanup, nil
	}
	dir, err := os.MkdirTemp(parent, "."+name+".backup-tmp-")
	if err != nil {
		return "", nil, fmt.Errorf("source %s: making the backup folder: %w", name, err)
	}
	drop := func() { os.RemoveAll(dir) }
	if deployed != "" {
		src, err := s.m.Checkout(ctx, deployed)
		if err != nil {
			r.log.Warn("the clone does not hold the commit deployed: a rollback cannot restore its files", "source", name, "commit", deployed, "error", err)
			drop()
			return "", func() {}, nil
		}
		if err := copyFolders(src, dir, files); err != nil {
			drop()
			return "", nil, fmt.Errorf("source %s: %w", name, err)
		}
	}
	if err := os.Rename(dir, final); err != nil {
		drop()
		return "", nil, fmt.Errorf("source %s: keeping the backup folder: %w", name, err)
	}
	return final, cleanup, nil
}

// pruneBackups removes the backup folders of the source's earlier deploys
// cut short by a stop and superseded by a newer commit: once a deploy has
// ended, none of them is named by a delivery still to fire.
func (r *Runner) pruneBackups(s *source) {
	name := s.cfg.Source.Name
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(s.m.Dir()), "."+name+".backup-*"))
	for _, dir := range old {
		if err := os.RemoveAll(dir); err != nil {
			r.log.Warn("removing an old backup folder", "source", name, "folder", dir, "error", err)
		}
	}
}

// copyFolders copies the compose and .env files of the folders of files
// from the clone src into dir, at the same relative paths.
func copyFolders(src, dir string, files []gitsync.FileDiff) error {
	folders := map[string]bool{}
	for _, f := range files {
		folders[path.Dir(f.Path)] = true
	}
	for folder := range folders {
		entries, err := os.ReadDir(filepath.Join(src, filepath.FromSlash(folder)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", folder, err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || e.Name() != ".env" && !gitsync.IsComposeFile(e.Name()) {
				continue // symlinks are not followed
			}
			rel := filepath.Join(filepath.FromSlash(folder), e.Name())
			if err := copyBounded(filepath.Join(src, rel), filepath.Join(dir, rel)); err != nil {
				return fmt.Errorf("keeping a copy of %s: %w", rel, err)
			}
		}
	}
	return nil
}

// copyBounded copies a regular file of at most gitsync.MaxComposeSize bytes.
func copyBounded(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	b, err := io.ReadAll(io.LimitReader(in, gitsync.MaxComposeSize+1))
	if err != nil {
		return err
	}
	if len(b) > gitsync.MaxComposeSize {
		return fmt.Errorf("larger than %d bytes: %w", gitsync.MaxComposeSize, gitsync.ErrTooLarge)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}
