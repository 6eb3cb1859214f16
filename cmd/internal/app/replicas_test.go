package app

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/postgres"
	"github.com/revokebot/revokebot/approvals/postgres/pgtest"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// cluster is several replicas of revokebot, each in a child process that a
// test may kill -9, sharing one PostgreSQL database (a schema of the test's
// own), one fake Slack and one fake Cloudflare. The fake Slack spreads
// envelopes across the replicas' Socket Mode connections at random, and
// redelivers one not acknowledged within a second to another connection,
// as Slack does.
type cluster struct {
	t     *testing.T
	slack *bottest.Workspace
	cf    *cftest.Server
	url   string
	env   map[string]string
	nodes []*harness
}

// clusterLease is the lease of the replicas under test: a dead replica's
// revocation is taken over within it (and a sweep), its deliveries within
// three times it.
const clusterLease = 2 * time.Second

func newCluster(t *testing.T, overrides map[string]string, cfOpts ...cftest.Option) *cluster {
	t.Helper()
	ws := bottest.New(t, bottest.WithMultiConnection(time.Second))
	setPeople(ws)
	cf := cftest.NewServer(t, cfOpts...)
	url := pgtest.Schema(t)
	env := baseEnv(ws, cf, url)
	env["REVOKEBOT_LEASE_TTL"] = clusterLease.String()
	env["REVOKEBOT_MAX_PENDING_PER_REQUESTER"] = "100"
	maps.Copy(env, overrides)
	return &cluster{t: t, slack: ws, cf: cf, url: url, env: env}
}

// launch starts one more replica, named replica-N, without waiting for it.
func (c *cluster) launch() *harness {
	c.t.Helper()
	env := maps.Clone(c.env)
	env["REVOKEBOT_REPLICA"] = fmt.Sprintf("replica-%d", len(c.nodes))
	h := &harness{t: c.t, slack: c.slack, cf: c.cf, env: env}
	h.launch()
	c.nodes = append(c.nodes, h)
	return h
}

// start launches n replicas at the same moment and waits until all are
// connected.
func (c *cluster) start(n int) {
	c.t.Helper()
	live := c.slack.LiveConnections()
	for range n {
		c.launch()
	}
	c.slack.WaitLive(live+n, 3*wait)
}

// node returns the replica named name.
func (c *cluster) node(name string) *harness {
	c.t.Helper()
	for _, h := range c.nodes {
		if h.env["REVOKEBOT_REPLICA"] == name {
			return h
		}
	}
	c.t.Fatalf("no replica %q", name)
	return nil
}

// db opens the replicas' database beside them.
func (c *cluster) db() *postgres.DB {
	c.t.Helper()
	db, err := postgres.Open(context.Background(), c.url)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { db.Close() })
	return db
}

// checkOnce checks that every request in ids ended revoked with exactly one
// audit record of each of its events, in order, and that Cloudflare was
// called calls[email] times for each email (once when not listed).
func (c *cluster) checkOnce(ids map[string][]string, calls map[string]int) {
	c.t.Helper()
	h := c.nodes[0]
	for id, emails := range ids {
		want := []string{"requested", "approved"}
		for range emails {
			want = append(want, "revoked")
		}
		c.slack.Eventually("the audit records of "+id, 3*wait, func() bool {
			return strings.Join(h.auditEvents(id), " ") == strings.Join(want, " ")
		})
	}
	time.Sleep(300 * time.Millisecond) // a record posted twice would show by now
	byEmail := map[string]int{}
	for _, call := range c.cf.Calls() {
		byEmail[call.Body.Email]++
	}
	for id, emails := range ids {
		want := []string{"requested", "approved"}
		for _, e := range emails {
			want = append(want, "revoked")
			n, ok := calls[e]
			if !ok {
				n = 1
			}
			if byEmail[e] != n {
				c.t.Errorf("%s: %d Cloudflare calls, want %d", e, byEmail[e], n)
			}
		}
		if got := h.auditEvents(id); strings.Join(got, " ") != strings.Join(want, " ") {
			c.t.Errorf("request %s audited as %v, want %v", id, got, want)
		}
	}
}

// Three replicas started at the same moment on an empty database migrate it
// once; redelivered commands and clicks are handled once whichever replica
// gets them; two approvers clicking at once on different replicas cause one
// Cloudflare call and one revoked record per target.
func TestReplicasStartTogetherAndDecideOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	c.start(3)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.url)
	if err != nil {
		t.Fatal(err)
	}
	var migrations, distinct, last int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*), COUNT(DISTINCT version), MAX(version) FROM schema_migrations`).Scan(&migrations, &distinct, &last); err != nil ||
		migrations != distinct || migrations != last {
		t.Errorf("schema_migrations holds %d rows of %d versions up to %d (%v), want each migration once", migrations, distinct, last, err)
	}
	conn.Close(ctx)

	h := c.nodes[0]
	// A command delivered three times (new envelopes, as Slack retries):
	// one request, whichever replicas got them.
	payload := c.slack.SlashPayload(requester, secChannel, "dup@example.com")
	for i := range 3 {
		id := fmt.Sprintf("dup-%d", i)
		c.slack.SendEnvelope(id, "slash_commands", payload, i)
		c.slack.WaitAck(id, wait)
	}
	dup := c.slack.WaitMessage(secChannel, func(m bottest.Message) bool { return strings.Contains(m.Text, "dup@example.com") }, wait)

	ids := map[string][]string{requestID(t, dup): {"dup@example.com"}}
	var msgs []bottest.Message
	for i := range 12 {
		email := fmt.Sprintf("user%d@example.com", i)
		m := h.request(email + " --devices")
		ids[requestID(t, m)] = []string{email}
		msgs = append(msgs, m)
	}
	msgs = append(msgs, dup)
	apart := 0 // requests whose two approvers' clicks went to different replicas
	for i, m := range msgs {
		// Two approvers at once; every third click also redelivered.
		envs := []string{c.slack.Click(approver, m, "revoke_approve"), c.slack.Click(groupie, m, "revoke_approve")}
		if c.slack.WaitAck(envs[0], wait).Connection != c.slack.WaitAck(envs[1], wait).Connection {
			apart++
		}
		if i%3 == 0 {
			p := bottest.ClickPayload(approver, m, "revoke_approve", requestID(t, m), c.slack.ResponseURL(approver, secChannel))
			id := fmt.Sprintf("again-%d", i)
			c.slack.SendEnvelope(id, "interactive", p, 1)
			envs = append(envs, id)
		}
		for _, id := range envs {
			c.slack.WaitAck(id, wait)
		}
	}
	for _, m := range msgs {
		h.waitMessageState(m, "Revoked")
	}
	c.checkOnce(ids, nil)
	if n := len(c.slack.Messages(secChannel)); n != len(msgs) {
		t.Errorf("%d approval messages, want %d", n, len(msgs))
	}
	if apart == 0 {
		t.Errorf("no request had its two approvals on different replicas: the race was not run")
	}
	t.Logf("%d of %d requests had their two approvals on different replicas", apart, len(msgs))
	spread := c.slack.EnvelopesPerConnection()
	t.Logf("envelopes per replica: %v; redelivered: %d", spread, c.slack.Redelivered())
	for i, n := range spread {
		if n == 0 {
			t.Errorf("replica %d got no envelope: %v", i, spread)
		}
	}
}

// A replica killed (SIGKILL) while revoking leaves its lease: another
// replica takes the revocation over, calls Cloudflare again for the target
// under way, and records one outcome per target.
func TestReplicaKilledWhileRevoking(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	c.start(3)
	h := c.nodes[0]
	m := h.request("alice@example.com bob@example.com carol@example.com")
	id := requestID(t, m)
	c.cf.Script(cftest.Response{Delay: time.Minute}) // alice's call hangs
	h.click(approver, m, "revoke_approve")
	c.cf.WaitCalls(t, 1, wait)

	db := c.db()
	var holder string
	c.slack.Eventually("the revocation's lease", wait, func() bool {
		held, err := db.HeldLeases(context.Background())
		for _, l := range held {
			if err == nil && l.Name == approvals.ExecutionLease(id) {
				holder, _, _ = strings.Cut(l.Owner, "/")
			}
		}
		return holder != ""
	})
	killed := c.node(holder)
	killed.kill()
	t.Logf("killed %s while it revoked alice", holder)

	h.slack.Eventually("revoked by the others", 3*wait, func() bool {
		r, err := db.Get(context.Background(), id)
		return err == nil && r.State() == approvals.StateRevoked
	})
	c.checkOnce(map[string][]string{id: {"alice@example.com", "bob@example.com", "carol@example.com"}},
		map[string]int{"alice@example.com": 2})
	if rec := h.auditRecord(id, "revoked"); !strings.Contains(rec, "resumed") {
		t.Errorf("alice's record does not say it was resumed: %s", rec)
	}
	var after []string
	for _, call := range c.cf.Calls()[1:] {
		after = append(after, call.Body.Email)
	}
	if strings.Join(after, " ") != "alice@example.com bob@example.com carol@example.com" {
		t.Errorf("calls after the kill: %v, want alice again, then bob and carol", after)
	}
}

// Slack's API fails for a while under three replicas: every audit record
// is posted exactly once, each request's in order.
func TestReplicasAuditOutage(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	c.start(3)
	h := c.nodes[0]
	ids := map[string][]string{}
	var msgs []bottest.Message
	for i := range 8 {
		email := fmt.Sprintf("user%d@example.com", i)
		m := h.request(email)
		ids[requestID(t, m)] = []string{email}
		msgs = append(msgs, m)
	}
	var failures []bottest.Failure
	for i := range 24 {
		failures = append(failures, []bottest.Failure{{Error: "internal_error"}, {Status: 503}, {Error: "service_unavailable"}}[i%3])
	}
	c.slack.Fail("chat.postMessage", failures...)
	for _, m := range msgs {
		h.click(approver, m, "revoke_approve")
	}
	c.checkOnce(ids, nil)
}

// Three replicas revoking at once stay within one Cloudflare budget
// (CLOUDFLARE_RATE_LIMIT), kept in the database: the fake Cloudflare, which
// allows as much, never answers 429.
func TestReplicasShareTheCloudflareBudget(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[string]string{"CLOUDFLARE_RATE_LIMIT": "20/1s"}, cftest.WithRateLimit(20, time.Second))
	c.start(3)
	h := c.nodes[0]
	ids := map[string][]string{}
	var msgs []bottest.Message
	for i := range 6 {
		var emails []string
		for j := range 5 {
			emails = append(emails, fmt.Sprintf("user%d-%d@example.com", i, j))
		}
		m := h.request(strings.Join(emails, " "))
		ids[requestID(t, m)] = emails
		msgs = append(msgs, m)
	}
	var envs []string
	for _, m := range msgs {
		envs = append(envs, c.slack.Click(approver, m, "revoke_approve"))
	}
	for _, e := range envs {
		c.slack.WaitAck(e, wait)
	}
	c.checkOnce(ids, nil)
	if n := c.cf.RateLimitedCount(); n != 0 {
		t.Errorf("Cloudflare answered %d calls with 429: the replicas spent more than one budget", n)
	}
}

// A rolling restart (each replica stopped with SIGTERM and replaced, one
// after the other) while requests keep coming: every request is posted,
// decided and revoked once.
func TestRollingRestartWithTrafficFlowing(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	c.start(3)
	h := c.nodes[0]
	old := c.nodes[:3]
	restarted := make(chan struct{})
	var mu sync.Mutex
	go func() {
		defer close(restarted)
		for _, n := range old {
			time.Sleep(300 * time.Millisecond)
			n.cancel() // SIGTERM
			select {
			case <-n.done:
			case <-time.After(wait):
				t.Errorf("%s did not stop within %s", n.env["REVOKEBOT_REPLICA"], wait)
				return
			}
			n.cancel = nil
			mu.Lock()
			c.launch()
			mu.Unlock()
			deadline := time.Now().Add(wait)
			for c.slack.LiveConnections() < 3 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	ids := map[string][]string{}
	for i := 0; ; i++ {
		select {
		case <-restarted:
		default:
			email := fmt.Sprintf("user%d@example.com", i)
			m := h.request(email)
			ids[requestID(t, m)] = []string{email}
			h.click(approver, m, "revoke_approve")
			h.waitMessageState(m, "Revoked")
			continue
		}
		break
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d requests through a rolling restart of 3 replicas; %d envelopes redelivered", len(ids), c.slack.Redelivered())
	if len(ids) < 5 {
		t.Errorf("only %d requests went through the restart", len(ids))
	}
	c.checkOnce(ids, nil)
}

// A replica that stops answering (frozen: SIGSTOP) leaves the envelopes it
// got unacknowledged; Slack redelivers them to the other replicas, which
// handle them. When the frozen one wakes up and handles its stale copies
// too, the store's keys make them duplicates: one request per command, one
// decision per click.
func TestFrozenReplicasEnvelopesAreRedeliveredAndHandledOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	c.start(3)
	h := c.nodes[0]
	freeze := func(n *harness) (thaw func()) {
		n.proc.Process.Signal(syscall.SIGSTOP)
		return func() { n.proc.Process.Signal(syscall.SIGCONT) }
	}

	// Commands, while replica-0 is frozen, until some were redelivered.
	thaw := freeze(c.nodes[0])
	var envs []string
	for i := 0; i < 40 && (i < 6 || c.slack.Redelivered() < 2); i++ {
		envs = append(envs, c.slack.SlashCommand(requester, secChannel, fmt.Sprintf("user%d@example.com", i)))
		time.Sleep(50 * time.Millisecond)
	}
	for _, e := range envs {
		c.slack.WaitAck(e, 3*wait)
	}
	commandsRedelivered := c.slack.Redelivered()
	thaw()
	ids := map[string][]string{}
	var msgs []bottest.Message
	c.slack.Eventually("an approval message per command", 2*wait, func() bool {
		return len(c.slack.Messages(secChannel)) >= len(envs)
	})
	for _, m := range c.slack.Messages(secChannel) {
		email, _, _ := strings.Cut(strings.TrimPrefix(m.Text, "Revocation request for `"), "`")
		ids[requestID(t, m)] = []string{email}
		msgs = append(msgs, m)
	}

	// Clicks, while replica-1 is frozen.
	thaw = freeze(c.nodes[1])
	envs = nil
	for _, m := range msgs {
		envs = append(envs, c.slack.Click(approver, m, "revoke_approve"))
	}
	for _, e := range envs {
		c.slack.WaitAck(e, 3*wait)
	}
	thaw()
	for _, m := range msgs {
		h.waitMessageState(m, "Revoked")
	}
	time.Sleep(time.Second) // the woken replicas handle their stale copies meanwhile
	c.checkOnce(ids, nil)
	if n := len(c.slack.Messages(secChannel)); n != len(msgs) || len(msgs) != len(ids) {
		t.Errorf("%d approval messages for %d commands", n, len(msgs))
	}
	t.Logf("%d commands and %d clicks; %d command envelopes and %d in all redelivered",
		len(msgs), len(msgs), commandsRedelivered, c.slack.Redelivered())
	if commandsRedelivered == 0 || c.slack.Redelivered() == commandsRedelivered {
		t.Errorf("redelivered %d commands and %d clicks: the test needs some of each", commandsRedelivered, c.slack.Redelivered()-commandsRedelivered)
	}
}

// Two running processes never share a replica name (each would take the
// other's delivery claims for its own): a second one under a name in use
// waits for it to be free for as long as a lease lasts, then refuses to
// start, naming the variable.
func TestTwoReplicasCannotShareAName(t *testing.T) {
	t.Parallel()
	c := newCluster(t, map[string]string{"REVOKEBOT_LEASE_TTL": "1s"})
	c.start(1)
	env := maps.Clone(c.env)
	env["REVOKEBOT_REPLICA"] = "replica-0"
	var logs syncBuffer
	err := Run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, &logs)
	if err == nil || !strings.Contains(err.Error(), `REVOKEBOT_REPLICA: another running revokebot uses the name "replica-0"`) {
		t.Fatalf("second replica-0: %v, want a refusal naming REVOKEBOT_REPLICA", err)
	}
	// Once the first has stopped, its name is free at once.
	c.nodes[0].stop()
	c.launch() // replica-1
	c.slack.WaitLive(1, 3*wait)
	h := &harness{t: t, slack: c.slack, cf: c.cf, env: env}
	h.launch()
	c.slack.WaitLive(2, 3*wait)
}
