package email

import (
	"crypto/x509"
	"fmt"
	htmltemplate "html/template"
	"io"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Option names.
const (
	OptHost        = "HOST"
	OptPort        = "PORT"
	OptTLS         = "TLS"
	OptTLSInsecure = "TLS_INSECURE"
	OptTLSCAFile   = "TLS_CAFILE"
	OptUsername    = "USERNAME"
	OptPassword    = "PASSWORD"
	OptAuth        = "AUTH"
	OptFrom        = "FROM"
	OptTo          = "TO"
	OptSubject     = "SUBJECT"
	OptBody        = "BODY"
	OptHTML        = "HTML"
	OptTimeout     = "TIMEOUT"
)

// TLS modes.
const (
	// TLSNone speaks plain SMTP; the default port is 25.
	TLSNone = "none"
	// TLSStartTLS upgrades the connection with STARTTLS, which the server
	// must offer; the default port is 587.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS); the default port is 465.
	TLSImplicit = "tls"
)

// Auth mechanisms.
const (
	AuthNone    = "none"
	AuthPlain   = "plain"
	AuthLogin   = "login"
	AuthCramMD5 = "cram-md5"
)

// HTMLNone as the HTML option sends a text-only message.
const HTMLNone = "none"

// Default templates, over sdk.Message. A batch (several updates in one
// message) gets "[tidewatch] N updates" as its subject.
const (
	DefaultSubject = `[tidewatch] {{if eq .Count 1}}{{with .Update}}{{.Container}}: {{.Current}} → {{.Candidate}} ({{.Kind}})` +
		`{{if and .Event (ne .Event "update-available")}} {{.Event}}{{end}}{{end}}{{else}}{{.Count}} updates{{end}}`

	DefaultBody = `{{if eq .Count 1}}tidewatch has news of 1 container.{{else}}tidewatch has news of {{.Count}} containers.{{end}}
{{range .Updates}}
{{.Container}} on {{.Host}}: {{if eq .Event "update-applied"}}updated{{else if eq .Event "update-failed"}}update FAILED{{else if eq .Event "update-rolled-back"}}update rolled back{{else}}update available{{end}}
  image:   {{.Image}}
  running: {{.Current}}{{if .CurrentDigest}} ({{.CurrentDigest}}){{end}}
  offered: {{.Candidate}}{{if .CandidateDigest}} ({{.CandidateDigest}}){{end}}
  kind:    {{.Kind}}
{{- if .Link}}
  notes:   {{.Link}}{{end}}
{{- if .Detail}}
  detail:  {{.Detail}}{{end}}
{{end}}
-- 
Sent by tidewatch (trigger {{.Trigger}}).
`

	DefaultHTML = `<!DOCTYPE html>
<html><body style="font-family: sans-serif">
<p>{{if eq .Count 1}}tidewatch has news of 1 container.{{else}}tidewatch has news of {{.Count}} containers.{{end}}</p>
<table cellpadding="4" style="border-collapse: collapse">
<tr><th align="left">Container</th><th align="left">Host</th><th align="left">Image</th><th align="left">Running</th><th align="left">Offered</th><th align="left">Kind</th><th align="left">Event</th><th align="left">Notes</th></tr>
{{range .Updates}}<tr><td>{{.Container}}</td><td>{{.Host}}</td><td>{{.Image}}</td><td>{{.Current}}</td><td>{{.Candidate}}</td><td>{{.Kind}}</td><td>{{.Event}}{{if .Detail}}: {{.Detail}}{{end}}</td><td>{{if .Link}}<a href="{{.Link}}">release notes</a>{{end}}</td></tr>
{{end}}</table>
<p style="color: #666">Sent by tidewatch (trigger {{.Trigger}}).</p>
</body></html>
`
)

// Options are the email trigger's options.
var Options = []sdk.Option{
	{Name: OptHost, Required: true, Description: "the SMTP server's host name or IP address, without port"},
	{Name: OptPort, Description: "the SMTP server's port; default 587 for TLS=starttls, 465 for TLS=tls, 25 for TLS=none"},
	{Name: OptTLS, Default: TLSStartTLS, Description: "how the connection is encrypted: starttls (the server must offer STARTTLS), tls (TLS from the first byte, SMTPS) or none"},
	{Name: OptTLSInsecure, Default: "false", Description: "true to accept any server certificate (tests only)"},
	{Name: OptTLSCAFile, Description: "a PEM file of CA certificates to trust instead of the system's (a private CA, a self-signed server)"},
	{Name: OptUsername, Description: "the user name to authenticate with; needs PASSWORD"},
	{Name: OptPassword, Secret: true, Description: "the password to authenticate with"},
	{Name: OptAuth, Description: "the authentication mechanism: plain, login, cram-md5 or none; default plain when USERNAME is set, else none"},
	{Name: OptFrom, Required: true, Description: "the sender: an address, or \"Name <address>\""},
	{Name: OptTo, Required: true, Description: "the recipients, comma-separated addresses (each an address or \"Name <address>\")"},
	{Name: OptSubject, Default: DefaultSubject, Description: "the subject, a message template (Go text/template); line breaks become spaces"},
	{Name: OptBody, Default: DefaultBody, Description: "the plain-text body, a message template (Go text/template)"},
	{Name: OptHTML, Default: DefaultHTML, Description: "the HTML body, a message template (Go html/template: values are escaped); \"none\" sends text only"},
	{Name: OptTimeout, Default: "30s", Description: "the longest one message may take, from connecting to the server's reply to the data, a Go duration"},
}

// Config is an email trigger's parsed configuration.
type Config struct {
	// Host is the SMTP server; Port its port (default by TLS mode: 587, 465, 25).
	Host string
	Port int
	// TLS is TLSStartTLS (default), TLSImplicit or TLSNone.
	TLS string
	// TLSInsecure skips verifying the server's certificate; default false.
	TLSInsecure bool
	// RootCAs are the CAs trusted instead of the system's; nil for the system's.
	RootCAs *x509.CertPool
	// Username and Password authenticate with Auth; Auth is AuthNone when Username is empty.
	Username string
	Password string
	Auth     string
	// From is the sender; To the recipients, at least one.
	From *mail.Address
	To   []*mail.Address
	// Subject, Body and HTML render the message; HTML is nil for text only.
	Subject *sdk.Template
	Body    *sdk.Template
	HTML    *htmltemplate.Template
	// Timeout bounds one message; default 30s.
	Timeout time.Duration
}

// ParseConfig parses a Configure call's options, reporting every problem at
// once, each naming its option. The password never appears in errors.
func ParseConfig(options map[string]string) (Config, error) {
	o := sdk.NewOptions(options, Options)
	var c Config

	c.Host = strings.TrimSpace(o.String(OptHost))
	if strings.HasPrefix(c.Host, "[") && strings.HasSuffix(c.Host, "]") {
		c.Host = c.Host[1 : len(c.Host)-1] // an IPv6 literal written as in a URL
	}
	if c.Host != "" {
		if strings.ContainsAny(c.Host, "/ \t") {
			o.Add(OptHost, "%q is not a host name; expected a name or IP address like smtp.example.com", c.Host)
		} else if _, _, err := net.SplitHostPort(c.Host); err == nil {
			o.Add(OptHost, "%q holds a port; put the host name alone here and the port in PORT", c.Host)
		}
	}

	c.TLS = strings.ToLower(strings.TrimSpace(o.String(OptTLS)))
	defaultPort := 0
	switch c.TLS {
	case TLSStartTLS:
		defaultPort = 587
	case TLSImplicit:
		defaultPort = 465
	case TLSNone:
		defaultPort = 25
	default:
		o.Add(OptTLS, "%q is not a TLS mode; expected starttls, tls or none", c.TLS)
	}
	c.Port = o.Int(OptPort, 1, 65535)
	if c.Port == 0 && strings.TrimSpace(o.String(OptPort)) == "" {
		c.Port = defaultPort
	}

	c.TLSInsecure = o.Bool(OptTLSInsecure)
	c.RootCAs = o.CertPool(OptTLSCAFile)
	if c.TLS == TLSNone {
		if c.TLSInsecure {
			o.Add(OptTLSInsecure, "has no effect with TLS=none; expected TLS=starttls or tls, or TLS_INSECURE unset")
		}
		if o.String(OptTLSCAFile) != "" {
			o.Add(OptTLSCAFile, "has no effect with TLS=none; expected TLS=starttls or tls, or TLS_CAFILE unset")
		}
	}
	if c.TLSInsecure && o.String(OptTLSCAFile) != "" {
		o.Add(OptTLSInsecure, "true accepts any certificate, which makes TLS_CAFILE pointless; set one of them")
	}

	c.Username = o.String(OptUsername)
	c.Password = o.String(OptPassword)
	c.Auth = strings.ToLower(strings.TrimSpace(o.String(OptAuth)))
	if c.Auth == "" {
		c.Auth = AuthNone
		if c.Username != "" {
			c.Auth = AuthPlain
		}
	}
	switch c.Auth {
	case AuthNone:
		if c.Username != "" {
			o.Add(OptAuth, "none, but USERNAME is set; expected plain, login or cram-md5, or USERNAME unset")
		}
	case AuthPlain, AuthLogin, AuthCramMD5:
		if c.Username == "" {
			o.Add(OptUsername, "required by AUTH=%s", c.Auth)
		}
		if c.Auth != AuthCramMD5 && c.TLS == TLSNone {
			o.Add(OptAuth, "%s would send the password in clear over TLS=none; expected TLS=starttls or tls, or AUTH=cram-md5", c.Auth)
		}
	default:
		o.Add(OptAuth, "%q is not supported; expected plain, login, cram-md5 or none", c.Auth)
	}
	if c.Username != "" && c.Password == "" {
		o.Add(OptPassword, "required with USERNAME")
	}
	if c.Password != "" && c.Username == "" {
		o.Add(OptUsername, "required with PASSWORD")
	}

	if s := strings.TrimSpace(o.String(OptFrom)); s != "" {
		a, err := mail.ParseAddress(s)
		if err != nil {
			o.Add(OptFrom, "%q is not a mail address (%v); expected a@example.com or \"Name <a@example.com>\"", s, err)
		}
		c.From = a
	}
	if s := strings.TrimSpace(o.String(OptTo)); s != "" {
		list, err := mail.ParseAddressList(s)
		if err != nil {
			o.Add(OptTo, "%q is not a list of mail addresses (%v); expected a@example.com, \"Name <b@example.com>\"", s, err)
		}
		c.To = list
	}

	var err error
	if c.Subject, err = sdk.ParseTemplate(OptSubject, o.String(OptSubject)); err != nil {
		o.Add(OptSubject, "%v", err)
	}
	if c.Body, err = sdk.ParseTemplate(OptBody, o.String(OptBody)); err != nil {
		o.Add(OptBody, "%v", err)
	}
	if text := o.String(OptHTML); strings.ToLower(strings.TrimSpace(text)) != HTMLNone {
		if c.HTML, err = parseHTML(OptHTML, text); err != nil {
			o.Add(OptHTML, "%v", err)
		}
	}

	c.Timeout = o.Duration(OptTimeout)
	return c, o.Err()
}

// parseHTML parses an HTML message template with html/template, which
// escapes every value for its place in the page, and tries it once on the
// sample message, as sdk.ParseTemplate does for text.
func parseHTML(name, text string) (*htmltemplate.Template, error) {
	t, err := htmltemplate.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parsing template: %w", err)
	}
	if err := t.Execute(io.Discard, sdk.SampleMessage()); err != nil {
		return nil, fmt.Errorf("rendering template: %w", err)
	}
	return t, nil
}

// addr returns host:port.
func (c Config) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }
