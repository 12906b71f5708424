package config

import (
	"encoding/hex"
	"fmt"
	"github.com/tidewatch/tidewatch/core/credential"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Hashes of the password "s3cret", and the SHA-256 of the token "tok-ci".
const (
	testBcrypt   = "$2a$04$7E5JTsY5lWH.5jxbtHHpS.ZOy6/xNhBwqNe4gwlFZd3FFnvryXnfO"
	testArgon2id = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0MTIzNA$bILPVy31aUdXOG88ubm06q+qSTjjzbg22l+f8DhEHFg"
	testTokenSum = "ee037f54510155cee42806b26a48187d4b8644857a020a77c867585a50a577ff"
)

func tokenSum(t *testing.T, h string) [32]byte {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad test digest %q", h)
	}
	var s [32]byte
	copy(s[:], b)
	return s
}

// serverSummary is what the tests compare of a Server: the hashes by scheme.
type serverSummary struct {
	Address         string
	Port            int
	TLSCert, TLSKey string
	Users           []string // name:scheme
	Tokens          []string // name:hex
	Auth, Loopback  bool
}

func summarize(s Server) serverSummary {
	out := serverSummary{Address: s.Address, Port: s.Port, TLSCert: s.TLSCert, TLSKey: s.TLSKey, Auth: s.AuthEnabled(), Loopback: s.Loopback()}
	for _, u := range s.Users {
		out.Users = append(out.Users, u.Name+":"+u.Hash.Scheme)
	}
	for _, t := range s.Tokens {
		out.Tokens = append(out.Tokens, t.Name+":"+hex.EncodeToString(t.SHA256[:]))
	}
	return out
}

func TestLoadServer(t *testing.T) {
	cert := writeFile(t, "cert.pem", "-----BEGIN CERTIFICATE-----\n", 0o600)
	key := writeFile(t, "key.pem", "-----BEGIN PRIVATE KEY-----\n", 0o600)
	usersFile := writeFile(t, "users", "# who may log in\nalice:"+testBcrypt+"\n\nbob:"+testArgon2id+"\n", 0o600)
	tokensFile := writeFile(t, "tokens", "ci:"+testTokenSum+"\n", 0o600)
	tests := []struct {
		name string
		env  []string
		want serverSummary
	}{
		{"defaults", nil, serverSummary{Address: "127.0.0.1", Port: 8080, Loopback: true}},
		{"port", []string{"TIDEWATCH_SERVER_PORT=9090"}, serverSummary{Address: "127.0.0.1", Port: 9090, Loopback: true}},
		{"localhost", []string{"TIDEWATCH_SERVER_ADDRESS=localhost"}, serverSummary{Address: "localhost", Port: 8080, Loopback: true}},
		{"ipv6 loopback", []string{"TIDEWATCH_SERVER_ADDRESS=::1"}, serverSummary{Address: "::1", Port: 8080, Loopback: true}},
		{"tls", []string{"TIDEWATCH_SERVER_TLS_CERT=" + cert, "TIDEWATCH_SERVER_TLS_KEY=" + key},
			serverSummary{Address: "127.0.0.1", Port: 8080, TLSCert: cert, TLSKey: key, Loopback: true}},
		{"users, commas", []string{"TIDEWATCH_SERVER_ADDRESS=0.0.0.0", "TIDEWATCH_SERVER_AUTH_USERS=alice:" + testBcrypt + ",bob:" + testArgon2id},
			serverSummary{Address: "0.0.0.0", Port: 8080, Users: []string{"alice:bcrypt", "bob:argon2id"}, Auth: true}},
		{"users, argon2id first", []string{"TIDEWATCH_SERVER_AUTH_USERS=bob:" + testArgon2id + ", alice:" + testBcrypt},
			serverSummary{Address: "127.0.0.1", Port: 8080, Users: []string{"bob:argon2id", "alice:bcrypt"}, Auth: true, Loopback: true}},
		{"users, newlines", []string{"TIDEWATCH_SERVER_AUTH_USERS=alice:" + testBcrypt + "\nbob:" + testArgon2id + "\n"},
			serverSummary{Address: "127.0.0.1", Port: 8080, Users: []string{"alice:bcrypt", "bob:argon2id"}, Auth: true, Loopback: true}},
		{"users file", []string{"TIDEWATCH_SERVER_ADDRESS=0.0.0.0", "TIDEWATCH_SERVER_AUTH_USERS_FILE=" + usersFile},
			serverSummary{Address: "0.0.0.0", Port: 8080, Users: []string{"alice:bcrypt", "bob:argon2id"}, Auth: true}},
		{"tokens", []string{"TIDEWATCH_SERVER_ADDRESS=10.0.0.1", "TIDEWATCH_SERVER_API_TOKENS=ci:" + testTokenSum + ",deploy:sha256:" + strings.ToUpper(strings.Repeat("ab", 32))},
			serverSummary{Address: "10.0.0.1", Port: 8080, Tokens: []string{"ci:" + testTokenSum, "deploy:" + strings.Repeat("ab", 32)}, Auth: true}},
		{"tokens file", []string{"TIDEWATCH_SERVER_API_TOKENS_FILE=" + tokensFile},
			serverSummary{Address: "127.0.0.1", Port: 8080, Tokens: []string{"ci:" + testTokenSum}, Auth: true, Loopback: true}},
		{"lower case", []string{"tidewatch_server_port=81"}, serverSummary{Address: "127.0.0.1", Port: 81, Loopback: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(tc.env)
			if err != nil {
				t.Fatalf("Load(%q) error = %v, want nil", tc.env, err)
			}
			if diff := cmp.Diff(tc.want, summarize(cfg.Server)); diff != "" {
				t.Errorf("Load(%q).Server mismatch (-want +got):\n%s", tc.env, diff)
			}
		})
	}
}

func TestLoadServerArgon2Parameters(t *testing.T) {
	cfg, err := Load([]string{"TIDEWATCH_SERVER_AUTH_USERS=bob:" + testArgon2id})
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Server.Users[0].Hash
	got := fmt.Sprintf("%d %d %d %s %d", h.Memory, h.Time, h.Threads, h.Salt, len(h.Key))
	if want := "64 1 1 saltsaltsalt1234 32"; got != want {
		t.Errorf("argon2id parameters = %q, want %q", got, want)
	}
	tok, err := Load([]string{"TIDEWATCH_SERVER_API_TOKENS=ci:" + testTokenSum})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]credential.Token{{Name: "ci", SHA256: tokenSum(t, testTokenSum)}}, tok.Server.Tokens); diff != "" {
		t.Errorf("tokens mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadServerErrors(t *testing.T) {
	cert := writeFile(t, "cert.pem", "x", 0o600)
	tests := []struct {
		name string
		env  []string
		want []string // prefixes of the errors, in order
	}{
		{"bad port", []string{"TIDEWATCH_SERVER_PORT=http"}, []string{`TIDEWATCH_SERVER_PORT="http": not a port number`}},
		{"port out of range", []string{"TIDEWATCH_SERVER_PORT=70000"}, []string{`TIDEWATCH_SERVER_PORT="70000": not a port number`}},
		{"bad address", []string{"TIDEWATCH_SERVER_ADDRESS=http://x:80"}, []string{`TIDEWATCH_SERVER_ADDRESS="http://x:80": not an address`}},
		{"open without auth", []string{"TIDEWATCH_SERVER_ADDRESS=0.0.0.0"},
			[]string{`TIDEWATCH_SERVER_ADDRESS="0.0.0.0": listens beyond this machine without authentication; expected TIDEWATCH_SERVER_AUTH_USERS (or _FILE) or TIDEWATCH_SERVER_API_TOKENS`}},
		{"host name without auth", []string{"TIDEWATCH_SERVER_ADDRESS=tidewatch.example.com"}, []string{`TIDEWATCH_SERVER_ADDRESS="tidewatch.example.com": listens beyond`}},
		{"cert without key", []string{"TIDEWATCH_SERVER_TLS_CERT=" + cert}, []string{"TIDEWATCH_SERVER_TLS_KEY: not set while TIDEWATCH_SERVER_TLS_CERT is"}},
		{"key without cert", []string{"TIDEWATCH_SERVER_TLS_KEY=" + cert}, []string{"TIDEWATCH_SERVER_TLS_CERT: not set while TIDEWATCH_SERVER_TLS_KEY is"}},
		{"missing cert", []string{"TIDEWATCH_SERVER_TLS_CERT=/nonexistent/cert.pem", "TIDEWATCH_SERVER_TLS_KEY=" + cert},
			[]string{`TIDEWATCH_SERVER_TLS_CERT="/nonexistent/cert.pem": cannot read file`}},
		{"clear password", []string{"TIDEWATCH_SERVER_AUTH_USERS=alice:hunter2"}, []string{`TIDEWATCH_SERVER_AUTH_USERS: user "alice": unknown hash scheme`}},
		{"bad bcrypt", []string{"TIDEWATCH_SERVER_AUTH_USERS=alice:$2a$04$short"}, []string{`TIDEWATCH_SERVER_AUTH_USERS: user "alice": malformed bcrypt hash`}},
		{"bad argon2id params", []string{"TIDEWATCH_SERVER_AUTH_USERS=bob:$argon2id$v=19$m=x,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"},
			[]string{`TIDEWATCH_SERVER_AUTH_USERS: user "bob": malformed argon2id parameters`}},
		{"argon2i is not argon2id", []string{"TIDEWATCH_SERVER_AUTH_USERS=bob:$argon2i$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA"},
			[]string{`TIDEWATCH_SERVER_AUTH_USERS: user "bob": unknown hash scheme`}},
		{"argon2id memory of 4 GiB", []string{"TIDEWATCH_SERVER_AUTH_USERS=bob:" + argon2With("m=4194304,t=1,p=1")},
			[]string{`TIDEWATCH_SERVER_AUTH_USERS: user "bob": argon2id memory m=4194304 KiB is above the maximum 262144 KiB`}},
		{"argon2id memory just above", []string{"TIDEWATCH_SERVER_AUTH_USERS=bob:" + argon2With("m=262145,t=1,p=1")},
			[]string{`TIDEWATCH_SERVER_AUTH_USERS: user "bob": argon2id memory m=262145 KiB is above the maximum`}},
		{"argon2id memory beyond 32 bits", []string{"TIDEWATCH_SERVER_AUTH_USERS=bob:" + argon2With("m=9999999999,t=1,p=1")},
			[]string{`TIDEWATCH_SERVER_AUTH_USERS: user "bob": argon2id parameters out of range`}},
		{"argon2id time", []string{"TIDEWATCH_SERVER_AUTH_USERS_FILE=" + writeFile(t, "users", "bob:"+argon2With("m=65536,t=11,p=1")+"\n", 0o600)},
			[]string{`TIDEWATCH_SERVER_AUTH_USERS_FILE: user "bob": argon2id time t=11 is above the maximum 10`}},
		{"argon2id threads", []string{"TIDEWATCH_SERVER_AUTH_USERS=bob:" + argon2With("m=65536,t=1,p=17")},
			[]string{`TIDEWATCH_SERVER_AUTH_USERS: user "bob": argon2id parallelism p=17 is above the maximum 16`}},
		{"argon2id threads beyond 8 bits", []string{"TIDEWATCH_SERVER_AUTH_USERS=bob:" + argon2With("m=65536,t=1,p=300")},
			[]string{`TIDEWATCH_SERVER_AUTH_USERS: user "bob": argon2id parameters out of range`}},
		{"bcrypt cost 16", []string{"TIDEWATCH_SERVER_AUTH_USERS=alice:$2a$16$" + testBcrypt[7:]},
			[]string{`TIDEWATCH_SERVER_AUTH_USERS: user "alice": bcrypt cost 16 is above the maximum 15`}},
		{"bcrypt cost 31", []string{"TIDEWATCH_SERVER_AUTH_USERS=alice:$2y$31$" + testBcrypt[7:]},
			[]string{`TIDEWATCH_SERVER_AUTH_USERS: user "alice": bcrypt cost 31 is above the maximum 15`}},
		{"no name", []string{"TIDEWATCH_SERVER_AUTH_USERS=" + testBcrypt}, []string{"TIDEWATCH_SERVER_AUTH_USERS: entry 1 is not name:hash"}},
		{"user twice", []string{"TIDEWATCH_SERVER_AUTH_USERS=a:" + testBcrypt + ",a:" + testBcrypt}, []string{`TIDEWATCH_SERVER_AUTH_USERS: user "a" listed twice`}},
		{"only comments", []string{"TIDEWATCH_SERVER_AUTH_USERS=# nobody"}, []string{"TIDEWATCH_SERVER_AUTH_USERS: no user"}},
		{"users and file", []string{"TIDEWATCH_SERVER_AUTH_USERS=a:" + testBcrypt, "TIDEWATCH_SERVER_AUTH_USERS_FILE=" + cert},
			[]string{"TIDEWATCH_SERVER_AUTH_USERS_FILE: set together with TIDEWATCH_SERVER_AUTH_USERS"}},
		{"missing users file", []string{"TIDEWATCH_SERVER_AUTH_USERS_FILE=/nonexistent/users"}, []string{`TIDEWATCH_SERVER_AUTH_USERS_FILE="/nonexistent/users": cannot read file`}},
		{"token in the clear", []string{"TIDEWATCH_SERVER_API_TOKENS=ci:tok-ci"}, []string{`TIDEWATCH_SERVER_API_TOKENS: token "ci": not a SHA-256`}},
		{"token twice", []string{"TIDEWATCH_SERVER_API_TOKENS=ci:" + testTokenSum + ",ci:" + testTokenSum}, []string{`TIDEWATCH_SERVER_API_TOKENS: token "ci" listed twice`}},
		{"unknown option", []string{"TIDEWATCH_SERVER_PROT=1"}, []string{"TIDEWATCH_SERVER_PROT: unknown variable; expected TIDEWATCH_SERVER_<option> with <option> one of ADDRESS, PORT"}},
		{"typo hint", []string{"TIDEWATCH_SERVER_AUTH_USER=x"}, []string{"TIDEWATCH_SERVER_AUTH_USER: unknown variable"}},
		{"every error at once", []string{"TIDEWATCH_SERVER_PORT=0", "TIDEWATCH_SERVER_ADDRESS=0.0.0.0", "TIDEWATCH_SERVER_API_TOKENS=x"},
			[]string{"TIDEWATCH_SERVER_API_TOKENS: entry 1 is not name:sha256", "TIDEWATCH_SERVER_PORT=", "TIDEWATCH_SERVER_ADDRESS="}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.env)
			got := leaves(err)
			if len(got) != len(tc.want) {
				t.Fatalf("Load(%q) gave %d errors, want %d:\n%s", tc.env, len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("Load(%q) error %d = %q, want it to start with %q", tc.env, i, got[i], w)
				}
			}
			// A hash or a password never shows in an error.
			for _, e := range got {
				for _, secret := range []string{"hunter2", "$2a$04$short", "c2FsdHNhbHRzYWx0", "c2FsdA", testBcrypt, testArgon2id, "tok-ci", testTokenSum} {
					if strings.Contains(e, secret) {
						t.Errorf("Load error %q shows %q", e, secret)
					}
				}
			}
		})
	}
}

func TestServerTypoHint(t *testing.T) {
	_, err := Load([]string{"TIDEWATCH_SERVER_AUTH_USER=x"})
	if err == nil || !strings.Contains(err.Error(), "did you mean TIDEWATCH_SERVER_AUTH_USERS?") {
		t.Errorf("Load(TIDEWATCH_SERVER_AUTH_USER) error = %v, want a hint at TIDEWATCH_SERVER_AUTH_USERS", err)
	}
}

func TestPasswordHashRedacts(t *testing.T) {
	cfg, err := Load([]string{"TIDEWATCH_SERVER_AUTH_USERS=alice:" + testBcrypt + ",bob:" + testArgon2id})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, cfg.Server)
		for _, h := range []string{testBcrypt, testArgon2id, "c2FsdHNhbHRzYWx0MTIzNA"} {
			if strings.Contains(out, h) {
				t.Errorf("Sprintf(%q, server) shows a hash: %s", format, out)
			}
		}
	}
}

func TestLoadServerAllowedHosts(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []string
		err   string // prefix of the only error; "" for none
	}{
		{"one", "tidewatch.lan", []string{"tidewatch.lan"}, ""},
		{"several, mixed separators", "Tidewatch.LAN., nas.local  192.168.1.5,::1", []string{"tidewatch.lan", "nas.local", "192.168.1.5", "::1"}, ""},
		{"empty", " , ", nil, `TIDEWATCH_SERVER_ALLOWED_HOSTS: no host name`},
		{"wildcard", "*", nil, `TIDEWATCH_SERVER_ALLOWED_HOSTS: entry "*" is not a host name`},
		{"wildcard label", "*.example.com", nil, `TIDEWATCH_SERVER_ALLOWED_HOSTS: entry "*.example.com" is not a host name`},
		{"with port", "tidewatch.lan:8080", nil, `TIDEWATCH_SERVER_ALLOWED_HOSTS: entry "tidewatch.lan:8080" is not a host name`},
		{"url", "http://tidewatch.lan", nil, `TIDEWATCH_SERVER_ALLOWED_HOSTS: entry "http://tidewatch.lan" is not a host name`},
		{"bracketed v6", "[::1]", nil, `TIDEWATCH_SERVER_ALLOWED_HOSTS: entry "[::1]" is not a host name`},
		{"control characters", "a\x00b", nil, `TIDEWATCH_SERVER_ALLOWED_HOSTS: entry "a\x00b" is not a host name`},
		{"huge entry", strings.Repeat("x", 100000), nil, `TIDEWATCH_SERVER_ALLOWED_HOSTS: entry "xxxx`},
		{"too many", strings.Repeat("a.example,", MaxAllowedHosts+1), nil, `TIDEWATCH_SERVER_ALLOWED_HOSTS: 65 host names; expected at most 64`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load([]string{"TIDEWATCH_SERVER_ALLOWED_HOSTS=" + tc.value})
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Load(ALLOWED_HOSTS=%q) error = %v", tc.value, err)
				}
				if diff := cmp.Diff(tc.want, cfg.Server.AllowedHosts); diff != "" {
					t.Errorf("AllowedHosts (-want +got):\n%s", diff)
				}
				return
			}
			got := leaves(err)
			if len(got) != 1 || !strings.HasPrefix(got[0], tc.err) {
				t.Fatalf("Load(ALLOWED_HOSTS=%.40q) errors = %q, want one starting with %q", tc.value, got, tc.err)
			}
			if len(got[0]) > 400 {
				t.Errorf("the error quotes %d bytes: %.100s…", len(got[0]), got[0])
			}
		})
	}
}

// argon2With is testArgon2id with other parameters (its digest no longer matches).
func argon2With(params string) string {
	return strings.Replace(testArgon2id, "m=64,t=1,p=1", params, 1)
}

func TestPasswordHashBounds(t *testing.T) {
	// The largest parameters allowed are accepted.
	for _, h := range []string{argon2With("m=262144,t=10,p=16"), "$2b$15$" + testBcrypt[7:]} {
		if _, problem := ParsePasswordHash(h); problem != "" {
			t.Errorf("ParsePasswordHash(%.30s…) = %q, want accepted", h, problem)
		}
	}
}

func TestServerWarnings(t *testing.T) {
	tests := []struct {
		name  string
		users string
		want  []string // prefixes of the warnings
	}{
		{"bcrypt cost 4", "alice:" + testBcrypt,
			[]string{`TIDEWATCH_SERVER_AUTH_USERS: user "alice": bcrypt cost 4 is weak`}},
		{"bcrypt cost 10", "alice:$2a$10$" + testBcrypt[7:], nil},
		{"argon2id 64 KiB", "bob:" + testArgon2id,
			[]string{`TIDEWATCH_SERVER_AUTH_USERS: user "bob": argon2id memory m=64 KiB is weak`}},
		{"argon2id just under 19 MiB", "bob:" + argon2With("m=19455,t=2,p=1"), []string{`TIDEWATCH_SERVER_AUTH_USERS: user "bob": argon2id memory m=19455 KiB is weak`}},
		{"argon2id 19 MiB", "bob:" + argon2With("m=19456,t=2,p=1"), nil},
		{"both, in order", "alice:" + testBcrypt + ",carol:$2y$12$" + testBcrypt[7:] + ",bob:" + testArgon2id,
			[]string{`TIDEWATCH_SERVER_AUTH_USERS: user "alice"`, `TIDEWATCH_SERVER_AUTH_USERS: user "bob"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load([]string{"TIDEWATCH_SERVER_AUTH_USERS=" + tc.users})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Server.Warnings() {
				got = append(got, w.Error())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Warnings() = %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("warning %d = %q, want it to start with %q", i, got[i], w)
				}
				for _, secret := range []string{testBcrypt[7:], "c2FsdHNhbHRzYWx0"} {
					if strings.Contains(got[i], secret) {
						t.Errorf("warning %q shows the hash", got[i])
					}
				}
			}
		})
	}
}

func TestLoadServerTokenScopes(t *testing.T) {
	sum2 := strings.Repeat("ab", 32)
	tests := []struct {
		name  string
		value string
		want  map[string][]credential.DeployTarget // by token; nil: every right
		err   string                               // prefix of the only error
	}{
		{"unscoped", "ci:" + testTokenSum, map[string][]credential.DeployTarget{"ci": nil}, ""},
		{"projects and services", "ci:" + testTokenSum + ",shop-ci:" + sum2 + " deploy=shop,blog/web",
			map[string][]credential.DeployTarget{"ci": nil, "shop-ci": {{Project: "shop"}, {Project: "blog", Service: "web"}}}, ""},
		{"space after a comma, tab, sha256 prefix", "shop-ci:sha256:" + sum2 + "\tdeploy=shop, blog/web",
			map[string][]credential.DeployTarget{"shop-ci": {{Project: "shop"}, {Project: "blog", Service: "web"}}}, ""},
		{"two clauses, newline entries", "shop-ci:" + sum2 + " deploy=shop deploy=blog/web\nci:" + testTokenSum,
			map[string][]credential.DeployTarget{"shop-ci": {{Project: "shop"}, {Project: "blog", Service: "web"}}, "ci": nil}, ""},
		{"trailing space is no scope", "ci:" + testTokenSum + "   ", map[string][]credential.DeployTarget{"ci": nil}, ""},

		{"empty deploy", "ci:" + testTokenSum + " deploy=", nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": deploy target "" is not a compose project`},
		{"empty item", "ci:" + testTokenSum + " deploy=shop,", nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": deploy target "" is not`},
		{"wildcard", "ci:" + testTokenSum + " deploy=*", nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": deploy target "*" is not`},
		{"path", "ci:" + testTokenSum + " deploy=../etc", nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": deploy target "../etc" is not`},
		{"three parts", "ci:" + testTokenSum + " deploy=a/b/c", nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": deploy target "a/b/c" is not`},
		{"empty service", "ci:" + testTokenSum + " deploy=shop/", nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": deploy target "shop/" is not`},
		{"empty project", "ci:" + testTokenSum + " deploy=/web", nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": deploy target "/web" is not`},
		{"unknown scope", "ci:" + testTokenSum + " admin=all", nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": unknown scope "admin=all"`},
		{"upper case scope", "ci:" + testTokenSum + " DEPLOY=shop", nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": unknown scope "DEPLOY=shop"`},
		{"bare word", "ci:" + testTokenSum + " shop", nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": unknown scope "shop"`},
		{"control characters", "ci:" + testTokenSum + " deploy=sh\x01op", nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": deploy target "sh\x01op" is not`},
		{"glued to the digest", "ci:" + testTokenSum + "deploy=shop", nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": not a SHA-256`},
		{"huge target", "ci:" + testTokenSum + " deploy=" + strings.Repeat("x", 100000), nil, `TIDEWATCH_SERVER_API_TOKENS: token "ci": deploy target "xxxx`},
		{"too many targets", "ci:" + testTokenSum + " deploy=" + strings.Repeat("p,", MaxDeployTargets) + "p", nil,
			`TIDEWATCH_SERVER_API_TOKENS: token "ci": 65 deploy targets, more than 64`},
		{"a colon starts another entry", "ci:" + testTokenSum + " deploy=shop,web:8080", nil, `TIDEWATCH_SERVER_API_TOKENS: token "web": not a SHA-256`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load([]string{"TIDEWATCH_SERVER_API_TOKENS=" + tc.value})
			if tc.err != "" {
				got := leaves(err)
				if len(got) != 1 || !strings.HasPrefix(got[0], tc.err) {
					t.Fatalf("Load(API_TOKENS=%.60q) errors = %.300q, want one starting with %q", tc.value, got, tc.err)
				}
				if len(got[0]) > 500 || strings.Contains(got[0], testTokenSum) {
					t.Errorf("the error shows too much: %.200s", got[0])
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(API_TOKENS=%q) error = %v", tc.value, err)
			}
			got := map[string][]credential.DeployTarget{}
			for _, tok := range cfg.Server.Tokens {
				got[tok.Name] = tok.Deploy
				if tok.Scoped() != (tok.Deploy != nil) {
					t.Errorf("token %s: Scoped() = %v with scope %v", tok.Name, tok.Scoped(), tok.Deploy)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("scopes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServerWarnsCredentialsInClear(t *testing.T) {
	cert := writeFile(t, "cert.pem", "x", 0o600)
	users := "TIDEWATCH_SERVER_AUTH_USERS=alice:$2a$12$" + testBcrypt[7:]
	tokens := "TIDEWATCH_SERVER_API_TOKENS_FILE=" + writeFile(t, "tokens", "ci:"+testTokenSum+"\n", 0o600)
	tests := []struct {
		name string
		env  []string
		want []string // in the one warning; none when nil
	}{
		{"basic on every interface", []string{"TIDEWATCH_SERVER_ADDRESS=0.0.0.0", users},
			[]string{`TIDEWATCH_SERVER_ADDRESS: the server listens on 0.0.0.0 without TLS: HTTP Basic passwords (TIDEWATCH_SERVER_AUTH_USERS) cross the network in clear text`,
				"expected TIDEWATCH_SERVER_TLS_CERT and TIDEWATCH_SERVER_TLS_KEY set"}},
		{"tokens on a host name", []string{"TIDEWATCH_SERVER_ADDRESS=tidewatch.example.com", tokens},
			[]string{"API tokens (TIDEWATCH_SERVER_API_TOKENS_FILE)"}},
		{"both", []string{"tidewatch_server_address=10.0.0.5", users, tokens},
			[]string{"tidewatch_server_address: the server listens on 10.0.0.5", "HTTP Basic passwords (TIDEWATCH_SERVER_AUTH_USERS) and API tokens (TIDEWATCH_SERVER_API_TOKENS_FILE)"}},
		{"with TLS", []string{"TIDEWATCH_SERVER_ADDRESS=0.0.0.0", users, "TIDEWATCH_SERVER_TLS_CERT=" + cert, "TIDEWATCH_SERVER_TLS_KEY=" + cert}, nil},
		{"on loopback", []string{users}, nil},
		{"on ::1", []string{"TIDEWATCH_SERVER_ADDRESS=::1", users}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			ws := cfg.Server.Warnings()
			if tc.want == nil {
				if len(ws) != 0 {
					t.Errorf("Warnings() = %v, want none", ws)
				}
				return
			}
			if len(ws) != 1 {
				t.Fatalf("Warnings() = %v, want one", ws)
			}
			for _, w := range tc.want {
				if !strings.Contains(ws[0].Error(), w) {
					t.Errorf("warning %q lacks %q", ws[0].Error(), w)
				}
			}
		})
	}
}
