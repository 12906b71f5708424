package system

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// fastHealth replaces the image's HEALTHCHECK (every 30s) with one every
// second, so that a self-update's health gate takes seconds.
const fastHealth = `HEALTHCHECK --interval=1s --timeout=3s --start-period=20s --retries=3 CMD ["/tidewatch", "healthcheck"]`

// TestSelfUpdate runs tidewatch as a container (the Dockerfile's image on
// 1.0.0) with an automatic docker trigger that includes its own container.
// It finds 1.1.0 of its own image, and a helper container recreates it:
// the new tidewatch runs 1.1.0 with every setting of the old container
// (environment, labels, socket, volume, network) and the new image's
// healthcheck, and it finishes the delivery the old one started: the
// history says update-applied and a webhook hears it. Then 1.2.0, whose
// healthcheck fails, is rolled back: the 1.1.0 container runs again (the
// same one), and it reports update-rolled-back.
func TestSelfUpdate(t *testing.T) {
	bed := testbed.Require(t)
	sock, ok := strings.CutPrefix(bed.DockerHost, "unix://")
	if !ok {
		t.Skipf("the engine is not on a unix socket (%s): nothing to mount", bed.DockerHost)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cli := bed.Docker()
	repo := bed.Registry + "/" + unique("tidewatch-self")
	buildTidewatch(t, cli, repo+":1.0.0", fastHealth)
	buildTidewatch(t, cli, repo+":1.1.0", fastHealth+"\nLABEL org.example.release=1.1.0")

	vol := unique("tidewatch-data")
	if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: vol, Labels: map[string]string{testbed.LabelTest: "1"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.VolumeRemove(context.Background(), vol, true) })
	name := unique("tidewatch-self")
	port := freePort(t)
	rcv := newReceiver(t)
	env := []string{
		"TIDEWATCH_SERVER_ADDRESS=127.0.0.1", fmt.Sprintf("TIDEWATCH_SERVER_PORT=%d", port),
		"TIDEWATCH_WATCHER_LOCAL_SOCKET=/var/run/docker.sock",
		"TIDEWATCH_WATCHER_LOCAL_WATCHBYDEFAULT=false",
		"TIDEWATCH_TRIGGER_DOCKER_SELF_INCLUDE=" + name,
		"TIDEWATCH_TRIGGER_DOCKER_SELF_HEALTH_TIMEOUT=60s",
		"TIDEWATCH_TRIGGER_DOCKER_SELF_STABLE_FOR=1s",
		"TIDEWATCH_TRIGGER_DOCKER_SELF_DEADLINE=4m",
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_URL=" + rcv.srv.URL,
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_EVENTS=update-applied,update-rolled-back",
		"TIDEWATCH_TRIGGER_WEBHOOK_ONCALL_INCLUDE=" + name,
	}
	// Host networking: tidewatch reaches the bed's registry and the
	// webhook receiver on 127.0.0.1, and the test reaches its API there.
	created, err := cli.ContainerCreate(ctx,
		&container.Config{Image: repo + ":1.0.0", Env: env,
			Labels: map[string]string{testbed.LabelTest: "1", testbed.LabelBed: bed.State.ID, "tidewatch.watch": "true", "org.example.role": "updater"}},
		&container.HostConfig{
			NetworkMode:   "host",
			Binds:         []string{sock + ":/var/run/docker.sock"},
			Mounts:        []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/data"}},
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeSelfUpdate(t, cli, name) })
	logsOnFailure(t, cli, name)
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	old := bed.Inspect(t, created.ID)

	// 1.0.0 → 1.1.0: applied, reported by the new tidewatch.
	waitUntil(t, 5*time.Minute, "the webhook to hear update-applied", func() bool { return eventsHeard(t, rcv, name, "update-applied") > 0 })
	now := bed.Inspect(t, name)
	if now.ID == old.ID || now.Config.Image != repo+":1.1.0" || !now.State.Running {
		t.Fatalf("tidewatch's container after the self-update: %s on %s, running %v; want a new container on 1.1.0", now.ID[:12], now.Config.Image, now.State.Running)
	}
	p := firstPayload(t, rcv, name, "update-applied")
	if p.Updates[0].Candidate != "1.1.0" {
		t.Errorf("update-applied payload = %+v, want the update to 1.1.0", p)
	}
	// Everything the container was given is kept; the image's own from the new image.
	for _, e := range env {
		if !slices.Contains(now.Config.Env, e) {
			t.Errorf("the new container lost its environment entry %q", e)
		}
	}
	if now.Config.Labels["org.example.role"] != "updater" || now.Config.Labels["org.example.release"] != "1.1.0" {
		t.Errorf("labels %v: want its own kept and the new image's added", now.Config.Labels)
	}
	if now.HostConfig.NetworkMode != "host" || !slices.Equal(now.HostConfig.Binds, old.HostConfig.Binds) || now.HostConfig.RestartPolicy != old.HostConfig.RestartPolicy {
		t.Errorf("host config: network %s, binds %v, restart %v; want those of the old container", now.HostConfig.NetworkMode, now.HostConfig.Binds, now.HostConfig.RestartPolicy)
	}
	if bed.VolumeAt(t, now.ID, "/data") != vol {
		t.Errorf("the new container's /data is not volume %s", vol)
	}
	for _, n := range []string{name + rollout.ArchiveSuffix, name + rollout.HelperSuffix} {
		if _, err := cli.ContainerInspect(ctx, n); err == nil {
			t.Errorf("container %s is left after the self-update", n)
		}
	}
	var h struct {
		Events []struct {
			Kind   string `json:"kind"`
			Detail string `json:"detail"`
		} `json:"events"`
	}
	getJSON(t, base+"/api/history?kind=update-applied&container="+name, &h)
	if len(h.Events) != 1 || !strings.Contains(h.Events[0].Detail, "docker self-update") {
		t.Errorf("history of update-applied = %+v, want one event from the self-update", h.Events)
	}
	// One delivery: the one the old tidewatch started and was stopped in,
	// resumed with its key by the new one, which found the helper's outcome.
	var ds struct {
		Deliveries []struct {
			Candidate string `json:"candidate"`
			Status    string `json:"status"`
			Rollout   struct {
				Outcome string `json:"outcome"`
				Steps   []struct {
					Name string `json:"name"`
				} `json:"steps"`
			} `json:"rollout"`
		} `json:"deliveries"`
	}
	getJSON(t, base+"/api/deliveries?trigger=docker.self", &ds)
	if len(ds.Deliveries) != 1 || ds.Deliveries[0].Status != "delivered" || ds.Deliveries[0].Rollout.Outcome != "applied" {
		t.Fatalf("deliveries of docker.self = %+v, want the one delivery of 1.1.0, delivered, applied", ds.Deliveries)
	}
	var steps []string
	for _, s := range ds.Deliveries[0].Rollout.Steps {
		steps = append(steps, s.Name)
	}
	// This process's inspect, then the helper's steps.
	if want := []string{"inspect", "inspect", rollout.StepRecreate, rollout.StepHealth, rollout.StepCleanup}; !slices.Equal(steps, want) {
		t.Errorf("the delivery's steps %q, want %q", steps, want)
	}

	// 1.1.0 → 1.2.0, whose healthcheck fails: rolled back to the 1.1.0 container.
	buildTidewatch(t, cli, repo+":1.2.0", `HEALTHCHECK --interval=1s --timeout=3s --retries=2 CMD ["/tidewatch", "no-such-command"]`)
	before := bed.Inspect(t, name)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/containers/local/"+name+"/watch", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	waitUntil(t, 5*time.Minute, "the webhook to hear update-rolled-back", func() bool { return eventsHeard(t, rcv, name, "update-rolled-back") > 0 })
	after := bed.Inspect(t, name)
	if after.ID != before.ID || !after.State.Running || after.Config.Image != repo+":1.1.0" {
		t.Errorf("tidewatch's container after the rollback: %s on %s, running %v; want %s on 1.1.0 back", after.ID[:12], after.Config.Image, after.State.Running, before.ID[:12])
	}
	p = firstPayload(t, rcv, name, "update-rolled-back")
	if d := p.Updates[0].Detail; p.Updates[0].Candidate != "1.2.0" || !strings.Contains(d, "health") {
		t.Errorf("update-rolled-back payload = %+v, want the update to 1.2.0, failed at its health check", p)
	}
	getJSON(t, base+"/api/history?kind=update-rolled-back&container="+name, &h)
	if len(h.Events) != 1 || !strings.Contains(h.Events[0].Detail, "unhealthy") {
		t.Errorf("history of update-rolled-back = %+v, want one event saying the new container was unhealthy", h.Events)
	}
	for _, n := range []string{name + rollout.ArchiveSuffix, name + rollout.HelperSuffix} {
		if _, err := cli.ContainerInspect(ctx, n); err == nil {
			t.Errorf("container %s is left after the rollback", n)
		}
	}
}

// buildTidewatch builds the Dockerfile, with extra lines appended, around
// the test binary and pushes it to ref in the bed's registry.
func buildTidewatch(t *testing.T, cli *client.Client, ref, extra string) {
	t.Helper()
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile = append(dockerfile, []byte("\n"+extra+"\n")...)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
		mode int64
	}{{"Dockerfile", dockerfile, 0o644}, {"bin/tidewatch", readFile(t, binary), 0o755}, {"bin/ca-certificates.crt", readFile(t, "/etc/ssl/certs/ca-certificates.crt"), 0o644}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true, Version: build.BuilderV1})
	if err != nil {
		t.Fatalf("building %s: %v", ref, err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(out, []byte(`"errorDetail"`)) {
		t.Fatalf("building %s failed:\n%s", ref, out)
	}
	rc, err := cli.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: base64.URLEncoding.EncodeToString([]byte("{}"))})
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	out, _ = io.ReadAll(rc)
	rc.Close()
	if bytes.Contains(out, []byte(`"errorDetail"`)) {
		t.Fatalf("pushing %s failed:\n%s", ref, out)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventsHeard counts the webhook requests about container with event.
func eventsHeard(t *testing.T, rcv *receiver, container, event string) int {
	t.Helper()
	n := 0
	for _, rq := range forContainer(t, rcv.got(), container) {
		if payloadFor(t, rq).Event == event {
			n++
		}
	}
	return n
}

func firstPayload(t *testing.T, rcv *receiver, container, event string) sdk.Payload {
	t.Helper()
	for _, rq := range forContainer(t, rcv.got(), container) {
		if p := payloadFor(t, rq); p.Event == event {
			return p
		}
	}
	t.Fatalf("no %s payload about %s", event, container)
	return sdk.Payload{}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// logsOnFailure prints the logs of tidewatch's containers (old, new, kept
// aside) and of its helper when the test fails.
func logsOnFailure(t *testing.T, cli *client.Client, name string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		list, _ := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", name))})
		for _, c := range list {
			rc, err := cli.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "80"})
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			t.Logf("logs of %v (%s, %s):\n%s", c.Names, c.Image, c.State, b)
		}
	})
}

// removeSelfUpdate removes tidewatch's containers and its helper.
func removeSelfUpdate(t *testing.T, cli *client.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range []string{name, name + rollout.ArchiveSuffix, name + rollout.HelperSuffix} {
		if err := cli.ContainerRemove(ctx, n, container.RemoveOptions{Force: true}); err != nil && !client.IsErrNotFound(err) {
			t.Logf("removing %s: %v", n, err)
		}
	}
}
