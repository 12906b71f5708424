package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
)

// Update is an update as the API shows it. Container labels are left out:
// other tools keep credentials in theirs.
type Update struct {
	ID              int64             `json:"id"`
	Host            string            `json:"host"`
	Container       string            `json:"container"`
	DisplayName     string            `json:"display_name"`
	ContainerID     string            `json:"container_id"`
	Image           string            `json:"image"`
	Current         string            `json:"current"`
	CurrentDigest   string            `json:"current_digest,omitempty"`
	Candidate       string            `json:"candidate"`
	CandidateDigest string            `json:"candidate_digest,omitempty"`
	Kind            core.UpdateKind   `json:"kind"`
	Link            string            `json:"link,omitempty"`
	Status          core.UpdateStatus `json:"status"`
	FirstSeen       time.Time         `json:"first_seen"`
	LastSeen        time.Time         `json:"last_seen"`
	SnoozedUntil    time.Time         `json:"snoozed_until,omitzero"`
	// CandidateCreated is when the candidate image was created, when it was
	// read (under a cooldown).
	CandidateCreated time.Time `json:"candidate_created,omitzero"`
	// WaitUntil is when the candidate is old enough for the container's
	// cooldown (tidewatch.update.min-age): until then no trigger acts on it
	// by itself. Absent when there is none, or it has passed.
	WaitUntil time.Time `json:"wait_until,omitzero"`
}

func newUpdate(u core.Update, snoozed time.Time) Update {
	return Update{ID: u.ID, Host: u.Host, Container: u.ContainerName, DisplayName: u.DisplayName, ContainerID: u.ContainerID, Image: u.Image,
		Current: u.Current, CurrentDigest: u.CurrentDigest, Candidate: u.Candidate, CandidateDigest: u.CandidateDigest,
		Kind: u.Kind, Link: u.Link, Status: u.Status, FirstSeen: u.FirstSeen, LastSeen: u.LastSeen, SnoozedUntil: snoozed,
		CandidateCreated: u.CandidateCreated, WaitUntil: u.WaitUntil(time.Now())}
}

// Delivery is a delivery of an update to a trigger, as the API shows it.
type Delivery struct {
	ID            int64                `json:"id"`
	UpdateID      int64                `json:"update_id"`
	Trigger       string               `json:"trigger"`
	Candidate     string               `json:"candidate"`
	Event         string               `json:"event"`
	EventDetail   string               `json:"event_detail,omitempty"`
	Status        store.DeliveryStatus `json:"status"`
	Attempts      int                  `json:"attempts"`
	NextAttemptAt time.Time            `json:"next_attempt_at,omitzero"`
	LastError     string               `json:"last_error,omitempty"`
	Detail        string               `json:"detail,omitempty"`
	Principal     string               `json:"principal,omitempty"`
	Rollout       *core.Rollout        `json:"rollout,omitempty"`
	CreatedAt     time.Time            `json:"created_at"`
	UpdatedAt     time.Time            `json:"updated_at"`
	// Update is the update delivered; absent when the store did not join it.
	Update *Update `json:"update,omitempty"`
}

// NewDelivery converts a store delivery for the API (and for "delivery" events).
func NewDelivery(d store.Delivery) Delivery {
	out := Delivery{ID: d.ID, UpdateID: d.UpdateID, Trigger: d.Trigger, Candidate: d.Candidate, Event: string(d.Event), EventDetail: d.EventDetail,
		Status: d.Status, Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, LastError: d.LastError, Detail: d.Detail,
		Principal: d.Principal, Rollout: d.Rollout, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if d.Update.ID != 0 {
		u := newUpdate(d.Update, time.Time{})
		out.Update = &u
	}
	return out
}

// NewUpdate converts a store update for the API (and for "update" events).
func NewUpdate(u core.Update) Update { return newUpdate(u, time.Time{}) }

// listUpdates answers GET /api/updates?status=&host=&include_snoozed=.
func (s *Server) listUpdates(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.UpdateFilter{Host: q.Get("host")}
	for _, v := range q["status"] {
		for _, one := range strings.Split(v, ",") {
			st, err := parseStatus("status", strings.TrimSpace(one))
			if err != nil {
				return err
			}
			f.Statuses = append(f.Statuses, st)
		}
	}
	if v := q.Get("include_snoozed"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return badInput("include_snoozed", "%q is not a boolean; expected true or false", v)
		}
		f.Snoozed = b
	}
	return s.serveList(w, r, func() (any, error) {
		ups, err := s.deps.Containers.ListUpdates(r.Context(), f)
		if err != nil {
			return nil, err
		}
		out := make([]Update, 0, len(ups))
		for _, u := range ups {
			out = append(out, newUpdate(u.Update, u.SnoozedUntil))
		}
		return map[string]any{"updates": out}, nil
	})
}

// updateID reads the {id} path parameter.
func updateID(r *http.Request) (int64, error) {
	v := chi.URLParam(r, "id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, badInput("id", "%q is not an update id; expected a positive integer", v)
	}
	return id, nil
}

// decodeBody reads a JSON body into v, refusing unknown fields. An empty
// body leaves v as it is when optional.
func decodeBody(r *http.Request, v any, optional bool) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		big *http.MaxBytesError
	)
	switch {
	case err == nil:
		if dec.More() {
			return badInput("body", "more than one JSON value")
		}
		return nil
	case errors.Is(err, io.EOF):
		if optional {
			return nil
		}
		return badInput("body", "empty body; expected a JSON object")
	case errors.As(err, &typ):
		return badInput(typ.Field, "wrong type: %s, expected %s", typ.Value, typ.Type)
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return badInput("body", "malformed JSON")
	case errors.As(err, &big):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Field: "body", Message: fmt.Sprintf("body larger than %d bytes", MaxBodyBytes)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badInput(field, "unknown field")
	}
	return badInput("body", "unreadable JSON body")
}

// applyRequest is the body of POST /api/updates/{id}/apply.
type applyRequest struct {
	// Trigger is the trigger instance to fire; optional when exactly one
	// manual trigger (AUTO=false) exists.
	Trigger string `json:"trigger"`
}

// ApplyResponse is the answer to an apply: the delivery to follow.
type ApplyResponse struct {
	Delivery Delivery `json:"delivery"`
}

// applyUpdate answers POST /api/updates/{id}/apply: the chosen trigger is
// fired for the update, through the outbox.
func (s *Server) applyUpdate(w http.ResponseWriter, r *http.Request) error {
	id, err := updateID(r)
	if err != nil {
		return err
	}
	var req applyRequest
	if err := decodeBody(r, &req, true); err != nil {
		return err
	}
	trig, err := s.pickTrigger(req.Trigger)
	if err != nil {
		return err
	}
	ctx := r.Context()
	u, err := s.deps.Updates.Update(ctx, id)
	if err != nil {
		return err
	}
	if u.Status == core.StatusApplied {
		return conflict("update %d was applied", id)
	}
	// The dispatcher checks the trigger's policy, marks the update applying
	// (for a trigger that deploys) and enqueues the delivery, at once.
	d, err := s.deps.Triggers.Request(ctx, id, trig.Name, principalName(ctx))
	if err != nil {
		return err
	}
	s.record(r, store.Event{Host: u.Host, Container: u.ContainerName, Image: u.Image, Kind: store.EventApplyRequested,
		From: u.CurrentRef(), To: u.CandidateRef(), UpdateKind: u.Kind, UpdateID: u.ID, Trigger: trig.Name,
		Detail: fmt.Sprintf("through %s (delivery %d)", trig.Name, d.ID)})
	s.publish(EventUpdate, NewUpdate(d.Update))
	s.publish(EventDelivery, NewDelivery(d))
	writeJSON(w, http.StatusAccepted, ApplyResponse{Delivery: NewDelivery(d)})
	return nil
}

// principalName names who made the request of ctx for the history and the
// triggers: "user:alice", "token:ci", "anonymous" with auth off.
func principalName(ctx context.Context) string {
	p, _ := PrincipalFrom(ctx)
	return p.String()
}

// pickTrigger returns the trigger named name, or the only manual one when name is "".
func (s *Server) pickTrigger(name string) (TriggerInfo, error) {
	var manual []TriggerInfo
	for _, t := range s.deps.Triggers.List() {
		if name != "" && t.Name == name {
			return t, nil
		}
		if !t.Auto {
			manual = append(manual, t)
		}
	}
	switch {
	case name != "":
		return TriggerInfo{}, notFound("no trigger %q", name)
	case len(manual) == 1:
		return manual[0], nil
	case len(manual) == 0:
		return TriggerInfo{}, badInput("trigger", "required: no manual trigger (AUTO=false) to choose by default")
	}
	return TriggerInfo{}, badInput("trigger", "required: %d manual triggers exist", len(manual))
}

// dismissUpdate answers POST /api/updates/{id}/dismiss.
func (s *Server) dismissUpdate(w http.ResponseWriter, r *http.Request) error {
	id, err := updateID(r)
	if err != nil {
		return err
	}
	if err := decodeBody(r, &struct{}{}, true); err != nil {
		return err
	}
	if err := s.deps.Updates.Dismiss(r.Context(), id, time.Time{}); err != nil {
		return err
	}
	return s.answerUpdate(w, r, id, time.Time{})
}

// snoozeRequest is the body of POST /api/updates/{id}/snooze.
type snoozeRequest struct {
	// Until is when the update comes back, RFC 3339.
	Until string `json:"until"`
}

// snoozeUpdate answers POST /api/updates/{id}/snooze.
func (s *Server) snoozeUpdate(w http.ResponseWriter, r *http.Request) error {
	id, err := updateID(r)
	if err != nil {
		return err
	}
	var req snoozeRequest
	if err := decodeBody(r, &req, false); err != nil {
		return err
	}
	if req.Until == "" {
		return badInput("until", "required: when the update comes back, RFC 3339 (2026-12-01T00:00:00Z)")
	}
	until, err := time.Parse(time.RFC3339, req.Until)
	if err != nil {
		return badInput("until", "%q is not an RFC 3339 time like 2026-12-01T00:00:00Z", req.Until)
	}
	if !until.After(time.Now()) {
		return badInput("until", "%s is not in the future", req.Until)
	}
	if err := s.deps.Updates.Snooze(r.Context(), id, until); err != nil {
		return err
	}
	return s.answerUpdate(w, r, id, until.UTC())
}

// answerUpdate writes update id, and publishes it as an event.
func (s *Server) answerUpdate(w http.ResponseWriter, r *http.Request, id int64, snoozed time.Time) error {
	u, err := s.deps.Updates.Update(r.Context(), id)
	if err != nil {
		return err
	}
	out := newUpdate(u, snoozed)
	s.publish(EventUpdate, out)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// publish sends an event when the events come from a Broker.
func (s *Server) publish(typ string, data any) {
	if b, ok := s.deps.Events.(interface{ Publish(Event) }); ok {
		b.Publish(Event{Type: typ, Data: data})
	}
}

// deliveryStatuses are the delivery statuses, for validating filters.
var deliveryStatuses = []store.DeliveryStatus{store.DeliveryPending, store.DeliveryRunning, store.DeliveryDelivered, store.DeliveryFailed}

// listDeliveries answers GET /api/deliveries?update_id=&trigger=&status=&limit=.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.DeliveryFilter{Trigger: q.Get("trigger"), Limit: 100}
	if v := q.Get("update_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return badInput("update_id", "%q is not an update id; expected a positive integer", v)
		}
		f.UpdateID = id
	}
	if v := q.Get("status"); v != "" {
		st := store.DeliveryStatus(v)
		ok := false
		for _, k := range deliveryStatuses {
			ok = ok || k == st
		}
		if !ok {
			return badInput("status", "unknown status %q; expected pending, running, delivered or failed", v)
		}
		f.Status = st
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return badInput("limit", "%q is not a limit; expected an integer from 1 to 1000", v)
		}
		f.Limit = n
	}
	ds, err := s.deps.History.Deliveries(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]Delivery, 0, len(ds))
	for _, d := range ds {
		out = append(out, NewDelivery(d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
	return nil
}
