package sms

import (
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Option names.
const (
	OptAccountSID = "ACCOUNT_SID"
	OptAuthToken  = "AUTH_TOKEN"
	OptFrom       = "FROM"
	OptTo         = "TO"
	OptAPIURL     = "API_URL"
	OptTemplate   = "TEMPLATE"
	OptMaxLength  = "MAX_LENGTH"
)

// DefaultTemplate is the message when TEMPLATE is not set: one line per
// message, in ASCII so that it stays in the GSM-7 alphabet (160 characters
// a segment, not 70). One update:
//
//	tidewatch: web 1.0.0 -> 1.1.0 (minor) on local
//
// a rollout's outcome:
//
//	tidewatch: web updated 1.0.0 -> 1.1.0 on local
//
// and a batch:
//
//	tidewatch: 3 updates: web 1.0.0->1.1.0, db 16.4->16.5, cache latest->latest
const DefaultTemplate = `tidewatch: ` +
	`{{if eq .Count 1}}{{with .Update}}{{.Container}} ` +
	`{{if eq .Event "update-applied"}}updated {{.Current}} -> {{.Candidate}} on {{.Host}}` +
	`{{else if eq .Event "update-rolled-back"}}update {{.Current}} -> {{.Candidate}} rolled back on {{.Host}}{{if .Detail}}: {{.Detail}}{{end}}` +
	`{{else if eq .Event "update-failed"}}update {{.Current}} -> {{.Candidate}} FAILED on {{.Host}}{{if .Detail}}: {{.Detail}}{{end}}` +
	`{{else}}{{.Current}} -> {{.Candidate}} ({{.Kind}}) on {{.Host}}{{end}}{{end}}` +
	`{{else}}{{.Count}} updates:{{range $i, $u := .Updates}}{{if $i}},{{end}} {{$u.Container}} {{$u.Current}}->{{$u.Candidate}}{{end}}{{end}}`

// DefaultAPIURL is Twilio's API.
const DefaultAPIURL = "https://api.twilio.com"

// MaxLength is the longest body Twilio accepts, in characters (UTF-16 units).
const MaxLength = 1600

// Options are the SMS trigger's options.
var Options = []sdk.Option{
	{Name: OptAccountSID, Required: true, Description: `the Twilio account SID: "AC" and 32 hex digits`},
	{Name: OptAuthToken, Required: true, Secret: true, Description: "the account's auth token (or an API key's secret)"},
	{Name: OptFrom, Required: true, Description: `the sender: an E.164 number ("+15551234567"), a messaging service SID ("MG" and 32 hex digits), or an alphanumeric sender ID (up to 11 letters, digits and spaces)`},
	{Name: OptTo, Required: true, Description: "the recipients: E.164 numbers separated by commas; each gets its own message"},
	{Name: OptAPIURL, Default: DefaultAPIURL, Description: "the API's base URL: another Twilio region's, a compatible gateway's, a test server's; https, or http only to a loopback address (the auth token would go in clear)"},
	{Name: OptTemplate, Description: "the message template (Go text/template over the message data model); default: one short line, see the package documentation"},
	{Name: OptMaxLength, Default: "1600", Description: "the longest message in characters (UTF-16 units), 20 to 1600; a longer one is cut and ends with \"...\""},
}

// Config is an SMS trigger's parsed configuration.
type Config struct {
	// AccountSID is the Twilio account ("AC…").
	AccountSID string
	// AuthToken authenticates with AccountSID.
	AuthToken string
	// From is the sender number or alphanumeric ID; empty when
	// MessagingServiceSID is set.
	From string
	// MessagingServiceSID ("MG…") sends through a messaging service.
	MessagingServiceSID string
	// To are the recipients, without duplicates, in the order given.
	To []string
	// APIURL is the API's base URL, without a trailing slash; default Twilio's.
	APIURL string
	// Template renders the body; default DefaultTemplate.
	Template *sdk.Template
	// MaxLength is the longest body in UTF-16 units; default 1600.
	MaxLength int
}

var (
	accountSID   = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceSID   = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	e164         = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	alphanumeric = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
	hasLetter    = regexp.MustCompile(`[A-Za-z]`)
)

// ParseConfig parses a Configure call's options, reporting every problem at
// once, each naming its option. The auth token never appears in errors.
func ParseConfig(options map[string]string) (Config, error) {
	o := sdk.NewOptions(options, Options)
	var c Config

	c.AccountSID = strings.TrimSpace(o.String(OptAccountSID))
	if c.AccountSID != "" && !accountSID.MatchString(c.AccountSID) {
		o.Add(OptAccountSID, `%q is not an account SID; expected "AC" and 32 hex digits`, c.AccountSID)
	}
	c.AuthToken = strings.TrimSpace(o.String(OptAuthToken))

	from := strings.TrimSpace(o.String(OptFrom))
	switch {
	case from == "":
	case serviceSID.MatchString(from):
		c.MessagingServiceSID = from
	case strings.HasPrefix(from, "+"):
		if !e164.MatchString(from) {
			o.Add(OptFrom, "%q is not an E.164 number; expected + and up to 15 digits", from)
		}
		c.From = from
	case strings.HasPrefix(from, "MG"):
		o.Add(OptFrom, `%q is not a messaging service SID; expected "MG" and 32 hex digits`, from)
	case alphanumeric.MatchString(from) && hasLetter.MatchString(from):
		c.From = from
	default:
		o.Add(OptFrom, `%q is not a sender; expected an E.164 number, a messaging service SID or an alphanumeric ID of up to 11 characters`, from)
	}

	seen := map[string]bool{}
	list := o.List(OptTo)
	for _, to := range list {
		if !e164.MatchString(to) {
			o.Add(OptTo, "%q is not an E.164 number; expected + and up to 15 digits, like +15551234567", to)
			continue
		}
		if !seen[to] {
			seen[to] = true
			c.To = append(c.To, to)
		}
	}
	if strings.TrimSpace(o.String(OptTo)) != "" && len(list) == 0 {
		o.Add(OptTo, "no recipient; expected E.164 numbers separated by commas")
	}

	c.APIURL = strings.TrimRight(strings.TrimSpace(o.String(OptAPIURL)), "/")
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		o.Add(OptAPIURL, "%q is not a base URL; expected http(s)://host[/path], like %s", c.APIURL, DefaultAPIURL)
	} else if u.Scheme == "http" && !loopback(u.Hostname()) {
		o.Add(OptAPIURL, "%q is plain HTTP to %s, which would send the auth token in clear; expected https://, or http:// to a loopback address (127.0.0.1, ::1, localhost)", c.APIURL, u.Hostname())
	}

	text := o.String(OptTemplate)
	if text == "" {
		text = DefaultTemplate
	}
	t, err := sdk.ParseTemplate(OptTemplate, text)
	if err != nil {
		o.Add(OptTemplate, "%v", err)
	}
	c.Template = t

	c.MaxLength = o.Int(OptMaxLength, 20, MaxLength)
	return c, o.Err()
}

// loopback reports whether host (a URL's host name, without port or
// brackets) is this machine: a loopback IP address or "localhost". Plain
// HTTP is allowed only there, where the token does not cross a network.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
