package sms

import (
	"net/http"
	"testing"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

func TestConformance(t *testing.T) {
	tw := newTwilio(t)
	with := func(name, value string) map[string]string {
		o := options(tw.URL)
		o[name] = value
		return o
	}
	triggertest.Run(t, triggertest.Case{
		Type:          "sms",
		Options:       options(tw.URL),
		SecretOptions: []string{OptAuthToken},
		Bad: []triggertest.BadOption{
			{Options: with(OptAccountSID, "AC-not-a-sid"), Option: OptAccountSID},
			{Options: with(OptAuthToken, ""), Option: OptAuthToken},
			{Options: with(OptFrom, "+1"), Option: OptFrom},
			{Options: with(OptTo, "+15551111111, 0044123"), Option: OptTo},
			{Options: with(OptAPIURL, "api.twilio.com"), Option: OptAPIURL},
			{Options: with(OptTemplate, "{{.Nope}}"), Option: OptTemplate},
			{Options: with(OptMaxLength, "2000"), Option: OptMaxLength},
		},
		Deliver: func(t *testing.T) func(t *testing.T, u sdk.Update) {
			before := len(tw.accepted())
			return func(t *testing.T, u sdk.Update) {
				got := tw.accepted()[before:]
				if len(got) != 2 || got[0].Get("To") != "+15551111111" || got[1].Get("To") != "+15552222222" {
					t.Fatalf("Twilio accepted %v, want one message to each recipient", got)
				}
				want := "tidewatch: " + u.Container + " " + u.Current + " -> " + u.Candidate + " (" + u.Kind + ") on " + u.Host
				if b := got[0].Get("Body"); b != want {
					t.Errorf("Body = %q, want %q", b, want)
				}
			}
		},
		Retryable: func(*testing.T) func() {
			return tw.fail(http.StatusServiceUnavailable, `{"code": 20503, "message": "Service unavailable"}`)
		},
		Permanent: func(*testing.T) func() {
			return tw.fail(http.StatusBadRequest, `{"code": 21211, "message": "Invalid 'To' Phone Number"}`)
		},
		Hang: func(*testing.T) func() { return tw.fail(0, "") },
	})
}
