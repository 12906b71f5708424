package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestListCache: the pending list is served from its cache with an ETag
// (304 for a client that holds it), gzipped for a client that accepts it,
// and changes as soon as the store is written.
func TestListCache(t *testing.T) {
	e := newEnv(t)
	first := e.do(t, http.MethodGet, "/api/updates", "")
	etag := first.Header().Get("ETag")
	if first.Code != http.StatusOK || etag == "" {
		t.Fatalf("GET /api/updates: %d, ETag %q", first.Code, etag)
	}
	if again := e.do(t, http.MethodGet, "/api/updates", "", "If-None-Match", etag); again.Code != http.StatusNotModified {
		t.Errorf("GET with the ETag: %d, want 304", again.Code)
	}

	zipped := e.do(t, http.MethodGet, "/api/updates", "", "Accept-Encoding", "gzip")
	if zipped.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(zipped.Body)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if !bytes.Equal(plain, first.Body.Bytes()) {
			t.Errorf("gzipped list differs from the plain one")
		}
	} else if first.Body.Len() >= gzipMin {
		t.Errorf("a %d-byte list was not gzipped for a client that accepts gzip", first.Body.Len())
	}

	if err := e.st.Dismiss(context.Background(), e.updateID, time.Now()); err != nil {
		t.Fatal(err)
	}
	after := e.do(t, http.MethodGet, "/api/updates", "", "If-None-Match", etag)
	if after.Code != http.StatusOK || bytes.Equal(after.Body.Bytes(), first.Body.Bytes()) {
		t.Errorf("after a write: %d with the same body, want a new list", after.Code)
	}
}
