package docker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/tidewatch/tidewatch/core"
)

// DefaultHost is the engine address used when none is configured.
const DefaultHost = "unix:///var/run/docker.sock"

// Options say how to reach one engine.
type Options struct {
	// Host is the engine address: "unix:///path" or "tcp://host:port". Default DefaultHost.
	Host string
	// CAFile, CertFile and KeyFile enable TLS for a tcp host. Empty: plain TCP.
	CAFile, CertFile, KeyFile string
}

// Client lists and inspects containers on one engine.
type Client struct {
	api  *client.Client
	host string
}

// New returns a client for the engine at opts.Host. It does no I/O: the API
// version is negotiated on the first request.
func New(opts Options) (*Client, error) {
	host := opts.Host
	if host == "" {
		host = DefaultHost
	}
	cliOpts := []client.Opt{client.WithHost(host), client.WithAPIVersionNegotiation()}
	if opts.CAFile != "" || opts.CertFile != "" || opts.KeyFile != "" {
		cliOpts = append(cliOpts, client.WithTLSClientConfig(opts.CAFile, opts.CertFile, opts.KeyFile))
	}
	api, err := client.NewClientWithOpts(cliOpts...)
	if err != nil {
		return nil, fmt.Errorf("creating Docker client for %s: %w", host, err)
	}
	return &Client{api: api, host: host}, nil
}

// Host returns the engine address.
func (c *Client) Host() string { return c.host }

// Close releases the client's connections.
func (c *Client) Close() error { return c.api.Close() }

// Ping checks that the engine answers, and negotiates the API version.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.api.Ping(ctx); err != nil {
		return fmt.Errorf("pinging Docker engine at %s: %w", c.host, err)
	}
	return nil
}

// APIVersion returns the API version in use (after the first request).
func (c *Client) APIVersion() string { return c.api.ClientVersion() }

// List returns the containers on the engine: running ones, or all when all is
// set. Each carries the image it was created with and the RepoDigests of the
// image it runs (by image ID, not by what its tag points to now). It is
// Containers, then Image once per image, one after another; the watch loop
// calls those itself, to inspect beside its registry requests and to cache
// by image ID.
func (c *Client) List(ctx context.Context, all bool) ([]core.Container, error) {
	out, err := c.Containers(ctx, all)
	if err != nil {
		return nil, err
	}
	images := map[string]core.LocalImage{} // image ID → what the image says, asked once per image
	for i, ctr := range out {
		img, ok := images[ctr.ImageID]
		if !ok {
			if img, err = c.Image(ctx, ctr.ImageID); err != nil {
				return nil, err
			}
			images[ctr.ImageID] = img
		}
		out[i].RepoDigests, out[i].Platform = img.RepoDigests, img.Platform
	}
	return out, nil
}

// Containers returns the containers on the engine, running ones or all
// when all is set, without inspecting their images: RepoDigests and
// Platform are left empty (see Image).
func (c *Client) Containers(ctx context.Context, all bool) ([]core.Container, error) {
	sums, err := c.api.ContainerList(ctx, container.ListOptions{All: all})
	if err != nil {
		return nil, fmt.Errorf("listing containers on %s: %w", c.host, err)
	}
	out := make([]core.Container, 0, len(sums))
	for _, s := range sums {
		ctr := core.Container{
			ID:      s.ID,
			Name:    containerName(s.Names),
			Image:   s.Image,
			ImageID: s.ImageID,
			Labels:  s.Labels,
			State:   s.State,
			Created: time.Unix(s.Created, 0).UTC(),
		}
		// The list shows the image ID instead of the configured name when
		// the name now resolves to another image; the configured name is in
		// the container's config.
		if looksLikeID(s.Image, s.ImageID) {
			info, err := c.api.ContainerInspect(ctx, s.ID)
			if err != nil {
				if client.IsErrNotFound(err) {
					continue // removed since the list
				}
				return nil, fmt.Errorf("inspecting container %s on %s: %w", ctr.Name, c.host, err)
			}
			if info.Config != nil {
				ctr.Image = info.Config.Image
			}
		}
		ctr.DisplayName = displayName(ctr)
		out = append(out, ctr)
	}
	return out, nil
}

// Image returns the RepoDigests and platform of the image with ID imageID;
// nothing, without error, for an image the engine no longer has (a
// dangling container image: nothing to compare against).
func (c *Client) Image(ctx context.Context, imageID string) (core.LocalImage, error) {
	img, err := c.api.ImageInspect(ctx, imageID)
	if err != nil {
		if client.IsErrNotFound(err) {
			return core.LocalImage{}, nil
		}
		return core.LocalImage{}, fmt.Errorf("inspecting image %s on %s: %w", imageID, c.host, err)
	}
	return core.LocalImage{RepoDigests: img.RepoDigests, Platform: core.Platform{OS: img.Os, Architecture: img.Architecture, Variant: img.Variant}}, nil
}

// Inspect returns one container by ID or name, with ErrNotFound when it is gone.
func (c *Client) Inspect(ctx context.Context, id string) (core.Container, error) {
	info, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		if client.IsErrNotFound(err) {
			return core.Container{}, fmt.Errorf("inspecting container %s on %s: %w", id, c.host, core.ErrNotFound)
		}
		return core.Container{}, fmt.Errorf("inspecting container %s on %s: %w", id, c.host, err)
	}
	ctr := core.Container{
		ID:      info.ID,
		Name:    strings.TrimPrefix(info.Name, "/"),
		ImageID: info.Image,
	}
	if info.Config != nil {
		ctr.Image = info.Config.Image
		ctr.Labels = info.Config.Labels
	}
	if info.State != nil {
		ctr.State = info.State.Status
	}
	if t, err := time.Parse(time.RFC3339Nano, info.Created); err == nil {
		ctr.Created = t.UTC()
	}
	img, err := c.Image(ctx, info.Image)
	if err != nil {
		return core.Container{}, err
	}
	ctr.RepoDigests, ctr.Platform = img.RepoDigests, img.Platform
	ctr.DisplayName = displayName(ctr)
	return ctr, nil
}

// Events streams the container events the watch loop acts on (start, and
// destroy so that gone containers are noticed) until ctx ends or the
// connection breaks; the error channel then carries why. Events since the
// given time (when not zero) that the engine still holds are replayed first,
// so that nothing is missed between subscriptions. A caller reconnects by
// calling Events again.
func (c *Client) Events(ctx context.Context, since time.Time) (<-chan core.EngineEvent, <-chan error) {
	f := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionStart)),
		filters.Arg("event", string(events.ActionDestroy)),
	)
	opts := events.ListOptions{Filters: f}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	msgs, errs := c.api.Events(ctx, opts)
	out := make(chan core.EngineEvent)
	outErr := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					outErr <- fmt.Errorf("reading events from %s: stream closed", c.host)
					return
				}
				ev := core.EngineEvent{ContainerID: m.Actor.ID, Action: string(m.Action), At: time.Unix(0, m.TimeNano).UTC()}
				select {
				case out <- ev:
				case <-ctx.Done():
					outErr <- ctx.Err()
					return
				}
			case err := <-errs:
				if err == nil || ctx.Err() != nil {
					err = ctx.Err()
				}
				outErr <- fmt.Errorf("reading events from %s: %w", c.host, err)
				return
			}
		}
	}()
	return out, outErr
}

func containerName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	// A linked container has several names; its own is the one with one slash.
	for _, n := range names {
		if strings.Count(n, "/") == 1 {
			return strings.TrimPrefix(n, "/")
		}
	}
	return strings.TrimPrefix(names[0], "/")
}

func looksLikeID(image, imageID string) bool {
	return image == imageID || strings.HasPrefix(image, "sha256:") ||
		(len(image) >= 12 && strings.HasPrefix(strings.TrimPrefix(imageID, "sha256:"), image))
}

func displayName(c core.Container) string {
	if n := c.Labels[core.LabelDisplayName]; n != "" {
		return n
	}
	return c.Name
}
