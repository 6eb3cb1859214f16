package app

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

func TestHappyPath(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request(`alice@example.com --devices --reason "laptop stolen"`)
	id := requestID(t, m)
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("button value %q is not a UUID", id)
	}
	buttons := m.Buttons()
	if len(buttons) != 2 || buttons[0].ActionID != "revoke_approve" || buttons[0].Style != "primary" ||
		len(buttons[0].Confirm) == 0 || buttons[1].ActionID != "revoke_deny" || buttons[1].Style != "danger" || buttons[1].Value != id {
		t.Fatalf("buttons %+v", buttons)
	}
	for _, want := range []string{"alice@example.com", "<@" + requester + ">", "laptop stolen", id} {
		if !strings.Contains(m.BlockText(), want) {
			t.Errorf("approval message lacks %q: %s", want, m.BlockText())
		}
	}
	h.slack.WaitEphemeral(requester, "waiting for an approver", wait)

	h.click(approver, m, "revoke_approve")
	calls := h.cf.WaitCalls(t, 1, wait)
	c := calls[0]
	if c.Path != "/client/v4/accounts/"+cftest.DefaultAccountID+"/access/organizations/revoke_user" || !c.AuthOK ||
		c.Query.Get("devices") != "true" || c.Body.Email != "alice@example.com" || c.Body.Devices == nil || !*c.Body.Devices {
		t.Fatalf("cloudflare call %+v", c)
	}
	done := h.waitMessageState(m, "Revoked")
	if !strings.Contains(done.BlockText(), "<@"+approver+">") {
		t.Errorf("final message does not say who approved: %s", done.BlockText())
	}
	h.waitAudit(id, "requested", "approved", "revoked")
	for _, ev := range []string{"requested", "approved", "revoked"} {
		if rec := h.auditRecord(id, ev); !strings.Contains(rec, `target="alice@example.com"`) {
			t.Errorf("%s record lacks the target: %s", ev, rec)
		}
	}
	if rec := h.auditRecord(id, "approved"); !strings.Contains(rec, "actor=<@"+approver+">") {
		t.Errorf("approved record lacks the actor: %s", rec)
	}
	// A second click after the fact changes nothing and is refused privately.
	h.click(groupie, m, "revoke_approve")
	h.slack.WaitEphemeral(groupie, "already approved by <@"+approver+">", wait)
	if n := len(h.cf.Calls()); n != 1 {
		t.Fatalf("%d cloudflare calls, want 1", n)
	}
}

func TestUnauthorizedRequester(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.command(outsider, "alice@example.com")
	h.slack.WaitEphemeral(outsider, "not allowed to request", wait)
	rec := h.slack.WaitMessage(auditChannel, func(m bottest.Message) bool { return strings.HasPrefix(m.Text, "refused ") }, wait)
	if !strings.Contains(rec.Text, `target="alice@example.com"`) || !strings.Contains(rec.Text, "actor=<@"+outsider+">") {
		t.Fatalf("refusal record %q", rec.Text)
	}
	if msgs := h.slack.Messages(secChannel); len(msgs) != 0 {
		t.Fatalf("approval message posted for an unauthorized requester: %+v", msgs)
	}
	if n := len(h.cf.Calls()); n != 0 {
		t.Fatalf("%d cloudflare calls", n)
	}
}

func TestSelfApprovalRefusedThenCancel(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.click(requester, m, "revoke_approve")
	h.slack.WaitEphemeral(requester, "cannot approve your own request", wait)
	h.waitAudit(id, "requested", "refused")
	if cur := h.messageNow(m); !cur.HasButton("revoke_approve") {
		t.Fatal("self-approval attempt removed the buttons")
	}
	// The requester may withdraw their own request.
	h.click(requester, m, "revoke_deny")
	h.waitMessageState(m, "Cancelled")
	h.waitAudit(id, "requested", "refused", "cancelled")
	if n := len(h.cf.Calls()); n != 0 {
		t.Fatalf("%d cloudflare calls", n)
	}
}

func TestNonApproverClick(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.click(outsider, m, "revoke_approve")
	h.slack.WaitEphemeral(outsider, "not allowed to decide", wait)
	h.click(outsider, m, "revoke_deny")
	h.waitAudit(id, "requested", "refused", "refused")
	if cur := h.messageNow(m); !cur.HasButton("revoke_approve") || cur.Updates != m.Updates {
		t.Fatalf("message changed after a non-approver click: %+v", cur)
	}
	// A forged click carrying an unknown request ID is refused too.
	h.slack.WaitAck(h.slack.ClickValue(approver, m, "revoke_approve", uuid.NewString()), wait)
	h.slack.WaitEphemeral(approver, "There is no such request", wait)
	if n := len(h.cf.Calls()); n != 0 {
		t.Fatalf("%d cloudflare calls", n)
	}
}

func TestDeny(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.deny(groupie, m, "not an incident") // approver through a user group
	h.waitMessageState(m, "Denied")
	h.waitAudit(id, "requested", "denied")
	h.click(approver, m, "revoke_approve")
	h.slack.WaitEphemeral(approver, "already denied by <@"+groupie+">", wait)
	if n := len(h.cf.Calls()); n != 0 {
		t.Fatalf("%d cloudflare calls", n)
	}
}

func TestDoubleClickRevokesOnce(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request("alice@example.com --devices")
	id := requestID(t, m)
	// Two approvers, each double-clicking, all before any ack is awaited.
	var envs []string
	for _, u := range []string{approver, groupie, approver, groupie} {
		envs = append(envs, h.slack.Click(u, m, "revoke_approve"))
	}
	for _, e := range envs {
		h.slack.WaitAck(e, wait)
	}
	h.waitMessageState(m, "Revoked")
	h.waitAudit(id, "requested", "approved", "revoked")
	// Every losing click has been answered once all three replies are in.
	h.slack.Eventually("3 'already decided' replies", wait, func() bool {
		return len(h.slack.Ephemerals(approver))+len(h.slack.Ephemerals(groupie)) >= 3
	})
	time.Sleep(200 * time.Millisecond) // let any stray duplicate reach the fakes
	if n := len(h.cf.Calls()); n != 1 {
		t.Fatalf("%d cloudflare calls, want exactly 1", n)
	}
	if losers := len(h.slack.Ephemerals(approver)) + len(h.slack.Ephemerals(groupie)); losers != 3 {
		t.Fatalf("%d 'already decided' replies, want 3", losers)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	for _, tt := range []struct{ text, want string }{
		{"", "say whose sessions"},
		{"not-an-email", "is not a single email address"},
		{"alice@example.com bob@example.com --uid 0b7e6a52-0c39-4a1e-9a0e-8d2f4c8b1e6f", "goes with exactly one person"},
		{"Alice <alice@example.com>", "is not a single email address"},
		{"@alice", "a typed @name is not a mention"},
		{"<!subteam^SAPPROVERS|approvers>", "a user group is not a person"},
		{"status", "status needs a request ID"},
		{"pending now", "pending takes nothing else"},
		{"alice@example.com --uid nope", "is not a UUID"},
		{"alice@example.com --reason", "--reason needs a value"},
		{"alice@example.com --force", "unknown option"},
		{`alice@example.com --reason "unclosed`, "quote is not closed"},
		{"alice@example.com --reason " + strings.Repeat("x", 501), "limit is 500"},
		{strings.Repeat("a", 2001), "limit is 2000"},
		{"<mailto:alice@example.com|mallory@example.com>", "different address"},
		{"<!channel>", "&lt;!channel&gt;"},
	} {
		ack := h.command(requester, tt.text)
		var p struct {
			Text         string `json:"text"`
			ResponseType string `json:"response_type"`
		}
		json.Unmarshal(ack.Payload, &p)
		if !strings.Contains(p.Text, tt.want) || !strings.Contains(p.Text, "Usage:") {
			t.Errorf("%q: reply %q; want it to contain %q and the usage", tt.text, p.Text, tt.want)
		}
		if p.ResponseType != "ephemeral" {
			t.Errorf("%q: reply is %q, not ephemeral", tt.text, p.ResponseType)
		}
		if strings.Contains(p.Text, "<!channel>") {
			t.Errorf("%q: reply contains an unescaped mention", tt.text)
		}
	}
	if ack := h.command(requester, "help"); !strings.Contains(ack.AckText(), "--devices") {
		t.Errorf("help reply %q", ack.AckText())
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(h.slack.Messages(secChannel)) + len(h.slack.Messages(auditChannel)); n != 0 {
		t.Fatalf("%d messages posted for bad input", n)
	}
}

func TestMailtoFormAndEscaping(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request(`<mailto:bob@example.com|bob@example.com> --warp-reauth --reason "<!channel> pwned & <@UBOSS>"`)
	id := requestID(t, m)
	blocks := m.BlockText()
	if strings.Contains(blocks, "<!channel>") || strings.Contains(blocks, "<@UBOSS>") ||
		!strings.Contains(blocks, "&lt;!channel&gt; pwned &amp; &lt;@UBOSS&gt;") {
		t.Fatalf("reason not escaped in the approval message: %s", blocks)
	}
	h.click(approver, m, "revoke_approve")
	c := h.cf.WaitCalls(t, 1, wait)[0]
	if c.Body.Email != "bob@example.com" || c.Body.WARPSessionReauth == nil || !*c.Body.WARPSessionReauth ||
		c.Query.Get("devices") != "false" {
		t.Fatalf("cloudflare call %+v", c)
	}
	h.waitAudit(id, "requested", "approved", "revoked")
	for _, rec := range h.slack.Messages(auditChannel) {
		if strings.Contains(rec.Text, "<!channel>") || strings.Contains(rec.Text, "<@UBOSS>") {
			t.Fatalf("audit record not escaped: %s", rec.Text)
		}
	}
}

func TestCloudflareFaults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		script    []cftest.Response
		calls     int
		state     string
		event     string
		mustQuote []string
	}{
		{"5xx then success", []cftest.Response{cftest.Fail(500, 10001, "Internal server error")}, 2, "Revoked", "revoked", nil},
		{"429 then success", []cftest.Response{cftest.RateLimited(1)}, 2, "Revoked", "revoked", nil},
		{"403", []cftest.Response{cftest.Fail(403, 10000, "Authentication error")}, 1, "Revocation failed", "failed", []string{"10000", "Authentication error"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, nil)
			h.cf.Script(tt.script...)
			m := h.request("alice@example.com")
			id := requestID(t, m)
			h.click(approver, m, "revoke_approve")
			final := h.waitMessageState(m, tt.state)
			h.waitAudit(id, "requested", "approved", tt.event)
			if n := len(h.cf.Calls()); n != tt.calls {
				t.Fatalf("%d cloudflare calls, want %d", n, tt.calls)
			}
			rec := h.auditRecord(id, tt.event)
			for _, q := range tt.mustQuote {
				if !strings.Contains(rec, q) || !strings.Contains(final.BlockText(), q) {
					t.Errorf("%q missing from the audit record %q or the message", q, rec)
				}
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_REQUEST_TTL": "1s"})
	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.waitMessageState(m, "Expired")
	h.waitAudit(id, "requested", "expired")
	h.click(approver, m, "revoke_approve")
	h.slack.WaitEphemeral(approver, "already expired", wait)
	if n := len(h.cf.Calls()); n != 0 {
		t.Fatalf("%d cloudflare calls", n)
	}
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_DRY_RUN": "true"})
	m := h.request("alice@example.com")
	id := requestID(t, m)
	if !strings.Contains(m.Text, "[DRY RUN]") || !strings.Contains(m.BlockText(), "DRY RUN") {
		t.Fatalf("approval message does not say dry run: %s", m.Text)
	}
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "dry run")
	h.waitAudit(id, "requested", "approved", "revoked")
	for _, rec := range h.slack.Messages(auditChannel) {
		if !strings.HasPrefix(rec.Text, "[DRY RUN] ") {
			t.Errorf("audit record without the dry-run mark: %s", rec.Text)
		}
	}
	if n := len(h.cf.Calls()); n != 0 {
		t.Fatalf("dry run made %d cloudflare calls", n)
	}
}

func TestApprovalChannel(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_APPROVAL_CHANNEL": "CAPPROVALS"})
	h.command(requester, "alice@example.com")
	m := h.slack.WaitMessage("CAPPROVALS", func(m bottest.Message) bool { return m.HasButton("revoke_approve") }, wait)
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
	if n := len(h.slack.Messages(secChannel)); n != 0 {
		t.Fatalf("%d messages in the command's channel", n)
	}
}

func TestWebsocketDropAndDisconnect(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.slack.DropConnection()
	h.slack.WaitConnected(2, wait)
	h.request("alice@example.com")
	h.slack.Disconnect("refresh_requested")
	h.slack.WaitConnected(3, wait)
	// slack-go handles the disconnect itself; its reason is logged all the same.
	h.slack.Eventually("the disconnect's reason logged", wait, func() bool {
		return strings.Contains(h.logs.String(), `"reason":"refresh_requested"`)
	})
	m := h.request("bob@example.com")
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
}

func TestPendingRequestExpiresAfterRestart(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_REQUEST_TTL": "3s"})
	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.stop()
	// The new process finds the request and its message in the database: it
	// expires it on time and updates the message it did not post.
	h.boot()
	h.waitMessageState(m, "Expired")
	h.waitAudit(id, "requested", "expired")
}

func TestShutdownFinishesRevocationInFlight(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.cf.Script(cftest.Response{Status: 200, Body: `{"result":true,"success":true,"errors":[],"messages":[]}`, Delay: 700 * time.Millisecond})
	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.click(approver, m, "revoke_approve")
	h.cf.WaitCalls(t, 1, wait) // the call is now in flight at Cloudflare
	h.stop()                   // SIGTERM: must wait for the revocation and its records, then exit 0
	if got := h.auditEvents(id); strings.Join(got, " ") != "requested approved revoked" {
		t.Fatalf("audit after shutdown: %v", got)
	}
	if cur := h.messageNow(m); !strings.Contains(cur.BlockText(), "Revoked") {
		t.Fatalf("message after shutdown: %s", cur.BlockText())
	}
}

func TestRedeliveredEnvelopesHandledOnce(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	// Slack redelivers a slash command whose ack it did not see in time.
	payload := h.slack.SlashPayload(requester, secChannel, "alice@example.com")
	h.slack.SendEnvelope("env-dup-cmd", "slash_commands", payload, 0)
	h.slack.WaitAck("env-dup-cmd", wait)
	m := h.slack.WaitMessage(secChannel, func(m bottest.Message) bool { return m.HasButton("revoke_approve") }, wait)
	h.slack.SendEnvelope("env-dup-cmd", "slash_commands", payload, 1)
	// A redelivered click must not answer the approver with "already approved by you".
	click := bottest.ClickPayload(approver, m, "revoke_approve", requestID(t, m), h.slack.APIURL()+"../respond/"+approver+"/"+secChannel)
	h.slack.SendEnvelope("env-dup-click", "interactive", click, 0)
	h.slack.SendEnvelope("env-dup-click", "interactive", click, 1)
	h.waitMessageState(m, "Revoked")
	h.waitAudit(requestID(t, m), "requested", "approved", "revoked")
	// Both redeliveries were seen (and ignored), so any wrong effect is under way.
	h.slack.Eventually("both redeliveries ignored", wait, func() bool {
		return strings.Count(h.logs.String(), "ignoring redelivered envelope") == 2
	})
	time.Sleep(200 * time.Millisecond) // and has had time to show
	if n := len(h.slack.Messages(secChannel)); n != 1 {
		t.Fatalf("%d approval messages for one command delivered twice", n)
	}
	if n := len(h.cf.Calls()); n != 1 {
		t.Fatalf("%d cloudflare calls", n)
	}
	if e := h.slack.Ephemerals(approver); len(e) != 0 {
		t.Fatalf("approver got replies to a redelivered click: %+v", e)
	}
}

func TestSlowAuditDoesNotDelayRevocation(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.slack.WaitMessage(auditChannel, func(m bottest.Message) bool { return strings.HasPrefix(m.Text, "requested ") }, wait)
	// Slack now rate-limits and fails for a while.
	h.slack.Fail("chat.postMessage", bottest.Failure{RetryAfter: 1}, bottest.Failure{Error: "internal_error"}, bottest.Failure{RetryAfter: 1})
	h.slack.Fail("chat.update", bottest.Failure{Status: 503})
	h.click(approver, m, "revoke_approve")
	call := h.cf.WaitCalls(t, 1, wait)[0]
	h.waitAudit(id, "requested", "approved", "revoked") // delivered late, in order, none lost
	h.waitMessageState(m, "Revoked")
	for _, rec := range h.slack.Messages(auditChannel) {
		if strings.HasPrefix(rec.Text, "approved ") && !call.At.Before(rec.At) {
			t.Fatalf("the revocation (%s) waited for the audit record (%s)", call.At.Format(time.RFC3339Nano), rec.At.Format(time.RFC3339Nano))
		}
	}
}

func TestAckDoesNotWaitForWebAPICalls(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	// Slack's Web API hangs; the acks must go out all the same.
	release := h.slack.Hold("chat.postMessage")
	h.slack.WaitAck(h.slack.SlashCommand(requester, secChannel, "alice@example.com"), wait)
	if n := len(h.slack.Messages(secChannel)); n != 0 {
		t.Fatalf("%d messages posted while chat.postMessage was held", n)
	}
	release()
	m := h.slack.WaitMessage(secChannel, func(m bottest.Message) bool { return m.HasButton("revoke_approve") }, wait)

	release = h.slack.Hold("chat.update")
	defer release()
	hold := h.slack.Hold("chat.postMessage")
	defer hold()
	h.click(approver, m, "revoke_approve") // acked although the bot cannot post or update
	h.cf.WaitCalls(t, 1, wait)             // and the revocation does not wait for Slack either
}

func TestExecutingRequestResumedAtStartup(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.stop()
	// Simulate a crash between approval and Cloudflare's answer.
	markExecuting(t, h.env["REVOKEBOT_DATABASE"], id, approver)
	h.boot()
	h.cf.WaitCalls(t, 1, wait)
	h.waitMessageState(m, "Revoked")
	// The approval recorded before the crash is delivered after it.
	h.waitAudit(id, "requested", "approved", "revoked")
	if rec := h.auditRecord(id, "revoked"); !strings.Contains(rec, "resumed after a restart") {
		t.Fatalf("revoked record does not say it was resumed: %s", rec)
	}
}

func TestRejectedCloudflareTokenStopsStart(t *testing.T) {
	t.Parallel()
	ws := bottest.New(t)
	cf := cftest.NewServer(t, cftest.WithAPIToken("the-right-token"))
	env := baseEnv(ws, cf, t.TempDir()+"/r.db")
	env["CLOUDFLARE_API_TOKEN"] = "a-wrong-token"
	err := Run(t.Context(), nil, getter(env), &strings.Builder{}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "CLOUDFLARE_API_TOKEN") || strings.Contains(err.Error(), "a-wrong-token") {
		t.Fatalf("err = %v", err)
	}
}
