package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
)

// waitTimeout bounds every wait of the container helpers.
const waitTimeout = 60 * time.Second

// RunOptions refines RunContainer.
type RunOptions struct {
	// Publish publishes the app's port 8080 on a free port of 127.0.0.1 and
	// puts its address in Container.URL; RunContainer then also waits until
	// GET / answers 200 (unless NoWait).
	Publish bool
	// Env is added to the container's environment.
	Env []string
	// Cmd replaces the image's command (the arguments after /app).
	Cmd []string
	// RestartPolicy is the restart policy's name; default "no".
	RestartPolicy container.RestartPolicyMode
	// NoWait returns as soon as the container is started, for containers
	// that are meant to exit.
	NoWait bool
}

// Container is a container that RunContainer started.
type Container struct {
	// ID is the container's ID.
	ID string
	// Name is its name, without the leading slash.
	Name string
	// URL is http://127.0.0.1:PORT when RunOptions.Publish, else empty.
	URL string
}

// PullImage pulls ref through the engine, as a real pull, so that the image
// gets its RepoDigests.
func (b *Bed) PullImage(t testing.TB, ref string) {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	if err := pull(ctx, b.Docker(), ref); err != nil {
		t.Fatalf("%v", err)
	}
}

// pull pulls ref and reads the progress stream to its end, reporting its error.
func pull(ctx context.Context, cli *client.Client, ref string) error {
	rc, err := cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("pulling %s: reading progress: %w", ref, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("pulling %s: %s", ref, msg.Error)
		}
	}
}

// ensureImage pulls ref when it names the bed's registry (always, so that a
// new push under the same tag is seen), or when it is not in the engine.
func (b *Bed) ensureImage(ctx context.Context, ref string) error {
	if !strings.HasPrefix(ref, b.Registry+"/") {
		if _, err := b.Docker().ImageInspect(ctx, ref); err == nil {
			return nil
		}
	}
	return pull(ctx, b.Docker(), ref)
}

// RetagLocal tags the image src (pulled from the bed's registry when it is not
// in the engine) as dst in the engine only, and returns dst. It lets a test run
// a container whose image names a registry that does not exist or does not
// answer. The tag is removed when the test ends.
func (b *Bed) RetagLocal(t testing.TB, src, dst string) string {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	cli := b.Docker()
	if _, err := cli.ImageInspect(ctx, src); err != nil {
		if err := pull(ctx, cli, src); err != nil {
			t.Fatalf("retagging %s as %s: %v", src, dst, err)
		}
	}
	if err := cli.ImageTag(ctx, src, dst); err != nil {
		t.Fatalf("tagging %s as %s: %v", src, dst, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cli, err := newClient(b.DockerHost)
		if err != nil {
			t.Errorf("removing tag %s: %v", dst, err)
			return
		}
		defer cli.Close()
		if _, err := cli.ImageRemove(ctx, dst, image.RemoveOptions{}); err != nil && !client.IsErrNotFound(err) {
			t.Logf("removing tag %s: %v", dst, err)
		}
	})
	return dst
}

// RunContainer makes sure img is in the engine (always pulling it when it
// names the bed's registry, a real pull so that the image has RepoDigests;
// other names must be in the engine already, see RetagLocal), then creates
// and starts a container called name from it, labelled tidewatch.test=1, with the bed's ID
// and labels, and restart policy "no" unless opts say otherwise. Unless
// NoWait, it waits until the container runs (and, with Publish, answers HTTP).
// The container is removed when the test ends. Only the first opts is used.
func (b *Bed) RunContainer(t testing.TB, name, img string, labels map[string]string, opts ...RunOptions) Container {
	t.Helper()
	var o RunOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.RestartPolicy == "" {
		o.RestartPolicy = container.RestartPolicyDisabled
	}
	ctx, cancel := testContext(t)
	defer cancel()
	cli := b.Docker()
	if err := b.ensureImage(ctx, img); err != nil {
		t.Fatalf("running container %s: %v", name, err)
	}

	all := map[string]string{LabelTest: "1", LabelBed: b.State.ID}
	for k, v := range labels {
		all[k] = v
	}
	cfg := &container.Config{Image: img, Labels: all, Env: o.Env, Cmd: o.Cmd}
	host := &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: o.RestartPolicy}}
	if o.Publish {
		port := nat.Port("8080/tcp")
		cfg.ExposedPorts = nat.PortSet{port: {}}
		host.PortBindings = nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: ""}}}
	}
	created, err := cli.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		t.Fatalf("creating container %s from %s: %v", name, img, err)
	}
	t.Cleanup(func() { b.removeContainer(t, created.ID, name) })
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("starting container %s: %v", name, err)
	}
	c := Container{ID: created.ID, Name: name}
	if o.NoWait && !o.Publish {
		return c
	}
	info := b.WaitRunning(t, created.ID)
	if o.Publish {
		bindings := info.NetworkSettings.Ports[nat.Port("8080/tcp")]
		if len(bindings) == 0 {
			t.Fatalf("container %s: port 8080 not published: %v", name, info.NetworkSettings.Ports)
		}
		c.URL = "http://127.0.0.1:" + bindings[0].HostPort
		if !o.NoWait {
			b.WaitHTTP(t, c.URL+"/")
		}
	}
	return c
}

// removeContainer removes id, forcing it; a container already gone is fine.
func (b *Bed) removeContainer(t testing.TB, id, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := newClient(b.DockerHost)
	if err != nil {
		t.Errorf("removing container %s: %v", name, err)
		return
	}
	defer cli.Close()
	err = cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !client.IsErrNotFound(err) {
		t.Errorf("removing container %s: %v", name, err)
	}
}

// Inspect returns the engine's view of the container id.
func (b *Bed) Inspect(t testing.TB, id string) container.InspectResponse {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	info, err := b.Docker().ContainerInspect(ctx, id)
	if err != nil {
		t.Fatalf("inspecting container %s: %v", id, err)
	}
	return info
}

// ImageInspect returns the engine's view of the image ref (name or ID).
func (b *Bed) ImageInspect(t testing.TB, ref string) image.InspectResponse {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	info, err := b.Docker().ImageInspect(ctx, ref)
	if err != nil {
		t.Fatalf("inspecting image %s: %v", ref, err)
	}
	return info
}

// WaitContainer polls the container id until cond holds and returns what it
// saw; it fails the test after a minute, saying what it waited for (desc)
// and with the container's last log lines.
func (b *Bed) WaitContainer(t testing.TB, id, desc string, cond func(container.InspectResponse) bool) container.InspectResponse {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	var info container.InspectResponse
	var err error
	ok := waitFor(ctx, waitTimeout, func() bool {
		info, err = b.Docker().ContainerInspect(ctx, id)
		return err == nil && cond(info)
	})
	if !ok {
		state := "unknown"
		if info.ContainerJSONBase != nil && info.State != nil {
			state = fmt.Sprintf("%s (exit code %d)", info.State.Status, info.State.ExitCode)
			if info.State.Health != nil {
				state += ", health " + info.State.Health.Status
			}
		}
		t.Fatalf("container %s: not %s within %s; state %s, last error %v; logs:\n%s", id, desc, waitTimeout, state, err, b.Logs(t, id))
	}
	return info
}

// WaitRunning waits until the container id runs; it fails the test at once
// when the container exits instead.
func (b *Bed) WaitRunning(t testing.TB, id string) container.InspectResponse {
	t.Helper()
	info := b.WaitContainer(t, id, "running or exited", func(c container.InspectResponse) bool {
		return c.State.Running || c.State.Status == "exited" || c.State.Status == "dead"
	})
	if !info.State.Running {
		t.Fatalf("container %s: exited with code %d instead of running; logs:\n%s", id, info.State.ExitCode, b.Logs(t, id))
	}
	return info
}

// WaitExited waits until the container id has exited and returns its exit code.
func (b *Bed) WaitExited(t testing.TB, id string) int {
	t.Helper()
	info := b.WaitContainer(t, id, "exited", func(c container.InspectResponse) bool {
		return c.State.Status == "exited" || c.State.Status == "dead"
	})
	return info.State.ExitCode
}

// WaitHealth waits until the container id's health status is want
// ("healthy", "unhealthy" or "starting").
func (b *Bed) WaitHealth(t testing.TB, id, want string) container.InspectResponse {
	t.Helper()
	return b.WaitContainer(t, id, "health "+want, func(c container.InspectResponse) bool {
		return c.State.Health != nil && c.State.Health.Status == want
	})
}

// WaitHTTP waits until GET url answers 200 and returns the body.
func (b *Bed) WaitHTTP(t testing.TB, url string) string {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	var body string
	var lastErr error
	hc := &http.Client{Timeout: 2 * time.Second}
	ok := waitFor(ctx, waitTimeout, func() bool {
		resp, err := hc.Get(url)
		if err != nil {
			lastErr = err
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			lastErr = err
			return false
		}
		if resp.StatusCode != http.StatusOK {
			lastErr = fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
			return false
		}
		body = string(b)
		return true
	})
	if !ok {
		t.Fatalf("GET %s: no 200 within %s: %v", url, waitTimeout, lastErr)
	}
	return body
}

// Logs returns the container's output, stdout and stderr together (last 100 lines).
func (b *Bed) Logs(t testing.TB, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := b.Docker().ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "100"})
	if err != nil {
		return fmt.Sprintf("(reading logs of %s: %v)", id, err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		return fmt.Sprintf("%s(reading logs of %s: %v)", out.String(), id, err)
	}
	return strings.TrimRight(out.String(), "\n")
}
