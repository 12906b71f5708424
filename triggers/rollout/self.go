package rollout

import (
	"bufio"
	"os"
	"regexp"
	"strings"
)

var (
	containerDir = regexp.MustCompile(`/containers/([0-9a-f]{64})/`)
	longID       = regexp.MustCompile(`([0-9a-f]{64})`)
	shortID      = regexp.MustCompile(`^[0-9a-f]{12}$`)
)

// DetectSelf returns what identifies the container this process runs in:
// its ID from the files the engine bind-mounts into every container
// (/etc/hostname, /etc/hosts, /etc/resolv.conf, in /proc/self/mountinfo),
// from /proc/self/cgroup (cgroup v1), and the hostname when it looks like a
// short container ID. Outside a container it returns nothing.
func DetectSelf() []string {
	var ids []string
	ids = append(ids, fromMountinfo("/proc/self/mountinfo")...)
	ids = append(ids, fromCgroup("/proc/self/cgroup")...)
	if h, err := os.Hostname(); err == nil && shortID.MatchString(h) {
		ids = append(ids, h)
	}
	return ids
}

// fromMountinfo reads container IDs from the sources of the mounts of
// /etc/hostname, /etc/hosts and /etc/resolv.conf. On a host the engine's
// own mounts of other containers' files show elsewhere, never at those
// mount points, so they are not taken for ours.
func fromMountinfo(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		switch fields[4] {
		case "/etc/hostname", "/etc/hosts", "/etc/resolv.conf":
		default:
			continue
		}
		if m := containerDir.FindStringSubmatch(fields[3]); m != nil {
			ids = append(ids, m[1])
		}
	}
	return ids
}

// fromCgroup reads a container ID from the process's cgroup paths
// (".../docker/<id>", ".../docker-<id>.scope"); cgroup v2 in a private
// namespace shows "/" and gives nothing.
func fromCgroup(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var ids []string
	for _, line := range strings.Split(string(b), "\n") {
		if m := longID.FindStringSubmatch(line); m != nil {
			ids = append(ids, m[1])
		}
	}
	return ids
}

// IsSelf reports whether the container with id and name is one of self
// (full IDs, ID prefixes of at least 12 characters, or names): a trigger
// that deploys must not recreate the container tidewatch runs in from
// inside it.
func IsSelf(self []string, id, name string) bool {
	for _, s := range self {
		s = strings.TrimPrefix(strings.TrimSpace(s), "/")
		switch {
		case s == "":
		case s == id || s == name:
			return true
		case len(s) >= 12 && strings.HasPrefix(id, s):
			return true
		}
	}
	return false
}
