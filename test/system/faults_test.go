package system

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// The fault matrix: tidewatch is killed (SIGKILL, alone or together with its
// plugin processes) while a rollout is at one of its steps, then started
// again; once the rollout it resumes has ended, exactly one container of the
// service runs, on the version its compose file names (a plain container:
// under its name, on the new version when the rollout was applied, the old
// one when it was rolled back), no container is kept aside, no rollout
// record (nor lock file) is left, and the update's status and the
// delivery's report say what happened. Modes: the compose trigger's cli and
// engine, and the docker trigger (a container started with docker run).
//
// The normal test run holds one trial per step and mode (faultTrials = 1);
// `make faults` (build tag faults) runs TIDEWATCH_FAULT_TRIALS of them (20
// by default).

// faultStep is a step of a rollout at which tidewatch is killed: the fault
// points that stop it there (see triggers/rollout/fault_on.go; one per
// trial, in turn), and whether the new version fails its health check (so
// that the rollout rolls back).
type faultStep struct {
	name   string
	points []string
	sick   bool
}

// pointsFor returns the step's points in mode: a plain container has no
// compose file; its "write" is renaming the container aside (its record is
// written just before).
func (s faultStep) pointsFor(mode string) []string {
	if mode == "docker" && s.name == "write" {
		return []string{"rename:after", "rename:before"}
	}
	return s.points
}

var faultSteps = []faultStep{
	{name: "locate", points: []string{"locate:after", "locate:before"}},
	{name: "write", points: []string{"write:after", "write:before"}},
	{name: "pull", points: []string{"pull:after", "pull:before"}},
	{name: "stop", points: []string{"stop:after", "stop:before"}},
	{name: "create", points: []string{"create:after", "create:before"}},
	{name: "start", points: []string{"start:after", "start:before"}},
	{name: "health", points: []string{"health:before", "health:after"}},
	{name: "rollback", points: []string{"rollback:before", "rollback:after"}, sick: true},
}

// faultBinary is tidewatch built with the fault hook, once.
var faultBinary struct {
	once sync.Once
	path string
	err  error
}

func requireFaultBinary(t *testing.T) string {
	t.Helper()
	faultBinary.once.Do(func() {
		// Beside the package's tidewatch binary: TestMain removes the folder.
		faultBinary.path = filepath.Join(filepath.Dir(binary), "tidewatch-faulthook")
		build := exec.Command("go", "build", "-tags", "faulthook", "-o", faultBinary.path, "github.com/tidewatch/tidewatch/cmd/tidewatch")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			faultBinary.err = fmt.Errorf("building tidewatch with the fault hook: %v\n%s", err, out)
		}
	})
	if faultBinary.err != nil {
		t.Fatal(faultBinary.err)
	}
	return faultBinary.path
}

// faultImages are the images the trials roll out: good (1.0.0 → 1.1.0,
// both healthy) and sick (1.0.0 healthy → 1.1.0 unhealthy).
var faultImages struct {
	once       sync.Once
	good, sick string
}

func requireFaultImages(t *testing.T, bed *testbed.Bed) (good, sick string) {
	t.Helper()
	faultImages.once.Do(func() {
		good, sick := bed.Registry+"/"+unique("faultgood"), bed.Registry+"/"+unique("faultsick")
		bed.BuildImage(t, good+":1.0.0", testbed.AppOptions{Version: "1.0.0", Healthcheck: true})
		bed.BuildImage(t, good+":1.1.0", testbed.AppOptions{Version: "1.1.0", Healthcheck: true})
		bed.BuildImage(t, sick+":1.0.0", testbed.AppOptions{Version: "1.0.0", Healthcheck: true})
		bed.BuildImage(t, sick+":1.1.0", testbed.AppOptions{Version: "1.1.0", Healthcheck: true, Fail: testbed.FailUnhealthy})
		faultImages.good, faultImages.sick = good, sick
	})
	if faultImages.good == "" {
		t.Fatal("building the fault trials' images failed")
	}
	return faultImages.good, faultImages.sick
}

// faultTally counts the trials' outcomes, for the matrix's summary.
type faultTally struct {
	mu sync.Mutex
	m  map[string]int // "mode step kill outcome" → trials
}

func (f *faultTally) add(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]int{}
	}
	f.m[key]++
}

// TestRolloutFaults kills tidewatch at each step of a rollout, in both
// compose modes and through the docker trigger, and checks the invariants
// after its restart.
func TestRolloutFaults(t *testing.T) {
	bed := testbed.Require(t)
	cli := bed.ComposeCLI(t)
	bin := requireFaultBinary(t)
	good, sick := requireFaultImages(t, bed)
	trials := faultTrials(t)
	var tally faultTally
	t.Cleanup(func() {
		var lines []string
		for k, n := range tally.m {
			lines = append(lines, fmt.Sprintf("%s: %d", k, n))
		}
		t.Logf("fault trials (mode step kill outcome: count), %d per step and mode:\n%s", trials, strings.Join(slices.Sorted(slices.Values(lines)), "\n"))
	})
	for _, mode := range []string{"cli", "engine", "docker"} {
		for si, step := range faultSteps {
			points := step.pointsFor(mode)
			for i := range trials {
				// Alternate the point every trial and the kind of kill every
				// second one, so that four trials cover each point with
				// each kill, and one trial per step and mode still covers
				// both kills across steps.
				withPlugins := (si+i/2)%2 == 1
				point := points[i%len(points)]
				kill := "alone"
				if withPlugins {
					kill = "with-plugins"
				}
				t.Run(fmt.Sprintf("%s/%s/%s/%s/%d", mode, step.name, point, kill, i), func(t *testing.T) {
					t.Parallel()
					repo := good
					if step.sick {
						repo = sick
					}
					ft := faultTrial{mode: mode, cli: cli, repo: repo, point: point, withPlugins: withPlugins, sick: step.sick}
					var outcome string
					if mode == "docker" {
						outcome = runDockerFaultTrial(t, bed, bin, ft)
					} else {
						outcome = runFaultTrial(t, bed, bin, ft)
					}
					tally.add(fmt.Sprintf("%s %s %s %s", mode, step.name, kill, outcome))
				})
			}
		}
	}
}

// faultSpec and faultHit are the fault hook's files (a fault file written
// by the test, a hit file by the process that stopped), as
// triggers/rollout/fault_on.go reads and writes them.
type faultSpec struct {
	Point string `json:"point"`
	N     int    `json:"n,omitempty"`
	Fail  bool   `json:"fail,omitempty"`
}

type faultHit struct {
	PID   int    `json:"pid"`
	Point string `json:"point"`
}

// faultTrial is one trial's set-up.
type faultTrial struct {
	mode, cli, repo, point string
	withPlugins            bool
	sick                   bool // the new version fails its health check
}

// runFaultTrial runs one trial and returns the rollout's outcome.
func runFaultTrial(t *testing.T, bed *testbed.Bed, bin string, ft faultTrial) string {
	// A link of its own to the binary: the fault file is the executable's
	// path with ".fault" appended, the same in tidewatch and its plugin
	// processes (which get no environment), and each trial's own.
	exe := filepath.Join(t.TempDir(), "tidewatch")
	if err := os.Link(bin, exe); err != nil {
		t.Fatal(err)
	}
	faultFile := exe + ".fault"
	hitFile := faultFile + ".hit"
	spec, _ := json.Marshal(faultSpec{Point: ft.point, N: 1})
	if err := os.WriteFile(faultFile, spec, 0o600); err != nil {
		t.Fatal(err)
	}

	project := strings.ReplaceAll(unique("flt"), "-", "")
	port := freePort(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "docker-compose.yml")
	compose := fmt.Sprintf("services:\n  web:\n    image: %s:1.0.0 # pinned\n    ports: [\"127.0.0.1:%d:8080\"]\n    labels: {tidewatch.test: \"1\", tidewatch.trigger.include: compose.fault}\n", ft.repo, port)
	if err := os.WriteFile(file, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	bed.ComposeUp(t, dir, project)
	appURL := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if _, err := answer(appURL, port); errors.Is(err, errProxyLost) {
		t.Skipf("set-up: %v", err)
	} else if err != nil {
		t.Fatalf("set-up: %v", err)
	}
	name := strings.TrimPrefix(bed.ComposeContainer(t, project, "web").Name, "/")

	// The trial's tidewatch watches every container (the others' tidewatch
	// instances on the shared engine watch those labelled tidewatch.watch
	// only), and the label above keeps every trigger but compose.fault (an
	// instance of another test, another worktree) away from the service.
	env := slices.DeleteFunc(envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_COMPOSE_FAULT_AUTO=true",
		"TIDEWATCH_TRIGGER_COMPOSE_FAULT_INCLUDE="+name,
		"TIDEWATCH_TRIGGER_COMPOSE_FAULT_DOCKER_HOST="+bed.DockerHost,
		"TIDEWATCH_TRIGGER_COMPOSE_FAULT_RECREATE="+ft.mode,
		"TIDEWATCH_TRIGGER_COMPOSE_FAULT_DEADLINE=3m",
		"TIDEWATCH_TRIGGER_COMPOSE_FAULT_HEALTH_TIMEOUT=30s",
		"TIDEWATCH_TRIGGER_COMPOSE_FAULT_STABLE_FOR=2s",
	), func(kv string) bool { return strings.HasPrefix(kv, "TIDEWATCH_WATCHER_LOCAL_WATCHBYDEFAULT=") })
	if ft.mode == "cli" {
		env = append(env, "TIDEWATCH_TRIGGER_COMPOSE_FAULT_COMPOSE="+ft.cli)
	}

	first := startServeExe(t, exe, freePort(t), env)
	hit := waitHit(t, hitFile, first)
	if err := os.Remove(faultFile); err != nil {
		t.Fatal(err)
	}
	// The kill: tidewatch alone (its plugin processes must die with it), or
	// tidewatch and the process that stopped at the point together (as when
	// its container is killed).
	pids := []int{first.cmd.Process.Pid}
	if ft.withPlugins && hit.PID != first.cmd.Process.Pid {
		pids = append(pids, hit.PID)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("killing %d: %v", pid, err)
		}
	}
	<-first.done
	// A restarted tidewatch finds none of them still acting: the plugin
	// process and what it started (a compose CLI) are gone.
	waitUntil(t, 20*time.Second, "the killed tidewatch's processes to end", func() bool {
		return len(trialProcesses(exe, project)) == 0
	})

	second := startServeExe(t, exe, freePort(t), env)
	var dl faultDelivery
	waitUntil(t, 4*time.Minute, "the resumed rollout to end", func() bool {
		var ok bool
		dl, ok = settledDelivery(t, second, "compose.fault", name)
		return ok
	})
	var hist faultHistory
	second.getJSON(t, "/api/history?container="+name, &hist)
	var ups struct {
		Updates []faultUpdate `json:"updates"`
	}
	second.getJSON(t, "/api/updates?status=pending,notified,applying,applied,failed,rolled-back,dismissed", &ups)
	open := slices.DeleteFunc(ups.Updates, func(u faultUpdate) bool { return u.Container != name })
	second.stop(t)

	checkFaultInvariants(t, bed, project, dir, file, appURL, port, ft.repo, dl, hist, open)
	if t.Failed() {
		for _, st := range dl.Rollout.Steps {
			t.Logf("resumed rollout step %s: %s %s", st.Name, st.Note, st.Error)
		}
		t.Logf("tidewatch's log before the kill (stopped at %s in process %d):\n%s\nafter the restart:\n%s", hit.Point, hit.PID, first.log.String(), second.log.String())
	}
	return dl.Rollout.Outcome
}

// waitHit waits until the fault hook says where it stopped.
func waitHit(t *testing.T, hitFile string, d *daemon) faultHit {
	t.Helper()
	var hit faultHit
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if data, err := os.ReadFile(hitFile); err == nil && json.Unmarshal(data, &hit) == nil && hit.PID > 0 {
			return hit
		}
		select {
		case <-d.done:
			t.Fatalf("tidewatch exited before reaching the fault point:\n%s", d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rollout never reached the fault point within 3m:\n%s", d.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// trialProcesses returns the processes still running the trial's binary,
// or naming its compose project (a compose CLI).
func trialProcesses(exe, project string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(strings.TrimSpace(string(stat[i+1:])), "Z") {
			continue // a zombie: dead, not yet reaped by its parent
		}
		if target, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && strings.TrimSuffix(target, " (deleted)") == exe {
			pids = append(pids, pid)
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.Contains(string(cmdline), "\x00"+project+"\x00") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// faultDelivery is what the trials read of a delivery.
type faultDelivery struct {
	ID      int64  `json:"id"`
	Trigger string `json:"trigger"`
	Event   string `json:"event"`
	Status  string `json:"status"`
	Rollout *struct {
		Outcome    string `json:"outcome"`
		FailedStep string `json:"failed_step"`
		Reason     string `json:"reason"`
		Steps      []struct {
			Name  string `json:"name"`
			Error string `json:"error"`
			Note  string `json:"note"`
		} `json:"steps"`
	} `json:"rollout"`
	LastError string `json:"last_error"`
	Update    *struct {
		ID        int64  `json:"id"`
		Container string `json:"container"`
		Candidate string `json:"candidate"`
		Status    string `json:"status"`
	} `json:"update"`
}

// faultUpdate is what the trials read of an open update.
type faultUpdate struct {
	ID        int64  `json:"id"`
	Container string `json:"container"`
	Status    string `json:"status"`
}

// faultHistory is what the trials read of the history.
type faultHistory struct {
	Events []struct {
		Kind   string `json:"kind"`
		Detail string `json:"detail"`
	} `json:"events"`
}

// settledDelivery returns trigger's delivery of the update of container,
// once it has ended (delivered or failed, with a report).
func settledDelivery(t *testing.T, d *daemon, trigger, container string) (faultDelivery, bool) {
	t.Helper()
	resp, err := http.Get(d.base + "/api/deliveries?trigger=" + trigger)
	if err != nil {
		return faultDelivery{}, false
	}
	defer resp.Body.Close()
	var body struct {
		Deliveries []faultDelivery `json:"deliveries"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return faultDelivery{}, false
	}
	for _, dl := range body.Deliveries {
		if dl.Update == nil || dl.Update.Container != container {
			continue
		}
		if (dl.Status == "delivered" || dl.Status == "failed") && dl.Rollout != nil {
			return dl, true
		}
	}
	return faultDelivery{}, false
}

// checkFaultInvariants checks what a rollout, however interrupted, must
// leave once it has ended.
func checkFaultInvariants(t *testing.T, bed *testbed.Bed, project, dir, file, appURL string, port int, repo string, dl faultDelivery, hist faultHistory, open []faultUpdate) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := bed.Docker().ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", "com.docker.compose.project="+project), filters.Arg("label", "com.docker.compose.service=web"))})
	if err != nil {
		t.Fatal(err)
	}
	var running []container.Summary
	for _, c := range list {
		for _, n := range c.Names {
			if strings.HasSuffix(n, "-tidewatch-old") {
				t.Errorf("container %s (%s, %s) is still kept aside after the rollout ended", n, c.ID[:12], c.State)
			}
		}
		if c.State == "running" {
			running = append(running, c)
		}
	}
	if len(running) != 1 {
		var what []string
		for _, c := range list {
			what = append(what, fmt.Sprintf("%v %s %s", c.Names, c.Image, c.State))
		}
		t.Fatalf("%d containers of the service run, want 1: %s", len(running), strings.Join(what, "; "))
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fileVersion := ""
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if strings.Contains(string(data), repo+":"+v+" # pinned") {
			fileVersion = v
		}
	}
	if fileVersion == "" {
		t.Fatalf("the compose file names neither version, or lost its comment:\n%s", data)
	}
	if got := running[0].Image; got != repo+":"+fileVersion {
		t.Errorf("the service runs %s, the file names %s:%s", got, repo, fileVersion)
	}
	if running[0].State != "running" || !strings.Contains(running[0].Status, "(healthy)") {
		t.Errorf("the service's container is %s, %s; want running and healthy", running[0].State, running[0].Status)
	}
	switch got, err := answer(appURL, port); {
	case errors.Is(err, errProxyLost):
		t.Logf("not checked over HTTP: %v", err)
	case err != nil:
		t.Errorf("the service does not answer: %v", err)
	case got != fileVersion:
		t.Errorf("the service answers %q, the file names %s", got, fileVersion)
	}
	if recs, _ := filepath.Glob(filepath.Join(dir, ".tidewatch-rollout-*")); len(recs) > 0 {
		t.Errorf("rollout records or lock files left after the rollout ended: %v", recs)
	}
	wantOutcome, wantStatus, wantEvent := "applied", "applied", "update-applied"
	if fileVersion == "1.0.0" {
		wantOutcome, wantStatus, wantEvent = "rolled-back", "rolled-back", "update-rolled-back"
	}
	switch got := dl.Rollout.Outcome; {
	case got == wantOutcome, got == "already-applied" && wantOutcome == "applied":
	default:
		t.Errorf("the delivery reports %q (failed step %q: %s; error %q), but the service runs %s", got, dl.Rollout.FailedStep, dl.Rollout.Reason, dl.LastError, fileVersion)
	}
	var outcomes []string
	for _, e := range hist.Events {
		switch e.Kind {
		case "update-applied", "update-rolled-back", "update-failed":
			outcomes = append(outcomes, e.Kind)
		}
	}
	if len(outcomes) != 1 || outcomes[0] != wantEvent {
		t.Errorf("the history records the outcomes %q, want one %s (the service runs %s)", outcomes, wantEvent, fileVersion)
	}
	// While the broken version ran, the history never said the update was
	// resolved, and the rollback's status landed on the update applied,
	// which stays the container's one open update (not a new row).
	if wantOutcome == "rolled-back" {
		for _, e := range hist.Events {
			if e.Kind == "resolved" {
				t.Errorf("the history records %q (%s) for a rollout that was rolled back", e.Kind, e.Detail)
			}
		}
		if len(open) != 1 || open[0].ID != dl.Update.ID || open[0].Status != "rolled-back" {
			t.Errorf("the container's open updates are %+v, want update %d alone, rolled-back", open, dl.Update.ID)
		}
	}
	if dl.Update.Status != wantStatus {
		t.Errorf("the update's status is %q, want %s (the service runs %s)", dl.Update.Status, wantStatus, fileVersion)
	}
}

// errProxyLost: the engine has no docker-proxy listening on a port it
// published for a running container. The shared test engine (Debian's
// 20.10) loses one now and then when many tests create and remove
// containers at once, whatever tidewatch does; a trial that meets it says so.
var errProxyLost = errors.New("the engine's docker-proxy for the published port is gone")

// answer waits up to 30s for url to answer 200 and returns its body,
// trimmed; errProxyLost when nothing listens on port and no docker-proxy
// process serves it.
func answer(url string, port int) (string, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := hc.Get(url)
		if err != nil {
			last = err
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			return strings.TrimSpace(string(body)), nil
		}
		last = fmt.Errorf("status %d, %v", resp.StatusCode, err)
	}
	if !proxyFor(port) {
		return "", fmt.Errorf("GET %s: %v: %w", url, last, errProxyLost)
	}
	return "", fmt.Errorf("GET %s: no 200 within 30s: %v", url, last)
}

// proxyFor reports whether a docker-proxy process serves host port port.
func proxyFor(port int) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), "docker-proxy") && strings.Contains(string(cmdline), "-host-port\x00"+strconv.Itoa(port)+"\x00") {
			return true
		}
	}
	return false
}

// faultTrialsEnv is how many trials per step and mode `make faults` runs.
const faultTrialsEnv = "TIDEWATCH_FAULT_TRIALS"

// trialsFromEnv reads TIDEWATCH_FAULT_TRIALS, def when unset.
func trialsFromEnv(t *testing.T, def int) int {
	v := os.Getenv(faultTrialsEnv)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a whole number of trials, 1 or more", faultTrialsEnv, v)
	}
	return n
}
