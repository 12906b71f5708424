package main

import (
	"testing"

	"github.com/tidewatch/tidewatch/core/config"
	"github.com/tidewatch/tidewatch/triggers"
)

// TestCommonOptionsAgree: the values config accepts for THRESHOLD and MODE
// are the ones the dispatcher parses (they are listed in both packages,
// since core/config may not import triggers).
func TestCommonOptionsAgree(t *testing.T) {
	for _, th := range config.Thresholds {
		if _, err := triggers.ParseThreshold(th); err != nil {
			t.Errorf("config accepts THRESHOLD=%s, the dispatcher refuses it: %v", th, err)
		}
	}
	for _, m := range []string{config.DefaultMode, "batch"} {
		if _, err := triggers.ParseMode(m); err != nil {
			t.Errorf("config accepts MODE=%s, the dispatcher refuses it: %v", m, err)
		}
	}
	for _, tc := range []config.Trigger{{Type: "webhook", Name: "a", Threshold: "minor-only", Mode: "batch", Retries: 3, Timeout: 1, Concurrency: 1}} {
		if _, err := policyOf(tc); err != nil {
			t.Errorf("policyOf(%+v) = %v", tc, err)
		}
	}
}
