package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	w := e.do(t, "GET", "/api/openapi.json", "")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/openapi.json = %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(w.Body.Bytes())
	if err != nil {
		t.Fatalf("loading the OpenAPI document: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	var inDoc []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inDoc = append(inDoc, method+" "+path)
		}
	}
	var inRouter []string
	for _, rt := range routeList(t, e.h) {
		if rt == "GET /" || rt == "GET /*" { // the UI's files
			continue
		}
		inRouter = append(inRouter, rt)
	}
	slices.Sort(inDoc)
	slices.Sort(inRouter)
	for _, rt := range inRouter {
		if !slices.Contains(inDoc, rt) {
			t.Errorf("route %s is not in the OpenAPI document", rt)
		}
	}
	for _, op := range inDoc {
		if !slices.Contains(inRouter, op) {
			t.Errorf("the OpenAPI document has %s, which no route serves", op)
		}
	}
}

func TestBrokerDropsForSlowSubscribers(t *testing.T) {
	b := NewBroker()
	ctx, cancel := context.WithCancel(t.Context())
	slow := b.Subscribe(ctx)
	fast := b.Subscribe(ctx)
	got := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range fast {
			got++
		}
	}()
	n := SubscriberBuffer * 3
	for i := range n {
		b.Publish(Event{Type: EventRun, Data: i}) // never blocks on slow
	}
	if len(slow) != SubscriberBuffer || b.Dropped() < int64(n-SubscriberBuffer) {
		t.Errorf("slow subscriber holds %d events, dropped %d; want %d held and the rest dropped", len(slow), b.Dropped(), SubscriberBuffer)
	}
	cancel()
	<-done
	for range slow {
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Subscribers() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if b.Subscribers() != 0 {
		t.Errorf("Subscribers() after cancel = %d, want 0", b.Subscribers())
	}
	if got == 0 {
		t.Errorf("fast subscriber got no event")
	}
}

// serve runs the server on a free loopback port until the test ends.
func serve(t *testing.T, e *env) (url string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.srv.Serve(ctx, ln) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(ShutdownGrace + 5*time.Second):
			t.Fatal("Serve did not return after its context ended")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return "http://" + ln.Addr().String(), stop
}

func TestEventStream(t *testing.T) {
	e := newEnv(t)
	e.srv.heartbeat = 20 * time.Millisecond
	url, stop := serve(t, e)
	resp, err := http.Get(url + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /api/events = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(want func(string) bool) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("stream ended")
				}
				if want(l) {
					return l
				}
			case <-deadline:
				t.Fatal("no matching line on the stream")
			}
		}
	}
	next(func(l string) bool { return l == ": heartbeat" })
	// Wait until the handler subscribed, then publish.
	deadline := time.Now().Add(5 * time.Second)
	for e.broker.Subscribers() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	e.broker.Publish(Event{Type: EventRun, Data: RunInfo{Host: "local", Containers: 3}})
	next(func(l string) bool { return l == "event: run" })
	data := next(func(l string) bool { return strings.HasPrefix(l, "data: ") })
	var ri RunInfo
	if err := json.Unmarshal([]byte(strings.TrimPrefix(data, "data: ")), &ri); err != nil || ri.Host != "local" || ri.Containers != 3 {
		t.Errorf("event data = %q (%v), want the run", data, err)
	}
	// Shutting down ends the stream, and Serve returns.
	start := time.Now()
	if err := stop(); err != nil {
		t.Errorf("Serve() after shutdown = %v, want nil", err)
	}
	if d := time.Since(start); d > ShutdownGrace/2 {
		t.Errorf("shutdown with an open stream took %s", d)
	}
	for range lines {
	}
}

func TestGracefulShutdownFinishesRequests(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	e := newEnv(t, func(d *Deps, _ *Config) {
		d.Ready["slow"] = func(ctx context.Context) error {
			close(entered)
			<-release
			return ctx.Err()
		}
	})
	url, stop := serve(t, e)
	res := make(chan int, 1)
	go func() {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			res <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res <- resp.StatusCode
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// The request in flight is not cut off: it finishes, then Serve returns.
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	if code := <-res; code != http.StatusOK {
		t.Errorf("request in flight during shutdown = %d, want 200", code)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve() = %v, want nil", err)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	m := e.srv.Metrics()
	m.ObserveRun("local", 1500*time.Millisecond)
	m.ObserveDelivery("webhook.ops", "delivered")
	m.ObserveRollout("rolled-back")
	m.ObserveService("notify.ops", "telegram#1", false)
	m.ObserveService("notify.ops", "gotify#2", true)
	m.ObserveService("notify.ops", "gotify#2", true)
	e.do(t, "GET", "/api/containers/local/web", "")
	e.do(t, "GET", "/api/containers/local/nope", "")
	body := e.do(t, "GET", "/metrics", "").Body.String()
	for _, want := range []string{
		`tidewatch_containers_watched{host="local"} 3`,
		`tidewatch_containers_watched{host="remote"} 1`,
		`tidewatch_updates_pending{kind="major"} 1`,
		`tidewatch_updates_pending{kind="minor"} 1`,
		`tidewatch_registry_requests_total{registry="registry.example"} 12`,
		`tidewatch_registry_errors_total{registry="registry.example"} 1`,
		`tidewatch_registry_ratelimit_remaining{registry="registry.example"} 90`,
		`tidewatch_deliveries_total{result="delivered",trigger="webhook.ops"} 1`,
		`tidewatch_rollouts_total{result="rolled-back"} 1`,
		`tidewatch_trigger_service_deliveries_total{result="delivered",service="telegram#1",trigger="notify.ops"} 1`,
		`tidewatch_trigger_service_deliveries_total{result="failed",service="gotify#2",trigger="notify.ops"} 2`,
		`tidewatch_watch_run_duration_seconds_count{host="local"} 1`,
		`tidewatch_http_requests_total{code="200",route="/api/containers/{host}/{name}"} 1`,
		`tidewatch_http_requests_total{code="404",route="/api/containers/{host}/{name}"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `container="`) || strings.Contains(body, "/api/containers/local/web") {
		t.Errorf("/metrics has a per-container label")
	}
}

func TestNoUIPlaceholder(t *testing.T) {
	e := newEnv(t, func(d *Deps, _ *Config) { d.UI = nil })
	w := e.do(t, "GET", "/", "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "/api/openapi.json") {
		t.Errorf("GET / without UI = %d %s", w.Code, w.Body.String())
	}
}
