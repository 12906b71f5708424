package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// Compose is a compose CLI of the bed.
type Compose int

// The compose CLIs of the bed.
const (
	// ComposeV1 is Debian's docker-compose (1.29, Python): `docker-compose`.
	ComposeV1 Compose = iota + 1
	// ComposeV2 is the compose v2 CLI plugin (ComposeV2Version): `docker compose`.
	ComposeV2 Compose = iota + 1
)

// String names the CLI as its users type it.
func (c Compose) String() string {
	switch c {
	case ComposeV1:
		return "docker-compose"
	case ComposeV2:
		return "docker compose"
	}
	return fmt.Sprintf("Compose(%d)", int(c))
}

// ComposeCLI returns the path of Debian's docker-compose (1.29). When the
// bed lacks it the test fails (TIDEWATCH_TESTBED_REQUIRED=1 or CI=true) or
// is skipped.
func (b *Bed) ComposeCLI(t testing.TB) string {
	t.Helper()
	return b.Part(t, PartComposeV1)
}

// ComposeCommand returns the command line that runs the compose CLI c, and
// the variables to add to its environment (DOCKER_HOST of the bed's engine;
// for ComposeV2, DOCKER_CONFIG of the folder whose cli-plugins holds the
// bed's plugin): for ComposeV1 [/usr/bin/docker-compose], for ComposeV2
// [/usr/bin/docker compose]. When the bed lacks the CLI the test fails
// (TIDEWATCH_TESTBED_REQUIRED=1 or CI=true) or is skipped.
func (b *Bed) ComposeCommand(t testing.TB, c Compose) (argv, env []string) {
	t.Helper()
	argv, env, err := b.composeCommand(c)
	if err != nil {
		MissingPart(t, c.part(), err)
	}
	return argv, env
}

func (c Compose) part() string {
	if c == ComposeV2 {
		return PartComposeV2
	}
	return PartComposeV1
}

func (b *Bed) composeCommand(c Compose) (argv, env []string, err error) {
	env = []string{"DOCKER_HOST=" + b.DockerHost}
	switch c {
	case ComposeV1:
		p, err := b.State.part(PartComposeV1)
		if err != nil {
			return nil, nil, err
		}
		return []string{p}, env, nil
	case ComposeV2:
		plugin, err := b.State.part(PartComposeV2)
		if err != nil {
			return nil, nil, err
		}
		docker, err := b.State.part(PartDocker)
		if err != nil {
			return nil, nil, err
		}
		return []string{docker, "compose"}, append(env, "DOCKER_CONFIG="+filepath.Dir(filepath.Dir(plugin))), nil
	}
	return nil, nil, fmt.Errorf("no such compose CLI: %v", c)
}

// ComposeUp runs `docker-compose -p project -f file… up -d` in dir against
// the bed's engine (files relative to dir; none: compose's default file)
// and fails the test on error. When the test ends it runs `down` for the
// project and removes any container still labelled with it (those a test
// created itself, such as a recreated one). Label the services
// tidewatch.test=1 so that the bed's Down finds what a killed test left.
func (b *Bed) ComposeUp(t testing.TB, dir, project string, files ...string) {
	t.Helper()
	b.ComposeUpWith(t, ComposeV1, dir, project, files...)
}

// ComposeUpWith is ComposeUp with the compose CLI c: ComposeV2 runs
// `docker compose -p project -f file… up -d`.
func (b *Bed) ComposeUpWith(t testing.TB, c Compose, dir, project string, files ...string) {
	t.Helper()
	argv, env := b.ComposeCommand(t, c)
	t.Cleanup(func() { b.composeDown(t, argv, env, dir, project, files) })
	ctx, cancel := testContext(t)
	defer cancel()
	if out, err := compose(ctx, argv, env, dir, project, files, "up", "-d"); err != nil {
		t.Fatalf("%s up for project %s in %s: %v\n%s", c, project, dir, err, tail(out, 4000))
	}
}

// Compose runs the compose CLI (Debian's docker-compose) for project in dir
// with args after the project's -p and -f flags, against the bed's engine,
// and returns its combined output; the test fails on error.
func (b *Bed) Compose(t testing.TB, dir, project string, files []string, args ...string) string {
	t.Helper()
	return b.ComposeWith(t, ComposeV1, dir, project, files, args...)
}

// ComposeWith is Compose with the compose CLI c.
func (b *Bed) ComposeWith(t testing.TB, c Compose, dir, project string, files []string, args ...string) string {
	t.Helper()
	argv, env := b.ComposeCommand(t, c)
	ctx, cancel := testContext(t)
	defer cancel()
	out, err := compose(ctx, argv, env, dir, project, files, args...)
	if err != nil {
		t.Fatalf("%s %s for project %s: %v\n%s", c, strings.Join(args, " "), project, err, tail(out, 4000))
	}
	return string(out)
}

// compose runs the compose command argv for project in dir with files and
// args, env added to the environment, and returns its combined output.
func compose(ctx context.Context, argv, env []string, dir, project string, files []string, args ...string) ([]byte, error) {
	full := append(append([]string(nil), argv[1:]...), "-p", project)
	for _, f := range files {
		full = append(full, "-f", f)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, argv[0], full...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}

// composeDown runs down for the project, then removes what is left with its label.
func (b *Bed) composeDown(t testing.TB, argv, env []string, dir, project string, files []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := compose(ctx, argv, env, dir, project, files, "down", "--volumes", "--remove-orphans", "--timeout", "2"); err != nil {
		t.Logf("%s down for project %s: %v\n%s", strings.Join(argv, " "), project, err, tail(out, 2000))
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
