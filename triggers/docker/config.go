package docker

import (
	"regexp"
	"slices"

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
)

// Options are the docker trigger's options.
var Options = slices.Concat(rollout.EngineOptions, rollout.CheckOptions, []sdk.Option{
	{Name: OptPrune, Default: "false", Description: "true to remove the previous image after a successful rollout"},
	{Name: OptDryRun, Default: "false", Description: "true to report the steps it would take, touching nothing"},
	{Name: OptSelf, Description: "IDs or names of the container tidewatch runs in, comma-separated; default: detected from /proc/self/mountinfo, /proc/self/cgroup and the hostname"},
	{Name: OptSelfUpdate, Default: "true", Description: "true to update tidewatch's own container through a helper container (its store folder must be on a volume); false to refuse it"},
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
	return c, o.Err()
}
