package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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
	stop := sampleRSS(t)
	work(t, os.Getenv("TIDEWATCH_BENCH_REGISTRY"))
	stop()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	mb := func(n uint64) float64 { return float64(n) / (1 << 20) }
	t.Logf("Go runtime: sys %.1f MB (heap %.1f, stacks %.1f), heap in use %.1f MB, %d GCs; CPU time %v", mb(m.Sys), mb(m.HeapSys), mb(m.StackSys), mb(m.HeapInuse), m.NumGC, selfCPU().Round(time.Millisecond))
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
		// What the child said of its memory, one line each (its whole
		// output would be cut short by the benchmark's log).
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "Go runtime") || strings.Contains(line, "highest RSS") {
				b.Logf("child %s %v: %s", name, env, strings.TrimSpace(line))
			}
		}
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

// sampleRSS samples the process's resident set every 5 ms until the
// returned stop is called, which logs what it was made of at its highest:
// the Go runtime's memory (heap objects, heap not in use, stacks, the
// rest), and what lies outside it (the binary's pages, SQLite's memory,
// which modernc.org/libc maps itself).
func sampleRSS(t *testing.T) (stop func()) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	type peak struct{ rss, anon, file, objects, unused, free, stacks, goTotal float64 }
	profile := os.Getenv("TIDEWATCH_BENCH_CHILD_PEAKPROFILE") // where the heap profile at the highest RSS goes
	var (
		best peak
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			rss := procStatus("VmRSS:")
			if rss <= best.rss {
				continue
			}
			metrics.Read(samples)
			mb := func(i int) float64 { return float64(samples[i].Value.Uint64()) / (1 << 20) }
			if profile != "" && mb(0) > best.objects+1 {
				writeHeapProfile(t, profile)
			}
			best = peak{rss: rss, anon: procStatus("RssAnon:"), file: procStatus("RssFile:") + procStatus("RssShmem:"),
				objects: mb(0), unused: mb(1), free: mb(2), stacks: mb(3), goTotal: mb(4) - mb(5)}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		t.Logf("at the highest RSS sampled, %.1f MB: anonymous %.1f, file-backed %.1f; Go runtime %.1f (heap objects %.1f, heap unused %.1f, heap free %.1f, stacks %.1f); anonymous outside the Go runtime about %.1f",
			best.rss, best.anon, best.file, best.goTotal, best.objects, best.unused, best.free, best.stacks, best.anon-best.goTotal)
	}
}

// writeHeapProfile writes the heap profile (as of the last collection) to path.
func writeHeapProfile(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Errorf("heap profile: %v", err)
		return
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Errorf("heap profile: %v", err)
	}
}
