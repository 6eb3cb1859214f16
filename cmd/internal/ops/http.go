// Package ops is revokebot's operations side: the HTTP endpoint with
// /healthz, /readyz and /metrics, the Prometheus metrics it serves, and the
// client side of the container's health check.
//
// It knows nothing of Slack, Cloudflare or the database: main passes it
// callbacks (the readiness check, the Gauges) and the metrics' users call
// Metrics' methods.
package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
)

const (
	// readyTimeout bounds the readiness check of one /readyz request.
	readyTimeout = 2 * time.Second
	// shutdownTimeout bounds how long Serve waits for requests in flight.
	shutdownTimeout = 5 * time.Second
	// healthCheckTimeout bounds HealthCheck.
	healthCheckTimeout = 2 * time.Second
)

// Handler serves, for GET and HEAD only (other methods get 405, other paths
// 404):
//
//   - /healthz: 200 "ok" while the process serves HTTP (liveness).
//   - /readyz: 200 "ok" when ready returns nil, else 503 "not ready: " and
//     ready's error. The check gets a context that ends after two seconds.
//     The error is shown to whoever can reach the endpoint, so it must not
//     hold a secret. A nil ready means always ready.
//   - /metrics: the metrics in g, in Prometheus' text (or negotiated)
//     format. A collector that fails leaves its metrics out rather than
//     failing the scrape.
func Handler(g prometheus.Gatherer, ready func(ctx context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			defer cancel()
			if err := ready(ctx); err != nil {
				plain(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
				return
			}
		}
		plain(w, http.StatusOK, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	return mux
}

func plain(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, body+"\n")
}

// Listen binds addr (host:port, from REVOKEBOT_HTTP_ADDR) for Serve. Binding
// first, at start-up, makes a busy or forbidden port stop revokebot at once
// rather than after it connects to Slack. Its errors name
// REVOKEBOT_HTTP_ADDR.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("REVOKEBOT_HTTP_ADDR: %s: address in use by another process (stop it, or choose another port)", addr)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("REVOKEBOT_HTTP_ADDR: %s: permission denied (ports below 1024 need privileges: use a port like 8080)", addr)
	default:
		return nil, fmt.Errorf("REVOKEBOT_HTTP_ADDR: %w", err)
	}
}

// Limits bound what the endpoint's clients can hold, so that a slow, idle or
// hostile client cannot tie up revokebot's memory, file descriptors or
// goroutines. A zero field takes its value from DefaultLimits.
type Limits struct {
	// ReadHeaderTimeout is how long a client may take to send a request's
	// headers; a client that never finishes them is disconnected.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response.
	WriteTimeout time.Duration
	// IdleTimeout is how long a kept-alive connection may wait for its next
	// request before it is closed.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers (net/http reads
	// up to 4 KiB more); a larger request gets 431 Request Header Fields
	// Too Large.
	MaxHeaderBytes int
	// MaxConns is how many connections are served at once. Further ones
	// wait in the listen backlog, not served, until one of them closes.
	MaxConns int
}

// DefaultLimits returns the limits Serve applies: generous for health checks
// and a Prometheus scraper, small enough that holding them costs little.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		MaxConns:          32,
	}
}

// withDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	l.ReadHeaderTimeout = cmp.Or(l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	l.ReadTimeout = cmp.Or(l.ReadTimeout, d.ReadTimeout)
	l.WriteTimeout = cmp.Or(l.WriteTimeout, d.WriteTimeout)
	l.IdleTimeout = cmp.Or(l.IdleTimeout, d.IdleTimeout)
	l.MaxHeaderBytes = cmp.Or(l.MaxHeaderBytes, d.MaxHeaderBytes)
	l.MaxConns = cmp.Or(l.MaxConns, d.MaxConns)
	return l
}

// Serve serves h on ln until ctx ends, within DefaultLimits, then shuts
// down: it stops accepting connections and waits up to five seconds for
// requests in flight. It closes ln. It returns nil after a shutdown, or the
// error that stopped the server before ctx ended. log may be nil.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	return ServeLimits(ctx, ln, h, log, Limits{})
}

// ServeLimits is Serve within the given limits (zero fields: DefaultLimits).
func ServeLimits(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, limits Limits) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limits = limits.withDefaults()
	ln = netutil.LimitListener(ln, limits.MaxConns)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		ReadTimeout:       limits.ReadTimeout,
		WriteTimeout:      limits.WriteTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("http endpoint listening", "addr", ln.Addr().String())

	select {
	case err := <-done:
		return fmt.Errorf("http endpoint %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		log.Warn("http endpoint: requests still in flight at shutdown; closing them", "err", err)
		srv.Close()
	}
	<-done // http.ErrServerClosed
	return nil
}

// HealthCheck asks the /healthz of the endpoint that listens on addr (the
// REVOKEBOT_HTTP_ADDR value) and returns nil if it answers 200 within two
// seconds. A wildcard or empty host (":8080", "0.0.0.0:8080", "[::]:8080")
// is asked on 127.0.0.1. It is the client side of `revokebot healthcheck`.
func HealthCheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("REVOKEBOT_HTTP_ADDR: %q is not host:port like :8080 (%v)", addr, err)
	}
	switch host {
	case "", "0.0.0.0", "::":
		// Go listens on :: in dual stack, so 127.0.0.1 reaches it too.
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"

	ctx, cancel := context.WithTimeout(ctx, healthCheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health check %s: %w", url, err)
	}
	client := &http.Client{
		// No proxy from the environment: the endpoint is local.
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health check %s: %s", url, resp.Status)
	}
	return nil
}
