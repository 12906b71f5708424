package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user and system) spent so far by this process
// and by its live child processes (the plugin processes a benchmark
// started). CPU time, unlike wall time, hardly depends on what else the
// machine runs, so it compares versions on a loaded machine.
type cpuTime struct {
	self, children time.Duration
}

// cpuNow reads the CPU time of the process and of its live children.
func cpuNow() cpuTime {
	return cpuTime{self: selfCPU(), children: childrenCPU()}
}

// selfCPU is this process's CPU time (user and system). Unlike cpuNow, it
// reads no /proc, whose scan of every process takes tens of milliseconds
// on a busy machine: the timed benchmarks that need only their own CPU
// use it.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// childrenCPU sums utime and stime of the processes whose parent is this
// one, from /proc (0 where /proc is missing).
func childrenCPU() time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := strconv.Itoa(os.Getpid())
	var total time.Duration
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid … utime(14) stime(15): comm may hold spaces.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 || f[1] != me {
			continue
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 == nil && err2 == nil {
			total += time.Duration(ut+st) * clockTick
		}
	}
	return total
}

// reportCPU reports the CPU time per operation since start: of this process
// (the dispatcher, the store and the plugin client) and of the plugin
// processes.
func reportCPU(b *testing.B, start cpuTime) {
	b.Helper()
	now := cpuNow()
	n := float64(b.N)
	b.ReportMetric(float64((now.self-start.self).Microseconds())/n, "host-cpu-us/op")
	b.ReportMetric(float64((now.children-start.children).Microseconds())/n, "plugin-cpu-us/op")
}
