package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

const (
	testSID     = "AC0123456789abcdef0123456789abcdef"
	testToken   = "tok-CANARY-5ecret"
	testService = "MG0123456789abcdef0123456789abcdef"
)

// twilio is a local stand-in for the Messages API that checks each request
// exactly as Twilio would see it and answers per recipient.
type twilio struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	answers  map[string]answer // by To; default 201
	all      *answer           // for every recipient, when set
	hang     chan struct{}     // when set, requests wait for it to close
	requests []url.Values      // accepted forms, in order
	problems []string
}

type answer struct {
	status int
	body   string
}

func newTwilio(t *testing.T) *twilio {
	t.Helper()
	tw := &twilio{t: t, answers: map[string]answer{}}
	tw.Server = httptest.NewServer(http.HandlerFunc(tw.serve))
	t.Cleanup(func() {
		tw.Close()
		for _, p := range tw.problems {
			t.Errorf("Twilio request: %s", p)
		}
	})
	return tw
}

func (tw *twilio) serve(w http.ResponseWriter, r *http.Request) {
	tw.mu.Lock()
	hang := tw.hang
	tw.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
	}
	tw.mu.Lock()
	defer tw.mu.Unlock()
	user, pass, ok := r.BasicAuth()
	wantPath := "/2010-04-01/Accounts/" + testSID + "/Messages.json"
	switch {
	case r.Method != http.MethodPost || r.URL.Path != wantPath || r.URL.RawQuery != "":
		tw.problems = append(tw.problems, fmt.Sprintf("%s %s, want POST %s", r.Method, r.URL, wantPath))
		http.Error(w, `{"code": 20404, "message": "not found"}`, http.StatusNotFound)
		return
	case !ok || user != testSID || pass != testToken:
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}`)
		return
	case r.Header.Get("Content-Type") != "application/x-www-form-urlencoded":
		tw.problems = append(tw.problems, "Content-Type = "+r.Header.Get("Content-Type"))
	}
	raw, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		tw.problems = append(tw.problems, "form: "+err.Error())
	}
	to := form.Get("To")
	a, ok := tw.answers[to]
	if tw.all != nil {
		a, ok = *tw.all, true
	}
	if ok && a.status != http.StatusCreated {
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
		return
	}
	tw.requests = append(tw.requests, form)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]string{"sid": fmt.Sprintf("SM%032d", len(tw.requests)), "status": "queued"})
}

func (tw *twilio) set(to string, status int, body string) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.answers[to] = answer{status, body}
}

// fail makes every request fail with status and body (or hang, for status
// 0) until restore is called.
func (tw *twilio) fail(status int, body string) (restore func()) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	var hang chan struct{}
	if status == 0 {
		hang = make(chan struct{})
	} else {
		tw.all = &answer{status, body}
	}
	tw.hang = hang
	return func() {
		tw.mu.Lock()
		defer tw.mu.Unlock()
		if hang != nil {
			close(hang)
		}
		tw.all, tw.hang = nil, nil
	}
}

func (tw *twilio) accepted() []url.Values {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return append([]url.Values(nil), tw.requests...)
}

// configured starts an SMS plugin process configured with options.
func configured(t *testing.T, options map[string]string) sdk.Trigger {
	t.Helper()
	p, _ := triggertest.Start(t, "sms", options)
	return p
}

func options(apiURL string, extra ...string) map[string]string {
	o := map[string]string{
		OptAccountSID: testSID, OptAuthToken: testToken, OptFrom: "+15550000000",
		OptTo: "+15551111111, +15552222222", OptAPIURL: apiURL,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		o[extra[i]] = extra[i+1]
	}
	return o
}

func update(key string) sdk.Update {
	u := sdk.SampleMessage().Update
	u.Key = key
	return u
}

func TestFireSendsOneMessagePerRecipient(t *testing.T) {
	tw := newTwilio(t)
	tr := configured(t, options(tw.URL+"/"))
	got := tr.Fire(context.Background(), []sdk.Update{update("k1")})
	want := sdk.OK("sent to +15551111111 SM00000000000000000000000000000001, +15552222222 SM00000000000000000000000000000002")
	if diff := cmp.Diff([]sdk.Result{want}, got); diff != "" {
		t.Errorf("Fire (-want +got):\n%s", diff)
	}
	body := "tidewatch: web 1.0.0 -> 1.1.0 (minor) on local"
	wantForms := []url.Values{
		{"To": {"+15551111111"}, "From": {"+15550000000"}, "Body": {body}},
		{"To": {"+15552222222"}, "From": {"+15550000000"}, "Body": {body}},
	}
	if diff := cmp.Diff(wantForms, tw.accepted()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestFireThroughMessagingService(t *testing.T) {
	tw := newTwilio(t)
	tr := configured(t, options(tw.URL, OptFrom, testService, OptTo, "+15551111111", OptTemplate, "{{.Count}} for {{.Trigger}}"))
	if r := tr.Fire(context.Background(), []sdk.Update{update("a"), update("b")}); r[0].Err != nil || r[1].Err != nil {
		t.Fatalf("Fire = %v", r)
	}
	want := []url.Values{{"To": {"+15551111111"}, "MessagingServiceSid": {testService}, "Body": {"2 for test"}}}
	if diff := cmp.Diff(want, tw.accepted()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestFireRetryDoesNotResend(t *testing.T) {
	tw := newTwilio(t)
	tr := configured(t, options(tw.URL))
	tw.set("+15552222222", http.StatusServiceUnavailable, `{"code": 20503, "message": "Service unavailable"}`)

	r := tr.Fire(context.Background(), []sdk.Update{update("k1")})[0]
	if r.Err == nil || sdk.IsPermanent(r.Err) {
		t.Fatalf("first Fire = %v, want a retryable error", r.Err)
	}
	for _, want := range []string{"+15552222222: HTTP 503: Twilio error 20503: Service unavailable", "sent to +15551111111"} {
		if !strings.Contains(r.Err.Error(), want) {
			t.Errorf("error %q does not say %q", r.Err, want)
		}
	}

	tw.set("+15552222222", http.StatusCreated, "")
	r = tr.Fire(context.Background(), []sdk.Update{update("k1")})[0]
	if r.Err != nil || !strings.Contains(r.Detail, "+15551111111 (earlier attempt)") {
		t.Fatalf("retry = %v %q, want OK with the first recipient from the earlier attempt", r.Err, r.Detail)
	}
	var to []string
	for _, f := range tw.accepted() {
		to = append(to, f.Get("To"))
	}
	if diff := cmp.Diff([]string{"+15551111111", "+15552222222"}, to); diff != "" {
		t.Errorf("recipients sent to (-want +got), each once:\n%s", diff)
	}

	// Another key is another message: both recipients get it.
	tr.Fire(context.Background(), []sdk.Update{update("k2")})
	if n := len(tw.accepted()); n != 4 {
		t.Errorf("after a new key, %d messages accepted, want 4", n)
	}
}

func TestFireClassifiesErrors(t *testing.T) {
	invalid := `{"code": 21211, "message": "The 'To' number +15552222222 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`
	tests := []struct {
		name      string
		second    answer
		permanent bool
		want      string
	}{
		{name: "invalid number", second: answer{400, invalid}, permanent: true, want: "HTTP 400: Twilio error 21211: The 'To' number +15552222222 is not a valid phone number. (https://www.twilio.com/docs/errors/21211)"},
		{name: "rate limited", second: answer{429, `{"code": 20429, "message": "Too Many Requests"}`}, want: "HTTP 429: Twilio error 20429"},
		{name: "server error, not JSON", second: answer{502, "<html>bad\ngateway</html>"}, want: "HTTP 502: <html>bad gateway</html>"},
		{name: "redirect", second: answer{302, ""}, permanent: true, want: "HTTP 302: (empty answer)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw := newTwilio(t)
			tw.set("+15552222222", tc.second.status, tc.second.body)
			r := configured(t, options(tw.URL)).Fire(context.Background(), []sdk.Update{update("k")})[0]
			if r.Err == nil || sdk.IsPermanent(r.Err) != tc.permanent || !strings.Contains(r.Err.Error(), tc.want) {
				t.Errorf("Fire = %v (permanent %v), want permanent %v and %q", r.Err, sdk.IsPermanent(r.Err), tc.permanent, tc.want)
			}
		})
	}

	t.Run("retryable wins over permanent", func(t *testing.T) {
		tw := newTwilio(t)
		tw.set("+15551111111", 400, invalid)
		tw.set("+15552222222", 500, "")
		r := configured(t, options(tw.URL)).Fire(context.Background(), []sdk.Update{update("k")})[0]
		if r.Err == nil || sdk.IsPermanent(r.Err) {
			t.Errorf("Fire = %v, want retryable: one recipient may still get it", r.Err)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		tw := newTwilio(t)
		o := options(tw.URL)
		o[OptAuthToken] = "wrong-CANARY-token"
		r := configured(t, o).Fire(context.Background(), []sdk.Update{update("k")})[0]
		if !sdk.IsPermanent(r.Err) || !strings.Contains(r.Err.Error(), "Twilio error 20003") || strings.Contains(r.Err.Error(), "CANARY") {
			t.Errorf("Fire with a wrong token = %v, want permanent Twilio error 20003 without the token", r.Err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		r := configured(t, options(srv.URL)).Fire(context.Background(), []sdk.Update{update("k")})[0]
		if r.Err == nil || sdk.IsPermanent(r.Err) || strings.Contains(r.Err.Error(), testToken) {
			t.Errorf("Fire to a closed port = %v, want retryable", r.Err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		tw := newTwilio(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := configured(t, options(tw.URL)).Fire(ctx, []sdk.Update{update("k")})[0]
		if r.Err == nil || sdk.IsPermanent(r.Err) || len(tw.accepted()) != 0 {
			t.Errorf("Fire with a cancelled context = %v, %d sent; want retryable, none sent", r.Err, len(tw.accepted()))
		}
	})
}

func TestDefaultTemplate(t *testing.T) {
	u := update("k")
	db := update("k2")
	db.Container, db.Current, db.Candidate = "db", "16.4", "16.5"
	applied, failed := update("k3"), update("k4")
	applied.Event = sdk.EventUpdateApplied
	failed.Event, failed.Detail = sdk.EventUpdateRolledBack, "health check failed"
	tests := []struct {
		name    string
		updates []sdk.Update
		want    string
	}{
		{name: "one", updates: []sdk.Update{u}, want: "tidewatch: web 1.0.0 -> 1.1.0 (minor) on local"},
		{name: "applied", updates: []sdk.Update{applied}, want: "tidewatch: web updated 1.0.0 -> 1.1.0 on local"},
		{name: "rolled back", updates: []sdk.Update{failed}, want: "tidewatch: web update 1.0.0 -> 1.1.0 rolled back on local: health check failed"},
		{name: "batch", updates: []sdk.Update{u, db}, want: "tidewatch: 2 updates: web 1.0.0->1.1.0, db 16.4->16.5"},
	}
	tmpl := sdk.MustParseTemplate("default", DefaultTemplate)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tmpl.Render(sdk.NewMessage("x", tc.updates))
			if err != nil || got != tc.want {
				t.Errorf("Render = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{in: "short", max: 20, want: "short"},
		{in: strings.Repeat("a", 20), max: 20, want: strings.Repeat("a", 20)},
		{in: strings.Repeat("a", 21), max: 20, want: strings.Repeat("a", 17) + "..."},
		{in: "aaaaaaaaaaaaaaa  bbbbbbbbbb", max: 20, want: "aaaaaaaaaaaaaaa..."},
		// Each emoji is two UTF-16 units; none may be split.
		{in: strings.Repeat("😀", 11), max: 20, want: strings.Repeat("😀", 8) + "..."},
		{in: strings.Repeat("é", 30), max: 20, want: strings.Repeat("é", 17) + "..."},
	}
	for _, tc := range tests {
		got := Truncate(tc.in, tc.max)
		if got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
		if n := len(utf16.Encode([]rune(got))); n > tc.max {
			t.Errorf("Truncate(%q, %d) is %d units long", tc.in, tc.max, n)
		}
	}
}

func TestFireTruncatesToMaxLength(t *testing.T) {
	tw := newTwilio(t)
	tr := configured(t, options(tw.URL, OptTo, "+15551111111", OptMaxLength, "40", OptTemplate, "{{range .Updates}}{{.Container}} {{.Candidate}} {{end}}"))
	us := []sdk.Update{update("a"), update("b"), update("c"), update("d"), update("e")}
	if r := tr.Fire(context.Background(), us); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if got, want := tw.accepted()[0].Get("Body"), "web 1.1.0 web 1.1.0 web 1.1.0 web 1.1..."; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		options map[string]string
		want    []string
	}{
		{name: "valid", options: options("https://api.twilio.com")},
		{name: "defaults", options: map[string]string{OptAccountSID: testSID, OptAuthToken: testToken, OptFrom: "Tidewatch", OptTo: "+4915112345678"}},
		{name: "nothing", options: map[string]string{}, want: []string{OptAccountSID, OptAuthToken, OptFrom, OptTo}},
		{name: "bad SID", options: options("https://x", OptAccountSID, "AC123"), want: []string{OptAccountSID}},
		{name: "bad from", options: options("https://x", OptFrom, "+0123"), want: []string{OptFrom}},
		{name: "bad service", options: options("https://x", OptFrom, "MG123"), want: []string{OptFrom}},
		{name: "sender ID too long", options: options("https://x", OptFrom, "TidewatchBot1"), want: []string{OptFrom}},
		{name: "bad to", options: options("https://x", OptTo, "+15551111111, 5552222222, +1-555"), want: []string{OptTo, OptTo}},
		{name: "empty to list", options: options("https://x", OptTo, " , "), want: []string{OptTo}},
		{name: "bad API URL", options: options("api.twilio.com"), want: []string{OptAPIURL}},
		{name: "plain HTTP off loopback", options: options("http://api.twilio.com"), want: []string{OptAPIURL}},
		{name: "plain HTTP to a LAN address", options: options("http://192.168.1.10:8080/twilio"), want: []string{OptAPIURL}},
		{name: "plain HTTP to a name that looks local", options: options("http://localhost.evil.example"), want: []string{OptAPIURL}},
		{name: "plain HTTP to 127.0.0.1", options: options("http://127.0.0.1:8080")},
		{name: "plain HTTP to 127.8.9.10", options: options("http://127.8.9.10")},
		{name: "plain HTTP to [::1]", options: options("http://[::1]:8080")},
		{name: "plain HTTP to localhost", options: options("http://LocalHost:8080")},
		{name: "plain HTTP to IPv4-mapped loopback", options: options("http://[::ffff:127.0.0.1]:8080")},
		{name: "plain HTTP to 0.0.0.0", options: options("http://0.0.0.0:8080"), want: []string{OptAPIURL}},
		{name: "bad template", options: options("https://x", OptTemplate, "{{.Update.Nope}}"), want: []string{OptTemplate}},
		{name: "bad max length", options: options("https://x", OptMaxLength, "5000"), want: []string{OptMaxLength}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(tc.options)
			var got []string
			for _, e := range sdk.OptionErrors(err) {
				got = append(got, e.Option)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("options in error (-want +got):\n%s\nerror: %v", diff, err)
			}
			if err != nil && strings.Contains(err.Error(), testToken) {
				t.Errorf("error shows the auth token: %v", err)
			}
		})
	}

	c, err := ParseConfig(map[string]string{OptAccountSID: testSID, OptAuthToken: testToken, OptFrom: testService, OptTo: "+15551111111,+15551111111"})
	if err != nil {
		t.Fatal(err)
	}
	if c.APIURL != DefaultAPIURL || c.MaxLength != MaxLength || c.From != "" || c.MessagingServiceSID != testService || len(c.To) != 1 {
		t.Errorf("config = %+v, want defaults, the service SID and one recipient", c)
	}
}
