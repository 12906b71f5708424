package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/core/watch"
	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/registries/registrytest"
	"github.com/tidewatch/tidewatch/test/testbed"
)

// Environment of the child process that runs one watch of the swarm.
const (
	envSwarmChild = "TIDEWATCH_BENCH_SWARM_CHILD"
	envSwarmHost  = "TIDEWATCH_BENCH_SWARM_DOCKER_HOST"
)

// swarmRun is what the child reports of its watch run.
type swarmRun struct {
	Listed   int     `json:"listed"`
	Services int     `json:"services"`
	Checked  int     `json:"checked"`
	Errors   int     `json:"errors"`
	WallMS   float64 `json:"wall_ms"`
	ListMS   float64 `json:"list_ms"`
	RSSMB    float64 `json:"rss_mb"`
}

// BenchmarkSwarmWatch is one watch run of a swarm manager with 1,000
// services over 300 repositories (replicas 0: their specs are what is
// watched), against the in-process registry with 20 ms added to every
// request. The run is a process of its own (this test binary, run as
// TestSwarmWatchChild), so that its peak RSS is its own; it lists the
// services through the real engine and asks the registry through a new
// client. It reports requests per repository (target ≤ 1.05), the run's
// wall time, the engine listing's share, and the child's peak RSS.
func BenchmarkSwarmWatch(b *testing.B) {
	bed := testbed.Require(b)
	reg := registrytest.New(b, registrytest.WithBearerAuth("", ""), registrytest.WithLatency(latency))
	digests := make([]string, repositories)
	for r := range repositories {
		repo := fmt.Sprintf("app%03d", r)
		digests[r] = reg.Push(b, repo, "1.0.0")
		for _, tag := range []string{"1.0.1", "1.1.0", "2.0.0", "latest"} {
			reg.Tag(b, repo, tag, digests[r])
		}
	}
	bed.Swarm(b)
	began := time.Now()
	createServices(b, bed, reg.Host, digests)
	b.Logf("created %d services in %s", containers, time.Since(began).Round(time.Millisecond))
	reg.ResetCounts()

	var last swarmRun
	b.ResetTimer()
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSwarmWatchChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envSwarmChild+"=1", envSwarmHost+"="+bed.DockerHost)
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("the watch process: %v\n%s", err, out)
		}
		if err := json.Unmarshal(lastLine(out), &last); err != nil {
			b.Fatalf("the watch process printed no report: %v\n%s", err, out)
		}
		if last.Services != containers || last.Checked != containers || last.Errors != 0 {
			b.Fatalf("the watch process: %+v, want %d services checked without error", last, containers)
		}
	}
	b.StopTimer()
	c := reg.Counts()
	n := float64(b.N)
	b.ReportMetric(float64(c.Total)/n/repositories, "requests/repo")
	b.ReportMetric(float64(c.TagList)/n, "taglists/run")
	b.ReportMetric(last.WallMS, "run-ms")
	b.ReportMetric(last.ListMS, "list-ms")
	b.ReportMetric(last.RSSMB, "peakRSS-MB")
}

// createServices creates one service per container slot, replicas 0, over
// the repositories in turn, pinned by digest as the engine pins them.
func createServices(b *testing.B, bed *testbed.Bed, host string, digests []string) {
	b.Helper()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= containers {
					return
				}
				r := i % repositories
				zero := uint64(0)
				spec := swarm.ServiceSpec{
					Annotations: swarm.Annotations{Name: fmt.Sprintf("svc%04d", i), Labels: map[string]string{testbed.LabelTest: "1", testbed.LabelBed: bed.State.ID}},
					TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{
						Image: fmt.Sprintf("%s/app%03d:1.0.0@%s", host, r, digests[r])}},
					Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
				}
				if _, err := bed.Docker().ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("creating services: %v", err)
	}
}

// TestSwarmWatchChild is the process of BenchmarkSwarmWatch: one cold watch
// run of the manager, reported as a JSON line. It is skipped otherwise.
func TestSwarmWatchChild(t *testing.T) {
	if os.Getenv(envSwarmChild) != "1" {
		t.Skip("run by BenchmarkSwarmWatch")
	}
	ctx := context.Background()
	eng, err := docker.New(docker.Options{Host: os.Getenv(envSwarmHost)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	start := time.Now()
	listed, err := eng.List(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	rep := swarmRun{Listed: len(listed), ListMS: ms(time.Since(start))}
	reg := registries.New(registries.Options{}, quiet())
	w := watch.New(watch.Options{Host: "manager", WatchByDefault: true, WatchAll: true}, eng, reg, nil, quiet())
	start = time.Now()
	checks, err := w.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep.WallMS = ms(time.Since(start))
	for _, c := range checks {
		if !c.Container.IsService() {
			continue
		}
		rep.Services++
		if c.Err != nil {
			rep.Errors++
			t.Logf("%s: %v", c.Container.Name, c.Err)
		} else if c.Candidate == "2.0.0" {
			rep.Checked++
		}
	}
	rep.RSSMB = peakRSS()
	out, _ := json.Marshal(rep)
	fmt.Println(string(out))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// lastLine returns the last line of out that holds a JSON object.
func lastLine(out []byte) []byte {
	lines := bytes.Split(out, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if len(lines[i]) > 0 && lines[i][0] == '{' {
			return lines[i]
		}
	}
	return nil
}
