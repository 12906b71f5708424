package composefile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestApplyWithRecordsTheBackupFirst: the hook sees the backup on disk and
// the file untouched; a failing hook leaves the file as it was.
func TestApplyWithRecordsTheBackupFirst(t *testing.T) {
	dir := t.TempDir()
	ch := planned(t, dir)
	var seen Backup
	b, err := ch.ApplyWith(3, func(b Backup) error {
		seen = b
		if got := readFile(t, b.Path); got != oldCompose {
			t.Errorf("the backup holds %q when recorded, want the old bytes", got)
		}
		if got := readFile(t, ch.Path); got != oldCompose {
			t.Errorf("the file holds %q when its backup is recorded, want it untouched", got)
		}
		return nil
	})
	if err != nil || seen != b {
		t.Fatalf("ApplyWith = %+v, %v; hook saw %+v", b, err, seen)
	}
	if got := readFile(t, ch.Path); got != newCompose {
		t.Errorf("after ApplyWith the file holds %q", got)
	}

	dir = t.TempDir()
	ch = planned(t, dir)
	refuse := errors.New("the disk is full")
	b, err = ch.ApplyWith(3, func(Backup) error { return refuse })
	if !errors.Is(err, refuse) || b.Path == "" {
		t.Errorf("ApplyWith with a failing hook = %+v, %v; want the hook's error and the backup", b, err)
	}
	if got := readFile(t, ch.Path); got != oldCompose {
		t.Errorf("a failing hook left the file as %q, want it untouched", got)
	}
}

// TestRestoreOver: a backup is restored only over the bytes the rollout
// wrote; a file edited since (or never written) is left alone.
func TestRestoreOver(t *testing.T) {
	dir := t.TempDir()
	ch := planned(t, dir)
	b, err := ch.Apply(3)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(newCompose, "# app", "# app, edited by hand", 1)
	for _, tc := range []struct{ name, content, over string }{
		{"edited since", edited, sum(newCompose)},
		{"never written", oldCompose, sum(newCompose)},
		{"hostile hash", newCompose, "../../etc/passwd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(ch.Path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := b.RestoreOver(tc.over); !errors.Is(err, ErrChanged) {
				t.Errorf("RestoreOver = %v, want ErrChanged", err)
			}
			if got := readFile(t, ch.Path); got != tc.content {
				t.Errorf("the file is %q, want it left as %q", got, tc.content)
			}
		})
	}
	if err := os.WriteFile(ch.Path, []byte(newCompose), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.RestoreOver(sum(newCompose)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, ch.Path); got != oldCompose {
		t.Errorf("after RestoreOver the file is %q, want the backup's bytes", got)
	}
}
