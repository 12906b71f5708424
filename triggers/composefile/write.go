package composefile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Names of the files Apply writes beside the file it changes.
const (
	// backupInfix and backupSuffix make a backup's name: <file>.tidewatch-<UTC timestamp>.bak.
	backupInfix  = ".tidewatch-"
	backupSuffix = ".bak"
	// tempInfix makes a temp file's name: .<file>.tidewatch-tmp-<random>. It is hidden and does not end
	// in .yml, .yaml or .env, so nothing takes it for the file; Apply removes the ones a crash left.
	tempInfix = ".tidewatch-tmp-"
	// backupTime is the timestamp format of backups: fixed width, so names sort by time.
	backupTime = "20060102T150405.000000000Z"
)

// renameFunc renames; tests replace it to make the rename fail like a bind-mounted file does.
var renameFunc = os.Rename

// Apply writes the change safely. It refuses with ErrChanged when Path's bytes are no longer c.Old.
// It first keeps a backup beside the file (<file>.tidewatch-<UTC timestamp>.bak; the newest `backups`
// are kept, at least 1, older ones removed), then writes a temp file in the same folder
// (.<file>.tidewatch-tmp-<random>), fsyncs it, renames it over the file and fsyncs the folder. When the
// rename fails with EBUSY or EXDEV (a single file bind-mounted into tidewatch's container), or the temp
// file cannot be given the file's owner, it writes the file in place instead (write, truncate, fsync),
// the backup being safe on disk first. The file keeps its mode and owner. A symlink is followed: its
// target is written.
func (c *Change) Apply(backups int) (Backup, error) {
	return c.ApplyWith(backups, nil)
}

// ApplyWith is Apply with a hook: once the backup is safe on disk, and before the file is touched,
// it calls record with it (a rollout writes down which backup is its own). When record fails, the
// file is left as it was and the error returned, with the backup.
func (c *Change) ApplyWith(backups int, record func(Backup) error) (Backup, error) {
	path, err := filepath.EvalSymlinks(c.Path)
	if err != nil {
		return Backup{}, fmt.Errorf("applying change to %s: %w", c.Path, err)
	}
	cur, err := os.ReadFile(path)
	if err != nil {
		return Backup{}, fmt.Errorf("applying change to %s: %w", c.Path, err)
	}
	if !bytes.Equal(cur, c.Old) {
		return Backup{}, fmt.Errorf("applying change to %s: %w", c.Path, ErrChanged)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Backup{}, fmt.Errorf("applying change to %s: %w", c.Path, err)
	}
	removeTemps(path)
	b, err := writeBackup(path, cur, fi, max(backups, 1))
	if err != nil {
		return Backup{}, fmt.Errorf("backing up %s: %w", c.Path, err)
	}
	if record != nil {
		if err := record(b); err != nil {
			return b, fmt.Errorf("recording the backup of %s: %w; the file was not changed", c.Path, err)
		}
	}
	if err := writeFile(path, c.New, fi); err != nil {
		return b, fmt.Errorf("writing %s: %w", c.Path, err)
	}
	return b, nil
}

// Restore puts the backup's bytes back into the file, byte for byte, with the same safe write as
// Apply (temp file, fsync, rename, fsync the folder; in place when rename cannot work), keeping the
// file's mode and owner. It keeps the backup.
func (b Backup) Restore() error {
	data, err := os.ReadFile(b.Path)
	if err != nil {
		return fmt.Errorf("restoring %s: %w", b.File, err)
	}
	path, err := filepath.EvalSymlinks(b.File)
	if errors.Is(err, os.ErrNotExist) {
		path = b.File
	} else if err != nil {
		return fmt.Errorf("restoring %s: %w", b.File, err)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		fi, err = os.Stat(b.Path) // the file is gone: give it the backup's mode and owner
	}
	if err != nil {
		return fmt.Errorf("restoring %s: %w", b.File, err)
	}
	removeTemps(path)
	if err := writeFile(path, data, fi); err != nil {
		return fmt.Errorf("restoring %s from %s: %w", b.File, b.Path, err)
	}
	return nil
}

// RestoreOver is Restore when the file holds the bytes whose SHA-256 (hex) is over: what a rollout
// wrote. When it holds anything else (edited since, or never written), nothing is written and the
// error wraps ErrChanged.
func (b Backup) RestoreOver(over string) error {
	cur, err := os.ReadFile(b.File)
	if err != nil {
		return fmt.Errorf("restoring %s: %w", b.File, err)
	}
	if sum := sha256.Sum256(cur); hex.EncodeToString(sum[:]) != over {
		return fmt.Errorf("restoring %s from %s: %w: it no longer holds what the rollout wrote", b.File, b.Path, ErrChanged)
	}
	return b.Restore()
}

// writeBackup writes data to a new <path>.tidewatch-<timestamp>.bak with fi's mode and owner
// (atomically: a backup is never partial), then removes all but the newest keep backups.
func writeBackup(path string, data []byte, fi os.FileInfo, keep int) (Backup, error) {
	stamp := time.Now().UTC().Format(backupTime)
	name := path + backupInfix + stamp + backupSuffix
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			break
		}
		name = fmt.Sprintf("%s%s%s-%d%s", path, backupInfix, stamp, i, backupSuffix)
	}
	if err := writeTempRename(name, data, fi); err != nil {
		var fb *fallbackError
		if !errors.As(err, &fb) {
			return Backup{}, err
		}
		if err := writeNew(name, data, fi); err != nil {
			return Backup{}, err
		}
	}
	olds, err := listBackups(path)
	if err != nil {
		return Backup{}, err
	}
	for len(olds) > keep {
		if err := os.Remove(olds[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return Backup{}, fmt.Errorf("removing old backup: %w", err)
		}
		olds = olds[1:]
	}
	return Backup{File: path, Path: name}, nil
}

// listBackups returns the backups of path, oldest first.
func listBackups(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	ents, err := os.ReadDir(filepath.Clean(dir))
	if err != nil {
		return nil, fmt.Errorf("listing backups: %w", err)
	}
	prefix := base + backupInfix
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, prefix) && strings.HasSuffix(n, backupSuffix) && !strings.HasPrefix(n[len(prefix):], "tmp-") {
			out = append(out, filepath.Join(dir, n))
		}
	}
	slices.Sort(out)
	return out, nil
}

// removeTemps removes temp files that an interrupted write of path (or of its backups) left behind.
func removeTemps(path string) {
	dir, base := filepath.Split(path)
	ents, err := os.ReadDir(filepath.Clean(dir))
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "."+base) && strings.Contains(n, tempInfix) {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
}

// writeFile replaces path's bytes with data, keeping fi's mode and owner: through a temp file and a
// rename, or in place when that cannot work.
func writeFile(path string, data []byte, fi os.FileInfo) error {
	err := writeTempRename(path, data, fi)
	if err == nil {
		return nil
	}
	var fb *fallbackError
	if !errors.As(err, &fb) {
		return err
	}
	return writeInPlace(path, data, fi)
}

// fallbackError says that the temp-and-rename write could not be done and nothing was changed, so
// an in-place write is the way.
type fallbackError struct{ err error }

func (e *fallbackError) Error() string { return e.err.Error() }
func (e *fallbackError) Unwrap() error { return e.err }

// writeTempRename writes data to a temp file beside path, with fi's mode and owner, fsyncs it, renames
// it to path and fsyncs the folder. The temp file never outlives a failure (but a crash).
func writeTempRename(path string, data []byte, fi os.FileInfo) (err error) {
	dir, base := filepath.Split(path)
	dir = filepath.Clean(dir)
	f, err := os.CreateTemp(dir, "."+base+tempInfix+"*")
	if err != nil {
		return fmt.Errorf("creating temp file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(fi.Mode().Perm()); err != nil {
		return fmt.Errorf("setting mode of temp file: %w", err)
	}
	if err := chownLike(f, fi); err != nil {
		return &fallbackError{fmt.Errorf("setting owner of temp file: %w", err)}
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing temp file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing temp file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing temp file: %w", err)
	}
	if err := renameFunc(tmp, path); err != nil {
		if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV) {
			return &fallbackError{err}
		}
		return fmt.Errorf("renaming temp file: %w", err)
	}
	return syncDir(dir)
}

// writeNew creates path, which must not exist, with data and fi's mode and owner (as far as allowed),
// and fsyncs it and its folder.
func writeNew(path string, data []byte, fi os.FileInfo) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	_ = chownLike(f, fi)
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeInPlace overwrites path's bytes with data and fsyncs it. The inode, so mode and owner, stay.
func writeInPlace(path string, data []byte, fi os.FileInfo) error {
	f, err := os.OpenFile(path, os.O_WRONLY, fi.Mode().Perm())
	if err != nil {
		return fmt.Errorf("opening for in-place write: %w", err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing in place: %w", err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		_ = f.Close()
		return fmt.Errorf("truncating in place: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("syncing in place: %w", err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening folder to sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("syncing folder: %w", err)
	}
	return nil
}
