package email

import (
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

func TestMain(m *testing.M) {
	triggertest.Main(m, map[string]func() sdk.Trigger{"email": func() sdk.Trigger { return New() }})
}

// TestConformance runs the shared kit through real plugin processes against
// the fake SMTP server, whose behaviour each check sets.
func TestConformance(t *testing.T) {
	f := startFake(t, &fakeSMTP{})
	options := fakeOptions(f, nil)
	with := func(extra map[string]string) map[string]string {
		o := fakeOptions(f, nil)
		for k, v := range extra {
			o[k] = v
		}
		return o
	}
	fail := func(change func(f *fakeSMTP)) func(t *testing.T) func() {
		return func(t *testing.T) func() {
			f.set(change)
			return func() { f.set(func(f *fakeSMTP) { f.replies, f.hang = nil, "" }) }
		}
	}
	triggertest.Run(t, triggertest.Case{
		Type:          "email",
		Options:       options,
		SecretOptions: []string{OptPassword},
		Bad: []triggertest.BadOption{
			{Options: with(map[string]string{OptHost: ""}), Option: OptHost},
			{Options: with(map[string]string{OptPort: "0"}), Option: OptPort},
			{Options: with(map[string]string{OptTLS: "ssl"}), Option: OptTLS},
			{Options: with(map[string]string{OptTLS: TLSNone, OptTLSInsecure: "true"}), Option: OptTLSInsecure},
			{Options: with(map[string]string{OptTLSCAFile: "/nonexistent.pem", OptTLS: TLSStartTLS}), Option: OptTLSCAFile},
			{Options: with(map[string]string{OptUsername: ""}), Option: OptUsername},
			{Options: with(map[string]string{OptPassword: ""}), Option: OptPassword},
			{Options: with(map[string]string{OptAuth: AuthPlain}), Option: OptAuth},
			{Options: with(map[string]string{OptFrom: "nobody"}), Option: OptFrom},
			{Options: with(map[string]string{OptTo: "a@example.com, nobody"}), Option: OptTo},
			{Options: with(map[string]string{OptSubject: "{{.Nope}}"}), Option: OptSubject},
			{Options: with(map[string]string{OptBody: "{{"}), Option: OptBody},
			{Options: with(map[string]string{OptHTML: "{{.Update.Nope}}"}), Option: OptHTML},
			{Options: with(map[string]string{OptTimeout: "soon"}), Option: OptTimeout},
		},
		Deliver: func(t *testing.T) func(t *testing.T, u sdk.Update) {
			before := len(f.received())
			return func(t *testing.T, u sdk.Update) {
				msgs := f.received()
				if len(msgs) != before+1 {
					t.Fatalf("the server received %d messages, want 1", len(msgs)-before)
				}
				if !strings.Contains(msgs[before], HeaderKey+": "+u.Key) {
					t.Errorf("the message lacks %s: %s:\n%s", HeaderKey, u.Key, msgs[before])
				}
			}
		},
		Retryable: fail(func(f *fakeSMTP) { f.replies = map[string]string{"MAIL": "451 4.3.0 try again later"} }),
		Permanent: fail(func(f *fakeSMTP) { f.replies = map[string]string{"RCPT": "550 5.1.1 no such user"} }),
		Hang:      fail(func(f *fakeSMTP) { f.hang = "." }),
	})
}
