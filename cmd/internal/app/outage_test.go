package app

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/postgres"
	"github.com/revokebot/revokebot/approvals/postgres/pgtest"
)

// dbProxy stands between revokebot and the PostgreSQL server, so that a
// test can take the database away (as an outage or a network partition
// would) and give it back.
type dbProxy struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

func newDBProxy(t testing.TB, target string) *dbProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dbProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *dbProxy) serve() {
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
		go func() { io.Copy(s, c); s.Close() }()
		go func() { io.Copy(c, s); c.Close() }()
	}
}

// cut drops every connection and refuses new ones until restore.
func (p *dbProxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *dbProxy) restore() { p.down.Store(false) }

// through returns the database URL u with its host replaced by the proxy's.
func (p *dbProxy) through(t testing.TB, u string) string {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	parsed.Host = p.ln.Addr().String()
	return parsed.String()
}

func readyz(addr string) int {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// While PostgreSQL is away: /readyz says not ready, a /revoke is told to
// try again shortly, and nothing of it is recorded; when it returns, the
// bot is ready and works again, without a restart.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	parsed, _ := url.Parse(schema)
	proxy := newDBProxy(t, parsed.Host)
	addr := freeAddr(t)
	h := start(t, map[string]string{"REVOKEBOT_DATABASE": proxy.through(t, schema), "REVOKEBOT_HTTP_ADDR": addr})
	h.slack.Eventually("ready", wait, func() bool { return readyz(addr) == http.StatusOK })
	h.request("alice@example.com")

	proxy.cut()
	h.slack.Eventually("not ready while the database is away", wait, func() bool { return readyz(addr) == http.StatusServiceUnavailable })
	ack := h.command(requester, "bob@example.com --reason \"laptop stolen\"")
	reply := ack.AckText()
	if reply == "" {
		reply = h.slack.WaitEphemeral(requester, "database", wait).Text
	}
	if !strings.Contains(reply, "Try again shortly") || !strings.Contains(reply, "not recorded") {
		t.Errorf("reply during the outage: %q, want a private try-again-shortly", reply)
	}

	proxy.restore()
	h.slack.Eventually("ready again", 2*wait, func() bool { return readyz(addr) == http.StatusOK })
	m := h.request("carol@example.com")
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")

	// Nothing half-done: bob's request does not exist at all.
	db, err := postgres.Open(context.Background(), schema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var emails []string
	for _, s := range []approvals.State{approvals.StatePending, approvals.StateRevoked, approvals.StateRefused} {
		rs, err := db.ListByState(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			emails = append(emails, r.Emails()...)
		}
	}
	if strings.Join(emails, " ") != "alice@example.com carol@example.com" {
		t.Errorf("requests recorded: %v, want alice's (pending) and carol's only", emails)
	}
	h.stop()
}

// An unreachable server stops the start with an error naming the variable
// and the server, never the password.
func TestDatabaseUnreachableAtStart(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	env := validEnv()
	env["REVOKEBOT_DATABASE"] = "postgres://revokebot:s3cret-pw@" + addr + "/revokebot?sslmode=disable&connect_timeout=2"
	var stderr syncBuffer
	getenv := func(k string) string { return env[k] }
	err := Run(context.Background(), nil, getenv, io.Discard, &stderr)
	if err == nil {
		t.Fatal("Run started without its database")
	}
	msg := err.Error() + stderr.String()
	if !strings.Contains(err.Error(), "REVOKEBOT_DATABASE") || !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name REVOKEBOT_DATABASE and %s", err, addr)
	}
	if strings.Contains(msg, "s3cret-pw") {
		t.Errorf("the password shows: %s", msg)
	}
}
