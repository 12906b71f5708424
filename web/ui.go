package web

import (
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// noUI is served at / when the server has no UI files.
const noUI = `<!doctype html><meta charset="utf-8"><title>tidewatch</title><p>The web UI is not built into this server; the API is at <a href="/api/openapi.json">/api/openapi.json</a>.</p>`

// uiFile serves the UI's static files: "/" is index.html. The UI needs no
// credentials to load; what it shows comes from the API, which does.
func (s *Server) uiFile(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	if s.ui == nil {
		if name != "index.html" {
			return notFound("no file %q", name)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(noUI))
		return nil
	}
	b, err := fs.ReadFile(s.ui, name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
		return notFound("no file %q", name)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) { // a folder
			return notFound("no file %q", name)
		}
		return err
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
	return nil
}
