package web

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// ReadyTimeout bounds each readiness check.
const ReadyTimeout = 3 * time.Second

// watchers answers GET /api/watchers.
func (s *Server) watchers(w http.ResponseWriter, r *http.Request) error {
	ws := s.deps.Watcher.Status()
	if ws == nil {
		ws = []WatcherStatus{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"watchers": ws})
	return nil
}

// registries answers GET /api/registries.
func (s *Server) registries(w http.ResponseWriter, r *http.Request) error {
	var rs []core.RegistryStatus
	if s.deps.Registries != nil {
		rs = s.deps.Registries.Status()
	}
	if rs == nil {
		rs = []core.RegistryStatus{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"registries": rs})
	return nil
}

// healthz answers GET /healthz: the process serves.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers GET /readyz: every readiness check passes (200), or not
// (503). Only a caller with every right (or any caller while auth is off,
// which is on loopback only) is told which checks pass and fail: their
// names say which engines the daemon drives. Errors are only logged.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	details := !s.auth.enabled()
	if !details && r.Header.Get("Authorization") != "" {
		p, err := s.identify(r) // a probe with wrong credentials gets the short answer, not 401
		details = err == nil && p.Kind != "" && !p.Scoped()
	}
	names := make([]string, 0, len(s.deps.Ready))
	for n := range s.deps.Ready {
		names = append(names, n)
	}
	slices.Sort(names)
	checks := map[string]string{}
	status := http.StatusOK
	for _, n := range names {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		err := s.deps.Ready[n](ctx)
		cancel()
		if err != nil {
			s.log.Warn("not ready", "check", n, "error", err)
			checks[n] = "failing"
			status = http.StatusServiceUnavailable
			continue
		}
		checks[n] = "ok"
	}
	word := "ready"
	if status != http.StatusOK {
		word = "not ready"
	}
	if !details {
		writeJSON(w, status, map[string]any{"status": word})
		return nil
	}
	writeJSON(w, status, map[string]any{"status": word, "checks": checks})
	return nil
}
