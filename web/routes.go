package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// routes is the whole route tree.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	// Every request: an ID, panic recovery, a log line and a count, security
	// headers, a bounded body, without auth only for this machine (no DNS
	// rebinding, no proxy), and no state change from another origin.
	r.Use(middleware.RequestID, requestID, s.observe, s.recoverer, securityHeaders, limitBody, s.private, s.crossOrigin)
	r.NotFound(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return notFound("no route %s %s", r.Method, r.URL.Path)
	}))
	r.MethodNotAllowed(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: r.Method + " is not allowed on " + r.URL.Path}
	}))

	// Probes: open to all, saying nothing but up or not.
	r.Get("/healthz", s.handle(s.healthz))
	r.Get("/readyz", s.handle(s.readyz))

	// The UI's static files: open to all (they hold no data; the API does).
	r.Get("/", s.handle(s.uiFile))
	r.Get("/*", s.handle(s.uiFile))

	// Push webhooks of git sources: their signature is their authentication.
	r.Post("/api/git/{name}/webhook", s.handle(s.gitWebhook))

	// Everything else needs credentials when auth is on.
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate, noStore)

		// Prometheus metrics.
		r.With(s.fullRights).Method(http.MethodGet, "/metrics", s.metrics.handler())

		r.Route("/api", func(r chi.Router) {
			// Push-based deploys from CI: the only route open to a token
			// scoped to deploying, for its projects and services.
			r.Post("/deploy", s.handle(s.deploy))

			// The rest needs every right: a user or an unscoped token.
			r.Group(func(r chi.Router) {
				r.Use(s.fullRights)

				// The API's own description.
				r.Get("/openapi.json", s.handle(s.openAPI))

				// Containers, and watching them now.
				r.Get("/containers", s.handle(s.listContainers))
				r.Get("/containers/{host}/{name}", s.handle(s.getContainer))
				r.Post("/containers/{host}/{name}/watch", s.handle(s.watchContainer))
				r.Post("/watch", s.handle(s.watchAll))

				// Updates: list, apply through a trigger (one, or a filtered set), dismiss, snooze.
				r.Get("/updates", s.handle(s.listUpdates))
				r.Post("/updates/apply", s.handle(s.applyUpdates))
				r.Post("/updates/{id}/apply", s.handle(s.applyUpdate))
				r.Post("/updates/{id}/dismiss", s.handle(s.dismissUpdate))
				r.Post("/updates/{id}/snooze", s.handle(s.snoozeUpdate))

				// The outbox and the audit trail.
				r.Get("/deliveries", s.handle(s.listDeliveries))
				r.Get("/history", s.handle(s.history))

				// Triggers, watchers and registries.
				r.Get("/triggers", s.handle(s.listTriggers))
				r.Post("/triggers/{name}/test", s.handle(s.testTrigger))
				r.Get("/watchers", s.handle(s.watchers))
				r.Get("/registries", s.handle(s.registries))
				r.Get("/git", s.handle(s.gitSources))

				// Live events for the UI (Server-Sent Events).
				r.Get("/events", s.handle(s.events))
			})
		})
	})
	return r
}
