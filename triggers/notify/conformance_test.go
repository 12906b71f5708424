package notify

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

func TestConformance(t *testing.T) {
	f := newFake(t, false)
	urls := "generic+" + f.URL + "/hook gotify://" + f.hostPort() + "/Atokentoken1234?disabletls=yes"
	with := func(name, value string) map[string]string {
		return map[string]string{OptURLs: urls, name: value}
	}
	triggertest.Run(t, triggertest.Case{
		Type:          "notify",
		Options:       map[string]string{OptURLs: urls},
		SecretOptions: []string{OptURLs},
		Bad: []triggertest.BadOption{
			{Options: with(OptURLs, "not a url"), Option: OptURLs},
			{Options: with(OptURLs, "nosuchservice://x/y"), Option: OptURLs},
			{Options: with(OptURLs, "gotify://"), Option: OptURLs},
			{Options: with(OptURLs, "# only a comment"), Option: OptURLs},
			{Options: with(OptTitle, "{{.Update.Nope}}"), Option: OptTitle},
			{Options: with(OptBody, "{{"), Option: OptBody},
			{Options: with(OptBatchTitle, "{{.Nope}}"), Option: OptBatchTitle},
			{Options: with(OptBatchBody, `{{first 1 .Trigger}}`), Option: OptBatchBody},
			{Options: with(OptTimeout, "soon"), Option: OptTimeout},
		},
		Deliver: func(t *testing.T) func(t *testing.T, u sdk.Update) {
			before := len(f.requests())
			return func(t *testing.T, u sdk.Update) {
				got := f.requests()[before:]
				var generic, gotify bool
				for _, r := range got {
					generic = generic || (r.Path == "/hook" && strings.Contains(r.Body, u.Container) && strings.Contains(r.Body, u.Candidate))
					gotify = gotify || (r.Path == "/message" && strings.Contains(r.Body, u.Candidate))
				}
				if !generic || !gotify {
					t.Errorf("requests = %+v; want the update at the generic webhook and at gotify", got)
				}
			}
		},
		Retryable: func(*testing.T) func() { return f.fail(http.StatusServiceUnavailable) },
		Hang:      func(*testing.T) func() { return f.fail(0) },
	})
}
