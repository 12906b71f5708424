package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// Swarm mode on the bed's engine. Swarm turns the engine into a one-node
// swarm for one test (`docker swarm init --advertise-addr 127.0.0.1`, under
// a second) and leaves it when the test ends (`docker swarm leave --force`,
// then the docker_gwbridge network the engine leaves behind is removed).
// Meanwhile it holds the engine lock exclusively, as StopEngine does, so
// that the bed's other test processes wait in Require rather than meet an
// engine in swarm mode; and, when the engine is another bed's (beds in
// other worktrees reuse the engine of the one that started it), that bed's
// lock too: its tests are the ones that may restart the engine, and do not
// while it is in swarm mode. Beds that reuse the engine keep their locks in
// their own folders, so their tests are not held back: keep the time in
// swarm mode short. Only an engine that a test bed started is put in swarm
// mode, never one that ran before (someone's own engine).

// gwBridge is the network the engine makes for swarm tasks and keeps after
// leaving the swarm.
const gwBridge = "docker_gwbridge"

// swarmListen is where the one-node swarm listens: loopback only.
const swarmListen = "127.0.0.1:2377"

// Swarm puts the bed's engine in swarm mode for the rest of the test; see
// above. It skips the test when no test bed started the engine, or when the
// engine is already in a swarm that no bed made. A swarm this bed made and
// did not leave (a test process killed meanwhile) is left first.
func (b *Bed) Swarm(t testing.TB) {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	owner, err := b.engineOwner()
	if err != nil {
		t.Skipf("not putting the engine in swarm mode: %v", err)
	}
	if err := takeEngineExclusive(ctx); err != nil {
		t.Fatalf("putting the engine in swarm mode: %v", err)
	}
	// The bed that started the engine is the one whose tests may restart it:
	// its lock too, so that none does while the engine is in swarm mode.
	releaseOwner := func() {}
	if owner != b.State.Dir {
		if releaseOwner, err = lockForeignBed(ctx, owner); err != nil {
			releaseEngineExclusive()
			t.Fatalf("putting the engine in swarm mode: %v", err)
		}
	}
	release := func() {
		releaseOwner()
		releaseEngineExclusive()
	}
	cli := b.Docker()
	info, err := cli.Info(ctx)
	if err != nil {
		release()
		t.Fatalf("putting the engine in swarm mode: %v", err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
		sw, err := cli.SwarmInspect(ctx)
		if err != nil || sw.Spec.Labels[LabelBed] == "" {
			release()
			t.Skipf("the engine is already in a swarm (%s) that no test bed made: leaving it alone", info.Swarm.LocalNodeState)
		}
		t.Logf("leaving the swarm that bed %s left behind", sw.Spec.Labels[LabelBed])
		if err := leaveSwarm(ctx, cli); err != nil {
			release()
			t.Fatalf("putting the engine in swarm mode: %v", err)
		}
	}
	began := time.Now()
	req := swarm.InitRequest{ListenAddr: swarmListen, AdvertiseAddr: "127.0.0.1",
		Spec: swarm.Spec{Annotations: swarm.Annotations{Labels: map[string]string{LabelBed: b.State.ID, LabelTest: "1"}}}}
	if _, err := cli.SwarmInit(ctx, req); err != nil {
		release()
		t.Fatalf("docker swarm init: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cli, err := newClient(b.DockerHost)
		if err == nil {
			defer cli.Close()
			// An engine restarted meanwhile (by a test of a bed whose lock
			// this one does not hold) comes back in the swarm: wait for it.
			waitFor(ctx, time.Minute, func() bool { return PingEngine(ctx, b.DockerHost) == nil })
			err = leaveSwarm(ctx, cli)
		}
		release()
		if err != nil {
			t.Errorf("leaving swarm mode: %v", err)
			return
		}
		t.Logf("the engine was in swarm mode for %s", time.Since(began).Round(10*time.Millisecond))
	})
}

// leaveSwarm leaves the swarm, forcing it (a manager), and removes the
// docker_gwbridge network once the task containers are gone.
func leaveSwarm(ctx context.Context, cli *client.Client) error {
	if err := cli.SwarmLeave(ctx, true); err != nil && !strings.Contains(err.Error(), "not part of a swarm") {
		return fmt.Errorf("docker swarm leave --force: %w", err)
	}
	var lastErr error
	ok := waitFor(ctx, waitTimeout, func() bool {
		lastErr = cli.NetworkRemove(ctx, gwBridge)
		return lastErr == nil || client.IsErrNotFound(lastErr)
	})
	if !ok {
		return fmt.Errorf("removing network %s: %w", gwBridge, lastErr)
	}
	return nil
}

// leaveOwnSwarm leaves the engine's swarm when this bed made it (Down's
// cleanup after a test process that was killed in swarm mode).
func (st *State) leaveOwnSwarm(ctx context.Context, cli *client.Client) error {
	info, err := cli.Info(ctx)
	if err != nil || info.Swarm.LocalNodeState == swarm.LocalNodeStateInactive {
		return nil
	}
	sw, err := cli.SwarmInspect(ctx)
	if err != nil || sw.Spec.Labels[LabelBed] != st.ID {
		return nil
	}
	return leaveSwarm(ctx, cli)
}

// errNotABedsEngine says that no test bed started the engine.
var errNotABedsEngine = errors.New("no test bed started the engine (it ran before): its swarm mode is not the tests' to change")

// engineOwner returns the state folder of the bed that started the engine:
// this bed's, or another's whose engine this bed reuses (the dockerd that
// serves the bed's socket was started with --pidfile in a bed's state
// folder, whose state records that it started it); errNotABedsEngine when
// no bed did.
func (b *Bed) engineOwner() (string, error) {
	if b.State.StartedEngine {
		return b.State.Dir, nil
	}
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return "", err
	}
	for _, p := range procs {
		raw, err := os.ReadFile(p)
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if filepath.Base(args[0]) != "dockerd" {
			continue
		}
		host, pidfile := "unix:///var/run/docker.sock", ""
		for i := 1; i < len(args); i++ {
			a := args[i]
			val := ""
			if k, v, ok := strings.Cut(a, "="); ok {
				a, val = k, v
			} else if i+1 < len(args) {
				val = args[i+1]
			}
			switch a {
			case "--host", "-H":
				host = val
			case "--pidfile", "-p":
				pidfile = val
			}
		}
		if host != b.DockerHost || pidfile == "" {
			continue
		}
		st, err := ReadState(filepath.Join(filepath.Dir(pidfile), StateFile))
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err == nil && st.StartedEngine && st.Engine != nil && st.Engine.PID == pid && st.DockerHost == b.DockerHost {
			return st.Dir, nil
		}
	}
	return "", errNotABedsEngine
}

// lockForeignBed takes the engine lock of the bed in dir exclusively, as
// its own StopEngine would: its test processes finish what they do with
// the engine, and the new ones wait in Require until release. Its lock
// files are opened, never made: a bed without them has no process to wait
// for.
func lockForeignBed(ctx context.Context, dir string) (release func(), err error) {
	gate, err := os.OpenFile(filepath.Join(dir, "engine.gate"), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening the engine gate of the bed in %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "engine.lock"), os.O_RDWR, 0)
	if err != nil {
		gate.Close()
		if errors.Is(err, os.ErrNotExist) {
			return func() {}, nil
		}
		return nil, fmt.Errorf("opening the engine lock of the bed in %s: %w", dir, err)
	}
	if err := flock(ctx, gate, syscall.LOCK_EX); err != nil {
		gate.Close()
		lock.Close()
		return nil, err
	}
	if err := flock(ctx, lock, syscall.LOCK_EX); err != nil {
		gate.Close() // closing drops the lock
		lock.Close()
		return nil, err
	}
	return func() {
		lock.Close()
		gate.Close()
	}, nil
}

// ServiceOptions refines CreateService.
type ServiceOptions struct {
	// Replicas is the number of replicas; 0 means 1, unless NoReplicas.
	Replicas   uint64
	NoReplicas bool
	// Labels are the service's labels (where tidewatch reads its policy).
	Labels map[string]string
	// UpdateConfig is the service's update config; nil gives it none (the
	// engine's defaults apply), as a stack file without update_config does.
	UpdateConfig *swarm.UpdateConfig
	// RegistryAuth is the encoded registry auth the service is created
	// with (`--with-registry-auth`); "" for none.
	RegistryAuth string
	// NoWait returns without waiting for the replicas to run.
	NoWait bool
}

// CreateService creates a replicated service called name from img, pinned
// by digest as `docker service create` pins it, with the test bed's labels
// on the service and on its task containers, and waits until its replicas
// run (with the image's healthcheck: are healthy). The service is removed
// when the test ends. It needs Swarm first.
func (b *Bed) CreateService(t testing.TB, name, img string, opts ServiceOptions) string {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	replicas := max(opts.Replicas, 1)
	if opts.NoReplicas {
		replicas = 0
	}
	labels := map[string]string{LabelTest: "1", LabelBed: b.State.ID}
	svcLabels := map[string]string{LabelTest: "1", LabelBed: b.State.ID}
	for k, v := range opts.Labels {
		svcLabels[k] = v
	}
	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: name, Labels: svcLabels},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: img, Labels: labels}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig: opts.UpdateConfig,
	}
	resp, err := b.Docker().ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{QueryRegistry: true, EncodedRegistryAuth: opts.RegistryAuth})
	if err != nil {
		t.Fatalf("creating service %s from %s: %v", name, img, err)
	}
	t.Cleanup(func() { b.removeService(t, resp.ID, name) })
	if !opts.NoWait {
		b.WaitService(t, resp.ID, fmt.Sprintf("%d replicas running", replicas), func(s ServiceView) bool {
			return uint64(len(s.Running)) == replicas
		})
	}
	return resp.ID
}

// removeService removes the service id; one already gone is fine.
func (b *Bed) removeService(t testing.TB, id, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := newClient(b.DockerHost)
	if err != nil {
		t.Errorf("removing service %s: %v", name, err)
		return
	}
	defer cli.Close()
	if err := cli.ServiceRemove(ctx, id); err != nil && !client.IsErrNotFound(err) && !strings.Contains(err.Error(), "not a swarm manager") {
		t.Errorf("removing service %s: %v", name, err)
	}
}

// ServiceView is a service as a test checks it.
type ServiceView struct {
	// Service is the engine's view.
	Service swarm.Service
	// Running are the containers of its tasks that run, as inspected and
	// as the manager's tasks say, healthy when they have a health check.
	Running []container.InspectResponse
}

// Image is the service spec's image.
func (s ServiceView) Image() string {
	if cs := s.Service.Spec.TaskTemplate.ContainerSpec; cs != nil {
		return cs.Image
	}
	return ""
}

// UpdateState is the state of the service's last update, "" when none.
func (s ServiceView) UpdateState() string {
	if s.Service.UpdateStatus == nil {
		return ""
	}
	return string(s.Service.UpdateStatus.State)
}

// Versions are the VERSION environment values of its running containers (the test app's version).
func (s ServiceView) Versions() []string {
	var out []string
	for _, c := range s.Running {
		if c.Config == nil {
			continue
		}
		for _, e := range c.Config.Env {
			if v, ok := strings.CutPrefix(e, "VERSION="); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// Service returns the service id (ID or name) and its running task containers.
func (b *Bed) Service(t testing.TB, id string) ServiceView {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	v, err := b.serviceView(ctx, id)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return v
}

func (b *Bed) serviceView(ctx context.Context, id string) (ServiceView, error) {
	cli := b.Docker()
	svc, _, err := cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		return ServiceView{}, fmt.Errorf("inspecting service %s: %w", id, err)
	}
	v := ServiceView{Service: svc}
	sums, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.id="+svc.ID))})
	if err != nil {
		return ServiceView{}, fmt.Errorf("listing the containers of service %s: %w", id, err)
	}
	// A task's container runs before its node tells the manager so: count
	// it once both say it runs, as tidewatch (which reads the manager's
	// tasks) would.
	tasks, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
	if err != nil {
		return ServiceView{}, fmt.Errorf("listing the tasks of service %s: %w", id, err)
	}
	running := map[string]bool{}
	for _, task := range tasks {
		if task.Status.State == swarm.TaskStateRunning && task.DesiredState == swarm.TaskStateRunning {
			running[task.ID] = true
		}
	}
	for _, s := range sums {
		if !running[s.Labels["com.docker.swarm.task.id"]] {
			continue
		}
		info, err := cli.ContainerInspect(ctx, s.ID)
		if err != nil {
			continue // gone since the list
		}
		if info.State != nil && info.State.Running && (info.State.Health == nil || info.State.Health.Status == "healthy") {
			v.Running = append(v.Running, info)
		}
	}
	return v, nil
}

// WaitService polls the service id until cond holds and returns what it
// saw; it fails the test after two minutes, saying what it waited for (desc).
func (b *Bed) WaitService(t testing.TB, id, desc string, cond func(ServiceView) bool) ServiceView {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	var v ServiceView
	var err error
	ok := waitFor(ctx, 2*waitTimeout, func() bool {
		v, err = b.serviceView(ctx, id)
		return err == nil && cond(v)
	})
	if !ok {
		t.Fatalf("service %s: not %s within %s; image %s, update %s, %d running, versions %v, last error %v",
			id, desc, 2*waitTimeout, v.Image(), v.UpdateState(), len(v.Running), v.Versions(), err)
	}
	return v
}
