package bench

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/host"
	"github.com/tidewatch/tidewatch/triggers"
)

// notifyRun is how many new updates the run hands the notify trigger.
const notifyRun = 1000

// notifyRetries is the notify instance's RETRIES in the benchmark: enough
// that a service failing a fifth of its requests never makes a delivery
// fail for good (with the default 5, about one delivery in 1,500 would at
// random, a failure the store records, not a loss).
const notifyRetries = 30

// The dispatcher's backoff in the benchmark: 50ms doubling, at most 5s,
// instead of the default 1s doubling up to 5m, so that the figures measure
// the pipeline and not the backoff policy (with the default, a run ends
// when its unluckiest delivery's fifth or sixth retry comes due, 30s to
// 3 minutes after the others).
const (
	notifyBackoff    = 50 * time.Millisecond
	notifyBackoffMax = 5 * time.Second
)

// BenchmarkNotifyRun is one watch run's 1,000 new updates delivered to a
// notify trigger with two URLs (generic+http:// to a local fake service),
// through the real dispatcher (Notify, then Drain; retries with a short
// backoff, notifyBackoff), the SQLite store and the notify trigger in its own
// process, served as tidewatch serves built-ins (`tidewatch trigger serve
// notify`). Once mode sends a message per update and URL, batch mode one per
// run and URL. With fail=20% the fake answers 500 to every fifth request,
// the first included (so that a batch is retried too).
//
// It reports the messages the services took, the requests they got (failed
// ones included), deliveries per second (from the outbox write to the last
// outcome written) and the p50 and p99 delivery latency (from each
// delivery's outbox write to its outcome written, the store's timestamps).
// It fails when a delivery is not delivered, or when a delivery's key does
// not reach each URL exactly once.
func BenchmarkNotifyRun(b *testing.B) {
	bin := buildTidewatch(b)
	for _, mode := range []core.Mode{core.ModeOnce, core.ModeBatch} {
		for _, failPct := range []int{0, 20} {
			b.Run(fmt.Sprintf("mode=%s/fail=%d%%", mode, failPct), func(b *testing.B) {
				var last notifyFigures
				for range b.N {
					last = notifyOnce(b, bin, mode, failPct)
				}
				b.ReportMetric(float64(last.messages), "messages")
				b.ReportMetric(float64(last.requests), "requests")
				b.ReportMetric(float64(notifyRun)/last.wall.Seconds(), "deliveries/s")
				b.ReportMetric(float64(last.p50.Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(last.p99.Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(last.attempts)/notifyRun, "attempts/delivery")
			})
		}
	}
}

// notifyFigures are what one run measured.
type notifyFigures struct {
	messages, requests, attempts int
	wall, p50, p99               time.Duration
}

// notifyOnce delivers one run of notifyRun updates and checks that every
// delivery was delivered and its key reached each URL exactly once.
func notifyOnce(b *testing.B, bin string, mode core.Mode, failPct int) notifyFigures {
	b.Helper()
	b.StopTimer()
	ctx := context.Background()
	svc := newNotifyService(b, failPct)
	paths := []string{"/hooks/a", "/hooks/b"}
	var urls []string
	for _, p := range paths {
		urls = append(urls, "generic+http://"+strings.TrimPrefix(svc.URL, "http://")+p)
	}

	s, err := store.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// A new plugin process per run: it remembers which services took which
	// key, and the keys of a new store are the same as the last one's.
	h := host.New(host.Options{}, nil)
	defer h.Close()
	p, err := h.Open(ctx, host.Builtins(bin, "notify")[0], "bench")
	if err != nil {
		b.Fatal(err)
	}
	err = p.Configure(ctx, "bench", map[string]string{
		"URLS":       strings.Join(urls, " "),
		"BODY":       "key={{.Update.Key}}",
		"BATCH_BODY": "{{range .Updates}}key={{.Key}}\n{{end}}",
	})
	if err != nil {
		b.Fatal(err)
	}
	pol := core.DefaultTriggerPolicy()
	pol.Mode, pol.Retries = mode, notifyRetries
	d := triggers.New(s, []triggers.Instance{{Name: "notify.bench", Trigger: p, Policy: pol}}, slog.New(slog.DiscardHandler),
		triggers.WithBackoff(notifyBackoff, 2, notifyBackoffMax))
	ups := notifyUpdates(b, s, notifyRun)

	b.StartTimer()
	start := time.Now()
	if err := d.Notify(ctx, "bench", ups); err != nil {
		b.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := d.Drain(dctx); err != nil {
		b.Fatalf("draining: %v", err)
	}
	wall := time.Since(start)
	b.StopTimer()

	all, err := s.Deliveries(ctx, store.DeliveryFilter{Trigger: "notify.bench"})
	if err != nil {
		b.Fatal(err)
	}
	if len(all) != notifyRun {
		b.Fatalf("%d deliveries in the outbox, want %d", len(all), notifyRun)
	}
	f := notifyFigures{wall: wall}
	keys := map[string]bool{}
	lat := make([]time.Duration, 0, len(all))
	for _, dl := range all {
		if dl.Status != store.DeliveryDelivered {
			b.Fatalf("delivery %d (%s) is %s after %d attempts: %s", dl.ID, dl.Update.ContainerName, dl.Status, dl.Attempts, dl.LastError)
		}
		keys[dl.Key] = true
		f.attempts += dl.Attempts
		lat = append(lat, dl.UpdatedAt.Sub(dl.CreatedAt))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	f.p50, f.p99 = lat[len(lat)/2], lat[len(lat)*99/100]

	got, requests, failed := svc.counts()
	f.requests = requests
	for _, path := range paths {
		var lost, twice, unknown []string
		for k := range keys {
			switch n := got[path][k]; {
			case n == 0:
				lost = append(lost, k)
			case n > 1:
				twice = append(twice, fmt.Sprintf("%s ×%d", k, n))
			}
		}
		for k := range got[path] {
			if !keys[k] {
				unknown = append(unknown, k)
			}
		}
		if len(lost) > 0 || len(twice) > 0 || len(unknown) > 0 {
			b.Fatalf("%s (%d requests, %d failed on purpose): %d keys never arrived %v, %d arrived more than once %v, %d are no delivery's %v",
				path, requests, failed, len(lost), head(lost), len(twice), head(twice), len(unknown), head(unknown))
		}
		f.messages += svc.taken(path)
	}
	if failPct > 0 && failed == 0 {
		b.Fatalf("the fake failed no request of %d; the benchmark did not test retries", requests)
	}
	return f
}

// head is the first few of s, for a failure message.
func head(s []string) []string {
	sort.Strings(s)
	return s[:min(len(s), 5)]
}

// notifyService is a local chat service: it takes generic webhook posts
// (text/plain, one "key=<delivery key>" line per update) on any path,
// answering 500 to failPct percent of its requests, spread evenly from the
// first on (with 20: the 1st, 6th, 11th, …), and counts the keys of each
// path's messages that it took.
type notifyService struct {
	*httptest.Server
	failPct int

	mu       sync.Mutex
	keys     map[string]map[string]int // path → key → times taken
	messages map[string]int            // path → messages taken
	requests int
	failed   int
}

func newNotifyService(b *testing.B, failPct int) *notifyService {
	b.Helper()
	s := &notifyService{failPct: failPct, keys: map[string]map[string]int{}, messages: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	b.Cleanup(s.Close)
	return s
}

func (s *notifyService) serve(w http.ResponseWriter, r *http.Request) {
	var keys []string
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if k, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "key="); ok {
			keys = append(keys, k)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if sc.Err() != nil || len(keys) == 0 {
		s.failed++
		http.Error(w, "no key in the message", http.StatusBadRequest)
		return
	}
	if s.failPct > 0 && (s.requests-1)%(100/s.failPct) == 0 {
		s.failed++
		http.Error(w, "failing on purpose", http.StatusInternalServerError)
		return
	}
	if s.keys[r.URL.Path] == nil {
		s.keys[r.URL.Path] = map[string]int{}
	}
	for _, k := range keys {
		s.keys[r.URL.Path][k]++
	}
	s.messages[r.URL.Path]++
	w.WriteHeader(http.StatusNoContent)
}

// counts returns a copy of the keys taken per path, the requests and those failed.
func (s *notifyService) counts() (map[string]map[string]int, int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]int{}
	for p, ks := range s.keys {
		out[p] = map[string]int{}
		for k, n := range ks {
			out[p][k] = n
		}
	}
	return out, s.requests, s.failed
}

// taken returns the messages path took.
func (s *notifyService) taken(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages[path]
}

// buildTidewatch builds the tidewatch binary, whose hidden `trigger serve
// notify` is the notify trigger's plugin process.
func buildTidewatch(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "tidewatch")
	cmd := exec.Command("go", "build", "-o", path, "github.com/tidewatch/tidewatch/cmd/tidewatch")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building tidewatch: %v\n%s", err, out)
	}
	return path
}

// notifyUpdates records n containers with a new update each, as one watch
// run does, and returns the updates the run recorded.
func notifyUpdates(b *testing.B, s *store.Store, n int) []core.Update {
	b.Helper()
	ref, err := core.ParseImageRef("registry.local/app:1.0.0")
	if err != nil {
		b.Fatal(err)
	}
	checks := make([]core.Check, 0, n)
	for i := range n {
		name := fmt.Sprintf("app%04d", i)
		checks = append(checks, core.Check{
			Container: core.Container{ID: "id-" + name, Name: name, DisplayName: name, Image: ref.String(), State: "running"},
			Ref:       ref, Current: "1.0.0", Candidate: "1.1.0", Kind: core.KindMinor, CheckedAt: time.Now(),
		})
	}
	ups, err := s.RecordRun(context.Background(), "local", checks, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if len(ups) != n {
		b.Fatalf("the run recorded %d updates, want %d", len(ups), n)
	}
	return ups
}
