package composefile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLatestBackup(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yml")
	if err := os.WriteFile(file, []byte("services: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := LatestBackup(file); ok || err != nil {
		t.Fatalf("LatestBackup without backups = ok %v, err %v; want none", ok, err)
	}
	for _, stamp := range []string{"20260101T000000.000000000Z", "20260301T000000.000000000Z", "20260201T000000.000000000Z"} {
		if err := os.WriteFile(file+backupInfix+stamp+backupSuffix, []byte(stamp), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, ok, err := LatestBackup(file)
	if err != nil || !ok || filepath.Base(b.Path) != "compose.yml"+backupInfix+"20260301T000000.000000000Z"+backupSuffix || b.File != file {
		t.Errorf("LatestBackup = %+v, %v, %v; want the March one", b, ok, err)
	}
}
