package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Versioned is a store that counts its writes (*store.Store): a list read at
// one version is the same list until the version moves.
type Versioned interface {
	Version() uint64
}

// cacheTTL bounds how long a cached list is served even while the store's
// version does not move: snoozes end with time, not with a write.
const cacheTTL = 5 * time.Second

// listCache keeps the encoded answers of the hot list endpoints (pending
// updates, containers) by URL, so that a hundred dashboards polling them cost
// one query and one encoding per store change, not one each.
type listCache struct {
	mu        sync.Mutex
	entries   map[string]cached
	computing map[string]chan struct{} // closed when the key's computation ends
}

type cached struct {
	version uint64
	at      time.Time
	body    []byte
	gzipped []byte // body, gzip-compressed once for every client that accepts it
	etag    string
}

// maxCachedLists bounds the cache: lists are keyed by their query string.
const maxCachedLists = 256

// serveList answers r with the JSON of compute, cached while the store's
// version holds (when the store is Versioned) and for at most cacheTTL, with
// an ETag so that a client holding the list gets 304.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, compute func() (any, error)) error {
	vs, versioned := s.deps.Containers.(Versioned)
	key := r.URL.Path + "?" + r.URL.RawQuery
	var version uint64
	if versioned {
		version = vs.Version()
		for {
			s.cache.mu.Lock()
			c, ok := s.cache.entries[key]
			fresh := ok && c.version == version && time.Since(c.at) < cacheTTL
			wait, busy := s.cache.computing[key]
			if fresh || (busy && ok && c.version == version) {
				// Fresh, or being recomputed only because it aged: serve it.
				s.cache.mu.Unlock()
				writeCached(w, r, c)
				return nil
			}
			if !busy {
				if s.cache.computing == nil {
					s.cache.computing = map[string]chan struct{}{}
				}
				done := make(chan struct{})
				s.cache.computing[key] = done
				s.cache.mu.Unlock()
				defer func() {
					s.cache.mu.Lock()
					delete(s.cache.computing, key)
					s.cache.mu.Unlock()
					close(done)
				}()
				break
			}
			s.cache.mu.Unlock()
			// Another request computes this list: wait for it, not the store.
			select {
			case <-wait:
			case <-r.Context().Done():
				return r.Context().Err()
			}
		}
	}
	v, err := compute()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return err
	}
	sum := sha256.Sum256(buf.Bytes())
	c := cached{version: version, at: time.Now(), body: buf.Bytes(), etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	if buf.Len() >= gzipMin {
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
		zw.Write(c.body)
		zw.Close()
		c.gzipped = z.Bytes()
	}
	if versioned {
		s.cache.mu.Lock()
		if s.cache.entries == nil || len(s.cache.entries) >= maxCachedLists {
			s.cache.entries = map[string]cached{}
		}
		s.cache.entries[key] = c
		s.cache.mu.Unlock()
	}
	writeCached(w, r, c)
	return nil
}

// gzipMin is the size from which a list is also kept gzip-compressed.
const gzipMin = 1024

func writeCached(w http.ResponseWriter, r *http.Request, c cached) {
	h := w.Header()
	h.Set("ETag", c.etag)
	h.Add("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == c.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	body := c.body
	if c.gzipped != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = c.gzipped
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
