package compose

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// TestEngineKeepsAnonymousVolumes rolls out, in engine mode, a service that
// keeps its data in anonymous volumes (an image VOLUME, as postgres has, and
// a volumes: entry without a source): a marker written into each survives an
// applied update and a rolled-back one, the service mounts the same volumes
// throughout, and no volume is removed.
func TestEngineKeepsAnonymousVolumes(t *testing.T) {
	bed := testbed.Require(t)
	repo := bed.Registry + "/" + unique("volapp")
	for _, v := range []struct {
		version string
		fail    testbed.FailMode
	}{{vGood, ""}, {vNext, ""}, {vSick, testbed.FailUnhealthy}} {
		bed.BuildVolumeImage(t, repo+":"+v.version, testbed.AppOptions{Version: v.version, Healthcheck: true, Fail: v.fail}, "/var/lib/data")
	}
	dir := t.TempDir()
	port := freePort(t)
	file := []byte(fmt.Sprintf("services:\n  db:\n    image: %s:%s\n    ports: [\"127.0.0.1:%d:8080\"]\n    volumes: [/cache]\n    labels: {tidewatch.test: \"1\"}\n", repo, vGood, port))
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &project{bed: bed, repo: repo, name: unique("twcvol"), dir: dir, file: filepath.Join(dir, "docker-compose.yml"), original: file,
		urls: map[string]string{"db": fmt.Sprintf("http://127.0.0.1:%d/", port)}}
	bed.ComposeUp(t, dir, p.name)
	p.checkAnswers(t, "db", vGood)

	first := p.container(t, "db")
	dirs := []string{"/var/lib/data", "/cache"}
	volumes := map[string]string{}
	for _, d := range dirs {
		volumes[d] = bed.VolumeAt(t, first.ID, d)
		bed.WriteFile(t, first.ID, d+"/marker", []byte("rows in "+d))
	}
	check := func(t *testing.T, when string) {
		t.Helper()
		now := p.container(t, "db")
		for _, d := range dirs {
			if got := bed.VolumeAt(t, now.ID, d); got != volumes[d] {
				t.Errorf("%s: %s is volume %s, want the first container's %s", when, d, got, volumes[d])
			}
			if got, ok := bed.ReadFile(t, now.ID, d+"/marker"); !ok || string(got) != "rows in "+d {
				t.Errorf("%s: %s/marker = %q (found %v), want the data written before", when, d, got, ok)
			}
			if !bed.VolumeExists(t, volumes[d]) {
				t.Errorf("%s: volume %s (%s) was removed", when, volumes[d], d)
			}
		}
	}

	plugin, _ := triggertest.Start(t, "compose", options(bed, RecreateEngine))
	r, rep := fire(t, plugin, p.update(t, "db", vNext))
	if r.Err != nil || rep.Outcome != OutcomeApplied {
		t.Fatalf("result: err %v, outcome %q; want applied", r.Err, rep.Outcome)
	}
	p.checkAnswers(t, "db", vNext)
	check(t, "after the update")

	u := p.update(t, "db", vSick)
	u.Current = vNext
	r, rep = fire(t, plugin, u)
	if r.Event != sdk.EventUpdateRolledBack || rep.Outcome != OutcomeRolledBack {
		t.Fatalf("result: err %v, event %q, outcome %q; want rolled back", r.Err, r.Event, rep.Outcome)
	}
	p.checkAnswers(t, "db", vNext)
	check(t, "after the rollback")
	p.checkFile(t, bytes.Replace(file, []byte(":"+vGood), []byte(":"+vNext), 1))
}
