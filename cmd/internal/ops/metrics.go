package ops

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/revokebot/revokebot/approvals"
)

const namespace = "revokebot"

// eventKinds are the audit event words (approvals.EventKind). Their series
// exist from the start, at 0, so that a rate() over them never starts on a
// missing series. Event counts any other word too.
var eventKinds = []string{"requested", "refused", "approved", "denied", "cancelled", "expired", "revoked", "failed"}

// gaugeTimeout bounds each database-backed gauge callback during a scrape.
const gaugeTimeout = 2 * time.Second

// Metrics holds revokebot's Prometheus metrics. A nil *Metrics is valid: its
// methods do nothing, so code can use one whether or not metrics are on.
type Metrics struct {
	events        *prometheus.CounterVec
	verifications *prometheus.CounterVec
	relogins      prometheus.Counter
	cfRequests    *prometheus.CounterVec
	cfDuration    prometheus.Histogram
	gauges        atomic.Pointer[Gauges]
}

// Gauges are read when Prometheus scrapes, from callbacks. A nil callback
// leaves its metric out. A callback that fails (or, for the database-backed
// ones, does not answer within two seconds) leaves its metric out of that
// scrape and counts one revokebot_scrape_errors_total{gauge}; the rest of
// the scrape goes on. Callbacks may be called concurrently.
type Gauges struct {
	// OutboxBacklog is the number of audit and message deliveries not yet
	// made: revokebot_outbox_backlog.
	OutboxBacklog func(ctx context.Context) (int, error)
	// PendingRequests is the number of requests waiting for a decision:
	// revokebot_pending_requests.
	PendingRequests func(ctx context.Context) (int, error)
	// SocketConnected reports whether the Slack Socket Mode connection is
	// up: revokebot_socket_connected, 1 or 0.
	SocketConnected func() bool
	// Replica names this process among the replicas sharing the database:
	// revokebot_replica_info{replica} 1.
	Replica string
	// Leases are the leases held now, by any replica: the work each
	// replica holds, revokebot_work_held{replica, work}, where work is
	// "revocation" (a request's targets being revoked) or
	// "refusal_audit" (the lane that audits refused attempts).
	Leases func(ctx context.Context) ([]approvals.Lease, error)
	// WorkQueued is the number of commands and clicks waiting for a
	// worker: revokebot_work_queued.
	WorkQueued func() int
	// BusyRefusals is the number of commands and clicks refused since the
	// start because the queue was full: revokebot_busy_refusals_total.
	BusyRefusals func() uint64
}

// NewMetrics creates the metrics and registers them with reg, typically a
// prometheus.NewRegistry() that Handler then serves. It panics if they are
// already registered there, as prometheus.MustRegister does.
//
//   - revokebot_events_total{event}: audit events by word (requested,
//     refused, approved, denied, cancelled, expired, revoked, failed); see
//     Event.
//   - revokebot_cloudflare_requests_total{code}: Cloudflare API HTTP
//     attempts by status code, or code="error" when no response came back;
//     see InstrumentRoundTripper.
//   - revokebot_cloudflare_request_duration_seconds: the time each of those
//     attempts took, up to the response headers.
//   - revokebot_outbox_backlog, revokebot_pending_requests,
//     revokebot_socket_connected and revokebot_scrape_errors_total{gauge}:
//     see Gauges and Watch.
//   - go_goroutines: the goroutines of the process now, named and described
//     as Prometheus' Go collector does (its other go_* metrics are left out).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "events_total",
			Help:      "Audit events, by event word: requested, refused, approved, denied, cancelled, expired, revoked, failed.",
		}, []string{"event"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "verifications_total",
			Help:      "Verifications that a revoked person's sessions are gone, by result: verified, pending (sessions still listed at the revocation's record), unverified, unavailable, skipped.",
		}, []string{"result"}),
		relogins: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "relogins_total",
			Help:      "Successful logins of revoked people seen while they were watched: their identity-provider account is still active.",
		}),
		cfRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "cloudflare_requests_total",
			Help:      "Cloudflare API HTTP attempts (retries included), by HTTP status code; code=\"error\" when no response came back.",
		}, []string{"code"}),
		cfDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "cloudflare_request_duration_seconds",
			Help:      "Time of each Cloudflare API HTTP attempt, up to the response headers, failed ones included.",
			Buckets:   []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, kind := range eventKinds {
		m.events.WithLabelValues(kind)
	}
	for _, result := range []string{"verified", "pending", "unverified", "unavailable", "skipped"} {
		m.verifications.WithLabelValues(result)
	}
	goroutines := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "go_goroutines",
		Help: "Number of goroutines that currently exist.",
	}, func() float64 { return float64(runtime.NumGoroutine()) })
	reg.MustRegister(m.events, m.verifications, m.relogins, m.cfRequests, m.cfDuration, goroutines, newGaugeCollector(m))
	return m
}

// Event counts one audit event of the given kind (an approvals.EventKind).
func (m *Metrics) Event(kind string) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(kind).Inc()
}

// Verification counts one verification result (an approvals.CheckState):
// a revoked record's, or a pending one's settling.
func (m *Metrics) Verification(result string) {
	if m == nil || result == "" {
		return
	}
	m.verifications.WithLabelValues(result).Inc()
}

// Relogin counts one return of a revoked person.
func (m *Metrics) Relogin() {
	if m == nil {
		return
	}
	m.relogins.Inc()
}

// InstrumentRoundTripper wraps next (http.DefaultTransport if nil) so that
// every request it sends counts in revokebot_cloudflare_requests_total and
// revokebot_cloudflare_request_duration_seconds. Use it as the Transport of
// the Cloudflare client's http.Client. A nil *Metrics returns next as is.
//
// Unlike promhttp.InstrumentRoundTripperCounter, it also counts the attempts
// that get no response (refused connection, timeout, cancellation), with
// code="error".
func (m *Metrics) InstrumentRoundTripper(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if m == nil {
		return next
	}
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := next.RoundTrip(r)
		m.cfDuration.Observe(time.Since(start).Seconds())
		code := "error"
		if err == nil {
			code = strconv.Itoa(resp.StatusCode)
		}
		m.cfRequests.WithLabelValues(code).Inc()
		return resp, err
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Watch sets the callbacks that the gauges read at scrape time, replacing
// any set before. Until it is called, the gauges are left out.
func (m *Metrics) Watch(g Gauges) {
	if m == nil {
		return
	}
	m.gauges.Store(&g)
}

// gaugeCollector reports the Gauges at scrape time, and how often reading
// one failed.
type gaugeCollector struct {
	m                           *Metrics
	backlog, pending, connected *prometheus.Desc
	replica, work               *prometheus.Desc
	queued, busy                *prometheus.Desc
	scrapeErrors                *prometheus.Desc
	backlogErrs, pendingErrs    atomic.Uint64
	leaseErrs                   atomic.Uint64
}

func newGaugeCollector(m *Metrics) *gaugeCollector {
	name := func(n string) string { return prometheus.BuildFQName(namespace, "", n) }
	return &gaugeCollector{
		m:            m,
		backlog:      prometheus.NewDesc(name("outbox_backlog"), "Audit and message deliveries not yet made.", nil, nil),
		pending:      prometheus.NewDesc(name("pending_requests"), "Requests waiting for a decision.", nil, nil),
		connected:    prometheus.NewDesc(name("socket_connected"), "1 while the Slack Socket Mode connection is up, else 0.", nil, nil),
		replica:      prometheus.NewDesc(name("replica_info"), "1, labelled with this process's name among the replicas sharing the database.", []string{"replica"}, nil),
		work:         prometheus.NewDesc(name("work_held"), "Work held under a lease now, by replica (any replica sharing the database) and kind: revocation, refusal_audit.", []string{"replica", "work"}, nil),
		queued:       prometheus.NewDesc(name("work_queued"), "Commands and clicks waiting for a worker.", nil, nil),
		busy:         prometheus.NewDesc(name("busy_refusals_total"), "Commands and clicks refused because too many were waiting; the person was told to try again.", nil, nil),
		scrapeErrors: prometheus.NewDesc(name("scrape_errors_total"), "Scrapes that could not read a gauge, by gauge; the gauge is left out of such a scrape.", []string{"gauge"}, nil),
	}
}

func (c *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.backlog
	ch <- c.pending
	ch <- c.connected
	ch <- c.replica
	ch <- c.work
	ch <- c.queued
	ch <- c.busy
	ch <- c.scrapeErrors
}

func (c *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	if g := c.m.gauges.Load(); g != nil {
		c.count(ch, c.backlog, g.OutboxBacklog, &c.backlogErrs)
		c.count(ch, c.pending, g.PendingRequests, &c.pendingErrs)
		if g.SocketConnected != nil {
			v := 0.0
			if g.SocketConnected() {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, v)
		}
		if g.Replica != "" {
			ch <- prometheus.MustNewConstMetric(c.replica, prometheus.GaugeValue, 1, g.Replica)
		}
		c.collectWork(ch, g.Leases)
		if g.WorkQueued != nil {
			ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(g.WorkQueued()))
		}
		if g.BusyRefusals != nil {
			ch <- prometheus.MustNewConstMetric(c.busy, prometheus.CounterValue, float64(g.BusyRefusals()))
		}
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeErrors, prometheus.CounterValue, float64(c.backlogErrs.Load()), "outbox_backlog")
	ch <- prometheus.MustNewConstMetric(c.scrapeErrors, prometheus.CounterValue, float64(c.pendingErrs.Load()), "pending_requests")
	ch <- prometheus.MustNewConstMetric(c.scrapeErrors, prometheus.CounterValue, float64(c.leaseErrs.Load()), "work_held")
}

// collectWork reports the leases held, counted by replica and kind of work.
func (c *gaugeCollector) collectWork(ch chan<- prometheus.Metric, leases func(context.Context) ([]approvals.Lease, error)) {
	if leases == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), gaugeTimeout)
	defer cancel()
	held, err := leases(ctx)
	if err != nil {
		c.leaseErrs.Add(1)
		return
	}
	type key struct{ replica, work string }
	counts := map[key]int{}
	for _, l := range held {
		// An owner is a replica, or a replica's run: "replica/run".
		replica, _, _ := strings.Cut(l.Owner, "/")
		work, _, _ := strings.Cut(l.Name, ":")
		switch work {
		case "replica":
			continue // a replica's name, not work
		case "execute":
			work = "revocation"
		case "courier":
			work = "refusal_audit"
		}
		counts[key{replica, work}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.work, prometheus.GaugeValue, float64(n), k.replica, k.work)
	}
}

// count reports one database-backed gauge, or counts its failure.
func (c *gaugeCollector) count(ch chan<- prometheus.Metric, d *prometheus.Desc, f func(context.Context) (int, error), errs *atomic.Uint64) {
	if f == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), gaugeTimeout)
	defer cancel()
	n, err := f(ctx)
	if err != nil {
		errs.Add(1)
		return
	}
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(n))
}
