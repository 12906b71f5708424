package swarm

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/composefile"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// Option names.
const (
	OptDockerHost    = "DOCKER_HOST"
	OptDockerCAFile  = "DOCKER_CAFILE"
	OptDockerCert    = "DOCKER_CERTFILE"
	OptDockerKey     = "DOCKER_KEYFILE"
	OptFailureAction = "FAILURE_ACTION"
	OptMonitor       = "MONITOR"
	OptOrder         = "ORDER"
	OptParallelism   = "PARALLELISM"
	OptDelay         = "DELAY"
	OptPaused        = "PAUSED"
	OptStackFile     = "STACK_FILE"
	OptPathMap       = "PATH_MAP"
	OptBackups       = "BACKUPS"
	OptLogLines      = "LOG_LINES"
	OptDryRun        = "DRYRUN"
	OptSelf          = "SELF_CONTAINER"
)

// What the trigger does when the engine pauses an update (PAUSED).
const (
	PausedRollback = "rollback"
	PausedLeave    = "leave"
)

// DefaultDockerHost is the engine address used when DOCKER_HOST is not set.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// StackPlaceholder, in a STACK_FILE path, stands for the stack's name.
const StackPlaceholder = "{stack}"

// Options are the swarm trigger's options.
var Options = []sdk.Option{
	{Name: OptDockerHost, Default: DefaultDockerHost, Description: "the swarm manager's engine: unix:///path or tcp://host:port"},
	{Name: OptDockerCAFile, Description: "a PEM file of the CA that signed the engine's certificate (TLS over tcp://)"},
	{Name: OptDockerCert, Description: "a PEM client certificate for the engine (with DOCKER_KEYFILE)"},
	{Name: OptDockerKey, Description: "the PEM key of DOCKER_CERTFILE"},
	{Name: OptFailureAction, Default: docker.FailureRollback, Description: "for a service without an update config of its own: what the engine does when new tasks fail, rollback, pause or continue"},
	{Name: OptMonitor, Default: "15s", Description: "for a service without an update config of its own: how long the engine watches each new task for failure"},
	{Name: OptOrder, Default: docker.OrderStartFirst, Description: "for a service without an update config of its own: start-first (a new task runs before the old one stops; stop-first where the service publishes ports in host mode) or stop-first"},
	{Name: OptParallelism, Default: "1", Description: "for a service without an update config of its own: how many tasks are updated at once, 0 for all"},
	{Name: OptDelay, Description: "for a service without an update config of its own: the wait between batches of tasks; default none"},
	{Name: OptPaused, Default: PausedRollback, Description: "when the engine pauses the update (a service whose own failure action is pause, as docker service create's default): rollback (ask the engine to roll back) or leave (report it failed, leaving it paused)"},
	{Name: OptStackFile, Description: "the stack files to keep true, comma-separated: stack=/path/stack.yml for one stack, or a path for every stack, where {stack} stands for the stack's name (/srv/stacks/{stack}/docker-stack.yml); paths as on the host, mapped through PATH_MAP; default: none (the report says the file was not rewritten)"},
	{Name: OptPathMap, Description: "host-prefix:local-prefix pairs, comma-separated, for when tidewatch sees the host's stack folders under another path (e.g. /srv/stacks:/stacks)"},
	{Name: OptBackups, Default: "3", Description: "how many timestamped backups of a stack file to keep beside it, 1 to 100"},
	{Name: OptLogLines, Default: "50", Description: "how many last log lines of a failed task a rollback report holds, 0 to 1000"},
	{Name: OptDryRun, Default: "false", Description: "true to report what would be done (the image, the update config, the stack file's diff), touching nothing"},
	{Name: OptSelf, Description: "IDs or names of the container tidewatch runs in, comma-separated: its service is refused; default: detected from /proc/self/mountinfo, /proc/self/cgroup and the hostname"},
}

// Config is a swarm trigger's parsed configuration.
type Config struct {
	// DockerHost and the TLS files say how to reach the manager.
	DockerHost                          string
	DockerCAFile, DockerCert, DockerKey string
	// Defaults is the update config given to a service that has none.
	Defaults docker.UpdatePolicy
	// Paused is PausedRollback or PausedLeave.
	Paused string
	// Stacks maps a stack's name to its file; AnyStack is the file of every
	// other stack, with StackPlaceholder for the name ("" for none). Both
	// as on the host.
	Stacks   map[string]string
	AnyStack string
	// PathMap maps host paths to those tidewatch sees.
	PathMap []composefile.PathMapping
	// Backups is how many backups of a stack file to keep; default 3.
	Backups int
	// LogLines is how many log lines of a failed task to report; default 50.
	LogLines int
	// DryRun touches nothing.
	DryRun bool
	// Self are the IDs and names of tidewatch's own container.
	Self []string
}

// stackName is what a stack's name may be to stand in a path: Docker's own
// rule for stack names, so that no label ("../..", "a/b") leads elsewhere.
var stackName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]*$`)

// ParseConfig parses a Configure call's options, reporting every problem at
// once, each naming its option.
func ParseConfig(options map[string]string) (Config, error) {
	o := sdk.NewOptions(options, Options)
	var c Config

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

	d := &c.Defaults
	switch d.FailureAction = strings.ToLower(strings.TrimSpace(o.String(OptFailureAction))); d.FailureAction {
	case docker.FailureRollback, docker.FailurePause, docker.FailureContinue:
	default:
		o.Add(OptFailureAction, "%q is not a failure action; expected rollback, pause or continue", d.FailureAction)
	}
	d.Monitor = o.Duration(OptMonitor)
	d.Delay = o.Duration(OptDelay)
	switch d.Order = strings.ToLower(strings.TrimSpace(o.String(OptOrder))); d.Order {
	case docker.OrderStartFirst, docker.OrderStopFirst:
	default:
		o.Add(OptOrder, "%q is not an order; expected start-first or stop-first", d.Order)
	}
	d.Parallelism = uint64(o.Int(OptParallelism, 0, 1000))
	switch c.Paused = strings.ToLower(strings.TrimSpace(o.String(OptPaused))); c.Paused {
	case PausedRollback, PausedLeave:
	default:
		o.Add(OptPaused, "%q is not what to do with a paused update; expected rollback or leave", c.Paused)
	}

	pm, err := composefile.ParsePathMap(o.String(OptPathMap))
	if err != nil {
		o.Add(OptPathMap, "%v", err)
	}
	c.PathMap = pm
	c.Stacks = map[string]string{}
	for _, item := range o.List(OptStackFile) {
		stack, path, named := strings.Cut(item, "=")
		stack, path = strings.TrimSpace(stack), strings.TrimSpace(path)
		if !named {
			path, stack = stack, ""
		}
		switch {
		case named && !stackName.MatchString(stack):
			o.Add(OptStackFile, "%q: %q is not a stack name; expected letters, digits, _ and -", item, stack)
		case !filepath.IsAbs(path) || strings.Contains(path, "\x00"):
			o.Add(OptStackFile, "%q: the path is not absolute; expected stack=/path/docker-stack.yml or /path/{stack}/docker-stack.yml", item)
		case !named && c.AnyStack != "":
			o.Add(OptStackFile, "%q: a second path for every stack (the first is %s); name the stack: stack=/path", item, c.AnyStack)
		case !named:
			c.AnyStack = path
		case c.Stacks[stack] != "":
			o.Add(OptStackFile, "%q: stack %s is named twice", item, stack)
		default:
			c.Stacks[stack] = path
		}
	}
	c.Backups = o.Int(OptBackups, 1, 100)
	c.LogLines = o.Int(OptLogLines, 0, 1000)
	c.DryRun = o.Bool(OptDryRun)
	c.Self = append(o.List(OptSelf), rollout.DetectSelf()...)
	return c, o.Err()
}

// stackFile returns the file of stack, as tidewatch sees it (mapped through
// PATH_MAP), and "" when no STACK_FILE names it. A stack whose name could
// not be a stack's is refused, so that a service's label cannot point a
// path anywhere.
func (c Config) stackFile(stack string) (string, error) {
	if !stackName.MatchString(stack) {
		return "", errBadStack
	}
	path := c.Stacks[stack]
	if path == "" {
		path = strings.ReplaceAll(c.AnyStack, StackPlaceholder, stack)
	}
	if path == "" {
		return "", nil
	}
	return composefile.Map(c.PathMap, path), nil
}
