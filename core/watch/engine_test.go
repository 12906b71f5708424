package watch_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/core/watch"
	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/test/testbed"
)

func unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// TestWatchOnRealEngine runs the watch loop against the test bed's engine
// and registry: a container started while it watches is checked within
// seconds, alone; after the engine restarts, the loop reconnects, runs a
// complete reconciling check, and follows events again.
func TestWatchOnRealEngine(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("watched")
	for _, v := range []string{"1.0.0", "1.2.0"} {
		bed.BuildImage(t, repo+":"+v, testbed.AppOptions{Version: v})
	}
	// Outlives the engine restart: the engine starts it again.
	survivor := bed.RunContainer(t, unique("survivor"), repo+":1.0.0", nil, testbed.RunOptions{RestartPolicy: container.RestartPolicyAlways})

	eng, err := docker.New(docker.Options{Host: bed.DockerHost})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := watch.New(watch.Options{Host: "bed", WatchByDefault: true}, eng, registries.New(registries.Options{}, log), nil, log)
	reports := make(chan watch.RunReport, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- w.Watch(ctx, watch.LoopOptions{Schedule: "0 0 1 1 *", Debounce: 100 * time.Millisecond, MaxBackoff: time.Second, OnRun: func(r watch.RunReport) { reports <- r }})
	}()
	defer func() {
		cancel()
		<-done
	}()

	// A new container is checked within seconds, and only it.
	started := bed.RunContainer(t, unique("started"), repo+":1.0.0", nil)
	r := waitReport(t, reports, 30*time.Second, func(r watch.RunReport) bool { return !r.Full && hasContainer(r, started.ID) })
	if len(r.Checks) != 1 || r.Checks[0].Candidate != "1.2.0" || r.Checks[0].Kind != core.KindMinor {
		t.Errorf("check of the started container: %+v, want only it, offered 1.2.0 (minor)", r.Checks)
	}

	// The engine restarts: the loop reconnects and reconciles with a complete run.
	bed.RestartEngine(t)
	r = waitReport(t, reports, 90*time.Second, func(r watch.RunReport) bool {
		return r.Full && r.Reason == "reconnect" && r.Err == nil && hasContainer(r, survivor.ID)
	})
	for _, c := range r.Checks {
		if c.Container.ID == survivor.ID && (c.Err != nil || c.Candidate != "1.2.0") {
			t.Errorf("survivor after the restart: candidate %q err %v, want 1.2.0", c.Candidate, c.Err)
		}
	}

	// Events flow again after the reconnection.
	later := bed.RunContainer(t, unique("later"), repo+":1.0.0", nil)
	waitReport(t, reports, 30*time.Second, func(r watch.RunReport) bool { return !r.Full && hasContainer(r, later.ID) })
}

func hasContainer(r watch.RunReport, id string) bool {
	for _, c := range r.Checks {
		if c.Container.ID == id {
			return true
		}
	}
	return false
}

// waitReport returns the first report that satisfies ok, failing after timeout.
func waitReport(t *testing.T, reports <-chan watch.RunReport, timeout time.Duration, ok func(watch.RunReport) bool) watch.RunReport {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case r := <-reports:
			if ok(r) {
				return r
			}
		case <-deadline:
			t.Fatalf("no matching run reported within %s", timeout)
			return watch.RunReport{}
		}
	}
}
