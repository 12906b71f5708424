//go:build !faults

package system

import "testing"

// faultTrials is how many trials per step and mode TestRolloutFaults runs:
// one in the normal test run (TIDEWATCH_FAULT_TRIALS to change it).
func faultTrials(t *testing.T) int { return trialsFromEnv(t, 1) }
