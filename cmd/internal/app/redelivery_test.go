package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/bot/bottest"
)

// TestRedeliveryInNewEnvelopesHandledOnce: Slack may redeliver a command or
// a click in a new envelope (retry_attempt ≥ 1), keeping the command's
// trigger_id and the click's action_ts. Each is handled once.
func TestRedeliveryInNewEnvelopesHandledOnce(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	payload := h.slack.SlashPayload(requester, secChannel, "alice@example.com")
	h.slack.SendEnvelope("env-cmd-1", "slash_commands", payload, 0)
	h.slack.WaitAck("env-cmd-1", wait)
	m := h.slack.WaitMessage(secChannel, func(m bottest.Message) bool { return m.HasButton("revoke_approve") }, wait)
	h.slack.SendEnvelope("env-cmd-2", "slash_commands", payload, 1)
	h.slack.WaitAck("env-cmd-2", wait)

	// A refused click, then an approval, each delivered twice in two envelopes.
	refused := bottest.ClickPayload(outsider, m, "revoke_approve", requestID(t, m), h.slack.ResponseURL(outsider, secChannel))
	h.slack.SendEnvelope("env-out-1", "interactive", refused, 0)
	h.slack.SendEnvelope("env-out-2", "interactive", refused, 1)
	click := bottest.ClickPayload(approver, m, "revoke_approve", requestID(t, m), h.slack.ResponseURL(approver, secChannel))
	h.slack.SendEnvelope("env-click-1", "interactive", click, 0)
	h.slack.SendEnvelope("env-click-2", "interactive", click, 1)
	h.waitMessageState(m, "Revoked")
	// Refusals are audited in their own lane: in any order with the rest.
	h.slack.Eventually("four audit records", wait, func() bool {
		events := h.auditEvents(requestID(t, m))
		slices.Sort(events)
		return strings.Join(events, " ") == "approved refused requested revoked"
	})
	h.slack.Eventually("the redeliveries ignored", wait, func() bool {
		logs := h.logs.String()
		return strings.Count(logs, "ignoring redelivered command") == 1 && strings.Count(logs, "ignoring redelivered click") == 2
	})
	time.Sleep(200 * time.Millisecond) // any wrong effect has had time to show
	if n := len(h.slack.Messages(secChannel)); n != 1 {
		t.Fatalf("%d approval messages for one command delivered twice", n)
	}
	if n := len(h.cf.Calls()); n != 1 {
		t.Fatalf("%d cloudflare calls", n)
	}
	if e := h.slack.Ephemerals(approver); len(e) != 0 {
		t.Fatalf("approver got replies to a redelivered click: %+v", e)
	}
	if e := h.slack.Ephemerals(outsider); len(e) != 1 {
		t.Fatalf("outsider got %d replies to one click delivered twice", len(e))
	}
}

// TestClickFromAnotherMessageIgnored: a click payload naming the request
// but made on another message (forged, or a copy of the buttons) decides
// nothing.
func TestClickFromAnotherMessageIgnored(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request("alice@example.com")
	other := m
	other.TS = "1700000000.999999"
	h.slack.WaitAck(h.slack.ClickValue(approver, other, "revoke_approve", requestID(t, m)), wait)
	h.slack.WaitEphemeral(approver, "not on the request's own message", wait)
	other = m
	other.Channel = "COTHER"
	h.slack.WaitAck(h.slack.ClickValue(approver, other, "revoke_approve", requestID(t, m)), wait)
	h.waitAudit(requestID(t, m), "requested", "refused", "refused")
	if n := len(h.cf.Calls()); n != 0 {
		t.Fatalf("%d cloudflare calls from clicks on other messages", n)
	}
	// On its own message, the click counts.
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
}

// TestRefusalFloodSparesTheAuditChannel: 150 /revoke from someone not
// allowed make 150 refused requests in the database, but few audit
// records; a real request meanwhile is audited at once.
func TestRefusalFloodSparesTheAuditChannel(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_AUDIT_REFUSAL_WINDOW": "1m"})
	for i := range 150 {
		h.slack.SlashCommand(outsider, secChannel, fmt.Sprintf("victim%d@example.com", i))
	}
	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.waitAudit(id, "requested")
	h.slack.Eventually("150 refusals recorded", wait, func() bool {
		return len(h.slack.Ephemerals(outsider)) == 150
	})
	refusalRecords := func() int {
		n := 0
		for _, m := range h.slack.Messages(auditChannel) {
			if strings.HasPrefix(m.Text, "refused") {
				n++
			}
		}
		return n
	}
	h.slack.Eventually("the first refusal audited", wait, func() bool { return refusalRecords() == 1 })
	time.Sleep(300 * time.Millisecond)
	if n := refusalRecords(); n != 1 {
		t.Fatalf("%d refusal records within the window, want 1", n)
	}
	// Every attempt is in the database: one audited, the rest folding.
	var pending []approvals.Refusals
	var err error
	h.withDB(func(db *sqlite.DB) { pending, err = db.PendingRefusals(context.Background()) })
	if err != nil || len(pending) != 1 || pending[0].Count != 149 || pending[0].Actor != outsider {
		t.Fatalf("refusals waiting to be folded: %+v, %v; want 149 of %s", pending, err, outsider)
	}
}
