package docker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/tidewatch/tidewatch/core"
)

// This file holds what a rollout of a Swarm service needs of the manager:
// the service's state, the digest a tag points to, the update to a new
// image (the engine then rolls the tasks and, when told so, rolls back),
// the tasks, and their logs.

// Update states of a service (ServiceState.Update.State), the engine's.
const (
	UpdateUpdating          = string(swarm.UpdateStateUpdating)
	UpdatePaused            = string(swarm.UpdateStatePaused)
	UpdateCompleted         = string(swarm.UpdateStateCompleted)
	UpdateRollbackStarted   = string(swarm.UpdateStateRollbackStarted)
	UpdateRollbackPaused    = string(swarm.UpdateStateRollbackPaused)
	UpdateRollbackCompleted = string(swarm.UpdateStateRollbackCompleted)
)

// Failure actions and orders of an UpdatePolicy, the engine's.
const (
	FailurePause    = swarm.UpdateFailureActionPause
	FailureContinue = swarm.UpdateFailureActionContinue
	FailureRollback = swarm.UpdateFailureActionRollback
	OrderStopFirst  = swarm.UpdateOrderStopFirst
	OrderStartFirst = swarm.UpdateOrderStartFirst
)

// UpdatePolicy is how the engine rolls a service's tasks to a new spec (or
// back): a service's UpdateConfig or RollbackConfig.
type UpdatePolicy struct {
	// Parallelism is how many tasks are updated at once; 0 means all.
	Parallelism uint64
	// Delay is the wait between batches.
	Delay time.Duration
	// FailureAction is FailurePause, FailureContinue or FailureRollback
	// (for an update; a rollback takes pause or continue).
	FailureAction string
	// Monitor is how long each new task is watched for failure.
	Monitor time.Duration
	// MaxFailureRatio is the share of tasks that may fail before FailureAction.
	MaxFailureRatio float32
	// Order is OrderStopFirst or OrderStartFirst.
	Order string
}

// ServiceUpdateStatus is the engine's account of a service's last update.
type ServiceUpdateStatus struct {
	// State is one of the Update* states; "" when the service was never updated.
	State string
	// Message is the engine's message ("update completed", "update rolled
	// back due to failure or early termination of task …").
	Message string
	// StartedAt and CompletedAt bound it; zero when unknown.
	StartedAt, CompletedAt time.Time
}

// ServiceState is a Swarm service as a rollout sees it.
type ServiceState struct {
	// ID and Name identify it; Version is its spec's version, which an
	// update must name (the engine refuses an update of another version).
	ID, Name string
	Version  uint64
	// Image is the spec's image as the engine holds it, pinned
	// ("127.0.0.1:5000/app:1.0.0@sha256:…"); PreviousImage the previous
	// spec's, "" when there is none.
	Image, PreviousImage string
	// Labels are the service's labels.
	Labels map[string]string
	// Mode is "replicated", "global", "replicated-job" or "global-job";
	// Replicas the replicas of a replicated service.
	Mode     string
	Replicas uint64
	// UpdateConfig and RollbackConfig are the service's own, nil when it has none.
	UpdateConfig, RollbackConfig *UpdatePolicy
	// HostPorts is true when it publishes a port in host mode, where two
	// tasks cannot run on one node at once (no start-first).
	HostPorts bool
	// UpdatedAt is when its spec or status last changed, on the manager's clock.
	UpdatedAt time.Time
	// Update is the state of its last update.
	Update ServiceUpdateStatus
}

// InspectService returns the service id (ID or name); the error wraps
// core.ErrNotFound when the engine has no such service or is no swarm manager.
func (c *Client) InspectService(ctx context.Context, id string) (ServiceState, error) {
	svc, _, err := c.api.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		if client.IsErrNotFound(err) {
			return ServiceState{}, fmt.Errorf("inspecting service %s on %s: %w", id, c.host, core.ErrNotFound)
		}
		if errdefs.IsUnavailable(err) {
			if mgr, merr := c.manager(ctx); merr == nil && !mgr {
				return ServiceState{}, fmt.Errorf("inspecting service %s on %s: %w (%w)", id, c.host, errNotManager, core.ErrNotFound)
			}
		}
		return ServiceState{}, fmt.Errorf("inspecting service %s on %s: %w", id, c.host, err)
	}
	return serviceState(svc), nil
}

// errNotManager says that an engine cannot answer for services.
var errNotManager = errors.New("the engine is not a swarm manager")

func serviceState(svc swarm.Service) ServiceState {
	spec := svc.Spec
	s := ServiceState{ID: svc.ID, Name: spec.Name, Version: svc.Version.Index, Labels: spec.Labels,
		Mode: serviceMode(spec.Mode), UpdatedAt: svc.UpdatedAt.UTC()}
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		s.Image = cs.Image
	}
	if p := svc.PreviousSpec; p != nil && p.TaskTemplate.ContainerSpec != nil {
		s.PreviousImage = p.TaskTemplate.ContainerSpec.Image
	}
	if r := spec.Mode.Replicated; r != nil && r.Replicas != nil {
		s.Replicas = *r.Replicas
	}
	s.UpdateConfig, s.RollbackConfig = policyOf(spec.UpdateConfig), policyOf(spec.RollbackConfig)
	if ep := spec.EndpointSpec; ep != nil {
		for _, p := range ep.Ports {
			s.HostPorts = s.HostPorts || p.PublishMode == swarm.PortConfigPublishModeHost
		}
	}
	if u := svc.UpdateStatus; u != nil {
		s.Update = ServiceUpdateStatus{State: string(u.State), Message: u.Message}
		if u.StartedAt != nil {
			s.Update.StartedAt = u.StartedAt.UTC()
		}
		if u.CompletedAt != nil {
			s.Update.CompletedAt = u.CompletedAt.UTC()
		}
	}
	return s
}

func policyOf(u *swarm.UpdateConfig) *UpdatePolicy {
	if u == nil {
		return nil
	}
	return &UpdatePolicy{Parallelism: u.Parallelism, Delay: u.Delay, FailureAction: u.FailureAction, Monitor: u.Monitor,
		MaxFailureRatio: u.MaxFailureRatio, Order: u.Order}
}

func (p UpdatePolicy) config() *swarm.UpdateConfig {
	return &swarm.UpdateConfig{Parallelism: p.Parallelism, Delay: p.Delay, FailureAction: p.FailureAction, Monitor: p.Monitor,
		MaxFailureRatio: p.MaxFailureRatio, Order: p.Order}
}

// encodeAuth encodes auth as the X-Registry-Auth header does; "" when anonymous.
func encodeAuth(auth core.RegistryAuth) (string, error) {
	if auth.Anonymous() {
		return "", nil
	}
	enc, err := registry.EncodeAuthConfig(authConfig(auth))
	if err != nil {
		return "", fmt.Errorf("encoding the credentials for %s: %w", auth.Server, err)
	}
	return enc, nil
}

// DistributionDigest asks the engine which manifest digest ref
// ("repo:1.1.0") points to in its registry, with auth (anonymous when zero):
// what `docker service update` pins an image to.
func (c *Client) DistributionDigest(ctx context.Context, ref string, auth core.RegistryAuth) (string, error) {
	enc, err := encodeAuth(auth)
	if err != nil {
		return "", err
	}
	di, err := c.api.DistributionInspect(ctx, ref, enc)
	if err != nil {
		return "", fmt.Errorf("asking the registry of %s for its digest through %s: %w", ref, c.host, err)
	}
	return di.Descriptor.Digest.String(), nil
}

// ServiceChange is an update of a service to a new image.
type ServiceChange struct {
	// Image is the new image, pinned by digest ("repo:1.1.0@sha256:…").
	Image string
	// Auth is sent with the update, so that every node pulls with it (what
	// `docker service update --with-registry-auth` does); zero keeps the
	// credentials the service was given before.
	Auth core.RegistryAuth
	// UpdateConfig and RollbackConfig, when not nil, become the service's
	// (for a service that has none).
	UpdateConfig, RollbackConfig *UpdatePolicy
}

// UpdateService changes the image of the service id, whose spec must still
// be at version, and returns the engine's warnings. The engine is asked for
// the image's platforms, as `docker service update` does, so that tasks are
// placed on nodes that can run it; the image keeps the digest it names. The
// engine then rolls the tasks as the service's update config says.
func (c *Client) UpdateService(ctx context.Context, id string, version uint64, ch ServiceChange) ([]string, error) {
	svc, _, err := c.api.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating service %s on %s: %w", id, c.host, err)
	}
	if svc.Version.Index != version {
		return nil, fmt.Errorf("updating service %s on %s: %w (version %d, expected %d)", id, c.host, ErrServiceChanged, svc.Version.Index, version)
	}
	spec := svc.Spec
	if spec.TaskTemplate.ContainerSpec == nil {
		return nil, fmt.Errorf("updating service %s on %s: it does not run containers", id, c.host)
	}
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Image = ch.Image
	spec.TaskTemplate.ContainerSpec = &cs
	if ch.UpdateConfig != nil {
		spec.UpdateConfig = ch.UpdateConfig.config()
	}
	if ch.RollbackConfig != nil {
		spec.RollbackConfig = ch.RollbackConfig.config()
	}
	opts := swarm.ServiceUpdateOptions{QueryRegistry: true}
	if opts.EncodedRegistryAuth, err = encodeAuth(ch.Auth); err != nil {
		return nil, err
	}
	if opts.EncodedRegistryAuth == "" {
		opts.RegistryAuthFrom = swarm.RegistryAuthFromSpec
	}
	resp, err := c.api.ServiceUpdate(ctx, svc.ID, svc.Version, spec, opts)
	if err != nil {
		return nil, fmt.Errorf("updating service %s to %s on %s: %w", svc.Spec.Name, ch.Image, c.host, err)
	}
	return resp.Warnings, nil
}

// ErrServiceChanged says that a service's spec changed since it was read.
var ErrServiceChanged = errors.New("the service changed since it was read")

// RollbackService asks the engine to roll the service id back to its
// previous spec (`docker service rollback`), with its rollback config.
func (c *Client) RollbackService(ctx context.Context, id string) ([]string, error) {
	svc, _, err := c.api.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("rolling back service %s on %s: %w", id, c.host, err)
	}
	resp, err := c.api.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{Rollback: "previous", RegistryAuthFrom: swarm.RegistryAuthFromPreviousSpec})
	if err != nil {
		return nil, fmt.Errorf("rolling back service %s on %s: %w", svc.Spec.Name, c.host, err)
	}
	return resp.Warnings, nil
}

// Task is one task of a service.
type Task struct {
	// ID is the task's ID; Slot its replica number (0 for a global service).
	ID   string
	Slot int
	// NodeID is the node it is assigned to; Node that node's hostname, when known.
	NodeID, Node string
	// Image is the image its spec names.
	Image string
	// DesiredState is what the orchestrator wants ("running", "shutdown");
	// State where it is ("running", "failed", "rejected", …).
	DesiredState, State string
	// Message is the engine's message; Err why it failed.
	Message, Err string
	// ContainerID is its container, when one was made; ExitCode its exit code.
	ContainerID string
	ExitCode    int
	// CreatedAt is when the task was made; At when its state last changed.
	CreatedAt, At time.Time
}

// ServiceTasks returns every task of the service id that the engine still
// holds (its history included), newest first.
func (c *Client) ServiceTasks(ctx context.Context, id string) ([]Task, error) {
	tasks, err := c.api.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", id))})
	if err != nil {
		return nil, fmt.Errorf("listing the tasks of service %s on %s: %w", id, c.host, err)
	}
	nodes, err := c.nodeNames(ctx, map[string][]swarm.Task{id: tasks})
	if err != nil {
		nodes = map[string]string{} // the hostnames are only for the report
	}
	out := make([]Task, 0, len(tasks))
	for _, t := range tasks {
		if t.ServiceID != id && !strings.HasPrefix(t.ServiceID, id) {
			continue
		}
		tk := Task{ID: t.ID, Slot: t.Slot, NodeID: t.NodeID, Node: nodes[t.NodeID], DesiredState: string(t.DesiredState),
			State: string(t.Status.State), Message: t.Status.Message, Err: t.Status.Err, CreatedAt: t.CreatedAt.UTC(), At: t.Status.Timestamp.UTC()}
		if cs := t.Spec.ContainerSpec; cs != nil {
			tk.Image = cs.Image
		}
		if st := t.Status.ContainerStatus; st != nil {
			tk.ContainerID, tk.ExitCode = st.ContainerID, st.ExitCode
		}
		out = append(out, tk)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

// TaskLogs returns the last n lines a task wrote, stdout and stderr
// together, as `docker service logs` reads them.
func (c *Client) TaskLogs(ctx context.Context, taskID string, n int) ([]string, error) {
	rc, err := c.api.TaskLogs(ctx, taskID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return nil, fmt.Errorf("reading the logs of task %s on %s: %w", taskID, c.host, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the logs of task %s on %s: %w", taskID, c.host, err)
	}
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, bytes.NewReader(raw)); err != nil {
		out.Reset() // a task with a TTY: its stream is not multiplexed
		out.Write(raw)
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

// ServiceOfContainer returns the service whose task the container id (ID or
// name) is, "" when it is none's: tidewatch's own service, for one.
func (c *Client) ServiceOfContainer(ctx context.Context, id string) (string, error) {
	info, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		if client.IsErrNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("inspecting container %s on %s: %w", id, c.host, err)
	}
	if info.Config == nil {
		return "", nil
	}
	return info.Config.Labels[LabelServiceID], nil
}
