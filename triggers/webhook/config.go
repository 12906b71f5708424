package webhook

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Option names.
const (
	OptURL         = "URL"
	OptMethod      = "METHOD"
	OptHeaders     = "HEADERS"
	OptSecret      = "SECRET"
	OptTimeout     = "TIMEOUT"
	OptTLSInsecure = "TLS_INSECURE"
	OptTLSCAFile   = "TLS_CAFILE"
	OptTemplate    = "TEMPLATE"
)

// Headers the trigger sets itself, which HEADERS cannot set.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderSignature      = "X-Tidewatch-Signature"
	HeaderTimestamp      = "X-Tidewatch-Timestamp"
)

// Options are the webhook trigger's options.
var Options = []sdk.Option{
	{Name: OptURL, Required: true, Secret: true, Description: "the address to send to: an absolute http:// or https:// URL (secret: many endpoints carry a token in it)"},
	{Name: OptMethod, Default: "POST", Description: "the HTTP method: POST, PUT or PATCH"},
	{Name: OptHeaders, Secret: true, Description: "extra request headers as Name=Value pairs separated by commas (or by newlines, when a value holds a comma), e.g. \"Authorization=Bearer abc, X-Env=prod\" (secret: it often holds credentials)"},
	{Name: OptSecret, Secret: true, Description: "when set, each request is signed: X-Tidewatch-Signature: sha256=<hex HMAC-SHA256 of \"<X-Tidewatch-Timestamp>.<body>\" keyed with this secret>"},
	{Name: OptTimeout, Default: "10s", Description: "the longest one request may take, a Go duration"},
	{Name: OptTLSInsecure, Default: "false", Description: "true to accept any server certificate (tests only)"},
	{Name: OptTLSCAFile, Description: "a PEM file of CA certificates to trust instead of the system's"},
	{Name: OptTemplate, Description: "a message template for the request body (Go text/template over the message data model); default: the JSON payload"},
}

// Config is a webhook trigger's parsed configuration.
type Config struct {
	// URL is where requests go.
	URL *url.URL
	// Method is POST (default), PUT or PATCH.
	Method string
	// Headers are extra request headers; nil for none.
	Headers http.Header
	// Secret signs requests when not empty.
	Secret string
	// Timeout bounds one request; default 10s.
	Timeout time.Duration
	// TLSInsecure skips verifying the server's certificate; default false.
	TLSInsecure bool
	// RootCAs are the CAs trusted instead of the system's; nil for the system's.
	RootCAs *x509.CertPool
	// Template renders the body; nil sends the JSON Payload.
	Template *sdk.Template
}

// ParseConfig parses a Configure call's options, reporting every problem at
// once, each naming its option. Secret values never appear in errors.
func ParseConfig(options map[string]string) (Config, error) {
	o := sdk.NewOptions(options, Options)
	var c Config

	if raw := strings.TrimSpace(o.String(OptURL)); raw != "" {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			o.Add(OptURL, "not a URL; expected http(s)://host/path")
		case u.Scheme != "http" && u.Scheme != "https":
			o.Add(OptURL, "scheme must be http or https; expected http(s)://host/path")
		case u.Host == "":
			o.Add(OptURL, "has no host; expected http(s)://host/path")
		default:
			c.URL = u
		}
	}

	c.Method = strings.ToUpper(strings.TrimSpace(o.String(OptMethod)))
	switch c.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		o.Add(OptMethod, "%q is not supported; expected POST, PUT or PATCH", c.Method)
	}

	h, problems := parseHeaders(o.String(OptHeaders))
	for _, p := range problems {
		o.Add(OptHeaders, "%s", p)
	}
	c.Headers = h

	c.Secret = o.String(OptSecret)
	c.Timeout = o.Duration(OptTimeout)
	c.TLSInsecure = o.Bool(OptTLSInsecure)

	c.RootCAs = o.CertPool(OptTLSCAFile)

	if text := o.String(OptTemplate); text != "" {
		t, err := sdk.ParseTemplate(OptTemplate, text)
		if err != nil {
			o.Add(OptTemplate, "%v", err)
		}
		c.Template = t
	}
	return c, o.Err()
}

// reserved are headers HEADERS cannot set: the trigger's own, and those
// net/http computes.
var reserved = map[string]bool{
	HeaderIdempotencyKey: true, HeaderSignature: true, HeaderTimestamp: true,
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
}

// parseHeaders parses HEADERS: Name=Value entries separated by newlines when
// the text has one, else by commas. Problems name entries by position and
// header names, never values (HEADERS is secret).
func parseHeaders(s string) (http.Header, []string) {
	pairs := sdk.Pairs(s)
	if pairs == nil {
		return nil, nil
	}
	h := http.Header{}
	var problems []string
	for _, p := range pairs {
		i, name, value := p.Index-1, p.Name, p.Value
		switch {
		case !p.OK:
			problems = append(problems, fmt.Sprintf("entry %d is not Name=Value", i+1))
		case !validName(name):
			problems = append(problems, fmt.Sprintf("entry %d: the header name is not valid; expected letters, digits and -", i+1))
		case reserved[http.CanonicalHeaderKey(name)]:
			problems = append(problems, fmt.Sprintf("entry %d: %s is set by the trigger itself", i+1, http.CanonicalHeaderKey(name)))
		case !validValue(value):
			problems = append(problems, fmt.Sprintf("entry %d (%s): the value holds a character not allowed in a header", i+1, http.CanonicalHeaderKey(name)))
		default:
			h.Add(name, value)
		}
	}
	return h, problems
}

// validName reports whether s is an HTTP token (RFC 9110, 5.6.2).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

// validValue reports whether s holds no control character but tab.
func validValue(s string) bool {
	for _, r := range s {
		if (r < ' ' && r != '\t') || r == 0x7f {
			return false
		}
	}
	return true
}
