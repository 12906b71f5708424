package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestLoadRefusesCronThatNeverFires: robfig/cron parses dates that never
// come; Load refuses them at start-up, naming the variable, and still takes
// rare dates that do come (February 29th).
func TestLoadRefusesCronThatNeverFires(t *testing.T) {
	tests := []struct {
		cron    string
		refused bool
	}{
		{"0 0 31 2 *", true},
		{"0 0 30 2 *", true},
		{"30 4 31 4,6,9,11 *", true},
		{"CRON_TZ=Europe/Paris 0 0 31 2 *", true},
		{"0 0 29 2 *", false},
		{"0 0 31 1-12 *", false},
		{"@yearly", false},
	}
	for _, tc := range tests {
		t.Run(tc.cron, func(t *testing.T) {
			_, err := Load([]string{"TIDEWATCH_WATCHER_LOCAL_CRON=" + tc.cron})
			if !tc.refused {
				if err != nil {
					t.Errorf("Load(CRON=%q) = %v, want no error", tc.cron, err)
				}
				return
			}
			var ve *VarError
			if !errors.As(err, &ve) || ve.Var != "TIDEWATCH_WATCHER_LOCAL_CRON" || !strings.Contains(ve.Problem, "never fires") {
				t.Errorf("Load(CRON=%q) = %v, want an error naming TIDEWATCH_WATCHER_LOCAL_CRON: never fires", tc.cron, err)
			}
		})
	}
}

// TestLoadJitterAndWatchEvents: JITTER defaults to a minute, takes a Go
// duration, What's Up Docker's milliseconds and 0, and refuses negative,
// huge, unit-less fractional and hostile values naming the variable;
// WATCHEVENTS defaults to true and takes a boolean.
func TestLoadJitterAndWatchEvents(t *testing.T) {
	tests := []struct {
		name       string
		env        []string
		jitter     time.Duration
		events     bool
		badVar     string
		badProblem string
	}{
		{name: "defaults", jitter: time.Minute, events: true},
		{name: "duration", env: []string{"TIDEWATCH_WATCHER_LOCAL_JITTER=30s"}, jitter: 30 * time.Second, events: true},
		{name: "zero turns it off", env: []string{"TIDEWATCH_WATCHER_LOCAL_JITTER=0"}, jitter: 0, events: true},
		{name: "WUD milliseconds", env: []string{"TIDEWATCH_WATCHER_LOCAL_JITTER=60000"}, jitter: time.Minute, events: true},
		{name: "the most", env: []string{"TIDEWATCH_WATCHER_LOCAL_JITTER=24h"}, jitter: 24 * time.Hour, events: true},
		{name: "events off", env: []string{"TIDEWATCH_WATCHER_LOCAL_WATCHEVENTS=false"}, jitter: time.Minute, events: false},
		{name: "negative", env: []string{"TIDEWATCH_WATCHER_LOCAL_JITTER=-1s"}, badVar: "TIDEWATCH_WATCHER_LOCAL_JITTER", badProblem: "not a jitter"},
		{name: "negative milliseconds", env: []string{"TIDEWATCH_WATCHER_LOCAL_JITTER=-5"}, badVar: "TIDEWATCH_WATCHER_LOCAL_JITTER", badProblem: "not a jitter"},
		{name: "over a day", env: []string{"TIDEWATCH_WATCHER_LOCAL_JITTER=25h"}, badVar: "TIDEWATCH_WATCHER_LOCAL_JITTER", badProblem: "not a jitter"},
		{name: "overflowing milliseconds", env: []string{"TIDEWATCH_WATCHER_LOCAL_JITTER=9223372036854775807"}, badVar: "TIDEWATCH_WATCHER_LOCAL_JITTER", badProblem: "not a jitter"},
		{name: "no unit on a fraction", env: []string{"TIDEWATCH_WATCHER_LOCAL_JITTER=1.5"}, badVar: "TIDEWATCH_WATCHER_LOCAL_JITTER", badProblem: "not a jitter"},
		{name: "word", env: []string{"TIDEWATCH_WATCHER_LOCAL_JITTER=a minute"}, badVar: "TIDEWATCH_WATCHER_LOCAL_JITTER", badProblem: "not a jitter"},
		{name: "hostile", env: []string{"TIDEWATCH_WATCHER_LOCAL_JITTER=1s\x00" + strings.Repeat("9", 5000)}, badVar: "TIDEWATCH_WATCHER_LOCAL_JITTER", badProblem: "not a jitter"},
		{name: "events not a boolean", env: []string{"TIDEWATCH_WATCHER_LOCAL_WATCHEVENTS=sometimes"}, badVar: "TIDEWATCH_WATCHER_LOCAL_WATCHEVENTS", badProblem: "not a boolean"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(tc.env)
			if tc.badVar != "" {
				var ve *VarError
				if !errors.As(err, &ve) || ve.Var != tc.badVar || ve.Problem != tc.badProblem {
					t.Errorf("Load(%.60q) = %v, want %s: %s", tc.env, err, tc.badVar, tc.badProblem)
				}
				if err != nil && len(err.Error()) > 1024 {
					t.Errorf("error is %d bytes long, want the value cut", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q) = %v", tc.env, err)
			}
			if w := cfg.Watchers[0]; w.Jitter != tc.jitter || w.WatchEvents != tc.events {
				t.Errorf("Load(%q): Jitter %v, WatchEvents %v; want %v, %v", tc.env, w.Jitter, w.WatchEvents, tc.jitter, tc.events)
			}
		})
	}
}

// TestValidateJitter: a Watcher built in code with a jitter out of range is refused.
func TestValidateJitter(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, MaxJitter + 1} {
		w := Watcher{Name: "local", Socket: DefaultSocket, Cron: DefaultCron, Jitter: d}
		var ve *VarError
		if err := w.Validate(); !errors.As(err, &ve) || ve.Var != "TIDEWATCH_WATCHER_LOCAL_JITTER" {
			t.Errorf("Validate with Jitter %v = %v, want an error naming TIDEWATCH_WATCHER_LOCAL_JITTER", d, err)
		}
	}
}
