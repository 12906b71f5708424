// Package memlimit keeps the Go runtime's soft memory limit for the daemon.
//
// By default the Go runtime lets its heap grow to twice what was live at
// the last collection. A daemon whose runs build and drop a lot at once (a
// round of 10,000 containers holds about 25 MB live) then peaks near twice
// what it needs, and keeps the freed pages until the scavenger returns
// them. A soft memory limit makes the runtime collect sooner, and return
// freed memory sooner, when its memory nears the limit.
//
// The limit Keep holds:
//   - GOMEMLIMIT set in the environment (off included): the runtime's
//     limit is left alone; the user's choice wins.
//   - Otherwise Default (48 MiB) while the live heap stays small, raised to
//     the live heap plus a quarter plus what the runtime holds beside its
//     heap (stacks, metadata) when that is more, so that the collector
//     always has room and never runs back to back; once the live heap
//     passes StepAside (64 MiB, fleets well beyond 10,000 containers) there
//     is no limit and the runtime's own pacing applies.
//   - Under a cgroup memory limit, never above Ceiling: that limit less
//     Reserve (32 MiB, for what is not the Go runtime's: the binary's pages,
//     SQLite's own memory), or half of it when that is more; after stepping
//     aside too.
package memlimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// Defaults of the limit Keep holds.
const (
	// Default is the soft limit while the live heap is small.
	Default = 48 << 20
	// StepAside is the live heap above which there is no limit (but a
	// cgroup's).
	StepAside = 64 << 20
	// Reserve is what a cgroup's memory limit keeps for memory that is
	// not the Go runtime's.
	Reserve = 32 << 20
	// Interval is how often Keep reads the live heap.
	Interval = time.Second
)

// Limit returns the soft limit for a live heap of live bytes, when the
// runtime holds other bytes beside its heap, under ceiling (0: none).
func Limit(live, other, ceiling uint64) uint64 {
	lim := uint64(math.MaxInt64)
	if live <= StepAside {
		lim = max(Default, live+live/4+other)
	}
	if ceiling > 0 {
		lim = min(lim, ceiling)
	}
	return lim
}

// Ceiling returns the most the soft limit may be under a cgroup memory limit
// of cgroup bytes (0: none): the cgroup's limit less Reserve, or half of it
// when that is more.
func Ceiling(cgroup uint64) uint64 {
	if cgroup == 0 {
		return 0
	}
	if cgroup > 2*Reserve {
		return cgroup - Reserve
	}
	return cgroup / 2
}

// CgroupLimit reads the memory limit of this process's cgroup under root
// (normally "/": /proc/self/cgroup, then /sys/fs/cgroup), cgroup v2 or v1;
// 0 when there is none or no cgroup file can be read. A file that holds
// something else than a number of bytes (or "max") is an error.
func CgroupLimit(root string) (uint64, error) {
	var paths []string
	if b, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			// hierarchy-ID:controllers:path
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 || strings.Contains(parts[2], "..") {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				paths = append(paths, filepath.Join("sys/fs/cgroup", parts[2], "memory.max"),
					filepath.Join("sys/fs/cgroup/unified", parts[2], "memory.max"))
			case slicesContain(strings.Split(parts[1], ","), "memory"):
				paths = append(paths, filepath.Join("sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
			}
		}
	}
	// Inside a container, its own cgroup is mounted at the top.
	paths = append(paths, "sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes")
	var lowest uint64
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(root, p))
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("reading the cgroup memory limit %s: %w", p, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading the cgroup memory limit %s: %q is not a number of bytes or max", p, v)
		}
		if n == 0 || n >= 1<<62 { // v1 says "none" with a number near 2^63
			continue
		}
		if lowest == 0 || n < lowest {
			lowest = n
		}
	}
	return lowest, nil
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Keep holds the soft memory limit described in the package comment until
// ctx ends, reading the live heap every Interval, unless GOMEMLIMIT is set
// (getenv looks it up). It logs the limit it starts with, and each time it
// steps aside or back.
func Keep(ctx context.Context, getenv func(string) string, root string, log *slog.Logger) {
	if v := getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory limit left to GOMEMLIMIT", "gomemlimit", v)
		return
	}
	cgroup, err := CgroupLimit(root)
	if err != nil {
		log.Warn("no cgroup memory limit read; none assumed", "error", err)
	}
	ceiling := Ceiling(cgroup)
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	set := func() (aside bool) {
		metrics.Read(samples)
		v := func(i int) uint64 {
			if samples[i].Value.Kind() != metrics.KindUint64 {
				return 0
			}
			return samples[i].Value.Uint64()
		}
		heap := v(2) + v(3) + v(4) + v(5)
		other := uint64(0)
		if total := v(1); total > heap {
			other = total - heap
		}
		debug.SetMemoryLimit(int64(min(Limit(v(0), other, ceiling), math.MaxInt64)))
		return v(0) > StepAside
	}
	aside := set()
	log.Info("memory limit", "limit_mb", mb(limit()), "cgroup_limit_mb", mb(cgroup))
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if now := set(); now != aside {
			aside = now
			log.Info("memory limit", "limit_mb", mb(limit()), "cgroup_limit_mb", mb(cgroup), "live_heap_mb", mb(samples[0].Value.Uint64()))
		}
	}
}

// limit is the runtime's soft memory limit.
func limit() uint64 { return uint64(debug.SetMemoryLimit(-1)) }

// mb is n in MiB for the log; -1 for no limit.
func mb(n uint64) int64 {
	if n >= math.MaxInt64 {
		return -1
	}
	return int64(n >> 20)
}
