package system

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/go-connections/nat"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// runDockerFaultTrial runs one trial of the docker trigger (a container
// started as docker run starts it) and returns the rollout's outcome.
func runDockerFaultTrial(t *testing.T, bed *testbed.Bed, bin string, ft faultTrial) string {
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

	name := strings.ReplaceAll(unique("fltd"), "-", "")
	port := freePort(t)
	runPlain(t, bed, name, ft.repo+":1.0.0", port, map[string]string{"tidewatch.trigger.include": "docker.fault"})
	appURL := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if _, err := answer(appURL, port); errors.Is(err, errProxyLost) {
		t.Skipf("set-up: %v", err)
	} else if err != nil {
		t.Fatalf("set-up: %v", err)
	}
	stateDir := t.TempDir()

	env := slices.DeleteFunc(envFor(t, bed.DockerHost,
		"TIDEWATCH_TRIGGER_DOCKER_FAULT_AUTO=true",
		"TIDEWATCH_TRIGGER_DOCKER_FAULT_INCLUDE="+name,
		"TIDEWATCH_TRIGGER_DOCKER_FAULT_DOCKER_HOST="+bed.DockerHost,
		"TIDEWATCH_TRIGGER_DOCKER_FAULT_DEADLINE=3m",
		"TIDEWATCH_TRIGGER_DOCKER_FAULT_HEALTH_TIMEOUT=30s",
		"TIDEWATCH_TRIGGER_DOCKER_FAULT_STABLE_FOR=2s",
		"TIDEWATCH_TRIGGER_DOCKER_FAULT_STATE_DIR="+stateDir,
	), func(kv string) bool { return strings.HasPrefix(kv, "TIDEWATCH_WATCHER_LOCAL_WATCHBYDEFAULT=") })

	first := startServeExe(t, exe, freePort(t), env)
	hit := waitHit(t, hitFile, first)
	if err := os.Remove(faultFile); err != nil {
		t.Fatal(err)
	}
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
	waitUntil(t, 20*time.Second, "the killed tidewatch's processes to end", func() bool {
		return len(trialProcesses(exe, name)) == 0
	})

	second := startServeExe(t, exe, freePort(t), env)
	var dl faultDelivery
	waitUntil(t, 4*time.Minute, "the resumed rollout to end", func() bool {
		var ok bool
		dl, ok = settledDelivery(t, second, "docker.fault", name)
		return ok
	})
	var hist faultHistory
	second.getJSON(t, "/api/history?container="+name, &hist)
	second.stop(t)

	checkDockerFaultInvariants(t, bed, name, stateDir, appURL, port, ft, dl, hist)
	if t.Failed() {
		for _, st := range dl.Rollout.Steps {
			t.Logf("resumed rollout step %s: %s %s", st.Name, st.Note, st.Error)
		}
		t.Logf("tidewatch's log before the kill (stopped at %s in process %d):\n%s\nafter the restart:\n%s", hit.Point, hit.PID, first.log.String(), second.log.String())
	}
	return dl.Rollout.Outcome
}

// runPlain starts a container as `docker run -d --name name -p
// 127.0.0.1:port:8080 --label … img` would, with the test bed's labels;
// whatever then runs under name (or is kept aside under it) is removed when
// the test ends.
func runPlain(t *testing.T, bed *testbed.Bed, name, img string, port int, labels map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bed.PullImage(t, img)
	all := map[string]string{testbed.LabelTest: "1", testbed.LabelBed: bed.State.ID, "tidewatch.watch": "true"}
	for k, v := range labels {
		all[k] = v
	}
	p := nat.Port("8080/tcp")
	cfg := &container.Config{Image: img, Labels: all, ExposedPorts: nat.PortSet{p: {}}}
	host := &container.HostConfig{PortBindings: nat.PortMap{p: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(port)}}},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}}
	cli := bed.Docker()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, n := range []string{name, name + "-tidewatch-old"} {
			_ = cli.ContainerRemove(ctx, n, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}
	})
	created, err := cli.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
}

// checkDockerFaultInvariants checks what a docker-trigger rollout, however
// interrupted, must leave once it has ended: one container under the
// name, running and healthy, on the new version when the rollout was
// applied, the old one when it was rolled back (a sick new version is
// rolled back, a good one applied); none kept aside; no record or lock
// file; the delivery, the update and the history saying what happened.
func checkDockerFaultInvariants(t *testing.T, bed *testbed.Bed, name, stateDir, appURL string, port int, ft faultTrial, dl faultDelivery, hist faultHistory) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := bed.Docker().ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		t.Fatal(err)
	}
	var mine []container.Summary
	for _, c := range list {
		for _, n := range c.Names {
			if n == "/"+name || n == "/"+name+"-tidewatch-old" {
				mine = append(mine, c)
			}
			if n == "/"+name+"-tidewatch-old" {
				t.Errorf("container %s (%s, %s) is still kept aside after the rollout ended", n, c.ID[:12], c.State)
			}
		}
	}
	wantOutcome, wantVersion, wantEvent := "applied", "1.1.0", "update-applied"
	if ft.sick {
		wantOutcome, wantVersion, wantEvent = "rolled-back", "1.0.0", "update-rolled-back"
	}
	if len(mine) != 1 || mine[0].Names[0] != "/"+name {
		var what []string
		for _, c := range mine {
			what = append(what, fmt.Sprintf("%v %s %s", c.Names, c.Image, c.State))
		}
		t.Fatalf("containers: %s; want %s alone", strings.Join(what, "; "), name)
	}
	c := mine[0]
	if c.State != "running" || !strings.Contains(c.Status, "(healthy)") {
		t.Errorf("%s is %s, %s; want running and healthy", name, c.State, c.Status)
	}
	if c.Image != ft.repo+":"+wantVersion {
		t.Errorf("%s runs %s, want %s:%s", name, c.Image, ft.repo, wantVersion)
	}
	switch got, err := answer(appURL, port); {
	case errors.Is(err, errProxyLost):
		t.Logf("not checked over HTTP: %v", err)
	case err != nil:
		t.Errorf("the container does not answer: %v", err)
	case got != wantVersion:
		t.Errorf("the container answers %q, want %s", got, wantVersion)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir, "*")); len(left) > 0 {
		t.Errorf("left in STATE_DIR after the rollout ended: %v", left)
	}
	if got := dl.Rollout.Outcome; got != wantOutcome && (got != "already-applied" || wantOutcome != "applied") {
		t.Errorf("the delivery reports %q (failed step %q: %s; error %q), want %s", got, dl.Rollout.FailedStep, dl.Rollout.Reason, dl.LastError, wantOutcome)
	}
	var outcomes []string
	for _, e := range hist.Events {
		switch e.Kind {
		case "update-applied", "update-rolled-back", "update-failed":
			outcomes = append(outcomes, e.Kind)
		}
	}
	if len(outcomes) != 1 || outcomes[0] != wantEvent {
		t.Errorf("the history records the outcomes %q, want one %s", outcomes, wantEvent)
	}
	if dl.Update.Status != wantOutcome {
		t.Errorf("the update's status is %q, want %s", dl.Update.Status, wantOutcome)
	}
}
