package sdk

import "time"

// Outcomes of a rollout, in Rollout.Outcome.
const (
	// OutcomeApplied: the target runs the new image and passed its checks.
	OutcomeApplied = "applied"
	// OutcomeAlreadyApplied: the target already ran the new image (the same
	// delivery fired again); nothing was done.
	OutcomeAlreadyApplied = "already-applied"
	// OutcomeRolledBack: a step failed and what ran before was put back,
	// running and healthy.
	OutcomeRolledBack = "rolled-back"
	// OutcomeFailed: a step failed and nothing had changed, or the rollback
	// failed too (say so in Reason: a person must look).
	OutcomeFailed = "failed"
	// OutcomeRefused: the trigger cannot roll this update out (another host,
	// a built image, no file names it); nothing was touched.
	OutcomeRefused = "refused"
	// OutcomeDryRun: the trigger only says what it would do (Diff, Plan).
	OutcomeDryRun = "dry-run"
)

// Rollout is what a deploying trigger did with one update, returned in its
// Result. tidewatch keeps it with the delivery, shows it in the API and the
// UI, writes its steps and logs into the history, and, from Outcome,
// records the update applied, rolled back or failed.
type Rollout struct {
	// Outcome is one of the Outcome* values.
	Outcome string
	// Method says how the target was recreated ("compose cli", "engine", "swarm").
	Method string
	// Target names what was rolled out: "project/service", a container's name.
	Target string
	// From and To are the image references before and after.
	From, To string
	// Container is the ID of what runs the target at the end.
	Container string
	// Steps are the steps taken, in order.
	Steps []RolloutStep
	// FailedStep and Reason say what failed and why (or why it was refused).
	FailedStep, Reason string
	// Files are the files the rollout changed, each with its backup.
	Files []FileChange
	// Logs are the failed container's last log lines.
	Logs []string
	// Diff is the files' change; Plan the steps a dry run would take.
	Diff string
	Plan []string
}

// RolloutStep is one step of a rollout.
type RolloutStep struct {
	// Name says what the step does: "pull", "recreate", "health", …
	Name string
	// At is when it began; Duration how long it took.
	At       time.Time
	Duration time.Duration
	// Error says why it failed; "" when it succeeded.
	Error string
	// Note says what it did, when worth saying.
	Note string
}

// FileChange is a file a rollout rewrote.
type FileChange struct {
	// Path is the file; Backup the copy of its bytes before the rollout.
	Path, Backup string
}

// Step runs fn as the step name and appends it to r: its start, duration,
// note and error. A failed step is also r's FailedStep and Reason, unless an
// earlier one failed. It returns fn's error.
func (r *Rollout) Step(name string, fn func() (note string, err error)) error {
	s := RolloutStep{Name: name, At: time.Now().UTC()}
	note, err := fn()
	s.Duration, s.Note = time.Since(s.At), note
	if err != nil {
		s.Error = err.Error()
		if r.FailedStep == "" {
			r.FailedStep, r.Reason = name, err.Error()
		}
	}
	r.Steps = append(r.Steps, s)
	return err
}
