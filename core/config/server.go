package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/credential"
)

// Defaults of the HTTP server.
const (
	// DefaultServerAddress is the address the server listens on: loopback,
	// so that an unconfigured tidewatch is reachable only from its machine.
	DefaultServerAddress = "127.0.0.1"
	// DefaultServerPort is the TCP port of the API and UI.
	DefaultServerPort = 8080
)

// serverOptions are what may follow TIDEWATCH_SERVER_.
var serverOptions = []string{"ADDRESS", "PORT", "TLS_CERT", "TLS_KEY", "AUTH_USERS", "AUTH_USERS_FILE", "API_TOKENS", "API_TOKENS_FILE", "ALLOWED_HOSTS"}

// Server configures the HTTP server of `tidewatch serve`: where it listens,
// its TLS files, and who may use it.
//
// Authentication is off only when no user and no token is configured and
// Address is a loopback address; a server on any other address without
// users or tokens is a configuration error. With authentication on, every
// route but /healthz, /readyz and the UI's static files needs a user (HTTP
// Basic) or an API token (Authorization: Bearer).
type Server struct {
	// Address is the IP address or host name to listen on
	// (TIDEWATCH_SERVER_ADDRESS); default DefaultServerAddress. "0.0.0.0"
	// or "::" listen on every interface.
	Address string
	// Port is the TCP port (TIDEWATCH_SERVER_PORT); default DefaultServerPort.
	Port int
	// TLSCert and TLSKey are PEM files (TIDEWATCH_SERVER_TLS_CERT,
	// TIDEWATCH_SERVER_TLS_KEY); with both set the server speaks HTTPS only.
	TLSCert, TLSKey string
	// Users may log in with HTTP Basic (TIDEWATCH_SERVER_AUTH_USERS, or
	// TIDEWATCH_SERVER_AUTH_USERS_FILE): "name:hash" entries separated by
	// commas or newlines, each hash bcrypt ("$2a$", "$2b$", "$2y$") or
	// argon2id in its PHC form ("$argon2id$v=19$m=65536,t=3,p=4$salt$hash").
	// In a file, blank lines and lines starting with # are skipped. Hash
	// parameters above MaxBcryptCost, MaxArgon2Memory, MaxArgon2Time or
	// MaxArgon2Threads are refused; weak ones are named by Warnings.
	Users []credential.User
	// Tokens are API tokens for scripts and CI (TIDEWATCH_SERVER_API_TOKENS,
	// or TIDEWATCH_SERVER_API_TOKENS_FILE): "name:sha256hex" entries
	// separated by commas or newlines, each the SHA-256 of a token, so that
	// tokens are not kept in the clear: printf %s "$TOKEN" | sha256sum.
	// An entry may end with a scope after a space, "deploy=" and compose
	// projects or project/service pairs separated by commas:
	// "shop-ci:<sha256> deploy=shop,blog/web" may deploy every service of
	// shop and the service web of blog, and do nothing else.
	Tokens []credential.Token
	// AllowedHosts are more host names (or IP addresses) a request's Host
	// header may name while authentication is off
	// (TIDEWATCH_SERVER_ALLOWED_HOSTS: comma- or space-separated, no port),
	// lower case, without a trailing dot. Without authentication the server
	// answers only requests whose Host names loopback (127.0.0.0/8, ::1,
	// localhost) or Address, so that a web page whose domain resolves to
	// 127.0.0.1 (DNS rebinding) cannot drive it; a name by which this machine
	// reaches itself ("tidewatch.localhost", an /etc/hosts alias) goes here.
	// With authentication on, every Host is accepted and this has no effect.
	AllowedHosts []string
	// Vars maps each option set (ADDRESS, PORT, TLS_CERT, TLS_KEY,
	// AUTH_USERS, API_TOKENS, ALLOWED_HOSTS) to the variable that set it.
	Vars map[string]string
}

// MaxDeployTargets bounds the targets of one token's scope.
const MaxDeployTargets = 64

// composeName is a compose project or service name, as the deploy API takes it.
var composeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// SetDefaults fills an empty Address and Port.
func (s *Server) SetDefaults() {
	if s.Address == "" {
		s.Address = DefaultServerAddress
	}
	if s.Port == 0 {
		s.Port = DefaultServerPort
	}
}

// Addr returns "address:port" for net.Listen.
func (s Server) Addr() string { return net.JoinHostPort(s.Address, strconv.Itoa(s.Port)) }

// TLS reports whether the server speaks HTTPS.
func (s Server) TLS() bool { return s.TLSCert != "" && s.TLSKey != "" }

// AuthEnabled reports whether requests must authenticate: whenever a user or
// a token is configured (Validate refuses a non-loopback address without).
func (s Server) AuthEnabled() bool { return len(s.Users) > 0 || len(s.Tokens) > 0 }

// Loopback reports whether Address only accepts connections from this
// machine: a loopback IP ("127.0.0.1", "::1") or "localhost".
func (s Server) Loopback() bool { return core.IsLoopback(s.Address) }

// Validate reports every problem with the server configuration.
func (s Server) Validate() error { return s.validate(unset) }

func (s Server) validate(set func(string) bool) error {
	var es errs
	if s.Address != "" && !validHost(strings.TrimSuffix(strings.TrimPrefix(s.Address, "["), "]")) && !set(s.canonical("ADDRESS")) {
		es.add(s.variable("ADDRESS"), s.Address, "not an address", "an IP address or host name, without port")
	}
	if (s.Port < 0 || s.Port > 65535) && !set(s.canonical("PORT")) {
		es.add(s.variable("PORT"), strconv.Itoa(s.Port), "not a port number", "an integer from 1 to 65535")
	}
	switch {
	case s.TLSCert != "" && s.TLSKey == "":
		es.add(s.variable("TLS_KEY"), "", "not set while "+s.variable("TLS_CERT")+" is", "both TLS files, or neither")
	case s.TLSKey != "" && s.TLSCert == "":
		es.add(s.variable("TLS_CERT"), "", "not set while "+s.variable("TLS_KEY")+" is", "both TLS files, or neither")
	}
	if s.Address != "" && !s.Loopback() && !s.AuthEnabled() {
		es.add(s.variable("ADDRESS"), s.Address, "listens beyond this machine without authentication",
			"TIDEWATCH_SERVER_AUTH_USERS (or _FILE) or TIDEWATCH_SERVER_API_TOKENS (or _FILE) set, or a loopback address such as 127.0.0.1")
	}
	seen := map[string]bool{}
	for _, u := range s.Users {
		if seen[u.Name] {
			es.add(s.variable("AUTH_USERS"), "", "user "+quote(u.Name)+" listed twice", "one entry per user")
		}
		seen[u.Name] = true
	}
	seen = map[string]bool{}
	for _, t := range s.Tokens {
		if seen[t.Name] {
			es.add(s.variable("API_TOKENS"), "", "token "+quote(t.Name)+" listed twice", "one entry per token name")
		}
		seen[t.Name] = true
	}
	return errors.Join(es...)
}

// Warnings returns what s allows but should not be, each naming its
// variable, for the server to log at start-up: credentials that would cross
// the network in clear text (users or tokens on an address beyond loopback
// without TLS), and users whose password hash is weak (bcrypt cost below
// WeakBcryptCost, argon2id memory below WeakArgon2Memory).
func (s Server) Warnings() []*VarError {
	var out []*VarError
	if s.AuthEnabled() && !s.Loopback() && !s.TLS() {
		var what []string
		if len(s.Users) > 0 {
			what = append(what, "HTTP Basic passwords ("+s.variable("AUTH_USERS")+")")
		}
		if len(s.Tokens) > 0 {
			what = append(what, "API tokens ("+s.variable("API_TOKENS")+")")
		}
		out = append(out, &VarError{Var: s.variable("ADDRESS"),
			Problem: "the server listens on " + s.Address + " without TLS: " + strings.Join(what, " and ") +
				" cross the network in clear text, readable by anyone on the path",
			Expected: s.variable("TLS_CERT") + " and " + s.variable("TLS_KEY") + " set, or a TLS proxy in front with this address reachable only from it"})
	}
	for _, u := range s.Users {
		h := u.Hash
		switch {
		case h.Scheme == "bcrypt" && h.Cost < WeakBcryptCost:
			out = append(out, &VarError{Var: s.variable("AUTH_USERS"),
				Problem:  "user " + quote(u.Name) + ": bcrypt cost " + strconv.Itoa(h.Cost) + " is weak: a stolen hash is cheap to crack",
				Expected: "a cost of at least " + strconv.Itoa(WeakBcryptCost) + " (htpasswd -nbB -C 12 " + u.Name + ")"})
		case h.Scheme == "argon2id" && h.Memory < WeakArgon2Memory:
			out = append(out, &VarError{Var: s.variable("AUTH_USERS"),
				Problem:  "user " + quote(u.Name) + ": argon2id memory m=" + strconv.FormatUint(uint64(h.Memory), 10) + " KiB is weak: a stolen hash is cheap to crack",
				Expected: "m of at least " + strconv.Itoa(WeakArgon2Memory) + " KiB (19 MiB), such as m=65536,t=3,p=4"})
		}
	}
	return out
}

// variable returns the variable that set option, or its plain name.
func (s Server) variable(option string) string {
	if v, ok := s.Vars[option]; ok {
		return v
	}
	return "TIDEWATCH_SERVER_" + option
}

// canonical is the claim key of option.
func (s Server) canonical(option string) string { return "TIDEWATCH_SERVER_" + option }

// serverSlot is the option a TIDEWATCH_SERVER_ option sets: _FILE variants
// share their base's slot. ok is false for an unknown option.
func serverSlot(option string) (slot string, ok bool) {
	for _, o := range serverOptions {
		if o == option {
			return strings.TrimSuffix(option, "_FILE"), true
		}
	}
	return "", false
}

// loadServer handles one TIDEWATCH_SERVER_ variable whose option (after the
// prefix, upper case) is known.
func loadServer(es *errs, s *Server, key, option, value string) {
	slot, _ := serverSlot(option)
	if s.Vars == nil {
		s.Vars = map[string]string{}
	}
	s.Vars[slot] = key
	switch option {
	case "ADDRESS":
		a := strings.TrimSpace(value)
		if !validHost(strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")) {
			es.add(key, value, "not an address", "an IP address or host name, without port")
			return
		}
		s.Address = a
	case "PORT":
		p, ok := parsePort(value)
		if !ok {
			es.add(key, value, "not a port number", "an integer from 1 to 65535")
		}
		s.Port = p
	case "TLS_CERT", "TLS_KEY":
		if p := checkReadableFile(value); p != "" {
			es.add(key, value, p, "a readable PEM file")
		}
		if option == "TLS_CERT" {
			s.TLSCert = value
		} else {
			s.TLSKey = value
		}
	case "AUTH_USERS", "AUTH_USERS_FILE":
		text, ok := serverListValue(es, key, option, value)
		if ok {
			s.Users = parseUsers(es, key, text)
		}
	case "API_TOKENS", "API_TOKENS_FILE":
		text, ok := serverListValue(es, key, option, value)
		if ok {
			s.Tokens = parseTokens(es, key, text)
		}
	case "ALLOWED_HOSTS":
		s.AllowedHosts = parseAllowedHosts(es, key, value)
	}
}

// MaxAllowedHosts bounds TIDEWATCH_SERVER_ALLOWED_HOSTS.
const MaxAllowedHosts = 64

// parseAllowedHosts reads host names separated by commas or white space.
func parseAllowedHosts(es *errs, key, value string) []string {
	var out []string
	fields := strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	for _, f := range fields {
		h := strings.ToLower(strings.TrimSuffix(f, "."))
		if !validHost(h) || strings.HasPrefix(h, "[") {
			es.add(key, "", "entry "+quote((f))+" is not a host name", "host names or IP addresses without scheme or port, separated by commas")
			return nil
		}
		out = append(out, h)
	}
	switch {
	case len(out) == 0:
		es.add(key, "", "no host name", "host names or IP addresses without scheme or port, separated by commas")
		return nil
	case len(out) > MaxAllowedHosts:
		es.add(key, "", strconv.Itoa(len(out))+" host names", "at most "+strconv.Itoa(MaxAllowedHosts))
		return nil
	}
	return out
}

// serverListValue returns the list a variable holds, read from its file for a _FILE variant.
func serverListValue(es *errs, key, option, value string) (string, bool) {
	if !strings.HasSuffix(option, "_FILE") {
		return value, true
	}
	text, problem := readSecretFile(value)
	if problem != "" {
		es.add(key, value, problem, "a readable file of name:hash lines")
		return "", false
	}
	return text, true
}

// Bounds of password hash parameters. A login check costs what its hash
// asks: above these, a few wrong logins in parallel would take the daemon's
// memory or CPU for seconds, so Load refuses them. Below the weak ones, a
// stolen hash is cheap to crack, so Warnings names them.
const (
	// MaxArgon2Memory is the largest argon2id m, in KiB (256 MiB).
	MaxArgon2Memory = 256 << 10
	// MaxArgon2Time is the largest argon2id t (passes).
	MaxArgon2Time = 10
	// MaxArgon2Threads is the largest argon2id p.
	MaxArgon2Threads = 16
	// MaxBcryptCost is the largest bcrypt cost (about 2 s a check on a
	// current CPU core).
	MaxBcryptCost = 15
	// WeakArgon2Memory is the argon2id m, in KiB, below which Warnings
	// warns (19 MiB, OWASP's least).
	WeakArgon2Memory = 19 << 10
	// WeakBcryptCost is the bcrypt cost below which Warnings warns.
	WeakBcryptCost = 10
)

var (
	entryName   = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)
	entryStart  = regexp.MustCompile(`^\s*[A-Za-z0-9._@-]{1,64}:`)
	bcryptHash  = regexp.MustCompile(`^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$`)
	argon2Param = regexp.MustCompile(`^m=([0-9]{1,10}),t=([0-9]{1,10}),p=([0-9]{1,3})$`)
)

// splitEntries splits a list of name:value entries separated by newlines or
// commas. A comma followed by something that does not start an entry
// ("name:") belongs to the value: argon2id parameters hold commas. Blank
// lines and lines starting with # are skipped.
func splitEntries(text string) []string {
	var out []string
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for i, part := range strings.Split(line, ",") {
			if i > 0 && !entryStart.MatchString(part) && len(out) > 0 {
				out[len(out)-1] += "," + part
				continue
			}
			out = append(out, part)
		}
	}
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

// parseUsers reads "name:hash" entries. Problems name the user, never the hash.
func parseUsers(es *errs, key, text string) []credential.User {
	var out []credential.User
	before := len(*es)
	for i, e := range splitEntries(text) {
		name, hash, ok := strings.Cut(e, ":")
		if !ok || !entryName.MatchString(name) {
			es.addSecret(key, "entry "+strconv.Itoa(i+1)+" is not name:hash", "user names of letters, digits and ._@- followed by : and a bcrypt or argon2id hash")
			continue
		}
		h, problem := ParsePasswordHash(hash)
		if problem != "" {
			es.addSecret(key, "user "+quote(name)+": "+problem, "a bcrypt hash ($2a$, $2b$ or $2y$) or an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)")
			continue
		}
		out = append(out, credential.User{Name: name, Hash: h})
	}
	if len(out) == 0 && len(*es) == before {
		es.addSecret(key, "no user", "name:hash entries separated by commas or newlines")
	}
	return out
}

// ParsePasswordHash parses a bcrypt hash or an argon2id PHC string. It
// returns the problem, never the hash, when it cannot.
func ParsePasswordHash(s string) (credential.PasswordHash, string) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "$2"):
		if !bcryptHash.MatchString(s) {
			return credential.PasswordHash{}, "malformed bcrypt hash"
		}
		cost, _ := strconv.Atoi(s[4:6])
		if cost > MaxBcryptCost {
			return credential.PasswordHash{}, "bcrypt cost " + strconv.Itoa(cost) + " is above the maximum " + strconv.Itoa(MaxBcryptCost) +
				" (each login would take seconds: a denial of service)"
		}
		return credential.PasswordHash{Scheme: "bcrypt", Encoded: core.Secret(s), Cost: cost}, ""
	case strings.HasPrefix(s, "$argon2id$"):
		parts := strings.Split(s, "$") // "", argon2id, v=19, m=…,t=…,p=…, salt, hash
		if len(parts) != 6 || parts[2] != "v=19" {
			return credential.PasswordHash{}, "malformed argon2id hash (want $argon2id$v=19$m=…,t=…,p=…$salt$hash)"
		}
		m := argon2Param.FindStringSubmatch(parts[3])
		if m == nil {
			return credential.PasswordHash{}, "malformed argon2id parameters (want m=…,t=…,p=…)"
		}
		mem, err1 := strconv.ParseUint(m[1], 10, 32)
		t, err2 := strconv.ParseUint(m[2], 10, 32)
		p, err3 := strconv.ParseUint(m[3], 10, 8)
		if err1 != nil || err2 != nil || err3 != nil || mem < 8 || t < 1 || p < 1 {
			return credential.PasswordHash{}, "argon2id parameters out of range (m at least 8 KiB, t and p at least 1)"
		}
		switch {
		case mem > MaxArgon2Memory:
			return credential.PasswordHash{}, "argon2id memory m=" + m[1] + " KiB is above the maximum " + strconv.Itoa(MaxArgon2Memory) +
				" KiB (256 MiB; every login in progress would hold that much: a denial of service)"
		case t > MaxArgon2Time:
			return credential.PasswordHash{}, "argon2id time t=" + m[2] + " is above the maximum " + strconv.Itoa(MaxArgon2Time) + " (each login would take seconds)"
		case p > MaxArgon2Threads:
			return credential.PasswordHash{}, "argon2id parallelism p=" + m[3] + " is above the maximum " + strconv.Itoa(MaxArgon2Threads)
		}
		salt, err1 := base64.RawStdEncoding.DecodeString(strings.TrimRight(parts[4], "="))
		key, err2 := base64.RawStdEncoding.DecodeString(strings.TrimRight(parts[5], "="))
		if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
			return credential.PasswordHash{}, "malformed argon2id salt or hash (base64, at least 8 and 16 bytes)"
		}
		return credential.PasswordHash{Scheme: "argon2id", Encoded: core.Secret(s), Memory: uint32(mem), Time: uint32(t), Threads: uint8(p), Salt: salt, Key: key}, ""
	case s == "":
		return credential.PasswordHash{}, "empty hash"
	}
	return credential.PasswordHash{}, "unknown hash scheme (a password in the clear?)"
}

// parseTokens reads "name:sha256hex" entries, each with an optional scope
// after a space ("deploy=shop,blog/web").
func parseTokens(es *errs, key, text string) []credential.Token {
	var out []credential.Token
	before := len(*es)
	for i, e := range splitEntries(text) {
		name, rest, ok := strings.Cut(e, ":")
		if !ok || !entryName.MatchString(name) {
			es.addSecret(key, "entry "+strconv.Itoa(i+1)+" is not name:sha256", "token names of letters, digits and ._@- followed by : and the token's SHA-256")
			continue
		}
		rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), "sha256:"))
		sum, scope := rest, ""
		if i := strings.IndexFunc(rest, unicode.IsSpace); i >= 0 {
			sum, scope = rest[:i], rest[i:]
		}
		b, err := hex.DecodeString(strings.ToLower(strings.TrimSpace(sum)))
		if err != nil || len(b) != 32 {
			es.addSecret(key, "token "+quote(name)+": not a SHA-256", `64 hexadecimal digits: printf %s "$TOKEN" | sha256sum`)
			continue
		}
		t := credential.Token{Name: name}
		copy(t.SHA256[:], b)
		if strings.TrimSpace(scope) != "" {
			targets, problem := parseScope(scope)
			if problem != "" {
				es.addSecret(key, "token "+quote(name)+": "+problem, `a scope after a space: deploy=project or deploy=project/service, several separated by commas ("ci:<sha256> deploy=shop,blog/web")`)
				continue
			}
			t.Deploy = targets
		}
		out = append(out, t)
	}
	if len(out) == 0 && len(*es) == before {
		es.addSecret(key, "no token", "name:sha256 entries separated by commas or newlines")
	}
	return out
}

// parseScope reads a token's scope: "deploy=" clauses of project or
// project/service targets separated by commas (white space after a comma
// is allowed). It returns the problem, quoting at most a short target.
func parseScope(scope string) ([]credential.DeployTarget, string) {
	// Clauses start with "word="; a field without "=" continues the one before
	// ("deploy=shop, blog").
	var clauses []string
	for _, f := range strings.Fields(scope) {
		if strings.Contains(f, "=") || len(clauses) == 0 {
			clauses = append(clauses, f)
			continue
		}
		clauses[len(clauses)-1] += f
	}
	var out []credential.DeployTarget
	for _, c := range clauses {
		kind, list, ok := strings.Cut(c, "=")
		if !ok || kind != "deploy" {
			return nil, "unknown scope " + quote((c))
		}
		for _, item := range strings.Split(list, ",") {
			project, service, hasService := strings.Cut(item, "/")
			if !composeName.MatchString(project) || hasService && !composeName.MatchString(service) {
				return nil, "deploy target " + quote((item)) + " is not a compose project or project/service"
			}
			out = append(out, credential.DeployTarget{Project: project, Service: service})
		}
	}
	if len(out) > MaxDeployTargets {
		return nil, strconv.Itoa(len(out)) + " deploy targets, more than " + strconv.Itoa(MaxDeployTargets)
	}
	return out, ""
}

// serverHint suggests the server variable a mistyped option meant.
func serverHint(option string) string {
	best, bestDist := "", 3
	for _, o := range serverOptions {
		if d := distance(option, o); d < bestDist {
			best, bestDist = o, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean TIDEWATCH_SERVER_" + best + "?"
}
