package config

import (
	"errors"
	"strings"
	"testing"
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
