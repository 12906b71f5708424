package swarm

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
	with := func(kv ...string) map[string]string {
		o := map[string]string{OptDockerHost: bed.DockerHost}
		for i := 0; i+1 < len(kv); i += 2 {
			o[kv[i]] = kv[i+1]
		}
		return o
	}
	missing := filepath.Join(t.TempDir(), "missing")

	t.Run("engine", func(t *testing.T) {
		triggertest.Run(t, triggertest.Case{
			Type:    "swarm",
			Options: with(OptStackFile, "/srv/stacks/{stack}/docker-stack.yml", OptPathMap, "/srv/stacks:"+t.TempDir()),
			Bad: []triggertest.BadOption{
				{Options: with(OptDockerHost, "ftp://example.com"), Option: OptDockerHost},
				{Options: with(OptDockerHost, "unix://"), Option: OptDockerHost},
				{Options: with(OptDockerCAFile, missing), Option: OptDockerCAFile},
				{Options: with(OptDockerCert, missing), Option: OptDockerCert},
				{Options: with(OptFailureAction, "explode"), Option: OptFailureAction},
				{Options: with(OptMonitor, "0s"), Option: OptMonitor},
				{Options: with(OptMonitor, "soon"), Option: OptMonitor},
				{Options: with(OptOrder, "random"), Option: OptOrder},
				{Options: with(OptParallelism, "-1"), Option: OptParallelism},
				{Options: with(OptParallelism, "1e9"), Option: OptParallelism},
				{Options: with(OptDelay, "-5s"), Option: OptDelay},
				{Options: with(OptPaused, "ignore"), Option: OptPaused},
				{Options: with(OptStackFile, "shop=relative/stack.yml"), Option: OptStackFile},
				{Options: with(OptStackFile, "../shop=/srv/stack.yml"), Option: OptStackFile},
				{Options: with(OptStackFile, "=/srv/stack.yml"), Option: OptStackFile},
				{Options: with(OptStackFile, "/a/{stack}.yml,/b/{stack}.yml"), Option: OptStackFile},
				{Options: with(OptStackFile, "shop=/a.yml,shop=/b.yml"), Option: OptStackFile},
				{Options: with(OptPathMap, "relative:/x"), Option: OptPathMap},
				{Options: with(OptBackups, "0"), Option: OptBackups},
				{Options: with(OptLogLines, "1001"), Option: OptLogLines},
				{Options: with(OptDryRun, "maybe"), Option: OptDryRun},
			},
			// The sample update's service does not exist: nothing to roll out, for good.
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
			Type:    "swarm",
			Options: map[string]string{OptDockerHost: "tcp://" + l.Addr().String()},
			Hang:    func(*testing.T) func() { return func() {} },
		})
	})
}
