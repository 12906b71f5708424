package docker

import (
	"testing"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// TestMain serves the docker trigger when triggertest starts this test
// binary as a plugin process, and runs the tests otherwise.
func TestMain(m *testing.M) {
	triggertest.Main(m, map[string]func() sdk.Trigger{"docker": func() sdk.Trigger { return New() }})
}
