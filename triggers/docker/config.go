package docker

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	engine "github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// Option names; the engine's and the checks' are rollout's.
const (
	OptDockerHost    = rollout.OptDockerHost
	OptDockerCAFile  = rollout.OptDockerCAFile
	OptDockerCert    = rollout.OptDockerCert
	OptDockerKey     = rollout.OptDockerKey
	OptHealthTimeout = rollout.OptHealthTimeout
	OptStableFor     = rollout.OptStableFor
	OptSmokeHTTP     = rollout.OptSmokeHTTP
	OptSmokeTCP      = rollout.OptSmokeTCP
	OptLogLines      = rollout.OptLogLines
	OptPrune         = "PRUNE"
	OptDryRun        = "DRYRUN"
	OptSelf          = "SELF_CONTAINER"
	OptSelfUpdate    = "SELF_UPDATE"
	OptStateDir      = "STATE_DIR"
)

// DefaultStateDir is where rollout records and locks are kept without
// STATE_DIR: a folder of tidewatch's own in the temp folder, which
// survives a restart of tidewatch (and of its container), not a new
// container nor, on many hosts, a reboot.
func DefaultStateDir() string { return filepath.Join(os.TempDir(), "tidewatch-docker-rollouts") }

// Options are the docker trigger's options.
var Options = slices.Concat(rollout.EngineOptions, rollout.CheckOptions, []sdk.Option{
	{Name: OptPrune, Default: "false", Description: "true to remove the previous image after a successful rollout"},
	{Name: OptDryRun, Default: "false", Description: "true to report the steps it would take, touching nothing"},
	{Name: OptSelf, Description: "IDs or names of the container tidewatch runs in, comma-separated; default: detected from /proc/self/mountinfo, /proc/self/cgroup and the hostname"},
	{Name: OptSelfUpdate, Default: "true", Description: "true to update tidewatch's own container through a helper container (its store folder must be on a volume); false to refuse it"},
	{Name: OptStateDir, Description: "the absolute folder (it must exist) for rollout records and locks: a rollout cut short (tidewatch killed) is finished or undone from its record when its delivery is fired again; default: tidewatch-docker-rollouts in the temp folder (put it on a volume when tidewatch runs in a container that may be recreated)"},
})

// containerName is what the engine takes as a container's name (or ID).
var containerName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Config is a docker trigger's parsed configuration.
type Config struct {
	// Engine says how to reach the engine.
	Engine engine.Options
	// Checks are the health gate, smoke checks and logs of a rollback.
	Checks rollout.Checks
	// Prune removes the previous image after success; default false.
	Prune bool
	// DryRun touches nothing; default false.
	DryRun bool
	// Self are the IDs and names of tidewatch's own container (given and detected).
	Self []string
	// SelfUpdate updates tidewatch's own container through a helper; default true.
	SelfUpdate bool
	// StateDir is the folder of rollout records and locks; default
	// DefaultStateDir (made at the first rollout).
	StateDir string
}

// ParseConfig parses a Configure call's options, reporting every problem at
// once, each naming its option.
func ParseConfig(options map[string]string) (Config, error) {
	o := sdk.NewOptions(options, Options)
	c := Config{Engine: rollout.ParseEngine(o), Checks: rollout.ParseChecks(o)}
	c.Prune = o.Bool(OptPrune)
	c.DryRun = o.Bool(OptDryRun)
	c.SelfUpdate = o.Bool(OptSelfUpdate)
	for _, s := range o.List(OptSelf) {
		if !containerName.MatchString(s) {
			o.Add(OptSelf, "%q is not a container name or ID", s)
		}
	}
	c.Self = append(o.List(OptSelf), rollout.DetectSelf()...)
	if c.StateDir = strings.TrimSpace(o.String(OptStateDir)); c.StateDir != "" {
		if st, err := os.Stat(c.StateDir); err != nil || !st.IsDir() || !filepath.IsAbs(c.StateDir) {
			o.Add(OptStateDir, "%q is not an absolute path of a folder that exists", c.StateDir)
		}
	}
	return c, o.Err()
}
