package triggers

import (
	"context"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// The dispatcher is where the domain's update meets the SDK's: this file
// converts between them, both ways.

// toSDK is the update instance in is handed for dl: the labels it may see
// (every one for a trigger that deploys; tidewatch.* and those its LABELS
// option shares otherwise).
func toSDK(dl store.Delivery, in *Instance) sdk.Update {
	u := dl.Update
	labels := u.Labels
	if !in.Deploys {
		labels = in.Policy.SharedLabels(u.Labels)
	}
	return sdk.Update{
		Key: dl.Key, Event: string(dl.Event), Host: u.Host, Container: u.DisplayName, ContainerName: u.ContainerName,
		ContainerID: u.ContainerID, Image: u.Image, Current: u.Current, CurrentDigest: u.CurrentDigest,
		Candidate: u.Candidate, CandidateDigest: u.CandidateDigest, Kind: string(u.Kind), Link: u.Link,
		DetectedAt: u.FirstSeen, Labels: labels, Detail: dl.EventDetail, Principal: dl.Principal,
		Declared: toSDKDeclared(dl.Declared),
	}
}

// toSDKDeclared is the SDK's form of a declared deploy; nil for nil.
func toSDKDeclared(d *core.Declared) *sdk.Declared {
	if d == nil {
		return nil
	}
	out := &sdk.Declared{Source: d.Source, Commit: d.Commit, Project: d.Project, WorkingDir: d.WorkingDir,
		Files: d.Files, Service: d.Service}
	for _, f := range d.PreviousFiles {
		out.Previous = append(out.Previous, sdk.FileChange{Path: f.Path, Backup: f.Backup})
	}
	return out
}

// fromSDKRollout is the domain's form of a trigger's rollout report.
func fromSDKRollout(r *sdk.Rollout) *core.Rollout {
	if r == nil {
		return nil
	}
	out := &core.Rollout{Outcome: core.Outcome(r.Outcome), Method: r.Method, Target: r.Target, From: r.From, To: r.To,
		Container: r.Container, FailedStep: r.FailedStep, Reason: r.Reason, Logs: r.Logs, Diff: r.Diff, Plan: r.Plan}
	for _, s := range r.Steps {
		out.Steps = append(out.Steps, core.RolloutStep{Name: s.Name, At: s.At, Duration: s.Duration, Error: s.Error, Note: s.Note})
	}
	for _, f := range r.Files {
		out.Files = append(out.Files, core.FileChange{Path: f.Path, Backup: f.Backup})
	}
	return out
}

// eventOf is the event a result caused: the trigger's Event when it names
// a rollout's outcome, else what its Rollout's outcome causes. A
// notification causes none; an event a notifying trigger claims is ignored.
func (d *Dispatcher) eventOf(in *Instance, r sdk.Result, rollout *core.Rollout) core.Event {
	if r.Event != "" {
		e, err := core.ParseEvent(r.Event)
		if err == nil && e.Status() != "" && in.Deploys {
			return e
		}
		d.log.Warn("a trigger's result names an event it may not cause; ignored", "trigger", in.Name, "event", r.Event, "deploys", in.Deploys)
	}
	if rollout != nil && in.Deploys {
		return rollout.Outcome.Event()
	}
	return ""
}

// registryAuth is how a trigger that deploys pulls image: the credentials
// detection reads its registry with; nil for anonymous (or when they cannot
// be read: the pull then says what is wrong).
func (d *Dispatcher) registryAuth(ctx context.Context, image string) *sdk.RegistryAuth {
	if d.creds == nil || image == "" { // "": a declared deploy, whose image the trigger reads from its files
		return nil
	}
	a, err := d.creds.Credentials(ctx, image)
	if err != nil {
		d.log.Warn("reading the registry credentials for a rollout; it pulls without them", "image", image, "error", err)
		return nil
	}
	if a.Anonymous() {
		return nil
	}
	return &sdk.RegistryAuth{Server: a.Server, Username: a.Username, Password: a.Password.Reveal(),
		IdentityToken: a.IdentityToken.Reveal(), RegistryToken: a.RegistryToken.Reveal()}
}
