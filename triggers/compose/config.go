package compose

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/composefile"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// Option names.
const (
	OptFile          = "FILE"
	OptPathMap       = "PATH_MAP"
	OptEnvFile       = "ENV_FILE"
	OptRecreate      = "RECREATE"
	OptCompose       = "COMPOSE"
	OptDockerHost    = "DOCKER_HOST"
	OptDockerCAFile  = "DOCKER_CAFILE"
	OptDockerCert    = "DOCKER_CERTFILE"
	OptDockerKey     = "DOCKER_KEYFILE"
	OptHealthTimeout = "HEALTH_TIMEOUT"
	OptStableFor     = "STABLE_FOR"
	OptSmokeHTTP     = "SMOKE_HTTP"
	OptSmokeTCP      = "SMOKE_TCP"
	OptBackups       = "BACKUPS"
	OptPrune         = "PRUNE"
	OptDryRun        = "DRYRUN"
	OptLogLines      = "LOG_LINES"
	OptSelf          = "SELF_CONTAINER"
	OptStateDir      = "STATE_DIR"
)

// Ways to recreate a service (RECREATE).
const (
	RecreateAuto   = "auto"
	RecreateCLI    = "cli"
	RecreateEngine = "engine"
)

// DefaultPath is where the compose CLI is looked for when the process has no
// PATH (a plugin process starts with an empty environment).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultDockerHost is the engine address used when DOCKER_HOST is not set.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// Options are the compose trigger's options.
var Options = []sdk.Option{
	{Name: OptFile, Description: "the compose file(s) of every container this trigger updates, comma-separated in compose order, as tidewatch sees them; default: the files in the container's com.docker.compose.project.config_files label"},
	{Name: OptPathMap, Description: "host-prefix:local-prefix pairs, comma-separated, for when tidewatch sees the host's project folders under another path (e.g. /srv/stacks:/stacks)"},
	{Name: OptEnvFile, Description: "the env file compose reads variables from; default: .env in the project's working dir"},
	{Name: OptRecreate, Default: RecreateAuto, Description: "how the service is recreated: cli (the compose CLI: up -d --no-deps <service>), engine (the Engine API: the old container renamed aside and stopped, a new one created like it), or auto (cli when a compose CLI is found, else engine)"},
	{Name: OptCompose, Description: "the compose CLI: the path of docker-compose, or of docker (then docker compose is used); default: docker compose, else docker-compose, looked for in PATH or " + DefaultPath},
	{Name: OptDockerHost, Default: DefaultDockerHost, Description: "the Docker engine to roll out on: unix:///path or tcp://host:port"},
	{Name: OptDockerCAFile, Description: "a PEM file of the CA that signed the engine's certificate (TLS over tcp://)"},
	{Name: OptDockerCert, Description: "a PEM client certificate for the engine (with DOCKER_KEYFILE)"},
	{Name: OptDockerKey, Description: "the PEM key of DOCKER_CERTFILE"},
	{Name: OptHealthTimeout, Default: "120s", Description: "how long the new container has to run and, with a healthcheck, be healthy; also each smoke check's time"},
	{Name: OptStableFor, Default: "10s", Description: "without a healthcheck, how long the new container must run without restarting"},
	{Name: OptSmokeHTTP, Description: "URLs, comma-separated, that must answer 2xx to a GET after the rollout (retried until HEALTH_TIMEOUT)"},
	{Name: OptSmokeTCP, Description: "host:port addresses, comma-separated, that must accept a TCP connection after the rollout (retried until HEALTH_TIMEOUT)"},
	{Name: OptBackups, Default: "3", Description: "how many timestamped backups of the compose (or env) file to keep beside it, 1 to 100"},
	{Name: OptPrune, Default: "false", Description: "true to remove the previous image after a successful rollout"},
	{Name: OptDryRun, Default: "false", Description: "true to report the file's diff and the steps it would take, touching nothing"},
	{Name: OptLogLines, Default: "50", Description: "how many of the failed container's last log lines a rollback report holds, 0 to 1000"},
	{Name: OptStateDir, Description: "the folder for rollout records and locks, as tidewatch sees it; default: the compose project's folder (its working dir), where every tidewatch process that may roll the project out sees them, and where they survive tidewatch's container"},
	{Name: OptSelf, Description: "IDs or names of the container tidewatch runs in, comma-separated, which the trigger refuses to update; default: detected from /proc/self/mountinfo, /proc/self/cgroup and the hostname"},
}

// Config is a compose trigger's parsed configuration.
type Config struct {
	// Locate says where compose files are: FILE, PATH_MAP, ENV_FILE.
	Locate composefile.LocateOptions
	// Recreate is RecreateCLI or RecreateEngine (auto resolved).
	Recreate string
	// CLI is the compose CLI; zero when none was found (engine mode).
	CLI CLI
	// DockerHost and the TLS files say how to reach the engine.
	DockerHost                          string
	DockerCAFile, DockerCert, DockerKey string
	// HealthTimeout bounds the health gate and each smoke check; default 120s.
	HealthTimeout time.Duration
	// StableFor is how long a container without healthcheck must run; default 10s.
	StableFor time.Duration
	// SmokeHTTP and SmokeTCP are the smoke checks.
	SmokeHTTP, SmokeTCP []string
	// Backups is how many backups to keep; default 3.
	Backups int
	// Prune removes the previous image after success; default false.
	Prune bool
	// DryRun touches nothing; default false.
	DryRun bool
	// LogLines is how many log lines of a failed container to report; default 50.
	LogLines int
	// Self are the IDs and names of tidewatch's own container (given and detected).
	Self []string
	// StateDir is where rollout records and locks are kept; "" for the
	// project's folder.
	StateDir string
}

// ParseConfig parses a Configure call's options, reporting every problem at
// once, each naming its option. It looks for the compose CLI (running it to
// check that it works) unless RECREATE is engine.
func ParseConfig(ctx context.Context, options map[string]string) (Config, error) {
	o := sdk.NewOptions(options, Options)
	var c Config

	c.Locate.File = strings.TrimSpace(o.String(OptFile))
	for _, f := range o.List(OptFile) {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			o.Add(OptFile, "%s is not a readable file", f)
		}
	}
	pm, err := composefile.ParsePathMap(o.String(OptPathMap))
	if err != nil {
		o.Add(OptPathMap, "%v", err)
	}
	c.Locate.PathMap = pm
	c.Locate.EnvFile = strings.TrimSpace(o.String(OptEnvFile))

	c.DockerHost = strings.TrimSpace(o.String(OptDockerHost))
	if u, err := url.Parse(c.DockerHost); err != nil || (u.Scheme != "unix" && u.Scheme != "tcp") || (u.Scheme == "unix" && u.Path == "") || (u.Scheme == "tcp" && u.Host == "") {
		o.Add(OptDockerHost, "%q is not an engine address; expected unix:///var/run/docker.sock or tcp://host:port", c.DockerHost)
	}
	for _, f := range []struct {
		opt string
		dst *string
	}{{OptDockerCAFile, &c.DockerCAFile}, {OptDockerCert, &c.DockerCert}, {OptDockerKey, &c.DockerKey}} {
		*f.dst = strings.TrimSpace(o.String(f.opt))
		if *f.dst == "" {
			continue
		}
		if _, err := os.ReadFile(*f.dst); err != nil {
			o.Add(f.opt, "reading %s: %v", *f.dst, err)
		}
	}
	if (c.DockerCert == "") != (c.DockerKey == "") {
		o.Add(OptDockerCert, "DOCKER_CERTFILE and DOCKER_KEYFILE go together; set both or neither")
	}

	c.HealthTimeout = o.Duration(OptHealthTimeout)
	c.StableFor = o.Duration(OptStableFor)
	c.SmokeHTTP = o.List(OptSmokeHTTP)
	for _, raw := range c.SmokeHTTP {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			o.Add(OptSmokeHTTP, "%q is not an http(s) URL; expected http://host:port/path", raw)
		}
	}
	c.SmokeTCP = o.List(OptSmokeTCP)
	for _, addr := range c.SmokeTCP {
		host, port, err := net.SplitHostPort(addr)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			o.Add(OptSmokeTCP, "%q is not host:port", addr)
		}
	}
	c.Backups = o.Int(OptBackups, 1, 100)
	c.Prune = o.Bool(OptPrune)
	c.DryRun = o.Bool(OptDryRun)
	c.LogLines = o.Int(OptLogLines, 0, 1000)
	c.Self = append(o.List(OptSelf), rollout.DetectSelf()...)
	if c.StateDir = strings.TrimSpace(o.String(OptStateDir)); c.StateDir != "" {
		if st, err := os.Stat(c.StateDir); err != nil || !st.IsDir() || !filepath.IsAbs(c.StateDir) {
			o.Add(OptStateDir, "%q is not an absolute path of a folder that exists", c.StateDir)
		}
	}

	mode := strings.ToLower(strings.TrimSpace(o.String(OptRecreate)))
	explicit := strings.TrimSpace(o.String(OptCompose))
	switch mode {
	case RecreateAuto, RecreateCLI, RecreateEngine:
	default:
		o.Add(OptRecreate, "%q is not a way to recreate; expected cli, engine or auto", mode)
	}
	if mode != RecreateEngine || explicit != "" {
		cli, err := FindCLI(ctx, explicit)
		switch {
		case err == nil:
			c.CLI = cli
		case explicit != "":
			o.Add(OptCompose, "%v", err)
		case mode == RecreateCLI:
			o.Add(OptRecreate, "cli needs a compose CLI, and none was found: %v; set COMPOSE or RECREATE=engine", err)
		}
	}
	c.Recreate = mode
	if mode == RecreateAuto {
		c.Recreate = RecreateEngine
		if c.CLI.Path != "" {
			c.Recreate = RecreateCLI
		}
	}
	return c, o.Err()
}
