package compose

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/triggertest"
)

// BenchmarkComposeUpdate measures one applied update of a compose service:
// by hand (the file edited, `docker-compose up -d --no-deps web`, until the
// new version answers) and through the trigger in cli and engine mode (pull,
// rewrite with backup, recreate, health gate, clean-up: Fire until it
// returns), each iteration doing all three on the same project, flipping
// it between two healthy versions. Metrics: seconds per update of each, and
// the trigger's time as a multiple of the hand's.
//
//	go run ./test/bedctl up
//	TIDEWATCH_TESTBED_REQUIRED=1 go test -run '^$' -bench ComposeUpdate -benchtime 3x ./triggers/compose/
func BenchmarkComposeUpdate(b *testing.B) {
	bed := testbed.Require(b)
	cli := bed.ComposeCLI(b)
	p := newProject(b, bed, "web")
	plugins := map[string]*host.Plugin{}
	for _, mode := range []string{RecreateCLI, RecreateEngine} {
		opts := options(bed, mode)
		if mode == RecreateCLI {
			opts[OptCompose] = cli
		}
		plugins[mode], _ = triggertest.Start(b, "compose", opts)
	}
	version := vGood
	flip := func() string {
		if version == vGood {
			version = vNext
		} else {
			version = vGood
		}
		return version
	}
	var hand, viaCLI, viaEngine time.Duration
	b.ResetTimer()
	for range b.N {
		// By hand.
		to := flip()
		began := time.Now()
		if err := os.WriteFile(p.file, p.fileWith("web", to), 0o644); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(cli, "-p", p.name, "up", "-d", "--no-deps", "web")
		cmd.Dir, cmd.Env = p.dir, append(os.Environ(), "DOCKER_HOST="+bed.DockerHost)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s up: %v\n%s", cli, err, out)
		}
		waitVersion(b, p.urls["web"], to)
		hand += time.Since(began)

		for _, mode := range []string{RecreateCLI, RecreateEngine} {
			from := version
			to := flip()
			u := p.update(b, "web", to)
			u.Current = from
			began := time.Now()
			r := plugins[mode].Fire(context.Background(), []sdk.Update{u})[0]
			took := time.Since(began)
			if r.Err != nil || r.Rollout == nil || r.Rollout.Outcome != OutcomeApplied {
				b.Fatalf("%s rollout %s → %s: %v (%+v)", mode, from, to, r.Err, r.Rollout)
			}
			waitVersion(b, p.urls["web"], to)
			if mode == RecreateCLI {
				viaCLI += took
			} else {
				viaEngine += took
			}
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(hand.Seconds()/n, "hand-s/update")
	b.ReportMetric(viaCLI.Seconds()/n, "cli-s/update")
	b.ReportMetric(viaEngine.Seconds()/n, "engine-s/update")
	b.ReportMetric(viaCLI.Seconds()/hand.Seconds(), "cli/hand")
	b.ReportMetric(viaEngine.Seconds()/hand.Seconds(), "engine/hand")
}

// BenchmarkRollbackAnswers measures, per mode, the time from the failed
// health check (a new version that exits at once) to the previous version
// answering HTTP again, as a client polling every 10 ms sees it; and the
// rollback step's own duration.
//
//	TIDEWATCH_TESTBED_REQUIRED=1 go test -run '^$' -bench RollbackAnswers -benchtime 3x ./triggers/compose/
func BenchmarkRollbackAnswers(b *testing.B) {
	bed := testbed.Require(b)
	cli := bed.ComposeCLI(b)
	for _, mode := range []string{RecreateCLI, RecreateEngine} {
		b.Run(mode, func(b *testing.B) {
			p := newProject(b, bed, "web")
			opts := options(bed, mode)
			if mode == RecreateCLI {
				opts[OptCompose] = cli
			}
			plugin, _ := triggertest.Start(b, "compose", opts)
			var answers, rollback time.Duration
			b.ResetTimer()
			for range b.N {
				poll := startPolling(p.urls["web"], vGood)
				r := plugin.Fire(context.Background(), []sdk.Update{p.update(b, "web", vDies)})[0]
				seen := poll.stop()
				ro := r.Rollout
				if ro == nil || ro.Outcome != OutcomeRolledBack {
					b.Fatalf("rollout to %s: %v (%+v), want rolled back", vDies, r.Err, ro)
				}
				var failedAt time.Time
				for _, st := range ro.Steps {
					switch st.Name {
					case StepHealth:
						failedAt = st.At.Add(st.Duration)
					case StepRollback:
						rollback += st.Duration
					}
				}
				back := time.Time{}
				for _, at := range seen {
					if at.After(failedAt) {
						back = at
						break
					}
				}
				if failedAt.IsZero() || back.IsZero() {
					b.Fatalf("health failed at %s; the previous version answered at %v after it", failedAt, seen)
				}
				answers += back.Sub(failedAt)
			}
			b.StopTimer()
			b.ReportMetric(answers.Seconds()/float64(b.N), "s-to-answer")
			b.ReportMetric(rollback.Seconds()/float64(b.N), "rollback-step-s")
		})
	}
}

// poller polls a URL and records when it answered want.
type poller struct {
	stopOnce sync.Once
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	seen     []time.Time
}

func startPolling(url, want string) *poller {
	p := &poller{done: make(chan struct{})}
	hc := &http.Client{Timeout: time.Second}
	p.wg.Go(func() {
		for {
			select {
			case <-p.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			resp, err := hc.Get(url)
			if err != nil {
				continue
			}
			buf := make([]byte, 64)
			n, _ := resp.Body.Read(buf)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(buf[:n])) == want {
				p.mu.Lock()
				p.seen = append(p.seen, time.Now())
				p.mu.Unlock()
			}
		}
	})
	return p
}

// stop ends the polling and returns when want was answered.
func (p *poller) stop() []time.Time {
	p.stopOnce.Do(func() { close(p.done) })
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen
}

// waitVersion waits until url answers version.
func waitVersion(b *testing.B, url, version string) {
	b.Helper()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := hc.Get(url); err == nil {
			buf := make([]byte, 64)
			n, _ := resp.Body.Read(buf)
			resp.Body.Close()
			if strings.TrimSpace(string(buf[:n])) == version {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("%s never answered %s", url, version)
}
