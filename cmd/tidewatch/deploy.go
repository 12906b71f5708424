package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/compose"
	"github.com/tidewatch/tidewatch/web"
)

// deployer is POST /api/deploy: push-based CD from CI, through a compose
// trigger, with the same health gate and rollback as an applied update.
type deployer struct{ d *daemon }

// Deploy rolls req's service to req.Tag and returns the outcome.
func (dp deployer) Deploy(ctx context.Context, req web.DeployRequest) (web.DeployResult, error) {
	var trig *loadedTrigger
	for i, l := range dp.d.loaded {
		if l.cfg.Type != "compose" || (req.Trigger != "" && l.cfg.ID() != req.Trigger) {
			continue
		}
		if trig != nil && req.Trigger == "" {
			return web.DeployResult{}, &web.Error{Status: http.StatusBadRequest, Code: "bad_request", Field: "trigger",
				Message: "several compose triggers are configured: name one"}
		}
		trig = &dp.d.loaded[i]
	}
	if trig == nil {
		return web.DeployResult{}, fmt.Errorf("compose trigger %q: %w", req.Trigger, core.ErrNotFound)
	}
	// The service's running container, on whichever watched host has it.
	labels := map[string]string{"com.docker.compose.project": req.Project, "com.docker.compose.service": req.Service}
	for _, name := range dp.d.hosts() {
		hl := dp.d.watchers[name]
		found, err := hl.eng.FindContainers(ctx, labels)
		if err != nil {
			return web.DeployResult{}, err
		}
		if len(found) == 0 {
			continue
		}
		var c *docker.State
		for i, f := range found {
			if f.Running && !strings.HasSuffix(f.Name, compose.ArchiveSuffix) {
				c = &found[i]
				break
			}
		}
		if c == nil {
			continue
		}
		ref, err := core.ParseImageRef(c.Image)
		if err != nil {
			return web.DeployResult{}, fmt.Errorf("service %s/%s runs %q: %w", req.Project, req.Service, c.Image, err)
		}
		u := sdk.Update{
			Key: fmt.Sprintf("deploy-%s-%s-%s-%d", req.Project, req.Service, req.Tag, time.Now().UnixNano()), Event: sdk.EventUpdateAvailable,
			Host: name, Container: c.Name, ContainerID: c.ID, Image: ref.Repo(), Current: ref.Tag, Candidate: req.Tag,
			Kind: "deploy", DetectedAt: time.Now().UTC(), Labels: c.Labels,
		}
		// A client that goes away must not cut a rollout off in its middle.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deployTimeout(trig.cfg))
		defer cancel()
		r := trig.plugin.Fire(fctx, []sdk.Update{u})[0]
		res := web.DeployResult{Project: req.Project, Service: req.Service, From: ref.Tag, To: req.Tag, Result: "applied"}
		if rep, err := compose.ParseReport(r.Detail); err == nil && rep.Outcome != "" {
			res.Result = rep.Outcome
			for _, s := range rep.Steps {
				line := fmt.Sprintf("%s %dms", s.Name, s.DurationMS)
				if s.Error != "" {
					line += ": " + s.Error
				}
				res.Steps = append(res.Steps, line)
			}
			res.Logs, res.Detail = rep.Logs, rep.Reason
		}
		if r.Err != nil {
			if res.Result == "applied" {
				res.Result = "failed"
			}
			res.Detail = strings.TrimSpace(res.Detail + " " + r.Err.Error())
		}
		if res.Result == compose.OutcomeAlreadyApplied {
			res.Result = "applied"
		}
		dp.d.delivered(trig.cfg.ID(), 0, deliveryStatus(r), r.Event)
		// The audit trail: what was deployed, from and to which tag, by which
		// trigger, with what result.
		kind := r.Event
		if kind == "" {
			kind = "deploy-" + res.Result
		}
		detail := fmt.Sprintf("%s: deploy requested through the API: %s", trig.cfg.ID(), res.Result)
		if res.Detail != "" {
			detail += ": " + res.Detail
		}
		if len(res.Steps) > 0 {
			detail += "\nsteps: " + strings.Join(res.Steps, ", ")
		}
		if len(res.Logs) > 0 {
			detail += "\nlast log lines of the failed container:\n" + strings.Join(res.Logs, "\n")
		}
		if err := dp.d.st.AddEvent(context.WithoutCancel(ctx), store.Event{Host: name, Container: c.Name, Image: ref.Repo(), Kind: kind,
			From: ref.Tag, To: req.Tag, Detail: detail}); err != nil {
			dp.d.log.Error("recording a deploy in the history", "error", err)
		}
		return res, nil
	}
	return web.DeployResult{}, fmt.Errorf("no running container of service %s in compose project %s: %w", req.Service, req.Project, core.ErrNotFound)
}

// deployTimeout is the deadline of a deploy through trig.
func deployTimeout(t config.Trigger) time.Duration {
	if _, set := t.Vars["DEADLINE"]; !set {
		return deployDeadline
	}
	return t.Timeout
}

// deliveryStatus is the status a direct fire would leave, for the metrics.
func deliveryStatus(r sdk.Result) store.DeliveryStatus {
	switch {
	case r.Err == nil:
		return store.DeliveryDelivered
	case sdk.IsPermanent(r.Err):
		return store.DeliveryFailed
	default:
		return store.DeliveryPending
	}
}
