package composefile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tidewatch/tidewatch/core"
)

// TestInGitSource: a file anywhere under a clone whose git folder holds the
// marker is in that source; a plain work tree, a linked one (.git file) and
// a folder outside any are not, whatever the marker says above them.
func TestInGitSource(t *testing.T) {
	root := t.TempDir()
	mk := func(dir string, marker string) {
		if err := os.MkdirAll(filepath.Join(root, dir, ".git"), 0o755); err != nil {
			t.Fatal(err)
		}
		if marker != "" {
			if err := os.WriteFile(filepath.Join(root, dir, ".git", core.GitSourceMarker), []byte(marker+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("git/prod", "prod")
	mk("git/prod/vendor/plain", "") // a repository inside the clone: its own, unmarked
	mk("stacks", "")
	os.MkdirAll(filepath.Join(root, "linked"), 0o755)
	os.WriteFile(filepath.Join(root, "linked", ".git"), []byte("gitdir: ../git/prod/.git\n"), 0o644)
	for _, tc := range []struct {
		path   string
		source string
		ok     bool
	}{
		{"git/prod/compose.yaml", "prod", true},
		{"git/prod/apps/web/compose.yaml", "prod", true},
		{"git/prod/vendor/plain/compose.yaml", "", false},
		{"stacks/compose.yaml", "", false},
		{"linked/compose.yaml", "", false},
		{"elsewhere/compose.yaml", "", false},
	} {
		source, ok := InGitSource(filepath.Join(root, tc.path))
		if source != tc.source || ok != tc.ok {
			t.Errorf("InGitSource(%s) = %q, %v; want %q, %v", tc.path, source, ok, tc.source, tc.ok)
		}
	}
}
