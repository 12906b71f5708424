package notify

import (
	"bufio"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nicholas-fedor/shoutrrr/pkg/router"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Option names.
const (
	OptURLs       = "URLS"
	OptTitle      = "TITLE"
	OptBody       = "BODY"
	OptBatchTitle = "BATCH_TITLE"
	OptBatchBody  = "BATCH_BODY"
	OptTimeout    = "TIMEOUT"
)

// Default templates: short lines that read well in a phone's notification.
const (
	DefaultTitle = `{{with .Update}}{{if eq .Event "update-applied"}}{{.Container}} updated to {{.Candidate}}` +
		`{{else if eq .Event "update-rolled-back"}}{{.Container}}: update to {{.Candidate}} rolled back` +
		`{{else if eq .Event "update-failed"}}{{.Container}}: update to {{.Candidate}} failed` +
		`{{else}}{{.Container}}: {{.Candidate}} available{{end}}{{end}}`
	DefaultBody = `{{with .Update}}{{.Current}} → {{.Candidate}} ({{.Kind}}) on {{.Host}}
{{.Image}}{{if .Detail}}
{{trunc 300 .Detail}}{{end}}{{if .Link}}
{{.Link}}{{end}}{{end}}`
	DefaultBatchTitle = `{{.Count}} container updates`
	DefaultBatchBody  = `{{range first 20 .Updates}}• {{.Container}}: {{.Current}} → {{.Candidate}} ({{.Kind}})
{{end}}{{if gt .Count 20}}… and {{sub .Count 20}} more{{end}}`
)

// Options are the notify trigger's options.
var Options = []sdk.Option{
	{Name: OptURLs, Required: true, Secret: true, Description: "shoutrrr service URLs (telegram://…, gotify://…, ntfy://…), separated by spaces or newlines; in a file (URLS_FILE) one per line, # starts a comment (secret: they hold tokens; errors and logs show only scheme#position)"},
	{Name: OptTitle, Default: DefaultTitle, Description: "the title template of a message with one update (Go text/template over the message data model); services without titles get it as the body's first line"},
	{Name: OptBody, Default: DefaultBody, Description: "the body template of a message with one update"},
	{Name: OptBatchTitle, Default: DefaultBatchTitle, Description: "the title template of a message with several updates (MODE=batch)"},
	{Name: OptBatchBody, Default: DefaultBatchBody, Description: "the body template of a message with several updates (MODE=batch)"},
	{Name: OptTimeout, Default: "10s", Description: "the longest sending one message to one service may take, a Go duration"},
}

// Config is a notify trigger's parsed configuration.
type Config struct {
	// Targets are the services, in the order of URLS.
	Targets []*Target
	// Title, Body, BatchTitle and BatchBody render messages.
	Title, Body, BatchTitle, BatchBody *sdk.Template
	// Timeout bounds sending one message to one service; default 10s.
	Timeout time.Duration
}

// schemeShape is what a scheme looks like; anything else is not echoed in errors.
var schemeShape = regexp.MustCompile(`^[a-z]{1,15}(\+[a-z]{1,10})?$`)

// ParseConfig parses a Configure call's options, reporting every problem at
// once, each naming its option. URLs never appear in errors: an entry is
// named by its position and, when it has a known one, its scheme.
func ParseConfig(options map[string]string) (Config, error) {
	o := sdk.NewOptions(options, Options)
	var c Config
	raw := splitURLs(o.String(OptURLs))
	if len(raw) == 0 && strings.TrimSpace(options[OptURLs]) != "" {
		o.Add(OptURLs, "no URL in it (only comments); expected one or more service URLs")
	}
	for i, s := range raw {
		t, err := newTarget(i+1, s)
		if err != nil {
			o.Add(OptURLs, "%v", err)
			continue
		}
		c.Targets = append(c.Targets, t)
	}
	for _, tc := range []struct {
		opt string
		dst **sdk.Template
	}{{OptTitle, &c.Title}, {OptBody, &c.Body}, {OptBatchTitle, &c.BatchTitle}, {OptBatchBody, &c.BatchBody}} {
		t, err := sdk.ParseTemplate(tc.opt, o.String(tc.opt))
		if err != nil {
			o.Add(tc.opt, "%v", err)
		}
		*tc.dst = t
	}
	c.Timeout = o.Duration(OptTimeout)
	return c, o.Err()
}

// splitURLs splits URLS: lines, # comments dropped, each line at white space.
func splitURLs(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Fields(line)...)
	}
	return out
}

// Schemes returns the service schemes shoutrrr knows, sorted.
func Schemes() []string {
	s := (&router.ServiceRouter{}).ListServices()
	slices.Sort(s)
	return s
}

// knownScheme reports whether scheme (its part before any "+") is a service.
func knownScheme(scheme string) bool {
	base, _, _ := strings.Cut(scheme, "+")
	return slices.Contains(Schemes(), base)
}

// parseURL parses one entry of URLS, with an error that quotes nothing of it
// but a scheme of the right shape.
func parseURL(i int, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("entry %d is not a service URL; expected scheme://… (telegram://, gotify://, ntfy://, …)", i)
	}
	scheme := strings.ToLower(u.Scheme)
	if !knownScheme(scheme) {
		shown := "its scheme"
		if schemeShape.MatchString(scheme) {
			shown = fmt.Sprintf("%q", scheme)
		}
		return nil, fmt.Errorf("entry %d: %s is not a service shoutrrr knows; expected one of %s", i, shown, strings.Join(Schemes(), ", "))
	}
	if base, sub, ok := strings.Cut(scheme, "+"); ok && base == "generic" && sub != "http" && sub != "https" {
		return nil, fmt.Errorf("entry %d (%s): a generic webhook is generic+http:// or generic+https://", i, scheme)
	}
	if u.Host == "" && u.Opaque == "" && scheme != "logger" {
		return nil, fmt.Errorf("entry %d (%s) has no host; expected %s://…@host/…", i, scheme, scheme)
	}
	return u, nil
}
