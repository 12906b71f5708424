package composefile

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rewriterEnv makes the test binary act as the rewriter that TestCrashSafety kills: it rewrites
// the file named by the variable back and forth between the two versions until it is killed.
const rewriterEnv = "TIDEWATCH_COMPOSEFILE_REWRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(rewriterEnv); path != "" {
		os.Exit(rewriter(path))
	}
	os.Exit(m.Run())
}

// rewriter plans and applies the update of service app in path, then its reverse, forever.
func rewriter(path string) int {
	fmt.Println("ready")
	for {
		target, err := Locate(map[string]string{LabelService: "app", LabelConfigFiles: path}, LocateOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		next := "1.1.0"
		if target.Tag == next {
			next = "1.0.0"
		}
		ch, err := target.Plan(next, "")
		if err == nil {
			_, err = ch.Apply(2)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
}

// crashFile is a compose file with enough around the image that a write takes a moment.
func crashFile(tag string) []byte {
	var b strings.Builder
	b.WriteString("# a long compose file\r\nservices:\r\n  app:\r\n    image: \"127.0.0.1:5000/app:" + tag + "\"  # the app\r\n")
	for i := range 40 {
		fmt.Fprintf(&b, "  svc%03d:\r\n    image: 127.0.0.1:5000/other:%d.0  # comment %d %s\r\n", i, i, i, strings.Repeat("x", 100))
	}
	return []byte(b.String())
}

// TestCrashSafety kills a process rewriting a compose file with SIGKILL at random moments; every
// time, the file must be byte for byte the old or the new version, and parse, and the only other files
// are backups (old or new version too) and hidden temp files.
func TestCrashSafety(t *testing.T) {
	trials := 200
	if testing.Short() {
		trials = 50
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	oldB, newB := crashFile("1.0.0"), crashFile("1.1.0")
	dir := t.TempDir()
	path := filepath.Join(dir, "compose.yml")
	if err := os.WriteFile(path, oldB, 0o644); err != nil {
		t.Fatal(err)
	}
	// Time a few rewrites here, so that the kills spread over several rewrites whatever the disk.
	cycle := timeRewrites(t, oldB)
	// The kills land at random within window. A loaded machine may make the
	// rewriter far slower than the rewrites timed here: while ten trials in
	// a row have not seen both versions, the window doubles (up to 64
	// cycles), so that the kills still spread over whole rewrites.
	window := 2 * cycle
	var sawOld, sawNew, sawTemp int
	start := time.Now()
	for trial := range trials {
		if trial > 0 && trial%10 == 0 && (sawOld == 0 || sawNew == 0) && window < 64*cycle {
			window *= 2
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), rewriterEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("trial %d: rewriter said %q, %v; stderr %s", trial, line, err, stderr.String())
		}
		time.Sleep(rand.N(window)) // a random moment to kill it
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("trial %d: rewriter ended by itself (%v): %s", trial, err, stderr.String())
		}

		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		switch {
		case bytes.Equal(got, oldB):
			sawOld++
		case bytes.Equal(got, newB):
			sawNew++
		default:
			t.Fatalf("trial %d: the file is neither version (%d bytes)", trial, len(got))
		}
		if _, err := parseDoc(got); err != nil {
			t.Fatalf("trial %d: the file does not parse: %v", trial, err)
		}
		for _, n := range names(t, dir) {
			switch {
			case n == "compose.yml":
			case strings.HasPrefix(n, ".compose.yml") && strings.Contains(n, tempInfix):
				sawTemp++ // hidden, and removed by the next write
			case strings.HasPrefix(n, "compose.yml"+backupInfix) && strings.HasSuffix(n, backupSuffix):
				b := []byte(readFile(t, filepath.Join(dir, n)))
				if !bytes.Equal(b, oldB) && !bytes.Equal(b, newB) {
					t.Fatalf("trial %d: backup %s is neither version", trial, n)
				}
			default:
				t.Fatalf("trial %d: unexpected file %s", trial, n)
			}
		}
	}
	t.Logf("%d kills in %v (a rewrite takes %v, kills within %v): file old %d times, new %d times; %d temp files seen (removed by the next write)",
		trials, time.Since(start).Round(time.Millisecond), cycle.Round(time.Microsecond), window.Round(time.Microsecond), sawOld, sawNew, sawTemp)
	if sawOld == 0 || sawNew == 0 {
		t.Errorf("the kills never landed on both versions (old %d, new %d): the test does not exercise the rewrite", sawOld, sawNew)
	}
	// The next write removes what the crashes left.
	target, err := Locate(map[string]string{LabelService: "app", LabelConfigFiles: path}, LocateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]string{"1.0.0": "1.1.0", "1.1.0": "1.0.0"}[target.Tag]
	ch, err := target.Plan(next, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Apply(2); err != nil {
		t.Fatal(err)
	}
	for _, n := range names(t, dir) {
		if strings.Contains(n, tempInfix) {
			t.Errorf("temp file %s still there after a clean write", n)
		}
	}
}

// timeRewrites returns how long one Locate, Plan and Apply of content takes here.
func timeRewrites(t *testing.T, content []byte) time.Duration {
	t.Helper()
	path := filepath.Join(t.TempDir(), "compose.yml")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	const n = 5
	start := time.Now()
	for range n {
		target, err := Locate(map[string]string{LabelService: "app", LabelConfigFiles: path}, LocateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		next := map[string]string{"1.0.0": "1.1.0", "1.1.0": "1.0.0"}[target.Tag]
		ch, err := target.Plan(next, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch.Apply(2); err != nil {
			t.Fatal(err)
		}
	}
	return time.Since(start) / n
}
