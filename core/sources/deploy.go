package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
)

// Outbox enqueues the deploys of declared files and waits for their
// outcomes (*triggers.Dispatcher).
type Outbox interface {
	// Declare enqueues the deploy of one declared service to a deploying
	// trigger, or returns the delivery enqueued before with the same run.
	Declare(ctx context.Context, trigger string, nd store.NewDeclared) (store.Delivery, error)
	// Await waits for a delivery's final outcome.
	Await(ctx context.Context, id int64) (store.Delivery, error)
	// UnfinishedDeclared returns the deliveries of declared deploys to
	// trigger that principal asked for and that have no final outcome yet.
	UnfinishedDeclared(ctx context.Context, trigger, principal string) ([]int64, error)
}

// OutboxDeployer deploys the commits of git sources through the outbox:
// per compose project the commit changed, one delivery per service to bring
// up (and, with RemoveOrphans, to bring down), to the source's deploying
// trigger, one at a time, each awaited. The outbox makes each durable: a
// delivery in flight when tidewatch stops is resumed at the next start,
// where the next sync of the same commit finds it (by its run) rather than
// enqueuing it again. A failure stops the deploy: the trigger rolled its
// service back (the previous files and container); the services deployed
// before it in the same commit are brought back to the previous files too,
// each by a delivery of its own. Every outcome is the outbox's: the
// history, the update-applied / update-rolled-back / update-failed events
// the notifying triggers hear, the rollout observers.
type OutboxDeployer struct {
	out      Outbox
	triggers map[string]string // source → deploying trigger instance
	log      *slog.Logger
}

var (
	_ Deployer = (*OutboxDeployer)(nil)
	_ Settler  = (*OutboxDeployer)(nil)
)

// NewOutboxDeployer returns a deployer through out; triggers names each
// source's deploying trigger ("compose.prod").
func NewOutboxDeployer(out Outbox, triggers map[string]string, log *slog.Logger) *OutboxDeployer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &OutboxDeployer{out: out, triggers: triggers, log: log.With("component", "git")}
}

// Settle waits for the deliveries to the source's trigger that a deploy of
// source cut short by a stop left unfinished (the dispatcher resumes them),
// so that a new deploy of the source does not touch its clone under them.
// (Those of a trigger no longer configured are never fired: not waited for.)
func (o *OutboxDeployer) Settle(ctx context.Context, source string) error {
	trigger, ok := o.triggers[source]
	if !ok {
		return nil
	}
	ids, err := o.out.UnfinishedDeclared(ctx, trigger, "git:"+source)
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		o.log.Info("waiting for the deploy left unfinished by the last stop", "source", source, "deliveries", len(ids))
	}
	for _, id := range ids {
		if _, err := o.out.Await(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// ErrRefused wraps a service the trigger's policy refused: it is left as
// it runs, and the rest of the commit is deployed.
var ErrRefused = errors.New("refused by the trigger's policy")

// Deploy rolls the commit's changed services out, then (dep.RemoveOrphans)
// brings down those it removed.
func (o *OutboxDeployer) Deploy(ctx context.Context, dep Deploy) error {
	trigger, ok := o.triggers[dep.Source]
	if !ok {
		return fmt.Errorf("git source %s has no trigger that deploys", dep.Source)
	}
	projects, err := dep.Projects()
	if err != nil {
		return fmt.Errorf("reading the compose projects of commit %s: %w", short(dep.Commit), err)
	}
	var done []core.Declared // deployed so far, to bring back on a failure
	step := func(p Project, svc string) error {
		dec := declared(dep, p, svc)
		err := o.one(ctx, trigger, dep, p, dec, "")
		switch {
		case errors.Is(err, ErrRefused):
			o.log.Warn("a declared service is refused by the trigger's policy; it is left as it runs", "source", dep.Source,
				"project", p.Name, "service", svc, "error", err)
			return nil
		case err != nil:
			err = fmt.Errorf("%s: %w", dec.Target(), err)
			if len(done) > 0 && ctx.Err() == nil {
				err = errors.Join(err, o.revert(ctx, trigger, dep, done))
			}
			return err
		}
		done = append(done, dec)
		return nil
	}
	for _, p := range projects {
		for _, svc := range p.Up {
			if err := step(p, svc); err != nil {
				return err
			}
		}
	}
	for _, p := range projects {
		if len(p.Removed) == 0 {
			continue
		}
		if !dep.RemoveOrphans {
			o.log.Warn("services removed from git are left running (REMOVE_ORPHANS=false)", "source", dep.Source, "project", p.Name, "services", p.Removed)
			continue
		}
		for _, svc := range p.Removed {
			if err := step(p, svc); err != nil {
				return err
			}
		}
	}
	return nil
}

// declared is the deploy of service svc of p.
func declared(dep Deploy, p Project, svc string) core.Declared {
	dec := core.Declared{Source: dep.Source, Commit: dep.Commit, Previous: dep.Previous, Project: p.Name, WorkingDir: p.Dir,
		Files: p.Files, Service: svc}
	for _, f := range p.Previous {
		dec.PreviousFiles = append(dec.PreviousFiles, core.FileChange{Path: f.Path, Backup: f.Backup})
	}
	return dec
}

// one enqueues dec to trigger and waits for its outcome; suffix makes a
// revert's delivery distinct from the deploy's.
func (o *OutboxDeployer) one(ctx context.Context, trigger string, dep Deploy, p Project, dec core.Declared, suffix string) error {
	image, labels := serviceOf(p.Files, dec.Service)
	if image == "" && labels == nil {
		// Brought down: the service as the files declared it before.
		var before []string
		for _, f := range p.Previous {
			if f.Backup != "" {
				before = append(before, f.Backup)
			}
		}
		image, labels = serviceOf(before, dec.Service)
	}
	if labels == nil {
		labels = map[string]string{}
	}
	labels[labelProject], labels[labelService], labels[labelWorkingDir] = p.Name, dec.Service, p.Dir
	nd := store.NewDeclared{Declared: dec, Run: "git:" + dep.Source + "@" + dec.Commit + "/" + dec.Target() + suffix,
		From: short(dec.Previous), To: short(dec.Commit), Image: image, Labels: labels, Principal: "git:" + dep.Source}
	dl, err := o.out.Declare(ctx, trigger, nd)
	if err != nil {
		var refusal *core.RefusalError
		if errors.As(err, &refusal) {
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
		return err
	}
	if dl, err = o.out.Await(ctx, dl.ID); err != nil {
		return err
	}
	if dl.Status == store.DeliveryFailed {
		return errors.New(dl.LastError)
	}
	return nil
}

// revert brings the services deployed before a failure back to the files of
// the previous commit: those files put back (the failed service's rollback
// put back its project's), then each service brought up from them again.
func (o *OutboxDeployer) revert(ctx context.Context, trigger string, dep Deploy, done []core.Declared) error {
	var es []error
	for _, dec := range slices.Backward(done) {
		for _, p := range dec.PreviousFiles {
			if p.Backup == "" {
				continue
			}
			if b, err := os.ReadFile(p.Backup); err == nil {
				if err := os.WriteFile(p.Path, b, 0o644); err != nil {
					es = append(es, err)
				}
			}
		}
		if dep.Previous == "" || dep.Backups == "" {
			es = append(es, fmt.Errorf("%s was deployed and is left running: what ran before it is unknown", dec.Target()))
			continue
		}
		back := dec
		back.Commit, back.Previous, back.PreviousFiles = dep.Previous, dep.Commit, nil
		p := Project{Name: dec.Project, Dir: dec.WorkingDir, Files: previousFiles(dec)}
		back.Files = p.Files
		if err := o.one(ctx, trigger, dep, p, back, "/revert"); err != nil && !errors.Is(err, ErrRefused) {
			es = append(es, fmt.Errorf("bringing %s back to commit %s: %w", dec.Target(), short(dep.Previous), err))
		}
	}
	return errors.Join(es...)
}

// previousFiles are the compose files of dec's project as the previous
// commit had them (put back), in compose order.
func previousFiles(dec core.Declared) []string {
	names, err := composeFiles(dec.WorkingDir)
	if err != nil || len(names) == 0 {
		return dec.Files
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = dec.WorkingDir + string(os.PathSeparator) + n
	}
	return out
}
