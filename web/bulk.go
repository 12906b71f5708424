package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
)

// maxGlob bounds the container glob of a bulk apply (a container name is
// at most 255 bytes with its host).
const maxGlob = 512

// MaxBulkApply is the most updates one POST /api/updates/apply applies: a
// filter that selects more is refused whole (400), nothing applied.
const MaxBulkApply = 100

// PolicyChecker is what a Triggers may also do: say whether trigger's
// policy would let update updateID be applied, without enqueuing or
// recording anything (nil, or the error Request would return). The dry run
// of POST /api/updates/apply uses it when the Triggers has it.
type PolicyChecker interface {
	Check(ctx context.Context, updateID int64, trigger string) error
}

// BulkApplyRequest is the body of POST /api/updates/apply. Its filters
// combine (all must match); without IDs it selects the open updates that
// GET /api/updates lists (pending or notified, not snoozed).
type BulkApplyRequest struct {
	// Trigger is the trigger instance to apply with; optional when exactly
	// one manual trigger (AUTO=false) exists.
	Trigger string `json:"trigger"`
	// Host keeps the updates of one Docker host (watcher).
	Host string `json:"host,omitempty"`
	// Kinds keeps the updates of these kinds (major, minor, patch,
	// prerelease, digest).
	Kinds []core.UpdateKind `json:"kinds,omitempty"`
	// Container is a glob (path.Match: *, ?, [a-z]) over the container's
	// name, its display name, or "host/name".
	Container string `json:"container,omitempty"`
	// IDs names the updates, at most MaxBulkApply; each that does not
	// exist, is not open or does not match the other filters is reported.
	IDs []int64 `json:"ids,omitempty"`
	// DryRun answers what would be applied, and what the trigger's policy
	// would refuse, without applying anything.
	DryRun bool `json:"dry_run,omitempty"`
}

// The outcomes of one update of a bulk apply.
const (
	BulkEnqueued   = "enqueued"    // a delivery was enqueued: follow it
	BulkWouldApply = "would-apply" // dry run: Apply would enqueue one
	BulkRefused    = "refused"     // the trigger's policy refused it (Rule says which rule)
	BulkConflict   = "conflict"    // being applied already, or applied
	BulkNotFound   = "not-found"   // no such update
	BulkSkipped    = "skipped"     // named by IDs, but not open or not matching the filter
	BulkError      = "error"       // failed; see the server log
)

// BulkApplyResult is what became of one update.
type BulkApplyResult struct {
	UpdateID int64 `json:"update_id"`
	// Update is the update as it now is; absent for one not found.
	Update *Update `json:"update,omitempty"`
	// Outcome is one of enqueued, would-apply, refused, conflict,
	// not-found, skipped, error.
	Outcome string `json:"outcome"`
	// Delivery is the delivery to follow (enqueued).
	Delivery *Delivery `json:"delivery,omitempty"`
	// Rule is the option or label that refused (refused).
	Rule string `json:"rule,omitempty"`
	// Message says why it was not enqueued.
	Message string `json:"message,omitempty"`
}

// BulkApplyResponse is the answer to POST /api/updates/apply.
type BulkApplyResponse struct {
	Trigger string `json:"trigger"`
	DryRun  bool   `json:"dry_run"`
	// Counts counts the results by outcome.
	Counts map[string]int `json:"counts"`
	// Results has one entry per update selected, in the order of the
	// update list (by host and container), or of IDs.
	Results []BulkApplyResult `json:"results"`
}

// applyUpdates answers POST /api/updates/apply: every update the filter
// selects is applied through the trigger, each as POST
// /api/updates/{id}/apply would (the trigger's policy and rollout, the
// outbox, the history, the principal), one after the other; a refusal is
// that update's result and does not stop the others. The dispatcher runs
// one rollout per compose project at a time. 202 when at least one was
// enqueued, 200 otherwise (a dry run, or all refused).
func (s *Server) applyUpdates(w http.ResponseWriter, r *http.Request) error {
	var req BulkApplyRequest
	if err := decodeBody(r, &req, false); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	trig, err := s.pickTrigger(req.Trigger)
	if err != nil {
		return err
	}
	ctx := r.Context()
	results, ups, err := s.selectUpdates(ctx, req)
	if err != nil {
		return err
	}
	if len(ups) > MaxBulkApply {
		return badInput("body", "the filter selects %d updates; at most %d are applied per request: narrow it, or name the updates in ids", len(ups), MaxBulkApply)
	}
	checker, _ := s.deps.Triggers.(PolicyChecker)
	for _, u := range ups {
		res := BulkApplyResult{UpdateID: u.ID}
		view := newUpdate(u.Update, u.snoozed)
		res.Update = &view
		switch {
		case u.Status == core.StatusApplied:
			res.Outcome, res.Message = BulkConflict, fmt.Sprintf("update %d was applied", u.ID)
		case req.DryRun && checker == nil:
			res.Outcome = BulkWouldApply
		case req.DryRun:
			s.bulkOutcome(r, &res, checker.Check(ctx, u.ID, trig.Name), BulkWouldApply)
		default:
			d, err := s.deps.Triggers.Request(ctx, u.ID, trig.Name, principalName(ctx))
			if s.bulkOutcome(r, &res, err, BulkEnqueued) {
				s.record(r, store.Event{Host: u.Host, Container: u.ContainerName, Image: u.Image, Kind: store.EventApplyRequested,
					From: u.CurrentRef(), To: u.CandidateRef(), UpdateKind: u.Kind, UpdateID: u.ID, Trigger: trig.Name,
					Detail: fmt.Sprintf("through %s (delivery %d), one of %d applied at once", trig.Name, d.ID, len(ups))})
				dv, uv := NewDelivery(d), NewUpdate(d.Update)
				res.Delivery, res.Update = &dv, &uv
				s.publish(EventUpdate, uv)
				s.publish(EventDelivery, dv)
			}
		}
		results = append(results, res)
	}
	slices.SortStableFunc(results, func(a, b BulkApplyResult) int { return order(req.IDs, a.UpdateID) - order(req.IDs, b.UpdateID) })
	out := BulkApplyResponse{Trigger: trig.Name, DryRun: req.DryRun, Counts: map[string]int{}, Results: results}
	for _, res := range results {
		out.Counts[res.Outcome]++
	}
	status := http.StatusOK
	if out.Counts[BulkEnqueued] > 0 {
		status = http.StatusAccepted
	}
	writeJSON(w, status, out)
	return nil
}

// order is the position of id in ids, for answering in the order asked;
// 0 for all when ids is empty (the list's order stays).
func order(ids []int64, id int64) int {
	if len(ids) == 0 {
		return 0
	}
	return slices.Index(ids, id)
}

// validate checks the request's own values.
func (req *BulkApplyRequest) validate() error {
	for _, k := range req.Kinds {
		if !slices.Contains([]core.UpdateKind{core.KindMajor, core.KindMinor, core.KindPatch, core.KindPrerelease, core.KindDigest}, k) {
			return badInput("kinds", "unknown kind %s; expected major, minor, patch, prerelease or digest", core.Quote(string(k)))
		}
	}
	if req.Container != "" {
		if _, err := path.Match(req.Container, ""); err != nil || strings.ContainsRune(req.Container, 0) || len(req.Container) > maxGlob {
			return badInput("container", "%s is not a glob (*, ?, [a-z]) of at most %d bytes", core.Quote(req.Container), maxGlob)
		}
	}
	if len(req.IDs) > MaxBulkApply {
		return badInput("ids", "%d ids; at most %d per request", len(req.IDs), MaxBulkApply)
	}
	seen := map[int64]bool{}
	for _, id := range req.IDs {
		if id <= 0 {
			return badInput("ids", "%d is not an update id; expected positive integers", id)
		}
		if seen[id] {
			return badInput("ids", "update %d is named twice", id)
		}
		seen[id] = true
	}
	return nil
}

// selectUpdates returns the updates req selects, and the results of the
// IDs it names that are not selected (not found, not open, not matching).
func (s *Server) selectUpdates(ctx context.Context, req BulkApplyRequest) ([]BulkApplyResult, []bulkUpdate, error) {
	if len(req.IDs) == 0 {
		open, err := s.deps.Containers.ListUpdates(ctx, store.UpdateFilter{Host: req.Host})
		if err != nil {
			return nil, nil, err
		}
		var ups []bulkUpdate
		for _, o := range open {
			if req.matches(o.Update) {
				ups = append(ups, bulkUpdate{Update: o.Update, snoozed: o.SnoozedUntil})
			}
		}
		return nil, ups, nil
	}
	var (
		results []BulkApplyResult
		ups     []bulkUpdate
	)
	for _, id := range req.IDs {
		u, err := s.deps.Updates.Update(ctx, id)
		switch {
		case errors.Is(err, core.ErrNotFound):
			results = append(results, BulkApplyResult{UpdateID: id, Outcome: BulkNotFound, Message: fmt.Sprintf("no update %d", id)})
			continue
		case err != nil:
			return nil, nil, err
		}
		skip := func(format string, args ...any) {
			view := newUpdate(u, time.Time{})
			results = append(results, BulkApplyResult{UpdateID: id, Update: &view, Outcome: BulkSkipped, Message: fmt.Sprintf(format, args...)})
		}
		switch {
		case (req.Host != "" && u.Host != req.Host) || !req.matches(u):
			skip("update %d does not match the filter", id)
		case u.Status == core.StatusDismissed:
			skip("update %d was dismissed", id)
		default:
			ups = append(ups, bulkUpdate{Update: u})
		}
	}
	return results, ups, nil
}

// bulkUpdate is a selected update with its snooze (zero when not snoozed or not read).
type bulkUpdate struct {
	core.Update
	snoozed time.Time
}

// matches applies req's kind and container filters to u.
func (req *BulkApplyRequest) matches(u core.Update) bool {
	if len(req.Kinds) > 0 && !slices.Contains(req.Kinds, u.Kind) {
		return false
	}
	if req.Container == "" {
		return true
	}
	for _, name := range []string{u.ContainerName, u.DisplayName, u.Host + "/" + u.ContainerName} {
		if ok, _ := path.Match(req.Container, name); ok {
			return true
		}
	}
	return false
}

// bulkOutcome fills res from the error of a request (or of its dry run),
// ok being the outcome of none, and reports whether there was none.
func (s *Server) bulkOutcome(r *http.Request, res *BulkApplyResult, err error, ok string) bool {
	var refusal *core.RefusalError
	switch {
	case err == nil:
		res.Outcome = ok
		return true
	case errors.As(err, &refusal):
		res.Outcome, res.Rule, res.Message = BulkRefused, refusal.Rule, refusal.Error()
	case errors.Is(err, ErrConflict):
		res.Outcome, res.Message = BulkConflict, err.Error()
	case errors.Is(err, core.ErrNotFound):
		res.Outcome, res.Message = BulkNotFound, err.Error()
	default:
		s.log.Error("applying one of several updates", "update", res.UpdateID, "request_id", middleware.GetReqID(r.Context()), "error", err)
		res.Outcome, res.Message = BulkError, "internal error; see the server log, request "+middleware.GetReqID(r.Context())
	}
	return false
}
