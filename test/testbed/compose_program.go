package testbed

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// ComposeCLIPath returns the path of Debian's docker-compose (1.29), as
// recorded by bedctl up, for programs that are not tests (the demo).
func (b *Bed) ComposeCLIPath() (string, error) {
	p, err := b.State.part(PartComposeV1)
	if err != nil {
		return "", fmt.Errorf("compose CLI: %w", err)
	}
	return p, nil
}

// ComposeRun runs Debian's docker-compose for project in dir (its default
// compose file) with args after -p, against the bed's engine: Compose for
// programs. Its error carries the end of the CLI's output.
func (b *Bed) ComposeRun(ctx context.Context, dir, project string, args ...string) error {
	argv, env, err := b.composeCommand(ComposeV1)
	if err != nil {
		return fmt.Errorf("compose CLI: %w", err)
	}
	if out, err := compose(ctx, argv, env, dir, project, nil, args...); err != nil {
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
