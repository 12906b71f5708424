package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// pager is a trigger as a plugin author writes one: it declares its options,
// checks them once in Configure, and delivers in Fire.
type pager struct {
	url     string
	timeout time.Duration
	message *sdk.Template
}

var pagerOptions = []sdk.Option{
	{Name: "URL", Description: "the pager service's endpoint", Required: true},
	{Name: "TOKEN", Description: "the service's API token", Secret: true},
	{Name: "TIMEOUT", Description: "request timeout", Default: "5s"},
	{Name: "MESSAGE", Description: "message template", Default: "{{.Update.Container}}: {{.Update.Current}} → {{.Update.Candidate}}"},
}

func (p *pager) Describe(context.Context) sdk.Description {
	return sdk.Description{Type: "pager", Description: "pages the on-call person", Options: pagerOptions}
}

func (p *pager) Configure(ctx context.Context, name string, options map[string]string) error {
	o := sdk.NewOptions(options, pagerOptions)
	p.url = o.String("URL")
	if p.url != "" && !strings.HasPrefix(p.url, "https://") {
		o.Add("URL", "%q is not an https URL", p.url)
	}
	p.timeout = o.Duration("TIMEOUT")
	var err error
	if p.message, err = sdk.ParseTemplate("MESSAGE", o.String("MESSAGE")); err != nil {
		o.Add("MESSAGE", "%v", err)
	}
	return o.Err()
}

func (p *pager) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	results := make([]sdk.Result, len(updates))
	for i, u := range updates {
		text, err := p.message.Render(sdk.NewMessage("oncall", []sdk.Update{u}))
		if err != nil {
			results[i] = sdk.Fail(err)
			continue
		}
		status := send(ctx, p.url, u.Key, text)
		switch {
		case status < 300:
			results[i] = sdk.OK(fmt.Sprint("HTTP ", status))
		case status >= 500:
			results[i] = sdk.Retry(fmt.Errorf("the pager answered %d", status)) // tried again later
		default:
			results[i] = sdk.Fail(fmt.Errorf("the pager answered %d", status)) // trying again cannot help
		}
	}
	return results
}

// send stands for the HTTP request a real trigger makes, with key as its
// idempotency key.
func send(ctx context.Context, url, key, text string) int { return http.StatusAccepted }

// A plugin's main serves its trigger; tidewatch starts it as
// tidewatch-trigger-pager from its plugins folder.
func ExampleServe() {
	var t sdk.Trigger = &pager{}
	_ = t // in a plugin's main: sdk.Serve(t)
}

// Configure reports every problem at once, each naming its option;
// tidewatch shows them with the variable's full name.
func ExampleNewOptions() {
	p := &pager{}
	err := p.Configure(context.Background(), "oncall", map[string]string{"URL": "http://pager.example", "TIMEOUT": "soon", "COLOR": "red"})
	for _, e := range sdk.OptionErrors(err) {
		fmt.Println(e)
	}
	// Unordered output:
	// COLOR: unknown option
	// URL: "http://pager.example" is not an https URL
	// TIMEOUT: "soon" is not a duration; expected a positive Go duration like 10s or 1m30s
}

// Fire returns one result per update: delivered, retry later, or failed for good.
func ExampleTrigger() {
	p := &pager{}
	if err := p.Configure(context.Background(), "oncall", map[string]string{"URL": "https://pager.example/v1"}); err != nil {
		fmt.Println(err)
		return
	}
	u := sdk.SampleMessage().Update
	for _, r := range p.Fire(context.Background(), []sdk.Update{u}) {
		fmt.Println(r.Err, r.Detail)
	}
	// Output: <nil> HTTP 202
}

// Message templates see a fixed data model: .Trigger, .Count, .Update and .Updates.
func ExampleParseTemplate() {
	t, err := sdk.ParseTemplate("TEXT", `{{.Count}} update(s):{{range .Updates}} {{.Container}} {{.Current}}→{{.Candidate}} ({{.Kind}}){{end}}`)
	if err != nil {
		fmt.Println(err)
		return
	}
	text, _ := t.Render(sdk.SampleMessage())
	fmt.Println(text)

	_, err = sdk.ParseTemplate("TEXT", `{{.Update.Version}}`)
	fmt.Println(err != nil)
	// Output:
	// 1 update(s): web 1.0.0→1.1.0 (minor)
	// true
}

// Permanent marks an error that retrying cannot fix.
func ExamplePermanent() {
	retry := sdk.Retry(errors.New("503 from the server"))
	fail := sdk.Fail(errors.New("404 from the server"))
	fmt.Println(sdk.IsPermanent(retry.Err), sdk.IsPermanent(fail.Err))
	// Output: false true
}
