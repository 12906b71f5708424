package system

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// TestFailedRollbackRepaired: a rollout (compose in engine mode and through
// the compose CLI, and the docker trigger's) whose new version is sick, and whose rollback fails (the engine refuses to remove
// the sick container: a fault point), leaves the service down, reported
// update-failed to the person once. tidewatch, restarted with the engine
// still refusing, tries the rollback again at start-up and fails again,
// telling no one again; once the engine accepts, its next try (a minute
// later) brings the previous version back without another rollout: one
// container of the service runs, under its name, on the old version,
// healthy (the previous container itself, but through the compose CLI,
// which recreates it); nothing is kept aside; no record or lock file is left; the
// history and the person hear update-rolled-back, once.
func TestFailedRollbackRepaired(t *testing.T) {
	bed := testbed.Require(t)
	bin := requireFaultBinary(t)
	_, sick := requireFaultImages(t, bed)
	for _, mode := range []string{"compose", "cli", "docker"} {
		t.Run(mode, func(t *testing.T) { testFailedRollbackRepaired(t, bed, bin, sick, mode) })
	}
}

// testFailedRollbackRepaired runs TestFailedRollbackRepaired through the
// compose trigger in engine mode (mode "compose") or through the compose
// CLI ("cli"), or through the docker trigger ("docker").
func testFailedRollbackRepaired(t *testing.T, bed *testbed.Bed, bin, sick, mode string) {
	cli := ""
	if mode == "cli" {
		cli, mode = bed.ComposeCLI(t), "compose"
	}
	exe := filepath.Join(t.TempDir(), "tidewatch")
	if err := os.Link(bin, exe); err != nil {
		t.Fatal(err)
	}
	faultFile := exe + ".fault"
	spec, _ := json.Marshal(faultSpec{Point: "remove:before", N: 1, Fail: true})
	if err := os.WriteFile(faultFile, spec, 0o600); err != nil {
		t.Fatal(err)
	}

	project := strings.ReplaceAll(unique("rep"), "-", "")
	port := freePort(t)
	dir := t.TempDir() // the compose project's folder, or the docker trigger's STATE_DIR
	file := filepath.Join(dir, "docker-compose.yml")
	compose := fmt.Sprintf("services:\n  web:\n    image: %s:1.0.0 # pinned\n    ports: [\"127.0.0.1:%d:8080\"]\n    labels: {tidewatch.test: \"1\", tidewatch.watch: \"true\"}\n", sick, port)
	var name, beforeID string
	trigger := "compose.repair"
	if mode == "compose" {
		if err := os.WriteFile(file, []byte(compose), 0o644); err != nil {
			t.Fatal(err)
		}
		bed.ComposeUp(t, dir, project)
		before := bed.ComposeContainer(t, project, "web")
		name, beforeID = strings.TrimPrefix(before.Name, "/"), before.ID
	} else {
		trigger = "docker.repair"
		name = project
		runPlain(t, bed, name, sick+":1.0.0", port, nil)
		beforeID = bed.Inspect(t, name).ID
	}
	appURL := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if _, err := answer(appURL, port); err != nil {
		t.Fatalf("set-up: %v", err)
	}

	rcv := newReceiver(t)
	env := envFor(t, bed.DockerHost,
		// One check at start-up, none after: the test decides what runs.
		"TIDEWATCH_WATCHER_LOCAL_CRON=@every 24h",
		"TIDEWATCH_WATCHER_LOCAL_JITTER=0",
		"TIDEWATCH_WATCHER_LOCAL_WATCHEVENTS=false",
		"TIDEWATCH_TRIGGER_"+strings.ToUpper(mode)+"_REPAIR_AUTO=true",
		"TIDEWATCH_TRIGGER_"+strings.ToUpper(mode)+"_REPAIR_INCLUDE="+name,
		"TIDEWATCH_TRIGGER_"+strings.ToUpper(mode)+"_REPAIR_DOCKER_HOST="+bed.DockerHost,
		"TIDEWATCH_TRIGGER_"+strings.ToUpper(mode)+"_REPAIR_DEADLINE=3m",
		"TIDEWATCH_TRIGGER_"+strings.ToUpper(mode)+"_REPAIR_HEALTH_TIMEOUT=20s",
		"TIDEWATCH_TRIGGER_"+strings.ToUpper(mode)+"_REPAIR_STABLE_FOR=2s",
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_URL="+rcv.srv.URL,
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_EVENTS=update-failed,update-rolled-back",
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_INCLUDE="+name,
	)
	switch {
	case cli != "":
		env = append(env, "TIDEWATCH_TRIGGER_COMPOSE_REPAIR_RECREATE=cli", "TIDEWATCH_TRIGGER_COMPOSE_REPAIR_COMPOSE="+cli)
	case mode == "compose":
		env = append(env, "TIDEWATCH_TRIGGER_COMPOSE_REPAIR_RECREATE=engine")
	default:
		env = append(env, "TIDEWATCH_TRIGGER_DOCKER_REPAIR_STATE_DIR="+dir)
	}
	heard := func() []string {
		var events []string
		for _, rq := range forContainer(t, rcv.got(), name) {
			events = append(events, payloadFor(t, rq).Event)
		}
		return events
	}

	first := startServeExe(t, exe, freePort(t), env)
	var dl faultDelivery
	waitUntil(t, 3*time.Minute, "the rollout to fail", func() bool {
		var ok bool
		dl, ok = settledDelivery(t, first, trigger, name)
		return ok
	})
	if dl.Rollout.Outcome != "failed" || dl.Status != "failed" {
		t.Fatalf("the rollout ended %s (%s): %s; want failed, its rollback refused", dl.Rollout.Outcome, dl.Status, dl.LastError)
	}
	waitUntil(t, time.Minute, "the person to hear of the failure", func() bool { return len(heard()) > 0 })
	first.stop(t)
	if recs, _ := filepath.Glob(filepath.Join(dir, ".tidewatch-rollout-*.json")); len(recs) != 1 {
		t.Fatalf("rollout records after the failed rollback: %v, want one", recs)
	}

	// Restarted, the engine still refusing: tried at start-up, failed
	// again, no one told again.
	second := startServeExe(t, exe, freePort(t), env)
	waitUntil(t, 2*time.Minute, "a try at start-up that fails again", func() bool {
		return strings.Contains(second.log.String(), "rollback failed again")
	})
	if got := heard(); len(got) != 1 || got[0] != "update-failed" {
		t.Fatalf("the person heard %q, want update-failed once", got)
	}

	// The engine accepts again: the next try brings the service back.
	if err := os.Remove(faultFile); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 3*time.Minute, "the person to hear that the service is back", func() bool { return len(heard()) >= 2 })
	var hist faultHistory
	second.getJSON(t, "/api/history?container="+name, &hist)
	settled, _ := settledDelivery(t, second, trigger, name)
	second.stop(t)

	if got := heard(); len(got) != 2 || got[0] != "update-failed" || got[1] != "update-rolled-back" {
		t.Errorf("the person heard %q, want update-failed, then update-rolled-back", got)
	}
	var outcomes []string
	for _, e := range hist.Events {
		switch e.Kind {
		case "update-applied", "update-rolled-back", "update-failed":
			outcomes = append(outcomes, e.Kind)
			if e.Kind == "update-rolled-back" && !strings.Contains(e.Detail, "settled") {
				t.Errorf("the history's update-rolled-back says %q, want it to say the failed rollout was settled", e.Detail)
			}
		}
	}
	if strings.Join(outcomes, ",") != "update-rolled-back,update-failed" { // newest first
		t.Errorf("the history records %q (newest first), want update-failed, then update-rolled-back", outcomes)
	}
	if settled.Update == nil || settled.Update.Status != "rolled-back" {
		t.Errorf("the update is %+v, want rolled-back", settled.Update)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", "com.docker.compose.project="+project), filters.Arg("label", "com.docker.compose.service=web"))
	if mode == "docker" {
		f = filters.NewArgs(filters.Arg("name", name))
	}
	list, err := bed.Docker().ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	var what []string
	running := 0
	for _, c := range list {
		what = append(what, fmt.Sprintf("%v %s %s %s", c.Names, c.Image, c.State, c.Status))
		if c.State == "running" {
			running++
			if (c.ID != beforeID && cli == "") || c.Names[0] != "/"+name || c.Image != sick+":1.0.0" || !strings.Contains(c.Status, "(healthy)") {
				t.Errorf("the running container is %v %s (%s, %s), want %s %s:1.0.0, the previous one, healthy", c.Names, c.ID[:12], c.Image, c.Status, name, sick)
			}
		}
	}
	if running != 1 || len(list) != 1 {
		t.Errorf("containers of the service: %s; want the previous one alone, running", strings.Join(what, "; "))
	}
	if got, err := answer(appURL, port); err != nil || got != "1.0.0" {
		t.Errorf("the service answers %q (%v), want 1.0.0", got, err)
	}
	if data, _ := os.ReadFile(file); mode == "compose" && string(data) != compose {
		t.Errorf("the compose file after the repair:\n%s\nwant byte for byte:\n%s", data, compose)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".tidewatch-rollout-*")); len(left) > 0 {
		t.Errorf("left in %s: %v, want no record and no lock file", dir, left)
	}
}
