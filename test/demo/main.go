// Command demo is what `make demo` runs inside the test bed: the whole loop
// of tidewatch on a real engine and registry. It builds a sample app (the
// test app, with a healthcheck) in versions 1.0.0, 1.1.0 and 2.0.0 and
// pushes them to the bed's registry; runs the app on 1.0.0 as a compose
// project under .testbed/demo, published on 127.0.0.1; starts a small
// webhook receiver that prints what it is sent; and starts `bin/tidewatch
// serve` with a manual compose trigger (compose.demo) and a webhook trigger
// to the receiver. It prints the UI's and the app's URLs and what to try,
// waits for Ctrl-C, then stops tidewatch, takes the project down and stops
// the receiver, and prints "demo stopped". It exits 0 when stopped with
// Ctrl-C; make demo builds it and runs it through bedctl run, which gives it
// the terminal so that make does not see the Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/testbed"
)

// The demo's compose project and its one service.
const (
	project = "tidewatchdemo"
	service = "web"
)

// versions are the sample app's versions, pushed to the registry; the app
// starts on the first.
var versions = []string{"1.0.0", "1.1.0", "2.0.0"}

// composeFile is the demo project: the app on 1.0.0, published on a
// loopback port, watched by tidewatch, and labelled so that the bed's Down
// removes it should the demo be killed.
const composeFile = `# The tidewatch demo (written by test/demo). The compose trigger rewrites
# the tag below when you press Apply.
services:
  web:
    image: "%[1]s:1.0.0"
    ports:
      - "127.0.0.1:%[2]d:8080"
    labels:
      tidewatch.watch: "true"
      tidewatch.display.name: "web"
      tidewatch.link.template: "https://example.com/web/releases/{{.Candidate}}"
      tidewatch.test: "1"
      tidewatch.testbed: "%[3]s"
`

func main() { os.Exit(run()) }

// run runs the demo until Ctrl-C (or SIGTERM), which is the way to stop it:
// it then cleans up, prints "demo stopped" and exits 0, also when the
// demo was still setting up.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "demo")
	err := demo(ctx, log)
	if ctx.Err() != nil {
		if err != nil {
			log.Info("stopped while setting up; cleaned up what the demo started", "during", err)
		}
		fmt.Println("demo stopped")
		return 0
	}
	if err != nil {
		log.Error("demo failed", "error", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, log *slog.Logger) error {
	bed, err := testbed.Open(ctx)
	if err != nil {
		return err
	}
	defer bed.Close()
	root, err := testbed.ModuleRoot()
	if err != nil {
		return err
	}
	binary := filepath.Join(root, "bin", "tidewatch")
	if _, err := os.Stat(binary); err != nil {
		return fmt.Errorf("tidewatch binary missing (run make build): %w", err)
	}
	dir := filepath.Join(root, ".testbed", "demo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the demo folder: %w", err)
	}
	cli, err := bed.ComposeCLIPath()
	if err != nil {
		return err
	}
	log.Info("compose CLI", "path", cli)

	repo := bed.Registry + "/demo/web"
	for _, v := range versions {
		if _, err := bed.Build(ctx, repo+":"+v, testbed.AppOptions{Version: v, Healthcheck: true}); err != nil {
			return err
		}
		log.Info("pushed the sample app", "image", repo+":"+v)
	}

	// The compose project. Whatever an interrupted demo left goes first;
	// whatever this one starts goes when it ends, however it ends.
	if left, err := bed.ComposeRemove(ctx, project); err != nil {
		return err
	} else if len(left) > 0 {
		log.Info("removed the containers of an earlier demo", "containers", left)
	}
	appPort, err := freePort()
	if err != nil {
		return err
	}
	file := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(composeFile, repo, appPort, bed.State.ID)), 0o644); err != nil {
		return fmt.Errorf("writing the demo's compose file: %w", err)
	}
	defer takeDown(bed, dir, log)
	if err := bed.ComposeRun(ctx, dir, project, "up", "-d"); err != nil {
		return err
	}
	appURL := fmt.Sprintf("http://127.0.0.1:%d/", appPort)
	if err := waitHTTP(ctx, appURL, "1.0.0", time.Minute); err != nil {
		return fmt.Errorf("the sample app on 1.0.0: %w", err)
	}
	name, err := serviceContainer(ctx, bed)
	if err != nil {
		return err
	}
	log.Info("the sample app runs", "container", name, "url", appURL)

	rcv, err := startReceiver()
	if err != nil {
		return err
	}
	defer rcv.stop()

	port := 8080
	if !portFree(port) {
		if port, err = freePort(); err != nil {
			return err
		}
	}
	uiURL := fmt.Sprintf("http://127.0.0.1:%d/", port)
	data := filepath.Join(dir, "data")
	if err := os.RemoveAll(data); err != nil { // each demo starts with a fresh store
		return fmt.Errorf("clearing the demo's store: %w", err)
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("creating the demo's store: %w", err)
	}
	env := []string{
		"TIDEWATCH_SERVER_ADDRESS=127.0.0.1",
		"TIDEWATCH_SERVER_PORT=" + strconv.Itoa(port),
		"TIDEWATCH_STORE_PATH=" + data,
		"TIDEWATCH_WATCHER_LOCAL_WATCHBYDEFAULT=false",
		"TIDEWATCH_TRIGGER_COMPOSE_DEMO_AUTO=false",
		"TIDEWATCH_TRIGGER_COMPOSE_DEMO_DEADLINE=3m",
		"TIDEWATCH_TRIGGER_COMPOSE_DEMO_HEALTH_TIMEOUT=60s",
		"TIDEWATCH_TRIGGER_COMPOSE_DEMO_DOCKER_HOST=" + bed.DockerHost,
		"TIDEWATCH_TRIGGER_WEBHOOK_DEMO_URL=" + rcv.url,
		"TIDEWATCH_TRIGGER_WEBHOOK_DEMO_EVENTS=update-available,update-applied,update-rolled-back",
	}
	if sock, ok := strings.CutPrefix(bed.DockerHost, "unix://"); ok {
		env = append(env, "TIDEWATCH_WATCHER_LOCAL_SOCKET="+sock)
	} else {
		h, p, _ := strings.Cut(strings.TrimPrefix(bed.DockerHost, "tcp://"), ":")
		env = append(env, "TIDEWATCH_WATCHER_LOCAL_HOST="+h, "TIDEWATCH_WATCHER_LOCAL_PORT="+p)
	}
	logPath := filepath.Join(dir, "tidewatch.log")
	srv, err := startServe(binary, env, logPath)
	if err != nil {
		return err
	}
	defer srv.stop(log)
	if err := srv.waitReady(ctx, uiURL); err != nil {
		return err
	}
	u, err := srv.waitUpdate(ctx, uiURL, name)
	if err != nil {
		return err
	}

	rel := func(p string) string {
		if r, err := filepath.Rel(root, p); err == nil {
			return r
		}
		return p
	}
	fmt.Printf(`
tidewatch demo is running.

  UI       %s
  app      %s   answers 1.0.0; %s wait in the registry %s
  webhook  %s   what it receives is printed below
  compose  %s   project %s, container %s
  log      %s

tidewatch serve runs with:
  %s

tidewatch found: %s %s → %s (%s), update %d.

What to do:
  1. Open the UI and press Apply on web %s → %s (trigger compose.demo).
  2. Watch the app's URL answer %s:   curl -s %s
  3. See the rollout in the UI's History, and update-applied arrive at the webhook below.
  Without a browser, step 1 is:
     curl -s -X POST -H 'Content-Type: application/json' -d '{"trigger":"compose.demo"}' %sapi/updates/%d/apply

Press Ctrl-C to stop; the demo stops tidewatch and takes the project down.

`, uiURL, appURL, strings.Join(versions[1:], " and "), bed.Registry, rcv.url, rel(file), project, name, rel(logPath),
		strings.Join(env, "\n  "), u.DisplayName, u.Current, u.Candidate, u.Kind, u.ID,
		u.Current, u.Candidate, u.Candidate, appURL, uiURL, u.ID)
	rcv.release()

	select {
	case <-ctx.Done():
		fmt.Println()
		log.Info("stopping: tidewatch, the webhook receiver and the project")
		return nil
	case <-srv.done:
		return fmt.Errorf("tidewatch serve exited on its own; the end of %s:\n%s", logPath, tailFile(logPath, 3000))
	}
}

// takeDown runs `docker-compose down` for the demo project and removes
// any container still labelled with it.
func takeDown(bed *testbed.Bed, dir string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := bed.ComposeRun(ctx, dir, project, "down", "--volumes", "--remove-orphans", "--timeout", "2"); err != nil {
		log.Error("taking the demo project down", "error", err)
	}
	left, err := bed.ComposeRemove(ctx, project)
	if err != nil {
		log.Error("removing the demo's containers", "error", err)
	} else if len(left) > 0 {
		log.Info("removed containers that down left", "containers", left)
	}
	log.Info("took the demo project down", "project", project)
}

// serviceContainer returns the name of the project's running web container.
func serviceContainer(ctx context.Context, bed *testbed.Bed) (string, error) {
	found, err := bed.Docker().ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", testbed.ComposeLabelProject+"="+project),
		filters.Arg("label", testbed.ComposeLabelService+"="+service),
	)})
	if err != nil {
		return "", fmt.Errorf("finding the demo's container: %w", err)
	}
	if len(found) != 1 || len(found[0].Names) == 0 {
		return "", fmt.Errorf("finding the demo's container: %d running, want 1", len(found))
	}
	return strings.TrimPrefix(found[0].Names[0], "/"), nil
}

// receiver is the demo's webhook peer: it prints each payload it gets,
// holding the lines back until release, so that they follow the banner.
type receiver struct {
	url string
	srv *http.Server

	mu       sync.Mutex
	released bool
	held     []string
}

// println prints line, or holds it until release.
func (r *receiver) println(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.released {
		r.held = append(r.held, line)
		return
	}
	fmt.Println(line)
}

// release prints the lines held so far, and from now on each as it comes.
func (r *receiver) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.held {
		fmt.Println(l)
	}
	r.held, r.released = nil, true
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the webhook receiver: %w", err)
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook"}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	at := time.Now().Format("15:04:05")
	var p sdk.Payload
	if err := json.Unmarshal(body, &p); err != nil || len(p.Updates) == 0 {
		r.println(fmt.Sprintf("%s webhook ← %s %s: %s", at, req.Method, req.URL.Path, short(body)))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	for _, u := range p.Updates {
		r.println(fmt.Sprintf("%s webhook ← %s from %s: %s %s → %s (%s)", at, u.Event, p.Trigger, u.Container, u.Current, u.Candidate, u.Kind))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
}

// server is the running `tidewatch serve`.
type server struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startServe starts binary serve with env added to the demo's, its output
// appended to logPath, in its own process group: the terminal's Ctrl-C
// reaches the demo, which stops it in order.
func startServe(binary string, env []string, logPath string) (*server, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening tidewatch's log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting tidewatch serve: %w", err)
	}
	s := &server{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// stop sends SIGTERM and waits up to 30s for tidewatch to end, then kills it.
func (s *server) stop(log *slog.Logger) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		log.Info("stopped tidewatch serve", "exit", s.cmd.ProcessState.ExitCode())
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		log.Error("tidewatch serve did not stop within 30s of SIGTERM: killed it", "log", s.log)
	}
}

// waitReady waits until tidewatch answers /readyz.
func (s *server) waitReady(ctx context.Context, base string) error {
	return s.poll(ctx, 30*time.Second, "tidewatch to answer "+base+"readyz", func() (bool, error) {
		resp, err := http.Get(base + "readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("status %s", resp.Status)
	})
}

// update is a pending update as the API lists it.
type update struct {
	ID          int64  `json:"id"`
	Container   string `json:"container"`
	DisplayName string `json:"display_name"`
	Current     string `json:"current"`
	Candidate   string `json:"candidate"`
	Kind        string `json:"kind"`
}

// waitUpdate waits until tidewatch lists a pending update of container.
func (s *server) waitUpdate(ctx context.Context, base, container string) (update, error) {
	var found update
	err := s.poll(ctx, 90*time.Second, "tidewatch to find the update of "+container, func() (bool, error) {
		resp, err := http.Get(base + "api/updates")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		var body struct {
			Updates []update `json:"updates"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return false, fmt.Errorf("decoding /api/updates (%s): %w", resp.Status, err)
		}
		i := slices.IndexFunc(body.Updates, func(u update) bool { return u.Container == container })
		if i < 0 {
			return false, errors.New("not listed yet")
		}
		found = body.Updates[i]
		return true, nil
	})
	return found, err
}

// poll calls cond every 200ms until it holds, tidewatch exits, ctx ends or
// timeout passes.
func (s *server) poll(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting %s for %s: %w; the end of %s:\n%s", timeout, what, err, s.log, tailFile(s.log, 3000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-s.done:
			return fmt.Errorf("tidewatch serve exited while waiting for %s; the end of %s:\n%s", what, s.log, tailFile(s.log, 3000))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitHTTP waits until GET url answers 200 with want (spaces trimmed).
func waitHTTP(ctx context.Context, url, want string, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if resp, err := hc.Get(url); err != nil {
			last = err.Error()
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := strings.TrimSpace(string(b)); resp.StatusCode == http.StatusOK && got == want {
				return nil
			}
			last = fmt.Sprintf("%s %q", resp.Status, short(b))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s did not answer %q within %s: %s", url, want, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// short shortens a response body for an error message.
func short(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// portFree tells whether port is free on 127.0.0.1.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// tailFile returns the last n bytes of the file at path.
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}
