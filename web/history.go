package web

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/tidewatch/tidewatch/core/store"
)

// record appends e to the history; its principal is the request's.
// A failure is logged, not answered: what was asked is done.
func (s *Server) record(r *http.Request, e store.Event) {
	if err := s.deps.History.AddEvent(context.WithoutCancel(r.Context()), e); err != nil {
		s.log.Error("recording a request in the history", "kind", e.Kind, "request_id", middleware.GetReqID(r.Context()), "error", err)
	}
}

// Pagination of the history.
const (
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 1000
)

// HistoryPage is a page of the history, newest first.
type HistoryPage struct {
	Events []store.Event `json:"events"`
	// Total counts the events the filter selects, across pages.
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// history answers GET /api/history?container=&host=&kind=&since=&until=&limit=&offset=.
func (s *Server) history(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.HistoryFilter{Host: q.Get("host"), Container: q.Get("container"), Limit: DefaultHistoryLimit}
	for _, v := range q["kind"] {
		for _, k := range strings.Split(v, ",") {
			k = strings.TrimSpace(k)
			if !slices.Contains(store.HistoryKinds, k) {
				return badInput("kind", "unknown kind %q; expected one of %s", k, strings.Join(store.HistoryKinds, ", "))
			}
			f.Kinds = append(f.Kinds, k)
		}
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return badInput(p.name, "%q is not an RFC 3339 time like 2026-01-02T03:04:05Z", v)
			}
			*p.t = t
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return badInput("until", "not after since")
	}
	var err error
	if f.Limit, err = intParam(q.Get("limit"), "limit", DefaultHistoryLimit, 1, MaxHistoryLimit); err != nil {
		return err
	}
	if f.Offset, err = intParam(q.Get("offset"), "offset", 0, 0, 1<<31-1); err != nil {
		return err
	}
	events, err := s.deps.History.History(r.Context(), f)
	if err != nil {
		return err
	}
	total, err := s.deps.History.CountHistory(r.Context(), f)
	if err != nil {
		return err
	}
	if events == nil {
		events = []store.Event{}
	}
	writeJSON(w, http.StatusOK, HistoryPage{Events: events, Total: total, Limit: f.Limit, Offset: f.Offset})
	return nil
}

// intParam reads an integer parameter in [lo, hi], def when absent.
func intParam(v, field string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badInput(field, "%q is out of range; expected an integer from %d to %d", v, lo, hi)
	}
	return n, nil
}
