package app

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/revokebot/revokebot/bot/bottest"
)

// checkRecords returns the audit channel's self-check records of kind
// (checked or tampered).
func (h *harness) checkRecords(kind string) []string {
	var out []string
	for _, m := range h.slack.Messages(auditChannel) {
		if strings.HasPrefix(m.Text, kind+" record=") {
			out = append(out, m.Text)
		}
	}
	return out
}

// With REVOKEBOT_AUDIT_VERIFY_EVERY, the audit trail checks itself: a
// checked record while the channel and the database match; after a record
// posted since the self-check was enabled is deleted from the channel, a
// tampered record naming it. Both are part
// of the chain: audit verify finds them in place.
func TestAuditSelfCheck(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_AUDIT_VERIFY_EVERY": "1s"})
	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.click(approver, m, "revoke_approve")
	h.waitAudit(id, "requested", "approved", "revoked")
	h.slack.Eventually("a checked record", 3*wait, func() bool { return len(h.checkRecords("checked")) > 0 })
	if rec := h.checkRecords("checked")[0]; !strings.Contains(rec, "everything matches") || !strings.Contains(rec, "chain=") {
		t.Errorf("checked record: %s", rec)
	}
	if n := len(h.checkRecords("tampered")); n != 0 {
		t.Fatalf("%d tampered records before anything was changed", n)
	}

	// A request after the self-check was enabled; someone then deletes
	// its approved record from the channel.
	m = h.request("bob@example.com")
	id = requestID(t, m)
	h.click(approver, m, "revoke_approve")
	h.waitAudit(id, "requested", "approved", "revoked")
	var approved bottest.Message
	for _, msg := range h.slack.Messages(auditChannel) {
		if strings.HasPrefix(msg.Text, "approved request="+id) {
			approved = msg
		}
	}
	_, num, _ := strings.Cut(approved.Text, " record=")
	num, _, _ = strings.Cut(num, " ")
	h.slack.DeleteMessage(auditChannel, approved.TS)
	h.slack.Eventually("a tampered record", 3*wait, func() bool { return len(h.checkRecords("tampered")) > 0 })
	if rec := h.checkRecords("tampered")[0]; !strings.Contains(rec, "MISSING record "+num) || !strings.Contains(rec, id) {
		t.Errorf("tampered record %s, want it to name the deleted record %s", rec, num)
	}
	h.stop()

	// The self-check's own records verify like any other; only the deleted
	// one is missing.
	var out strings.Builder
	err := auditVerify(context.Background(), nil, func(k string) string { return h.env[k] }, &out, io.Discard)
	if err == nil || !strings.Contains(out.String(), "MISSING record "+num) || strings.Count(out.String(), "\n") != 2 {
		t.Errorf("audit verify after the self-checks: %v\n%s", err, out.String())
	}
}
