package docker

import (
	"context"
	"fmt"
	"maps"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
)

// This file holds how a container is recreated on another image: what of
// its inspected configuration was the user's (kept) and what its image
// gave it (left to the new image), and how the containers that follow it
// (sharing its network namespace, linking to it) are pointed at the new one.

// Replacement is a container CreateReplacement made.
type Replacement struct {
	// ID is the new container's ID.
	ID string
	// LeftVolumes are the anonymous volumes of the old container that the
	// new one does not mount, as "name at /path": the old image declared a
	// VOLUME there, the new image does not. They are kept (tidewatch never
	// removes a volume); a report names them.
	LeftVolumes []string
}

// CreateReplacement creates (without starting) a container called name that
// is the container old again, on newImage: what `docker run` with the same
// options would give on newImage. Everything the user set is kept: host
// configuration (ports, mounts, restart policy, resources, devices,
// capabilities, sysctls, tmpfs, logging…), networks with their aliases and
// static addresses, and the configuration values that differ from what the
// old image gave. What the container had only because its image said so —
// environment entries, entrypoint and command, working dir, user, labels,
// healthcheck fields, stop signal, VOLUMEs and EXPOSEd ports (unless
// published) equal to the old image's — is left out, so that newImage's own
// apply (a value equal to the old image's default counts as the image's,
// even when the user repeated it). Anonymous volumes (a VOLUME of the new
// image, a volume given without a source) are carried over, mounted by name
// where they were, as compose does. API versions before 1.44 take one
// network at creation; the others are connected before it returns.
func (c *Client) CreateReplacement(ctx context.Context, old, newImage, name string) (Replacement, error) {
	info, err := c.api.ContainerInspect(ctx, old)
	if err != nil {
		return Replacement{}, fmt.Errorf("inspecting container %s on %s: %w", old, c.host, err)
	}
	if info.Config == nil || info.HostConfig == nil {
		return Replacement{}, fmt.Errorf("inspecting container %s on %s: the engine gave no configuration", old, c.host)
	}
	oldImage, err := c.imageDefaults(ctx, info.Image)
	if err != nil {
		return Replacement{}, fmt.Errorf("reading the image of container %s: %w", old, err)
	}
	newDefaults, err := c.imageDefaults(ctx, newImage)
	if err != nil {
		return Replacement{}, err
	}
	shared, err := c.volumesFrom(ctx, info)
	if err != nil {
		return Replacement{}, err
	}
	sp := specLike(info, oldImage, newDefaults, newImage, shared)
	id, err := c.create(ctx, sp, name)
	if err != nil {
		return Replacement{}, fmt.Errorf("creating container %s like %s from %s on %s: %w", name, old, newImage, c.host, err)
	}
	return Replacement{ID: id, LeftVolumes: sp.left}, nil
}

// Follower is a container that must follow another (its leader) when the
// leader is replaced: one that shares the leader's network namespace
// (--network container:<leader>), which the engine pins to the leader's ID,
// or one with a legacy link to it (--link <leader>:alias), which the engine
// renames with the leader and resolves when the follower starts.
type Follower struct {
	// State is the follower as it is.
	State
	// SharesNetwork is set when it runs in the leader's network namespace.
	SharesNetwork bool
	// Links are its links to the leader, as "leader:alias".
	Links []string
}

// Why says in a few words why the follower must follow.
func (f Follower) Why() string {
	var why []string
	if f.SharesNetwork {
		why = append(why, "shares its network namespace")
	}
	if len(f.Links) > 0 {
		why = append(why, "links to it ("+strings.Join(f.Links, ", ")+")")
	}
	return strings.Join(why, " and ")
}

// Followers returns the containers (running or not) that follow the
// container leader (ID or name), oldest first.
func (c *Client) Followers(ctx context.Context, leader string) ([]Follower, error) {
	lead, err := c.api.ContainerInspect(ctx, leader)
	if err != nil {
		return nil, fmt.Errorf("inspecting container %s on %s: %w", leader, c.host, err)
	}
	name := strings.TrimPrefix(lead.Name, "/")
	sums, err := c.api.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("listing containers on %s: %w", c.host, err)
	}
	var out []Follower
	for _, s := range sums {
		if s.ID == lead.ID {
			continue
		}
		info, err := c.api.ContainerInspect(ctx, s.ID)
		if client.IsErrNotFound(err) {
			continue // removed since the list
		}
		if err != nil {
			return nil, fmt.Errorf("inspecting container %s on %s: %w", s.ID, c.host, err)
		}
		if info.HostConfig == nil {
			continue
		}
		f := Follower{State: stateOf(info)}
		mode := info.HostConfig.NetworkMode
		if mode.IsContainer() {
			other := mode.ConnectedContainer()
			f.SharesNetwork = other == lead.ID || other == name
		}
		for _, l := range info.HostConfig.Links {
			child, alias, ok := parseLink(l)
			if ok && child == name {
				f.Links = append(f.Links, name+":"+alias)
			}
		}
		if f.SharesNetwork || len(f.Links) > 0 {
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// CreateFollower creates (without starting) a container called name that
// is the follower again, on its own image, following the leader's
// replacement: a network namespace shared with the leader's old container
// (by ID or by one of oldNames) becomes newLeaderID's, and links to one of
// oldNames become links to leaderName. It returns the new container's ID.
func (c *Client) CreateFollower(ctx context.Context, follower string, oldNames []string, newLeaderID, leaderName, name string) (string, error) {
	info, err := c.api.ContainerInspect(ctx, follower)
	if err != nil {
		return "", fmt.Errorf("inspecting container %s on %s: %w", follower, c.host, err)
	}
	if info.Config == nil || info.HostConfig == nil {
		return "", fmt.Errorf("inspecting container %s on %s: the engine gave no configuration", follower, c.host)
	}
	// Its own image, by the reference it was created with when that still
	// names the same image, else by ID.
	img := info.Config.Image
	if id, err := c.ImageID(ctx, img); err != nil || id != info.Image {
		img = info.Image
	}
	defaults, err := c.imageDefaults(ctx, info.Image)
	if err != nil {
		return "", fmt.Errorf("reading the image of container %s: %w", follower, err)
	}
	shared, err := c.volumesFrom(ctx, info)
	if err != nil {
		return "", err
	}
	sp := specLike(info, defaults, defaults, img, shared)
	if mode := sp.host.NetworkMode; mode.IsContainer() {
		if other := mode.ConnectedContainer(); slices.Contains(oldNames, other) {
			sp.host.NetworkMode = container.NetworkMode("container:" + newLeaderID)
		}
	}
	for i, l := range sp.host.Links {
		if child, alias, ok := strings.Cut(l, ":"); ok && slices.Contains(oldNames, child) {
			sp.host.Links[i] = leaderName + ":" + alias
		}
	}
	id, err := c.create(ctx, sp, name)
	if err != nil {
		return "", fmt.Errorf("creating container %s like %s on %s: %w", name, follower, c.host, err)
	}
	return id, nil
}

// create creates the container sp describes and attaches it to its networks.
func (c *Client) create(ctx context.Context, sp spec, name string) (string, error) {
	var netCfg *network.NetworkingConfig
	if sp.primary != "" {
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{sp.primary: sp.networks[sp.primary]}}
	}
	created, err := c.api.ContainerCreate(ctx, sp.config, sp.host, netCfg, nil, name)
	if err != nil {
		return "", err
	}
	for _, net := range slices.Sorted(maps.Keys(sp.networks)) {
		if net == sp.primary {
			continue
		}
		if err := c.api.NetworkConnect(ctx, net, created.ID, sp.networks[net]); err != nil {
			_ = c.Remove(context.WithoutCancel(ctx), created.ID, true)
			return "", fmt.Errorf("connecting it to network %s: %w", net, err)
		}
	}
	return created.ID, nil
}

// imageDefaults are the parts of an image's configuration that a container
// created from it takes unless told otherwise.
type imageDefaults struct {
	Env, Entrypoint, Cmd         []string
	WorkingDir, User, StopSignal string
	Labels                       map[string]string
	Healthcheck                  *container.HealthConfig
	Volumes, ExposedPorts        map[string]struct{}
}

// imageDefaults reads the defaults of the local image ref; nil when the
// engine no longer has it (then nothing can be told apart: the container's
// configuration is kept whole).
func (c *Client) imageDefaults(ctx context.Context, ref string) (*imageDefaults, error) {
	img, err := c.api.ImageInspect(ctx, ref)
	if client.IsErrNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspecting image %s on %s: %w", ref, c.host, err)
	}
	if img.Config == nil {
		return &imageDefaults{}, nil
	}
	ic := img.Config
	return &imageDefaults{Env: ic.Env, Entrypoint: ic.Entrypoint, Cmd: ic.Cmd, WorkingDir: ic.WorkingDir, User: ic.User,
		StopSignal: ic.StopSignal, Labels: ic.Labels, Healthcheck: ic.Healthcheck, Volumes: ic.Volumes, ExposedPorts: ic.ExposedPorts}, nil
}

// spec is what creating a container takes.
type spec struct {
	config   *container.Config
	host     *container.HostConfig
	primary  string                               // the network given at creation ("" for none)
	networks map[string]*network.EndpointSettings // every network to attach it to
	left     []string                             // anonymous volumes not carried over
}

// volumesFrom returns the names of the volumes of the containers info
// takes volumes from (--volumes-from): the engine mounts them again in a
// container created like it, so they are not its own to carry over.
func (c *Client) volumesFrom(ctx context.Context, info container.InspectResponse) (map[string]bool, error) {
	shared := map[string]bool{}
	for _, from := range info.HostConfig.VolumesFrom {
		name := strings.TrimSuffix(strings.TrimSuffix(from, ":ro"), ":rw")
		other, err := c.api.ContainerInspect(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("inspecting container %s, whose volumes %s mounts, on %s: %w", name, strings.TrimPrefix(info.Name, "/"), c.host, err)
		}
		for _, m := range other.Mounts {
			if m.Type == mount.TypeVolume && m.Name != "" {
				shared[m.Name] = true
			}
		}
	}
	return shared, nil
}

// specLike is the spec of a container like info on newImage, without what
// info got from oldImage (nil when unknown: then all is kept); newDefaults
// are newImage's (nil when unknown); shared are the volumes it mounts from
// other containers (volumesFrom).
func specLike(info container.InspectResponse, oldImage, newDefaults *imageDefaults, newImage string, shared map[string]bool) spec {
	var newVolumes map[string]struct{}
	if newDefaults != nil {
		newVolumes = newDefaults.Volumes
	}
	host := *info.HostConfig
	userVolumes := info.Config.Volumes
	if oldImage != nil {
		userVolumes = without(userVolumes, oldImage.Volumes)
	}
	var left []string
	host.Binds, host.Mounts, left = inheritVolumes(info, userVolumes, newVolumes, shared)
	host.Links = slices.Clone(host.Links)
	for i, l := range host.Links {
		if child, alias, ok := parseLink(l); ok {
			host.Links[i] = child + ":" + alias
		}
	}
	primary, networks := endpointsLike(info)
	return spec{config: configLike(info, oldImage, newImage), host: &host, primary: primary, networks: networks, left: left}
}

// parseLink reads a link as the engine shows it ("/db:/web/alias") or as
// it is given ("db:alias"), returning the linked container's name and the alias.
func parseLink(l string) (child, alias string, ok bool) {
	child, alias, ok = strings.Cut(l, ":")
	if !ok {
		return "", "", false
	}
	child = strings.TrimPrefix(child, "/")
	if strings.HasPrefix(alias, "/") {
		alias = path.Base(alias)
	}
	if child == "" || alias == "" {
		return "", "", false
	}
	return child, alias, true
}

// configLike copies info's configuration for newImage, without what it got
// from its image (oldImage, nil when unknown).
func configLike(info container.InspectResponse, oldImage *imageDefaults, newImage string) *container.Config {
	cfg := *info.Config
	cfg.Image = newImage
	if len(info.ID) >= 12 && cfg.Hostname == info.ID[:12] {
		cfg.Hostname = "" // the engine's default: the new container's own ID
	}
	inOtherNetwork := info.HostConfig != nil && info.HostConfig.NetworkMode.IsContainer()
	if inOtherNetwork {
		// The engine shows the other container's hostname, and refuses a
		// hostname or exposed ports given with that network mode.
		cfg.Hostname, cfg.ExposedPorts = "", nil
	}
	if oldImage == nil {
		return &cfg
	}
	cfg.Env = slices.DeleteFunc(slices.Clone(cfg.Env), func(e string) bool { return slices.Contains(oldImage.Env, e) })
	if slices.Equal(cfg.Entrypoint, oldImage.Entrypoint) {
		cfg.Entrypoint = nil
		// With an entrypoint of their own, the engine does not add the
		// image's command: a command beside it is the user's.
		if slices.Equal(cfg.Cmd, oldImage.Cmd) {
			cfg.Cmd = nil
		}
	}
	if cfg.WorkingDir == oldImage.WorkingDir {
		cfg.WorkingDir = ""
	}
	if cfg.User == oldImage.User {
		cfg.User = ""
	}
	if cfg.StopSignal == oldImage.StopSignal {
		cfg.StopSignal = ""
	}
	cfg.Healthcheck = healthLike(cfg.Healthcheck, oldImage.Healthcheck)
	cfg.Labels = mapWithout(cfg.Labels, oldImage.Labels)
	cfg.Volumes = without(cfg.Volumes, oldImage.Volumes)
	if !inOtherNetwork && len(cfg.ExposedPorts) > 0 {
		exposed := map[string]struct{}{}
		for p := range cfg.ExposedPorts {
			_, fromImage := oldImage.ExposedPorts[string(p)]
			_, published := info.HostConfig.PortBindings[p]
			if !fromImage || published {
				exposed[string(p)] = struct{}{}
			}
		}
		cfg.ExposedPorts = nil
		if len(exposed) > 0 {
			cfg.ExposedPorts = nat.PortSet{}
			for p := range exposed {
				cfg.ExposedPorts[nat.Port(p)] = struct{}{}
			}
		}
	}
	return &cfg
}

// healthLike returns the fields of hc that differ from the image's, as the
// engine takes them: a zero field is filled from the image the container
// is created from, field by field (`docker run --health-interval 5s`
// keeps the image's test). nil when nothing differs.
func healthLike(hc, image *container.HealthConfig) *container.HealthConfig {
	if hc == nil || image == nil {
		return hc
	}
	if reflect.DeepEqual(hc, image) {
		return nil
	}
	own := *hc
	if slices.Equal(own.Test, image.Test) {
		own.Test = nil
	}
	if own.Interval == image.Interval {
		own.Interval = 0
	}
	if own.Timeout == image.Timeout {
		own.Timeout = 0
	}
	if own.StartPeriod == image.StartPeriod {
		own.StartPeriod = 0
	}
	if own.StartInterval == image.StartInterval {
		own.StartInterval = 0
	}
	if own.Retries == image.Retries {
		own.Retries = 0
	}
	if reflect.DeepEqual(own, container.HealthConfig{}) {
		return nil
	}
	return &own
}

// mapWithout returns m without the entries that image has with the same value.
func mapWithout(m, image map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := map[string]string{}
	for k, v := range m {
		if iv, ok := image[k]; !ok || iv != v {
			out[k] = v
		}
	}
	return out
}

// without returns set without the keys of image; nil when nothing is left.
func without(set, image map[string]struct{}) map[string]struct{} {
	var out map[string]struct{}
	for k := range set {
		if _, ok := image[k]; ok {
			continue
		}
		if out == nil {
			out = map[string]struct{}{}
		}
		out[k] = struct{}{}
	}
	return out
}

// inheritVolumes returns the binds and mounts of a container recreated like
// info: info's own, with each anonymous volume it has mounted (at a path
// the user declared a volume at — userVolumes —, a VOLUME of the new image
// in newVolumes, or given as a volume without a source) mounted again by
// its name at the same path. The anonymous volumes at paths only the old
// image declared are not mounted, and returned in left. Volumes from other
// containers (VolumesFrom: their names are in shared) and tmpfs are left
// to the engine, which mounts them again.
func inheritVolumes(info container.InspectResponse, userVolumes, newVolumes map[string]struct{}, shared map[string]bool) (binds []string, mounts []mount.Mount, left []string) {
	hc := info.HostConfig
	named := map[string]bool{} // destinations a bind or mount with a source covers
	anonBind := map[string]bool{}
	for _, b := range hc.Binds {
		src, dst, ok := splitBind(b)
		if !ok {
			anonBind[path.Clean(dst)] = true // a volume without source: replaced by a mount of it by name
			continue
		}
		named[path.Clean(dst)] = src != ""
		binds = append(binds, b)
	}
	mounts = slices.Clone(hc.Mounts)
	anonMount := map[string]int{}
	for i, m := range mounts {
		if m.Source == "" && m.Type == mount.TypeVolume {
			anonMount[path.Clean(m.Target)] = i
		} else {
			named[path.Clean(m.Target)] = true
		}
	}
	declared := func(set map[string]struct{}, dst string) bool {
		for p := range set {
			if path.Clean(p) == dst {
				return true
			}
		}
		return false
	}
	var fromImage map[string]struct{}
	if info.Config != nil {
		fromImage = info.Config.Volumes
	}
	for _, mp := range info.Mounts {
		dst := path.Clean(mp.Destination)
		if mp.Type != mount.TypeVolume || mp.Name == "" || named[dst] || shared[mp.Name] {
			continue
		}
		i, isMount := anonMount[dst]
		switch {
		case isMount:
			mounts[i].Source = mp.Name
		case anonBind[dst] || declared(userVolumes, dst) || declared(newVolumes, dst):
			mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: mp.Name, Target: mp.Destination, ReadOnly: !mp.RW})
		case declared(fromImage, dst):
			left = append(left, mp.Name+" at "+mp.Destination)
		default:
			// from VolumesFrom, which the engine mounts again
		}
	}
	return binds, mounts, left
}

// splitBind splits a bind ("src:dst[:opts]") into source and destination;
// ok is false for a bare destination ("/data"), an anonymous volume.
func splitBind(b string) (src, dst string, ok bool) {
	parts := strings.Split(b, ":")
	if len(parts) == 1 {
		return "", parts[0], false
	}
	return parts[0], parts[1], true
}

// endpointsLike returns the network the container was created on (its
// network mode, when that is a network it is attached to) and the endpoint
// settings to attach a new container to each of its networks: aliases,
// links, IPAM (static addresses) and driver options, without the old
// container's own short ID among the aliases nor its allocated addresses.
func endpointsLike(info container.InspectResponse) (primary string, eps map[string]*network.EndpointSettings) {
	eps = map[string]*network.EndpointSettings{}
	mode := info.HostConfig.NetworkMode
	if mode.IsHost() || mode.IsNone() || mode.IsContainer() || info.NetworkSettings == nil {
		return "", eps
	}
	short := ""
	if len(info.ID) >= 12 {
		short = info.ID[:12]
	}
	for name, es := range info.NetworkSettings.Networks {
		if es == nil {
			continue
		}
		ep := &network.EndpointSettings{Links: slices.Clone(es.Links), DriverOpts: maps.Clone(es.DriverOpts)}
		if es.IPAMConfig != nil {
			ep.IPAMConfig = es.IPAMConfig.Copy()
		}
		for _, a := range es.Aliases {
			if a != short && a != info.ID {
				ep.Aliases = append(ep.Aliases, a)
			}
		}
		eps[name] = ep
	}
	name := string(mode)
	if mode.IsDefault() {
		name = "bridge"
	}
	if _, ok := eps[name]; ok {
		primary = name
	}
	return primary, eps
}
