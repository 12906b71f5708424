package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/web"
)

// apiServer serves the API over a store holding 1,000 containers, each with
// a pending update, on 127.0.0.1.
func apiServer(b *testing.B) *httptest.Server {
	b.Helper()
	s, err := store.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	var checks []core.Check
	for i := range containers {
		name := fmt.Sprintf("c%04d", i)
		ref, _ := core.ParseImageRef(fmt.Sprintf("registry.local/app%03d:1.0.0", i%repositories))
		checks = append(checks, core.Check{
			Container: core.Container{ID: "id-" + name, Name: name, DisplayName: name, Image: ref.String(), State: "running",
				Labels: map[string]string{"com.example.team": "web"}},
			Ref: ref, Current: "1.0.0", Candidate: "1.1.0", Kind: core.KindMinor, CheckedAt: time.Now(),
		})
	}
	if _, err := s.RecordRun(context.Background(), "local", checks, time.Now()); err != nil {
		b.Fatal(err)
	}
	srv := web.New(web.Deps{Containers: s, Updates: s, History: s, Events: web.NewBroker()}, web.Config{Address: "127.0.0.1", Port: 8080},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)
	return ts
}

// BenchmarkAPIPendingUpdates loads GET /api/updates (1,000 pending updates,
// 290 KB of JSON, 20 KB gzipped) from 200 concurrent keep-alive connections
// for 10 seconds, a bounded local client on 127.0.0.1 accepting gzip, and
// reports requests/s, p50, p99 and errors.
func BenchmarkAPIPendingUpdates(b *testing.B) {
	ts := apiServer(b)
	const conns, duration = 200, 10 * time.Second
	b.ResetTimer()
	for range b.N {
		// Like wrk: the bytes are read, not decompressed.
		tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		var mu sync.Mutex
		var lat []time.Duration
		errs := 0
		stop := time.Now().Add(duration)
		var wg sync.WaitGroup
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				bad := 0
				for time.Now().Before(stop) {
					start := time.Now()
					req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/updates", nil)
					req.Header.Set("Accept-Encoding", "gzip")
					resp, err := client.Do(req)
					if err != nil {
						bad++
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						bad++
						continue
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				errs += bad
				mu.Unlock()
			}()
		}
		wg.Wait()
		tr.CloseIdleConnections()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		if len(lat) == 0 {
			b.Fatal("no request succeeded")
		}
		b.ReportMetric(float64(len(lat))/duration.Seconds(), "req/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(errs), "errors")
	}
}

// BenchmarkIdleMemory is the heap of the daemon's parts at rest after a
// check of 1,000 simulated containers over 300 repositories: the store, the
// registry client, the watcher and the API server.
func BenchmarkIdleMemory(b *testing.B) {
	_, e := setup(b)
	for range b.N {
		run(b, watchWithStore(b, e))
	}
	ts := apiServer(b)
	_ = ts
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(m.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(procStatus("VmRSS:"), "RSS-MB")
}
