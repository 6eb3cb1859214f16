// Package pgtest gives a test a PostgreSQL database of its own: a fresh
// schema on the server that REVOKEBOT_TEST_POSTGRES_URL names, dropped with
// everything in it when the test ends.
//
// Without the variable, tests that need PostgreSQL are skipped, with a
// message saying how to run them; with REVOKEBOT_REQUIRE_POSTGRES=1 as well
// (as .ci/run sets), they fail instead, so that CI never passes by skipping.
package pgtest

import (
	"context"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points the tests at a PostgreSQL server,
// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvURL = "REVOKEBOT_TEST_POSTGRES_URL"

// EnvRequire, set to 1, turns a missing EnvURL into a failure.
const EnvRequire = "REVOKEBOT_REQUIRE_POSTGRES"

// ServerURL returns the test server's URL, or skips tb if none is set.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		msg := "no PostgreSQL to test against: set " + EnvURL + ", e.g. " + EnvURL +
			"='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' (each test works in a schema of its own, dropped at the end)"
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatal(msg + "; " + EnvRequire + "=1 asks for these tests to run")
		}
		tb.Skip(msg)
	}
	return u
}

// WithSetting returns u with a setting added: a query parameter of a URL,
// or a keyword=value of a libpq string (the last one wins).
func WithSetting(tb testing.TB, u, key, value string) string {
	tb.Helper()
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		parsed, err := url.Parse(u)
		if err != nil {
			tb.Fatalf("%s is not a URL: %v", EnvURL, err)
		}
		q := parsed.Query()
		q.Set(key, value)
		parsed.RawQuery = q.Encode()
		return parsed.String()
	}
	return u + " " + key + "=" + value
}

// Schema creates an empty schema, dropped (with everything in it) when tb
// ends, and returns the server's URL using it (search_path).
func Schema(tb testing.TB) string {
	tb.Helper()
	base := ServerURL(tb)
	name := "t_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	Exec(tb, base, `CREATE SCHEMA `+name)
	tb.Cleanup(func() { Exec(tb, base, `DROP SCHEMA `+name+` CASCADE`) })
	return WithSetting(tb, base, "search_path", name)
}

// Exec runs sql on a connection of its own to u.
func Exec(tb testing.TB, u, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		tb.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// Proxy stands between a store and the PostgreSQL server, so that a test
// can take the server away, as an outage or a partition would, and give it
// back.
type Proxy struct {
	ln     net.Listener
	target string
	url    string
	// down refuses new connections; stalled drops everything both ways
	// without closing anything.
	down, stalled atomic.Bool
	mu            sync.Mutex
	conns         map[net.Conn]bool
}

// NewProxy starts a proxy to the server of u (a postgres:// URL), closed
// when tb ends.
func NewProxy(tb testing.TB, u string) *Proxy {
	tb.Helper()
	parsed, err := url.Parse(u)
	if err != nil || !strings.HasPrefix(parsed.Scheme, "postgres") {
		tb.Skipf("the proxy needs a postgres:// URL in %s", EnvURL)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln, target: parsed.Host, conns: map[net.Conn]bool{}}
	parsed.Host = ln.Addr().String()
	p.url = parsed.String()
	tb.Cleanup(func() { ln.Close(); p.Cut() })
	go p.serve()
	return p
}

// URL is the server's URL through the proxy.
func (p *Proxy) URL() string { return p.url }

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		go p.forward(s, c)
		go p.forward(c, s)
	}
}

// forward copies from src to dst until either closes, dropping what comes
// while the proxy is stalled.
func (p *Proxy) forward(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.stalled.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut drops every connection and refuses new ones until Restore: the
// server is down.
func (p *Proxy) Cut() {
	p.down.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Stall drops everything both ways from now on, closing nothing: the
// server is partitioned away, and calls hang until their deadline.
func (p *Proxy) Stall() { p.stalled.Store(true) }

// Restore lets new connections through again, after Cut.
func (p *Proxy) Restore() { p.down.Store(false) }
