package memlimit

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

const mib = 1 << 20

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		live, other, ceiling uint64
		want                 uint64
	}{
		{"a small heap: the default", 5 * mib, 10 * mib, 0, Default},
		{"the fleet's heap still fits", 28 * mib, 10 * mib, 0, Default},
		{"a larger heap keeps a quarter of room", 40 * mib, 12 * mib, 0, 62 * mib},
		{"at the step", StepAside, 12 * mib, 0, StepAside + StepAside/4 + 12*mib},
		{"past it, no limit", StepAside + 1, 12 * mib, 0, math.MaxInt64},
		{"a cgroup's ceiling below the default", 5 * mib, 10 * mib, 40 * mib, 40 * mib},
		{"a cgroup's ceiling after stepping aside", 500 * mib, 12 * mib, 1000 * mib, 1000 * mib},
		{"a cgroup's ceiling above: no change", 5 * mib, 10 * mib, 1000 * mib, Default},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Limit(tc.live, tc.other, tc.ceiling); got != tc.want {
				t.Errorf("Limit(%d MiB live, %d MiB other, ceiling %d MiB) = %d MiB, want %d MiB",
					tc.live/mib, tc.other/mib, tc.ceiling/mib, got/mib, tc.want/mib)
			}
		})
	}
}

func TestCeiling(t *testing.T) {
	for _, tc := range []struct{ cgroup, want uint64 }{
		{0, 0},
		{256 * mib, 224 * mib},
		{96 * mib, 64 * mib},
		{64 * mib, 32 * mib},
		{40 * mib, 20 * mib},
	} {
		if got := Ceiling(tc.cgroup); got != tc.want {
			t.Errorf("Ceiling(%d MiB) = %d MiB, want %d MiB", tc.cgroup/mib, got/mib, tc.want/mib)
		}
	}
}

// fsWith makes a root holding files (path → content).
func fsWith(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCgroupLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    uint64
		wantErr string
	}{
		{"nothing to read", nil, 0, ""},
		{"v2, own cgroup", map[string]string{
			"proc/self/cgroup": "0::/system.slice/tidewatch.service\n",
			"sys/fs/cgroup/system.slice/tidewatch.service/memory.max": "134217728\n",
		}, 128 * mib, ""},
		{"v2, no limit", map[string]string{
			"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "max\n",
		}, 0, ""},
		{"v2 inside a container", map[string]string{
			"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "100663296",
		}, 96 * mib, ""},
		{"v1, own cgroup", map[string]string{
			"proc/self/cgroup": "4:memory:/docker/abc\n1:cpu:/\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "268435456\n",
		}, 256 * mib, ""},
		{"v1 says none with a number near 2^63", map[string]string{
			"proc/self/cgroup": "4:memory:/\n", "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}, 0, ""},
		{"the lowest of several", map[string]string{
			"proc/self/cgroup": "4:memory:/a\n0::/b\n",
			"sys/fs/cgroup/memory/a/memory.limit_in_bytes": "268435456", "sys/fs/cgroup/b/memory.max": "134217728",
		}, 128 * mib, ""},
		{"a path that climbs out is not followed", map[string]string{
			"proc/self/cgroup": "0::/../../etc\n", "etc/memory.max": "1024",
		}, 0, ""},
		{"garbage in memory.max", map[string]string{
			"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "lots\n",
		}, 0, `"lots" is not a number of bytes or max`},
		{"a negative number", map[string]string{
			"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "-1",
		}, 0, `"-1" is not a number of bytes or max`},
		{"garbage in /proc/self/cgroup is skipped", map[string]string{
			"proc/self/cgroup": "\x00\xff:::\nnonsense\n", "sys/fs/cgroup/memory.max": "134217728",
		}, 128 * mib, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CgroupLimit(fsWith(t, tc.files))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("CgroupLimit() error = %v, want one saying %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("CgroupLimit() = %d MiB, %v; want %d MiB", got/mib, err, tc.want/mib)
			}
		})
	}
}

// TestKeep: without GOMEMLIMIT, Keep sets the runtime's soft limit (the
// default, with this test's small heap) and logs it; with GOMEMLIMIT set,
// it leaves the runtime's limit alone.
func TestKeep(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one setting, then return
	Keep(ctx, func(string) string { return "" }, t.TempDir(), log)
	if got := debug.SetMemoryLimit(-1); got != Default {
		t.Errorf("the runtime's limit after Keep = %d, want %d", got, Default)
	}
	if !strings.Contains(logs.String(), "limit_mb=48") {
		t.Errorf("log = %q, want the limit in MiB", logs.String())
	}

	debug.SetMemoryLimit(math.MaxInt64)
	logs.Reset()
	Keep(ctx, func(k string) string {
		if k == "GOMEMLIMIT" {
			return "off"
		}
		return ""
	}, t.TempDir(), log)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("the runtime's limit after Keep with GOMEMLIMIT=off = %d, want it untouched", got)
	}
	if !strings.Contains(logs.String(), "GOMEMLIMIT") {
		t.Errorf("log = %q, want it to say GOMEMLIMIT decides", logs.String())
	}
}
