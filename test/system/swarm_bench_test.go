package system

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	dockerswarm "github.com/docker/docker/api/types/swarm"

	"github.com/tidewatch/tidewatch/test/testbed"
)

// BenchmarkSwarmApply measures the time from Apply (POST
// /api/updates/{id}/apply through the real daemon, its outbox and the swarm
// trigger's plugin process) to the delivery's end, for a 2-replica service
// going from 1.0.0 to 1.1.0; and, beside it, `docker service update
// --image` run by hand on an identical service (same images, same update
// config: one task at a time, start-first, a 5s monitor, rollback on
// failure) until the CLI returns. Both services end on 1.1.0 with both
// replicas healthy; the figures are apply-s and cli-s.
func BenchmarkSwarmApply(b *testing.B) {
	bed := testbed.Require(b)
	repo := bed.Registry + "/" + unique("swbench")
	for _, v := range []string{"1.0.0", "1.1.0"} {
		bed.BuildImage(b, repo+":"+v, testbed.AppOptions{Version: v, Healthcheck: true})
	}
	uc := &dockerswarm.UpdateConfig{Parallelism: 1, Monitor: 5 * time.Second, FailureAction: "rollback", Order: "start-first"}
	bed.Swarm(b)

	var apply, cli time.Duration
	for b.Loop() {
		// tidewatch: the update found at start, then Apply.
		svc := unique("viaapply")
		id := bed.CreateService(b, svc, repo+":1.0.0", testbed.ServiceOptions{Replicas: 2, Labels: watchedService, UpdateConfig: uc})
		d := startServe(b, envFor(b, bed.DockerHost,
			"TIDEWATCH_TRIGGER_SWARM_PROD_AUTO=false",
			"TIDEWATCH_TRIGGER_SWARM_PROD_DEADLINE=4m",
		))
		var updateID int64
		waitUntil(b, time.Minute, "the update", func() bool {
			var list struct {
				Containers []struct {
					Name     string
					UpdateID int64 `json:"update_id"`
				}
			}
			d.getJSON(b, "/api/containers?type=service", &list)
			for _, c := range list.Containers {
				if c.Name == svc && c.UpdateID != 0 {
					updateID = c.UpdateID
				}
			}
			return updateID != 0
		})
		start := time.Now()
		resp, err := http.Post(fmt.Sprintf("%s/api/updates/%d/apply", d.base, updateID), "application/json", strings.NewReader(`{"trigger":"swarm.prod"}`))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		var dl delivery
		for dl.Status != "delivered" && dl.Status != "failed" {
			if time.Since(start) > 3*time.Minute {
				b.Fatalf("the delivery did not end within 3m: %+v", dl)
			}
			time.Sleep(50 * time.Millisecond) // polling the API: the figure's resolution
			dl = lastDelivery(b, d, updateID)
		}
		apply += time.Since(start)
		if dl.Rollout == nil || dl.Rollout.Outcome != "applied" {
			b.Fatalf("delivery %+v, want applied", dl)
		}
		if v := bed.Service(b, id); !slices.Equal(v.Versions(), []string{"1.1.0", "1.1.0"}) {
			b.Fatalf("after Apply the replicas run %v", v.Versions())
		}
		d.stop(b)

		// By hand, on an identical service.
		byHand := unique("byhand")
		hid := bed.CreateService(b, byHand, repo+":1.0.0", testbed.ServiceOptions{Replicas: 2, UpdateConfig: uc})
		cmd := exec.Command("docker", "service", "update", "--quiet", "--image", repo+":1.1.0", byHand)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+bed.DockerHost)
		start = time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("docker service update: %v\n%s", err, out)
		}
		cli += time.Since(start)
		if v := bed.Service(b, hid); !slices.Equal(v.Versions(), []string{"1.1.0", "1.1.0"}) {
			b.Fatalf("after docker service update the replicas run %v", v.Versions())
		}
	}
	b.ReportMetric(apply.Seconds()/float64(b.N), "apply-s")
	b.ReportMetric(cli.Seconds()/float64(b.N), "cli-s")
}
