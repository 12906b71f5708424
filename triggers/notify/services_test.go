package notify

import (
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// reach says how a service's test reaches its fake.
const (
	// reachHost: the URL names the fake's address (host and port), as a
	// user names their own server.
	reachHost = "host in the URL"
	// reachRedirect: the service's host (or port) is fixed; the test process
	// sends its connection to the fake instead, so what the service would
	// receive is checked, but not the address.
	reachRedirect = "fixed host, redirected in the test"
)

// serviceCases are the shoutrrr services the notify trigger is tested
// against, each with a URL pointing at a fake (plain or TLS), how the fake
// is reached, and where the message must arrive. The README's table lists
// the same services (TestREADMEListsTheServices).
var serviceCases = []struct {
	service string
	reach   string
	tls     bool
	url     func(hostPort string) string
	path    string // the request path the message arrives at (prefix)
}{
	{"generic", reachHost, false, func(h string) string { return "generic+http://" + h + "/hooks/tidewatch?template=json" }, "/hooks/tidewatch"},
	{"gotify", reachHost, false, func(h string) string { return "gotify://" + h + "/Atokentoken1234?disabletls=yes" }, "/message"},
	{"ntfy", reachHost, false, func(h string) string { return "ntfy://" + h + "/updates?scheme=http" }, "/"},
	{"matrix", reachHost, false, func(h string) string {
		return "matrix://bot:secretpass@" + h + "/?rooms=%23ops:localhost&disableTLS=yes"
	}, "/_matrix/client/r0/rooms/"},
	{"mattermost", reachHost, false, func(h string) string { return "mattermost://" + h + "/hooktoken123?disabletls=yes" }, "/hooks/hooktoken123"},
	{"bark", reachHost, false, func(h string) string { return "bark://:devicekey123@" + h + "/?scheme=http" }, "/push"},
	{"signal", reachHost, false, func(h string) string { return "signal://" + h + "/+15550000001/+15550000002?disabletls=yes" }, "/v2/send"},
	{"rocketchat", reachHost, true, func(h string) string { return "rocketchat://" + h + "/tokenA123/tokenB456" }, "/hooks/tokenA123/tokenB456"},
	{"googlechat", reachHost, true, func(h string) string { return "googlechat://" + h + "/v1/spaces/FOO/messages?key=bar123&token=baz456" }, "/v1/spaces/FOO/messages"},
	{"opsgenie", reachHost, true, func(h string) string { return "opsgenie://" + h + "/apikey123" }, "/v2/alerts"},
	{"pagerduty", reachHost, true, func(h string) string { return "pagerduty://" + h + "/0123456789abcdef0123456789abcdef" }, "/v2/enqueue"},
	{"zulip", reachRedirect, true, func(string) string {
		return "zulip://bot@zulip.example:botkey123@zulip.example/?stream=ops&topic=updates"
	}, "/api/v1/messages"},
	{"telegram", reachRedirect, true, func(string) string {
		return "telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@ops"
	}, "/bot110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage"},
	{"slack", reachRedirect, true, func(string) string { return "slack://hook:T00000000-B00000000-XXXXXXXXXXXXXXXXXXXXXXXX@webhook" }, "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"},
	{"discord", reachRedirect, true, func(string) string { return "discord://tokentoken@123456789" }, "/api/webhooks/123456789/tokentoken"},
	{"pushbullet", reachRedirect, true, func(string) string { return "pushbullet://o.abcdefghijklmnopqrstuvwxyz012345" }, "/v2/pushes"},
	{"join", reachRedirect, true, func(string) string { return "join://shoutrrr:apikey123@join/?devices=phone1" }, "/_ah/api/messaging/v1/sendPush"},
	{"ifttt", reachRedirect, true, func(string) string { return "ifttt://webhookkey123/?events=tidewatch&messagevalue=2" }, "/trigger/tidewatch/with/key/webhookkey123"},
	{"lark", reachRedirect, true, func(string) string { return "lark://open.larksuite.com/hooktoken123" }, "/open-apis/bot/v2/hook/hooktoken123"},
	{"wecom", reachRedirect, true, func(string) string { return "wecom://webhookkey123" }, "/cgi-bin/webhook/send"},
	{"teams", reachRedirect, true, func(string) string {
		return "teams://11111111-2222-3333-4444-555555555555@66666666-7777-8888-9999-000000000000/0123456789abcdef0123456789abcdef/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/V2sig?host=example.webhook.office.com"
	}, "/webhookb2/"},
	{"pushover", reachRedirect, true, func(string) string { return "pushover://shoutrrr:apitoken123@userkey456/" }, "/1/messages.json"},
}

// TestServicesReceiveTheMessage sends one update, in process, to each
// service's fake and checks that the message arrived where the service
// takes it, with its title (or, for a service without titles, the title in
// its text) and its body.
func TestServicesReceiveTheMessage(t *testing.T) {
	plain, secure := newFake(t, false), newFake(t, true)
	redirect(t, secure)
	for _, sc := range serviceCases {
		t.Run(sc.service, func(t *testing.T) {
			f := plain
			if sc.tls {
				f = secure
			}
			before := len(f.requests())
			tr := NewWithLogger(slog.New(slog.DiscardHandler))
			opts := map[string]string{OptURLs: sc.url(f.hostPort()), OptTitle: "Title {{.Update.Container}}", OptBody: "Body {{.Update.Candidate}} of {{.Update.Image}}"}
			if err := tr.Configure(t.Context(), "ops", opts); err != nil {
				t.Fatalf("Configure: %v", err)
			}
			u := sdk.SampleMessage().Update
			u.Key, u.Container, u.Candidate = "k-"+sc.service, "shopweb", "9.8.7"
			r := tr.Fire(t.Context(), []sdk.Update{u})[0]
			if r.Err != nil {
				t.Fatalf("Fire: %v (detail %q)", r.Err, r.Detail)
			}
			if len(r.Services) != 1 || r.Services[0].Failed || r.Services[0].Service != sc.service+"#1" {
				t.Errorf("Services = %+v, want %s#1 delivered", r.Services, sc.service)
			}
			var text string
			var at []string
			for _, rq := range f.requests()[before:] {
				at = append(at, rq.Method+" "+rq.Path)
				if strings.HasPrefix(rq.Path, sc.path) {
					text += rq.Body + " " + rq.Query
					for k, v := range rq.Header {
						text += " " + k + ": " + strings.Join(v, ",")
					}
				}
			}
			if text == "" {
				t.Fatalf("no request at %s; requests: %v", sc.path, at)
			}
			if un, err := url.QueryUnescape(text); err == nil {
				text = un
			}
			for _, want := range []string{"Title shopweb", "Body 9.8.7 of registry.example/web"} {
				if !strings.Contains(text, want) {
					t.Errorf("the message at %s lacks %q:\n%s", sc.path, want, text)
				}
			}
		})
	}
}

// checkedOnly are services tested for URL checking and message rendering
// only: a valid URL of each is accepted, a broken one refused.
var checkedOnly = []struct{ service, good, bad string }{
	{"notifiarr", "notifiarr://apikey1234567890", "notifiarr://"},
	{"smtp", "smtp://user:pass@mail.example:587/?fromaddress=tw@example.com&toaddresses=ops@example.com", "smtp://mail.example:587/?toaddresses=ops@example.com"},
	{"logger", "logger://", "logger:/x"},
}

func TestCheckedOnlyServices(t *testing.T) {
	for _, sc := range checkedOnly {
		if _, err := ParseConfig(map[string]string{OptURLs: sc.good}); err != nil {
			t.Errorf("%s: ParseConfig(good URL) = %v", sc.service, err)
		}
		if _, err := ParseConfig(map[string]string{OptURLs: sc.bad}); err == nil {
			t.Errorf("%s: ParseConfig(%q) = nil error, want one", sc.service, sc.bad)
		}
	}
}

// TestREADMEListsTheServices keeps the README's table of services true.
func TestREADMEListsTheServices(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range serviceCases {
		row := "| `" + sc.service + "` | " + sc.reach + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md lacks the row %q", row)
		}
	}
	for _, sc := range checkedOnly {
		row := "| `" + sc.service + "` | URL check and rendering only |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md lacks the row %q", row)
		}
	}
}
