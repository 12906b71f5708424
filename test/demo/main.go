// Command demo is what `make demo` runs inside the test bed: it builds a
// sample app in versions 1.0.0, 1.1.0 and 2.0.0 and a `latest` that is then
// rebuilt, pushes them to the bed's local registry, runs the app on 1.0.0
// (published on 127.0.0.1), and runs `tidewatch check` against it, so that a
// newcomer sees what tidewatch reports. It keeps the app running until
// Ctrl-C, then removes what it started.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/tidewatch/tidewatch/test/testbed"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "demo")
	if err := demo(ctx, log); err != nil {
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

	web := bed.Registry + "/demo/web"
	cache := bed.Registry + "/demo/cache"
	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		if _, err := bed.Build(ctx, web+":"+v, testbed.AppOptions{Version: v}); err != nil {
			return err
		}
		log.Info("pushed sample app", "image", web+":"+v)
	}
	if _, err := bed.Build(ctx, cache+":latest", testbed.AppOptions{Version: "cache-1"}); err != nil {
		return err
	}

	link := "https://example.com/web/releases/{{.Candidate}}"
	ctrs := []struct {
		name, image string
		labels      map[string]string
		publish     bool
	}{
		{name: "demo-web", image: web + ":1.0.0", labels: map[string]string{"tidewatch.link.template": link}, publish: true},
		{name: "demo-web-1x", image: web + ":1.0.0", labels: map[string]string{"tidewatch.tag.include": `^1\.`, "tidewatch.display.name": "web (stays on 1.x)"}},
		{name: "demo-cache", image: cache + ":latest"},
	}
	var ids []string
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, id := range ids {
			bed.Docker().ContainerRemove(cctx, id, container.RemoveOptions{Force: true})
		}
		log.Info("removed the demo containers")
	}()
	var url string
	for _, c := range ctrs {
		if err := bed.Pull(ctx, c.image); err != nil {
			return err
		}
		labels := map[string]string{testbed.LabelTest: "1", testbed.LabelBed: bed.State.ID, "tidewatch.watch": "true"}
		for k, v := range c.labels {
			labels[k] = v
		}
		cfg := &container.Config{Image: c.image, Labels: labels}
		host := &container.HostConfig{}
		if c.publish {
			cfg.ExposedPorts = nat.PortSet{"8080/tcp": {}}
			host.PortBindings = nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}}
		}
		bed.Docker().ContainerRemove(ctx, c.name, container.RemoveOptions{Force: true}) // a leftover of an interrupted demo
		created, err := bed.Docker().ContainerCreate(ctx, cfg, host, nil, nil, c.name)
		if err != nil {
			return fmt.Errorf("creating %s: %w", c.name, err)
		}
		ids = append(ids, created.ID)
		if err := bed.Docker().ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
			return fmt.Errorf("starting %s: %w", c.name, err)
		}
		if c.publish {
			info, err := bed.Docker().ContainerInspect(ctx, created.ID)
			if err != nil {
				return err
			}
			if b := info.NetworkSettings.Ports["8080/tcp"]; len(b) > 0 {
				url = "http://127.0.0.1:" + b[0].HostPort
			}
		}
		log.Info("started", "container", c.name, "image", c.image)
	}
	// `latest` is rebuilt after the container started: a digest update.
	if _, err := bed.Build(ctx, cache+":latest", testbed.AppOptions{Version: "cache-2"}); err != nil {
		return err
	}

	env := []string{
		"TIDEWATCH_STORE_PATH=" + filepath.Join(root, ".testbed", "demo-data"),
		"TIDEWATCH_WATCHER_LOCAL_WATCHBYDEFAULT=false",
		"TIDEWATCH_LOG_LEVEL=warn",
	}
	if sock, ok := strings.CutPrefix(bed.DockerHost, "unix://"); ok {
		env = append(env, "TIDEWATCH_WATCHER_LOCAL_SOCKET="+sock)
	}
	fmt.Printf("\n$ %s bin/tidewatch check\n", strings.Join(env, " "))
	cmd := exec.CommandContext(ctx, binary, "check")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tidewatch check: %w", err)
	}
	fmt.Printf(`
The sample app runs on 1.0.0 at %s; 1.1.0 and 2.0.0 wait in the local registry %s.
Try it yourself in another shell:
  %s bin/tidewatch check --format json
Press Ctrl-C to stop; the demo removes what it started.
`, url, bed.Registry, strings.Join(env, " "))
	<-ctx.Done()
	return nil
}
