package web

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tidewatch/tidewatch/core/store"
)

// Metrics are tidewatch's Prometheus metrics, in a registry of their own
// (with the Go and process collectors), served at /metrics. Labels stay few:
// hosts, registries, triggers, kinds and results, never containers.
//
// Read from the server's Deps at each scrape:
//
//	tidewatch_containers_watched{host}              gauge   containers present, by watcher
//	tidewatch_updates_pending{kind}                 gauge   pending and notified updates not snoozed, by kind
//	tidewatch_registry_requests_total{registry}     counter HTTP requests sent to a registry
//	tidewatch_registry_errors_total{registry}       counter registry calls that failed
//	tidewatch_registry_throttled_total{registry}    counter 429 answers
//	tidewatch_registry_concurrency{registry}        gauge   requests in flight allowed now (adapted)
//	tidewatch_registry_ratelimit_remaining{registry} gauge  last rate-limit remaining announced (absent when unknown)
//
// Recorded by the daemon through the Observe methods, and by the server:
//
//	tidewatch_watch_run_duration_seconds{host}      histogram full watch runs
//	tidewatch_watch_phase_duration_seconds{phase,watcher} histogram where a full run's time went: list,
//	                                                inspect, registry, select, store, dispatch (phases overlap)
//	tidewatch_deliveries_total{trigger,result}      counter finished delivery attempts (delivered, retry, failed)
//	tidewatch_trigger_service_deliveries_total{trigger,service,result}
//	                                                counter what each service of a trigger that sends to several
//	                                                (the notify trigger's URLs) did in a delivery attempt
//	                                                (delivered, failed); service is "scheme#position", never a URL
//	tidewatch_rollouts_total{result}                counter rollouts (applied, rolled-back, failed)
//	tidewatch_http_requests_total{route,code}       counter requests by route pattern and status
//	tidewatch_git_drift{source}                     gauge   1 while a git source's fetched commit is not the one deployed
//	tidewatch_git_syncs_total{source,result}        counter syncs of a git source since start, by result
type Metrics struct {
	reg         *prometheus.Registry
	runs        *prometheus.HistogramVec
	phases      *prometheus.HistogramVec
	deliveries  *prometheus.CounterVec
	services    *prometheus.CounterVec
	rollouts    *prometheus.CounterVec
	httpReqs    *prometheus.CounterVec
	scrapeState *depsCollector
	git         *gitCollector
}

// NewMetrics returns the metrics, registered in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tidewatch_watch_run_duration_seconds", Help: "Duration of full watch runs, by watcher.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"host"}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tidewatch_watch_phase_duration_seconds",
			Help:    "Wall time of each phase of full watch runs (list, inspect, registry, select, store, dispatch), by watcher; phases overlap.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"phase", "watcher"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidewatch_deliveries_total", Help: "Finished delivery attempts, by trigger and result (delivered, retry, failed).",
		}, []string{"trigger", "result"}),
		services: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidewatch_trigger_service_deliveries_total",
			Help: "What each service of a trigger that sends to several (notify URLs, named scheme#position) did in a delivery attempt, by result (delivered, failed).",
		}, []string{"trigger", "service", "result"}),
		rollouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidewatch_rollouts_total", Help: "Rollouts, by result (applied, rolled-back, failed).",
		}, []string{"result"}),
		httpReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tidewatch_http_requests_total", Help: "HTTP requests, by route pattern and status code.",
		}, []string{"route", "code"}),
		scrapeState: &depsCollector{},
		git:         &gitCollector{},
	}
	m.reg.MustRegister(m.runs, m.phases, m.deliveries, m.services, m.rollouts, m.httpReqs, m.scrapeState, m.git,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRun records a full watch run of host that took d.
func (m *Metrics) ObserveRun(host string, d time.Duration) {
	m.runs.WithLabelValues(host).Observe(d.Seconds())
}

// ObservePhase records how long phase ("list", "inspect", "registry",
// "select", "store", "dispatch": watch.PhaseNames) of a full run of
// watcher took.
func (m *Metrics) ObservePhase(watcher, phase string, d time.Duration) {
	m.phases.WithLabelValues(phase, watcher).Observe(d.Seconds())
}

// ObserveDelivery records the end of a delivery attempt of trigger, with
// result "delivered", "retry" or "failed".
func (m *Metrics) ObserveDelivery(trigger, result string) {
	m.deliveries.WithLabelValues(trigger, result).Inc()
}

// ObserveService records what service (a name without secrets, such as
// "telegram#2") of trigger did in a delivery attempt: delivered, or failed.
func (m *Metrics) ObserveService(trigger, service string, failed bool) {
	result := "delivered"
	if failed {
		result = "failed"
	}
	m.services.WithLabelValues(trigger, service, result).Inc()
}

// ObserveRollout records a rollout's result: "applied", "rolled-back" or "failed".
func (m *Metrics) ObserveRollout(result string) {
	m.rollouts.WithLabelValues(result).Inc()
}

func (m *Metrics) observeHTTP(route string, code int) {
	m.httpReqs.WithLabelValues(route, strconv.Itoa(code)).Inc()
}

// watch makes the scrape read deps.
func (m *Metrics) watch(d Deps) {
	m.scrapeState.mu.Lock()
	m.scrapeState.containers, m.scrapeState.registries = d.Containers, d.Registries
	m.scrapeState.mu.Unlock()
	m.git.mu.Lock()
	m.git.git = d.Git
	m.git.mu.Unlock()
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ScrapeTimeout bounds the store queries of one scrape.
const ScrapeTimeout = 5 * time.Second

// depsCollector reads gauges and counters from the server's parts at scrape time.
type depsCollector struct {
	mu         sync.Mutex
	containers ContainerStore
	registries Registries
}

var (
	descWatched   = prometheus.NewDesc("tidewatch_containers_watched", "Containers present, by watcher.", []string{"host"}, nil)
	descPending   = prometheus.NewDesc("tidewatch_updates_pending", "Pending and notified updates not snoozed, by kind.", []string{"kind"}, nil)
	descRegReq    = prometheus.NewDesc("tidewatch_registry_requests_total", "HTTP requests sent to a registry.", []string{"registry"}, nil)
	descRegErr    = prometheus.NewDesc("tidewatch_registry_errors_total", "Registry calls that failed.", []string{"registry"}, nil)
	descRegThrot  = prometheus.NewDesc("tidewatch_registry_throttled_total", "429 answers from a registry.", []string{"registry"}, nil)
	descRegConc   = prometheus.NewDesc("tidewatch_registry_concurrency", "Requests a registry gets at once now, adapted to its answers.", []string{"registry"}, nil)
	descRateLimit = prometheus.NewDesc("tidewatch_registry_ratelimit_remaining", "Last rate-limit remaining a registry announced.", []string{"registry"}, nil)
)

func (c *depsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWatched, descPending, descRegReq, descRegErr, descRegThrot, descRegConc, descRateLimit} {
		ch <- d
	}
}

func (c *depsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	cs, rs := c.containers, c.registries
	c.mu.Unlock()
	if cs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
		defer cancel()
		if recs, err := cs.Containers(ctx, ""); err == nil {
			n := map[string]int{}
			for _, r := range recs {
				n[r.Container.Host]++
			}
			for h, v := range n {
				ch <- prometheus.MustNewConstMetric(descWatched, prometheus.GaugeValue, float64(v), h)
			}
		} else {
			ch <- prometheus.NewInvalidMetric(descWatched, err)
		}
		if ups, err := cs.ListUpdates(ctx, store.UpdateFilter{}); err == nil {
			n := map[string]int{}
			for _, u := range ups {
				n[string(u.Kind)]++
			}
			for k, v := range n {
				ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(v), k)
			}
		} else {
			ch <- prometheus.NewInvalidMetric(descPending, err)
		}
	}
	if rs != nil {
		for _, r := range rs.Status() {
			ch <- prometheus.MustNewConstMetric(descRegReq, prometheus.CounterValue, float64(r.Requests), r.Registry)
			ch <- prometheus.MustNewConstMetric(descRegErr, prometheus.CounterValue, float64(r.Errors), r.Registry)
			ch <- prometheus.MustNewConstMetric(descRegThrot, prometheus.CounterValue, float64(r.Throttled), r.Registry)
			ch <- prometheus.MustNewConstMetric(descRegConc, prometheus.GaugeValue, float64(r.Concurrency), r.Registry)
			if r.RateLimitRemaining >= 0 {
				ch <- prometheus.MustNewConstMetric(descRateLimit, prometheus.GaugeValue, float64(r.RateLimitRemaining), r.Registry)
			}
		}
	}
}
