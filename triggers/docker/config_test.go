package docker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// TestStateDirOption: STATE_DIR must be an absolute folder that exists;
// anything else is an error naming the option.
func TestStateDirOption(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"an absolute folder", dir, true},
		{"unset", "", true},
		{"relative", "state", false},
		{"missing", filepath.Join(dir, "missing"), false},
		{"a file", file, false},
		{"a traversal", dir + "/../../../nonexistent-" + strings.Repeat("x", 8), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(map[string]string{OptStateDir: tc.value})
			if tc.ok != (err == nil) {
				t.Fatalf("ParseConfig(STATE_DIR=%q) error = %v, want ok %t", tc.value, err, tc.ok)
			}
			if err != nil {
				if oe := sdk.OptionErrors(err); len(oe) != 1 || oe[0].Option != OptStateDir {
					t.Errorf("error %v does not name %s alone", err, OptStateDir)
				}
			}
		})
	}
}

// TestDefaultStateDirRefusedWhenOthersMayWrite: the default folder in the
// temp folder is made 0700 and used; one that others may write to (made by
// someone else beforehand) is refused, naming STATE_DIR.
func TestDefaultStateDirRefusedWhenOthersMayWrite(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	s := &state{}
	j, err := s.journal()
	if err != nil {
		t.Fatalf("the default folder: %v", err)
	}
	st, err := os.Stat(j.Dir())
	if err != nil || st.Mode().Perm() != 0o700 || j.Dir() != DefaultStateDir() {
		t.Fatalf("the default folder %s: %v, mode %v; want %s, 0700", j.Dir(), err, st.Mode().Perm(), DefaultStateDir())
	}
	if err := os.Chmod(DefaultStateDir(), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := s.journal(); err == nil || !strings.Contains(err.Error(), OptStateDir) {
		t.Errorf("a default folder anyone may write to: error %v, want a refusal naming %s", err, OptStateDir)
	}
}
