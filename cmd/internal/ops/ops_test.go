package ops_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/cmd/internal/ops"
)

// get sends method to url and returns the status code and body.
func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestHandlerRoutes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(ops.Handler(prometheus.NewRegistry(), nil))
	defer srv.Close()
	for _, tt := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/healthz", 200, "ok\n"},
		{"HEAD", "/healthz", 200, ""},
		{"GET", "/readyz", 200, "ok\n"}, // a nil ready func: always ready
		{"HEAD", "/readyz", 200, ""},
		{"GET", "/metrics", 200, ""},
		{"POST", "/healthz", 405, ""},
		{"DELETE", "/metrics", 405, ""},
		{"GET", "/", 404, ""},
		{"GET", "/healthz/", 404, ""},
		{"GET", "/debug/pprof/", 404, ""},
	} {
		code, body := get(t, tt.method, srv.URL+tt.path)
		if code != tt.code || (tt.body != "" && body != tt.body) {
			t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, code, body, tt.code, tt.body)
		}
	}
}

func TestReadyzFlipsWithSocketConnection(t *testing.T) {
	t.Parallel()
	var connected atomic.Bool
	var dbErr atomic.Pointer[error]
	ready := func(ctx context.Context) error {
		if !connected.Load() {
			return errors.New("slack socket mode: not connected")
		}
		if p := dbErr.Load(); p != nil {
			return *p
		}
		return ctx.Err()
	}
	srv := httptest.NewServer(ops.Handler(prometheus.NewRegistry(), ready))
	defer srv.Close()

	want := func(step string, code int, body string) {
		t.Helper()
		gotCode, gotBody := get(t, "GET", srv.URL+"/readyz")
		if gotCode != code || gotBody != body {
			t.Fatalf("%s: /readyz = %d %q, want %d %q", step, gotCode, gotBody, code, body)
		}
		// Liveness never depends on readiness.
		if c, _ := get(t, "GET", srv.URL+"/healthz"); c != 200 {
			t.Fatalf("%s: /healthz = %d", step, c)
		}
	}
	want("before connecting", 503, "not ready: slack socket mode: not connected\n")
	connected.Store(true)
	want("connected", 200, "ok\n")
	err := errors.New("database: sql: database is closed")
	dbErr.Store(&err)
	want("database gone", 503, "not ready: database: sql: database is closed\n")
	dbErr.Store(nil)
	want("database back", 200, "ok\n")
	connected.Store(false)
	want("socket dropped", 503, "not ready: slack socket mode: not connected\n")
	connected.Store(true)
	want("reconnected", 200, "ok\n")
}

func TestReadyzGivesTheCheckADeadline(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(ops.Handler(prometheus.NewRegistry(), func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("no deadline")
		}
		return nil
	}))
	defer srv.Close()
	if code, body := get(t, "GET", srv.URL+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %q", code, body)
	}
}

// scrape returns the /metrics text of a handler serving reg.
func scrape(t *testing.T, reg prometheus.Gatherer) string {
	t.Helper()
	srv := httptest.NewServer(ops.Handler(reg, nil))
	defer srv.Close()
	code, body := get(t, "GET", srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d %q", code, body)
	}
	return body
}

func wantLines(t *testing.T, metrics string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(metrics, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("metrics lack the line %q:\n%s", l, metrics)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := ops.NewMetrics(reg)

	m.Event("requested")
	m.Event("approved")
	m.Event("revoked")
	m.Event("refused")
	m.Event("refused")

	// The Cloudflare transport: a 200, a 500 and a network error.
	cf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "boom", 500)
		}
	}))
	defer cf.Close()
	client := &http.Client{Transport: m.InstrumentRoundTripper(nil)}
	for _, path := range []string{"/ok", "/fail"} {
		resp, err := client.Get(cf.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
	if _, err := client.Get("http://" + dead.Addr().String() + "/"); err == nil {
		t.Fatal("request to a closed port succeeded")
	}

	var connected atomic.Bool
	connected.Store(true)
	m.Watch(ops.Gauges{
		OutboxBacklog:   func(context.Context) (int, error) { return 7, nil },
		PendingRequests: func(context.Context) (int, error) { return 2, nil },
		SocketConnected: connected.Load,
		WorkQueued:      func() int { return 3 },
		BusyRefusals:    func() uint64 { return 5 },
	})

	out := scrape(t, reg)
	wantLines(t, out,
		`revokebot_events_total{event="requested"} 1`,
		`revokebot_events_total{event="approved"} 1`,
		`revokebot_events_total{event="revoked"} 1`,
		`revokebot_events_total{event="refused"} 2`,
		`revokebot_events_total{event="denied"} 0`, // every event word exists from the start
		`revokebot_events_total{event="failed"} 0`,
		`revokebot_cloudflare_requests_total{code="200"} 1`,
		`revokebot_cloudflare_requests_total{code="500"} 1`,
		`revokebot_cloudflare_requests_total{code="error"} 1`,
		`revokebot_cloudflare_request_duration_seconds_count 3`,
		`revokebot_cloudflare_request_duration_seconds_bucket{le="30"} 3`,
		`revokebot_outbox_backlog 7`,
		`revokebot_pending_requests 2`,
		`revokebot_socket_connected 1`,
		`revokebot_work_queued 3`,
		`revokebot_busy_refusals_total 5`,
		`# TYPE revokebot_busy_refusals_total counter`,
		`revokebot_scrape_errors_total{gauge="outbox_backlog"} 0`,
		`# TYPE revokebot_cloudflare_request_duration_seconds histogram`,
		`# TYPE go_goroutines gauge`,
	)

	connected.Store(false)
	wantLines(t, scrape(t, reg), `revokebot_socket_connected 0`)
}

func TestMetricsSurviveFailingGauges(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := ops.NewMetrics(reg)

	out := scrape(t, reg) // before Watch: no gauges, no error
	if strings.Contains(out, "revokebot_outbox_backlog") || strings.Contains(out, "revokebot_socket_connected") {
		t.Errorf("gauges reported before Watch:\n%s", out)
	}

	m.Watch(ops.Gauges{
		OutboxBacklog: func(context.Context) (int, error) { return 0, errors.New("database is locked") },
		PendingRequests: func(ctx context.Context) (int, error) {
			if _, ok := ctx.Deadline(); !ok {
				return 0, errors.New("no deadline")
			}
			return 3, nil
		},
		// SocketConnected left nil: left out.
	})
	out = scrape(t, reg)
	wantLines(t, out,
		`revokebot_pending_requests 3`,
		`revokebot_scrape_errors_total{gauge="outbox_backlog"} 1`,
		`revokebot_scrape_errors_total{gauge="pending_requests"} 0`,
		`revokebot_events_total{event="requested"} 0`,
	)
	for _, absent := range []string{"revokebot_outbox_backlog ", "revokebot_socket_connected "} {
		if strings.Contains(out, absent) {
			t.Errorf("metrics show %q:\n%s", absent, out)
		}
	}
}

func TestNilMetricsDoNothing(t *testing.T) {
	t.Parallel()
	var m *ops.Metrics
	m.Event("approved")
	m.Watch(ops.Gauges{})
	if rt := m.InstrumentRoundTripper(nil); rt != http.DefaultTransport {
		t.Fatalf("nil Metrics wrapped the transport: %T", rt)
	}
}

func TestListenBusyPort(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = ops.Listen(busy.Addr().String())
	if err == nil {
		t.Fatal("listened on a busy port")
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "REVOKEBOT_HTTP_ADDR: ") || !strings.Contains(msg, "address in use") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ops.Listen("127.0.0.1:99999"); err == nil || !strings.HasPrefix(err.Error(), "REVOKEBOT_HTTP_ADDR: ") {
		t.Fatalf("invalid port: err = %v", err)
	}
}

func TestServeStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	ln, err := ops.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ops.Serve(ctx, ln, ops.Handler(prometheus.NewRegistry(), nil), nil) }()

	if err := ops.HealthCheck(context.Background(), addr); err != nil {
		t.Fatalf("health check while serving: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v after the context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop when the context ended")
	}
	if err := ops.HealthCheck(context.Background(), addr); err == nil {
		t.Fatal("health check passed after Serve stopped")
	}
}

// serveLimits runs ServeLimits on a loopback port until the test ends and
// returns its address.
func serveLimits(t *testing.T, limits ops.Limits) string {
	t.Helper()
	ln, err := ops.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ops.ServeLimits(ctx, ln, ops.Handler(prometheus.NewRegistry(), nil), nil, limits) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeLimits = %v", err)
		}
	})
	return ln.Addr().String()
}

// dial opens a raw connection to addr, closed when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// healthz sends GET /healthz on c, kept alive, and reads the answer.
func healthz(t *testing.T, c net.Conn, r *bufio.Reader) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// waitClosed fails the test unless the server closes c; whatever it sends
// first (an error status, say) is read and ignored.
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the server kept the connection open for %s", what, wait)
	}
}

// The timeouts below are cut short so the test need not wait for the
// defaults; every other limit is set far beyond the test's patience, so
// only the limit under test can end the connection.
const (
	wait  = 10 * time.Second
	never = time.Hour
)

func TestDefaultLimitsBoundEverything(t *testing.T) {
	t.Parallel()
	l := ops.DefaultLimits()
	for name, v := range map[string]time.Duration{
		"ReadHeaderTimeout": l.ReadHeaderTimeout, "ReadTimeout": l.ReadTimeout,
		"WriteTimeout": l.WriteTimeout, "IdleTimeout": l.IdleTimeout,
	} {
		if v <= 0 || v > 2*time.Minute {
			t.Errorf("%s = %v, want a bound from 1ns to 2m", name, v)
		}
	}
	if l.MaxHeaderBytes <= 0 || l.MaxHeaderBytes > 64<<10 {
		t.Errorf("MaxHeaderBytes = %d, want at most 64 KiB", l.MaxHeaderBytes)
	}
	if l.MaxConns <= 0 || l.MaxConns > 256 {
		t.Errorf("MaxConns = %d, want 1 to 256", l.MaxConns)
	}
}

func TestServeDisconnectsClientThatNeverFinishesHeaders(t *testing.T) {
	t.Parallel()
	addr := serveLimits(t, ops.Limits{ReadHeaderTimeout: 100 * time.Millisecond, ReadTimeout: never, IdleTimeout: never})
	c := dial(t, addr)
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c, "headers never finished")
}

func TestServeClosesIdleConnections(t *testing.T) {
	t.Parallel()
	addr := serveLimits(t, ops.Limits{IdleTimeout: 100 * time.Millisecond, ReadHeaderTimeout: never, ReadTimeout: never})
	c := dial(t, addr)
	if resp := healthz(t, c, bufio.NewReader(c)); resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /healthz: %s, close=%v", resp.Status, resp.Close)
	}
	waitClosed(t, c, "kept alive and idle")
}

func TestServeRefusesOversizedHeaders(t *testing.T) {
	t.Parallel()
	// The production limits: nothing set.
	addr := serveLimits(t, ops.Limits{})
	c := dial(t, addr)
	big := strings.Repeat("a", 64<<10)
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of headers: %s, want 431", resp.Status)
	}
	// An ordinary request still passes.
	c2 := dial(t, addr)
	if resp := healthz(t, c2, bufio.NewReader(c2)); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %s", resp.Status)
	}
}

func TestServeCapsOpenConnections(t *testing.T) {
	t.Parallel()
	const limit = 2
	addr := serveLimits(t, ops.Limits{MaxConns: limit, ReadHeaderTimeout: never, ReadTimeout: never, IdleTimeout: never})
	var held []net.Conn
	for range limit {
		c := dial(t, addr)
		if resp := healthz(t, c, bufio.NewReader(c)); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz: %s", resp.Status)
		}
		held = append(held, c) // kept alive, idle
	}

	extra := dial(t, addr) // the kernel completes the handshake; nobody serves it
	r := bufio.NewReader(extra)
	if _, err := io.WriteString(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// A negative check needs some patience: an answer within this time
	// means the cap is missing. (A slow machine can only make it pass.)
	extra.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := r.Peek(1); err == nil {
		t.Fatalf("connection %d was served while %d were open", limit+1, limit)
	}

	// One closes: the waiting connection is served.
	held[0].Close()
	extra.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("connection %d after one closed: %v", limit+1, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %s", resp.Status)
	}
}

func TestHealthCheck(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	healthy.Store(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/healthz":
			http.NotFound(w, r)
		case !healthy.Load():
			http.Error(w, "sick", http.StatusServiceUnavailable)
		}
	})}}
	srv.Start()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	// Every form REVOKEBOT_HTTP_ADDR can take reaches the local endpoint.
	for _, addr := range []string{"127.0.0.1:" + port, ":" + port, "0.0.0.0:" + port, "[::]:" + port, "localhost:" + port} {
		if err := ops.HealthCheck(context.Background(), addr); err != nil {
			t.Errorf("HealthCheck(%q) = %v", addr, err)
		}
	}

	healthy.Store(false)
	if err := ops.HealthCheck(context.Background(), ":"+port); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("unhealthy: err = %v", err)
	}

	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
	if err := ops.HealthCheck(context.Background(), dead.Addr().String()); err == nil {
		t.Error("unreachable endpoint passed")
	}

	if err := ops.HealthCheck(context.Background(), "8080"); err == nil || !strings.Contains(err.Error(), "REVOKEBOT_HTTP_ADDR") {
		t.Errorf("malformed address: err = %v", err)
	}
}

func TestHealthCheckTimesOut(t *testing.T) {
	t.Parallel()
	// A server that accepts but never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = ops.HealthCheck(ctx, ln.Addr().String())
	if err == nil {
		t.Fatal("a silent server passed")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
}

func ExampleHandler() {
	reg := prometheus.NewRegistry()
	m := ops.NewMetrics(reg)
	var connected atomic.Bool // set by the Slack connection's events
	m.Watch(ops.Gauges{SocketConnected: connected.Load})
	ready := func(ctx context.Context) error {
		if !connected.Load() {
			return errors.New("slack socket mode: not connected")
		}
		return nil // and ping the database with ctx
	}
	srv := httptest.NewServer(ops.Handler(reg, ready))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 503 Service Unavailable
}

// /metrics names this replica, and shows the work every replica holds under
// a lease: revocations (one lease per request, owned by a replica's run)
// and the refusal audit.
func TestMetricsShowWhichReplicaHoldsWhichWork(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := ops.NewMetrics(reg)
	fail := false
	m.Watch(ops.Gauges{
		Replica: "revokebot-7d9f-a",
		Leases: func(context.Context) ([]approvals.Lease, error) {
			if fail {
				return nil, errors.New("the database cannot be reached")
			}
			return []approvals.Lease{
				{Name: approvals.ExecutionLease("r1"), Owner: "revokebot-7d9f-a/1a2b"},
				{Name: approvals.ExecutionLease("r2"), Owner: "revokebot-7d9f-a/3c4d"},
				{Name: approvals.ExecutionLease("r3"), Owner: "revokebot-7d9f-b/5e6f"},
				{Name: "courier:refusals", Owner: "revokebot-7d9f-b"},
				{Name: "replica:revokebot-7d9f-a", Owner: "revokebot-7d9f-a/9a8b"}, // a name, not work
			}, nil
		},
	})
	wantLines(t, scrape(t, reg),
		`revokebot_replica_info{replica="revokebot-7d9f-a"} 1`,
		`revokebot_work_held{replica="revokebot-7d9f-a",work="revocation"} 2`,
		`revokebot_work_held{replica="revokebot-7d9f-b",work="revocation"} 1`,
		`revokebot_work_held{replica="revokebot-7d9f-b",work="refusal_audit"} 1`,
		`revokebot_scrape_errors_total{gauge="work_held"} 0`,
	)
	if out := scrape(t, reg); strings.Contains(out, `work="replica"`) {
		t.Errorf("a replica's name counted as work:\n%s", out)
	}
	fail = true
	out := scrape(t, reg)
	wantLines(t, out, `revokebot_scrape_errors_total{gauge="work_held"} 1`, `revokebot_replica_info{replica="revokebot-7d9f-a"} 1`)
	if strings.Contains(out, "revokebot_work_held{") {
		t.Errorf("work shown while the leases could not be read:\n%s", out)
	}
}

// Verifications are counted by result, and returns of revoked people.
func TestMetricsCountVerificationsAndRelogins(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := ops.NewMetrics(reg)
	m.Verification("verified")
	m.Verification("verified")
	m.Verification("pending")
	m.Verification("") // no verification: not counted
	m.Relogin()
	wantLines(t, scrape(t, reg),
		`revokebot_verifications_total{result="verified"} 2`,
		`revokebot_verifications_total{result="pending"} 1`,
		`revokebot_verifications_total{result="unverified"} 0`,
		`revokebot_relogins_total 1`,
	)
}
