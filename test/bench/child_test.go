package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
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
	fmt.Printf("bench-child %s VmHWM-MB %.1f\n", name, peakRSS())
}

// childPeakRSS runs the child work name against the registry host and
// returns its peak RSS in MB.
func childPeakRSS(b *testing.B, name, registry string) float64 {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1", "-test.v", "-test.timeout=30m")
	cmd.Env = append(os.Environ(), "TIDEWATCH_BENCH_CHILD="+name, "TIDEWATCH_BENCH_REGISTRY="+registry)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("child %s: %v\n%s", name, err, out)
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
