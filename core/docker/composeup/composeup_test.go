package composeup_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/core/docker/composeup"
	"github.com/tidewatch/tidewatch/test/testbed"
)

func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestUpKeepsPreviousAside recreates a service through compose's library:
// the new container runs the new image with the old one's anonymous volume,
// the old container is stopped under the archive name, out of compose's
// sight (not started again), and can be brought back.
func TestUpKeepsPreviousAside(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("upapp")
	bed.BuildVolumeImage(t, repo+":1.0.0", testbed.AppOptions{Version: "1.0.0", Healthcheck: true}, "/data")
	bed.BuildVolumeImage(t, repo+":1.1.0", testbed.AppOptions{Version: "1.1.0", Healthcheck: true}, "/data")
	dir := t.TempDir()
	file := filepath.Join(dir, "docker-compose.yml")
	write := func(tag string) {
		body := fmt.Sprintf("services:\n  web:\n    image: %s:%s\n    restart: unless-stopped\n    labels: {tidewatch.test: \"1\"}\n", repo, tag)
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1.0.0")
	project := unique("up")
	bed.ComposeUp(t, dir, project)
	old := bed.ComposeContainer(t, project, "web")
	bed.WaitHealth(t, old.ID, "healthy")
	bed.WriteFile(t, old.ID, "/data/marker", []byte("kept"))

	write("1.1.0")
	bed.PullImage(t, repo+":1.1.0")
	archive := strings.TrimPrefix(old.Name, "/") + "-aside"
	ctx := t.Context()
	res, err := composeup.Up(ctx, composeup.Options{Host: bed.DockerHost}, composeup.Request{
		Project: composeup.Project{Name: project, WorkingDir: dir, Files: []string{file}},
		Service: "web", Current: old.ID, Archive: archive,
	})
	if err != nil {
		t.Fatalf("Up = %v (steps %q)", err, res.Steps)
	}
	t.Logf("steps: %q", res.Steps)
	if !res.Stopped || !res.Archived || len(res.Created) != 1 {
		t.Fatalf("result %+v, want the old container stopped and archived, one created", res)
	}
	now := bed.ComposeContainer(t, project, "web")
	if now.ID != res.Created[0] || now.Config.Image != repo+":1.1.0" {
		t.Errorf("the service runs %s on %s, want %s on 1.1.0", now.ID[:12], now.Config.Image, res.Created[0][:12])
	}
	if got, ok := bed.ReadFile(t, now.ID, "/data/marker"); !ok || string(got) != "kept" {
		t.Errorf("/data/marker in the new container = %q (found %v), want the old one's anonymous volume", got, ok)
	}
	aside := bed.Inspect(t, old.ID)
	if aside.Name != "/"+archive || aside.State.Running {
		t.Errorf("the old container is %s, running %v; want it stopped as %s", aside.Name, aside.State.Running, archive)
	}
	if v := now.Config.Labels["com.docker.compose.version"]; v != strings.TrimPrefix(composeup.LibraryVersion(), "v") {
		t.Errorf("the new container's com.docker.compose.version label is %q, want the library's %s", v, composeup.LibraryVersion())
	}

	// A rollback: the new one removed, the old one renamed back and started.
	c, err := docker.New(docker.Options{Host: bed.DockerHost})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Remove(ctx, now.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename(ctx, old.ID, strings.TrimPrefix(old.Name, "/")); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitHealthy(ctx, old.ID, docker.WaitOptions{Timeout: 30 * time.Second, StableFor: 3 * time.Second}); err != nil {
		t.Errorf("the old container after the rollback: %v", err)
	}
}

// TestUpRefuses: a request without its parts, a service with two
// containers, and a project whose file is gone are refused with an error
// saying so, and the service's container is left as it was.
func TestUpRefuses(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("refapp")
	bed.BuildImage(t, repo+":1.0.0", testbed.AppOptions{Version: "1.0.0"})
	dir := t.TempDir()
	file := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("services:\n  web:\n    image: %s:1.0.0\n    labels: {tidewatch.test: \"1\"}\n", repo)), 0o644); err != nil {
		t.Fatal(err)
	}
	project := unique("ref")
	bed.ComposeUp(t, dir, project)
	old := bed.ComposeContainer(t, project, "web")
	good := composeup.Request{Project: composeup.Project{Name: project, WorkingDir: dir, Files: []string{file}}, Service: "web", Current: old.ID, Archive: "aside-" + project}
	opts := composeup.Options{Host: bed.DockerHost}

	missing := good
	missing.Project.Files = []string{filepath.Join(dir, "gone.yml")}
	noService := good
	noService.Service = ""
	noArchive := good
	noArchive.Archive = ""
	unknown := good
	unknown.Service = "nosuch"
	for name, tc := range map[string]struct {
		req  composeup.Request
		want string
	}{
		"no service":      {noService, "all needed"},
		"no archive name": {noArchive, "or neither"},
		"unknown service": {unknown, "nosuch"},
		"missing file":    {missing, "gone.yml"},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := composeup.Up(t.Context(), opts, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) || res.Stopped || res.Archived || len(res.Created) > 0 {
				t.Errorf("Up = %+v, %v; want an error saying %q and nothing done", res, err, tc.want)
			}
		})
	}
	t.Run("scaled", func(t *testing.T) {
		bed.RunContainer(t, unique("second"), repo+":1.0.0", map[string]string{"com.docker.compose.project": project, "com.docker.compose.service": "web", "com.docker.compose.oneoff": "False"})
		res, err := composeup.Up(t.Context(), opts, good)
		if !errors.Is(err, composeup.ErrScaled) || res.Stopped || res.Archived {
			t.Errorf("Up = %+v, %v; want ErrScaled and nothing done", res, err)
		}
	})
	if now := bed.Inspect(t, old.ID); now.Name != old.Name || !now.State.Running {
		t.Errorf("the service's container is %s (running %v), want %s running as before", now.Name, now.State.Running, old.Name)
	}
}

// TestUpCreatesAServiceThatDoesNotRun: without a current container (a
// service new in a git source's commit), compose creates and starts the
// service's container, and the guard lets it touch no other container.
func TestUpCreatesAServiceThatDoesNotRun(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("newapp")
	bed.BuildImage(t, repo+":1.0.0", testbed.AppOptions{Version: "1.0.0"})
	bed.PullImage(t, repo+":1.0.0")
	dir := t.TempDir()
	file := filepath.Join(dir, "docker-compose.yml")
	body := fmt.Sprintf("services:\n  web:\n    image: %s:1.0.0\n    labels: {tidewatch.test: \"1\"}\n  other:\n    image: %s:1.0.0\n    labels: {tidewatch.test: \"1\"}\n", repo, repo)
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	project := unique("new")
	t.Cleanup(func() { bed.Compose(t, dir, project, []string{file}, "down", "--timeout", "1") })
	res, err := composeup.Up(t.Context(), composeup.Options{Host: bed.DockerHost}, composeup.Request{
		Project: composeup.Project{Name: project, WorkingDir: dir, Files: []string{file}}, Service: "web",
	})
	if err != nil {
		t.Fatalf("Up = %v (steps %q)", err, res.Steps)
	}
	if len(res.Created) != 1 || res.Stopped || res.Archived {
		t.Fatalf("result %+v, want one container created, nothing stopped or kept aside", res)
	}
	web := bed.ComposeContainer(t, project, "web")
	if web.ID != res.Created[0] || !web.State.Running || web.Config.Labels["com.docker.compose.project.working_dir"] != dir {
		t.Errorf("web is %s (running %v, working dir %q), want %s running from %s", web.ID[:12], web.State.Running,
			web.Config.Labels["com.docker.compose.project.working_dir"], res.Created[0][:12], dir)
	}
	c, err := docker.New(docker.Options{Host: bed.DockerHost})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if all, err := c.FindContainers(t.Context(), map[string]string{"com.docker.compose.project": project}); err != nil || len(all) != 1 {
		t.Errorf("containers of project %s = %d (%v), want web's only (--no-deps: other is left)", project, len(all), err)
	}
}
