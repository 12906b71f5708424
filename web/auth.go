package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/credential"
	"github.com/tidewatch/tidewatch/core/store"
)

// Password checks.
const (
	// CacheTTL is how long a successful password check is remembered.
	CacheTTL = 5 * time.Minute
	// MaxConcurrentHashes bounds the password hashes computed at once: an
	// argon2id check holds its m of memory (64 MiB for m=65536) and a core
	// while it runs, so that parallel logins cost at most this many times that.
	MaxConcurrentHashes = 2
	// HashWait is how long a login waits for a free hash slot before it is
	// answered 503 with Retry-After.
	HashWait = 5 * time.Second
)

// maxCached bounds the remembered password checks.
const maxCached = 1024

// Principal is who made a request.
type Principal struct {
	// Kind is "user", "token", or "anonymous" when auth is off.
	Kind string
	// Name is the user's or token's name.
	Name string
	// Deploy is the scope of a token limited to deploying these compose
	// projects or services (credential.Token.Deploy); nil for every right.
	Deploy []credential.DeployTarget
}

// Scoped reports whether p may only deploy (Deploy's targets).
func (p Principal) Scoped() bool { return p.Deploy != nil }

// String is how logs and the history name p: "user:alice", "token:ci",
// "anonymous"; "" for nobody.
func (p Principal) String() string {
	if p.Name == "" {
		return p.Kind
	}
	return p.Kind + ":" + p.Name
}

type principalKey struct{}

// withPrincipal returns r with p in its context, for the handlers (and
// PrincipalFrom), the history (store.WithPrincipal) and the request's log line.
func withPrincipal(r *http.Request, p Principal) *http.Request {
	if st, ok := r.Context().Value(stateKey{}).(*requestState); ok {
		st.principal = p
	}
	ctx := context.WithValue(r.Context(), principalKey{}, p)
	return r.WithContext(store.WithPrincipal(ctx, p.String()))
}

// PrincipalFrom returns who made the request of ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// authenticator checks credentials against the configured users and tokens.
type authenticator struct {
	users  map[string]credential.PasswordHash
	tokens []credential.Token
	key    [32]byte // HMAC key of the cache and of decoys, random per process

	// decoys are checked for unknown user names: decoys[i] has the scheme
	// and parameters of the i-th user (by name) and a random digest, so that
	// a wrong login for an unknown name does the same hash work as one for
	// a user (see decoy).
	decoys []credential.PasswordHash

	slots    chan struct{} // a free hash slot per buffered value: MaxConcurrentHashes
	hashWait time.Duration
	throttle *throttle

	hashing atomic.Int32 // hashes being computed
	peak    atomic.Int32 // most hashes computed at once
	hashed  atomic.Int64 // hashes computed

	mu    sync.Mutex
	cache map[[32]byte]time.Time // HMAC(user, password) → expiry
	now   func() time.Time
}

func newAuthenticator(users []credential.User, tokens []credential.Token) *authenticator {
	a := &authenticator{
		users: map[string]credential.PasswordHash{}, tokens: tokens, cache: map[[32]byte]time.Time{}, now: time.Now,
		slots: make(chan struct{}, MaxConcurrentHashes), hashWait: HashWait, throttle: newThrottle(),
	}
	rand.Read(a.key[:])
	names := make([]string, 0, len(users))
	for _, u := range users {
		a.users[u.Name] = u.Hash
		names = append(names, u.Name)
	}
	slices.Sort(names)
	for _, n := range names {
		a.decoys = append(a.decoys, decoyOf(a.users[n]))
	}
	return a
}

// decoyOf returns a hash with h's scheme and parameters and a random digest,
// which no password matches (but for a chance of 2^-184 and more).
func decoyOf(h credential.PasswordHash) credential.PasswordHash {
	switch h.Scheme {
	case "bcrypt":
		// Same version and cost, a random salt and digest in bcrypt's alphabet.
		const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		enc := h.Encoded.Reveal()
		b := make([]byte, 53)
		rand.Read(b)
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		return credential.PasswordHash{Scheme: "bcrypt", Cost: h.Cost, Encoded: core.Secret(enc[:7] + string(b))}
	case "argon2id":
		d := h
		d.Salt, d.Key = make([]byte, len(h.Salt)), make([]byte, len(h.Key))
		rand.Read(d.Salt)
		rand.Read(d.Key)
		d.Encoded = ""
		return d
	}
	return h
}

// decoy returns the hash checked for the unknown user name: the decoy of a
// user chosen by an HMAC of the name, so that one name always costs the same
// and unknown names cost what the users' hashes cost, in the same mix.
func (a *authenticator) decoy(name string) credential.PasswordHash {
	mac := hmac.New(sha256.New, a.key[:])
	mac.Write([]byte("decoy\x00" + name))
	i := binary.BigEndian.Uint64(mac.Sum(nil)) % uint64(len(a.decoys))
	return a.decoys[i]
}

func (a *authenticator) enabled() bool { return len(a.users) > 0 || len(a.tokens) > 0 }

// token returns the token whose SHA-256 is that of value, comparing with
// every token in constant time.
func (a *authenticator) token(value string) (credential.Token, bool) {
	sum := sha256.Sum256([]byte(value))
	var tok credential.Token
	found := 0
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.SHA256[:]) == 1 {
			tok, found = t, 1
		}
	}
	return tok, found == 1
}

// Errors of a password check that was not made.
var (
	// errHashBusy: no hash slot came free within hashWait.
	errHashBusy = errors.New("too many logins being checked")
)

// throttledError: the client address has no failed login left for now.
type throttledError struct{ wait time.Duration }

// seconds is the wait in whole seconds, rounded up: at least 1.
func (e *throttledError) seconds() int { return max(int((e.wait+time.Second-1)/time.Second), 1) }

func (e *throttledError) Error() string {
	return fmt.Sprintf("too many failed logins from this address; try again in %d s", e.seconds())
}

// password reports whether password is user's. A check that is not in the
// cache spends one of client's allowance of failed logins first, given back
// when it succeeds; with none left it is not made (a *throttledError). It
// then waits for a hash slot (errHashBusy after hashWait, ctx's error when
// ctx ends). An unknown user's password is checked against a decoy, so that
// it costs the same as a known one's.
func (a *authenticator) password(ctx context.Context, client, user, password string) (bool, error) {
	mac := hmac.New(sha256.New, a.key[:])
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var k [32]byte
	copy(k[:], mac.Sum(nil))
	now := a.now()
	a.mu.Lock()
	exp, ok := a.cache[k]
	a.mu.Unlock()
	if ok && now.Before(exp) {
		return true, nil
	}
	if len(a.users) == 0 {
		return false, nil // no user: nothing to guess, nothing to hash
	}
	allowance, wait := a.throttle.take(client, now)
	if allowance == nil {
		return false, &throttledError{wait: wait}
	}
	h, known := a.users[user]
	if !known {
		h = a.decoy(user)
	}
	match, err := a.check(ctx, h, password)
	if err != nil {
		a.throttle.refund(allowance)
		return false, err
	}
	if !match || !known {
		return false, nil
	}
	a.throttle.refund(allowance)
	a.mu.Lock()
	if len(a.cache) >= maxCached {
		for k, e := range a.cache {
			if !now.Before(e) || len(a.cache) >= maxCached {
				delete(a.cache, k)
			}
		}
	}
	a.cache[k] = now.Add(CacheTTL)
	a.mu.Unlock()
	return true, nil
}

// check compares password with h in one of the hash slots.
func (a *authenticator) check(ctx context.Context, h credential.PasswordHash, password string) (bool, error) {
	select {
	case a.slots <- struct{}{}:
	default:
		timer := time.NewTimer(a.hashWait)
		defer timer.Stop()
		select {
		case a.slots <- struct{}{}:
		case <-timer.C:
			return false, errHashBusy
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	defer func() { <-a.slots }()
	n := a.hashing.Add(1)
	defer a.hashing.Add(-1)
	for p := a.peak.Load(); n > p && !a.peak.CompareAndSwap(p, n); p = a.peak.Load() {
	}
	a.hashed.Add(1)
	return verify(h, password), nil
}

// verify checks password against h.
func verify(h credential.PasswordHash, password string) bool {
	switch h.Scheme {
	case "bcrypt":
		return bcrypt.CompareHashAndPassword([]byte(h.Encoded.Reveal()), []byte(password)) == nil
	case "argon2id":
		k := argon2.IDKey([]byte(password), h.Salt, h.Time, h.Memory, h.Threads, uint32(len(h.Key)))
		return subtle.ConstantTimeCompare(k, h.Key) == 1
	}
	return false
}

// identify returns who r comes from by its credentials: a user (HTTP Basic)
// or a token (Bearer); the zero Principal when it has none or wrong ones.
// The error is for a login that could not be checked: 429 when its address
// failed too often, 503 when the hash slots stay busy.
func (s *Server) identify(r *http.Request) (Principal, error) {
	if scheme, value, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if t, ok := s.auth.token(strings.TrimSpace(value)); ok {
			return Principal{Kind: "token", Name: t.Name, Deploy: t.Deploy}, nil
		}
		return Principal{}, nil
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return Principal{}, nil
	}
	match, err := s.auth.password(r.Context(), clientAddress(r.RemoteAddr), user, pass)
	var te *throttledError
	switch {
	case errors.As(err, &te):
		return Principal{}, &Error{Status: http.StatusTooManyRequests, Code: "too_many_attempts", Message: te.Error(), RetryAfter: te.seconds()}
	case errors.Is(err, errHashBusy):
		return Principal{}, &Error{Status: http.StatusServiceUnavailable, Code: "busy", Message: "too many logins being checked; try again", RetryAfter: 1}
	case err != nil:
		return Principal{}, err
	case match:
		return Principal{Kind: "user", Name: user}, nil
	}
	return Principal{}, nil
}

// fullRights lets through the requests of principals with every right:
// users, unscoped tokens, anyone when auth is off. A token scoped to
// deploying is answered 403.
func (s *Server) fullRights(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, _ := PrincipalFrom(r.Context()); p.Scoped() {
			s.writeError(w, r, forbidden(p))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// forbidden is the 403 of a scoped token outside its scope.
func forbidden(p Principal) *Error {
	targets := make([]string, 0, len(p.Deploy))
	for _, d := range p.Deploy {
		targets = append(targets, d.String())
	}
	return &Error{Status: http.StatusForbidden, Code: "forbidden",
		Message: "token " + strconv.Quote(p.Name) + " may only deploy (POST /api/deploy) " + strings.Join(targets, ", ")}
}

// authenticate lets a request through when auth is off or its credentials
// are good, with its Principal in its context; else it answers 401 (429
// or 503 for a login that was not checked).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.auth.enabled() {
			next.ServeHTTP(w, withPrincipal(r, Principal{Kind: "anonymous"}))
			return
		}
		p, err := s.identify(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if p.Kind == "" {
			s.writeError(w, r, &Error{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "authentication required: HTTP Basic with a configured user, or Authorization: Bearer <API token>"})
			return
		}
		next.ServeHTTP(w, withPrincipal(r, p))
	})
}
