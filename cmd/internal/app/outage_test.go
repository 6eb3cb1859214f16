package app

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/postgres"
	"github.com/revokebot/revokebot/approvals/postgres/pgtest"
)

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
	proxy := pgtest.NewProxy(t, schema)
	addr := freeAddr(t)
	h := start(t, map[string]string{"REVOKEBOT_DATABASE": proxy.URL(), "REVOKEBOT_HTTP_ADDR": addr})
	h.slack.Eventually("ready", wait, func() bool { return readyz(addr) == http.StatusOK })
	h.request("alice@example.com")

	proxy.Cut()
	h.slack.Eventually("not ready while the database is away", wait, func() bool { return readyz(addr) == http.StatusServiceUnavailable })
	ack := h.command(requester, "bob@example.com --reason \"laptop stolen\"")
	reply := ack.AckText()
	if reply == "" {
		reply = h.slack.WaitEphemeral(requester, "database", wait).Text
	}
	if !strings.Contains(reply, "Try again shortly") || !strings.Contains(reply, "not recorded") {
		t.Errorf("reply during the outage: %q, want a private try-again-shortly", reply)
	}

	proxy.Restore()
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
