package composefile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

const (
	oldCompose = "services:\n  app:\n    image: 127.0.0.1:5000/app:1.0.0 # app\n"
	newCompose = "services:\n  app:\n    image: 127.0.0.1:5000/app:1.1.0 # app\n"
)

// planned writes oldCompose to dir/compose.yml and plans the update to 1.1.0.
func planned(t *testing.T, dir string) *Change {
	t.Helper()
	path := filepath.Join(dir, "compose.yml")
	if err := os.WriteFile(path, []byte(oldCompose), 0o644); err != nil {
		t.Fatal(err)
	}
	target, err := Locate(map[string]string{LabelService: "app", LabelConfigFiles: path}, LocateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := target.Plan("1.1.0", "")
	if err != nil {
		t.Fatal(err)
	}
	if string(ch.New) != newCompose {
		t.Fatalf("Plan = %q, want %q", ch.New, newCompose)
	}
	return ch
}

// names lists dir's file names.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApplyRotatesBackups(t *testing.T) {
	dir := t.TempDir()
	ch := planned(t, dir)
	back := &Change{Path: ch.Path, Old: ch.New, New: ch.Old}
	var bks []Backup
	for i := range 5 {
		c := ch
		if i%2 == 1 {
			c = back
		}
		b, err := c.Apply(3)
		if err != nil {
			t.Fatalf("Apply #%d: %v", i, err)
		}
		if got := readFile(t, b.Path); got != string(c.Old) {
			t.Errorf("backup #%d = %q, want %q", i, got, c.Old)
		}
		bks = append(bks, b)
	}
	var gotBackups []string
	for _, n := range names(t, dir) {
		if n == "compose.yml" {
			continue
		}
		if !strings.HasPrefix(n, "compose.yml.tidewatch-") || !strings.HasSuffix(n, ".bak") {
			t.Errorf("unexpected file %s beside the compose file", n)
		}
		gotBackups = append(gotBackups, filepath.Join(dir, n))
	}
	want := []string{bks[2].Path, bks[3].Path, bks[4].Path}
	if !slices.Equal(gotBackups, want) {
		t.Errorf("backups kept = %v, want the newest 3 %v", gotBackups, want)
	}
	if got := readFile(t, ch.Path); got != newCompose {
		t.Errorf("file = %q, want %q", got, newCompose)
	}
	// Restore of an older backup is byte-exact.
	if err := bks[3].Restore(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, ch.Path); got != newCompose {
		t.Errorf("after Restore, file = %q, want the bytes before Apply #3 %q", got, newCompose)
	}
	if err := bks[4].Restore(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, ch.Path); got != oldCompose {
		t.Errorf("after Restore, file = %q, want %q", got, oldCompose)
	}
}

func TestApplyBackupsZeroKeepsOne(t *testing.T) {
	dir := t.TempDir()
	ch := planned(t, dir)
	b, err := ch.Apply(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); len(got) != 2 || readFile(t, b.Path) != oldCompose {
		t.Errorf("files = %v, want the file and one backup of the old bytes", got)
	}
}

func TestApplyKeepsModeAndOwner(t *testing.T) {
	dir := t.TempDir()
	ch := planned(t, dir)
	if err := os.Chmod(ch.Path, 0o640); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		uid, gid = 4321, 8765
		if err := os.Chown(ch.Path, uid, gid); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Log("not root: checking the mode and that the owner stays ours")
	}
	b, err := ch.Apply(3)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{ch.Path, b.Path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o640 || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s: mode %v owner %d:%d, want -rw-r----- %d:%d", filepath.Base(p), fi.Mode().Perm(), st.Uid, st.Gid, uid, gid)
		}
	}
	if err := b.Restore(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(ch.Path)
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o640 || int(st.Uid) != uid {
		t.Errorf("after Restore: mode %v owner %d, want -rw-r----- %d", fi.Mode().Perm(), st.Uid, uid)
	}
}

func TestApplyRefusesChangedFile(t *testing.T) {
	dir := t.TempDir()
	ch := planned(t, dir)
	edited := oldCompose + "# edited by hand\n"
	if err := os.WriteFile(ch.Path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Apply(3); !errors.Is(err, ErrChanged) {
		t.Fatalf("Apply = %v, want ErrChanged", err)
	}
	if got := readFile(t, ch.Path); got != edited {
		t.Errorf("file = %q, want it untouched", got)
	}
	if got := names(t, dir); len(got) != 1 {
		t.Errorf("files = %v, want no backup nor temp file", got)
	}
}

// TestApplyInPlaceWhenRenameBusy makes the rename onto the file fail as it does for a single file
// bind-mounted into a container.
func TestApplyInPlaceWhenRenameBusy(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EBUSY, syscall.EXDEV} {
		t.Run(errno.Error(), func(t *testing.T) {
			dir := t.TempDir()
			ch := planned(t, dir)
			var refused int
			renameFunc = func(from, to string) error {
				if to == ch.Path {
					refused++
					return &os.LinkError{Op: "rename", Old: from, New: to, Err: errno}
				}
				return os.Rename(from, to)
			}
			t.Cleanup(func() { renameFunc = os.Rename })
			before, err := os.Stat(ch.Path)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ch.Apply(3)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			after, err := os.Stat(ch.Path)
			if err != nil {
				t.Fatal(err)
			}
			if refused != 1 || !os.SameFile(before, after) {
				t.Errorf("rename refused %d times, same inode %v; want 1 refusal and an in-place write", refused, os.SameFile(before, after))
			}
			if got := readFile(t, ch.Path); got != newCompose {
				t.Errorf("file = %q, want %q", got, newCompose)
			}
			if got := readFile(t, b.Path); got != oldCompose {
				t.Errorf("backup = %q, want %q", got, oldCompose)
			}
			if got := names(t, dir); len(got) != 2 {
				t.Errorf("files = %v, want the file and its backup, no temp file", got)
			}
			if err := b.Restore(); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, ch.Path); got != oldCompose || refused != 2 {
				t.Errorf("after Restore: file = %q (rename refused %d times), want %q written in place", got, refused, oldCompose)
			}
		})
	}
}

func TestApplyOtherRenameErrorChangesNothing(t *testing.T) {
	dir := t.TempDir()
	ch := planned(t, dir)
	renameFunc = func(from, to string) error {
		if to == ch.Path {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EACCES}
		}
		return os.Rename(from, to)
	}
	t.Cleanup(func() { renameFunc = os.Rename })
	if _, err := ch.Apply(3); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("Apply = %v, want EACCES", err)
	}
	if got := readFile(t, ch.Path); got != oldCompose {
		t.Errorf("file = %q, want it untouched", got)
	}
	for _, n := range names(t, dir) {
		if strings.Contains(n, tempInfix) {
			t.Errorf("temp file %s left behind", n)
		}
	}
}

func TestApplyFollowsSymlinkAndCleansTemps(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	ch := planned(t, real)
	link := filepath.Join(dir, "compose.yml")
	if err := os.Symlink(ch.Path, link); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(real, ".compose.yml"+tempInfix+"123")
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	ch.Path = link
	b, err := ch.Apply(3)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", fi.Mode(), err)
	}
	if got := readFile(t, filepath.Join(real, "compose.yml")); got != newCompose {
		t.Errorf("target = %q, want %q", got, newCompose)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file still there: %v", err)
	}
	if filepath.Dir(b.Path) != real {
		t.Errorf("backup %s, want it beside the real file in %s", b.Path, real)
	}
	if !bytes.Equal([]byte(readFile(t, b.Path)), ch.Old) {
		t.Errorf("backup differs from the old bytes")
	}
}
