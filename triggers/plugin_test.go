package triggers

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/host"
)

// testPlugin builds the plugins/host test plugin, a real plugin process
// whose behaviour its MODE option sets.
func testPlugin(t *testing.T) host.Spec {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tidewatch-trigger-test")
	cmd := exec.Command("go", "build", "-o", path, "github.com/tidewatch/tidewatch/plugins/host/testdata/testplugin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the test plugin: %v\n%s", err, out)
	}
	return host.Spec{Type: "test", Path: path}
}

// TestFaultsThroughRealPlugin drives the dispatcher against a real plugin
// process that crashes in the middle of a fire, or hangs: the delivery is
// retried (the crashed process restarted, the hung one cut off) and nothing
// is lost or fired after it was delivered.
func TestFaultsThroughRealPlugin(t *testing.T) {
	spec := testPlugin(t)
	tests := []struct {
		name       string
		mode       string
		retries    int
		wantStatus store.DeliveryStatus
		wantError  string
		attempts   int
	}{
		{name: "crash mid-fire, then delivered", mode: "crash-once", retries: 3, wantStatus: store.DeliveryDelivered, attempts: 2},
		{name: "hang, cut off at the deadline each time", mode: "hang", retries: 2, wantStatus: store.DeliveryFailed, wantError: "cut off", attempts: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t)
			h := host.New(host.Options{}, nil)
			t.Cleanup(h.Close)
			p, err := h.Open(ctx, spec, "faults")
			if err != nil {
				t.Fatal(err)
			}
			state := filepath.Join(t.TempDir(), "state")
			if err := p.Configure(ctx, "faults", map[string]string{"MODE": tc.mode, "STATE_FILE": state}); err != nil {
				t.Fatal(err)
			}
			pol := policy(func(p *core.TriggerPolicy) { p.Retries, p.Deadline = tc.retries, time.Second })
			d := New(s, []Instance{{Name: "test.faults", Trigger: p, Policy: pol}}, nil, fastBackoff)
			notify(t, d, watchRun(t, s, chk("web", "1.0.0", "1.1.0", core.KindMinor)))
			dctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := d.Drain(dctx); err != nil {
				t.Fatalf("Drain: %v", err)
			}
			ds, err := s.Deliveries(ctx, store.DeliveryFilter{})
			if err != nil || len(ds) != 1 {
				t.Fatalf("deliveries = %v, %v; want one", ds, err)
			}
			got := ds[0]
			if got.Status != tc.wantStatus || got.Attempts != tc.attempts || !strings.Contains(got.LastError, tc.wantError) {
				t.Errorf("delivery: status %s attempts %d error %q; want %s after %d attempts, error containing %q",
					got.Status, got.Attempts, got.LastError, tc.wantStatus, tc.attempts, tc.wantError)
			}
			b, _ := os.ReadFile(state)
			if fires := strings.Count(string(b), "fire "+got.Key); fires != tc.attempts {
				t.Errorf("the plugin saw the key %d times, want %d:\n%s", fires, tc.attempts, b)
			}
			// Nothing more happens to a finished delivery.
			if err := d.Drain(dctx); err != nil {
				t.Fatal(err)
			}
			b2, _ := os.ReadFile(state)
			if string(b2) != string(b) {
				t.Errorf("a finished delivery was fired again:\n%s", b2)
			}
		})
	}
}
