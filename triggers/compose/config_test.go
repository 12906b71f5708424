package compose

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseConfigStateDir: STATE_DIR must be the absolute path of a folder
// that exists; anything else is refused at start-up, naming the option.
func TestParseConfigStateDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"unset: the project's folder", "", true},
		{"an absolute folder", dir, true},
		{"padded", "  " + dir + " ", true},
		{"relative", "state", false},
		{"missing", filepath.Join(dir, "nowhere"), false},
		{"a file", file, false},
		{"hostile", dir + "/\x00/../../etc", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := map[string]string{OptRecreate: RecreateEngine}
			if tc.value != "" {
				opts[OptStateDir] = tc.value
			}
			c, err := ParseConfig(context.Background(), opts)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("ParseConfig(STATE_DIR=%q) = %v, want it accepted", tc.value, err)
			case tc.ok && c.StateDir != strings.TrimSpace(tc.value):
				t.Errorf("StateDir = %q, want %q", c.StateDir, strings.TrimSpace(tc.value))
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), OptStateDir)):
				t.Errorf("ParseConfig(STATE_DIR=%q) = %v, want an error naming %s", tc.value, err, OptStateDir)
			}
		})
	}
}
