package docker

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/tidewatch/tidewatch/core"
)

// This file lists Swarm services as core.Containers. On a swarm manager a
// watcher sees each service once, in place of the task containers that run
// its replicas: a run then asks each repository once, however many services
// and replicas use it, and an update rolls the service (the engine's rolling
// update), not a replica.

// Labels the engine puts on Swarm objects.
const (
	// LabelServiceID is on every task container: the ID of its service.
	LabelServiceID = "com.docker.swarm.service.id"
	// LabelStack is on the services (and containers) of a stack: its name.
	LabelStack = "com.docker.stack.namespace"
)

// ServiceNameSuffix is appended to a service's name when a container (not
// one of its tasks) has the same name on the engine, so that the two are
// told apart wherever tidewatch names what it watches. Docker refuses "@" in
// container names, so a name with it is never a container's.
const ServiceNameSuffix = "@service"

// States of a service (core.Container.State), from its tasks.
const (
	// ServiceRunning: at least one task runs.
	ServiceRunning = "running"
	// ServiceNotRunning: tasks are desired and none runs (pending, failing,
	// no node fits).
	ServiceNotRunning = "not-running"
	// ServiceScaledToZero: no task is desired (replicas 0, a job that ended,
	// a global service no node fits).
	ServiceScaledToZero = "scaled-to-zero"
)

// manager reports whether the engine is a swarm manager that can answer
// for services now. An engine that is not in a swarm, or is a worker, is
// not one (false, nil); a manager that cannot answer (no quorum) is an
// error, so that its services are not taken for gone.
func (c *Client) manager(ctx context.Context) (bool, error) {
	info, err := c.api.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("asking %s whether it is a swarm manager: %w", c.host, err)
	}
	return info.Swarm.ControlAvailable, nil
}

// listServices returns the engine's services, or nil when it is not a
// swarm manager.
func (c *Client) listServices(ctx context.Context) ([]swarm.Service, error) {
	svcs, err := c.api.ServiceList(ctx, swarm.ServiceListOptions{})
	if err == nil {
		return svcs, nil
	}
	if errdefs.IsUnavailable(err) {
		// "This node is not a swarm manager": a plain engine or a worker.
		// A manager without quorum says much the same: ask which it is.
		if mgr, merr := c.manager(ctx); merr == nil && !mgr {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("listing services on %s: %w", c.host, err)
}

// taskImage is what a task container on this engine says about the image
// its service runs.
type taskImage struct {
	image   string // the reference the task was created with ("repo:tag@sha256:…")
	imageID string
}

// withServices returns ctrs followed by the services of the engine when it
// is a swarm manager (none when c lists no services): with all false, only
// those that run a task. tasks are the task containers found on this
// engine, from which each service gets the ID of the image it runs here
// (whose digests and platform Image gives).
func (c *Client) withServices(ctx context.Context, all bool, ctrs []core.Container, tasks []container.Summary) ([]core.Container, error) {
	if c.noServices {
		return ctrs, nil
	}
	svcs, err := c.listServices(ctx)
	if err != nil || len(svcs) == 0 {
		return ctrs, err
	}
	running, err := c.runningTasks(ctx, "")
	if err != nil {
		return nil, err
	}
	nodes, err := c.nodeNames(ctx, running)
	if err != nil {
		return nil, err
	}
	local := map[string][]taskImage{} // service ID → its task containers here
	for _, s := range tasks {
		id := s.Labels[LabelServiceID]
		local[id] = append(local[id], taskImage{image: s.Image, imageID: s.ImageID})
	}
	// The names of every container, running or not, that is not a task:
	// a service named as one of them takes ServiceNameSuffix.
	names := make(map[string]bool, len(ctrs))
	for _, ctr := range ctrs {
		names[ctr.Name] = true
	}
	if !all {
		sums, err := c.api.ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			return nil, fmt.Errorf("listing containers on %s: %w", c.host, err)
		}
		for _, s := range sums {
			if s.Labels[LabelServiceID] == "" {
				names[containerName(s.Names)] = true
			}
		}
	}
	for _, svc := range svcs {
		out := serviceContainer(svc, running[svc.ID], nodes, local[svc.ID])
		if !all && out.State != ServiceRunning {
			continue
		}
		if names[out.Name] {
			out.Name += ServiceNameSuffix
		}
		ctrs = append(ctrs, out)
	}
	return ctrs, nil
}

// serviceOf is Inspect's answer when id is a service or a task container:
// the service (ok) or why it cannot be given. info and err are what
// inspecting id as a container answered. ok is false, with no error, when id
// is a plain container, or names nothing and no service either.
func (c *Client) serviceOf(ctx context.Context, id string, info container.InspectResponse, err error) (core.Container, bool, error) {
	switch {
	case err == nil && info.Config != nil && info.Config.Labels[LabelServiceID] != "":
		sid := info.Config.Labels[LabelServiceID]
		if c.noServices {
			return core.Container{}, true, fmt.Errorf("inspecting container %s on %s: a task of Swarm service %s, and services are not watched: %w", id, c.host, sid, core.ErrNotFound)
		}
		svc, found, err := c.inspectService(ctx, sid)
		if err == nil && !found {
			err = fmt.Errorf("inspecting service %s of task container %s on %s: %w", sid, id, c.host, core.ErrNotFound)
		}
		return svc, true, err
	case err != nil && client.IsErrNotFound(err) && !c.noServices:
		svc, found, serr := c.inspectService(ctx, strings.TrimSuffix(id, ServiceNameSuffix))
		return svc, found || serr != nil, serr
	}
	return core.Container{}, false, nil
}

// inspectService returns the service id (ID or name) as a core.Container;
// found is false when the engine has no such service or is no manager.
func (c *Client) inspectService(ctx context.Context, id string) (core.Container, bool, error) {
	svc, _, err := c.api.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	switch {
	case err == nil:
	case client.IsErrNotFound(err):
		return core.Container{}, false, nil
	case errdefs.IsUnavailable(err):
		if mgr, merr := c.manager(ctx); merr == nil && !mgr {
			return core.Container{}, false, nil
		}
		return core.Container{}, false, fmt.Errorf("inspecting service %s on %s: %w", id, c.host, err)
	default:
		return core.Container{}, false, fmt.Errorf("inspecting service %s on %s: %w", id, c.host, err)
	}
	running, err := c.runningTasks(ctx, svc.ID)
	if err != nil {
		return core.Container{}, false, err
	}
	nodes, err := c.nodeNames(ctx, running)
	if err != nil {
		return core.Container{}, false, err
	}
	sums, err := c.api.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelServiceID+"="+svc.ID))})
	if err != nil {
		return core.Container{}, false, fmt.Errorf("listing the task containers of service %s on %s: %w", svc.Spec.Name, c.host, err)
	}
	var local []taskImage
	for _, s := range sums {
		local = append(local, taskImage{image: s.Image, imageID: s.ImageID})
	}
	out := serviceContainer(svc, running[svc.ID], nodes, local)
	if out.ImageID != "" {
		img, err := c.Image(ctx, out.ImageID)
		if err != nil {
			return core.Container{}, false, err
		}
		out.SetImage(img)
	}
	// A container of the same name (not a task: their names carry the slot)
	// makes the service's name take the suffix, as List does.
	if info, err := c.api.ContainerInspect(ctx, svc.Spec.Name); err == nil && (info.Config == nil || info.Config.Labels[LabelServiceID] == "") {
		out.Name += ServiceNameSuffix
	}
	return out, true, nil
}

// runningTasks returns the tasks meant to run, of service serviceID or of
// every service when it is "", by service ID.
func (c *Client) runningTasks(ctx context.Context, serviceID string) (map[string][]swarm.Task, error) {
	f := filters.NewArgs(filters.Arg("desired-state", string(swarm.TaskStateRunning)))
	if serviceID != "" {
		f.Add("service", serviceID)
	}
	tasks, err := c.api.TaskList(ctx, swarm.TaskListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing tasks on %s: %w", c.host, err)
	}
	out := map[string][]swarm.Task{}
	for _, t := range tasks {
		if serviceID == "" || t.ServiceID == serviceID {
			out[t.ServiceID] = append(out[t.ServiceID], t)
		}
	}
	return out, nil
}

// nodeNames returns the hostnames of the nodes the tasks run on, by node ID;
// nothing is asked when no task runs.
func (c *Client) nodeNames(ctx context.Context, tasks map[string][]swarm.Task) (map[string]string, error) {
	out := map[string]string{}
	need := false
	for _, ts := range tasks {
		for _, t := range ts {
			need = need || (t.NodeID != "" && t.Status.State == swarm.TaskStateRunning)
		}
	}
	if !need {
		return out, nil
	}
	nodes, err := c.api.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes on %s: %w", c.host, err)
	}
	for _, n := range nodes {
		name := n.Description.Hostname
		if name == "" {
			name = n.ID
		}
		out[n.ID] = name
	}
	return out, nil
}

// serviceContainer describes svc as the watch loop sees what it watches.
// Its image is the spec's without the digest the engine pinned it to
// ("repo:1.0.0@sha256:…" → "repo:1.0.0", watched by tag), and that digest
// is its RepoDigest, compared with the registry's. Its ImageID is the image
// that its task containers on this engine run, if any: what Image says of
// it (its digests and platform, with which a changed digest is resolved as
// for a container) is added by Container.SetImage.
func serviceContainer(svc swarm.Service, tasks []swarm.Task, nodes map[string]string, local []taskImage) core.Container {
	spec := svc.Spec
	image := ""
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		image = cs.Image
	}
	ctr := core.Container{
		ID:      svc.ID,
		Name:    spec.Name,
		Labels:  spec.Labels,
		Created: svc.CreatedAt.UTC(),
		Kind:    core.ObjectService,
		Service: &core.Service{Mode: serviceMode(spec.Mode), Stack: spec.Labels[LabelStack]},
	}
	name, digest := SplitPinned(image)
	ctr.Image = name
	if digest != "" {
		ctr.RepoDigests = []string{repoOf(name) + "@" + digest}
	} else {
		ctr.Image = image
	}
	// The image its tasks run here: one created from the spec's image if
	// any (an update may be under way), else any.
	var pick *taskImage
	for i := range local {
		if pick == nil || (local[i].image == image && pick.image != image) {
			pick = &local[i]
		}
	}
	if pick != nil {
		ctr.ImageID = pick.imageID
	}

	s := ctr.Service
	for _, t := range tasks {
		if t.Status.State != swarm.TaskStateRunning {
			continue
		}
		s.Running++
		if n := nodes[t.NodeID]; n != "" && !slices.Contains(s.Nodes, n) {
			s.Nodes = append(s.Nodes, n)
		}
	}
	slices.Sort(s.Nodes)
	if r := spec.Mode.Replicated; r != nil && r.Replicas != nil {
		s.Desired = *r.Replicas
	} else {
		s.Desired = uint64(len(tasks))
	}
	switch {
	case s.Running > 0:
		ctr.State = ServiceRunning
	case s.Desired == 0:
		ctr.State = ServiceScaledToZero
	default:
		ctr.State = ServiceNotRunning
	}
	if u := svc.UpdateStatus; u != nil {
		s.UpdateState, s.UpdateMessage = string(u.State), u.Message
	}
	ctr.DisplayName = displayName(core.Container{Name: spec.Name, Labels: spec.Labels})
	return ctr
}

// SplitPinned splits an image reference pinned by digest into the
// reference without the digest and the digest: "repo:1.0@sha256:…" →
// ("repo:1.0", "sha256:…"). A reference without digest, or with a digest
// and no tag (which names nothing to follow), is returned whole with "".
func SplitPinned(image string) (name, digest string) {
	name, digest, ok := strings.Cut(image, "@")
	if !ok {
		return image, ""
	}
	if i := strings.LastIndex(name, ":"); i < 0 || strings.Contains(name[i:], "/") {
		return image, "" // no tag
	}
	return name, digest
}

// repoOf drops the tag of a reference that has one: "127.0.0.1:5000/app:1.0" → "127.0.0.1:5000/app".
func repoOf(ref string) string {
	if i := strings.LastIndex(ref, ":"); i >= 0 && !strings.Contains(ref[i:], "/") {
		return ref[:i]
	}
	return ref
}

func serviceMode(m swarm.ServiceMode) string {
	switch {
	case m.Global != nil:
		return "global"
	case m.ReplicatedJob != nil:
		return "replicated-job"
	case m.GlobalJob != nil:
		return "global-job"
	}
	return "replicated"
}

// serviceEvent turns a service event into the event the watch loop acts on:
// a service created, or whose image, replicas or update state changed to
// an end (completed, paused, rolled back), is reported as "start" of the
// service's ID, so that the loop checks it again, as it checks a container
// that started; its removal as "destroy". Other service events are dropped.
func serviceEvent(m events.Message) (string, bool) {
	switch m.Action {
	case events.ActionCreate:
		return string(events.ActionStart), true
	case events.ActionRemove:
		return string(events.ActionDestroy), true
	case events.ActionUpdate:
		a := m.Actor.Attributes
		switch swarm.UpdateState(a["updatestate.new"]) {
		case swarm.UpdateStateCompleted, swarm.UpdateStatePaused, swarm.UpdateStateRollbackCompleted, swarm.UpdateStateRollbackPaused:
			return string(events.ActionStart), true
		}
		if a["image.new"] != "" || a["replicas.new"] != "" {
			return string(events.ActionStart), true
		}
	}
	return "", false
}
