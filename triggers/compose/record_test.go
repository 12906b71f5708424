package compose

import (
	"path/filepath"
	"testing"

	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// TestRolloutRecordWhere: the rollout's record and lock live in the
// project's folder by default, in STATE_DIR when set; a finished rollout
// leaves neither its lock file nor its record (in cli mode too, where the
// compose CLI shared the lock).
func TestRolloutRecordWhere(t *testing.T) {
	bed := testbed.Require(t)
	for _, tc := range []struct {
		name     string
		recreate string
		stateDir bool
	}{{"project folder", RecreateEngine, false}, {"STATE_DIR", RecreateEngine, true}, {"cli", RecreateCLI, false}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProject(t, bed, "web")
			opts := options(bed, tc.recreate)
			if tc.recreate == RecreateCLI {
				opts[OptCompose] = bed.ComposeCLI(t)
			}
			where := p.dir
			if tc.stateDir {
				where = t.TempDir()
				opts[OptStateDir] = where
			}
			plugin, _ := triggertest.Start(t, "compose", opts)
			r, rep := fire(t, plugin, p.update(t, "web", vNext))
			if r.Err != nil || rep.Outcome != OutcomeApplied {
				t.Fatalf("result: err %v, outcome %q; want applied", r.Err, rep.Outcome)
			}
			locks, _ := filepath.Glob(filepath.Join(where, ".tidewatch-rollout-*.lock"))
			records, _ := filepath.Glob(filepath.Join(where, ".tidewatch-rollout-*.json"))
			if len(locks) != 0 || len(records) != 0 {
				t.Errorf("in %s: locks %v, records %v; want none", where, locks, records)
			}
			if tc.stateDir {
				if stray, _ := filepath.Glob(filepath.Join(p.dir, ".tidewatch-rollout-*")); len(stray) != 0 {
					t.Errorf("with STATE_DIR, the project's folder holds %v", stray)
				}
			}
		})
	}
}
