package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
)

// redacted returns t with its secret options' values replaced by core.Redacted.
func redacted(t TriggerInfo) TriggerInfo {
	opts := make([]TriggerOption, 0, len(t.Options))
	for _, o := range t.Options {
		if o.Secret && o.Value != "" {
			o.Value = core.Redacted
		}
		opts = append(opts, o)
	}
	t.Options = opts
	if t.Events == nil {
		t.Events = []string{}
	}
	return t
}

// listTriggers answers GET /api/triggers.
func (s *Server) listTriggers(w http.ResponseWriter, r *http.Request) error {
	ts := s.deps.Triggers.List()
	out := make([]TriggerInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, redacted(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"triggers": out})
	return nil
}

// testTrigger answers POST /api/triggers/{name}/test: the trigger is fired
// with a sample update, and its answer returned.
func (s *Server) testTrigger(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	if _, err := s.pickTrigger(name); err != nil {
		return err
	}
	if err := decodeBody(r, &struct{}{}, true); err != nil {
		return err
	}
	res, err := s.deps.Triggers.Test(r.Context(), name)
	if err != nil {
		return err
	}
	outcome := "delivered"
	if !res.OK {
		outcome = "failed"
	}
	s.record(r, store.Event{Kind: store.EventTriggerTested, Detail: name + ": test notification " + outcome})
	writeJSON(w, http.StatusOK, res)
	return nil
}
