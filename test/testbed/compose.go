package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// Compose labels the compose CLI puts on the containers it creates.
const (
	ComposeLabelProject = "com.docker.compose.project"
	ComposeLabelService = "com.docker.compose.service"
)

// composeCLI is the compose CLI found (or installed) once per process.
var composeCLI struct {
	once sync.Once
	path string
	err  error
}

// ComposeCLI returns the path of a working compose CLI: Debian's
// docker-compose (1.29), installed with apt-get the first time it is
// missing (as root). The test fails when none can be had.
func (b *Bed) ComposeCLI(t testing.TB) string {
	t.Helper()
	composeCLI.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		composeCLI.path, composeCLI.err = findComposeCLI(ctx)
	})
	if composeCLI.err != nil {
		t.Fatalf("compose CLI: %v", composeCLI.err)
	}
	return composeCLI.path
}

// findComposeCLI looks for docker-compose, installs it when missing, and
// checks that it runs.
func findComposeCLI(ctx context.Context) (string, error) {
	path, err := lookCompose()
	if err != nil {
		if os.Geteuid() != 0 {
			return "", fmt.Errorf("docker-compose is not installed and installing it needs root: apt-get install docker-compose")
		}
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "-o", "DPkg::Lock::Timeout=300", "docker-compose")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("installing docker-compose: %w\n%s", err, tail(out, 2000))
		}
		if path, err = lookCompose(); err != nil {
			return "", err
		}
	}
	out, err := exec.CommandContext(ctx, path, "version", "--short").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("running %s version: %w\n%s", path, err, tail(out, 2000))
	}
	return path, nil
}

func lookCompose() (string, error) {
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/docker-compose", "/usr/local/bin/docker-compose"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("docker-compose not found in PATH, /usr/bin or /usr/local/bin")
}

// ComposeUp runs `docker-compose -p project -f file… up -d` in dir against
// the bed's engine (files relative to dir; none: compose's default file)
// and fails the test on error. When the test ends it runs `down` for the
// project and removes any container still labelled with it (those a test
// created itself, such as a recreated one). Label the services
// tidewatch.test=1 so that the bed's Down finds what a killed test left.
func (b *Bed) ComposeUp(t testing.TB, dir, project string, files ...string) {
	t.Helper()
	cli := b.ComposeCLI(t)
	t.Cleanup(func() { b.composeDown(t, dir, project, files) })
	ctx, cancel := testContext(t)
	defer cancel()
	if out, err := b.compose(ctx, cli, dir, project, files, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up for project %s in %s: %v\n%s", project, dir, err, tail(out, 4000))
	}
}

// Compose runs the compose CLI for project in dir with args after the
// project's -p and -f flags, against the bed's engine, and returns its
// combined output; the test fails on error.
func (b *Bed) Compose(t testing.TB, dir, project string, files []string, args ...string) string {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	out, err := b.compose(ctx, b.ComposeCLI(t), dir, project, files, args...)
	if err != nil {
		t.Fatalf("docker-compose %s for project %s: %v\n%s", strings.Join(args, " "), project, err, tail(out, 4000))
	}
	return string(out)
}

func (b *Bed) compose(ctx context.Context, cli, dir, project string, files []string, args ...string) ([]byte, error) {
	full := []string{"-p", project}
	for _, f := range files {
		full = append(full, "-f", f)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, cli, full...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+b.DockerHost)
	return cmd.CombinedOutput()
}

// composeDown runs down for the project, then removes what is left with its label.
func (b *Bed) composeDown(t testing.TB, dir, project string, files []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if cli := composeCLI.path; cli != "" {
		if out, err := b.compose(ctx, cli, dir, project, files, "down", "--volumes", "--remove-orphans", "--timeout", "2"); err != nil {
			t.Logf("docker-compose down for project %s: %v\n%s", project, err, tail(out, 2000))
		}
	}
	cli, err := newClient(b.DockerHost)
	if err != nil {
		t.Errorf("cleaning up compose project %s: %v", project, err)
		return
	}
	defer cli.Close()
	left, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", ComposeLabelProject+"="+project))})
	if err != nil {
		t.Errorf("listing containers of compose project %s: %v", project, err)
		return
	}
	for _, c := range left {
		b.removeContainer(t, c.ID, strings.Join(c.Names, ","))
	}
}

// ComposeContainer returns the running container of a compose project's
// service, waiting up to a minute for it; the test fails when there is none
// or more than one.
func (b *Bed) ComposeContainer(t testing.TB, project, service string) container.InspectResponse {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	f := filters.NewArgs(
		filters.Arg("label", ComposeLabelProject+"="+project),
		filters.Arg("label", ComposeLabelService+"="+service),
		filters.Arg("status", "running"),
	)
	var found []container.Summary
	var lastErr error
	ok := waitFor(ctx, waitTimeout, func() bool {
		found, lastErr = b.Docker().ContainerList(ctx, container.ListOptions{Filters: f})
		return lastErr == nil && len(found) == 1
	})
	if !ok {
		t.Fatalf("compose project %s, service %s: want one running container, found %d (%v)", project, service, len(found), lastErr)
	}
	return b.Inspect(t, found[0].ID)
}
