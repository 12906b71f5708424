package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Trigger is what a plugin implements.
type Trigger interface {
	// Describe says what the trigger is and which options it takes. It is
	// called before Configure and must not depend on it.
	Describe(ctx context.Context) Description
	// Configure gives the trigger its instance name and options (option name,
	// upper case, → value), once, before any Fire. Return every problem at
	// once (errors.Join of *OptionError), each naming its option; tidewatch
	// reports them, with the variable's full name, and does not start.
	Configure(ctx context.Context, name string, options map[string]string) error
	// Fire delivers updates (one, or a batch) before ctx's deadline, and
	// returns one Result per update, in the same order.
	Fire(ctx context.Context, updates []Update) []Result
}

// Description says what a trigger is.
type Description struct {
	// Type is the trigger's type, lower case: "webhook", "ntfy".
	Type string
	// Description is one line for `tidewatch plugins`.
	Description string
	// Options are the options the trigger takes.
	Options []Option
	// Deploys is true for a trigger that rolls updates out (a compose
	// service, a container, a Swarm service) rather than telling someone:
	// tidewatch offers it for Apply in the UI and the API, marks the update
	// "applying" while it runs, gives it every label of the container, and
	// expects a Rollout in each Result. It gets a longer default DEADLINE (10m).
	Deploys bool
}

// Option describes one option of a trigger.
type Option struct {
	// Name is the option's name, upper case: "URL", "TOKEN". Users set it as
	// TIDEWATCH_TRIGGER_<type>_<name>_<Name>.
	Name string
	// Description says what it does, with its unit.
	Description string
	// Required options must be set.
	Required bool
	// Secret options are never shown or logged by tidewatch, and can also be
	// given as <Name>_FILE, a file holding the value.
	Secret bool
	// Default is the value used when the option is not set ("" for none).
	Default string
}

// Events an update can carry.
const (
	// EventUpdateAvailable: a newer image was found.
	EventUpdateAvailable = "update-available"
	// EventUpdateApplied: a rollout of the update succeeded.
	EventUpdateApplied = "update-applied"
	// EventUpdateFailed: a rollout failed and could not be rolled back.
	//
	// Fired at a trigger that deploys (Description.Deploys), it is a request,
	// not news: tidewatch's repair loop asks it to settle the rollout of the
	// earlier delivery whose Key the update carries, after that rollout
	// reported OutcomeFailed (its rollback failed too). The trigger finishes
	// that rollback from what it kept of the rollout, never rolls anything
	// out, and answers with a Rollout whose Outcome is OutcomeRolledBack or
	// OutcomeApplied when it is settled, OutcomeFailed when it is not yet
	// (asked again later), or OutcomeRefused when nothing of it is left (or
	// the trigger does not settle rollouts: tidewatch stops asking). A
	// deploying trigger that never reports OutcomeFailed is never asked.
	EventUpdateFailed = "update-failed"
	// EventUpdateRolledBack: a rollout failed and what ran before was put back.
	EventUpdateRolledBack = "update-rolled-back"
	// EventCommitFailed: an applied rollout's rewrite could not be committed
	// or pushed in its git work tree (Detail says why).
	EventCommitFailed = "commit-failed"
)

// Update is one update handed to a trigger: a container, what it runs, and
// what it could run. Its fields are the data model of message templates.
type Update struct {
	// Key is the delivery's idempotency key: the same key may be fired again
	// (after a crash or a timeout), and must then not be delivered twice.
	Key string `json:"key"`
	// Event is what happened: EventUpdateAvailable, or a rollout's outcome.
	Event string `json:"event"`
	// Host is the name of the Docker host (watcher).
	Host string `json:"host"`
	// Container is the container's display name (its tidewatch.display.name
	// label, or its name); ContainerName its name on the engine; ContainerID
	// the engine's ID when it was last seen.
	Container     string `json:"container"`
	ContainerName string `json:"container_name"`
	ContainerID   string `json:"container_id"`
	// Image is the repository, normalised: "index.docker.io/library/nginx".
	Image string `json:"image"`
	// Current and CurrentDigest are what runs.
	Current       string `json:"current"`
	CurrentDigest string `json:"current_digest,omitempty"`
	// Candidate and CandidateDigest are what is offered.
	Candidate       string `json:"candidate"`
	CandidateDigest string `json:"candidate_digest,omitempty"`
	// Kind is major, minor, patch, prerelease or digest.
	Kind string `json:"kind"`
	// Link is the release-notes link, when the container has a template.
	Link string `json:"link,omitempty"`
	// DetectedAt is when the candidate was first found.
	DetectedAt time.Time `json:"detected_at"`
	// Labels are the container's labels that the trigger may see: every
	// label for a trigger that deploys; for the others, tidewatch.* labels
	// and those the operator shares with the trigger's LABELS option (other
	// tools keep credentials in labels).
	Labels map[string]string `json:"labels,omitempty"`
	// Detail says what happened, for rollout events.
	Detail string `json:"detail,omitempty"`
	// Principal is who asked for this delivery (a user or token of
	// tidewatch's API, "mqtt"); "" when tidewatch acts by itself.
	Principal string `json:"principal,omitempty"`
	// RegistryAuth is how to pull Image's candidate: the credentials
	// tidewatch reads that registry with. Only a trigger that deploys gets
	// it; nil when the registry is read anonymously. It is never written
	// out (JSON, fmt, slog).
	RegistryAuth *RegistryAuth `json:"-"`
	// Declared, for a trigger that deploys, says that compose files already
	// declare how the service runs (a commit of a git source): there is
	// nothing to rewrite. nil for an update found by the watcher. A trigger
	// that cannot deploy declared files refuses such an update.
	Declared *Declared `json:"declared,omitempty"`
}

// Declared says that compose files already declare a service as it should
// run: a commit of a git source, checked out. The trigger brings Service up
// as Files say (creating it when it does not run yet), with its usual pull,
// health gate and smoke checks, and on failure puts each Previous file back
// before bringing back what ran before.
type Declared struct {
	// Source and Commit name the git source and the commit, for reports.
	Source string `json:"source"`
	Commit string `json:"commit"`
	// Project is the compose project's name; WorkingDir its folder; Files
	// its compose files (absolute paths, in compose order).
	Project    string   `json:"project"`
	WorkingDir string   `json:"working_dir"`
	Files      []string `json:"files"`
	// Service is the service to bring up.
	Service string `json:"service"`
	// Previous are the files the deploy changes: Path the file, Backup a
	// copy of its previous bytes ("" when the file did not exist before:
	// a rollback removes it).
	Previous []FileChange `json:"previous,omitempty"`
}

// RegistryAuth holds registry credentials. It redacts itself wherever it
// could leak: fmt verbs, JSON and slog.
type RegistryAuth struct {
	// Server is the registry host ("ghcr.io", "index.docker.io").
	Server string
	// Username and Password are basic credentials; IdentityToken an OAuth2
	// refresh token; RegistryToken a bearer token.
	Username, Password, IdentityToken, RegistryToken string
}

// String names the registry and the user, never a secret.
func (a RegistryAuth) String() string {
	return "credentials for " + a.Server + " (" + a.Username + ", [redacted])"
}

// GoString is String, for %#v.
func (a RegistryAuth) GoString() string { return a.String() }

// MarshalJSON writes the redacted form.
func (a RegistryAuth) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(a.String())), nil }

// LogValue redacts the credentials in slog output.
func (a RegistryAuth) LogValue() slog.Value { return slog.StringValue(a.String()) }

// Result is what became of one update.
type Result struct {
	// Err is nil when the update was delivered. Wrap it with Permanent when
	// trying again cannot help (a 4xx answer, a bad address); any other error
	// is retried later with backoff, up to a limit.
	Err error
	// Detail is optional detail for the history (an HTTP status, a message ID,
	// a rollout's steps).
	Detail string
	// Event, when set, is an event the delivery caused — a rollout's outcome:
	// EventUpdateApplied, EventUpdateFailed or EventUpdateRolledBack. tidewatch
	// records it on the update and hands it to the triggers that listen for it.
	// A deploying trigger may leave it empty: the Rollout's outcome gives it.
	Event string
	// Rollout is a deploying trigger's report of what it did; nil for a
	// trigger that only tells someone.
	Rollout *Rollout
	// Services, for a trigger that sends each message to several services
	// (the notify trigger's URLs), says what each service it sent to in this
	// attempt did; tidewatch counts them per trigger and service in its
	// metrics (tidewatch_trigger_service_deliveries_total). Leave out the
	// services skipped because an earlier attempt reached them. nil for a
	// trigger with one destination.
	Services []ServiceOutcome
}

// ServiceOutcome is what one service of a trigger did with a message.
type ServiceOutcome struct {
	// Service names the service, with nothing secret in it: a type and a
	// position, "telegram#2". It becomes a metric label: keep the set of
	// names small and stable (no keys, no container names).
	Service string
	// Failed is true when the service did not take the message.
	Failed bool
}

// OK is the result of a delivered update.
func OK(detail string) Result { return Result{Detail: detail} }

// Retry is the result of an update that failed but may succeed later.
func Retry(err error) Result { return Result{Err: err} }

// Fail is the result of an update that failed for good.
func Fail(err error) Result { return Result{Err: Permanent(err)} }

// All returns the same result for n updates, for a trigger that sends a
// batch as one message.
func All(n int, r Result) []Result {
	out := make([]Result, n)
	for i := range out {
		out[i] = r
	}
	return out
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// OptionError is a problem with one option, returned from Configure.
type OptionError struct {
	// Option is the option's name ("URL"), or "" for the configuration as a whole.
	Option string
	// Message says what is wrong and what was expected.
	Message string
}

// Error returns "URL: not an absolute URL; expected http(s)://host/path".
func (e *OptionError) Error() string {
	if e.Option == "" {
		return e.Message
	}
	return e.Option + ": " + e.Message
}

// Errorf returns an *OptionError for option.
func Errorf(option, format string, args ...any) error {
	return &OptionError{Option: option, Message: fmt.Sprintf(format, args...)}
}

// OptionErrors unpacks what Configure returned into its option errors; an
// error that is not an *OptionError is one for the whole configuration.
func OptionErrors(err error) []*OptionError {
	if err == nil {
		return nil
	}
	var out []*OptionError
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var oe *OptionError
		if errors.As(e, &oe) {
			out = append(out, oe)
			return
		}
		out = append(out, &OptionError{Message: e.Error()})
	}
	walk(err)
	return out
}

// Options gives typed access to a Configure call's options, collecting
// every problem; a trigger's Configure reads its options through it and
// returns Err().
type Options struct {
	values map[string]string
	desc   map[string]Option
	errs   []error
}

// NewOptions wraps the options given to Configure; known are the trigger's
// declared options, whose defaults apply and whose Required is checked.
func NewOptions(values map[string]string, known []Option) *Options {
	o := &Options{values: values, desc: map[string]Option{}}
	for _, opt := range known {
		o.desc[opt.Name] = opt
		if opt.Required && strings.TrimSpace(values[opt.Name]) == "" {
			o.errs = append(o.errs, Errorf(opt.Name, "required; %s", opt.Description))
		}
	}
	for name := range values {
		if _, ok := o.desc[name]; !ok {
			o.errs = append(o.errs, Errorf(name, "unknown option"))
		}
	}
	return o
}

// String returns the option's value, or its default.
func (o *Options) String(name string) string {
	if v, ok := o.values[name]; ok && v != "" {
		return v
	}
	return o.desc[name].Default
}

// Add records a problem with an option.
func (o *Options) Add(option, format string, args ...any) {
	o.errs = append(o.errs, Errorf(option, format, args...))
}

// Err returns every problem recorded, joined, or nil.
func (o *Options) Err() error { return errors.Join(o.errs...) }

// Bool returns the option as a boolean (true/false, 1/0, yes/no), recording
// an error for anything else.
func (o *Options) Bool(name string) bool {
	switch strings.ToLower(strings.TrimSpace(o.String(name))) {
	case "true", "1", "yes":
		return true
	case "false", "0", "no", "":
		return false
	default:
		o.Add(name, "%q is not a boolean; expected true or false", o.String(name))
		return false
	}
}

// Duration returns the option as a Go duration ("10s", "1m30s"), recording an
// error for anything else or a value that is not positive.
func (o *Options) Duration(name string) time.Duration {
	s := strings.TrimSpace(o.String(name))
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		o.Add(name, "%q is not a duration; expected a positive Go duration like 10s or 1m30s", s)
		return 0
	}
	return d
}

// Int returns the option as an integer within [min, max], recording an error otherwise.
func (o *Options) Int(name string, min, max int) int {
	s := strings.TrimSpace(o.String(name))
	if s == "" {
		return 0
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || fmt.Sprint(n) != s || n < min || n > max {
		o.Add(name, "%q is not an integer from %d to %d", s, min, max)
		return 0
	}
	return n
}

// List returns the option split at commas, each item trimmed, empty ones dropped.
func (o *Options) List(name string) []string {
	var out []string
	for _, item := range strings.Split(o.String(name), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
