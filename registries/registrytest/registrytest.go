// Package registrytest runs an in-process OCI registry for tests: the
// in-memory registry of go-containerregistry (pkg/registry) behind an
// httptest.Server on 127.0.0.1, wrapped in middleware that behaves like the
// registries tidewatch meets in the field. It can demand bearer tokens from a
// token endpoint, cap tag-list pages and send `Link` headers, add latency,
// fail with 429 (and Retry-After) or 5xx on demand or by a deterministic
// fault plan, serve a limited number of requests at once (so latency rises
// under load), and omit Docker-Content-Digest on HEAD. It counts every
// request by kind and by repository, and the most requests it served at once.
//
// Images are pushed with Push, PushIndex and Tag through a second, private
// listener on the same storage, so test set-up is neither authenticated,
// failed nor counted.
package registrytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Service is the service name the token endpoint and its challenges carry.
const Service = "registrytest"

// Option configures a Server.
type Option func(*config)

type config struct {
	bearer    bool
	user      string
	pass      string
	ttl       time.Duration
	pageSize  int
	latency   time.Duration
	noDigest  bool
	maxURILen int
	rateLimit int
	capacity  int
	faults    Faults
}

// WithBearerAuth makes the registry demand bearer tokens, the way Docker Hub
// and GHCR do: /v2/ answers 401 with `WWW-Authenticate: Bearer
// realm="<URL>/token",service="registrytest"`, and /token issues tokens for
// the scopes asked. When user is not empty the token endpoint checks basic
// credentials user:pass; when it is empty anyone gets a token. Requests with a
// missing, expired or wrong-scope token get 401 with a challenge naming the
// scope they need. Without this option the registry is open.
func WithBearerAuth(user, pass string) Option {
	return func(c *config) { c.bearer, c.user, c.pass = true, user, pass }
}

// WithTokenTTL sets how long an issued token is valid; default 300s. It is
// returned as expires_in, in whole seconds (at least 1).
func WithTokenTTL(d time.Duration) Option {
	return func(c *config) { c.ttl = d }
}

// WithPageSize caps tag-list pages at n tags, ignoring a larger n from the
// client, and sends `Link: </v2/<repo>/tags/list?n=<n>&last=<tag>>; rel="next"`
// while tags remain (as Docker Hub and GHCR do). Default: no cap, but a
// client's own n is honoured with a Link header all the same.
func WithPageSize(n int) Option {
	return func(c *config) { c.pageSize = n }
}

// WithLatency adds d to every request before it is handled (the wait ends
// early when the client goes away). Default none.
func WithLatency(d time.Duration) Option {
	return func(c *config) { c.latency = d }
}

// WithoutDigestHeader omits Docker-Content-Digest from manifest HEAD
// responses, as some old registries do. Default: the header is sent.
func WithoutDigestHeader() Option {
	return func(c *config) { c.noDigest = true }
}

// WithMaxURILength answers 414 URI Too Long to any request whose request URI
// is longer than n bytes, as front-end proxies of real registries do.
// Default: no limit.
func WithMaxURILength(n int) Option {
	return func(c *config) { c.maxURILen = n }
}

// WithRateLimit sends Docker Hub's rate-limit headers on every response,
// `ratelimit-limit: <limit>;w=21600` and `ratelimit-remaining: <n>;w=21600`,
// where n starts at limit and drops by one with each manifest GET (a pull);
// HEADs and everything else are free, as on Docker Hub. Default: no headers.
func WithRateLimit(limit int) Option {
	return func(c *config) { c.rateLimit = limit }
}

// WithCapacity makes the registry handle at most n requests at once; the
// others wait their turn before their latency starts, as on a registry whose
// workers are all busy: the more requests a client sends at once beyond n,
// the longer each takes. Default: no limit.
func WithCapacity(n int) Option {
	return func(c *config) { c.capacity = n }
}

// Faults is a plan of failures injected into requests. It is deterministic:
// the same plan fails the same requests whatever the order or concurrency
// they arrive in, because each decision depends only on the seed, the
// request (method and URI) and how many times that request was made before.
type Faults struct {
	// Seed chooses which requests fail.
	Seed uint64
	// ErrorRate is the share of requests (0 to 1) answered ErrorStatus.
	ErrorRate float64
	// ErrorStatus is the status of those answers; default 503.
	ErrorStatus int
	// ResetRate is the share of requests whose connection is closed without
	// an answer.
	ResetRate float64
	// SlowRate is the share of requests delayed by Slow more (on top of any
	// latency), to make clients time out.
	SlowRate float64
	Slow     time.Duration
	// ThrottleEvery answers every n-th request the server receives (counted
	// from 1 in arrival order, since it started or since ResetCounts) with
	// 429 TOOMANYREQUESTS; 0: never. Throttled requests draw no other fault.
	ThrottleEvery int
	// RetryAfter is the Retry-After value sent with those 429s ("1"); empty:
	// none.
	RetryAfter string
}

// fault is what a plan does to one request.
type fault int

const (
	faultNone fault = iota
	faultError
	faultReset
	faultSlow
)

// decide returns what the plan does to the k-th time (from 0) that method
// and requestURI arrive without being throttled.
func (f Faults) decide(method, requestURI string, k int) fault {
	u := f.draw(method, requestURI, k)
	switch {
	case u < f.ErrorRate:
		return faultError
	case u < f.ErrorRate+f.ResetRate:
		return faultReset
	case u < f.ErrorRate+f.ResetRate+f.SlowRate:
		return faultSlow
	}
	return faultNone
}

// Fails reports whether the plan fails (with ErrorStatus or a reset) the
// k-th time (from 0) that a request for method and requestURI
// ("/v2/app/tags/list?n=1000") arrives and is not throttled. Tests use it to
// know what a seed does, for example that it fails a repository's first
// three tag listings.
func (f Faults) Fails(method, requestURI string, k int) bool {
	d := f.decide(method, requestURI, k)
	return d == faultError || d == faultReset
}

// draw returns a number in [0, 1) that depends only on its arguments.
func (f Faults) draw(method, requestURI string, k int) float64 {
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], f.Seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(k))
	h.Write(b[:])
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(requestURI))
	x := h.Sum64()
	// splitmix64's finalizer, so that close inputs give unrelated draws.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// WithFaults injects the failures f plans into every counted request, after
// FailAlways and FailNext had their say. Default: none.
func WithFaults(f Faults) Option {
	return func(c *config) {
		if f.ErrorStatus == 0 {
			f.ErrorStatus = http.StatusServiceUnavailable
		}
		c.faults = f
	}
}

// Counts are the requests a Server handled, by kind. Requests that Push,
// PushIndex and Tag make are not counted.
type Counts struct {
	// Ping counts GET /v2/.
	Ping int
	// Token counts requests to the token endpoint.
	Token int
	// TagList counts tag-list pages.
	TagList int
	// ManifestHead and ManifestGet count manifest HEADs and GETs.
	ManifestHead int
	ManifestGet  int
	// BlobGet counts blob GETs (and HEADs).
	BlobGet int
	// Other counts everything else.
	Other int
	// Total counts every request.
	Total int
	// Injected counts the requests answered with an injected failure
	// (FailNext, FailAlways or WithFaults, 429s and resets included).
	Injected int
	// Throttled counts the requests answered 429.
	Throttled int
	// IgnoredRetryAfter counts the requests that arrived inside a Retry-After
	// window the server had announced with a 429, once a quarter of the
	// window had passed (earlier ones may have been sent before the client
	// read the 429).
	IgnoredRetryAfter int
	// MaxInFlight is the most requests being handled at once (latency and
	// any wait for capacity included).
	MaxInFlight int
	// PerRepo counts requests by repository name ("app", "team/app").
	PerRepo map[string]int
}

type failRule struct {
	path       string
	status     int
	left       int
	retryAfter string
}

type tokenInfo struct {
	scopes  map[string]bool // "repository:<name>:pull"
	expires time.Time
}

// Server is a running test registry.
type Server struct {
	// URL is the base URL, "http://127.0.0.1:port".
	URL string
	// Host is the registry host, "127.0.0.1:port".
	Host string

	cfg   config
	inner http.Handler
	raw   *httptest.Server // private listener for set-up, neither counted nor failed

	mu       sync.Mutex
	counts   Counts
	inFlight int
	fails    []*failRule
	always   map[string]int // repository substring → status
	tokens   map[string]tokenInfo
	issued   []string
	pulls    int
	seen     map[string]int // method and URI → times planned faults were drawn for it
	slots    chan struct{}  // WithCapacity
	waitFrom time.Time      // the last Retry-After window announced with a 429
	waitTill time.Time
}

// New starts a registry on 127.0.0.1 and stops it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config{ttl: 300 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{
		cfg:    cfg,
		inner:  registry.New(registry.Logger(log.New(io.Discard, "", 0))),
		always: map[string]int{},
		tokens: map[string]tokenInfo{},
		seen:   map[string]int{},
	}
	if cfg.capacity > 0 {
		s.slots = make(chan struct{}, cfg.capacity)
	}
	s.counts.PerRepo = map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	s.raw = httptest.NewServer(s.inner)
	t.Cleanup(srv.Close)
	t.Cleanup(s.raw.Close)
	s.URL = srv.URL
	s.Host = strings.TrimPrefix(srv.URL, "http://")
	return s
}

// FailNext makes the next n requests whose path contains path ("" matches
// any) answer status. A 429 or 503 carries `Retry-After: retryAfter` when
// retryAfter is not empty.
func (s *Server) FailNext(path string, status, n int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, &failRule{path: path, status: status, left: n, retryAfter: retryAfter})
}

// FailAlways makes every request for a repository whose name contains
// repoSubstring answer status, until the test ends.
func (s *Server) FailAlways(repoSubstring string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.always[repoSubstring] = status
}

// ExpireTokens makes every token issued so far invalid, as a token server
// that revokes tokens early would.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.tokens {
		v.expires = time.Time{}
		s.tokens[k] = v
	}
}

// IssuedTokens returns every token the token endpoint issued, for tests
// that check that tokens never leak.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// Counts returns a copy of the request counts.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	c.PerRepo = make(map[string]int, len(s.counts.PerRepo))
	for k, v := range s.counts.PerRepo {
		c.PerRepo[k] = v
	}
	return c
}

// ResetCounts sets every count to zero, MaxInFlight included.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = Counts{PerRepo: map[string]int{}}
}

// Push pushes a small random image (one layer) to repo:tag and returns its
// manifest digest. It bypasses auth, failures and counting.
func (s *Server) Push(t testing.TB, repo, tag string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatalf("random.Image: %v", err)
	}
	ref := s.rawTag(t, repo, tag)
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("digest of pushed image: %v", err)
	}
	return d.String()
}

// PushCreated is Push of an image whose config says it was created at
// created (Push's images have no creation time).
func (s *Server) PushCreated(t testing.TB, repo, tag string, created time.Time) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatalf("random.Image: %v", err)
	}
	if img, err = mutate.CreatedAt(img, v1.Time{Time: created}); err != nil {
		t.Fatalf("setting the creation time: %v", err)
	}
	ref := s.rawTag(t, repo, tag)
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("digest of pushed image: %v", err)
	}
	return d.String()
}

// PushIndex pushes a multi-arch image index to repo:tag with one small
// random image per platform ("linux/amd64", "linux/arm/v7"), and returns the
// index digest and the digest of each child, keyed by platform as given.
func (s *Server) PushIndex(t testing.TB, repo, tag string, platforms ...string) (indexDigest string, childDigests map[string]string) {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	childDigests = map[string]string{}
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		parts := strings.Split(p, "/")
		if len(parts) < 2 {
			t.Fatalf("PushIndex: platform %q is not os/arch[/variant]", p)
		}
		plat := &v1.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) > 2 {
			plat.Variant = parts[2]
		}
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatalf("random.Image: %v", err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatalf("digest: %v", err)
		}
		childDigests[p] = d.String()
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	ref := s.rawTag(t, repo, tag)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatalf("pushing index %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatalf("index digest: %v", err)
	}
	return d.String(), childDigests
}

// Tag points repo:tag at the manifest digest already in repo.
func (s *Server) Tag(t testing.TB, repo, tag, digest string) {
	t.Helper()
	src, err := name.NewDigest(s.raw.Listener.Addr().String() + "/" + repo + "@" + digest)
	if err != nil {
		t.Fatalf("parsing digest reference: %v", err)
	}
	desc, err := remote.Get(src)
	if err != nil {
		t.Fatalf("getting %s: %v", src, err)
	}
	if err := remote.Tag(s.rawTag(t, repo, tag), desc); err != nil {
		t.Fatalf("tagging %s:%s: %v", repo, tag, err)
	}
}

func (s *Server) rawTag(t testing.TB, repo, tag string) name.Tag {
	t.Helper()
	ref, err := name.NewTag(s.raw.Listener.Addr().String() + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatalf("parsing reference %s:%s: %v", repo, tag, err)
	}
	return ref
}

// kind names the request kinds counted.
type kind int

const (
	kindOther kind = iota
	kindPing
	kindToken
	kindTags
	kindManifest
	kindBlob
)

// classify returns the kind of request and the repository it names.
func classify(path string) (kind, string) {
	switch {
	case path == "/v2/" || path == "/v2":
		return kindPing, ""
	case path == "/token":
		return kindToken, ""
	case !strings.HasPrefix(path, "/v2/"):
		return kindOther, ""
	}
	rest := strings.TrimPrefix(path, "/v2/")
	if repo, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return kindTags, repo
	}
	for _, m := range []struct {
		sep string
		k   kind
	}{{"/manifests/", kindManifest}, {"/blobs/", kindBlob}} {
		if i := strings.LastIndex(rest, m.sep); i > 0 {
			return m.k, rest[:i]
		}
	}
	return kindOther, ""
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	k, repo := classify(r.URL.Path)
	s.mu.Lock()
	s.inFlight++
	if s.inFlight > s.counts.MaxInFlight {
		s.counts.MaxInFlight = s.inFlight
	}
	s.count(k, repo, r.Method)
	seq := s.counts.Total
	if now := time.Now(); now.After(s.waitFrom.Add(s.waitTill.Sub(s.waitFrom)/4)) && now.Before(s.waitTill) {
		s.counts.IgnoredRetryAfter++
	}
	if s.cfg.rateLimit > 0 {
		if k == kindManifest && r.Method == http.MethodGet {
			s.pulls++
		}
		w.Header().Set("ratelimit-limit", fmt.Sprintf("%d;w=21600", s.cfg.rateLimit))
		w.Header().Set("ratelimit-remaining", fmt.Sprintf("%d;w=21600", max(s.cfg.rateLimit-s.pulls, 0)))
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()

	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		case <-r.Context().Done():
			return
		}
	}
	status, retryAfter, planned := s.failure(r, repo, seq)
	delay := s.cfg.latency
	if planned == faultSlow {
		delay += s.cfg.faults.Slow
	}
	if delay > 0 {
		if err := sleep(r.Context(), delay); err != nil {
			return
		}
	}
	if s.cfg.maxURILen > 0 && len(r.RequestURI) > s.cfg.maxURILen {
		writeError(w, http.StatusRequestURITooLong, "URI_TOO_LONG", "request URI too long", "")
		return
	}
	if planned == faultReset {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	if status != 0 {
		code := "UNAVAILABLE"
		if status == http.StatusTooManyRequests {
			code = "TOOMANYREQUESTS"
		}
		writeError(w, status, code, "injected failure", retryAfter)
		return
	}
	if k == kindToken {
		s.serveToken(w, r)
		return
	}
	if s.cfg.bearer && !s.authorized(w, r, k, repo) {
		return
	}
	switch {
	case k == kindTags && r.Method == http.MethodGet:
		s.serveTags(w, r, repo)
	case k == kindManifest && r.Method == http.MethodHead && s.cfg.noDigest:
		rec := httptest.NewRecorder()
		s.inner.ServeHTTP(rec, r)
		rec.Header().Del("Docker-Content-Digest")
		copyResponse(w, rec)
	default:
		s.inner.ServeHTTP(w, r)
	}
}

// count records one request; s.mu is held.
func (s *Server) count(k kind, repo, method string) {
	s.counts.Total++
	switch k {
	case kindPing:
		s.counts.Ping++
	case kindToken:
		s.counts.Token++
	case kindTags:
		s.counts.TagList++
	case kindManifest:
		if method == http.MethodHead {
			s.counts.ManifestHead++
		} else if method == http.MethodGet {
			s.counts.ManifestGet++
		} else {
			s.counts.Other++
		}
	case kindBlob:
		s.counts.BlobGet++
	default:
		s.counts.Other++
	}
	if repo != "" {
		s.counts.PerRepo[repo]++
	}
}

// failure returns the status (and Retry-After) of an injected failure for
// the seq-th request, or what the fault plan does to it; status 0 means none.
func (s *Server) failure(r *http.Request, repo string, seq int) (status int, retryAfter string, planned fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		if status != 0 || planned == faultReset {
			s.counts.Injected++
		}
		if status == http.StatusTooManyRequests {
			s.counts.Throttled++
			if secs, err := strconv.Atoi(retryAfter); err == nil && secs > 0 {
				now := time.Now()
				if till := now.Add(time.Duration(secs) * time.Second); till.After(s.waitTill) {
					s.waitFrom, s.waitTill = now, till
				}
			}
		}
	}()
	if repo != "" {
		for sub, st := range s.always {
			if strings.Contains(repo, sub) {
				return st, "", faultNone
			}
		}
	}
	for i, f := range s.fails {
		if f.left > 0 && (f.path == "" || strings.Contains(r.URL.Path, f.path)) {
			f.left--
			if f.left == 0 {
				s.fails = append(s.fails[:i], s.fails[i+1:]...)
			}
			return f.status, f.retryAfter, faultNone
		}
	}
	fp := s.cfg.faults
	if fp.ThrottleEvery > 0 && seq%fp.ThrottleEvery == 0 {
		return http.StatusTooManyRequests, fp.RetryAfter, faultNone
	}
	if fp.ErrorRate <= 0 && fp.ResetRate <= 0 && fp.SlowRate <= 0 {
		return 0, "", faultNone
	}
	key := r.Method + " " + r.URL.RequestURI()
	k := s.seen[key]
	s.seen[key] = k + 1
	switch d := fp.decide(r.Method, r.URL.RequestURI(), k); d {
	case faultError:
		ra := ""
		if fp.ErrorStatus == http.StatusTooManyRequests {
			ra = fp.RetryAfter
		}
		return fp.ErrorStatus, ra, faultNone
	default:
		return 0, "", d
	}
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.bearer || r.Method != http.MethodGet {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no token endpoint here", "")
		return
	}
	if s.cfg.user != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.cfg.user || p != s.cfg.pass {
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required", "")
			return
		}
	}
	granted := map[string]bool{}
	for _, sc := range r.URL.Query()["scope"] {
		for _, one := range strings.Fields(sc) {
			granted[one] = true
		}
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error(), "")
		return
	}
	tok := "rt-" + hex.EncodeToString(b)
	now := time.Now()
	s.mu.Lock()
	s.tokens[tok] = tokenInfo{scopes: granted, expires: now.Add(s.cfg.ttl)}
	s.issued = append(s.issued, tok)
	s.mu.Unlock()
	secs := int(s.cfg.ttl / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":        tok,
		"access_token": tok,
		"expires_in":   secs,
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
}

// authorized checks the bearer token of a registry request and answers 401
// with a challenge when it does not do.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, k kind, repo string) bool {
	scope := ""
	if repo != "" {
		scope = "repository:" + repo + ":pull"
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	info, ok := s.tokens[tok]
	s.mu.Unlock()
	if ok && time.Now().Before(info.expires) && (scope == "" || hasPull(info.scopes, repo)) {
		return true
	}
	ch := fmt.Sprintf(`Bearer realm="%s/token",service="%s"`, s.URL, Service)
	if scope != "" {
		ch += fmt.Sprintf(`,scope="%s"`, scope)
	}
	w.Header().Set("WWW-Authenticate", ch)
	writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required", "")
	return false
}

// hasPull reports whether the granted scopes allow pulling repo.
func hasPull(granted map[string]bool, repo string) bool {
	for sc := range granted {
		rest, ok := strings.CutPrefix(sc, "repository:"+repo+":")
		if !ok {
			continue
		}
		for _, a := range strings.Split(rest, ",") {
			if a == "pull" || a == "*" {
				return true
			}
		}
	}
	return false
}

// serveTags lists tags itself, in lexical order, with `n`, `last` and `Link`
// as the distribution spec says (the wrapped registry sends no Link header).
func (s *Server) serveTags(w http.ResponseWriter, r *http.Request, repo string) {
	inner := r.Clone(r.Context())
	inner.URL.RawQuery = ""
	inner.RequestURI = ""
	rec := httptest.NewRecorder()
	s.inner.ServeHTTP(rec, inner)
	if rec.Code != http.StatusOK {
		copyResponse(w, rec)
		return
	}
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error(), "")
		return
	}
	tags := list.Tags
	sort.Strings(tags)
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		i := sort.SearchStrings(tags, last)
		for i < len(tags) && tags[i] <= last {
			i++
		}
		tags = tags[i:]
	}
	n := s.cfg.pageSize
	if ns := q.Get("n"); ns != "" {
		cn, err := strconv.Atoi(ns)
		if err != nil || cn < 0 {
			writeError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "invalid n", "")
			return
		}
		if n == 0 || cn < n {
			n = cn
		}
	}
	if q.Has("n") || n > 0 {
		if n < len(tags) {
			tags = tags[:n]
			if n > 0 {
				next := url.Values{"n": {strconv.Itoa(n)}, "last": {tags[n-1]}}
				w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?%s>; rel="next"`, repo, next.Encode()))
			}
		}
	}
	if tags == nil {
		tags = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"name": repo, "tags": tags})
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = io.Copy(w, bytes.NewReader(rec.Body.Bytes()))
}

func writeError(w http.ResponseWriter, status int, code, msg, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": code, "message": msg}},
	})
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
