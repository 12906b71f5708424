package docker

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/docker/docker/api/types/container"
)

// This file holds what a helper container takes: a short-lived container
// started beside another to act on it from outside, as tidewatch's
// self-update does (a process cannot recreate the container it runs in).

// Helper is a helper container to start.
type Helper struct {
	// Name is the helper's container name.
	Name string
	// Entrypoint is the executable in the image and its arguments.
	Entrypoint []string
	// Env is the helper's whole environment.
	Env []string
	// Labels are the helper's labels.
	Labels map[string]string
}

// StartHelper creates and starts h from the image the container of runs
// (by ID, whatever its tag names now), with of's volumes and bind mounts at
// the same paths (VolumesFrom: the engine's socket, the data folder), its
// user, supplementary groups and network (its network mode; a network
// shared with another container or the host's is shared too). It returns
// the helper's ID; the helper is not removed when it exits, so that its
// end can be read.
func (c *Client) StartHelper(ctx context.Context, of string, h Helper) (string, error) {
	info, err := c.api.ContainerInspect(ctx, of)
	if err != nil {
		return "", fmt.Errorf("inspecting container %s on %s: %w", of, c.host, err)
	}
	if info.Config == nil || info.HostConfig == nil {
		return "", fmt.Errorf("inspecting container %s on %s: the engine gave no configuration", of, c.host)
	}
	cfg := &container.Config{
		Image: info.Image, Entrypoint: h.Entrypoint, Cmd: []string{}, Env: h.Env, Labels: maps.Clone(h.Labels),
		User: info.Config.User, WorkingDir: "/",
	}
	mode := info.HostConfig.NetworkMode
	if mode.IsContainer() && (mode.ConnectedContainer() == info.ID || strings.TrimPrefix(info.Name, "/") == mode.ConnectedContainer()) {
		mode = "default"
	}
	host := &container.HostConfig{
		VolumesFrom: []string{info.ID},
		GroupAdd:    info.HostConfig.GroupAdd,
		NetworkMode: mode,
		SecurityOpt: info.HostConfig.SecurityOpt,
		LogConfig:   info.HostConfig.LogConfig,
	}
	created, err := c.api.ContainerCreate(ctx, cfg, host, nil, nil, h.Name)
	if err != nil {
		return "", fmt.Errorf("creating helper container %s beside %s on %s: %w", h.Name, of, c.host, err)
	}
	if err := c.api.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		_ = c.Remove(context.WithoutCancel(ctx), created.ID, true)
		return "", fmt.Errorf("starting helper container %s on %s: %w", h.Name, c.host, err)
	}
	return created.ID, nil
}

// WaitExit waits until the container id does not run (it exited, or was
// never started) and returns its exit code; ctx bounds the wait.
func (c *Client) WaitExit(ctx context.Context, id string) (int, error) {
	okc, errc := c.api.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case res := <-okc:
		if res.Error != nil && res.Error.Message != "" {
			return int(res.StatusCode), fmt.Errorf("waiting for container %s on %s: %s", short(id), c.host, res.Error.Message)
		}
		return int(res.StatusCode), nil
	case err := <-errc:
		return 0, fmt.Errorf("waiting for container %s on %s: %w", short(id), c.host, err)
	}
}

// Settings are what a container was told: its environment, working
// folder, and where volumes and bind mounts are mounted in it.
type Settings struct {
	// Env is its environment (the image's and its own).
	Env []string
	// WorkingDir is its working folder ("" for /).
	WorkingDir string
	// Mounts are the destinations of its volumes and bind mounts.
	Mounts []string
	// AutoRemove is set for a container started with --rm, which the
	// engine removes when it stops.
	AutoRemove bool
	// FromImageID is set when it was created from an image ID (no
	// reference names a newer version of it).
	FromImageID bool
}

// Settings returns what the container id was told.
func (c *Client) Settings(ctx context.Context, id string) (Settings, error) {
	info, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		return Settings{}, fmt.Errorf("inspecting container %s on %s: %w", id, c.host, err)
	}
	var s Settings
	if info.Config != nil {
		s.Env, s.WorkingDir = info.Config.Env, info.Config.WorkingDir
		s.FromImageID = looksLikeID(info.Config.Image, info.Image)
	}
	if info.HostConfig != nil {
		s.AutoRemove = info.HostConfig.AutoRemove
	}
	for _, m := range info.Mounts {
		s.Mounts = append(s.Mounts, m.Destination)
	}
	return s, nil
}
