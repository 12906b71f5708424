package registries

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/tidewatch/tidewatch/core"
)

// Client asks registries for tags, digests and manifests. It is safe for
// concurrent use and meant to live as long as the daemon: it keeps, per
// registry host, one transport, the ping result and the tokens, across runs.
type Client struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time // judges token expiry; a test may move it

	mu   sync.Mutex
	regs map[string]*registry
}

// registry is what a Client keeps about one registry host.
type registry struct {
	host  string
	name  name.Registry
	base  *limiter
	stats *stats
	log   *slog.Logger
	now   func() time.Time

	configured   authn.Authenticator // from Options.Credentials, or nil
	keychain     authn.Keychain
	authMu       sync.Mutex
	keychainAuth authn.Authenticator
	keychainAt   time.Time

	pingMu    sync.Mutex
	challenge *transport.Challenge
	pingErr   error // the last ping failure, repeated for failureMemory
	pingErrAt time.Time

	mu       sync.Mutex
	perToken int
	chunks   []*tokenSet
	chunkOf  map[string]*tokenSet // pull scope → its chunk
}

// Manifest is what a manifest GET tells: the media type and digest, the
// config digest of a single image, or the children of an index.
type Manifest struct {
	// MediaType is the manifest's media type.
	MediaType string `json:"media_type"`
	// Digest is the manifest's digest ("sha256:…").
	Digest string `json:"digest"`
	// ConfigDigest is the config blob digest of a single image (the image ID).
	ConfigDigest string `json:"config_digest,omitempty"`
	// Children are the platform manifests of an index.
	Children []Platform `json:"children,omitempty"`
}

// Platform is one child of an image index.
type Platform struct {
	Digest       string `json:"digest"`
	OS           string `json:"os,omitempty"`
	Architecture string `json:"architecture,omitempty"`
	Variant      string `json:"variant,omitempty"`
}

// New returns a Client. log receives retries, warnings and debug detail,
// never credentials or tokens.
func New(opts Options, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{opts: opts.withDefaults(), log: log, now: time.Now, regs: map[string]*registry{}}
}

// Prepare declares the repositories a run (or a run's last pass) will ask,
// so that one token per registry (per ScopesPerToken repositories) covers
// all their pull scopes. Repositories are remembered for the Client's
// lifetime. It also forgets the failed pings and token requests of their
// registries, which are otherwise answered from memory for a while: a new
// run or pass tries them again. It does no I/O.
func (c *Client) Prepare(repos []core.ImageRef) {
	seen := map[*registry]bool{}
	for _, ref := range repos {
		repo, r, err := c.repository(ref)
		if err != nil {
			continue // the call itself will report it
		}
		r.chunkFor(repo.Scope(transport.PullScope))
		if !seen[r] {
			seen[r] = true
			r.forgetFailures()
		}
	}
}

// Tags returns every tag of ref's repository, following `Link` headers
// through all pages.
func (c *Client) Tags(ctx context.Context, ref core.ImageRef) ([]string, error) {
	const action = "listing tags of"
	repo, r, err := c.repository(ref)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", action, ref.Repo(), err)
	}
	rt, err := r.transportFor(ctx, repo)
	if err != nil {
		return nil, c.fail(r, action, ref.Repo(), err)
	}
	tags, err := remote.List(repo, remote.WithTransport(rt), remote.WithContext(ctx))
	if err != nil {
		return nil, c.fail(r, action, ref.Repo(), err)
	}
	return tags, nil
}

// Digest returns the manifest digest of ref's tag (or confirms ref's digest)
// with a HEAD request carrying every manifest media type in Accept: the
// digest of an index for a multi-arch image. It never GETs, which Docker Hub
// would count as a pull, unless the registry omits Docker-Content-Digest;
// then it GETs and hashes the body, and counts that in Status.DigestFallbacks.
func (c *Client) Digest(ctx context.Context, ref core.ImageRef) (string, error) {
	const action = "reading digest of"
	nref, r, err := c.reference(ref)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", action, ref, err)
	}
	rt, err := r.transportFor(ctx, nref.Context())
	if err != nil {
		return "", c.fail(r, action, ref.String(), err)
	}
	opts := []remote.Option{remote.WithTransport(rt), remote.WithContext(ctx)}
	desc, err := remote.Head(nref, opts...)
	if err == nil {
		return desc.Digest.String(), nil
	}
	if !incompleteHead(err) {
		return "", c.fail(r, action, ref.String(), err)
	}
	r.stats.add(func(s *core.RegistryStatus) { s.DigestFallbacks++ })
	r.log.Debug("HEAD gave no usable digest; reading the manifest", "registry", r.host, "repo", ref.Repository, "error", err)
	got, err := remote.Get(nref, opts...)
	if err != nil {
		return "", c.fail(r, action, ref.String(), err)
	}
	return got.Digest.String(), nil
}

// incompleteHead reports whether remote.Head failed on a response that
// lacked a header (Docker-Content-Digest, Content-Type, Content-Length)
// rather than on an HTTP or network error.
func incompleteHead(err error) bool {
	var re *Error
	var te *transport.Error
	return !errors.As(err, &re) && !errors.As(err, &te) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// Manifest GETs ref's manifest. Use it only when a digest changed and its
// content is needed: Docker Hub counts a manifest GET as a pull.
func (c *Client) Manifest(ctx context.Context, ref core.ImageRef) (Manifest, error) {
	const action = "reading manifest of"
	nref, r, err := c.reference(ref)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s %s: %w", action, ref, err)
	}
	// A manifest GET counts as a pull where the registry limits pulls: slow
	// down before the limit, and leave the last ones to the engine.
	if st := r.stats.snapshot(); c.opts.PullReserve >= 0 && st.RateLimitRemaining >= 0 && st.RateLimitRemaining <= c.opts.PullReserve {
		return Manifest{}, fmt.Errorf("%s %s: %d pulls left of the registry's rate limit, kept for the engine (they come back when the limit's window moves on): %w",
			action, ref, st.RateLimitRemaining, core.ErrRateLimited)
	}
	rt, err := r.transportFor(ctx, nref.Context())
	if err != nil {
		return Manifest{}, c.fail(r, action, ref.String(), err)
	}
	desc, err := remote.Get(nref, remote.WithTransport(rt), remote.WithContext(ctx))
	if err != nil {
		return Manifest{}, c.fail(r, action, ref.String(), err)
	}
	m := Manifest{MediaType: string(desc.MediaType), Digest: desc.Digest.String()}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return Manifest{}, fmt.Errorf("%s %s: parsing index: %w", action, ref, err)
		}
		for _, d := range idx.Manifests {
			p := Platform{Digest: d.Digest.String()}
			if d.Platform != nil {
				p.OS, p.Architecture, p.Variant = d.Platform.OS, d.Platform.Architecture, d.Platform.Variant
			}
			m.Children = append(m.Children, p)
		}
	case desc.MediaType.IsImage():
		mf, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return Manifest{}, fmt.Errorf("%s %s: parsing manifest: %w", action, ref, err)
		}
		m.ConfigDigest = mf.Config.Digest.String()
	}
	return m, nil
}

// Status returns what the Client knows of each registry host, sorted by host.
func (c *Client) Status() []core.RegistryStatus {
	c.mu.Lock()
	regs := make([]*registry, 0, len(c.regs))
	for _, r := range c.regs {
		regs = append(regs, r)
	}
	c.mu.Unlock()
	out := make([]core.RegistryStatus, 0, len(regs))
	for _, r := range regs {
		st := r.stats.snapshot()
		st.Concurrency, st.MaxConcurrency, st.ConcurrencyPinned = r.base.gate.state()
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Registry < out[j].Registry })
	return out
}

// fail classifies err, records it in the registry's status and returns it.
func (c *Client) fail(r *registry, action, what string, err error) error {
	e := classify(r.host, action, what, err)
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		now := time.Now()
		r.stats.add(func(s *core.RegistryStatus) {
			s.Errors++
			s.LastError, s.LastErrorAt = e.Error(), now
		})
	}
	return e
}

// repository returns ref's repository in go-containerregistry's terms, and
// the state kept for its registry.
func (c *Client) repository(ref core.ImageRef) (name.Repository, *registry, error) {
	var opts []name.Option
	if c.opts.Insecure(ref.Registry) {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(ref.Repo(), opts...)
	if err != nil {
		return name.Repository{}, nil, err
	}
	return repo, c.registry(ref.Registry, repo.Registry), nil
}

// reference returns the tag ref names, or its digest when it has no tag.
func (c *Client) reference(ref core.ImageRef) (name.Reference, *registry, error) {
	repo, r, err := c.repository(ref)
	if err != nil {
		return nil, nil, err
	}
	if ref.Tag == "" && ref.Digest != "" {
		return repo.Digest(ref.Digest), r, nil
	}
	tag := ref.Tag
	if tag == "" {
		tag = "latest"
	}
	return repo.Tag(tag), r, nil
}

func (c *Client) registry(host string, reg name.Registry) *registry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.regs[host]; ok {
		return r
	}
	st := newStats(host)
	r := &registry{
		host:  reg.RegistryStr(),
		name:  reg,
		stats: st,
		log:   c.log,
		now:   func() time.Time { return c.now() },
		base: &limiter{
			host:     reg.RegistryStr(),
			insecure: c.opts.Insecure,
			next:     c.opts.Transport,
			gate:     newGate(c.controllerFor(reg.RegistryStr())),
			timeout:  c.opts.Timeout,
			attempts: c.opts.Retries,
			backoff:  c.opts.RetryBackoff,
			maxWait:  c.opts.MaxRetryAfter,
			stats:    st,
			log:      c.log,
		},
		configured: fromCredentials(c.opts.Credentials, normalizeHost(host)),
		keychain:   c.opts.Keychain,
		perToken:   c.opts.ScopesPerToken,
		chunkOf:    map[string]*tokenSet{},
	}
	c.regs[host] = r
	return r
}

// controllerFor returns the concurrency controller of a registry host:
// pinned by Options.PinConcurrency or Options.Concurrency, else adaptive up
// to the host's ceiling.
func (c *Client) controllerFor(host string) controller {
	pin := c.opts.Concurrency
	for h, n := range c.opts.PinConcurrency {
		if normalizeHost(h) == normalizeHost(host) && n > 0 {
			pin = n
		}
	}
	ceiling := DefaultMaxConcurrency
	if IsPublic(host) {
		ceiling = PublicMaxConcurrency
	}
	return newController(pin, ceiling)
}

var _ http.RoundTripper = (*limiter)(nil)
var _ http.RoundTripper = (*bearer)(nil)

// Credentials returns the credentials this client reads image's registry
// with (the repository as core.ParseImageRef takes it): Options.Credentials,
// else the keychain, else anonymous. A trigger that deploys pulls with them.
func (c *Client) Credentials(ctx context.Context, image string) (core.RegistryAuth, error) {
	ref, err := core.ParseImageRef(image)
	if err != nil {
		return core.RegistryAuth{}, err
	}
	repo, r, err := c.repository(ref)
	if err != nil {
		return core.RegistryAuth{}, err
	}
	cfg, err := authn.Authorization(ctx, r.authenticator(ctx))
	if err != nil {
		return core.RegistryAuth{}, fmt.Errorf("reading the credentials of %s: %w", repo.RegistryStr(), err)
	}
	return core.RegistryAuth{Server: ref.Registry, Username: cfg.Username, Password: core.Secret(cfg.Password),
		IdentityToken: core.Secret(cfg.IdentityToken), RegistryToken: core.Secret(cfg.RegistryToken)}, nil
}
