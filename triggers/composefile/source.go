package composefile

import (
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tidewatch/tidewatch/core"
)

// InGitSource reports whether path lies in tidewatch's own clone of a git
// source, and which: the nearest folder above path holding a ".git" folder
// with a core.GitSourceMarker file in it. Only stats and one small read.
func InGitSource(path string) (source string, ok bool) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", false
	}
	for dir := filepath.Dir(abs); ; {
		if fi, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			if !fi.IsDir() {
				return "", false // a linked work tree or submodule: not a clone tidewatch makes
			}
			f, err := os.Open(filepath.Join(dir, ".git", core.GitSourceMarker))
			if err != nil {
				return "", false
			}
			defer f.Close()
			b, _ := io.ReadAll(io.LimitReader(f, 256))
			return strings.TrimSpace(string(b)), true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
