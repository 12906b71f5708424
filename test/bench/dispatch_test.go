package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/triggers"
)

// plugin builds the plugins/host test plugin (a trigger that, configured
// with MODE=ok, does nothing but answer) once per benchmark process.
func plugin(b *testing.B) host.Spec {
	b.Helper()
	path := filepath.Join(b.TempDir(), "tidewatch-trigger-test")
	cmd := exec.Command("go", "build", "-o", path, "github.com/tidewatch/tidewatch/plugins/host/testdata/testplugin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the test plugin: %v\n%s", err, out)
	}
	return host.Spec{Type: "test", Path: path}
}

// updates records n containers with an update each and returns the updates
// the run recorded, what Notify takes.
func updates(b *testing.B, s *store.Store, n int) []core.Update {
	b.Helper()
	ctx := context.Background()
	var checks []core.Check
	for i := range n {
		name := fmt.Sprintf("c%06d", i)
		ref, _ := core.ParseImageRef("registry.local/app:1.0.0")
		checks = append(checks, core.Check{
			Container: core.Container{ID: "id-" + name, Name: name, DisplayName: name, Image: ref.String(), State: "running"},
			Ref:       ref, Current: "1.0.0", Candidate: "1.1.0", Kind: core.KindMinor,
		})
	}
	ups, err := s.RecordRun(ctx, "local", checks, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	return ups
}

func dispatcher(b *testing.B, concurrency int) (*triggers.Dispatcher, *store.Store) {
	b.Helper()
	s, err := store.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	h := host.New(host.Options{}, nil)
	b.Cleanup(h.Close)
	p, err := h.Open(context.Background(), plugin(b), "bench")
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Configure(context.Background(), "bench", map[string]string{"MODE": "ok"}); err != nil {
		b.Fatal(err)
	}
	pol := core.DefaultTriggerPolicy()
	pol.Concurrency = concurrency
	return triggers.New(s, []triggers.Instance{{Name: "test.bench", Trigger: p, Policy: pol}}, nil), s
}

// BenchmarkDeliveryThroughput: b.N updates handed to the dispatcher at once,
// each written to the outbox, fired through a real plugin process, and its
// outcome recorded. Reports deliveries/s and the CPU time per delivery of
// this process and of the plugin's, which a loaded machine changes far less
// than the wall time.
func BenchmarkDeliveryThroughput(b *testing.B) {
	d, s := dispatcher(b, 8)
	run := updates(b, s, b.N)
	ctx := context.Background()
	b.ResetTimer()
	cpu0 := cpuNow()
	start := time.Now()
	if err := d.Notify(ctx, "bench", run); err != nil {
		b.Fatal(err)
	}
	if err := d.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
	reportCPU(b, cpu0)
	delivered, err := s.Deliveries(ctx, store.DeliveryFilter{Status: store.DeliveryDelivered})
	if err != nil {
		b.Fatal(err)
	}
	if len(delivered) != b.N {
		b.Fatalf("%d delivered, want %d", len(delivered), b.N)
	}
}

// BenchmarkDeliveryLatency: the dispatcher runs as in the daemon (Run), and
// updates arrive one at a time, every 2 ms (500/s, well under its capacity);
// each delivery's latency is from its outbox write (Notify) to its outcome
// written, read from the store's timestamps. Reports p50 and p99, and the
// CPU time per delivery of this process and of the plugin's.
func BenchmarkDeliveryLatency(b *testing.B) {
	d, s := dispatcher(b, 2)
	run := updates(b, s, b.N)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	b.ResetTimer()
	cpu0 := cpuNow()
	tick := time.NewTicker(2 * time.Millisecond)
	for i := range b.N {
		<-tick.C
		if err := d.Notify(ctx, fmt.Sprintf("bench-%d", i), run[i:i+1]); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	deadline := time.Now().Add(time.Minute)
	var delivered []store.Delivery
	for {
		var err error
		delivered, err = s.Deliveries(ctx, store.DeliveryFilter{Status: store.DeliveryDelivered})
		if err != nil {
			b.Fatal(err)
		}
		if len(delivered) == b.N || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	reportCPU(b, cpu0)
	cancel()
	<-done
	if len(delivered) != b.N {
		b.Fatalf("%d delivered, want %d", len(delivered), b.N)
	}
	lat := make([]time.Duration, 0, b.N)
	for _, dl := range delivered {
		lat = append(lat, dl.UpdatedAt.Sub(dl.CreatedAt))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
