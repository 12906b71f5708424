package web

import (
	"net/http"
	"regexp"

	"github.com/tidewatch/tidewatch/core/credential"
)

var (
	composeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	imageTag    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// deploy answers POST /api/deploy: a compose service is rolled to a tag,
// through a deploying trigger's policy, health gate and rollback. An
// applied (or dry-run) deploy answers 200 with its result; a rolled-back or
// failed one 409 with the error and the result, so that `curl --fail` fails
// a CI job; a refused one 403 naming the rule; one that outlasts the
// request 202 with the delivery to follow. A token scoped to deploying may
// deploy only its projects and services (403 for others, before anything
// is looked up).
func (s *Server) deploy(w http.ResponseWriter, r *http.Request) error {
	var req DeployRequest
	if err := decodeBody(r, &req, false); err != nil {
		return err
	}
	switch {
	case !composeName.MatchString(req.Project):
		return badInput("project", "required: a compose project name")
	case !composeName.MatchString(req.Service):
		return badInput("service", "required: a compose service name")
	case !imageTag.MatchString(req.Tag):
		return badInput("tag", "required: an image tag (letters, digits, _ . -, at most 128)")
	}
	if p, _ := PrincipalFrom(r.Context()); p.Scoped() && !credential.MayDeploy(p.Deploy, req.Project, req.Service) {
		return forbidden(p)
	}
	if s.deps.Deployer == nil {
		return &Error{Status: http.StatusNotImplemented, Code: "not_implemented",
			Message: "deploys need a trigger that deploys, such as a compose trigger (TIDEWATCH_TRIGGER_COMPOSE_<name>_*)"}
	}
	res, err := s.deps.Deployer.Deploy(r.Context(), req, principalName(r.Context()))
	if err != nil {
		return err
	}
	if res.Result == "pending" {
		writeJSON(w, http.StatusAccepted, res)
		return nil
	}
	if res.Result != "applied" && res.Result != "dry-run" {
		msg := "deploy " + res.Result
		if res.Detail != "" {
			msg += ": " + res.Detail
		}
		return &Error{Status: http.StatusConflict, Code: "deploy_" + res.Result, Message: msg, Extra: map[string]any{"result": res}}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
