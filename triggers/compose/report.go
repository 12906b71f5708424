package compose

import (
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Outcomes of a rollout, in Report.Outcome: the SDK's.
const (
	OutcomeApplied        = sdk.OutcomeApplied
	OutcomeAlreadyApplied = sdk.OutcomeAlreadyApplied
	OutcomeRolledBack     = sdk.OutcomeRolledBack
	OutcomeFailed         = sdk.OutcomeFailed
	OutcomeRefused        = sdk.OutcomeRefused
	OutcomeDryRun         = sdk.OutcomeDryRun
)

// Step names, in the order a rollout takes them.
const (
	StepInspect  = "inspect"  // find the container and refuse tidewatch's own
	StepLocate   = "locate"   // find the compose file and plan the rewrite
	StepLock     = "lock"     // wait for the project's other rollouts
	StepResume   = "resume"   // settle a rollout of the project left unfinished (by a crash, a kill)
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

// Report is what a rollout did, as it goes: the Rollout of its result.
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

// Rollout is the report as the SDK carries it back to tidewatch.
func (r *Report) Rollout() *sdk.Rollout {
	out := &sdk.Rollout{
		Outcome: r.Outcome, From: r.From, To: r.To, Container: r.Container,
		FailedStep: r.FailedStep, Reason: r.Reason, Logs: r.Logs, Diff: r.Diff, Plan: r.Plan,
	}
	if r.Recreate != "" {
		out.Method = "compose " + r.Recreate
	}
	if r.Project != "" || r.Service != "" {
		out.Target = r.Project + "/" + r.Service
	}
	for _, s := range r.Steps {
		out.Steps = append(out.Steps, sdk.RolloutStep{Name: s.Name, At: s.At, Duration: time.Duration(s.DurationMS) * time.Millisecond, Error: s.Error, Note: s.Note})
	}
	if r.File != "" {
		out.Files = []sdk.FileChange{{Path: r.File, Backup: r.Backup}}
	}
	return out
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
