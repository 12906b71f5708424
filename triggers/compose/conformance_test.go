package compose

import (
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

func TestConformance(t *testing.T) {
	bed := testbed.Require(t)
	cli := bed.ComposeCLI(t)
	valid := map[string]string{OptDockerHost: bed.DockerHost, OptRecreate: RecreateAuto, OptHealthTimeout: "5s"}
	with := func(kv ...string) map[string]string {
		o := map[string]string{OptDockerHost: bed.DockerHost, OptRecreate: RecreateAuto, OptHealthTimeout: "5s"}
		for i := 0; i+1 < len(kv); i += 2 {
			o[kv[i]] = kv[i+1]
		}
		return o
	}
	missing := filepath.Join(t.TempDir(), "missing")

	t.Run("engine", func(t *testing.T) {
		triggertest.Run(t, triggertest.Case{
			Type:    "compose",
			Options: valid,
			Bad: []triggertest.BadOption{
				{Options: with(OptRecreate, "sideways"), Option: OptRecreate},
				{Options: with(OptCompose, missing), Option: OptCompose},
				{Options: with(OptDockerHost, "ftp://example.com"), Option: OptDockerHost},
				{Options: with(OptDockerCAFile, missing), Option: OptDockerCAFile},
				{Options: with(OptDockerCert, cli), Option: OptDockerCert},
				{Options: with(OptHealthTimeout, "soon"), Option: OptHealthTimeout},
				{Options: with(OptStableFor, "-1s"), Option: OptStableFor},
				{Options: with(OptSmokeHTTP, "http://127.0.0.1:1/,ftp://x/"), Option: OptSmokeHTTP},
				{Options: with(OptSmokeTCP, "nohost"), Option: OptSmokeTCP},
				{Options: with(OptBackups, "0"), Option: OptBackups},
				{Options: with(OptPrune, "maybe"), Option: OptPrune},
				{Options: with(OptDryRun, "maybe"), Option: OptDryRun},
				{Options: with(OptLogLines, "-1"), Option: OptLogLines},
				{Options: with(OptPathMap, "relative:/x"), Option: OptPathMap},
				{Options: with(OptFile, missing+".yml"), Option: OptFile},
			},
			// The sample update's container does not exist: nothing to roll out, for good.
			Permanent: func(*testing.T) func() { return func() {} },
		})
	})

	t.Run("hanging engine", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
			}
		}()
		triggertest.Run(t, triggertest.Case{
			Type:    "compose",
			Options: map[string]string{OptDockerHost: "tcp://" + l.Addr().String(), OptRecreate: RecreateEngine},
			Hang:    func(*testing.T) func() { return func() {} },
		})
	})
}
