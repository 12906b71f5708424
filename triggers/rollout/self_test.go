package rollout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDetectSelfFiles(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	other := strings.Repeat("fedcba9876543210", 4)
	tests := []struct {
		name, mountinfo, cgroup string
		want                    []string
	}{
		{
			name: "in a container",
			mountinfo: "600 590 0:52 / / rw,relatime - overlay overlay rw\n" +
				"611 600 8:1 /var/lib/docker/containers/" + id + "/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/sda1 rw\n" +
				"612 600 8:1 /var/lib/docker/containers/" + id + "/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw\n",
			cgroup: "0::/\n",
			want:   []string{id, id},
		},
		{
			name: "on a host, beside containers",
			mountinfo: "25 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n" +
				"300 25 0:60 / /var/lib/docker/containers/" + other + "/mounts/shm rw - tmpfs shm rw\n",
			cgroup: "12:pids:/user.slice\n0::/user.slice/session-1.scope\n",
		},
		{
			name:      "cgroup v1",
			mountinfo: "25 1 8:1 / / rw - ext4 /dev/sda1 rw\n",
			cgroup:    "12:pids:/docker/" + id + "\n11:memory:/docker/" + id + "\n",
			want:      []string{id, id},
		},
		{
			name:   "systemd cgroup driver",
			cgroup: "0::/system.slice/docker-" + id + ".scope\n",
			want:   []string{id},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mi, cg := filepath.Join(dir, "mountinfo"), filepath.Join(dir, "cgroup")
			if err := os.WriteFile(mi, []byte(tc.mountinfo), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cg, []byte(tc.cgroup), 0o644); err != nil {
				t.Fatal(err)
			}
			got := append(fromMountinfo(mi), fromCgroup(cg)...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("detected IDs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsSelf(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		self []string
		name string
		want bool
	}{
		{nil, "web", false},
		{[]string{id}, "web", true},
		{[]string{id[:12]}, "web", true},
		{[]string{id[:8]}, "web", false}, // too short to be sure
		{[]string{"tidewatch"}, "tidewatch", true},
		{[]string{"/tidewatch"}, "tidewatch", true},
		{[]string{"tidewatch"}, "web", false},
		{[]string{strings.Repeat("f", 64)}, "web", false},
	}
	for _, tc := range tests {
		if got := IsSelf(tc.self, id, tc.name); got != tc.want {
			t.Errorf("IsSelf(%q, %s, %q) = %v, want %v", tc.self, id[:12], tc.name, got, tc.want)
		}
	}
}
