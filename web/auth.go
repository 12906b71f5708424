package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/tidewatch/tidewatch/core/config"
)

// CacheTTL is how long a successful password check is remembered.
const CacheTTL = 5 * time.Minute

// maxCached bounds the remembered password checks.
const maxCached = 1024

// Principal is who made a request.
type Principal struct {
	// Kind is "user", "token", or "anonymous" when auth is off.
	Kind string
	// Name is the user's or token's name.
	Name string
}

type principalKey struct{}

// PrincipalFrom returns who made the request of ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// authenticator checks credentials against the configured users and tokens.
type authenticator struct {
	users  map[string]config.PasswordHash
	tokens []config.Token
	key    [32]byte // HMAC key of the cache, random per process

	mu    sync.Mutex
	cache map[[32]byte]time.Time // HMAC(user, password) → expiry
	now   func() time.Time
}

// dummyHash is checked for unknown users, so that they take as long as known ones.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("tidewatch"), bcrypt.DefaultCost)
	return h
})

func newAuthenticator(users []config.User, tokens []config.Token) *authenticator {
	a := &authenticator{users: map[string]config.PasswordHash{}, tokens: tokens, cache: map[[32]byte]time.Time{}, now: time.Now}
	for _, u := range users {
		a.users[u.Name] = u.Hash
	}
	rand.Read(a.key[:])
	return a
}

func (a *authenticator) enabled() bool { return len(a.users) > 0 || len(a.tokens) > 0 }

// token returns the name of the token whose SHA-256 is that of value,
// comparing with every token in constant time.
func (a *authenticator) token(value string) (string, bool) {
	sum := sha256.Sum256([]byte(value))
	name, found := "", 0
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.SHA256[:]) == 1 {
			name, found = t.Name, 1
		}
	}
	return name, found == 1
}

// password reports whether password is user's.
func (a *authenticator) password(user, password string) bool {
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
		return true
	}
	h, known := a.users[user]
	if !known {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return false
	}
	if !verify(h, password) {
		return false
	}
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
	return true
}

// verify checks password against h.
func verify(h config.PasswordHash, password string) bool {
	switch h.Scheme {
	case "bcrypt":
		return bcrypt.CompareHashAndPassword([]byte(h.Encoded.Reveal()), []byte(password)) == nil
	case "argon2id":
		k := argon2.IDKey([]byte(password), h.Salt, h.Time, h.Memory, h.Threads, uint32(len(h.Key)))
		return subtle.ConstantTimeCompare(k, h.Key) == 1
	}
	return false
}

// authenticate lets a request through when auth is off or its credentials
// are good, with its Principal in its context; else it answers 401.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.auth.enabled() {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, Principal{Kind: "anonymous"})))
			return
		}
		var p Principal
		if scheme, value, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
			if name, ok := s.auth.token(strings.TrimSpace(value)); ok {
				p = Principal{Kind: "token", Name: name}
			}
		} else if user, pass, ok := r.BasicAuth(); ok && s.auth.password(user, pass) {
			p = Principal{Kind: "user", Name: user}
		}
		if p.Kind == "" {
			s.writeError(w, r, &Error{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "authentication required: HTTP Basic with a configured user, or Authorization: Bearer <API token>"})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}
