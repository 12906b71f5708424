package core

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event is what a delivery tells a trigger: a candidate was found, or how a
// rollout of it ended. The names are the wire names plugins see (the SDK's
// Event constants).
type Event string

// The events.
const (
	// EventUpdateAvailable: a newer image was found.
	EventUpdateAvailable Event = "update-available"
	// EventUpdateApplied: a rollout of the update succeeded.
	EventUpdateApplied Event = "update-applied"
	// EventUpdateFailed: a rollout failed and could not be rolled back.
	EventUpdateFailed Event = "update-failed"
	// EventUpdateRolledBack: a rollout failed and what ran before was put back.
	EventUpdateRolledBack Event = "update-rolled-back"
)

// Events lists every event, in the order the documentation gives them.
var Events = []Event{EventUpdateAvailable, EventUpdateApplied, EventUpdateFailed, EventUpdateRolledBack}

// ParseEvent parses an event name, case-insensitively.
func ParseEvent(s string) (Event, error) {
	e := Event(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Events, e) {
		return e, nil
	}
	return "", &OptionValueError{Problem: "unknown event " + Quote(s), Expected: "one of " + joinValues(Events)}
}

// Status is the update status an event leaves when a rollout ends with it;
// "" for EventUpdateAvailable.
func (e Event) Status() UpdateStatus {
	switch e {
	case EventUpdateApplied:
		return StatusApplied
	case EventUpdateFailed:
		return StatusFailed
	case EventUpdateRolledBack:
		return StatusRolledBack
	}
	return ""
}

// Threshold is the largest version jump a trigger acts on by itself
// (THRESHOLD), as in What's Up Docker.
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

// Thresholds lists every threshold.
var Thresholds = []Threshold{ThresholdAll, ThresholdMajor, ThresholdMinor, ThresholdPatch, ThresholdDigest,
	ThresholdMajorOnly, ThresholdMinorOnly, ThresholdPatchOnly}

// ParseThreshold parses a threshold, case-insensitively; "" is ThresholdAll.
func ParseThreshold(s string) (Threshold, error) {
	t := Threshold(strings.ToLower(strings.TrimSpace(s)))
	if t == "" {
		return ThresholdAll, nil
	}
	if slices.Contains(Thresholds, t) {
		return t, nil
	}
	return "", &OptionValueError{Problem: "unknown threshold", Expected: "one of " + joinValues(Thresholds)}
}

// rank places a kind on the ladder; 0 for a kind it does not know.
func rank(k UpdateKind) int {
	switch k {
	case KindMajor:
		return 4
	case KindMinor:
		return 3
	case KindPatch:
		return 2
	case KindPrerelease:
		return 1
	}
	return 0
}

// Passes reports whether an update of kind k passes the threshold.
func (t Threshold) Passes(k UpdateKind) bool {
	if k == KindDigest {
		return true
	}
	r := rank(k)
	if r == 0 { // unknown kind
		return true
	}
	switch t {
	case ThresholdMinor:
		return r <= rank(KindMinor)
	case ThresholdPatch:
		return r <= rank(KindPatch)
	case ThresholdDigest:
		return false
	case ThresholdMajorOnly:
		return k == KindMajor
	case ThresholdMinorOnly:
		return k == KindMinor
	case ThresholdPatchOnly:
		return k == KindPatch
	}
	return true // all, major, ""
}

// Mode says how a trigger groups updates (MODE).
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
	return "", &OptionValueError{Problem: "unknown mode", Expected: "once (a message per update; simple is the same) or batch (one per run)"}
}

// The common trigger options: tidewatch handles them for every trigger
// type, as TIDEWATCH_TRIGGER_<type>_<name>_<option>; a plugin may not
// declare an option of the same name.
const (
	OptionThreshold   = "THRESHOLD"
	OptionMode        = "MODE"
	OptionAuto        = "AUTO"
	OptionOnce        = "ONCE"
	OptionInclude     = "INCLUDE"
	OptionExclude     = "EXCLUDE"
	OptionEvents      = "EVENTS"
	OptionRetries     = "RETRIES"
	OptionDeadline    = "DEADLINE"
	OptionConcurrency = "CONCURRENCY"
	OptionLabels      = "LABELS"
	OptionWatcher     = "WATCHER"
	OptionMinAge      = "MIN_AGE"
)

// TriggerOptions lists the common trigger options.
var TriggerOptions = []string{OptionThreshold, OptionMode, OptionAuto, OptionOnce, OptionInclude, OptionExclude,
	OptionEvents, OptionRetries, OptionDeadline, OptionConcurrency, OptionLabels, OptionWatcher, OptionMinAge}

// IsTriggerOption reports whether name is a common trigger option.
func IsTriggerOption(name string) bool { return slices.Contains(TriggerOptions, name) }

// Defaults of a TriggerPolicy.
const (
	DefaultRetries     = 5
	DefaultDeadline    = 30 * time.Second
	DefaultConcurrency = 2
	// DefaultDeployDeadline is the DEADLINE of a trigger that deploys, when
	// not set: room for a pull, a health gate and a rollback.
	DefaultDeployDeadline = 10 * time.Minute
)

// TriggerPolicy is what tidewatch decides for every trigger instance: its
// common options. Start from DefaultTriggerPolicy: the zero value has Auto
// and Once off.
type TriggerPolicy struct {
	// Threshold is the largest jump acted on by itself (THRESHOLD, default all).
	Threshold Threshold
	// Mode is once (a message per update, the default) or batch (a message per run).
	Mode Mode
	// Auto fires on detection (AUTO, default true); off, the trigger fires
	// only when a person asks.
	Auto bool
	// Once delivers an update once per candidate (ONCE, default true); off,
	// every run that still finds it delivers it again.
	Once bool
	// Include and Exclude filter containers (INCLUDE, EXCLUDE): names or
	// path.Match globs, matched against the container's name and against
	// "host/name". Empty Include means every container; Exclude wins.
	Include, Exclude []string
	// Events are the events delivered (EVENTS, default update-available).
	Events []Event
	// Retries is the number of attempts before a delivery fails (RETRIES, default 5).
	Retries int
	// Deadline bounds one delivery (DEADLINE, default 30s; 10m for a trigger
	// that deploys). It is not TIDEWATCH_…_TIMEOUT, which triggers use for
	// their own timeouts (one request).
	Deadline time.Duration
	// DeadlineSet is true when DEADLINE was set, so that a deploying
	// trigger's longer default does not override it.
	DeadlineSet bool
	// Concurrency is the number of deliveries in flight (CONCURRENCY, default 2).
	Concurrency int
	// Labels are the container labels, besides tidewatch.*, that a
	// notifying trigger is given (LABELS: names or path.Match globs; default
	// none). Other tools keep credentials in labels: they stay here unless
	// an operator lists them. A deploying trigger is given every label.
	Labels []string
	// Watchers are the watchers (Docker hosts, by name) whose updates the
	// trigger acts on (WATCHER, comma-separated; default every one). A
	// trigger that deploys acts on one host: it is bound to its watcher,
	// and an update found on another host is refused, not rolled out to a
	// same-named container where the trigger happens to point.
	Watchers []string
	// MinAge is a cooldown (MIN_AGE, default 0: none): the trigger acts by
	// itself only on candidates at least this old (Update.ReadyAt); the
	// container's tidewatch.update.min-age applies too, the longer wins.
	MinAge time.Duration
}

// DefaultTriggerPolicy returns the policy of a trigger with no common option set.
func DefaultTriggerPolicy() TriggerPolicy {
	p := TriggerPolicy{Auto: true, Once: true}
	p.SetDefaults()
	return p
}

// SetDefaults fills the fields left zero (all but Auto and Once, whose zero is meaningful).
func (p *TriggerPolicy) SetDefaults() {
	if p.Threshold == "" {
		p.Threshold = ThresholdAll
	}
	if p.Mode == "" {
		p.Mode = ModeOnce
	}
	if len(p.Events) == 0 {
		p.Events = []Event{EventUpdateAvailable}
	}
	if p.Retries <= 0 {
		p.Retries = DefaultRetries
	}
	if p.Deadline <= 0 {
		p.Deadline = DefaultDeadline
	}
	if p.Concurrency <= 0 {
		p.Concurrency = DefaultConcurrency
	}
}

// OptionValueError is a common option's value that does not parse: what is
// wrong, and what would be right. Config turns it into an error naming the
// variable.
type OptionValueError struct {
	// Problem says what is wrong: "unknown threshold".
	Problem string
	// Expected says what would be right: "one of all, major, …".
	Expected string
}

// Error reads "problem; expected …".
func (e *OptionValueError) Error() string { return e.Problem + "; expected " + e.Expected }

// Set parses the common option name (one of TriggerOptions, upper case)
// from value into p. A value that does not parse leaves p as it was and
// returns an *OptionValueError.
func (p *TriggerPolicy) Set(name, value string) error {
	bad := func(problem, expected string) error { return &OptionValueError{Problem: problem, Expected: expected} }
	switch name {
	case OptionThreshold:
		t, err := ParseThreshold(value)
		if err != nil {
			return err
		}
		p.Threshold = t
	case OptionMode:
		m, err := ParseMode(value)
		if err != nil {
			return err
		}
		p.Mode = m
	case OptionAuto, OptionOnce:
		b, ok := parseBool(value)
		if !ok {
			return bad("not a boolean", "true or false")
		}
		if name == OptionAuto {
			p.Auto = b
		} else {
			p.Once = b
		}
	case OptionInclude, OptionExclude, OptionLabels:
		list, err := globList(value)
		if err != nil {
			return err
		}
		switch name {
		case OptionInclude:
			p.Include = list
		case OptionExclude:
			p.Exclude = list
		default:
			p.Labels = list
		}
	case OptionWatcher:
		var list []string
		for _, w := range strings.Split(value, ",") {
			if w = strings.ToLower(strings.TrimSpace(w)); w == "" {
				continue
			}
			if !ValidName(w) {
				return bad("bad watcher name "+Quote(w), "watcher names (letters and digits, in parts joined by single underscores) separated by commas")
			}
			list = append(list, w)
		}
		if len(list) == 0 {
			return bad("no watcher", "watcher names separated by commas")
		}
		p.Watchers = list
	case OptionEvents:
		var list []Event
		for _, s := range strings.Split(value, ",") {
			if strings.TrimSpace(s) == "" {
				continue
			}
			e, err := ParseEvent(s)
			if err != nil {
				return bad(err.(*OptionValueError).Problem, "a comma-separated list of "+joinValues(Events))
			}
			if !slices.Contains(list, e) {
				list = append(list, e)
			}
		}
		if len(list) == 0 {
			return bad("no event", "a comma-separated list of "+joinValues(Events))
		}
		p.Events = list
	case OptionRetries:
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || n < 1 || n > 100 {
			return bad("not a number of attempts", "an integer from 1 to 100")
		}
		p.Retries = n
	case OptionConcurrency:
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || n < 1 || n > 64 {
			return bad("not a concurrency", "an integer from 1 to 64")
		}
		p.Concurrency = n
	case OptionDeadline:
		d, err := time.ParseDuration(strings.TrimSpace(value))
		if err != nil || d <= 0 || d > 6*time.Hour {
			return bad("not a deadline", "a Go duration from 1ms to 6h, like 30s")
		}
		p.Deadline, p.DeadlineSet = d, true
	case OptionMinAge:
		d, err := ParseMinAge(value)
		if err != nil {
			return bad("not a minimum age ("+err.Error()+")", MinAgeForm)
		}
		p.MinAge = d
	default:
		return bad("not a common trigger option", "one of "+strings.Join(TriggerOptions, ", "))
	}
	return nil
}

// globList parses a comma-separated list of names or path.Match globs.
func globList(value string) ([]string, error) {
	var list []string
	for _, g := range strings.Split(value, ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		if _, err := path.Match(g, ""); err != nil {
			return nil, &OptionValueError{Problem: "bad pattern " + Quote(g), Expected: "names or globs like web-* separated by commas"}
		}
		list = append(list, g)
	}
	return list, nil
}

// ValidName reports whether s is a name as configuration takes it for a
// watcher or a registry: lower-case letters and digits, in parts joined by
// single underscores.
func ValidName(s string) bool {
	for _, part := range strings.Split(s, "_") {
		if part == "" {
			return false
		}
		for _, c := range part {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return s != ""
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes":
		return true, true
	case "false", "0", "no":
		return false, true
	}
	return false, false
}

func joinValues[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// Hears reports whether the trigger is delivered event.
func (p TriggerPolicy) Hears(e Event) bool { return slices.Contains(p.Events, e) }

// Refusal says why the trigger instance named trigger ("type.name") must
// not act on u, or returns nil when it may. It checks, in order: the host
// (WATCHER), the container's tidewatch.watch label, the threshold and the
// cooldown (unless manual: a person asking may go beyond what the trigger
// does by itself; the cooldown is the longer of MIN_AGE and the container's
// tidewatch.update.min-age, counted from Update.AgeFrom, compared with the
// clock, and holds back only an update still on offer: pending or
// notified), INCLUDE and EXCLUDE, and the container's
// tidewatch.trigger.include and tidewatch.trigger.exclude labels. Each
// refusal names the rule.
//
// The labels are comma-separated lists of "type.name", "name" or "type",
// compared without case; an entry may end in ":threshold"
// ("webhook.ops:minor"), which limits it to the updates passing that
// threshold (an included trigger acts on those only; an excluded one is
// excluded from those only).
func (p TriggerPolicy) Refusal(u Update, trigger string, manual bool) error {
	if len(p.Watchers) > 0 && !slices.Contains(p.Watchers, u.Host) {
		return &RefusalError{Rule: OptionWatcher + "=" + strings.Join(p.Watchers, ","), Reason: "the update was found on " + u.Host + ", another host"}
	}
	if v, ok := u.Labels[LabelWatch]; ok {
		if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil && !b {
			return &RefusalError{Rule: "label " + LabelWatch + "=" + v, Reason: "the container is not watched"}
		}
	}
	if !manual && !p.Threshold.Passes(u.Kind) {
		return &RefusalError{Rule: OptionThreshold + "=" + string(p.Threshold), Reason: fmt.Sprintf("a %s update is beyond it", u.Kind)}
	}
	if !manual && onOffer(u.Status) {
		if err := p.cooldown(u, time.Now()); err != nil {
			return err
		}
	}
	if len(p.Include) > 0 && !matchContainer(p.Include, u) {
		return &RefusalError{Rule: OptionInclude + "=" + strings.Join(p.Include, ","), Reason: "the container " + u.ContainerName + " is not in it"}
	}
	if g := matchingGlob(p.Exclude, u); g != "" {
		return &RefusalError{Rule: OptionExclude + "=" + strings.Join(p.Exclude, ","), Reason: "the container " + u.ContainerName + " matches " + g}
	}
	if v := strings.TrimSpace(u.Labels[LabelTriggerInclude]); v != "" && !labelLists(v, trigger, u.Kind) {
		return &RefusalError{Rule: "label " + LabelTriggerInclude + "=" + v, Reason: "it does not list " + trigger + " for a " + string(u.Kind) + " update"}
	}
	if v := strings.TrimSpace(u.Labels[LabelTriggerExclude]); v != "" && labelLists(v, trigger, u.Kind) {
		return &RefusalError{Rule: "label " + LabelTriggerExclude + "=" + v, Reason: "it lists " + trigger}
	}
	return nil
}

// onOffer reports whether an update of status s is still on offer (pending
// or notified): the cooldown holds back offering and applying it, not the
// news of a rollout a person started (applying, applied, failed, rolled back).
func onOffer(s UpdateStatus) bool {
	return s == "" || s == StatusPending || s == StatusNotified
}

// cooldown refuses u while its candidate is younger, at now, than the
// longer of p.MinAge and the container's tidewatch.update.min-age.
func (p TriggerPolicy) cooldown(u Update, now time.Time) *RefusalError {
	label, err := MinAge(u.Labels)
	if err != nil {
		return &RefusalError{Rule: "label " + LabelUpdateMinAge + "=" + Quote(u.Labels[LabelUpdateMinAge]), Reason: "it is not a minimum age (" + err.Error() + ")"}
	}
	rule := "label " + LabelUpdateMinAge + "=" + u.Labels[LabelUpdateMinAge]
	minAge := label
	if p.MinAge > label {
		minAge, rule = p.MinAge, OptionMinAge+"="+FormatMinAge(p.MinAge)
	}
	if at := u.ReadyAt(minAge); now.Before(at) {
		return &RefusalError{Rule: rule, Reason: "the candidate is too young; waiting until " + at.UTC().Format(time.RFC3339)}
	}
	return nil
}

// Matches reports whether the trigger named trigger acts by itself on u
// (Refusal, not manual, is nil).
func (p TriggerPolicy) Matches(u Update, trigger string) bool {
	return p.Refusal(u, trigger, false) == nil
}

// RefusalError is why a trigger's policy refuses an update.
type RefusalError struct {
	// Rule is the option or label that refused, with its value: "EXCLUDE=db-*".
	Rule string
	// Reason says how it applies: "the container db-1 matches db-*".
	Reason string
}

// Error reads "refused by EXCLUDE=db-*: the container db-1 matches db-*".
func (e *RefusalError) Error() string { return "refused by " + e.Rule + ": " + e.Reason }

// matchContainer reports whether a glob matches u's container, by name or by "host/name".
func matchContainer(globs []string, u Update) bool { return matchingGlob(globs, u) != "" }

// matchingGlob returns the first glob matching u's container, by name or by "host/name".
func matchingGlob(globs []string, u Update) string {
	full := u.Host + "/" + u.ContainerName
	for _, g := range globs {
		if ok, _ := path.Match(g, u.ContainerName); ok {
			return g
		}
		if ok, _ := path.Match(g, full); ok {
			return g
		}
	}
	return ""
}

// labelLists reports whether the label value lists trigger for an update of kind k.
func labelLists(value, trigger string, k UpdateKind) bool {
	typ, name, _ := strings.Cut(trigger, ".")
	for _, entry := range strings.Split(value, ",") {
		ref, th, hasTh := strings.Cut(strings.TrimSpace(entry), ":")
		ref = strings.TrimSpace(ref)
		if ref == "" {
			continue
		}
		if !strings.EqualFold(ref, trigger) && !strings.EqualFold(ref, name) && !strings.EqualFold(ref, typ) {
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

// SharedLabels returns the labels of a container that a notifying trigger
// under p is given: tidewatch.* labels, and those p.Labels lists.
func (p TriggerPolicy) SharedLabels(labels map[string]string) map[string]string {
	var out map[string]string
	for k, v := range labels {
		keep := strings.HasPrefix(k, "tidewatch.")
		for _, g := range p.Labels {
			if keep {
				break
			}
			keep, _ = path.Match(g, k)
		}
		if keep {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
