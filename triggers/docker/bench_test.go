package docker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/test/testbed"
	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// The benchmarks need the test bed and the docker CLI (the by-hand path):
//
//	go run ./test/bedctl up
//	TIDEWATCH_TESTBED_REQUIRED=1 go test -run '^$' -bench . -benchtime 5x ./triggers/docker/
//
// Each iteration takes seconds (the test app's healthcheck probes every
// second); the figures are custom metrics, ns/op is left out.

// healthPoll is how often the by-hand path looks at the new container's
// health: the trigger's own interval (core/docker WaitHealthy's default),
// so that neither side is favoured by its polling.
const healthPoll = 250 * time.Millisecond

// BenchmarkApply times an applied update of a plain container (the test
// app on vGood, published on a port of 127.0.0.1, with a restart policy,
// an environment entry and a label, its image's healthcheck probing every
// second) to vNext, until the new container is healthy:
//
//   - trigger-s: through the docker trigger (Fire, in process: pull,
//     rename aside, create, stop, start, health gate, removal of the old
//     container);
//   - hand-s: by hand with the docker CLI, as Watchtower's users do it:
//     docker pull, stop, rm, run with the same options, then docker
//     inspect until healthy;
//   - ratio: trigger-s / hand-s;
//   - trigger-gap-ms, hand-gap-ms: the longest time the published port did
//     not answer during each.
//
// Both start with vNext already on the engine (the pull asks the registry
// and finds it there).
func BenchmarkApply(b *testing.B) {
	bed := testbed.Require(b)
	cli := bed.Part(b, testbed.PartDocker)
	repo := requireImages(b, bed)
	bed.PullImage(b, repo+":"+vGood)
	bed.PullImage(b, repo+":"+vNext)
	trigger := benchTrigger(b, bed)
	var trig, hand, trigGap, handGap time.Duration
	for i := 0; i < b.N; i++ {
		name, handName, port := unique("bapply"), unique("bhand"), freePort(b)
		b.Cleanup(func() { removeCLI(bed, cli, name, name+rollout.ArchiveSuffix, handName) })
		args := benchRunArgs(bed, name, port)
		runCLI(b, bed, cli, append(append([]string{"run", "-d"}, args...), repo+":"+vGood)...)
		waitHealthy(b, bed, name)
		c := bed.Inspect(b, name)
		u := sdk.Update{Key: unique("bench-"), Event: sdk.EventUpdateAvailable, Host: "local", Container: name, ContainerName: name,
			ContainerID: c.ID, Image: repo, Current: vGood, Candidate: vNext, Kind: "minor", DetectedAt: time.Now().UTC(), Labels: c.Config.Labels}
		p := watchPort(port)
		start := time.Now()
		res := fireOne(b, trigger, u)
		trig += time.Since(start)
		trigGap += p.stop().gap
		if res.Err != nil || res.Rollout == nil || res.Rollout.Outcome != sdk.OutcomeApplied {
			b.Fatalf("the docker trigger did not apply %s: %v", vNext, res.Err)
		}
		removeCLI(bed, cli, name)

		// The same change by hand, on a container run the same way.
		args = benchRunArgs(bed, handName, port)
		runCLI(b, bed, cli, append(append([]string{"run", "-d"}, args...), repo+":"+vGood)...)
		waitHealthy(b, bed, handName)
		p = watchPort(port)
		start = time.Now()
		runCLI(b, bed, cli, "pull", "-q", repo+":"+vNext)
		runCLI(b, bed, cli, "stop", handName)
		runCLI(b, bed, cli, "rm", handName)
		runCLI(b, bed, cli, append(append([]string{"run", "-d"}, args...), repo+":"+vNext)...)
		waitHealthy(b, bed, handName)
		hand += time.Since(start)
		handGap += p.stop().gap
		removeCLI(bed, cli, handName)
	}
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(trig.Seconds()/n, "trigger-s")
	b.ReportMetric(hand.Seconds()/n, "hand-s")
	b.ReportMetric(trig.Seconds()/hand.Seconds(), "ratio")
	b.ReportMetric(float64(trigGap.Milliseconds())/n, "trigger-gap-ms")
	b.ReportMetric(float64(handGap.Milliseconds())/n, "hand-gap-ms")
}

// BenchmarkRollback times a rollback: the test app on vGood is updated to
// vSick, which serves but fails its healthcheck. Figures:
//
//   - recover-ms: from the engine's verdict (the new container marked
//     unhealthy, at the end of its last failed probe) to the old version
//     answering on the port again;
//   - notice-ms: from that verdict to the trigger's health gate giving up
//     (its health step's end);
//   - rollback-s: the whole Fire, pull to rollback checked;
//   - gap-ms: the longest time the port did not answer at all.
func BenchmarkRollback(b *testing.B) {
	bed := testbed.Require(b)
	cli := bed.Part(b, testbed.PartDocker)
	repo := requireImages(b, bed)
	bed.PullImage(b, repo+":"+vGood)
	bed.PullImage(b, repo+":"+vSick)
	trigger := benchTrigger(b, bed)
	var recovered, noticed, whole, gap time.Duration
	for i := 0; i < b.N; i++ {
		name, port := unique("brollback"), freePort(b)
		runCLI(b, bed, cli, append(append([]string{"run", "-d"}, benchRunArgs(bed, name, port)...), repo+":"+vGood)...)
		b.Cleanup(func() { removeCLI(bed, cli, name, name+rollout.ArchiveSuffix) })
		waitHealthy(b, bed, name)
		c := bed.Inspect(b, name)
		u := sdk.Update{Key: unique("bench-"), Event: sdk.EventUpdateAvailable, Host: "local", Container: name, ContainerName: name,
			ContainerID: c.ID, Image: repo, Current: vGood, Candidate: vSick, Kind: "minor", DetectedAt: time.Now().UTC(), Labels: c.Config.Labels}
		p := watchPort(port)
		v := watchVerdict(bed, name, c.ID)
		start := time.Now()
		res := fireOne(b, trigger, u)
		whole += time.Since(start)
		verdict := v.stop()
		answers := p.stop()
		ro := res.Rollout
		if ro == nil || ro.Outcome != sdk.OutcomeRolledBack || ro.FailedStep != rollout.StepHealth {
			b.Fatalf("want a rollback after the health gate, got %v (%+v)", res.Err, ro)
		}
		if verdict.IsZero() {
			b.Fatal("the new container was never seen unhealthy")
		}
		back := answers.firstAfter(verdict, vGood)
		if back.IsZero() {
			b.Fatalf("%s never answered %s again after the verdict", name, vGood)
		}
		recovered += back.Sub(verdict)
		h := stepOf(ro, rollout.StepHealth)
		noticed += h.At.Add(h.Duration).Sub(verdict)
		gap += answers.gap
		removeCLI(bed, cli, name)
	}
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(recovered.Milliseconds())/n, "recover-ms")
	b.ReportMetric(float64(noticed.Milliseconds())/n, "notice-ms")
	b.ReportMetric(whole.Seconds()/n, "rollback-s")
	b.ReportMetric(float64(gap.Milliseconds())/n, "gap-ms")
}

// benchTrigger is a configured docker trigger, in process, logging nowhere.
func benchTrigger(b *testing.B, bed *testbed.Bed) *Trigger {
	b.Helper()
	trigger := NewWithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := trigger.Configure(b.Context(), "bench", options(bed, OptHealthTimeout, "60s")); err != nil {
		b.Fatal(err)
	}
	return trigger
}

// benchRunArgs are the docker run options of a benchmark's container.
func benchRunArgs(bed *testbed.Bed, name string, port int) []string {
	return []string{"--name", name, "--label", testbed.LabelTest + "=1", "--label", testbed.LabelBed + "=" + bed.State.ID,
		"-p", fmt.Sprintf("127.0.0.1:%d:8080", port), "--restart", "unless-stopped", "-e", "OWN=1", "--label", "org.example.role=web"}
}

func fireOne(b *testing.B, trigger *Trigger, u sdk.Update) sdk.Result {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 3*time.Minute)
	defer cancel()
	return trigger.Fire(ctx, []sdk.Update{u})[0]
}

// waitHealthy polls the container name every healthPoll until it is healthy.
func waitHealthy(b *testing.B, bed *testbed.Bed, name string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
	defer cancel()
	tick := time.NewTicker(healthPoll)
	defer tick.Stop()
	for {
		c, err := bed.Docker().ContainerInspect(ctx, name)
		if err == nil && c.State != nil && c.State.Health != nil && c.State.Health.Status == container.Healthy {
			return
		}
		select {
		case <-ctx.Done():
			b.Fatalf("%s is not healthy after a minute (%v)", name, err)
		case <-tick.C:
		}
	}
}

// portWatch polls http://127.0.0.1:port/ every 10ms, recording each answer.
type portWatch struct {
	done    chan struct{}
	wg      sync.WaitGroup
	answers []answer
	gap     time.Duration // the longest time without an answer
}

type answer struct {
	at   time.Time
	body string
}

func watchPort(port int) *portWatch {
	w := &portWatch{done: make(chan struct{})}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	hc := &http.Client{Timeout: time.Second}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		last := time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				w.gap = max(w.gap, time.Since(last))
				return
			case <-tick.C:
			}
			resp, err := hc.Get(url)
			if err != nil {
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				continue
			}
			now := time.Now()
			w.gap = max(w.gap, now.Sub(last))
			last = now
			w.answers = append(w.answers, answer{at: now, body: strings.TrimSpace(string(body))})
		}
	}()
	return w
}

// stop ends the polling and returns the watch, complete.
func (w *portWatch) stop() *portWatch {
	close(w.done)
	w.wg.Wait()
	return w
}

// firstAfter returns when the port first answered version after t; zero if never.
func (w *portWatch) firstAfter(t time.Time, version string) time.Time {
	for _, a := range w.answers {
		if a.at.After(t) && a.body == version {
			return a.at
		}
	}
	return time.Time{}
}

// verdictWatch polls the container under a name, other than the one with
// ID old, until the engine marks it unhealthy.
type verdictWatch struct {
	done chan struct{}
	wg   sync.WaitGroup
	at   time.Time // the end of the probe that made it unhealthy
}

func watchVerdict(bed *testbed.Bed, name, old string) *verdictWatch {
	w := &verdictWatch{done: make(chan struct{})}
	api := bed.Docker()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
			c, err := api.ContainerInspect(context.Background(), name)
			if err != nil || c.ID == old || c.State == nil || c.State.Health == nil || c.State.Health.Status != container.Unhealthy {
				continue
			}
			if log := c.State.Health.Log; len(log) > 0 {
				w.at = log[len(log)-1].End
				return
			}
		}
	}()
	return w
}

// stop ends the polling and returns when the new container was marked
// unhealthy; zero when it was not seen so.
func (w *verdictWatch) stop() time.Time {
	close(w.done)
	w.wg.Wait()
	return w.at
}

// runCLI runs the docker CLI against the bed's engine; the benchmark fails on error.
func runCLI(b *testing.B, bed *testbed.Bed, cli string, args ...string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+bed.DockerHost)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// removeCLI removes the containers names, forced, with their anonymous volumes.
func removeCLI(bed *testbed.Bed, cli string, names ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, append([]string{"rm", "-f", "-v"}, names...)...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+bed.DockerHost)
	_ = cmd.Run()
}
