package compose

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Outcomes of a rollout, in Report.Outcome.
const (
	// OutcomeApplied: the service runs the new image and passed its checks.
	OutcomeApplied = "applied"
	// OutcomeAlreadyApplied: the service already ran the new image and the
	// file already named it (the same delivery fired again); nothing was done.
	OutcomeAlreadyApplied = "already-applied"
	// OutcomeRolledBack: a step failed and what ran before was put back.
	OutcomeRolledBack = "rolled-back"
	// OutcomeFailed: a step failed and nothing had changed (a pull that
	// failed), or the rollback failed too.
	OutcomeFailed = "failed"
	// OutcomeRefused: the update cannot be rolled out (a built service, no
	// image in the file, tidewatch's own container); nothing was touched.
	OutcomeRefused = "refused"
	// OutcomeDryRun: DRYRUN is set; Diff and Plan say what would be done.
	OutcomeDryRun = "dry-run"
)

// Step names, in the order a rollout takes them.
const (
	StepInspect  = "inspect"  // find the container and refuse tidewatch's own
	StepLocate   = "locate"   // find the compose file and plan the rewrite
	StepLock     = "lock"     // wait for the project's other rollouts
	StepPull     = "pull"     // pull the new image
	StepWrite    = "write"    // rewrite the file, keeping a backup
	StepRecreate = "recreate" // recreate the service
	StepHealth   = "health"   // wait for running and healthy (or stable)
	StepSmoke    = "smoke"    // SMOKE_HTTP and SMOKE_TCP
	StepRollback = "rollback" // restore the file and the previous container
	StepCleanup  = "cleanup"  // remove the previous container (engine) and, with PRUNE, image
)

// Step is one step of a rollout, as the report holds it.
type Step struct {
	// Name is one of the Step* names.
	Name string `json:"step"`
	// At is when it began.
	At time.Time `json:"at"`
	// DurationMS is how long it took, in milliseconds.
	DurationMS int64 `json:"duration_ms"`
	// OK is set when it succeeded.
	OK bool `json:"ok"`
	// Error says why it failed.
	Error string `json:"error,omitempty"`
	// Note says what it did, when worth saying.
	Note string `json:"note,omitempty"`
}

// Report is what a rollout did: the Detail of its result, as JSON.
type Report struct {
	// Outcome is one of the Outcome* values.
	Outcome string `json:"outcome"`
	// Recreate is how the service was (or would be) recreated: cli or engine.
	Recreate string `json:"recreate,omitempty"`
	// Project and Service name the compose service.
	Project string `json:"project,omitempty"`
	Service string `json:"service,omitempty"`
	// File is the file rewritten (the compose file, or the env file); Backup
	// the copy of its previous bytes.
	File   string `json:"file,omitempty"`
	Backup string `json:"backup,omitempty"`
	// From and To are the image references before and after.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Container is the ID of the container that runs the service at the end.
	Container string `json:"container,omitempty"`
	// Steps are the steps taken, in order.
	Steps []Step `json:"steps"`
	// FailedStep and Reason say what failed and why.
	FailedStep string `json:"failed_step,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Logs are the failed container's last log lines.
	Logs []string `json:"logs,omitempty"`
	// Diff is the file's change; Plan the steps a dry run would take.
	Diff string   `json:"diff,omitempty"`
	Plan []string `json:"plan,omitempty"`
}

// JSON returns the result's Detail: a one-line summary for people (the
// history, the UI), then the report as JSON on the next line, for programs.
func (r *Report) JSON() string {
	b, err := json.Marshal(r)
	if err != nil { // only plain strings and numbers: cannot happen
		b = []byte(`{"outcome":"` + r.Outcome + `"}`)
	}
	return r.Summary() + "\n" + string(b)
}

// Summary says in one line what the rollout did: "applied 1.0.0 → 1.1.0
// (cli, 4.1s)", "rolled back at health: …".
func (r *Report) Summary() string {
	var total int64
	for _, s := range r.Steps {
		total += s.DurationMS
	}
	took := fmt.Sprintf("%.1fs", float64(total)/1000)
	from, to := tagOf(r.From), tagOf(r.To)
	switch r.Outcome {
	case OutcomeApplied, OutcomeAlreadyApplied, OutcomeDryRun:
		how := r.Recreate
		if how != "" {
			how += ", "
		}
		return fmt.Sprintf("%s %s → %s (%s%s)", strings.ReplaceAll(r.Outcome, "-", " "), from, to, how, took)
	case OutcomeRolledBack, OutcomeFailed:
		return fmt.Sprintf("%s at %s: %s", strings.ReplaceAll(r.Outcome, "-", " "), r.FailedStep, r.Reason)
	default:
		return r.Outcome + ": " + r.Reason
	}
}

// tagOf returns the tag (or digest) of an image reference, for summaries.
func tagOf(ref string) string {
	if i := strings.LastIndexAny(ref, ":@"); i >= 0 && !strings.Contains(ref[i:], "/") {
		return ref[i+1:]
	}
	return ref
}

// ParseReport reads a result's Detail back into a Report (the JSON after
// the summary line).
func ParseReport(detail string) (*Report, error) {
	if i := strings.IndexByte(detail, '{'); i > 0 {
		detail = detail[i:]
	}
	var r Report
	if err := json.Unmarshal([]byte(detail), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// step runs fn as the step name, recording it in the report.
func (r *Report) step(name string, fn func() (note string, err error)) error {
	s := Step{Name: name, At: time.Now().UTC()}
	note, err := fn()
	s.DurationMS = time.Since(s.At).Milliseconds()
	s.OK, s.Note = err == nil, note
	if err != nil {
		s.Error = err.Error()
		if r.FailedStep == "" {
			r.FailedStep, r.Reason = name, err.Error()
		}
	}
	r.Steps = append(r.Steps, s)
	return err
}
