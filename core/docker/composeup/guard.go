package composeup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// ErrRefused wraps what the guard refused compose to do: remove a container
// tidewatch did not create, or any volume, network or image.
var ErrRefused = errors.New("refused by tidewatch")

// guard is the engine client compose talks through. It passes everything
// on, except what would break tidewatch's promises:
//   - compose's removal of the container it replaces (current) renames that
//     container to archive instead: stopped, kept aside for a rollback;
//     from then on it is left out of container lists, so that compose does
//     not count or start it as one of the service's containers;
//   - no container is removed with its volumes, and none but those created
//     through the guard (compose's own temporary ones) is removed at all;
//   - no volume, network or image is removed, and nothing is pruned.
//
// It records what was done, for the rollback.
type guard struct {
	client.APIClient
	current, archive string
	journal          func(Event) error // nil: none

	mu       sync.Mutex
	created  []string
	stopped  bool
	archived bool
}

// tell tells the journal, if any, of e.
func (g *guard) tell(e Event) error {
	if g.journal == nil {
		return nil
	}
	if err := g.journal(e); err != nil {
		return fmt.Errorf("recording that container %s is %s: %w", short(e.ID), e.Kind, err)
	}
	return nil
}

// done returns what was done so far.
func (g *guard) done() (created []string, stopped, archived bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.created), g.stopped, g.archived
}

func (g *guard) isCreated(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Contains(g.created, id)
}

// ContainerCreate records the container created.
func (g *guard) ContainerCreate(ctx context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	res, err := g.APIClient.ContainerCreate(ctx, o)
	if res.ID != "" {
		g.mu.Lock()
		g.created = append(g.created, res.ID)
		g.mu.Unlock()
		if jerr := g.tell(Event{Kind: EventCreated, ID: res.ID}); jerr != nil && err == nil {
			err = jerr
		}
	}
	return res, err
}

// ContainerStop records that the current container was stopped.
func (g *guard) ContainerStop(ctx context.Context, id string, o client.ContainerStopOptions) (client.ContainerStopResult, error) {
	if id != g.current && !g.isCreated(id) {
		return client.ContainerStopResult{}, fmt.Errorf("stopping container %s, not the service's: %w", short(id), ErrRefused)
	}
	if id == g.current {
		if err := g.tell(Event{Kind: EventStopping, ID: id}); err != nil {
			return client.ContainerStopResult{}, err
		}
	}
	res, err := g.APIClient.ContainerStop(ctx, id, o)
	if id == g.current {
		g.mu.Lock()
		g.stopped = true // even on error: it may be stopped; a rollback starts it again
		g.mu.Unlock()
	}
	return res, err
}

// ContainerRemove renames the current container aside instead of removing
// it, and removes only the containers compose created, without volumes.
func (g *guard) ContainerRemove(ctx context.Context, id string, o client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	switch {
	case id == g.current:
		if err := g.tell(Event{Kind: EventArchiving, ID: id}); err != nil {
			return client.ContainerRemoveResult{}, err
		}
		if _, err := g.APIClient.ContainerRename(ctx, id, client.ContainerRenameOptions{NewName: g.archive}); err != nil {
			return client.ContainerRemoveResult{}, fmt.Errorf("keeping container %s aside as %s: %w", short(id), g.archive, err)
		}
		g.mu.Lock()
		g.archived = true
		g.mu.Unlock()
		return client.ContainerRemoveResult{}, nil
	case g.isCreated(id):
		o.RemoveVolumes = false
		return g.APIClient.ContainerRemove(ctx, id, o)
	}
	return client.ContainerRemoveResult{}, fmt.Errorf("removing container %s: %w", short(id), ErrRefused)
}

// ContainerList leaves the archived container out.
func (g *guard) ContainerList(ctx context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	res, err := g.APIClient.ContainerList(ctx, o)
	if _, _, archived := g.done(); archived {
		res.Items = slices.DeleteFunc(res.Items, func(s container.Summary) bool { return s.ID == g.current })
	}
	return res, err
}

// VolumeRemove is refused: tidewatch never removes a volume.
func (g *guard) VolumeRemove(_ context.Context, id string, _ client.VolumeRemoveOptions) (client.VolumeRemoveResult, error) {
	return client.VolumeRemoveResult{}, fmt.Errorf("removing volume %s: %w", id, ErrRefused)
}

// VolumePrune is refused.
func (g *guard) VolumePrune(context.Context, client.VolumePruneOptions) (client.VolumePruneResult, error) {
	return client.VolumePruneResult{}, fmt.Errorf("pruning volumes: %w", ErrRefused)
}

// NetworkRemove is refused: other services may be attached to it.
func (g *guard) NetworkRemove(_ context.Context, id string, _ client.NetworkRemoveOptions) (client.NetworkRemoveResult, error) {
	return client.NetworkRemoveResult{}, fmt.Errorf("removing network %s (compose would recreate it: its configuration changed): %w", id, ErrRefused)
}

// ImageRemove is refused: the previous image is what a rollback needs.
func (g *guard) ImageRemove(_ context.Context, id string, _ client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	return client.ImageRemoveResult{}, fmt.Errorf("removing image %s: %w", id, ErrRefused)
}

// ContainerPrune is refused.
func (g *guard) ContainerPrune(context.Context, client.ContainerPruneOptions) (client.ContainerPruneResult, error) {
	return client.ContainerPruneResult{}, fmt.Errorf("pruning containers: %w", ErrRefused)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
