package triggers

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Threshold is the largest version jump a trigger acts on
// (TIDEWATCH_TRIGGER_<type>_<name>_THRESHOLD), as in What's Up Docker.
//
// The plain thresholds are ceilings, on the ladder
// major > minor > patch > prerelease > digest: "minor" acts on minor,
// patch and prerelease updates but not on major ones (a trigger that
// deploys "minor" updates never jumps a major version); "patch" on patch and
// prerelease; "major" and "all" on everything; "digest" only on digest
// updates (the same tag rebuilt). The "-only" thresholds act on exactly one
// kind: "major-only" on major updates, "minor-only" on minor, "patch-only"
// on patch.
//
// A digest update is not a version jump: it passes every threshold (as in
// What's Up Docker); a container that does not want them does not watch
// digests (tidewatch.watch.digest). An update of an unknown kind passes too.
type Threshold string

// The thresholds.
const (
	ThresholdAll       Threshold = "all"
	ThresholdMajor     Threshold = "major"
	ThresholdMinor     Threshold = "minor"
	ThresholdPatch     Threshold = "patch"
	ThresholdDigest    Threshold = "digest"
	ThresholdMajorOnly Threshold = "major-only"
	ThresholdMinorOnly Threshold = "minor-only"
	ThresholdPatchOnly Threshold = "patch-only"
)

var thresholds = []Threshold{ThresholdAll, ThresholdMajor, ThresholdMinor, ThresholdPatch, ThresholdDigest,
	ThresholdMajorOnly, ThresholdMinorOnly, ThresholdPatchOnly}

// ParseThreshold parses a threshold, case-insensitively; "" is ThresholdAll.
func ParseThreshold(s string) (Threshold, error) {
	t := Threshold(strings.ToLower(strings.TrimSpace(s)))
	if t == "" {
		return ThresholdAll, nil
	}
	if slices.Contains(thresholds, t) {
		return t, nil
	}
	return "", fmt.Errorf("%q is not a threshold; expected one of all, major, minor, patch, digest, major-only, minor-only, patch-only", s)
}

// rank places a kind on the ladder; 0 for a kind it does not know.
func rank(k core.UpdateKind) int {
	switch k {
	case core.KindMajor:
		return 4
	case core.KindMinor:
		return 3
	case core.KindPatch:
		return 2
	case core.KindPrerelease:
		return 1
	}
	return 0
}

// Passes reports whether an update of kind k passes the threshold.
func (t Threshold) Passes(k core.UpdateKind) bool {
	if k == core.KindDigest {
		return true
	}
	r := rank(k)
	if r == 0 { // unknown kind
		return true
	}
	switch t {
	case ThresholdMinor:
		return r <= rank(core.KindMinor)
	case ThresholdPatch:
		return r <= rank(core.KindPatch)
	case ThresholdDigest:
		return false
	case ThresholdMajorOnly:
		return k == core.KindMajor
	case ThresholdMinorOnly:
		return k == core.KindMinor
	case ThresholdPatchOnly:
		return k == core.KindPatch
	}
	return true // all, major, ""
}

// Mode says how a trigger groups updates (TIDEWATCH_TRIGGER_<type>_<name>_MODE).
type Mode string

// The modes.
const (
	// ModeOnce fires once per update: one message each.
	ModeOnce Mode = "once"
	// ModeBatch fires once per watch run with every update of the run that
	// the trigger acts on: one message for all.
	ModeBatch Mode = "batch"
)

// ParseMode parses a mode, case-insensitively; "" is ModeOnce, and so is
// "simple" (What's Up Docker's name for it).
func ParseMode(s string) (Mode, error) {
	switch m := strings.ToLower(strings.TrimSpace(s)); m {
	case "", "once", "simple":
		return ModeOnce, nil
	case "batch":
		return ModeBatch, nil
	}
	return "", fmt.Errorf("%q is not a mode; expected once or batch", s)
}

// Policy is what tidewatch decides for every trigger instance: the common
// options TIDEWATCH_TRIGGER_<type>_<name>_*. Start from DefaultPolicy: the
// zero Policy has Auto and Once off.
type Policy struct {
	// Threshold is the largest jump acted on (THRESHOLD, default all).
	Threshold Threshold
	// Mode is once (a message per update, the default) or batch (a message per run).
	Mode Mode
	// Auto fires on detection (AUTO, default true); off, the trigger fires
	// only when a person asks (Dispatcher.Request).
	Auto bool
	// Once delivers an update once per candidate (ONCE, default true); off,
	// every run that still finds it delivers it again.
	Once bool
	// Include and Exclude filter containers (INCLUDE, EXCLUDE): names or
	// path.Match globs, matched against the container's name and against
	// "host/name". Empty Include means every container; Exclude wins.
	Include, Exclude []string
	// Events are the events delivered (default update-available; also
	// update-applied, update-failed, update-rolled-back).
	Events []string
	// Retries is the number of attempts before a delivery fails (default 5).
	Retries int
	// Timeout is the deadline of one Fire (default 30s).
	Timeout time.Duration
	// Concurrency is the number of Fire calls in flight for this trigger (default 2).
	Concurrency int
}

// Defaults of a Policy.
const (
	DefaultRetries     = 5
	DefaultTimeout     = 30 * time.Second
	DefaultConcurrency = 2
)

// DefaultPolicy returns the policy of a trigger with no common option set.
func DefaultPolicy() Policy {
	p := Policy{Auto: true, Once: true}
	p.SetDefaults()
	return p
}

// SetDefaults fills the fields left zero (all but Auto and Once, whose zero is meaningful).
func (p *Policy) SetDefaults() {
	if p.Threshold == "" {
		p.Threshold = ThresholdAll
	}
	if p.Mode == "" {
		p.Mode = ModeOnce
	}
	if len(p.Events) == 0 {
		p.Events = []string{sdk.EventUpdateAvailable}
	}
	if p.Retries <= 0 {
		p.Retries = DefaultRetries
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	if p.Concurrency <= 0 {
		p.Concurrency = DefaultConcurrency
	}
}

var events = []string{sdk.EventUpdateAvailable, sdk.EventUpdateApplied, sdk.EventUpdateFailed, sdk.EventUpdateRolledBack}

// Validate reports every problem of the policy at once.
func (p Policy) Validate() error {
	var errs []error
	if _, err := ParseThreshold(string(p.Threshold)); err != nil {
		errs = append(errs, fmt.Errorf("THRESHOLD: %w", err))
	}
	if _, err := ParseMode(string(p.Mode)); err != nil {
		errs = append(errs, fmt.Errorf("MODE: %w", err))
	}
	for name, globs := range map[string][]string{"INCLUDE": p.Include, "EXCLUDE": p.Exclude} {
		for _, g := range globs {
			if _, err := path.Match(g, ""); err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a valid glob: %w", name, g, err))
			}
		}
	}
	for _, e := range p.Events {
		if !slices.Contains(events, e) {
			errs = append(errs, fmt.Errorf("EVENTS: %q is not an event; expected %s", e, strings.Join(events, ", ")))
		}
	}
	if p.Retries < 0 || p.Timeout < 0 || p.Concurrency < 0 {
		errs = append(errs, errors.New("retries, timeout and concurrency may not be negative"))
	}
	return errors.Join(errs...)
}

// Matches reports whether the trigger instance triggerName ("type.name")
// acts on u, whose container has labels: u's kind passes the threshold, the
// container passes Include and Exclude, and its labels let it:
//
//   - tidewatch.trigger.include, when set, lists the only triggers that may
//     act on the container;
//   - tidewatch.trigger.exclude lists triggers that must not.
//
// Each label is a comma-separated list of "type.name", "name" or "type",
// compared without case; an entry may end in ":threshold"
// ("webhook.ops:minor"), which limits it to the updates passing that
// threshold (an included trigger acts on those only; an excluded one is
// excluded from those only).
func (p Policy) Matches(u core.Update, labels map[string]string, triggerName string) bool {
	if !p.Threshold.Passes(u.Kind) {
		return false
	}
	if len(p.Include) > 0 && !matchContainer(p.Include, u) {
		return false
	}
	if matchContainer(p.Exclude, u) {
		return false
	}
	if v := strings.TrimSpace(labels[core.LabelTriggerInclude]); v != "" && !labelLists(v, triggerName, u.Kind) {
		return false
	}
	if v := strings.TrimSpace(labels[core.LabelTriggerExclude]); v != "" && labelLists(v, triggerName, u.Kind) {
		return false
	}
	return true
}

// matchContainer reports whether a glob matches u's container, by name or by "host/name".
func matchContainer(globs []string, u core.Update) bool {
	full := u.Host + "/" + u.ContainerName
	for _, g := range globs {
		if ok, _ := path.Match(g, u.ContainerName); ok {
			return true
		}
		if ok, _ := path.Match(g, full); ok {
			return true
		}
	}
	return false
}

// labelLists reports whether the label value lists triggerName for an update of kind k.
func labelLists(value, triggerName string, k core.UpdateKind) bool {
	typ, name, _ := strings.Cut(triggerName, ".")
	for _, entry := range strings.Split(value, ",") {
		ref, th, hasTh := strings.Cut(strings.TrimSpace(entry), ":")
		ref = strings.TrimSpace(ref)
		if ref == "" {
			continue
		}
		if !strings.EqualFold(ref, triggerName) && !strings.EqualFold(ref, name) && !strings.EqualFold(ref, typ) {
			continue
		}
		if !hasTh {
			return true
		}
		t, err := ParseThreshold(th)
		if err != nil {
			t = ThresholdAll // as What's Up Docker: an unknown threshold is all
		}
		if t.Passes(k) {
			return true
		}
	}
	return false
}
