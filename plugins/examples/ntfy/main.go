// Command tidewatch-trigger-ntfy is a tidewatch trigger plugin written as an
// outside author would write one: it imports only plugins/sdk. It posts each
// update (or each batch) to an ntfy topic (https://ntfy.sh or a self-hosted
// server): the message text from a template, the title, priority, tags, and
// the release-notes link as the click action.
//
// Build it and drop it in tidewatch's plugins folder:
//
//	go build -o /etc/tidewatch/plugins/tidewatch-trigger-ntfy ./plugins/examples/ntfy
//	TIDEWATCH_PLUGINS_DIR=/etc/tidewatch/plugins
//	TIDEWATCH_TRIGGER_NTFY_PHONE_URL=https://ntfy.sh/my-updates
//	TIDEWATCH_TRIGGER_NTFY_PHONE_TOKEN_FILE=/run/secrets/ntfy_token   # optional
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

func main() { sdk.Serve(newTrigger()) }

// options are what the trigger takes; tidewatch shows them in `tidewatch plugins`.
var options = []sdk.Option{
	{Name: "URL", Description: "the topic's URL, e.g. https://ntfy.sh/my-updates", Required: true},
	{Name: "TOKEN", Description: "access token for a protected topic (sent as a bearer token)", Secret: true},
	{Name: "PRIORITY", Description: "message priority: min, low, default, high, max", Default: "default"},
	{Name: "TAGS", Description: "comma-separated tags (emoji short codes)", Default: "whale"},
	{Name: "TITLE", Description: "title template", Default: `{{if eq .Count 1}}{{.Update.Container}}: {{.Update.Current}} → {{.Update.Candidate}}{{else}}{{.Count}} updates{{end}}`},
	{Name: "MESSAGE", Description: "message template", Default: `{{range .Updates}}{{.Container}} on {{.Host}}: {{.Image}} {{.Current}} → {{.Candidate}} ({{.Kind}})
{{end}}`},
	{Name: "TIMEOUT", Description: "request timeout", Default: "10s"},
}

type trigger struct {
	name     string
	url      string
	token    string
	priority string
	tags     string
	title    *sdk.Template
	message  *sdk.Template
	client   *http.Client
	log      *slog.Logger
}

func newTrigger() *trigger { return &trigger{log: sdk.Logger()} }

func (t *trigger) Describe(context.Context) sdk.Description {
	return sdk.Description{Type: "ntfy", Description: "posts updates to an ntfy topic", Options: options}
}

func (t *trigger) Configure(ctx context.Context, name string, values map[string]string) error {
	o := sdk.NewOptions(values, options)
	t.name = name
	t.url = o.String("URL")
	if u, err := url.Parse(t.url); t.url != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		o.Add("URL", "%q is not an http(s) URL; expected https://host/topic", t.url)
	}
	t.token = o.String("TOKEN")
	t.priority = o.String("PRIORITY")
	switch t.priority {
	case "min", "low", "default", "high", "max":
	default:
		o.Add("PRIORITY", "%q is not a priority; expected min, low, default, high or max", t.priority)
	}
	t.tags = o.String("TAGS")
	var err error
	if t.title, err = sdk.ParseTemplate("TITLE", o.String("TITLE")); err != nil {
		o.Add("TITLE", "%v", err)
	}
	if t.message, err = sdk.ParseTemplate("MESSAGE", o.String("MESSAGE")); err != nil {
		o.Add("MESSAGE", "%v", err)
	}
	t.client = &http.Client{Timeout: o.Duration("TIMEOUT")}
	return o.Err()
}

func (t *trigger) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	return sdk.All(len(updates), t.post(ctx, sdk.NewMessage(t.name, updates)))
}

func (t *trigger) post(ctx context.Context, m sdk.Message) sdk.Result {
	title, err := t.title.Render(m)
	if err != nil {
		return sdk.Fail(err)
	}
	body, err := t.message.Render(m)
	if err != nil {
		return sdk.Fail(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewBufferString(body))
	if err != nil {
		return sdk.Fail(err)
	}
	req.Header.Set("Title", title)
	req.Header.Set("Priority", t.priority)
	req.Header.Set("Tags", t.tags)
	if m.Count == 1 && m.Update.Link != "" {
		req.Header.Set("Click", m.Update.Link)
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	start := time.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		return sdk.Retry(fmt.Errorf("posting to ntfy: %w", err)) // network errors and timeouts may pass
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	t.log.Debug("posted", "status", resp.StatusCode, "duration_ms", time.Since(start).Milliseconds())
	switch {
	case resp.StatusCode < 300:
		return sdk.OK(resp.Status)
	case resp.StatusCode == 429 || resp.StatusCode >= 500:
		return sdk.Retry(fmt.Errorf("ntfy answered %s: %s", resp.Status, strings.TrimSpace(string(snippet))))
	default:
		return sdk.Fail(errors.New("ntfy answered " + resp.Status + ": " + strings.TrimSpace(string(snippet))))
	}
}
