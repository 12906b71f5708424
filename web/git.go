package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/gitsync"
	"github.com/tidewatch/tidewatch/core/sources"
)

// EventGit is the UI's event of a git source's sync (Data: source, result,
// commit).
const EventGit = "git"

// MaxWebhookBytes caps a push webhook's body (1 MiB): larger than the API's
// own bodies, since a push of many commits lists them all.
const MaxWebhookBytes = 1 << 20

// GitSources are the git sources (*sources.Runner).
type GitSources interface {
	// Status describes every source, sorted by name.
	Status(ctx context.Context) ([]sources.Status, error)
	// Webhook verifies a push webhook for source name and, when it moved
	// the source's branch, syncs the source at once (without waiting).
	Webhook(name string, h http.Header, body []byte) (gitsync.Push, error)
}

// isWebhook reports whether path is a git source's webhook route, whose
// body may be larger than the API's (MaxWebhookBytes).
func isWebhook(path string) bool {
	rest, ok := strings.CutPrefix(path, "/api/git/")
	if !ok {
		return false
	}
	name, tail, _ := strings.Cut(rest, "/")
	return name != "" && tail == "webhook"
}

// gitSources is GET /api/git: every source, its commits and whether they match.
func (s *Server) gitSources(w http.ResponseWriter, r *http.Request) error {
	out := []sources.Status{}
	if s.deps.Git != nil {
		st, err := s.deps.Git.Status(r.Context())
		if err != nil {
			return err
		}
		out = append(out, st...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sources": out})
	return nil
}

// gitWebhook is POST /api/git/{name}/webhook: a push webhook of GitHub,
// GitLab, Gitea or Forgejo, whose signature (or token) is its only
// authentication. A signed push of the source's branch fetches it at once.
func (s *Server) gitWebhook(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	if s.deps.Git == nil {
		return notFound("no git source is configured")
	}
	body, err := gitsync.ReadBody(r.Body, MaxWebhookBytes)
	var tooLarge *http.MaxBytesError
	if errors.Is(err, gitsync.ErrTooLarge) || errors.As(err, &tooLarge) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: "the webhook body is larger than 1 MiB"}
	}
	if err != nil {
		return badInput("body", "reading the webhook body: %v", err)
	}
	push, err := s.deps.Git.Webhook(name, r.Header, body)
	switch {
	case err == nil:
		writeJSON(w, http.StatusAccepted, map[string]any{"result": "fetching", "source": name, "commit": push.After})
		return nil
	case errors.Is(err, core.ErrNotFound):
		return notFound("no git source %q", name)
	case errors.Is(err, gitsync.ErrNoSecret):
		return &Error{Status: http.StatusForbidden, Code: "no_secret", Message: "git source " + name + " has no WEBHOOK_SECRET: its webhooks are refused"}
	case errors.Is(err, gitsync.ErrSignature), errors.Is(err, gitsync.ErrUnknownProvider):
		s.log.Warn("git webhook refused", "source", name, "error", err)
		return &Error{Status: http.StatusUnauthorized, Code: "bad_signature", Message: err.Error()}
	case errors.Is(err, gitsync.ErrPayload):
		return badInput("body", "%v", err)
	case errors.Is(err, gitsync.ErrNotPush), errors.Is(err, sources.ErrOtherRef):
		writeJSON(w, http.StatusAccepted, map[string]any{"result": "ignored", "source": name, "reason": err.Error()})
		return nil
	}
	return err
}

// gitCollector reads the git sources' drift and sync counts at scrape time.
type gitCollector struct {
	mu  sync.Mutex
	git GitSources
}

var (
	descGitDrift = prometheus.NewDesc("tidewatch_git_drift", "1 when a git source's fetched commit is not the one deployed, by source.", []string{"source"}, nil)
	descGitSyncs = prometheus.NewDesc("tidewatch_git_syncs_total", "Syncs of a git source since start, by source and result (in-sync, deployed, failed, skipped, drift, error).", []string{"source", "result"}, nil)
)

func (c *gitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descGitDrift
	ch <- descGitSyncs
}

func (c *gitCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	g := c.git
	c.mu.Unlock()
	if g == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	sts, err := g.Status(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descGitDrift, err)
		return
	}
	for _, st := range sts {
		drift := 0.0
		if !st.InSync {
			drift = 1
		}
		ch <- prometheus.MustNewConstMetric(descGitDrift, prometheus.GaugeValue, drift, st.Name)
		for _, result := range sources.Results {
			ch <- prometheus.MustNewConstMetric(descGitSyncs, prometheus.CounterValue, float64(st.Syncs[result]), st.Name, result)
		}
	}
}
