package sdk

import (
	"errors"
	"fmt"
	"time"

	"github.com/tidewatch/tidewatch/plugins/internal/proto"
)

// The conversions between the SDK's types and their wire form. They are
// the protocol's business only: nothing outside this package sees a proto type.

func describeToWire(d Description) *proto.DescribeResponse {
	resp := &proto.DescribeResponse{Type: d.Type, Description: d.Description, Deploys: d.Deploys}
	for _, o := range d.Options {
		resp.Options = append(resp.Options, &proto.Option{Name: o.Name, Description: o.Description, Required: o.Required, Secret: o.Secret, Default: o.Default})
	}
	return resp
}

func describeFromWire(resp *proto.DescribeResponse) Description {
	d := Description{Type: resp.GetType(), Description: resp.GetDescription(), Deploys: resp.GetDeploys()}
	for _, o := range resp.GetOptions() {
		d.Options = append(d.Options, Option{Name: o.GetName(), Description: o.GetDescription(), Required: o.GetRequired(), Secret: o.GetSecret(), Default: o.GetDefault()})
	}
	return d
}

func updateFromWire(u *proto.Update) Update {
	return Update{
		Key: u.GetKey(), Event: u.GetEvent(), Host: u.GetHost(), Container: u.GetContainer(), ContainerName: u.GetContainerName(),
		ContainerID: u.GetContainerId(), Image: u.GetImage(), Current: u.GetCurrent(), CurrentDigest: u.GetCurrentDigest(),
		Candidate: u.GetCandidate(), CandidateDigest: u.GetCandidateDigest(), Kind: u.GetKind(), Link: u.GetLink(),
		DetectedAt: timeFromWire(u.GetDetectedAtUnixNano()), Labels: u.GetLabels(), Detail: u.GetDetail(), Principal: u.GetPrincipal(),
		RegistryAuth: authFromWire(u.GetRegistryAuth()), Declared: declaredFromWire(u.GetDeclared()),
	}
}

func declaredFromWire(d *proto.Declared) *Declared {
	if d == nil {
		return nil
	}
	out := &Declared{Source: d.GetSource(), Commit: d.GetCommit(), Project: d.GetProject(), WorkingDir: d.GetWorkingDir(),
		Files: d.GetFiles(), Service: d.GetService()}
	for _, f := range d.GetPrevious() {
		out.Previous = append(out.Previous, FileChange{Path: f.GetPath(), Backup: f.GetBackup()})
	}
	return out
}

func declaredToWire(d *Declared) *proto.Declared {
	if d == nil {
		return nil
	}
	out := &proto.Declared{Source: d.Source, Commit: d.Commit, Project: d.Project, WorkingDir: d.WorkingDir, Files: d.Files, Service: d.Service}
	for _, f := range d.Previous {
		out.Previous = append(out.Previous, &proto.FileChange{Path: f.Path, Backup: f.Backup})
	}
	return out
}

func authFromWire(a *proto.RegistryAuth) *RegistryAuth {
	if a == nil {
		return nil
	}
	return &RegistryAuth{Server: a.GetServer(), Username: a.GetUsername(), Password: a.GetPassword(),
		IdentityToken: a.GetIdentityToken(), RegistryToken: a.GetRegistryToken()}
}

func authToWire(a *RegistryAuth) *proto.RegistryAuth {
	if a == nil {
		return nil
	}
	return &proto.RegistryAuth{Server: a.Server, Username: a.Username, Password: a.Password,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
}

func updateToWire(u Update) *proto.Update {
	return &proto.Update{
		Key: u.Key, Event: u.Event, Host: u.Host, Container: u.Container, ContainerName: u.ContainerName, ContainerId: u.ContainerID,
		Image: u.Image, Current: u.Current, CurrentDigest: u.CurrentDigest, Candidate: u.Candidate,
		CandidateDigest: u.CandidateDigest, Kind: u.Kind, Link: u.Link, DetectedAtUnixNano: timeToWire(u.DetectedAt),
		Labels: u.Labels, Detail: u.Detail, Principal: u.Principal, RegistryAuth: authToWire(u.RegistryAuth),
		Declared: declaredToWire(u.Declared),
	}
}

func resultToWire(key string, r Result) *proto.Result {
	pr := &proto.Result{Key: key, Status: proto.Result_STATUS_OK, Detail: r.Detail, Event: r.Event, Rollout: rolloutToWire(r.Rollout)}
	for _, s := range r.Services {
		pr.Services = append(pr.Services, &proto.ServiceOutcome{Service: s.Service, Failed: s.Failed})
	}
	if r.Err != nil {
		pr.Message = r.Err.Error()
		pr.Status = proto.Result_STATUS_RETRY
		if IsPermanent(r.Err) {
			pr.Status = proto.Result_STATUS_FAIL
		}
	}
	return pr
}

func resultFromWire(r *proto.Result) Result {
	out := Result{Detail: r.GetDetail(), Event: r.GetEvent(), Rollout: rolloutFromWire(r.GetRollout())}
	for _, s := range r.GetServices() {
		out.Services = append(out.Services, ServiceOutcome{Service: s.GetService(), Failed: s.GetFailed()})
	}
	msg := r.GetMessage()
	if msg == "" {
		msg = "failed (the plugin gave no reason)"
	}
	switch r.GetStatus() {
	case proto.Result_STATUS_OK:
	case proto.Result_STATUS_RETRY:
		out.Err = errors.New(msg)
	case proto.Result_STATUS_FAIL:
		out.Err = Permanent(errors.New(msg))
	default:
		out.Err = fmt.Errorf("the plugin returned a result without a status: %s", msg)
	}
	return out
}

func rolloutToWire(r *Rollout) *proto.Rollout {
	if r == nil {
		return nil
	}
	w := &proto.Rollout{Outcome: r.Outcome, Method: r.Method, Target: r.Target, From: r.From, To: r.To, Container: r.Container,
		FailedStep: r.FailedStep, Reason: r.Reason, Logs: r.Logs, Diff: r.Diff, Plan: r.Plan}
	for _, s := range r.Steps {
		w.Steps = append(w.Steps, &proto.RolloutStep{Name: s.Name, AtUnixNano: timeToWire(s.At), DurationNanos: int64(s.Duration), Error: s.Error, Note: s.Note})
	}
	for _, f := range r.Files {
		w.Files = append(w.Files, &proto.FileChange{Path: f.Path, Backup: f.Backup})
	}
	return w
}

func rolloutFromWire(w *proto.Rollout) *Rollout {
	if w == nil {
		return nil
	}
	r := &Rollout{Outcome: w.GetOutcome(), Method: w.GetMethod(), Target: w.GetTarget(), From: w.GetFrom(), To: w.GetTo(),
		Container: w.GetContainer(), FailedStep: w.GetFailedStep(), Reason: w.GetReason(), Logs: w.GetLogs(), Diff: w.GetDiff(), Plan: w.GetPlan()}
	for _, s := range w.GetSteps() {
		r.Steps = append(r.Steps, RolloutStep{Name: s.GetName(), At: timeFromWire(s.GetAtUnixNano()), Duration: time.Duration(s.GetDurationNanos()), Error: s.GetError(), Note: s.GetNote()})
	}
	for _, f := range w.GetFiles() {
		r.Files = append(r.Files, FileChange{Path: f.GetPath(), Backup: f.GetBackup()})
	}
	return r
}

func timeToWire(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func timeFromWire(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
