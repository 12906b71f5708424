package swarm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/composefile"
)

// A service deployed from a stack file (`docker stack deploy -c file
// stack`) is put back to the file's image by the next deploy unless the
// file says the new one too. The trigger rewrites the image there with the
// byte-precise file engine of the compose trigger, once the engine has
// completed the update; a rolled-back update leaves the file as it is.

// errBadStack is why a stack name is not put in a path.
var errBadStack = errors.New("the stack's name (label " + docker.LabelStack + ") is not a stack name: letters, digits, _ and - only")

// stackPlan is the rewrite of a service's stack file, or why there is none.
type stackPlan struct {
	stack, service, file string
	change               *composefile.Change // nil: nothing to write (see skip)
	skip                 string              // why the file is not rewritten; "" when it is, or names the image already
}

// planStack finds the stack file of the service and plans the rewrite. A
// stack file that cannot be rewritten does not stop the update: the report
// says so.
func (r *run) planStack() (string, error) {
	stack := r.svc.Labels[docker.LabelStack]
	p := &stackPlan{stack: stack, service: strings.TrimPrefix(r.svc.Name, stack+"_")}
	r.stack = p
	file, err := r.s.cfg.stackFile(stack)
	switch {
	case err != nil:
		p.skip = fmt.Sprintf("not rewritten: %v", err)
		return "", errors.New(p.skip)
	case file == "":
		p.skip = fmt.Sprintf("not rewritten: no %s names the file of stack %s, so the next docker stack deploy of it will put %s back", OptStackFile, stack, r.svc.Image)
		return p.skip, nil
	case p.service == r.svc.Name:
		p.skip = fmt.Sprintf("not rewritten: service %s of stack %s is not named %s_<service>", r.svc.Name, stack, stack)
		return "", errors.New(p.skip)
	}
	p.file = file
	t, err := composefile.Locate(nil, composefile.LocateOptions{File: file, Service: p.service})
	if err != nil {
		p.skip = fmt.Sprintf("not rewritten: locating service %s in %s: %v", p.service, file, err)
		return "", errors.New(p.skip)
	}
	if t.Var != nil {
		p.skip = fmt.Sprintf("not rewritten: the tag in %s is the variable %s, which docker stack deploy takes from its environment, not from a file: set %s=%s where you deploy",
			file, t.Var.Name, t.Var.Name, r.u.Candidate)
		return "", errors.New(p.skip)
	}
	if r.u.Image != "" {
		if err := t.CheckRepository(r.u.Image); err != nil {
			p.skip = fmt.Sprintf("not rewritten: %s: %v", file, err)
			return "", errors.New(p.skip)
		}
	}
	newDigest := ""
	if t.Digest != "" {
		_, newDigest = docker.SplitPinned(r.pinned)
	}
	c, err := t.Plan(r.u.Candidate, newDigest)
	switch {
	case errors.Is(err, composefile.ErrNoChange):
		return fmt.Sprintf("%s already names %s", file, t.Image), nil
	case err != nil:
		p.skip = fmt.Sprintf("not rewritten: %v", err)
		return "", errors.New(p.skip)
	}
	p.change = c
	return fmt.Sprintf("%s: %s → %s", c.Path, c.OldImage, c.NewImage), nil
}

// keepStackTrue writes the planned rewrite, once the service runs the new
// image, and says in the report when the file is not rewritten.
func (r *run) keepStackTrue() {
	p := r.stack
	if p == nil {
		return
	}
	if p.skip != "" {
		r.details = append(r.details, "stack file "+p.skip)
		return
	}
	if p.change == nil {
		return
	}
	_ = r.rep.Step(StepStackFile, func() (string, error) {
		b, err := p.change.Apply(r.s.cfg.Backups)
		if err != nil {
			r.details = append(r.details, fmt.Sprintf("stack file %s not rewritten: %v; the next docker stack deploy of %s will put %s back", p.file, err, p.stack, r.svc.Image))
			return "", err
		}
		r.rep.Files = append(r.rep.Files, sdk.FileChange{Path: b.File, Backup: b.Path})
		return fmt.Sprintf("%s: %s → %s (backup %s)", b.File, p.change.OldImage, p.change.NewImage, b.Path), nil
	})
	// The service ran the new image before the file said so: the step's
	// failure does not undo the update.
	if r.rep.FailedStep == StepStackFile {
		r.rep.FailedStep, r.rep.Reason = "", ""
	}
}

// planned says what a rollout would do with the stack file, for dry runs.
func (p *stackPlan) planned() string {
	switch {
	case p.skip != "":
		return "stack file of " + p.stack + " " + p.skip
	case p.change == nil:
		return fmt.Sprintf("leave %s: it already names the new image", p.file)
	}
	return fmt.Sprintf("once the update completes: rewrite %s (%s → %s), keeping a backup", p.change.Path, p.change.OldImage, p.change.NewImage)
}
