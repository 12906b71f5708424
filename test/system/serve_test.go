package system

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// daemon is a running `tidewatch serve`.
type daemon struct {
	cmd  *exec.Cmd
	base string
	done chan struct{}
	log  *strings.Builder
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServe starts `tidewatch serve` with env on a free loopback port and
// waits until it answers /healthz.
func startServe(t testing.TB, env []string) *daemon {
	t.Helper()
	return startServeOn(t, freePort(t), env)
}

// startServeOn is startServe on port, for a test whose env must name the
// API's address before serve starts (the mqtt trigger's API_URL).
func startServeOn(t testing.TB, port int, env []string) *daemon {
	t.Helper()
	return startServeExe(t, binary, port, env)
}

// startServeExe starts `serve` of the binary exe on port, as startServe does.
func startServeExe(t testing.TB, exe string, port int, env []string) *daemon {
	t.Helper()
	cmd := exec.Command(exe, "serve")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GOTRACEBACK=all", fmt.Sprintf("TIDEWATCH_SERVER_PORT=%d", port)}, env...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{}), log: &strings.Builder{}}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d.log.WriteString(sc.Text() + "\n")
		}
		cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			d.dump()
		}
		d.stop(t)
		if t.Failed() {
			t.Logf("tidewatch serve's log:\n%s", d.log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(d.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		select {
		case <-d.done:
			t.Fatalf("tidewatch serve exited:\n%s", d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tidewatch serve never answered /healthz:\n%s", d.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dump has a serve that is still running print its goroutines (SIGQUIT,
// with GOTRACEBACK=all) into its log and exit: what a failed test shows of a
// daemon that stopped answering. A serve whose run returned is left alone.
func (d *daemon) dump() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
}

// stop sends SIGTERM and waits for a graceful exit.
func (d *daemon) stop(t testing.TB) {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		t.Errorf("tidewatch serve did not stop within 30s of SIGTERM:\n%s", d.log.String())
	}
}

func (d *daemon) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(d.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

// TestServeRestartKeepsStateAndNotifiesOnce: serve finds an update and
// notifies a webhook; stopped and started again, it still shows the update
// and does not notify it a second time.
func TestServeRestartKeepsStateAndNotifiesOnce(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("served")
	for _, v := range []string{"5.0.0", "5.1.0"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v})
	}
	name := unique("served")
	bed.RunContainer(t, name, repo+":5.0.0", watched)
	rcv := newReceiver(t)
	env := envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_URL="+rcv.srv.URL,
		"TIDEWATCH_TRIGGER_WEBHOOK_CI_INCLUDE="+name,
	)
	pending := func(d *daemon) []map[string]any {
		var body struct {
			Updates []map[string]any `json:"updates"`
		}
		d.getJSON(t, "/api/updates", &body)
		var mine []map[string]any
		for _, u := range body.Updates {
			if strings.Contains(fmt.Sprint(u), name) {
				mine = append(mine, u)
			}
		}
		return mine
	}

	first := startServe(t, env)
	waitUntil(t, 60*time.Second, "the webhook to be notified", func() bool { return len(forContainer(t, rcv.got(), name)) == 1 })
	if got := pending(first); len(got) != 1 || got[0]["candidate"] != "5.1.0" {
		t.Fatalf("pending updates before the restart = %v, want one to 5.1.0", got)
	}
	first.stop(t)

	second := startServe(t, env)
	waitUntil(t, 60*time.Second, "a run after the restart", func() bool {
		var w struct {
			Watchers []struct {
				LastRun *struct{ Containers int } `json:"last_run"`
			} `json:"watchers"`
		}
		second.getJSON(t, "/api/watchers", &w)
		return len(w.Watchers) == 1 && w.Watchers[0].LastRun != nil
	})
	if got := pending(second); len(got) != 1 || got[0]["candidate"] != "5.1.0" {
		t.Errorf("pending updates after the restart = %v, want the same one to 5.1.0", got)
	}
	if n := len(forContainer(t, rcv.got(), name)); n != 1 {
		t.Errorf("the webhook was notified %d times across the restart, want 1", n)
	}
}

func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
