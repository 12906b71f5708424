package testbed

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// ComposeCLIPath returns the path of a working compose CLI, as ComposeCLI
// does, for programs that are not tests (the demo). The first call of the
// process finds it (installing Debian's docker-compose when missing, as
// root) under ctx; later calls return what it found.
func (b *Bed) ComposeCLIPath(ctx context.Context) (string, error) {
	composeCLI.once.Do(func() {
		composeCLI.path, composeCLI.err = findComposeCLI(ctx)
	})
	if composeCLI.err != nil {
		return "", fmt.Errorf("compose CLI: %w", composeCLI.err)
	}
	return composeCLI.path, nil
}

// ComposeRun runs the compose CLI for project in dir (its default compose
// file) with args after -p, against the bed's engine: Compose for
// programs. Its error carries the end of the CLI's output.
func (b *Bed) ComposeRun(ctx context.Context, dir, project string, args ...string) error {
	cli, err := b.ComposeCLIPath(ctx)
	if err != nil {
		return err
	}
	if out, err := b.compose(ctx, cli, dir, project, nil, args...); err != nil {
		return fmt.Errorf("docker-compose %s for project %s: %w\n%s", strings.Join(args, " "), project, err, tail(out, 4000))
	}
	return nil
}

// ComposeRemove removes every container, running or not, labelled with the
// compose project, and returns their names: what a `down` left (or all of
// it, when the compose file is gone).
func (b *Bed) ComposeRemove(ctx context.Context, project string) ([]string, error) {
	left, err := b.Docker().ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", ComposeLabelProject+"="+project))})
	if err != nil {
		return nil, fmt.Errorf("listing containers of compose project %s: %w", project, err)
	}
	var names []string
	for _, c := range left {
		if err := b.Docker().ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			return names, fmt.Errorf("removing container %s of compose project %s: %w", strings.Join(c.Names, ","), project, err)
		}
		names = append(names, strings.TrimPrefix(strings.Join(c.Names, ","), "/"))
	}
	return names, nil
}
