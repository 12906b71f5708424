package compose

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

func TestCheckDeclaredRefusesWhatItCannotActOnSafely(t *testing.T) {
	ok := sdk.Declared{Project: "shop", Service: "web", WorkingDir: "/data/git/prod/shop", Files: []string{"/data/git/prod/shop/compose.yaml"},
		Previous: []sdk.FileChange{{Path: "/data/git/prod/shop/compose.yaml", Backup: "/data/git/.b/shop/compose.yaml"}, {Path: "/data/git/prod/shop/.env"}}}
	tests := []struct {
		name   string
		change func(d *sdk.Declared)
		want   string
	}{
		{"valid", func(*sdk.Declared) {}, ""},
		{"no service", func(d *sdk.Declared) { d.Service = "" }, "required"},
		{"no files: the project's files are gone", func(d *sdk.Declared) { d.Files = nil }, ""},
		{"no working dir", func(d *sdk.Declared) { d.WorkingDir = "" }, "required"},
		{"relative working dir", func(d *sdk.Declared) { d.WorkingDir = "shop" }, "not absolute"},
		{"relative file", func(d *sdk.Declared) { d.Files = []string{"../../etc/compose.yaml"} }, "not absolute"},
		{"relative previous", func(d *sdk.Declared) { d.Previous = []sdk.FileChange{{Path: "compose.yaml"}} }, "not absolute"},
		{"relative backup", func(d *sdk.Declared) { d.Previous = []sdk.FileChange{{Path: "/x/compose.yaml", Backup: "b"}} }, "not absolute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := ok
			tc.change(&d)
			err := checkDeclared(&d)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("checkDeclared = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRestorePreviousPutsFilesBackAndRemovesNewOnes(t *testing.T) {
	dir, backups := t.TempDir(), t.TempDir()
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file, env, added := filepath.Join(dir, "compose.yaml"), filepath.Join(dir, ".env"), filepath.Join(dir, "compose.override.yaml")
	write(file, "new")
	write(env, "TAG=2\n")
	write(added, "added by the failed commit")
	write(filepath.Join(backups, "compose.yaml"), "old")
	write(filepath.Join(backups, ".env"), "TAG=1\n")
	huge := filepath.Join(backups, "huge.yaml")
	write(huge, strings.Repeat("x", maxDeclaredFile+1))
	err := restorePrevious([]sdk.FileChange{
		{Path: file, Backup: filepath.Join(backups, "compose.yaml")},
		{Path: env, Backup: filepath.Join(backups, ".env")},
		{Path: added},
		{Path: filepath.Join(dir, "gone-already.yaml")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{file: "old", env: "TAG=1\n"} {
		if b, _ := os.ReadFile(p); string(b) != want {
			t.Errorf("%s = %q, want %q", p, b, want)
		}
	}
	if _, err := os.Stat(added); !os.IsNotExist(err) {
		t.Errorf("a file new in the failed commit is still there: %v", err)
	}
	if err := restorePrevious([]sdk.FileChange{{Path: file, Backup: huge}}); err == nil {
		t.Error("restoring from a backup larger than 1 MiB succeeded, want refused")
	}
	if b, _ := os.ReadFile(file); string(b) != "old" {
		t.Errorf("a refused restore changed the file: %q", b)
	}
}

func TestDeclaresService(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := write("compose.yaml", "services:\n  web:\n    image: app:1\n")
	override := write("compose.override.yaml", "services:\n  api:\n    image: app:2\n")
	broken := write("broken.yaml", "services: [unclosed\n")
	huge := write("huge.yaml", "services:\n  web: {}\n#"+strings.Repeat("x", maxDeclaredFile))
	tests := []struct {
		name    string
		files   []string
		service string
		want    bool
		wantErr bool
	}{
		{"in the base file", []string{base, override}, "web", true, false},
		{"in the override", []string{base, override}, "api", true, false},
		{"removed", []string{base, override}, "db", false, false},
		{"no files: the project is gone", nil, "web", false, false},
		{"not YAML", []string{broken}, "web", false, true},
		{"larger than 1 MiB", []string{huge}, "web", false, true},
		{"missing file", []string{filepath.Join(dir, "gone.yaml")}, "web", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := declaresService(tc.files, tc.service)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("declaresService(%v, %s) = %v, %v; want %v, error %v", tc.files, tc.service, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
