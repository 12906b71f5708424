package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// Deadlines for the parts to come up and go down.
const (
	engineStartTimeout   = 60 * time.Second
	engineStopGrace      = 30 * time.Second
	registryStartTimeout = 20 * time.Second
	registryStopGrace    = 5 * time.Second
)

// Up makes sure every part is installed (Install: apt-get and go, once,
// before any test starts) and that an engine, a registry, the mail servers
// and the MQTT broker run, starting what is missing, and records them in
// stateDir/state.json. An engine that answers on DOCKER_HOST (default
// unix:///var/run/docker.sock) is reused; otherwise dockerd is started on the
// default socket. A docker-registry is always started, on a free port of
// 127.0.0.1, storing under stateDir. Two mailpits (STARTTLS and implicit
// TLS, with auth; see State) and a mosquitto (a plain and a TLS listener,
// with a password file) are started on free ports of 127.0.0.1. When a state
// file shows a bed whose engine, registry and mail servers still work, Up
// keeps it, starting the broker when it does not run. On error, Up stops
// whatever it started.
func Up(ctx context.Context, stateDir string, log *slog.Logger) (st *State, err error) {
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("resolving state folder %s: %w", stateDir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating state folder: %w", err)
	}
	parts, err := Install(ctx, log)
	if err != nil {
		return nil, err
	}
	if old, err := ReadState(filepath.Join(dir, StateFile)); err == nil {
		if old.healthy(ctx) {
			return old, old.keep(ctx, parts, log)
		}
		log.Warn("test bed state is stale; cleaning up before starting again")
		if err := Down(ctx, dir, log); err != nil {
			log.Warn("cleaning up stale test bed", "err", err)
		}
	}

	st = &State{ID: newID(), Dir: dir, StartedAt: time.Now().UTC(), RegistryData: filepath.Join(dir, "registry-data"),
		Parts: parts.Parts, PartsMissing: parts.Missing}
	defer func() {
		if err != nil {
			st.stopProcesses(context.WithoutCancel(ctx), log)
		}
	}()

	if err := st.ensureEngine(ctx, log); err != nil {
		return nil, err
	}
	if err := st.checkComposeV2(ctx); err != nil {
		return nil, err
	}
	if err := st.startRegistry(ctx, log); err != nil {
		return nil, err
	}
	if err := st.startMailpit(ctx, log); err != nil {
		return nil, err
	}
	if err := st.startMQTT(ctx, log); err != nil {
		return nil, err
	}
	if err := st.write(); err != nil {
		return nil, err
	}
	log.Info("test bed up", "state", filepath.Join(dir, StateFile))
	return st, nil
}

// keep brings a running bed's record up to date: the parts Install found,
// and a broker started when none runs (a bed from an older bedctl, or a
// broker that died).
func (st *State) keep(ctx context.Context, parts *InstallResult, log *slog.Logger) error {
	st.Parts, st.PartsMissing = parts.Parts, parts.Missing
	if err := st.checkComposeV2(ctx); err != nil {
		return err
	}
	if !st.mqttHealthy(ctx) {
		if err := st.stopMQTT(ctx, log); err != nil {
			return err
		}
		st.MQTTAddr, st.MQTTTLSAddr, st.MQTTProcess = "", "", nil
		if err := st.startMQTT(ctx, log); err != nil {
			return err
		}
	}
	if err := st.write(); err != nil {
		return err
	}
	log.Info("test bed already up", "docker_host", st.DockerHost, "registry", st.Registry, "mqtt", st.MQTTAddr)
	return nil
}

// checkComposeV2 runs `docker compose ls` with the compose v2 plugin against
// the bed's engine: the plugin loads and speaks the engine's API version.
func (st *State) checkComposeV2(ctx context.Context) error {
	plugin, docker := st.Parts[PartComposeV2], st.Parts[PartDocker]
	if plugin == "" || docker == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, partCheckTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, docker, "compose", "ls", "--all", "--quiet")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+st.DockerHost, "DOCKER_CONFIG="+filepath.Dir(filepath.Dir(plugin)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("checking the compose v2 plugin %s against the engine at %s: docker compose ls: %w\n%s", plugin, st.DockerHost, err, tail(out, 2000))
	}
	return nil
}

// Down stops what Up recorded in stateDir/state.json: it removes the test
// containers (carrying this bed's ID, or labelled tidewatch.test=1, created
// since Up and carrying no other bed's ID) and the images pulled from the
// bed's registry, stops the registry and deletes its storage, stops the
// mailpits and the MQTT broker and deletes their folders, and stops dockerd
// when Up started it. A state folder without a state file is
// not an error.
func Down(ctx context.Context, stateDir string, log *slog.Logger) error {
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return fmt.Errorf("resolving state folder %s: %w", stateDir, err)
	}
	st, err := ReadState(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		log.Info("test bed not up: nothing to stop", "state", filepath.Join(dir, StateFile))
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	if err := st.cleanEngine(ctx, log); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, st.stopProcesses(ctx, log)...)
	for _, d := range []struct{ what, path string }{{"registry storage", st.RegistryData}, {"mail storage", st.MailData}, {"MQTT folder", st.MQTTData}} {
		if d.path == "" {
			continue
		}
		if err := os.RemoveAll(d.path); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", d.what, err))
		}
	}
	if err := os.RemoveAll(filepath.Join(st.Dir, "apps")); err != nil {
		errs = append(errs, fmt.Errorf("removing built apps: %w", err))
	}
	if err := os.Remove(filepath.Join(st.Dir, StateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("removing state file: %w", err))
	}
	if len(errs) == 0 {
		log.Info("test bed down")
	}
	return errors.Join(errs...)
}

// healthy tells whether the engine, registry and mail servers of a recorded
// bed still answer (Up starts a missing broker in a bed that is otherwise
// healthy).
func (st *State) healthy(ctx context.Context) bool {
	if st.StartedEngine && !st.Engine.alive() {
		return false
	}
	if !st.RegistryProcess.alive() {
		return false
	}
	return PingEngine(ctx, st.DockerHost) == nil && PingRegistry(ctx, st.Registry) == nil && st.mailpitHealthy(ctx)
}

// stopProcesses stops the MQTT broker, the mail servers, the registry and,
// when the bed started it, the engine.
func (st *State) stopProcesses(ctx context.Context, log *slog.Logger) []error {
	var errs []error
	if err := st.stopMQTT(ctx, log); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, st.stopMailpit(ctx, log)...)
	if st.RegistryProcess != nil {
		log.Info("stopping registry", "registry", st.Registry, "pid", st.RegistryProcess.PID)
		if err := st.RegistryProcess.stop(ctx, registryStopGrace); err != nil {
			errs = append(errs, err)
		}
	}
	if st.StartedEngine && st.Engine != nil {
		log.Info("stopping dockerd that the test bed started", "pid", st.Engine.PID)
		if err := stopEngine(ctx, st.Engine, st.DockerHost); err != nil {
			errs = append(errs, err)
		}
	} else if st.DockerHost != "" {
		log.Info("leaving the engine running: it ran before the test bed came up", "docker_host", st.DockerHost)
	}
	return errs
}

// cleanEngine removes the containers the tests made and the images pulled
// from the bed's registry. It does nothing when the engine does not answer.
func (st *State) cleanEngine(ctx context.Context, log *slog.Logger) error {
	if st.DockerHost == "" || PingEngine(ctx, st.DockerHost) != nil {
		return nil
	}
	cli, err := newClient(st.DockerHost)
	if err != nil {
		return err
	}
	defer cli.Close()
	var errs []error
	if err := st.leaveOwnSwarm(ctx, cli); err != nil {
		errs = append(errs, err)
	}
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelTest+"=1"))})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing test containers: %w", err))...)
	}
	since := st.StartedAt.Add(-time.Second).Unix()
	for _, c := range list {
		if bed := c.Labels[LabelBed]; bed != st.ID && (bed != "" || c.Created < since) {
			continue // another bed's, or made before this bed came up
		}
		log.Info("removing test container", "container", strings.TrimPrefix(firstOr(c.Names, c.ID), "/"))
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, fmt.Errorf("removing test container %s: %w", c.ID, err))
		}
	}
	if st.Registry != "" {
		images, err := cli.ImageList(ctx, image.ListOptions{All: true})
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("listing images: %w", err))...)
		}
		for _, img := range images {
			if !fromRegistry(img, st.Registry) {
				continue
			}
			if _, err := cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !client.IsErrNotFound(err) {
				log.Warn("removing test image", "image", img.ID, "err", err)
			}
		}
	}
	return errors.Join(errs...)
}

// fromRegistry tells whether every name of img is in the registry at host.
func fromRegistry(img image.Summary, host string) bool {
	names := append(append([]string(nil), img.RepoTags...), img.RepoDigests...)
	if len(names) == 0 {
		return false
	}
	for _, n := range names {
		if !strings.HasPrefix(n, host+"/") {
			return false
		}
	}
	return true
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// ensureEngine reuses an engine that answers or starts dockerd.
func (st *State) ensureEngine(ctx context.Context, log *slog.Logger) error {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = client.DefaultDockerHost
	}
	st.DockerHost = host
	if err := PingEngine(ctx, host); err == nil {
		log.Info("reusing the running engine", "docker_host", host)
		return nil
	} else if host != client.DefaultDockerHost {
		return fmt.Errorf("engine at DOCKER_HOST=%s does not answer (the bed starts one only on %s): %w", host, client.DefaultDockerHost, err)
	}
	dockerd, err := st.part(PartDockerd)
	if err != nil {
		return fmt.Errorf("no engine answers on %s and dockerd is missing: %w", host, err)
	}
	args := []string{dockerd, "--host", host, "--pidfile", filepath.Join(st.Dir, "dockerd.pid")}
	p, err := startEngine(ctx, args, filepath.Join(st.Dir, "dockerd.log"), host)
	if err != nil {
		return err
	}
	st.StartedEngine, st.Engine = true, p
	log.Info("started dockerd", "pid", p.PID, "docker_host", host, "log", p.Log)
	return nil
}

// startEngine starts dockerd with args and waits until it answers on host.
func startEngine(ctx context.Context, args []string, logPath, host string) (*Process, error) {
	p, exited, err := startProcess(args, logPath)
	if err != nil {
		return nil, err
	}
	var exitedEarly bool
	up := waitFor(ctx, engineStartTimeout, func() bool {
		select {
		case <-exited:
			exitedEarly = true
			return true
		default:
		}
		return PingEngine(ctx, host) == nil
	})
	switch {
	case exitedEarly:
		return nil, fmt.Errorf("starting dockerd: it exited; its log ends:\n%s", logTail(logPath, 2000))
	case !up:
		_ = p.stop(context.WithoutCancel(ctx), 5*time.Second)
		return nil, fmt.Errorf("starting dockerd: no answer on %s within %s; its log ends:\n%s", host, engineStartTimeout, logTail(logPath, 2000))
	}
	return p, nil
}

// stopEngine stops dockerd and waits until host no longer answers.
func stopEngine(ctx context.Context, p *Process, host string) error {
	if err := p.stop(ctx, engineStopGrace); err != nil {
		return err
	}
	if !waitFor(ctx, 10*time.Second, func() bool { return PingEngine(ctx, host) != nil }) {
		return fmt.Errorf("stopping dockerd: %s still answers", host)
	}
	return nil
}

// startRegistry starts docker-registry on a free port of 127.0.0.1.
func (st *State) startRegistry(ctx context.Context, log *slog.Logger) error {
	bin, err := st.part(PartRegistry)
	if err != nil {
		return fmt.Errorf("starting the registry: %w", err)
	}
	if err := os.MkdirAll(st.RegistryData, 0o755); err != nil {
		return fmt.Errorf("creating registry storage: %w", err)
	}
	logPath := filepath.Join(st.Dir, "registry.log")
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ { // the free port may be taken before the registry binds it
		port, err := freePort()
		if err != nil {
			return err
		}
		host := fmt.Sprintf("127.0.0.1:%d", port)
		cfgPath := filepath.Join(st.Dir, "registry.yml")
		if err := os.WriteFile(cfgPath, []byte(registryConfig(st.RegistryData, host)), 0o644); err != nil {
			return fmt.Errorf("writing registry config: %w", err)
		}
		p, exited, err := startProcess([]string{bin, "serve", cfgPath}, logPath)
		if err != nil {
			return err
		}
		var exitedEarly bool
		up := waitFor(ctx, registryStartTimeout, func() bool {
			select {
			case <-exited:
				exitedEarly = true
				return true
			default:
			}
			return PingRegistry(ctx, host) == nil
		})
		if up && !exitedEarly {
			st.Registry, st.RegistryProcess = host, p
			log.Info("started registry", "registry", host, "pid", p.PID, "log", logPath)
			return nil
		}
		_ = p.stop(context.WithoutCancel(ctx), registryStopGrace)
		lastErr = fmt.Errorf("starting docker-registry on %s (attempt %d): no answer within %s; its log ends:\n%s", host, attempt, registryStartTimeout, logTail(logPath, 2000))
	}
	return lastErr
}

// registryConfig is a distribution v2 config: filesystem storage, deletes
// allowed, no auth, HTTP on host only.
func registryConfig(dataDir, host string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: tidewatch-testbed
`, dataDir, host)
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PingRegistry checks that GET /v2/ answers 200.
func PingRegistry(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/", nil)
	if err != nil {
		return fmt.Errorf("pinging registry %s: %w", host, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pinging registry %s: %w", host, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pinging registry %s: status %d", host, resp.StatusCode)
	}
	return nil
}

// newClient returns a Docker client for host with the API version negotiated.
func newClient(host string) (*client.Client, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("creating Docker client for %s: %w", host, err)
	}
	return cli, nil
}

// PingEngine checks that the engine at host answers.
func PingEngine(ctx context.Context, host string) error {
	cli, err := newClient(host)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		return fmt.Errorf("pinging engine at %s: %w", host, err)
	}
	return nil
}

// lookCommand finds name on PATH or in the sbin and bin folders.
func lookCommand(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("finding command %s: %w", name, exec.ErrNotFound)
}

func newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
