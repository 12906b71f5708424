package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// A benchmark's peak memory is measured in a process of its own: the
// benchmark starts this test binary again with TIDEWATCH_BENCH_CHILD naming
// the work (and TIDEWATCH_BENCH_REGISTRY the registry the parent serves, so
// that the registry's memory is not counted), and the child prints its
// VmHWM when the work is done. A process that ran other benchmarks first
// would report their peak instead.

// childWork is the work a child process can do, by name, given the
// registry host the parent serves.
var childWork = map[string]func(t *testing.T, registry string){}

// TestBenchChild runs the work TIDEWATCH_BENCH_CHILD names, and prints the
// process's peak RSS; without it, it is skipped: the benchmarks run it.
func TestBenchChild(t *testing.T) {
	name := os.Getenv("TIDEWATCH_BENCH_CHILD")
	if name == "" {
		t.Skip("started by the benchmarks, to measure a peak RSS in a process of its own")
	}
	work, ok := childWork[name]
	if !ok {
		t.Fatalf("no child work %q", name)
	}
	work(t, os.Getenv("TIDEWATCH_BENCH_REGISTRY"))
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	mb := func(n uint64) float64 { return float64(n) / (1 << 20) }
	t.Logf("Go runtime: sys %.1f MB (heap %.1f, stacks %.1f), heap in use %.1f MB, %d GCs", mb(m.Sys), mb(m.HeapSys), mb(m.StackSys), mb(m.HeapInuse), m.NumGC)
	fmt.Printf("bench-child %s VmHWM-MB %.1f\n", name, peakRSS())
}

// childPeakRSS runs the child work name against the registry host, with
// env added to its environment, and returns its peak RSS in MB.
func childPeakRSS(b *testing.B, name, registry string, env ...string) float64 {
	b.Helper()
	args := []string{"-test.run=^TestBenchChild$", "-test.count=1", "-test.v", "-test.timeout=30m"}
	if p := os.Getenv("TIDEWATCH_BENCH_CHILD_MEMPROFILE"); p != "" { // where the child's heap profile goes, to see what its peak is made of
		args = append(args, "-test.memprofile="+p+"."+name, "-test.memprofilerate=65536")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "TIDEWATCH_BENCH_CHILD="+name, "TIDEWATCH_BENCH_REGISTRY="+registry), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child %s: %v\n%s", name, err, out)
	}
	if os.Getenv("TIDEWATCH_BENCH_CHILD_LOG") != "" {
		b.Logf("child %s:\n%s", name, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "bench-child" && f[1] == name && f[2] == "VmHWM-MB" {
			v, err := strconv.ParseFloat(f[3], 64)
			if err == nil {
				return v
			}
		}
	}
	b.Fatalf("child %s printed no peak RSS:\n%s", name, out)
	return 0
}
