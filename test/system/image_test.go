package system

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/go-connections/nat"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// TestContainerImage builds the Dockerfile with the test engine (offline:
// FROM scratch), runs it with the engine's socket mounted, and sees it
// answer /healthz and list the engine's containers through the API.
func TestContainerImage(t *testing.T) {
	bed := testbed.Require(t)
	sock, ok := strings.CutPrefix(bed.DockerHost, "unix://")
	if !ok {
		t.Skipf("the engine is not on a unix socket (%s): nothing to mount", bed.DockerHost)
	}
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The build context: the Dockerfile, the static binary, the CA bundle.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name, path string, mode int64) {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	add("Dockerfile", filepath.Join(root, "Dockerfile"), 0o644)
	add("bin/tidewatch", binary, 0o755)
	add("bin/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt", 0o644)
	tw.Close()

	tag := unique("tidewatch-image") + ":test"
	cli := bed.Docker()
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true, Version: build.BuilderV1})
	if err != nil {
		t.Fatalf("building the image: %v", err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(out, []byte(`"error"`)) || bytes.Contains(out, []byte(`"errorDetail"`)) {
		t.Fatalf("building the image failed:\n%s", out)
	}
	t.Cleanup(func() {
		cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true})
	})

	token := "canary-ci-token-4411"
	sum := sha256.Sum256([]byte(token))
	cfg := &container.Config{
		Image:        tag,
		Env:          []string{"TIDEWATCH_SERVER_API_TOKENS=ci:" + hex.EncodeToString(sum[:])},
		ExposedPorts: nat.PortSet{"8080/tcp": {}},
		Labels:       map[string]string{testbed.LabelTest: "1", testbed.LabelBed: bed.State.ID},
	}
	hostCfg := &container.HostConfig{
		Binds:        []string{sock + ":/var/run/docker.sock"},
		PortBindings: nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}},
	}
	name := unique("tidewatch")
	created, err := cli.ContainerCreate(ctx, cfg, hostCfg, nil, nil, name)
	if err != nil {
		t.Fatalf("creating the tidewatch container: %v", err)
	}
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true}) })
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := cli.ContainerInspect(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	port := info.NetworkSettings.Ports["8080/tcp"][0].HostPort
	base := "http://" + net.JoinHostPort("127.0.0.1", port)

	get := func(path string, auth bool) (int, []byte) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if code, _ := get("/healthz", false); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := cli.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
			b, _ := io.ReadAll(logs)
			t.Fatalf("the container never answered /healthz; its log:\n%s", b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _ := get("/api/containers", false); code != http.StatusUnauthorized {
		t.Errorf("/api/containers without a token: %d, want 401 (auth is required off loopback)", code)
	}
	// Watching through the mounted socket: its own container is listed.
	deadline = time.Now().Add(time.Minute)
	for {
		code, body := get("/api/containers?host=local", true)
		var list []map[string]any
		json.Unmarshal(body, &list)
		if code == http.StatusOK && strings.Contains(string(body), name) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/api/containers never listed the tidewatch container: %d %s", code, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code, body := get("/readyz", false); code != http.StatusOK {
		t.Errorf("/readyz = %d %s, want 200 (engine reachable through the socket)", code, body)
	}
}
