package web

import (
	"strings"
	"testing"
	"time"
)

// TestPhaseMetrics: each phase of a watcher's runs is a histogram labelled
// by phase and watcher, and nothing else.
func TestPhaseMetrics(t *testing.T) {
	e := newEnv(t)
	m := e.srv.Metrics()
	m.ObservePhase("local", "registry", 120*time.Millisecond)
	m.ObservePhase("local", "registry", 80*time.Millisecond)
	m.ObservePhase("local", "inspect", 3*time.Millisecond)
	m.ObservePhase("remote", "store", 40*time.Millisecond)
	body := e.do(t, "GET", "/metrics", "").Body.String()
	for _, want := range []string{
		`tidewatch_watch_phase_duration_seconds_count{phase="registry",watcher="local"} 2`,
		`tidewatch_watch_phase_duration_seconds_sum{phase="registry",watcher="local"} 0.2`,
		`tidewatch_watch_phase_duration_seconds_bucket{phase="registry",watcher="local",le="0.1"} 1`,
		`tidewatch_watch_phase_duration_seconds_count{phase="inspect",watcher="local"} 1`,
		`tidewatch_watch_phase_duration_seconds_count{phase="store",watcher="remote"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
