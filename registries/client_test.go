package registries

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/registries/registrytest"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newClient returns a Client with test-friendly defaults (no keychain, fast
// backoff) and the buffer its debug log goes to.
func newClient(t *testing.T, opts Options) (*Client, *syncBuffer) {
	t.Helper()
	if opts.Keychain == nil {
		opts.Keychain = authn.NewMultiKeychain()
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = 5 * time.Millisecond
	}
	buf := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return New(opts, log), buf
}

func imageRef(t *testing.T, s *registrytest.Server, repo, tag string) core.ImageRef {
	t.Helper()
	ref, err := core.ParseImageRef(s.Host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatalf("ParseImageRef: %v", err)
	}
	return ref
}

// pushRepos pushes one tag to each of n repositories and returns their refs.
func pushRepos(t *testing.T, s *registrytest.Server, n int) []core.ImageRef {
	t.Helper()
	refs := make([]core.ImageRef, n)
	for i := range refs {
		repo := fmt.Sprintf("team/app-%03d", i)
		s.Push(t, repo, "1.0")
		refs[i] = imageRef(t, s, repo, "1.0")
	}
	return refs
}

// tagsAll calls Tags for every ref at once and fails on any error.
func tagsAll(t *testing.T, c *Client, refs []core.ImageRef) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(refs))
	for _, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tags, err := c.Tags(context.Background(), ref)
			if err == nil && len(tags) == 0 {
				err = fmt.Errorf("Tags(%s) = no tags", ref)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func status(t *testing.T, c *Client, host string) core.RegistryStatus {
	t.Helper()
	for _, s := range c.Status() {
		if s.Registry == host {
			return s
		}
	}
	t.Fatalf("Status() has no entry for %s", host)
	return core.RegistryStatus{}
}

func TestTokenReusedAcrossRunsAndRefreshedAfterExpiry(t *testing.T) {
	const m = 20
	s := registrytest.New(t, registrytest.WithBearerAuth("", ""), registrytest.WithTokenTTL(300*time.Second))
	refs := pushRepos(t, s, m)
	c, _ := newClient(t, Options{})
	now := time.Now()
	c.now = func() time.Time { return now }

	type want struct{ ping, token, tags, total int }
	run := func(name string, w want) {
		t.Helper()
		s.ResetCounts()
		c.Prepare(refs)
		tagsAll(t, c, refs)
		got := s.Counts()
		if got.Ping != w.ping || got.Token != w.token || got.TagList != w.tags || got.Total != w.total {
			t.Errorf("%s: counts ping=%d token=%d tags=%d total=%d, want %d %d %d %d",
				name, got.Ping, got.Token, got.TagList, got.Total, w.ping, w.token, w.tags, w.total)
		}
	}
	run("cold run", want{ping: 1, token: 1, tags: m, total: m + 2})
	run("warm run", want{ping: 0, token: 0, tags: m, total: m})
	now = now.Add(271 * time.Second) // past expires_in minus the early margin
	run("after expiry", want{ping: 0, token: 1, tags: m, total: m + 1})

	st := status(t, c, s.Host)
	if st.TokenRequests != 2 || st.Pings != 1 {
		t.Errorf("Status: TokenRequests=%d Pings=%d, want 2 and 1", st.TokenRequests, st.Pings)
	}
}

func TestShortTokenTTL(t *testing.T) {
	s := registrytest.New(t, registrytest.WithBearerAuth("", ""), registrytest.WithTokenTTL(time.Second))
	refs := pushRepos(t, s, 3)
	c, _ := newClient(t, Options{})
	c.Prepare(refs)
	tagsAll(t, c, refs)
	time.Sleep(time.Second) // let the real 1s token expire on both sides
	s.ResetCounts()
	tagsAll(t, c, refs)
	if got := s.Counts(); got.Token != 1 || got.Total != 4 {
		t.Errorf("after a 1s token expired: token=%d total=%d, want 1 and 4 (no 401s)", got.Token, got.Total)
	}
}

func TestRevokedTokenRecovers(t *testing.T) {
	s := registrytest.New(t, registrytest.WithBearerAuth("", ""))
	refs := pushRepos(t, s, 5)
	c, _ := newClient(t, Options{})
	c.Prepare(refs)
	tagsAll(t, c, refs)
	s.ExpireTokens()
	s.ResetCounts()
	for _, ref := range refs { // one after the other: one 401, then the new token serves all
		if _, err := c.Tags(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Counts(); got.Token != 1 || got.TagList != 6 {
		t.Errorf("after revocation: token=%d tags=%d, want 1 token and 6 tag lists (one 401)", got.Token, got.TagList)
	}
}

func TestPrepareMoreScopesRefetchesOnce(t *testing.T) {
	s := registrytest.New(t, registrytest.WithBearerAuth("", ""))
	refs := pushRepos(t, s, 10)
	c, _ := newClient(t, Options{})
	c.Prepare(refs[:5])
	tagsAll(t, c, refs[:5])
	s.ResetCounts()
	c.Prepare(refs)
	tagsAll(t, c, refs)
	if got := s.Counts(); got.Token != 1 || got.Total != 11 {
		t.Errorf("after Prepare added 5 repositories: token=%d total=%d, want 1 and 11", got.Token, got.Total)
	}
	// A repository never prepared still works; it costs one token request.
	s.Push(t, "late", "1")
	s.ResetCounts()
	if _, err := c.Tags(context.Background(), imageRef(t, s, "late", "1")); err != nil {
		t.Fatal(err)
	}
	if got := s.Counts(); got.Token != 1 || got.Total != 2 {
		t.Errorf("unprepared repository: token=%d total=%d, want 1 and 2", got.Token, got.Total)
	}
}

func TestManyRepositoriesOneToken(t *testing.T) {
	const m = 300
	s := registrytest.New(t, registrytest.WithBearerAuth("", ""))
	refs := pushRepos(t, s, m)
	c, _ := newClient(t, Options{})
	c.Prepare(refs)
	tagsAll(t, c, refs)
	got := s.Counts()
	if got.Token != 1 || got.Ping != 1 || got.Total != m+2 {
		t.Errorf("%d repositories: token=%d ping=%d total=%d, want 1, 1, %d", m, got.Token, got.Ping, got.Total, m+2)
	}
}

func TestLongTokenRequestIsSplit(t *testing.T) {
	const m = 60
	s := registrytest.New(t, registrytest.WithBearerAuth("", ""), registrytest.WithMaxURILength(2000))
	refs := pushRepos(t, s, m)
	c, _ := newClient(t, Options{})
	c.Prepare(refs)
	tagsAll(t, c, refs)
	got := s.Counts()
	if got.Token < 3 || got.Token > 4 {
		t.Errorf("cold run with a 2000-byte URI limit: token=%d, want 3 or 4 (one or two refused, then two halves)", got.Token)
	}
	s.ResetCounts()
	tagsAll(t, c, refs)
	if got := s.Counts(); got.Token != 0 || got.Total != m {
		t.Errorf("warm run: token=%d total=%d, want 0 and %d", got.Token, got.Total, m)
	}
}

func TestTagsFollowsLink(t *testing.T) {
	s := registrytest.New(t, registrytest.WithPageSize(3))
	var want []string
	for i := range 10 {
		tag := fmt.Sprintf("1.%d.0", i)
		s.Push(t, "app", tag)
		want = append(want, tag)
	}
	sort.Strings(want)
	c, _ := newClient(t, Options{})
	got, err := c.Tags(context.Background(), imageRef(t, s, "app", "1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	if n := s.Counts().TagList; n != 4 {
		t.Errorf("tag-list requests = %d, want 4", n)
	}
}

func TestRetryAfter(t *testing.T) {
	s := registrytest.New(t)
	s.Push(t, "app", "1")
	ref := imageRef(t, s, "app", "1")
	c, _ := newClient(t, Options{})
	if _, err := c.Tags(context.Background(), ref); err != nil { // warm: ping done
		t.Fatal(err)
	}
	s.ResetCounts()
	s.FailNext("/tags/list", http.StatusTooManyRequests, 1, "1")
	start := time.Now()
	if _, err := c.Tags(context.Background(), ref); err != nil {
		t.Fatalf("Tags after one 429: %v", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("Tags after 429 with Retry-After: 1 took %v, want ≥ 1s", d)
	}
	if n := s.Counts().TagList; n != 2 {
		t.Errorf("tag-list requests = %d, want 2", n)
	}
	if st := status(t, c, s.Host); st.Retries != 1 || st.RetryAfterUntil.IsZero() {
		t.Errorf("Status: Retries=%d RetryAfterUntil=%v, want 1 and set", st.Retries, st.RetryAfterUntil)
	}
}

func TestThrottlingDoesNotUseUpAttempts(t *testing.T) {
	s := registrytest.New(t)
	s.Push(t, "app", "1")
	ref := imageRef(t, s, "app", "1")
	c, _ := newClient(t, Options{Retries: 3})
	// 503, 429, 429, 503, then an answer: two failures of three allowed,
	// the 429s with Retry-After are pacing.
	s.FailNext("/tags/list", http.StatusServiceUnavailable, 1, "")
	s.FailNext("/tags/list", http.StatusTooManyRequests, 2, "0")
	s.FailNext("/tags/list", http.StatusServiceUnavailable, 1, "")
	if _, err := c.Tags(context.Background(), ref); err != nil {
		t.Fatalf("Tags after 503, 429, 429, 503 with 3 attempts: %v", err)
	}
	if n := s.Counts().TagList; n != 5 {
		t.Errorf("tag-list requests = %d, want 5", n)
	}
	if st := status(t, c, s.Host); st.Throttled != 2 || st.Retries != 4 {
		t.Errorf("Status: Throttled %d, Retries %d; want 2 and 4", st.Throttled, st.Retries)
	}
	// Without Retry-After a 429 gives no pace to keep: it uses an attempt.
	s.FailNext("/tags/list", http.StatusTooManyRequests, 3, "")
	_, err := c.Tags(context.Background(), ref)
	if !errors.Is(err, core.ErrRateLimited) || !strings.Contains(err.Error(), "registry answered 429 3 times") {
		t.Errorf("Tags after three 429s without Retry-After = %v, want core.ErrRateLimited after 3 attempts", err)
	}
}

func TestRetryAfterForEverEndsRateLimited(t *testing.T) {
	s := registrytest.New(t)
	s.Push(t, "app", "1")
	ref := imageRef(t, s, "app", "1")
	c, _ := newClient(t, Options{MaxRetryAfter: 2 * time.Second})
	s.FailNext("/tags/list", http.StatusTooManyRequests, 1000, "1")
	start := time.Now()
	_, err := c.Tags(context.Background(), ref)
	if !errors.Is(err, core.ErrRateLimited) || !strings.Contains(err.Error(), "in all") {
		t.Fatalf("Tags against a registry that always says wait = %v, want core.ErrRateLimited naming the wait in all", err)
	}
	var re *Error
	if !errors.As(err, &re) || re.Waited < time.Second || re.Waited > 2*time.Second || re.Throttled < 2 {
		t.Errorf("error %+v: want Waited between 1s and the 2s cap, Throttled at least 2", re)
	}
	t.Log(err)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("giving up took %v, want within the 2s cap (and the next wait refused at once)", d)
	}
	if n := s.Counts().TagList; n > 3 {
		t.Errorf("tag-list requests = %d, want at most 3 (one per second of the cap, and one more)", n)
	}
}

func TestRetryAfterTooLong(t *testing.T) {
	s := registrytest.New(t)
	s.Push(t, "app", "1")
	ref := imageRef(t, s, "app", "1")
	c, _ := newClient(t, Options{MaxRetryAfter: 5 * time.Second})
	if _, err := c.Tags(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	s.ResetCounts()
	s.FailNext("/tags/list", http.StatusTooManyRequests, 1, "120")
	start := time.Now()
	_, err := c.Tags(context.Background(), ref)
	if !errors.Is(err, core.ErrRateLimited) {
		t.Fatalf("Tags with Retry-After 120 = %v, want core.ErrRateLimited", err)
	}
	var re *Error
	if !errors.As(err, &re) || re.RetryAfter != 120*time.Second {
		t.Errorf("error %v: want *Error with RetryAfter 2m0s", err)
	}
	// The registry is left alone until Retry-After ends: the next call fails
	// at once without a request.
	if _, err := c.Digest(context.Background(), ref); !errors.Is(err, core.ErrRateLimited) {
		t.Errorf("Digest during Retry-After = %v, want core.ErrRateLimited", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("failing took %v, want at once", d)
	}
	if n := s.Counts().Total; n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
}

func TestRetryAfterPastDeadline(t *testing.T) {
	s := registrytest.New(t)
	s.Push(t, "app", "1")
	ref := imageRef(t, s, "app", "1")
	c, _ := newClient(t, Options{})
	s.FailNext("/tags/list", http.StatusTooManyRequests, 1, "30")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Tags(ctx, ref)
	// Waiting 30s would pass the deadline: rate limited at once, not timed out.
	if !errors.Is(err, core.ErrRateLimited) || !strings.Contains(err.Error(), "longer than the run has left") {
		t.Errorf("Tags = %v, want core.ErrRateLimited saying the wait is longer than the run has left", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Tags took %v, want at once", d)
	}
	if n := s.Counts().Total; n != 2 {
		t.Errorf("requests = %d, want 2 (the ping and the throttled listing)", n)
	}
}

func TestRetryAfterWaitHonoursCancel(t *testing.T) {
	s := registrytest.New(t)
	s.Push(t, "app", "1")
	ref := imageRef(t, s, "app", "1")
	c, _ := newClient(t, Options{})
	s.FailNext("/tags/list", http.StatusTooManyRequests, 1, "30")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Tags(ctx, ref)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Tags = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Tags took %v after its context ended", d)
	}
}

func TestPersistentFailureIsolated(t *testing.T) {
	s := registrytest.New(t)
	s.Push(t, "broken", "1")
	s.Push(t, "app", "1")
	s.FailAlways("broken", http.StatusServiceUnavailable)
	c, buf := newClient(t, Options{})

	_, err := c.Tags(context.Background(), imageRef(t, s, "broken", "1"))
	if !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Tags(broken) = %v, want core.ErrUnavailable", err)
	}
	wantMsg := "listing tags of " + s.Host + "/broken: registry answered 503 3 times"
	if !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("error = %q, want it to contain %q", err, wantMsg)
	}
	if n := s.Counts().PerRepo["broken"]; n != 3 {
		t.Errorf("requests for broken = %d, want 3 attempts", n)
	}
	if _, err := c.Tags(context.Background(), imageRef(t, s, "app", "1")); err != nil {
		t.Errorf("Tags(app) = %v, want success", err)
	}
	st := status(t, c, s.Host)
	if st.Errors != 1 || !strings.Contains(st.LastError, "broken") || st.Retries != 2 {
		t.Errorf("Status = %+v, want Errors 1, Retries 2, LastError naming broken", st)
	}
	for _, key := range []string{"registry=" + s.Host, "repo=broken", "attempt=1", "status=503", "duration_ms="} {
		if !strings.Contains(buf.String(), key) {
			t.Errorf("retry log lacks %q:\n%s", key, buf)
		}
	}
}

func TestTransientFailureRetried(t *testing.T) {
	s := registrytest.New(t)
	s.Push(t, "app", "1")
	s.FailNext("/manifests/", http.StatusBadGateway, 2, "")
	c, _ := newClient(t, Options{})
	if _, err := c.Digest(context.Background(), imageRef(t, s, "app", "1")); err != nil {
		t.Fatalf("Digest after two 502s: %v", err)
	}
	if n := s.Counts().ManifestHead; n != 3 {
		t.Errorf("manifest HEADs = %d, want 3", n)
	}
}

func TestConnectionResetRetried(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	c, _ := newClient(t, Options{})
	for _, repo := range []string{"app", "db", "web"} {
		ref, _ := core.ParseImageRef(strings.TrimPrefix(srv.URL, "http://") + "/" + repo + ":1")
		_, err := c.Tags(context.Background(), ref)
		if !errors.Is(err, core.ErrUnavailable) || !strings.Contains(err.Error(), repo) {
			t.Fatalf("Tags(%s) against a closing server = %v, want core.ErrUnavailable naming it", repo, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Errorf("server saw %d requests, want 3: the attempts of one ping, remembered for the other repositories", calls)
	}
}

func TestRequestTimeout(t *testing.T) {
	s := registrytest.New(t, registrytest.WithLatency(300*time.Millisecond))
	s.Push(t, "app", "1")
	c, _ := newClient(t, Options{Timeout: 50 * time.Millisecond, Retries: 2})
	start := time.Now()
	_, err := c.Tags(context.Background(), imageRef(t, s, "app", "1"))
	if !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Tags with a slow registry = %v, want core.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond { // two full 300ms answers would take 600ms
		t.Errorf("two 50ms attempts took %v", d)
	}
}

func TestAuthErrors(t *testing.T) {
	s := registrytest.New(t, registrytest.WithBearerAuth("alice", "right"))
	s.Push(t, "app", "1")
	ref := imageRef(t, s, "app", "1")
	tests := []struct {
		name  string
		creds []Credentials
		want  error
	}{
		{"anonymous", nil, core.ErrUnauthorized},
		{"wrong password", []Credentials{{Registry: s.Host, Username: "alice", Password: "wrong"}}, core.ErrUnauthorized},
		{"right password, host written as URL", []Credentials{{Registry: "http://" + s.Host + "/v2/", Username: "alice", Password: "right"}}, nil},
		{"credentials of another registry", []Credentials{{Registry: "ghcr.io", Username: "alice", Password: "right"}}, core.ErrUnauthorized},
		{"user name with a personal access token", []Credentials{{Registry: s.Host, Username: "alice", Token: "right"}}, nil},
		{"user name with a wrong token", []Credentials{{Registry: s.Host, Username: "alice", Token: "wrong"}}, core.ErrUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newClient(t, Options{Credentials: tc.creds})
			_, err := c.Tags(context.Background(), ref)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Tags = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRefusedCredentialsRemembered(t *testing.T) {
	s := registrytest.New(t, registrytest.WithBearerAuth("alice", "right"))
	refs := pushRepos(t, s, 5)
	c, _ := newClient(t, Options{Credentials: []Credentials{{Registry: s.Host, Username: "alice", Password: "wrong"}}})
	c.Prepare(refs)
	for _, ref := range refs {
		if _, err := c.Tags(context.Background(), ref); !errors.Is(err, core.ErrUnauthorized) {
			t.Fatalf("Tags(%s) = %v, want core.ErrUnauthorized", ref, err)
		}
	}
	if n := s.Counts().Token; n != 1 {
		t.Errorf("token requests with a wrong password over 5 repositories = %d, want 1", n)
	}
}

func TestKeychainUsedWithoutCredentials(t *testing.T) {
	s := registrytest.New(t, registrytest.WithBearerAuth("bob", "kc-pass"))
	s.Push(t, "app", "1")
	kc := keychainFunc(func(r authn.Resource) (authn.Authenticator, error) {
		if r.RegistryStr() == s.Host {
			return authn.FromConfig(authn.AuthConfig{Username: "bob", Password: "kc-pass"}), nil
		}
		return authn.Anonymous, nil
	})
	c, _ := newClient(t, Options{Keychain: kc})
	if _, err := c.Tags(context.Background(), imageRef(t, s, "app", "1")); err != nil {
		t.Errorf("Tags with keychain credentials: %v", err)
	}
}

type keychainFunc func(authn.Resource) (authn.Authenticator, error)

func (f keychainFunc) Resolve(r authn.Resource) (authn.Authenticator, error) { return f(r) }

func TestRegistryTokenSentAsBearer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer static-tok" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+r.Host+`/token",service="x"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"name":"app","tags":["1","2"]}`)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, _ := core.ParseImageRef(host + "/app:1")
	c, _ := newClient(t, Options{Credentials: []Credentials{{Registry: host, Token: "static-tok"}}})
	tags, err := c.Tags(context.Background(), ref)
	if err != nil || len(tags) != 2 {
		t.Errorf("Tags with a registry token = %v, %v; want [1 2]", tags, err)
	}
}

func TestNotFound(t *testing.T) {
	s := registrytest.New(t)
	s.Push(t, "app", "1")
	c, _ := newClient(t, Options{})
	if _, err := c.Tags(context.Background(), imageRef(t, s, "nothing", "1")); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Tags(unknown repository) = %v, want core.ErrNotFound", err)
	}
	if _, err := c.Digest(context.Background(), imageRef(t, s, "app", "2")); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Digest(unknown tag) = %v, want core.ErrNotFound", err)
	}
}

func TestDigestByHeadOnly(t *testing.T) {
	s := registrytest.New(t, registrytest.WithBearerAuth("", ""), registrytest.WithRateLimit(100))
	want := s.Push(t, "app", "1")
	c, _ := newClient(t, Options{})
	for range 3 {
		got, err := c.Digest(context.Background(), imageRef(t, s, "app", "1"))
		if err != nil || got != want {
			t.Fatalf("Digest = %q, %v; want %q", got, err, want)
		}
	}
	cnt := s.Counts()
	if cnt.ManifestGet != 0 || cnt.ManifestHead != 3 {
		t.Errorf("manifest GETs = %d, HEADs = %d; want 0 and 3", cnt.ManifestGet, cnt.ManifestHead)
	}
	st := status(t, c, s.Host)
	if st.RateLimitLimit != 100 || st.RateLimitRemaining != 100 {
		t.Errorf("rate limit %d/%d, want 100 remaining of 100 (HEADs are free)", st.RateLimitRemaining, st.RateLimitLimit)
	}
}

func TestDigestFallsBackToGet(t *testing.T) {
	s := registrytest.New(t, registrytest.WithoutDigestHeader())
	want := s.Push(t, "app", "1")
	c, _ := newClient(t, Options{})
	got, err := c.Digest(context.Background(), imageRef(t, s, "app", "1"))
	if err != nil || got != want {
		t.Fatalf("Digest = %q, %v; want %q", got, err, want)
	}
	if n := s.Counts().ManifestGet; n != 1 {
		t.Errorf("manifest GETs = %d, want 1", n)
	}
	if st := status(t, c, s.Host); st.DigestFallbacks != 1 {
		t.Errorf("DigestFallbacks = %d, want 1", st.DigestFallbacks)
	}
}

func TestManifestOfIndex(t *testing.T) {
	s := registrytest.New(t)
	idx, children := s.PushIndex(t, "multi", "1.0", "linux/amd64", "linux/arm/v7")
	c, _ := newClient(t, Options{})
	ref := imageRef(t, s, "multi", "1.0")
	d, err := c.Digest(context.Background(), ref)
	if err != nil || d != idx {
		t.Fatalf("Digest(index) = %q, %v; want %q", d, err, idx)
	}
	m, err := c.Manifest(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	want := Manifest{
		MediaType: "application/vnd.oci.image.index.v1+json",
		Digest:    idx,
		Children: []Platform{
			{Digest: children["linux/amd64"], OS: "linux", Architecture: "amd64"},
			{Digest: children["linux/arm/v7"], OS: "linux", Architecture: "arm", Variant: "v7"},
		},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("Manifest(index) (-want +got):\n%s", diff)
	}

	child := ref
	child.Tag, child.Digest = "", children["linux/amd64"]
	cm, err := c.Manifest(context.Background(), child)
	if err != nil {
		t.Fatal(err)
	}
	if cm.Digest != children["linux/amd64"] || !strings.HasPrefix(cm.ConfigDigest, "sha256:") || len(cm.Children) != 0 {
		t.Errorf("Manifest(child) = %+v, want digest %s with a config digest", cm, children["linux/amd64"])
	}
}

func TestConcurrencyLimit(t *testing.T) {
	s := registrytest.New(t, registrytest.WithLatency(30*time.Millisecond))
	refs := pushRepos(t, s, 12)
	c, _ := newClient(t, Options{Concurrency: 2})
	tagsAll(t, c, refs)
	if got := s.Counts().MaxInFlight; got != 2 {
		t.Errorf("MaxInFlight = %d, want 2 (the limit, reached)", got)
	}
}

func TestRateLimitWarningOnce(t *testing.T) {
	s := registrytest.New(t, registrytest.WithRateLimit(4))
	s.Push(t, "app", "1")
	c, buf := newClient(t, Options{PullReserve: -1}) // spend every pull, to see the warning
	for i := range 4 {
		if _, err := c.Manifest(context.Background(), imageRef(t, s, "app", "1")); err != nil {
			t.Fatalf("Manifest %d: %v", i, err)
		}
	}
	if st := status(t, c, s.Host); st.RateLimitRemaining != 0 || st.RateLimitLimit != 4 {
		t.Errorf("rate limit %d/%d, want 0 of 4", st.RateLimitRemaining, st.RateLimitLimit)
	}
	if n := strings.Count(buf.String(), "rate limit almost used up"); n != 1 {
		t.Errorf("low rate-limit warnings = %d, want 1:\n%s", n, buf)
	}
}

func TestPlainHTTPRefusedForSecureHosts(t *testing.T) {
	s := registrytest.New(t)
	s.Push(t, "app", "1")
	c, _ := newClient(t, Options{Insecure: func(string) bool { return false }})
	_, err := c.Tags(context.Background(), imageRef(t, s, "app", "1"))
	if !errors.Is(err, core.ErrUnavailable) {
		t.Errorf("Tags over HTTPS to an HTTP-only registry = %v, want core.ErrUnavailable", err)
	}
	if n := s.Counts().Total; n != 0 {
		t.Errorf("registry handled %d requests, want 0 (HTTPS only)", n)
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	const canary = "canary-Pa55w0rd-7f3a"
	s := registrytest.New(t, registrytest.WithBearerAuth("alice", canary))
	refs := pushRepos(t, s, 3)
	s.FailNext("/tags/list", http.StatusServiceUnavailable, 2, "")
	good, buf := newClient(t, Options{Credentials: []Credentials{{Registry: s.Host, Username: "alice", Password: canary}}})
	good.Prepare(refs)
	tagsAll(t, good, refs)
	s.ExpireTokens()
	tagsAll(t, good, refs)

	bad, badBuf := newClient(t, Options{Credentials: []Credentials{{Registry: s.Host, Username: "alice", Password: canary + "x"}}})
	_, err := bad.Tags(context.Background(), refs[0])
	if !errors.Is(err, core.ErrUnauthorized) {
		t.Fatalf("Tags with a wrong password = %v, want core.ErrUnauthorized", err)
	}

	logs := buf.String() + badBuf.String() + err.Error()
	for _, st := range append(good.Status(), bad.Status()...) {
		logs += st.LastError
	}
	if !strings.Contains(logs, "attempt=") {
		t.Fatalf("the retries were not logged, so this test proves nothing:\n%s", logs)
	}
	secrets := append([]string{canary}, s.IssuedTokens()...)
	if len(secrets) < 3 {
		t.Fatalf("issued tokens = %d, want at least 2", len(secrets)-1)
	}
	for _, sec := range secrets {
		if strings.Contains(logs, sec) {
			t.Errorf("secret %q found in logs or errors:\n%s", sec, logs)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	}
	for _, tc := range tests {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		in     string
		want   int
		wantOK bool
	}{
		{"100;w=21600", 100, true},
		{"76", 76, true},
		{"", 0, false},
		{"x;w=1", 0, false},
	}
	for _, tc := range tests {
		if got, ok := parseRateLimit(tc.in); got != tc.want || ok != tc.wantOK {
			t.Errorf("parseRateLimit(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestHostRules(t *testing.T) {
	loop := map[string]bool{
		"127.0.0.1:5000": true, "127.1.2.3": true, "localhost:5000": true, "[::1]:5000": true, "::1": true,
		"10.0.0.1:5000": false, "ghcr.io": false, "localhost.example.com": false,
	}
	for host, want := range loop {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
	norm := map[string]string{
		"docker.io": core.DockerHub, "registry-1.docker.io": core.DockerHub, "https://index.docker.io/v1/": core.DockerHub,
		"GHCR.io": "ghcr.io", "http://127.0.0.1:5000/": "127.0.0.1:5000",
	}
	for in, want := range norm {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Registry: "r", Status: 503, Attempts: 3, Detail: "UNAVAILABLE: down", kind: core.ErrUnavailable},
			"registry answered 503 3 times: UNAVAILABLE: down: unavailable"},
		{&Error{Registry: "r", Status: 404, Attempts: 1, Detail: "NAME_UNKNOWN: x", kind: core.ErrNotFound},
			"registry answered 404: NAME_UNKNOWN: x: not found"},
		{&Error{Registry: "r", Status: 429, Attempts: 1, RetryAfter: time.Minute, kind: core.ErrRateLimited},
			"registry answered 429 with Retry-After 1m0s: rate limited"},
		{&Error{Registry: "r", Status: 429, Attempts: 0, RetryAfter: time.Minute, kind: core.ErrRateLimited},
			"registry asked to wait (Retry-After), 1m0s left: rate limited"},
		{&Error{Registry: "r", Attempts: 3, Detail: "EOF", kind: core.ErrUnavailable, err: net.ErrClosed},
			"registry r unreachable after 3 attempts: EOF: unavailable"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if !errors.Is(tc.err, tc.err.kind) {
			t.Errorf("errors.Is(%q, %v) = false", tc.err, tc.err.kind)
		}
	}
}

// BenchmarkTags checks 100 repositories on one registry with 20 ms latency
// per request, warm (token and ping already done), and reports requests per
// repository.
func BenchmarkTags(b *testing.B) {
	s := registrytest.New(b, registrytest.WithBearerAuth("", ""), registrytest.WithLatency(20*time.Millisecond))
	refs := make([]core.ImageRef, 100)
	for i := range refs {
		repo := fmt.Sprintf("app-%03d", i)
		s.Push(b, repo, "1")
		refs[i], _ = core.ParseImageRef(s.Host + "/" + repo + ":1")
	}
	c := New(Options{Keychain: authn.NewMultiKeychain()}, nil)
	c.Prepare(refs)
	run := func() {
		var wg sync.WaitGroup
		for _, ref := range refs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Tags(context.Background(), ref); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	run()
	s.ResetCounts()
	b.ResetTimer()
	for range b.N {
		run()
	}
	b.StopTimer()
	b.ReportMetric(float64(s.Counts().Total)/float64(b.N*len(refs)), "requests/repo")
}

func TestPrepareForgetsFailedPing(t *testing.T) {
	s := registrytest.New(t)
	s.Push(t, "app", "1")
	ref := imageRef(t, s, "app", "1")
	c, _ := newClient(t, Options{})
	s.FailNext("/v2/", http.StatusServiceUnavailable, 3, "") // the ping's three attempts
	if _, err := c.Tags(context.Background(), ref); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Tags with the ping failing = %v, want core.ErrUnavailable", err)
	}
	if _, err := c.Tags(context.Background(), ref); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Tags right after = %v, want the remembered failure", err)
	}
	if n := s.Counts().Total; n != 3 {
		t.Errorf("requests = %d, want 3: the failure is remembered", n)
	}
	c.Prepare([]core.ImageRef{ref})
	if _, err := c.Tags(context.Background(), ref); err != nil {
		t.Errorf("Tags after Prepare = %v, want the ping tried again", err)
	}
}

// TestCredentialsForAnImage: the credentials a trigger that deploys pulls
// with are those the client reads the image's registry with: configured
// ones for their host, anonymous elsewhere (no keychain here).
func TestCredentialsForAnImage(t *testing.T) {
	c, _ := newClient(t, Options{Keychain: authn.NewMultiKeychain(), Credentials: []Credentials{
		{Registry: "registry.example:5000", Username: "alice", Password: "canary-7a1"},
		{Registry: "ghcr.io", Username: "bot", Token: "ghp-canary"},
	}})
	ctx := context.Background()
	a, err := c.Credentials(ctx, "registry.example:5000/team/app")
	if err != nil || a.Server != "registry.example:5000" || a.Username != "alice" || a.Password.Reveal() != "canary-7a1" {
		t.Errorf("Credentials(registry.example:5000/team/app) = %+v, %v", a, err)
	}
	if a, err := c.Credentials(ctx, "ghcr.io/org/app"); err != nil || a.Username != "bot" || a.Password.Reveal() != "ghp-canary" {
		t.Errorf("Credentials(ghcr.io/org/app) = %+v, %v; want the PAT as the password", a, err)
	}
	if a, err := c.Credentials(ctx, "nginx"); err != nil || !a.Anonymous() || a.Server != "index.docker.io" {
		t.Errorf("Credentials(nginx) = %+v, %v; want anonymous for Docker Hub", a, err)
	}
	if _, err := c.Credentials(ctx, "Bad Image"); err == nil {
		t.Error("Credentials(bad reference) = nil error")
	}
	if s := fmt.Sprintf("%v %+v", a, a); strings.Contains(s, "canary-7a1") {
		t.Errorf("credentials printed: %s", s)
	}
}
