// Package triggertest is the conformance kit every trigger passes, built-in
// or not: through a real plugin process, it checks that a trigger declares
// its options (secret ones marked), rejects bad configurations naming the
// option, never leaks a secret into logs, errors, results or its
// description, classifies failures as retryable or permanent rightly, and
// honours its context.
//
// The test binary itself is the plugin: a trigger package's TestMain calls
// Main, which serves the trigger when the binary was started as a plugin by
// Start, and runs the tests otherwise.
//
//	func TestMain(m *testing.M) {
//		triggertest.Main(m, map[string]func() sdk.Trigger{"webhook": func() sdk.Trigger { return webhook.New() }})
//	}
//
//	func TestConformance(t *testing.T) {
//		peer := httptest.NewServer(...)
//		triggertest.Run(t, triggertest.Case{Type: "webhook", Options: map[string]string{"URL": peer.URL}, ...})
//	}
package triggertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// ServeEnv is the variable Start sets, to the trigger type, in the
// environment of the test binary it starts as a plugin.
const ServeEnv = "TIDEWATCH_TRIGGERTEST_SERVE"

// Instance is the instance name Start configures triggers with.
const Instance = "test"

// factories are what Main was given.
var factories map[string]func() sdk.Trigger

// Main is called from a trigger package's TestMain. When the process was
// started as a plugin by Start (ServeEnv set), it serves the trigger the
// factory of that type makes, with sdk.Serve, and exits; otherwise it runs
// the tests and exits with their code.
func Main(m *testing.M, f map[string]func() sdk.Trigger) {
	if typ := os.Getenv(ServeEnv); typ != "" {
		newTrigger, ok := f[typ]
		if !ok {
			fmt.Fprintf(os.Stderr, "triggertest: no trigger of type %q given to Main\n", typ)
			os.Exit(2)
		}
		sdk.Serve(newTrigger())
		os.Exit(0)
	}
	factories = f
	os.Exit(m.Run())
}

// Logs holds what a plugin process logged, as tidewatch logs it: JSON
// lines of slog's JSONHandler (keys time, level, msg, plugin, instance, and
// the plugin's own), every level down to trace.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends to the logs.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything logged so far. Lines arrive asynchronously:
// Close the plugin first to have them all, or use WaitFor.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Entries returns the log lines decoded, one map per line.
func (l *Logs) Entries(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// WaitFor waits up to 10s for a log line containing substr, failing the
// test when none comes.
func (l *Logs) WaitFor(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(l.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in 10s; the logs:\n%s", substr, l)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Start launches the test binary itself as a plugin process serving typ
// (through plugins/host, as tidewatch does: AutoMTLS, an environment of
// ServeEnv only), configures it as instance Instance with options, failing
// the test on a configuration error, and returns it with its logs. The
// process is stopped when the test ends; its logs are printed if it failed.
func Start(t testing.TB, typ string, options map[string]string) (*host.Plugin, *Logs) {
	t.Helper()
	p, logs := StartUnconfigured(t, typ)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Configure(ctx, Instance, options); err != nil {
		t.Fatalf("configuring %s with %v: %v", typ, redactedKeys(options), err)
	}
	return p, logs
}

// StartUnconfigured is Start without the Configure call.
func StartUnconfigured(t testing.TB, typ string) (*host.Plugin, *Logs) {
	t.Helper()
	if factories == nil {
		t.Fatal("triggertest.Main was not called from TestMain")
	}
	if _, ok := factories[typ]; !ok {
		t.Fatalf("no trigger of type %q was given to triggertest.Main", typ)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary: %v", err)
	}
	logs := &Logs{}
	h := host.New(host.Options{StartTimeout: 20 * time.Second, Level: slog.LevelDebug - 4},
		slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug - 4})))
	p, err := h.Open(context.Background(), host.Spec{Type: typ, Path: self, Env: []string{ServeEnv + "=" + typ}}, Instance)
	if err != nil {
		h.Close()
		t.Fatalf("opening %s: %v", typ, err)
	}
	t.Cleanup(func() {
		h.Close()
		if t.Failed() {
			t.Logf("logs of the %s plugin:\n%s", typ, logs)
		}
	})
	return p, logs
}

// redactedKeys lists the options' names only, for messages.
func redactedKeys(options map[string]string) []string {
	keys := make([]string, 0, len(options))
	for k := range options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SampleUpdate is the update the kit fires: sdk.SampleMessage's, with key.
func SampleUpdate(key string) sdk.Update {
	u := sdk.SampleMessage().Update
	u.Key = key
	return u
}
