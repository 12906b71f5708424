package compose

import (
	"testing"

	"github.com/tidewatch/tidewatch/triggers/composefile"
)

// TestHostPath maps local paths back to the host's, PATH_MAP read
// backwards: the longest local prefix wins, whole path elements only.
func TestHostPath(t *testing.T) {
	maps := []composefile.PathMapping{{Host: "/srv", Local: "/host/srv"}, {Host: "/srv/stacks", Local: "/stacks"}}
	tests := []struct{ in, want string }{
		{"/stacks/app/data", "/srv/stacks/app/data"},
		{"/host/srv/other", "/srv/other"},
		{"/stacks", "/srv/stacks"},
		{"/stacksx/app", "/stacksx/app"},         // not under /stacks
		{"/opt/app/../app/x", "/opt/app/x"},      // unmapped, cleaned
		{"/stacks/../etc/passwd", "/etc/passwd"}, // hostile: leaves the mapped folder, left unmapped
	}
	for _, tc := range tests {
		if got := hostPath(maps, tc.in); got != tc.want {
			t.Errorf("hostPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
