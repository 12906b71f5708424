package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/tidewatch/tidewatch/core"
)

// ErrConflict is wrapped by errors of a request that clashes with the state
// (an update already being applied, a rollout in progress): 409.
var ErrConflict = errors.New("conflict")

// Error is an error with its HTTP status and a stable code. Its message is
// shown to the client, so it must hold nothing secret.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is a stable, machine-readable code ("bad_request", "not_found").
	Code string
	// Field names the parameter or body field at fault, for bad input.
	Field string
	// Message says what is wrong.
	Message string
	// Extra is added to the body beside "error" (a deploy's result).
	Extra map[string]any
	// RetryAfter, when positive, is sent as the Retry-After header, in seconds.
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// badInput is a 400 naming field.
func badInput(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Field: field, Message: fmt.Sprintf(format, args...)}
}

// notFound is a 404.
func notFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf(format, args...)}
}

// conflict is a 409.
func conflict(format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON body of every error.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts h: a returned error becomes a JSON error response.
func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// writeError maps err to a status and writes the error body. Errors that are
// not an *Error, core.ErrNotFound or ErrConflict are logged and answered 500
// without their text.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, core.ErrNotFound):
		e = notFound("%s", err.Error())
	case errors.Is(err, ErrConflict):
		e = conflict("%s", err.Error())
	case errors.As(err, new(*core.RefusalError)):
		e = &Error{Status: http.StatusForbidden, Code: "refused", Message: err.Error()}
	case errors.Is(err, r.Context().Err()) && r.Context().Err() != nil:
		return // the client went away
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", middleware.GetReqID(r.Context()), "error", err)
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; see the server log, request " + middleware.GetReqID(r.Context())}
	}
	body := map[string]any{"error": errorDetail{Code: e.Code, Message: e.Error(), Field: e.Field}}
	for k, v := range e.Extra {
		body[k] = v
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="tidewatch", charset="UTF-8"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, body)
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // an error here is a client gone away
}
