// Package composeup recreates one service of a compose project as
// `docker compose up -d --no-deps <service>` does, through compose's own Go
// library (github.com/docker/compose/v5, which loads the project with
// github.com/compose-spec/compose-go/v2) in process: no compose CLI is
// needed, and the new container is compose's own, by construction —
// anonymous volumes carried over, networks and aliases, labels with the
// config hash the next `docker compose up` compares, and everything else.
//
// Compose talks to the engine through a guard that keeps tidewatch's
// promises where compose's own would differ: the container compose replaces
// is renamed aside (stopped) instead of removed, for a rollback; no volume,
// network or image is removed. The rollout around it (health gate, smoke
// checks, rollback) is the caller's.
//
// It talks to engines from API 1.41 (Debian's 20.10) on: compose connects
// extra networks one by one where the API takes one at creation.
package composeup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/cli/cli/command"
	clitypes "github.com/docker/cli/cli/config/types"
	"github.com/docker/cli/cli/flags"
	"github.com/docker/compose/v5/pkg/api"
	"github.com/docker/compose/v5/pkg/compose"
	"github.com/moby/moby/client"

	"github.com/tidewatch/tidewatch/core"
)

// Module is the compose module whose library recreates services.
const Module = "github.com/docker/compose/v5"

// Compose labels this package reads.
const (
	LabelProject = api.ProjectLabel
	LabelService = api.ServiceLabel
	LabelOneOff  = api.OneoffLabel
)

// Options say how to reach the engine.
type Options struct {
	// Host is "unix:///var/run/docker.sock" or "tcp://host:port".
	Host string
	// CAFile, CertFile and KeyFile enable TLS for a tcp host.
	CAFile, CertFile, KeyFile string
}

// Project is a compose project as its CLI is told it: -p, --project-directory,
// -f and --env-file.
type Project struct {
	// Name is the project's name.
	Name string
	// WorkingDir is its folder.
	WorkingDir string
	// Files are its compose files, in compose order.
	Files []string
	// EnvFiles are its env files; none: .env in WorkingDir, when there is one.
	EnvFiles []string
}

// Request is one service's recreate.
type Request struct {
	// Project is the service's project.
	Project Project
	// Service is the service to recreate.
	Service string
	// Current is the ID of the service's container now; Archive the name
	// it is kept under, stopped, once compose has replaced it. Both "" for
	// a service that has no container yet: compose creates it, and the
	// guard lets it stop or remove no other container.
	Current, Archive string
	// HostPath, when set, turns a path as this process sees it into the
	// path on the engine's host (tidewatch in a container that sees the
	// projects under another folder): applied to bind mounts, secret and
	// config files, and the project's working dir and files in its labels.
	HostPath func(local string) string
	// Auth are the credentials for the service's registry, for a pull
	// compose makes itself (pull_policy: always); the zero value is
	// anonymous, and the user's Docker config is then used as the CLI would.
	Auth core.RegistryAuth
	// Journal, when set, is told what the guard is about to let compose do
	// to the current container, before it happens, and of each container
	// compose creates, as soon as it exists: a rollout records it durably,
	// so that one resumed after a crash knows. An error from Journal stops
	// the recreate before that action.
	Journal func(Event) error
}

// Kinds of Event.
const (
	// EventCreated: compose created the container ID (under a temporary
	// name, renamed to the service's later).
	EventCreated = "created"
	// EventStopping: the current container is about to be stopped.
	EventStopping = "stopping"
	// EventArchiving: the current container is about to be renamed to the
	// archive name.
	EventArchiving = "archiving"
)

// Event is one thing the guard tells Request.Journal.
type Event struct {
	// Kind is EventCreated, EventStopping or EventArchiving.
	Kind string
	// ID is the container's.
	ID string
}

// Result says what Up did, also when it failed midway: what a rollback
// must undo.
type Result struct {
	// Created are the containers compose created (under a temporary name,
	// then the service's).
	Created []string
	// Stopped says that Current was stopped; Archived that it was renamed
	// to Archive.
	Stopped, Archived bool
	// Steps are compose's progress lines ("Container app-web-1 Recreated").
	Steps []string
}

// ErrScaled is returned for a service with more than one container, which
// Up does not recreate.
var ErrScaled = errors.New("the service has more than one container")

// Up recreates req.Service of req.Project as `docker compose up -d --no-deps`
// does, with the files as they are now, and starts it; it does not wait
// for health. Variables are interpolated from this process's environment
// and the project's env files, as the CLI does. It refuses (ErrScaled) a
// service with more than one container, and remote (git, OCI) includes.
func Up(ctx context.Context, opts Options, req Request) (Result, error) {
	if req.Project.Name == "" || req.Project.WorkingDir == "" || req.Service == "" || (req.Current == "") != (req.Archive == "") {
		return Result{}, fmt.Errorf("recreating a compose service: project name, working dir and service are all needed, and a current container with its archive name, or neither (got %+v)", req)
	}
	apiClient, err := newClient(opts)
	if err != nil {
		return Result{}, err
	}
	defer apiClient.Close()
	g := &guard{APIClient: apiClient, current: req.Current, archive: req.Archive, journal: req.Journal}
	if err := checkOne(ctx, g, req); err != nil {
		return Result{}, err
	}

	var out bytes.Buffer
	events := &steps{}
	svc, err := newService(g, &out, events, req.Auth)
	if err != nil {
		return Result{}, err
	}
	project, err := svc.LoadProject(ctx, api.ProjectLoadOptions{
		ProjectName: req.Project.Name,
		ConfigPaths: req.Project.Files,
		WorkingDir:  req.Project.WorkingDir,
		EnvFiles:    req.Project.EnvFiles,
		Services:    []string{req.Service},
		Offline:     true,
	})
	if err != nil {
		return Result{}, fmt.Errorf("loading compose project %s: %w", req.Project.Name, err)
	}
	if project, err = project.WithSelectedServices([]string{req.Service}, types.IgnoreDependencies); err != nil {
		return Result{}, fmt.Errorf("selecting service %s of compose project %s: %w", req.Service, req.Project.Name, err)
	}
	if req.HostPath != nil {
		toHost(project, req.HostPath)
	}
	err = svc.Up(ctx, project, api.UpOptions{
		Create: api.CreateOptions{
			Services:             []string{req.Service},
			Recreate:             api.RecreateDiverged,
			RecreateDependencies: api.RecreateDiverged,
			Inherit:              true,
		},
		Start: api.StartOptions{Project: project, Services: []string{req.Service}},
	})
	var res Result
	var created []string
	created, res.Stopped, res.Archived = g.done()
	res.Steps = events.lines()
	// Containers compose created and removed again (pre_start hook runners) are not the service's.
	for _, id := range created {
		if _, ierr := apiClient.ContainerInspect(context.WithoutCancel(ctx), id, client.ContainerInspectOptions{}); ierr == nil || !cerrdefs.IsNotFound(ierr) {
			res.Created = append(res.Created, id)
		}
	}
	if err != nil {
		if tail := strings.TrimSpace(out.String()); tail != "" {
			err = fmt.Errorf("%w: %s", err, lastBytes(tail, 1500))
		}
		return res, fmt.Errorf("compose up -d --no-deps %s (project %s): %w", req.Service, req.Project.Name, err)
	}
	return res, nil
}

// toHost turns the paths of a project loaded from where this process sees
// it into the engine host's paths.
func toHost(p *types.Project, hostPath func(string) string) {
	for name, s := range p.Services {
		for i, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind && v.Source != "" {
				s.Volumes[i].Source = hostPath(v.Source)
			}
		}
		if s.CustomLabels != nil {
			s.CustomLabels[api.WorkingDirLabel] = hostPath(p.WorkingDir)
			files := make([]string, len(p.ComposeFiles))
			for i, f := range p.ComposeFiles {
				files[i] = hostPath(f)
			}
			s.CustomLabels[api.ConfigFilesLabel] = strings.Join(files, ",")
		}
		p.Services[name] = s
	}
	for name, c := range p.Secrets {
		if c.File != "" {
			c.File = hostPath(c.File)
			p.Secrets[name] = c
		}
	}
	for name, c := range p.Configs {
		if c.File != "" {
			c.File = hostPath(c.File)
			p.Configs[name] = c
		}
	}
}

// newClient returns an engine client of compose's API module, version negotiated.
func newClient(opts Options) (*client.Client, error) {
	cliOpts := []client.Opt{client.WithHost(opts.Host), client.WithAPIVersionNegotiation()}
	if opts.CAFile != "" || opts.CertFile != "" || opts.KeyFile != "" {
		cliOpts = append(cliOpts, client.WithTLSClientConfig(opts.CAFile, opts.CertFile, opts.KeyFile))
	}
	c, err := client.New(cliOpts...)
	if err != nil {
		return nil, fmt.Errorf("creating a Docker client for %s: %w", opts.Host, err)
	}
	return c, nil
}

// checkOne refuses a service with more than one container: compose would
// recreate each, and a rollback brings back one.
func checkOne(ctx context.Context, c client.APIClient, req Request) error {
	f := make(client.Filters).Add("label", LabelProject+"="+req.Project.Name, LabelService+"="+req.Service)
	list, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("listing the containers of service %s: %w", req.Service, err)
	}
	var names []string
	for _, s := range list.Items {
		if !strings.EqualFold(s.Labels[LabelOneOff], "true") && firstName(s.Names) != req.Archive {
			names = append(names, firstName(s.Names))
		}
	}
	if len(names) > 1 {
		return fmt.Errorf("service %s of project %s has %d containers (%s): %w; tidewatch recreates a service of one container",
			req.Service, req.Project.Name, len(names), strings.Join(names, ", "), ErrScaled)
	}
	return nil
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.TrimPrefix(names[0], "/")
}

// newService returns compose's service over the engine client c, writing
// its output to out and its progress to events. Its prompts (recreate a
// volume whose configuration changed?) are answered no.
func newService(c client.APIClient, out *bytes.Buffer, events api.EventProcessor, auth core.RegistryAuth) (api.Compose, error) {
	versionOnce.Do(setComposeVersion)
	dockerCli, err := command.NewDockerCli(command.WithCombinedStreams(out))
	if err != nil {
		return nil, fmt.Errorf("preparing compose: %w", err)
	}
	// The client is c; the options only name the default context.
	if err := dockerCli.Initialize(flags.NewClientOptions(), command.WithAPIClient(c)); err != nil {
		return nil, fmt.Errorf("preparing compose: %w", err)
	}
	if !auth.Anonymous() {
		// In memory only: compose pulls with these, and nothing is saved.
		cfg := dockerCli.ConfigFile()
		cfg.CredentialsStore, cfg.CredentialHelpers = "", nil
		key := auth.Server
		switch key {
		case "", "docker.io", "index.docker.io", "registry-1.docker.io":
			key = "https://index.docker.io/v1/"
		}
		cfg.AuthConfigs = map[string]clitypes.AuthConfig{key: {Username: auth.Username, Password: auth.Password.Reveal(),
			ServerAddress: key, IdentityToken: auth.IdentityToken.Reveal(), RegistryToken: auth.RegistryToken.Reveal()}}
	}
	svc, err := compose.NewComposeService(dockerCli,
		compose.WithOutputStream(out), compose.WithErrorStream(out),
		compose.WithPrompt(func(message string, _ bool) (bool, error) {
			fmt.Fprintf(out, "%s: answered no\n", message)
			return false, nil
		}),
		compose.WithEventProcessor(events))
	if err != nil {
		return nil, fmt.Errorf("preparing compose: %w", err)
	}
	return svc, nil
}

var versionOnce sync.Once

// setComposeVersion sets the version compose writes into the
// com.docker.compose.version label, which its own build sets at link time:
// the version of the compose module this binary was built with.
func setComposeVersion() {
	if api.ComposeVersion != "" {
		return
	}
	api.ComposeVersion = strings.TrimPrefix(LibraryVersion(), "v")
}

// moduleVersion is the version of Module in go.mod, for builds that do not
// record their dependencies (test binaries); a test keeps it true.
const moduleVersion = "v5.6.0"

// LibraryVersion returns the version of the compose module linked into this
// binary ("v5.6.0").
func LibraryVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == Module {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return moduleVersion
}

// steps collects compose's progress events as lines.
type steps struct {
	mu  sync.Mutex
	out []string
}

func (s *steps) Start(context.Context, string) {}
func (s *steps) Done(string, bool)             {}
func (s *steps) On(events ...api.Resource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range events {
		if e.Status == api.Working {
			continue
		}
		line := strings.TrimSpace(e.ID + " " + e.Text)
		if e.Details != "" {
			line += ": " + e.Details
		}
		s.out = append(s.out, line)
	}
}

func (s *steps) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.out...)
}

// lastBytes returns the last n bytes of s.
func lastBytes(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
