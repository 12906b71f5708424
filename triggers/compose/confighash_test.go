package compose

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// composeV2 returns the docker CLI when its compose v2 plugin works, and
// skips the test otherwise.
func composeV2(t *testing.T) string {
	t.Helper()
	docker, err := exec.LookPath("docker")
	if err == nil {
		err = exec.Command(docker, "compose", "version", "--short").Run()
	}
	if err != nil {
		t.Skipf("needs the compose v2 CLI (docker compose): %v", err)
	}
	return docker
}

// TestEngineLeavesComposeHashCurrent: after an engine-mode rollout the
// container carries the config hash compose itself computes for the
// rewritten file, so that a plain `docker compose up -d` afterwards finds
// the service up to date and leaves it alone (no second recreate).
func TestEngineLeavesComposeHashCurrent(t *testing.T) {
	bed := testbed.Require(t)
	docker := composeV2(t)
	repo := requireImages(t, bed)
	dir := t.TempDir()
	port := freePort(t)
	name := unique("twchash")
	file := filepath.Join(dir, "compose.yaml")
	body := fmt.Sprintf("services:\n  web:\n    image: %s:%s\n    ports: [\"127.0.0.1:%d:8080\"]\n    labels: {tidewatch.test: \"1\"}\n", repo, vGood, port)
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, docker, append([]string{"compose", "-p", name, "-f", file}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+bed.DockerHost)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { compose("down", "--timeout", "1") })
	compose("up", "-d")
	p := &project{bed: bed, repo: repo, name: name, dir: dir, file: file, original: []byte(body), urls: map[string]string{"web": fmt.Sprintf("http://127.0.0.1:%d/", port)}}
	p.checkAnswers(t, "web", vGood)

	plugin, _ := triggertest.Start(t, "compose", options(bed, RecreateEngine))
	r, rep := fire(t, plugin, p.update(t, "web", vNext))
	if r.Err != nil || rep.Outcome != OutcomeApplied {
		t.Fatalf("result: err %v, outcome %q; want applied", r.Err, rep.Outcome)
	}
	rolled := p.container(t, "web")
	want := strings.Fields(compose("config", "--hash", "web"))
	if len(want) != 2 || rolled.Config.Labels["com.docker.compose.config-hash"] != want[1] {
		t.Errorf("the rolled-out container's config hash is %q; compose computes %q for the rewritten file",
			rolled.Config.Labels["com.docker.compose.config-hash"], want)
	}
	compose("up", "-d")
	if after := p.container(t, "web"); after.ID != rolled.ID {
		t.Errorf("docker compose up -d after the rollout recreated the service (%s → %s): the container's labels were stale", rolled.ID[:12], after.ID[:12])
	}
	p.checkAnswers(t, "web", vNext)
}
