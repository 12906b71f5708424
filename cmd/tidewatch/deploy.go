package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/policy"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/web"
)

// Compose's labels on the containers it runs, by which POST /api/deploy
// names a service.
const (
	labelComposeProject = "com.docker.compose.project"
	labelComposeService = "com.docker.compose.service"
)

// deployer is POST /api/deploy: push-based CD from CI. It adapts the API's
// request to the one path every way of applying an update takes: the
// service's update is opened for the requested tag (store.Request), then
// requested from a deploying trigger (triggers.Dispatcher.Request: its
// policy, the outbox, the history), and awaited.
type deployer struct{ d *daemon }

// Deploy rolls req's service to req.Tag on behalf of principal.
func (dp deployer) Deploy(ctx context.Context, req web.DeployRequest, principal string) (web.DeployResult, error) {
	d := dp.d
	if d.disp == nil {
		return web.DeployResult{}, fmt.Errorf("no trigger that deploys is configured: %w", core.ErrNotFound)
	}
	trig, err := dp.trigger(req.Trigger)
	if err != nil {
		return web.DeployResult{}, err
	}
	c, err := dp.service(ctx, req.Project, req.Service)
	if err != nil {
		return web.DeployResult{}, err
	}
	u, err := d.st.Request(ctx, c.Container.Host, c.Container.Name, req.Tag, policy.RequestKind(c.Current, req.Tag), principal)
	if err != nil {
		return web.DeployResult{}, err
	}
	dl, err := d.disp.Request(ctx, u.ID, trig.cfg.ID(), principal)
	if err != nil {
		return web.DeployResult{}, apiError(err)
	}
	// The rollout goes on in the outbox whatever happens to the request;
	// the answer waits for it as long as its deadline, plus a margin.
	wait, cancel := context.WithTimeout(ctx, trig.cfg.Policy.Deadline+30*time.Second)
	defer cancel()
	res := web.DeployResult{Project: req.Project, Service: req.Service, From: c.Current, To: req.Tag, Delivery: dl.ID}
	dl, err = d.disp.Await(wait, dl.ID)
	if err != nil {
		if ctx.Err() == nil && wait.Err() != nil {
			res.Result, res.Detail = "pending", "the rollout outlasted the request; follow delivery "+fmt.Sprint(dl.ID)
			return res, nil
		}
		return web.DeployResult{}, err
	}
	return deployResult(res, dl), nil
}

// trigger returns the deploying trigger named name, or the only one when name is "".
func (dp deployer) trigger(name string) (loadedTrigger, error) {
	var found []loadedTrigger
	for _, l := range dp.d.loaded {
		if !l.desc.Deploys {
			continue
		}
		if name == "" || l.cfg.ID() == name {
			found = append(found, l)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return loadedTrigger{}, &web.Error{Status: http.StatusBadRequest, Code: "bad_request", Field: "trigger",
			Message: "several triggers deploy: name one"}
	case name != "":
		return loadedTrigger{}, fmt.Errorf("trigger %q is not configured or does not deploy: %w", name, core.ErrNotFound)
	}
	return loadedTrigger{}, fmt.Errorf("no trigger that deploys is configured: %w", core.ErrNotFound)
}

// service returns the watched container of compose service service of
// project, on whichever host runs it, a running one first. One that no run
// has recorded yet (tidewatch just started, the service was just created) is
// checked now, on every host that runs it.
func (dp deployer) service(ctx context.Context, project, service string) (store.ContainerRecord, error) {
	c, err := dp.recorded(ctx, project, service)
	if !errors.Is(err, core.ErrNotFound) {
		return c, err
	}
	labels := map[string]string{labelComposeProject: project, labelComposeService: service}
	for _, name := range dp.d.hosts() {
		hl := dp.d.watchers[name]
		found, err := hl.eng.FindContainers(ctx, labels)
		if err != nil {
			return store.ContainerRecord{}, fmt.Errorf("looking for service %s of project %s on %s: %w", service, project, name, err)
		}
		for _, f := range found {
			if f.Running {
				if _, _, err := hl.w.RunContainer(ctx, f.ID); err != nil {
					dp.d.log.Warn("checking a service before its deploy", "watcher", name, "container", f.Name, "error", err)
				}
			}
		}
	}
	return dp.recorded(ctx, project, service)
}

// recorded returns the container of the service as the store last recorded it.
func (dp deployer) recorded(ctx context.Context, project, service string) (store.ContainerRecord, error) {
	all, err := dp.d.st.Containers(ctx, "")
	if err != nil {
		return store.ContainerRecord{}, err
	}
	var found *store.ContainerRecord
	for i, c := range all {
		if c.Container.Labels[labelComposeProject] != project || c.Container.Labels[labelComposeService] != service {
			continue
		}
		if found == nil || (c.Container.State == "running" && found.Container.State != "running") {
			found = &all[i]
		}
	}
	if found == nil {
		return store.ContainerRecord{}, fmt.Errorf("no watched container of service %s in compose project %s: %w", service, project, core.ErrNotFound)
	}
	return *found, nil
}

// deployResult is the API's answer for a finished delivery.
func deployResult(res web.DeployResult, dl store.Delivery) web.DeployResult {
	res.Result = "applied"
	if dl.Status == store.DeliveryFailed {
		res.Result = "failed"
	}
	if r := dl.Rollout; r != nil {
		res.Result = string(r.Outcome)
		if r.Outcome == core.OutcomeAlreadyApplied {
			res.Result = string(core.OutcomeApplied)
		}
		for _, s := range r.Steps {
			line := fmt.Sprintf("%s %dms", s.Name, s.Duration.Milliseconds())
			if s.Error != "" {
				line += ": " + s.Error
			}
			res.Steps = append(res.Steps, line)
		}
		res.Logs, res.Detail = r.Logs, r.Reason
	}
	if dl.LastError != "" && dl.Status == store.DeliveryFailed {
		res.Detail = strings.TrimSpace(res.Detail + " " + dl.LastError)
		if res.Result == string(core.OutcomeApplied) {
			res.Result = "failed"
		}
	}
	return res
}
