package composeup

import (
	"os/exec"
	"strings"
	"testing"
)

// TestModuleVersion: the version written into the compose version label
// of builds without dependency records is the one go.mod requires.
func TestModuleVersion(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", Module).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", Module, err)
	}
	if got := strings.TrimSpace(string(out)); got != moduleVersion {
		t.Errorf("go.mod requires %s %s; moduleVersion is %s", Module, got, moduleVersion)
	}
	if LibraryVersion() == "" {
		t.Error("LibraryVersion is empty")
	}
}
