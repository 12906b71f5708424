package docker

import (
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// TestConformance runs the trigger kit: options declared, bad values refused
// naming their option, a missing container refused for good, and a hanging
// engine cut off by the deadline.
func TestConformance(t *testing.T) {
	bed := testbed.Require(t)
	with := func(kv ...string) map[string]string {
		o := map[string]string{OptDockerHost: bed.DockerHost, OptHealthTimeout: "5s"}
		for i := 0; i+1 < len(kv); i += 2 {
			o[kv[i]] = kv[i+1]
		}
		return o
	}
	missing := filepath.Join(t.TempDir(), "missing")
	t.Run("engine", func(t *testing.T) {
		triggertest.Run(t, triggertest.Case{
			Type:    "docker",
			Options: with(),
			Bad: []triggertest.BadOption{
				{Options: with(OptDockerHost, "ftp://example.com"), Option: OptDockerHost},
				{Options: with(OptDockerHost, "unix://"), Option: OptDockerHost},
				{Options: with(OptDockerCAFile, missing), Option: OptDockerCAFile},
				{Options: with(OptDockerCert, missing), Option: OptDockerCert},
				{Options: with(OptHealthTimeout, "soon"), Option: OptHealthTimeout},
				{Options: with(OptStableFor, "-1s"), Option: OptStableFor},
				{Options: with(OptSmokeHTTP, "http://127.0.0.1:1/,ftp://x/"), Option: OptSmokeHTTP},
				{Options: with(OptSmokeTCP, "nohost"), Option: OptSmokeTCP},
				{Options: with(OptSmokeTCP, "127.0.0.1:99999"), Option: OptSmokeTCP},
				{Options: with(OptPrune, "maybe"), Option: OptPrune},
				{Options: with(OptDryRun, "maybe"), Option: OptDryRun},
				{Options: with(OptLogLines, "-1"), Option: OptLogLines},
				{Options: with(OptLogLines, "1e3"), Option: OptLogLines},
				{Options: with(OptSelf, "a b"), Option: OptSelf},
				{Options: with(OptSelf, "../etc"), Option: OptSelf},
				{Options: with(OptSelfUpdate, "perhaps"), Option: OptSelfUpdate},
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
			Type:    "docker",
			Options: map[string]string{OptDockerHost: "tcp://" + l.Addr().String()},
			Hang:    func(*testing.T) func() { return func() {} },
		})
	})
}
