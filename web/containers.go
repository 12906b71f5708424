package web

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
)

// Container is one container as the API shows it: what runs, what is
// offered, and where its update stands.
type Container struct {
	Host            string          `json:"host"`
	Name            string          `json:"name"`
	DisplayName     string          `json:"display_name"`
	ID              string          `json:"id"`
	Image           string          `json:"image"`
	State           string          `json:"state"`
	Current         string          `json:"current"`
	CurrentDigest   string          `json:"current_digest,omitempty"`
	Candidate       string          `json:"candidate,omitempty"`
	CandidateDigest string          `json:"candidate_digest,omitempty"`
	Kind            core.UpdateKind `json:"kind,omitempty"`
	Link            string          `json:"link,omitempty"`
	// Status is the status of its open update; "" when it has none.
	Status       core.UpdateStatus `json:"status,omitempty"`
	UpdateID     int64             `json:"update_id,omitempty"`
	SnoozedUntil time.Time         `json:"snoozed_until,omitzero"`
	LastChecked  time.Time         `json:"last_checked"`
	Error        string            `json:"error,omitempty"`
	Note         string            `json:"note,omitempty"`
	// Policy is what its tidewatch.* labels ask, by label name without the
	// "tidewatch." prefix ("tag.include", "watch.digest", …).
	Policy map[string]string `json:"policy"`
}

// policyLabels are the labels summarised in Container.Policy.
var policyLabels = []string{
	core.LabelWatch, core.LabelTagInclude, core.LabelTagExclude, core.LabelTagTransform, core.LabelWatchDigest,
	core.LabelLinkTemplate, core.LabelTriggerInclude, core.LabelTriggerExclude, core.LabelUpdateMinAge,
}

func newContainer(c store.ContainerRecord, u *store.OpenUpdate) Container {
	out := Container{
		Host: c.Container.Host, Name: c.Container.Name, DisplayName: c.Container.DisplayName, ID: c.Container.ID,
		Image: c.Container.Image, State: c.Container.State, Current: c.Current, CurrentDigest: c.CurrentDigest,
		LastChecked: c.LastChecked, Error: c.LastError, Note: c.Note, Policy: map[string]string{},
	}
	if out.DisplayName == "" {
		out.DisplayName = out.Name
	}
	for _, l := range policyLabels {
		if v, ok := c.Container.Labels[l]; ok {
			out.Policy[l[len("tidewatch."):]] = v
		}
	}
	if u != nil {
		out.Candidate, out.CandidateDigest, out.Kind, out.Link = u.Candidate, u.CandidateDigest, u.Kind, u.Link
		out.Status, out.UpdateID, out.SnoozedUntil = u.Status, u.ID, u.SnoozedUntil
	}
	return out
}

// allStatuses are the update statuses, for validating filters.
var allStatuses = []core.UpdateStatus{
	core.StatusPending, core.StatusNotified, core.StatusApplying, core.StatusApplied,
	core.StatusFailed, core.StatusRolledBack, core.StatusDismissed,
}

// parseStatus reads an update status parameter.
func parseStatus(field, v string) (core.UpdateStatus, error) {
	st := core.UpdateStatus(v)
	if !slices.Contains(allStatuses, st) {
		return "", badInput(field, "unknown status %q; expected one of pending, notified, applying, applied, failed, rolled-back, dismissed", v)
	}
	return st, nil
}

// containers returns the containers of host with their open updates.
func (s *Server) containers(r *http.Request, host string) ([]Container, error) {
	ctx := r.Context()
	recs, err := s.deps.Containers.Containers(ctx, host)
	if err != nil {
		return nil, err
	}
	ups, err := s.deps.Containers.ListUpdates(ctx, store.UpdateFilter{Host: host, Statuses: allStatuses, Snoozed: true})
	if err != nil {
		return nil, err
	}
	type key struct{ host, name string }
	byName := make(map[key]*store.OpenUpdate, len(ups))
	for i := range ups {
		byName[key{ups[i].Host, ups[i].ContainerName}] = &ups[i]
	}
	out := make([]Container, 0, len(recs))
	for _, c := range recs {
		out = append(out, newContainer(c, byName[key{c.Container.Host, c.Container.Name}]))
	}
	return out, nil
}

// listContainers answers GET /api/containers?host=&status=&has_update=.
func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var status core.UpdateStatus
	if v := q.Get("status"); v != "" {
		st, err := parseStatus("status", v)
		if err != nil {
			return err
		}
		status = st
	}
	var hasUpdate *bool
	if v := q.Get("has_update"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return badInput("has_update", "%q is not a boolean; expected true or false", v)
		}
		hasUpdate = &b
	}
	return s.serveList(w, r, func() (any, error) {
		all, err := s.containers(r, q.Get("host"))
		if err != nil {
			return nil, err
		}
		out := all[:0]
		for _, c := range all {
			if status != "" && c.Status != status {
				continue
			}
			if hasUpdate != nil && (c.UpdateID != 0) != *hasUpdate {
				continue
			}
			out = append(out, c)
		}
		return map[string]any{"containers": out}, nil
	})
}

// getContainer answers GET /api/containers/{host}/{name}.
func (s *Server) getContainer(w http.ResponseWriter, r *http.Request) error {
	host, name := chi.URLParam(r, "host"), chi.URLParam(r, "name")
	all, err := s.containers(r, host)
	if err != nil {
		return err
	}
	for _, c := range all {
		if c.Name == name {
			writeJSON(w, http.StatusOK, c)
			return nil
		}
	}
	return notFound("no container %q on host %q", name, host)
}

// CheckResult is a container's check as POST …/watch answers it.
type CheckResult struct {
	Host            string          `json:"host"`
	Name            string          `json:"name"`
	Image           string          `json:"image"`
	Current         string          `json:"current"`
	CurrentDigest   string          `json:"current_digest,omitempty"`
	Candidate       string          `json:"candidate,omitempty"`
	CandidateDigest string          `json:"candidate_digest,omitempty"`
	Kind            core.UpdateKind `json:"kind,omitempty"`
	Link            string          `json:"link,omitempty"`
	Note            string          `json:"note,omitempty"`
	Error           string          `json:"error,omitempty"`
	CheckedAt       time.Time       `json:"checked_at"`
}

// watchContainer answers POST /api/containers/{host}/{name}/watch.
func (s *Server) watchContainer(w http.ResponseWriter, r *http.Request) error {
	host, name := chi.URLParam(r, "host"), chi.URLParam(r, "name")
	c, err := s.deps.Watcher.RunContainer(r.Context(), host, name)
	if err != nil {
		return err
	}
	out := CheckResult{Host: host, Name: name, Image: c.Container.Image, Current: c.Current, CurrentDigest: c.CurrentDigest,
		Candidate: c.Candidate, CandidateDigest: c.CandidateDigest, Kind: c.Kind, Link: c.Link, Note: c.Note, CheckedAt: c.CheckedAt}
	if c.Err != nil {
		out.Error = c.Err.Error()
	}
	image := c.Container.Image
	if c.Ref.Repository != "" {
		image = c.Ref.Repo()
	}
	s.record(r, store.Event{Host: host, Container: name, Image: image, Kind: store.EventWatchRequested, Detail: "checked on request"})
	writeJSON(w, http.StatusOK, out)
	return nil
}

// watchAll answers POST /api/watch: every watcher runs now.
func (s *Server) watchAll(w http.ResponseWriter, r *http.Request) error {
	if err := s.deps.Watcher.RunAll(r.Context()); err != nil {
		return err
	}
	s.record(r, store.Event{Kind: store.EventWatchRequested, Detail: "every watcher runs now"})
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "started"})
	return nil
}
