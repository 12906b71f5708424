package core

import (
	"fmt"
	"strings"
	"time"
)

// Outcome is how a rollout ended.
type Outcome string

// The outcomes of a rollout.
const (
	// OutcomeApplied: the service runs the new image and passed its checks.
	OutcomeApplied Outcome = "applied"
	// OutcomeAlreadyApplied: the service already ran the new image (the same
	// delivery fired again); nothing was done.
	OutcomeAlreadyApplied Outcome = "already-applied"
	// OutcomeRolledBack: a step failed and what ran before was put back,
	// running and healthy.
	OutcomeRolledBack Outcome = "rolled-back"
	// OutcomeFailed: a step failed and nothing had changed (a pull that
	// failed), or the rollback failed too.
	OutcomeFailed Outcome = "failed"
	// OutcomeRefused: the update cannot be rolled out by this trigger (a
	// built service, no image in the file, another host); nothing was touched.
	OutcomeRefused Outcome = "refused"
	// OutcomeDryRun: the trigger only says what it would do (Diff, Plan).
	OutcomeDryRun Outcome = "dry-run"
)

// Event is the event a rollout that ended so causes: update-applied,
// update-rolled-back or update-failed; "" for an outcome that changes
// nothing (refused, dry run).
func (o Outcome) Event() Event {
	switch o {
	case OutcomeApplied, OutcomeAlreadyApplied:
		return EventUpdateApplied
	case OutcomeRolledBack:
		return EventUpdateRolledBack
	case OutcomeFailed:
		return EventUpdateFailed
	}
	return ""
}

// Rollout is what a deploying trigger did with one update: the typed report
// that comes back through the plugin protocol and is kept with the delivery.
type Rollout struct {
	// Outcome is how it ended.
	Outcome Outcome `json:"outcome"`
	// Method is how the target was recreated ("compose cli", "engine", "swarm").
	Method string `json:"method,omitempty"`
	// Target names what was rolled out: "project/service", a container, a service.
	Target string `json:"target,omitempty"`
	// From and To are the image references before and after.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Container is the ID of what runs the target at the end.
	Container string `json:"container,omitempty"`
	// Steps are the steps taken, in order.
	Steps []RolloutStep `json:"steps,omitempty"`
	// FailedStep and Reason say what failed and why (or why it was refused).
	FailedStep string `json:"failed_step,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Files are the files the rollout changed, each with its backup.
	Files []FileChange `json:"files,omitempty"`
	// Logs are the failed container's last log lines.
	Logs []string `json:"logs,omitempty"`
	// Diff is the files' change; Plan the steps a dry run would take.
	Diff string   `json:"diff,omitempty"`
	Plan []string `json:"plan,omitempty"`
}

// RolloutStep is one step of a rollout.
type RolloutStep struct {
	// Name says what the step does: "pull", "recreate", "health", …
	Name string `json:"name"`
	// At is when it began.
	At time.Time `json:"at"`
	// Duration is how long it took.
	Duration time.Duration `json:"duration_ns"`
	// Error says why it failed; "" when it succeeded.
	Error string `json:"error,omitempty"`
	// Note says what it did, when worth saying.
	Note string `json:"note,omitempty"`
}

// FileChange is a file a rollout rewrote.
type FileChange struct {
	// Path is the file; Backup the copy of its bytes before the rollout.
	Path   string `json:"path"`
	Backup string `json:"backup,omitempty"`
}

// Summary says in one line what the rollout did: "applied 1.0.0 → 1.1.0
// (compose cli, 4.1s)", "rolled back at health: …".
func (r Rollout) Summary() string {
	var total time.Duration
	for _, s := range r.Steps {
		total += s.Duration
	}
	took := fmt.Sprintf("%.1fs", total.Seconds())
	from, to := tagOf(r.From), tagOf(r.To)
	switch r.Outcome {
	case OutcomeApplied, OutcomeAlreadyApplied, OutcomeDryRun:
		how := r.Method
		if how != "" {
			how += ", "
		}
		return fmt.Sprintf("%s %s → %s (%s%s)", strings.ReplaceAll(string(r.Outcome), "-", " "), from, to, how, took)
	case OutcomeRolledBack, OutcomeFailed:
		return fmt.Sprintf("%s at %s: %s", strings.ReplaceAll(string(r.Outcome), "-", " "), r.FailedStep, r.Reason)
	default:
		return string(r.Outcome) + ": " + r.Reason
	}
}

// Text is the rollout for the history: the summary, the steps with their
// durations, the files changed and, after a failure, the failed
// container's last log lines.
func (r Rollout) Text() string {
	var b strings.Builder
	b.WriteString(r.Summary())
	if len(r.Steps) > 0 {
		b.WriteString("\nsteps: ")
		for i, s := range r.Steps {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %dms", s.Name, s.Duration.Milliseconds())
			if s.Error != "" {
				b.WriteString(" (failed: " + s.Error + ")")
			}
		}
	}
	for _, f := range r.Files {
		b.WriteString("\nchanged " + f.Path)
		if f.Backup != "" {
			b.WriteString(" (backup " + f.Backup + ")")
		}
	}
	if len(r.Logs) > 0 {
		b.WriteString("\nlast log lines of the failed container:\n" + strings.Join(r.Logs, "\n"))
	}
	return b.String()
}

// tagOf returns the tag (or digest) of an image reference, for summaries.
func tagOf(ref string) string {
	if i := strings.LastIndexAny(ref, ":@"); i >= 0 && !strings.Contains(ref[i:], "/") {
		return ref[i+1:]
	}
	return ref
}

// GitSourceMarker is the file, in the git folder of tidewatch's own clone of
// a git source (TIDEWATCH_GIT_<name>_URL), that names the source. A
// deploying trigger finding a file to rewrite inside such a clone refuses:
// the source's repository says what runs there, and a rewrite would be
// undone by the next sync.
const GitSourceMarker = "tidewatch-source"
