package docker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/tidewatch/tidewatch/core"
)

// This file holds what a rollout needs of the engine: pull, inspect the
// state, rename, stop, start, remove, recreate a container like another,
// read its logs, and wait until it is healthy.

// Health statuses of State.Health.
const (
	HealthNone      = ""
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// State is a container as a rollout sees it.
type State struct {
	// ID is the container's full ID; Name its name without the slash.
	ID, Name string
	// Image is the reference it was created with ("registry/app:1.0.0");
	// ImageID the ID of the image it runs.
	Image, ImageID string
	// Labels are the container's labels.
	Labels map[string]string
	// Status is created, running, paused, restarting, removing, exited or dead.
	Status string
	// Running is set while the container's process runs.
	Running bool
	// ExitCode is the last exit code; Error the engine's error starting it.
	ExitCode int
	Error    string
	// RestartCount is how often the engine restarted it (restart policy).
	RestartCount int
	// StartedAt is when it last started; zero when never.
	StartedAt time.Time
	// Created is when it was created.
	Created time.Time
	// Healthcheck says whether it has a healthcheck (its own or its image's).
	Healthcheck bool
	// Health is HealthStarting, HealthHealthy, HealthUnhealthy, or HealthNone
	// without a healthcheck; HealthLog the output of its last probe.
	Health, HealthLog string
}

// InspectState returns the state of the container id (ID or name); the
// error wraps core.ErrNotFound when there is no such container.
func (c *Client) InspectState(ctx context.Context, id string) (State, error) {
	info, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		if client.IsErrNotFound(err) {
			return State{}, fmt.Errorf("inspecting container %s on %s: %w", id, c.host, core.ErrNotFound)
		}
		return State{}, fmt.Errorf("inspecting container %s on %s: %w", id, c.host, err)
	}
	return stateOf(info), nil
}

func stateOf(info container.InspectResponse) State {
	s := State{ID: info.ID, Name: strings.TrimPrefix(info.Name, "/"), ImageID: info.Image, RestartCount: info.RestartCount}
	if t, err := time.Parse(time.RFC3339Nano, info.Created); err == nil {
		s.Created = t.UTC()
	}
	if info.Config != nil {
		s.Image = info.Config.Image
		s.Labels = info.Config.Labels
		hc := info.Config.Healthcheck
		s.Healthcheck = hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE"
	}
	if st := info.State; st != nil {
		s.Status, s.Running, s.ExitCode, s.Error = string(st.Status), st.Running, st.ExitCode, st.Error
		if t, err := time.Parse(time.RFC3339Nano, st.StartedAt); err == nil && t.Year() > 1 {
			s.StartedAt = t.UTC()
		}
		if h := st.Health; h != nil && h.Status != container.NoHealthcheck {
			s.Health = string(h.Status)
			if n := len(h.Log); n > 0 && h.Log[n-1] != nil {
				s.HealthLog = strings.TrimSpace(h.Log[n-1].Output)
			}
		}
	}
	return s
}

// FindContainers returns every container (running or not) that carries all
// of labels, newest first.
func (c *Client) FindContainers(ctx context.Context, labels map[string]string) ([]State, error) {
	f := filters.NewArgs()
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	sums, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing containers with labels %v on %s: %w", labels, c.host, err)
	}
	out := make([]State, 0, len(sums))
	for _, s := range sums {
		st, err := c.InspectState(ctx, s.ID)
		if errors.Is(err, core.ErrNotFound) {
			continue // removed since the list
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Pull pulls ref ("registry/app:1.1.0") through the engine, with auth's
// credentials unless it is anonymous (the zero value), reading the progress
// stream to its end: an error the registry reports midway (an unknown tag,
// a refused layer, refused credentials) is returned. The credentials never
// appear in an error.
func (c *Client) Pull(ctx context.Context, ref string, auth core.RegistryAuth) error {
	var opts image.PullOptions
	if !auth.Anonymous() {
		enc, err := registry.EncodeAuthConfig(authConfig(auth))
		if err != nil {
			return fmt.Errorf("pulling %s on %s: encoding the credentials for %s failed", ref, c.host, auth.Server)
		}
		opts.RegistryAuth = enc
	}
	rc, err := c.api.ImagePull(ctx, ref, opts)
	if err != nil {
		return fmt.Errorf("pulling %s on %s: %w", ref, c.host, err)
	}
	defer rc.Close()
	if err := readProgress(rc); err != nil {
		return fmt.Errorf("pulling %s on %s: %w", ref, c.host, err)
	}
	return nil
}

// authConfig is auth as the engine and the Docker CLI take it.
func authConfig(auth core.RegistryAuth) registry.AuthConfig {
	return registry.AuthConfig{
		Username: auth.Username, Password: auth.Password.Reveal(), ServerAddress: auth.Server,
		IdentityToken: auth.IdentityToken.Reveal(), RegistryToken: auth.RegistryToken.Reveal(),
	}
}

// CLIConfig returns a Docker CLI config.json that holds auth for its
// registry, and nothing else: what a compose CLI run for one pull is given
// (in a DOCKER_CONFIG folder of its own) so that it pulls with the
// credentials tidewatch reads the registry with. Docker Hub's key is the
// CLI's own, https://index.docker.io/v1/.
func CLIConfig(auth core.RegistryAuth) ([]byte, error) {
	type entry struct {
		Auth          string `json:"auth,omitempty"`
		IdentityToken string `json:"identitytoken,omitempty"`
		RegistryToken string `json:"registrytoken,omitempty"`
	}
	server := auth.Server
	switch server {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		server = "https://index.docker.io/v1/"
	}
	e := entry{IdentityToken: auth.IdentityToken.Reveal(), RegistryToken: auth.RegistryToken.Reveal()}
	if auth.Username != "" || auth.Password != "" {
		e.Auth = base64.StdEncoding.EncodeToString([]byte(auth.Username + ":" + auth.Password.Reveal()))
	}
	out, err := json.MarshalIndent(map[string]any{"auths": map[string]entry{server: e}}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("writing a Docker CLI config for %s failed", server)
	}
	return out, nil
}

// readProgress reads a JSON progress stream to its end, returning the first
// error it carries.
func readProgress(r io.Reader) error {
	dec := json.NewDecoder(r)
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
			return fmt.Errorf("reading progress: %w", err)
		}
		if msg.ErrorDetail.Message != "" {
			return errors.New(msg.ErrorDetail.Message)
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}

// ImageID returns the ID of the local image ref (name or ID); the error
// wraps core.ErrNotFound when the engine does not have it.
func (c *Client) ImageID(ctx context.Context, ref string) (string, error) {
	img, err := c.api.ImageInspect(ctx, ref)
	if err != nil {
		if client.IsErrNotFound(err) {
			return "", fmt.Errorf("inspecting image %s on %s: %w", ref, c.host, core.ErrNotFound)
		}
		return "", fmt.Errorf("inspecting image %s on %s: %w", ref, c.host, err)
	}
	return img.ID, nil
}

// Tag points the local tag ref at the image src (name or ID).
func (c *Client) Tag(ctx context.Context, src, ref string) error {
	if err := c.api.ImageTag(ctx, src, ref); err != nil {
		return fmt.Errorf("tagging %s as %s on %s: %w", src, ref, c.host, err)
	}
	return nil
}

// ImageRemove removes the local image ref (name or ID), without force: an
// image a container still uses stays, and the error says so.
func (c *Client) ImageRemove(ctx context.Context, ref string) error {
	if _, err := c.api.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true}); err != nil {
		if client.IsErrNotFound(err) {
			return fmt.Errorf("removing image %s on %s: %w", ref, c.host, core.ErrNotFound)
		}
		return fmt.Errorf("removing image %s on %s: %w", ref, c.host, err)
	}
	return nil
}

// Rename renames the container id to name.
func (c *Client) Rename(ctx context.Context, id, name string) error {
	if err := c.api.ContainerRename(ctx, id, name); err != nil {
		return fmt.Errorf("renaming container %s to %s on %s: %w", id, name, c.host, err)
	}
	return nil
}

// Stop stops the container id, with its own stop timeout (default 10s).
// Stopping a stopped container is not an error.
func (c *Client) Stop(ctx context.Context, id string) error {
	if err := c.api.ContainerStop(ctx, id, container.StopOptions{}); err != nil {
		return fmt.Errorf("stopping container %s on %s: %w", id, c.host, err)
	}
	return nil
}

// StopWithin stops the container id, giving it timeout (rounded up to
// whole seconds) before the engine kills it, instead of its own stop
// timeout; a negative timeout waits as long as the container says.
func (c *Client) StopWithin(ctx context.Context, id string, timeout time.Duration) error {
	var opts container.StopOptions
	if timeout >= 0 {
		secs := int((timeout + time.Second - 1) / time.Second)
		opts.Timeout = &secs
	}
	if err := c.api.ContainerStop(ctx, id, opts); err != nil {
		return fmt.Errorf("stopping container %s on %s: %w", id, c.host, err)
	}
	return nil
}

// Kill kills the container id (SIGKILL) and waits until it no longer
// runs. Killing a container that does not run is not an error.
func (c *Client) Kill(ctx context.Context, id string) error {
	if err := c.api.ContainerKill(ctx, id, "KILL"); err != nil {
		if s, ierr := c.InspectState(ctx, id); ierr != nil || s.Running {
			return fmt.Errorf("killing container %s on %s: %w", id, c.host, err)
		}
	}
	for {
		s, err := c.InspectState(ctx, id)
		if err != nil {
			return err
		}
		if !s.Running {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for killed container %s on %s to exit: %w", id, c.host, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Start starts the container id.
func (c *Client) Start(ctx context.Context, id string) error {
	if err := c.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting container %s on %s: %w", id, c.host, err)
	}
	return nil
}

// Remove removes the container id, killing it first when force is set. Its
// volumes, anonymous ones included, are kept: tidewatch never removes a
// volume (a recreated container carries the anonymous ones over, see
// CreateLike). A container already gone is not an error.
func (c *Client) Remove(ctx context.Context, id string, force bool) error {
	err := c.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: force})
	if err != nil && !client.IsErrNotFound(err) {
		return fmt.Errorf("removing container %s on %s: %w", id, c.host, err)
	}
	return nil
}

// Logs returns the last n lines the container id wrote, stdout and stderr
// together (demultiplexed, or read as they are for a TTY).
func (c *Client) Logs(ctx context.Context, id string, n int) ([]string, error) {
	info, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading logs of container %s on %s: %w", id, c.host, err)
	}
	rc, err := c.api.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return nil, fmt.Errorf("reading logs of container %s on %s: %w", id, c.host, err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if info.Config != nil && info.Config.Tty {
		_, err = io.Copy(&out, rc)
	} else {
		_, err = stdcopy.StdCopy(&out, &out, rc)
	}
	if err != nil {
		return nil, fmt.Errorf("reading logs of container %s on %s: %w", id, c.host, err)
	}
	var lines []string
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// CreateLike creates (without starting) a container called name that is the
// container old again, on newImage, by the rules of CreateReplacement, and
// returns its ID.
func (c *Client) CreateLike(ctx context.Context, old, newImage, name string) (string, error) {
	r, err := c.CreateReplacement(ctx, old, newImage, name)
	return r.ID, err
}

// WaitOptions say how long WaitHealthy waits.
type WaitOptions struct {
	// Timeout bounds the whole wait; default 2m.
	Timeout time.Duration
	// StableFor is how long a container without healthcheck must run without
	// restarting to count as up; default 10s.
	StableFor time.Duration
	// Interval is the polling interval; default 250ms.
	Interval time.Duration
}

// NotReadyError says why a container did not become healthy: it exited,
// restarted, was unhealthy, vanished, or the time ran out.
type NotReadyError struct {
	// ID is the container's ID.
	ID string
	// Reason says what happened: "exited with code 1", "unhealthy: …".
	Reason string
	// State is the container's last state seen.
	State State
}

// Error returns "container 0123456789ab: exited with code 1".
func (e *NotReadyError) Error() string { return "container " + short(e.ID) + ": " + e.Reason }

// WaitHealthy polls the container id until it runs and, with a healthcheck,
// is healthy, or, without one, has run without restarting for StableFor.
// It returns a *NotReadyError as soon as the container exits, restarts or
// turns unhealthy, or when Timeout passes; another error when the engine
// cannot be asked or ctx ends.
func (c *Client) WaitHealthy(ctx context.Context, id string, opts WaitOptions) (State, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.StableFor <= 0 {
		opts.StableFor = 10 * time.Second
	}
	if opts.Interval <= 0 {
		opts.Interval = 250 * time.Millisecond
	}
	deadline := time.Now().Add(opts.Timeout)
	var first State
	var runningSince time.Time
	for i := 0; ; i++ {
		s, err := c.InspectState(ctx, id)
		if errors.Is(err, core.ErrNotFound) {
			return first, &NotReadyError{ID: id, Reason: "the container is gone", State: first}
		}
		if err != nil {
			return s, err
		}
		if i == 0 {
			first = s
		}
		notReady := func(format string, args ...any) (State, error) {
			return s, &NotReadyError{ID: s.ID, Reason: fmt.Sprintf(format, args...), State: s}
		}
		switch {
		case s.Status == "exited" || s.Status == "dead":
			reason := fmt.Sprintf("exited with code %d", s.ExitCode)
			if s.Error != "" {
				reason += ": " + s.Error
			}
			return notReady("%s", reason)
		case s.Status == "restarting" || s.RestartCount > first.RestartCount ||
			(!first.StartedAt.IsZero() && !s.StartedAt.Equal(first.StartedAt)):
			return notReady("restarted (restart count %d)", s.RestartCount)
		case s.Health == HealthUnhealthy:
			return notReady("unhealthy; last probe: %s", orNone(s.HealthLog))
		case s.Running && s.Healthcheck && s.Health == HealthHealthy:
			return s, nil
		case s.Running && !s.Healthcheck:
			if runningSince.IsZero() {
				runningSince = time.Now()
			}
			if time.Since(runningSince) >= opts.StableFor {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			switch {
			case !s.Running:
				return notReady("not running within %s (status %s)", opts.Timeout, s.Status)
			case s.Healthcheck:
				return notReady("not healthy within %s (health %s; last probe: %s)", opts.Timeout, orNone(s.Health), orNone(s.HealthLog))
			default:
				return notReady("not stable within %s", opts.Timeout)
			}
		}
		wait := min(opts.Interval, time.Until(deadline)+time.Millisecond)
		if !runningSince.IsZero() {
			wait = min(wait, time.Until(runningSince.Add(opts.StableFor))+time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("waiting for container %s to be healthy: %w", short(id), ctx.Err())
		case <-time.After(max(wait, time.Millisecond)):
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
