package email

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// minimal are the options every valid configuration needs.
func minimal(extra map[string]string) map[string]string {
	o := map[string]string{OptHost: "smtp.example.com", OptFrom: "tidewatch@example.com", OptTo: "ops@example.com"}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

// writePEM writes a self-signed certificate and returns its path.
func writePEM(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, testCertPEM(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseConfigValues(t *testing.T) {
	ca := writePEM(t)
	tests := []struct {
		name    string
		options map[string]string
		check   func(t *testing.T, c Config)
	}{
		{"defaults", minimal(nil), func(t *testing.T, c Config) {
			got := []any{c.Host, c.Port, c.TLS, c.TLSInsecure, c.RootCAs == nil, c.Auth, c.Username, c.Timeout, c.HTML != nil}
			want := []any{"smtp.example.com", 587, TLSStartTLS, false, true, AuthNone, "", 30 * time.Second, true}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("defaults (-want +got):\n%s", diff)
			}
		}},
		{"tls mode default port", minimal(map[string]string{OptTLS: "TLS"}), func(t *testing.T, c Config) {
			if c.TLS != TLSImplicit || c.Port != 465 {
				t.Errorf("TLS, Port = %q, %d; want tls, 465", c.TLS, c.Port)
			}
		}},
		{"none mode default port", minimal(map[string]string{OptTLS: "none"}), func(t *testing.T, c Config) {
			if c.TLS != TLSNone || c.Port != 25 {
				t.Errorf("TLS, Port = %q, %d; want none, 25", c.TLS, c.Port)
			}
		}},
		{"ipv6 host", minimal(map[string]string{OptHost: "[::1]"}), func(t *testing.T, c Config) {
			if c.Host != "::1" || c.addr() != "[::1]:587" {
				t.Errorf("Host, addr = %q, %q; want ::1, [::1]:587", c.Host, c.addr())
			}
		}},
		{"explicit port", minimal(map[string]string{OptPort: "2525"}), func(t *testing.T, c Config) {
			if c.Port != 2525 {
				t.Errorf("Port = %d, want 2525", c.Port)
			}
		}},
		{"auth defaults to plain with a user", minimal(map[string]string{OptUsername: "u", OptPassword: "p"}), func(t *testing.T, c Config) {
			if c.Auth != AuthPlain || c.Username != "u" || c.Password != "p" {
				t.Errorf("Auth, Username, Password = %q, %q, %q; want plain, u, p", c.Auth, c.Username, c.Password)
			}
		}},
		{"auth login", minimal(map[string]string{OptUsername: "u", OptPassword: "p", OptAuth: "LOGIN"}), func(t *testing.T, c Config) {
			if c.Auth != AuthLogin {
				t.Errorf("Auth = %q, want login", c.Auth)
			}
		}},
		{"cram-md5 over none", minimal(map[string]string{OptUsername: "u", OptPassword: "p", OptAuth: "cram-md5", OptTLS: "none"}), func(t *testing.T, c Config) {
			if c.Auth != AuthCramMD5 {
				t.Errorf("Auth = %q, want cram-md5", c.Auth)
			}
		}},
		{"ca file and insecure", minimal(map[string]string{OptTLSCAFile: ca}), func(t *testing.T, c Config) {
			if c.RootCAs == nil {
				t.Errorf("RootCAs = nil, want the pool of %s", ca)
			}
		}},
		{"insecure", minimal(map[string]string{OptTLSInsecure: "yes"}), func(t *testing.T, c Config) {
			if !c.TLSInsecure {
				t.Errorf("TLSInsecure = false, want true")
			}
		}},
		{"addresses", minimal(map[string]string{OptFrom: `"Tide Watch" <tw@example.com>`, OptTo: `a@example.com, "Doe, Jane" <jane@example.com>,b@example.com`}), func(t *testing.T, c Config) {
			var to []string
			for _, a := range c.To {
				to = append(to, a.Name+"|"+a.Address)
			}
			want := []string{"|a@example.com", "Doe, Jane|jane@example.com", "|b@example.com"}
			if diff := cmp.Diff(want, to); diff != "" {
				t.Errorf("To (-want +got):\n%s", diff)
			}
			if c.From.Name != "Tide Watch" || c.From.Address != "tw@example.com" {
				t.Errorf("From = %+v", c.From)
			}
		}},
		{"html none", minimal(map[string]string{OptHTML: "None"}), func(t *testing.T, c Config) {
			if c.HTML != nil {
				t.Errorf("HTML = %v, want nil for none", c.HTML)
			}
		}},
		{"timeout", minimal(map[string]string{OptTimeout: "1m30s"}), func(t *testing.T, c Config) {
			if c.Timeout != 90*time.Second {
				t.Errorf("Timeout = %s, want 1m30s", c.Timeout)
			}
		}},
		{"templates", minimal(map[string]string{OptSubject: "S {{.Update.Container}}", OptBody: "B {{.Count}}", OptHTML: "<b>{{.Update.Image}}</b>"}), func(t *testing.T, c Config) {
			msg := sdk.SampleMessage()
			s, _ := c.Subject.Render(msg)
			b, _ := c.Body.Render(msg)
			var h strings.Builder
			_ = c.HTML.Execute(&h, msg)
			if diff := cmp.Diff([]string{"S web", "B 1", "<b>registry.example/web</b>"}, []string{s, b, h.String()}); diff != "" {
				t.Errorf("rendered (-want +got):\n%s", diff)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(tc.options)
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	const canary = "canary-pw-7f3a9"
	tests := []struct {
		name    string
		options map[string]string
		want    []string // "OPTION: message start"
	}{
		{"nothing", map[string]string{}, []string{"HOST: required", "FROM: required", "TO: required"}},
		{"unknown option", minimal(map[string]string{"CC": "x@example.com"}), []string{"CC: unknown option"}},
		{"host with port", minimal(map[string]string{OptHost: "smtp.example.com:587"}), []string{`HOST: "smtp.example.com:587" holds a port`}},
		{"host with scheme", minimal(map[string]string{OptHost: "smtp://smtp.example.com"}), []string{`HOST: "smtp://smtp.example.com" is not a host name`}},
		{"bad port", minimal(map[string]string{OptPort: "70000"}), []string{`PORT: "70000" is not an integer from 1 to 65535`}},
		{"port not a number", minimal(map[string]string{OptPort: "smtp"}), []string{`PORT: "smtp" is not an integer`}},
		{"bad tls", minimal(map[string]string{OptTLS: "ssl"}), []string{`TLS: "ssl" is not a TLS mode`}},
		{"bad insecure", minimal(map[string]string{OptTLSInsecure: "maybe"}), []string{`TLS_INSECURE: "maybe" is not a boolean`}},
		{"missing ca file", minimal(map[string]string{OptTLSCAFile: "/nonexistent/ca.pem"}), []string{"TLS_CAFILE: reading /nonexistent/ca.pem"}},
		{"ca file without pem", minimal(map[string]string{OptTLSCAFile: "config_test.go"}), []string{"TLS_CAFILE: config_test.go holds no PEM certificate"}},
		{"insecure and ca file", minimal(map[string]string{OptTLSInsecure: "true", OptTLSCAFile: writePEM(t)}), []string{"TLS_INSECURE: true accepts any certificate"}},
		{"insecure with none", minimal(map[string]string{OptTLS: "none", OptTLSInsecure: "true"}), []string{"TLS_INSECURE: has no effect with TLS=none"}},
		{"ca file with none", minimal(map[string]string{OptTLS: "none", OptTLSCAFile: writePEM(t)}), []string{"TLS_CAFILE: has no effect with TLS=none"}},
		{"password without user", minimal(map[string]string{OptPassword: canary}), []string{"USERNAME: required with PASSWORD"}},
		{"user without password", minimal(map[string]string{OptUsername: "u"}), []string{"PASSWORD: required with USERNAME"}},
		{"auth without user", minimal(map[string]string{OptAuth: "login"}), []string{"USERNAME: required by AUTH=login"}},
		{"auth none with user", minimal(map[string]string{OptAuth: "none", OptUsername: "u", OptPassword: canary}), []string{"AUTH: none, but USERNAME is set"}},
		{"bad auth", minimal(map[string]string{OptAuth: "xoauth2", OptUsername: "u", OptPassword: canary}), []string{`AUTH: "xoauth2" is not supported`}},
		{"plain in clear", minimal(map[string]string{OptTLS: "none", OptUsername: "u", OptPassword: canary}), []string{"AUTH: plain would send the password in clear"}},
		{"bad from", minimal(map[string]string{OptFrom: "not an address"}), []string{`FROM: "not an address" is not a mail address`}},
		{"bad to", minimal(map[string]string{OptTo: "a@example.com, nope"}), []string{`TO: "a@example.com, nope" is not a list of mail addresses`}},
		{"subject syntax", minimal(map[string]string{OptSubject: "{{.Update.Container"}), []string{"SUBJECT: parsing template"}},
		{"subject unknown field", minimal(map[string]string{OptSubject: "{{.Update.Nope}}"}), []string{"SUBJECT: rendering template"}},
		{"body unknown field", minimal(map[string]string{OptBody: "{{.Nope}}"}), []string{"BODY: rendering template"}},
		{"html syntax", minimal(map[string]string{OptHTML: "{{if}}"}), []string{"HTML: parsing template"}},
		{"html unknown field", minimal(map[string]string{OptHTML: "<p>{{.Update.Nope}}</p>"}), []string{"HTML: rendering template"}},
		{"bad timeout", minimal(map[string]string{OptTimeout: "30"}), []string{`TIMEOUT: "30" is not a duration`}},
		{"negative timeout", minimal(map[string]string{OptTimeout: "-1s"}), []string{`TIMEOUT: "-1s" is not a duration`}},
		{"several at once", map[string]string{OptHost: "h", OptFrom: "f@example.com", OptTo: "t@example.com", OptTLS: "x", OptTimeout: "y"}, []string{`TLS: "x"`, `TIMEOUT: "y"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(tc.options)
			if err == nil {
				t.Fatalf("ParseConfig(%v) = nil error, want %q", tc.options, tc.want)
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("error shows the password: %v", err)
			}
			got := sdk.OptionErrors(err)
			if len(got) != len(tc.want) {
				t.Errorf("ParseConfig gave %d errors, want %d:\n%v", len(got), len(tc.want), err)
			}
			for _, w := range tc.want {
				opt, _, _ := strings.Cut(w, ":")
				var found bool
				for _, e := range got {
					found = found || (e.Option == opt && strings.HasPrefix(e.Error(), w))
				}
				if !found {
					t.Errorf("no error starting with %q in:\n%v", w, err)
				}
			}
		})
	}
}

func TestOptionsDeclared(t *testing.T) {
	names := map[string]sdk.Option{}
	for _, o := range Options {
		names[o.Name] = o
	}
	for _, n := range []string{OptHost, OptPort, OptTLS, OptTLSInsecure, OptTLSCAFile, OptUsername, OptPassword, OptAuth, OptFrom, OptTo, OptSubject, OptBody, OptHTML, OptTimeout} {
		o, ok := names[n]
		if !ok {
			t.Errorf("option %s not declared", n)
			continue
		}
		if o.Description == "" {
			t.Errorf("option %s has no description", n)
		}
		if o.Secret != (n == OptPassword) {
			t.Errorf("option %s: Secret = %v, want %v", n, o.Secret, n == OptPassword)
		}
	}
	if len(names) != len(Options) || len(Options) != 14 {
		t.Errorf("Options has %d entries (%d distinct), want 14", len(Options), len(names))
	}
}
