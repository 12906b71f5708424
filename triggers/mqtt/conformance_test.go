package mqtt

import (
	"testing"

	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// TestConformance: options declared, bad values refused naming their
// option, the secrets (PASSWORD, API_TOKEN) never in logs, errors or the
// description, and an unreachable broker a retryable failure.
func TestConformance(t *testing.T) {
	ok := map[string]string{OptBroker: "mqtt://127.0.0.1:1", OptUsername: "u", OptPassword: "p", OptAPIToken: "t"}
	with := func(name, value string) map[string]string {
		o := map[string]string{OptBroker: "mqtt://127.0.0.1:1", OptUsername: "u", OptPassword: "p", OptAPIToken: "t"}
		o[name] = value
		return o
	}
	triggertest.Run(t, triggertest.Case{
		Type:          "mqtt",
		Options:       ok,
		SecretOptions: []string{OptPassword, OptAPIToken},
		Bad: []triggertest.BadOption{
			{Options: with(OptBroker, "http://broker"), Option: OptBroker},
			{Options: with(OptBroker, "mqtt://user:pw@broker"), Option: OptBroker},
			{Options: with(OptTopic, "tide/#"), Option: OptTopic},
			{Options: with(OptTopic, "/lead"), Option: OptTopic},
			{Options: with(OptDiscoveryPrefix, "home+assistant"), Option: OptDiscoveryPrefix},
			{Options: with(OptDiscovery, "maybe"), Option: OptDiscovery},
			{Options: with(OptInstall, "sometimes"), Option: OptInstall},
			{Options: with(OptAPIURL, "ftp://x"), Option: OptAPIURL},
			{Options: with(OptAPIURL, "http://u:p@127.0.0.1:8080"), Option: OptAPIURL},
			{Options: with(OptTLSCAFile, "/nonexistent.pem"), Option: OptTLSCAFile},
			{Options: with(OptResync, "often"), Option: OptResync},
			{Options: map[string]string{OptBroker: "mqtt://127.0.0.1:1", OptPassword: "p"}, Option: OptPassword},
		},
		Retryable: func(*testing.T) func() { return func() {} }, // the broker at port 1 never answers
	})
}
