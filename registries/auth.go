package registries

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// How tokens are shared. go-containerregistry's own bearer transport keeps
// one token per transport, forgets expires_in and refreshes only after a 401
// (so every goroutine that meets an expired token fetches its own). Instead,
// each registry keeps a handful of token sets (chunks of at most
// ScopesPerToken repositories): a chunk's token is fetched with
// transport.Exchange for the pull scopes of every repository in it, reused
// by all requests until shortly before expires_in runs out, refreshed by one
// goroutine while the others wait, and refetched for the union when a
// repository joins the chunk. A 401 with a bearer challenge still drops the
// token and retries once, as a safety net.

// tokenTooLarge is the URL or header size past which a 400 or 413 is taken
// to mean "too long" (nginx and Apache refuse request lines over 8 KiB).
const tokenTooLarge = 8 << 10

// tokenSet is one chunk of repository scopes and the token that covers them.
type tokenSet struct {
	// scopes is guarded by registry.mu.
	scopes []string

	mu      sync.Mutex // held while fetching, so one goroutine fetches
	token   string
	static  bool // a configured registry token: never expires, covers all
	expires time.Time
	covered map[string]bool
	err     error // the last exchange failure, repeated until errUntil
	errAt   time.Time
}

// failureMemory is how long a failed ping or token exchange is answered from
// memory, so that a run over many repositories of a registry that is down,
// or refuses the credentials, costs a few requests and not a few per
// repository.
const failureMemory = 10 * time.Second

// forgetFailures drops the remembered failures of the ping and the token
// requests, so that the next call tries them again.
func (r *registry) forgetFailures() {
	r.pingMu.Lock()
	r.pingErr = nil
	r.pingMu.Unlock()
	r.mu.Lock()
	chunks := slices.Clone(r.chunks)
	r.mu.Unlock()
	for _, ts := range chunks {
		ts.mu.Lock()
		ts.err = nil
		ts.mu.Unlock()
	}
}

// chunkFor returns the chunk that holds scope, adding scope to the last
// chunk (or a new one) when it is new. No I/O.
func (r *registry) chunkFor(scope string) *tokenSet {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ts, ok := r.chunkOf[scope]; ok {
		return ts
	}
	var ts *tokenSet
	if n := len(r.chunks); n > 0 && len(r.chunks[n-1].scopes) < r.perToken {
		ts = r.chunks[n-1]
	} else {
		ts = &tokenSet{}
		r.chunks = append(r.chunks, ts)
	}
	ts.scopes = append(ts.scopes, scope)
	r.chunkOf[scope] = ts
	return ts
}

func (r *registry) scopesOf(ts *tokenSet) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), ts.scopes...)
}

func (r *registry) owns(ts *tokenSet, scope string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.chunkOf[scope] == ts
}

// split moves the second half of ts's scopes to a new chunk and lowers the
// registry's scopes per token. It reports false when ts holds one scope.
// The caller holds ts.mu.
func (r *registry) split(ts *tokenSet) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(ts.scopes)
	if n < 2 {
		return false
	}
	half := n / 2
	nts := &tokenSet{scopes: append([]string(nil), ts.scopes[half:]...)}
	ts.scopes = append([]string(nil), ts.scopes[:half]...)
	for _, s := range nts.scopes {
		r.chunkOf[s] = nts
	}
	r.chunks = append(r.chunks, nts)
	if half < r.perToken {
		r.perToken = half
	}
	ts.token, ts.covered = "", nil
	r.log.Warn("registry refused a long token request; splitting repositories over more tokens",
		"registry", r.host, "scopes_per_token", r.perToken)
	return true
}

// token returns a valid bearer token whose scopes include scope.
func (r *registry) token(ctx context.Context, scope string) (string, error) {
	for {
		ts := r.chunkFor(scope)
		ts.mu.Lock()
		if !r.owns(ts, scope) { // moved by a split meanwhile
			ts.mu.Unlock()
			continue
		}
		if ts.token != "" && (ts.static || ts.covered[scope] && r.now().Before(ts.expires)) {
			tok := ts.token
			ts.mu.Unlock()
			return tok, nil
		}
		if ts.err != nil && time.Since(ts.errAt) < failureMemory {
			err := ts.err
			ts.mu.Unlock()
			return "", err
		}
		tok, retry, err := r.fetch(ctx, ts)
		if err != nil && ctx.Err() == nil {
			ts.err, ts.errAt = err, time.Now()
		} else {
			ts.err = nil
		}
		ts.mu.Unlock()
		if retry {
			continue
		}
		return tok, err
	}
}

// fetch exchanges credentials for a token covering every scope of ts. It
// reports retry when ts was split because the request was too long. The
// caller holds ts.mu.
func (r *registry) fetch(ctx context.Context, ts *tokenSet) (tok string, retry bool, err error) {
	pr, err := r.ping(ctx)
	if err != nil {
		return "", false, err
	}
	auth := r.authenticator(ctx)
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil {
		return "", false, err
	}
	if cfg.RegistryToken != "" {
		ts.token, ts.static = cfg.RegistryToken, true
		return ts.token, false, nil
	}
	scopes := r.scopesOf(ts)
	start := r.now()
	t, err := transport.Exchange(ctx, r.name, auth, r.base, scopes, pr)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && tooLarge(te.StatusCode, urlSize(scopes)) && r.split(ts) {
			return "", true, nil
		}
		return "", false, err
	}
	tok = t.Token
	if tok == "" {
		tok = t.AccessToken
	}
	life := time.Duration(t.ExpiresIn) * time.Second
	if life <= 0 {
		life = 60 * time.Second // the token spec's default
	}
	life -= min(life/10, 30*time.Second) // refresh a little early
	ts.token, ts.expires = tok, start.Add(life)
	ts.covered = make(map[string]bool, len(scopes))
	for _, s := range scopes {
		ts.covered[s] = true
	}
	r.log.Debug("fetched registry token", "registry", r.host, "scopes", len(scopes), "expires_in", t.ExpiresIn)
	return tok, false, nil
}

// invalidate drops ts's token if it is still tok.
func (r *registry) invalidate(scope, tok string) {
	ts := r.chunkFor(scope)
	ts.mu.Lock()
	if ts.token == tok && !ts.static {
		ts.token, ts.covered = "", nil
	}
	ts.mu.Unlock()
}

func tooLarge(status, size int) bool {
	switch status {
	case http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge:
		return true
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return size > tokenTooLarge
	}
	return false
}

func urlSize(scopes []string) int {
	n := 0
	for _, s := range scopes {
		n += len("&scope=") + len(s) + 6 // ':' and '/' are escaped
	}
	return n
}

// bearer puts a chunk's token on every request to the registry for one
// repository scope.
type bearer struct {
	r     *registry
	scope string
}

// RoundTrip implements http.RoundTripper.
func (b *bearer) RoundTrip(in *http.Request) (*http.Response, error) {
	if in.URL.Host != b.r.host {
		// Redirected (to a blob store, say): never send the token along.
		return b.r.base.RoundTrip(in)
	}
	scope := b.scope
	for try := 0; ; try++ {
		tok, err := b.r.token(in.Context(), scope)
		if err != nil {
			return nil, err
		}
		req := in.Clone(in.Context())
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := b.r.base.RoundTrip(req)
		if err != nil || try > 0 {
			return resp, err
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized && isBearerChallenge(resp):
			// Expired or revoked early, or the registry wants another scope.
			if s := challengeScope(resp); s != "" {
				scope = s
			}
			b.r.invalidate(b.scope, tok)
		case tooLarge(resp.StatusCode, len(tok)):
			ts := b.r.chunkFor(scope)
			ts.mu.Lock()
			split := ts.token == tok && !ts.static && b.r.split(ts)
			ts.mu.Unlock()
			if !split {
				return resp, nil
			}
		default:
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
}

func isBearerChallenge(resp *http.Response) bool {
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(h)), "bearer") {
			return true
		}
	}
	return false
}

// challengeScope returns the scope="…" parameter of a bearer challenge.
func challengeScope(resp *http.Response) string {
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		_, rest, ok := strings.Cut(h, `scope="`)
		if !ok {
			continue
		}
		if s, _, ok := strings.Cut(rest, `"`); ok && !strings.Contains(s, " ") {
			return s
		}
	}
	return ""
}

// authenticator returns the credentials for this registry: a matching entry
// of Options.Credentials, else what the keychain has, else anonymous. The
// keychain's answer is kept for five minutes.
func (r *registry) authenticator(ctx context.Context) authn.Authenticator {
	if r.configured != nil {
		return r.configured
	}
	r.authMu.Lock()
	defer r.authMu.Unlock()
	if r.keychainAuth != nil && time.Since(r.keychainAt) < 5*time.Minute {
		return r.keychainAuth
	}
	a, err := authn.Resolve(ctx, r.keychain, r.name)
	if err != nil {
		r.log.Warn("reading registry credentials from the keychain; going anonymous", "registry", r.host, "error", err)
		a = authn.Anonymous
	}
	r.keychainAuth, r.keychainAt = a, time.Now()
	return a
}

// fromCredentials turns configured credentials into an authenticator, or nil
// when none of opts' credentials are for host.
func fromCredentials(creds []Credentials, host string) authn.Authenticator {
	for _, c := range creds {
		if normalizeHost(c.Registry) != host {
			continue
		}
		switch {
		case c.Token != "" && c.Username == "":
			return authn.FromConfig(authn.AuthConfig{RegistryToken: c.Token.Reveal()})
		case c.Token != "":
			// A user name with a token is a personal access token (GHCR,
			// GitLab, Quay robot tokens): sent as the basic password, as
			// `docker login -u user -p TOKEN` does.
			return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Token.Reveal()})
		default:
			return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password.Reveal()})
		}
	}
	return nil
}

// ping asks /v2/ once per registry (for the Client's lifetime) how to
// authenticate, and remembers the token endpoint so its requests are counted.
func (r *registry) ping(ctx context.Context) (*transport.Challenge, error) {
	r.pingMu.Lock()
	defer r.pingMu.Unlock()
	if r.challenge != nil {
		return r.challenge, nil
	}
	if r.pingErr != nil && time.Since(r.pingErrAt) < failureMemory {
		return nil, r.pingErr
	}
	pr, err := transport.Ping(ctx, r.name, r.base)
	if err != nil {
		if ctx.Err() == nil {
			r.pingErr, r.pingErrAt = err, time.Now()
		}
		return nil, err
	}
	if realm := pr.Parameters["realm"]; realm != "" {
		if u, err := url.Parse(realm); err == nil {
			r.base.realm.Store(u)
		}
	}
	r.challenge = pr
	r.log.Debug("pinged registry", "registry", r.host, "auth", strings.ToLower(pr.Scheme), "plain_http", pr.Insecure)
	return pr, nil
}

// transportFor returns the transport remote calls for repo use: a
// transport.Wrapper, so go-containerregistry adds nothing of its own.
func (r *registry) transportFor(ctx context.Context, repo name.Repository) (http.RoundTripper, error) {
	pr, err := r.ping(ctx)
	if err != nil {
		return nil, err
	}
	scope := repo.Scope(transport.PullScope)
	r.chunkFor(scope)
	if strings.EqualFold(pr.Scheme, "bearer") {
		// FromToken with a non-bearer challenge and anonymous auth is the
		// public way to get a *transport.Wrapper around our own transport.
		return transport.FromToken(r.name, authn.Anonymous, &bearer{r: r, scope: scope},
			&transport.Challenge{Scheme: "none"}, &transport.Token{})
	}
	// No auth, or Basic: go-containerregistry's basic transport adds the header.
	return transport.FromToken(r.name, r.authenticator(ctx), r.base, pr, &transport.Token{})
}
