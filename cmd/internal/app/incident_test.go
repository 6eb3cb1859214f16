package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// End-to-end tests of what an incident needs (issue 9): several targets in
// one request, a quorum of approvers, a denial's reason, who may act, Slack
// mentions, notifications, escalation, status and pending. Each runs the
// real program against the fake Slack and the fake Cloudflare.

// auditRecords returns the audit texts of request id's event records, in order.
func (h *harness) auditRecords(id, event string) []string {
	var out []string
	for _, m := range h.slack.Messages(auditChannel) {
		if strings.Contains(m.Text, "request="+id+" ") && strings.HasPrefix(strings.TrimPrefix(m.Text, "[DRY RUN] "), event+" ") {
			out = append(out, m.Text)
		}
	}
	return out
}

// targetLine returns the line of the approval message m that lists email,
// or "".
func targetLine(m bottest.Message, email string) string {
	for line := range strings.SplitSeq(m.BlockText(), "\n") {
		if strings.HasPrefix(line, "• ") && strings.Contains(line, "`"+email+"`") {
			return line
		}
	}
	return ""
}

// callsPerEmail counts the Cloudflare revoke_user calls per email.
func (h *harness) callsPerEmail() map[string]int {
	out := map[string]int{}
	for _, c := range h.cf.Calls() {
		out[c.Body.Email]++
	}
	return out
}

// settle gives a wrong extra effect (a second record, post or call) the
// time to show.
func settle() { time.Sleep(300 * time.Millisecond) }

func TestBulkRequestWithOneTargetFailing(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	// Targets are revoked one after the other, in order: the second call,
	// bob's, is the one Cloudflare refuses.
	h.cf.Script(cftest.Response{}, cftest.Fail(403, 10000, "Authentication error"), cftest.Response{})
	emails := []string{"alice@example.com", "bob@example.com", "carol@example.com"}
	m := h.request(strings.Join(emails, " ") + ` --devices --reason "phishing campaign"`)
	id := requestID(t, m)
	for _, e := range emails {
		if targetLine(m, e) == "" {
			t.Fatalf("approval message does not list %s: %s", e, m.BlockText())
		}
	}
	h.waitAudit(id, "requested")
	if rec := h.auditRecord(id, "requested"); !strings.Contains(rec, "targets=3") ||
		!strings.Contains(rec, `target="alice@example.com"`) || !strings.Contains(rec, `target="carol@example.com"`) {
		t.Errorf("requested record does not name the three targets: %s", rec)
	}

	h.click(approver, m, "revoke_approve")
	final := h.waitMessageState(m, "Partly failed: 2 of 3 revoked, 1 failed")
	calls := h.cf.Calls()
	if len(calls) != 3 {
		t.Fatalf("%d Cloudflare calls, want 3 (one per target)", len(calls))
	}
	for i, c := range calls {
		if c.Body.Email != emails[i] || c.Query.Get("devices") != "true" {
			t.Errorf("call %d: %s devices=%s, want %s devices=true", i, c.Body.Email, c.Query.Get("devices"), emails[i])
		}
	}
	// Each target's own status.
	for _, e := range []string{"alice@example.com", "carol@example.com"} {
		if line := targetLine(final, e); !strings.Contains(line, "revoked") || strings.Contains(line, "failed") {
			t.Errorf("line of %s: %q, want it revoked", e, line)
		}
	}
	if line := targetLine(final, "bob@example.com"); !strings.Contains(line, "*failed*") || !strings.Contains(line, "10000") {
		t.Errorf("line of bob@example.com: %q, want it failed with Cloudflare's error", line)
	}
	if strings.Contains(final.BlockText(), ":white_check_mark: Approved") {
		t.Errorf("a partial failure shown as success: %s", final.BlockText())
	}

	// One revoked or failed record per target, naming its email.
	h.waitAudit(id, "requested", "approved", "revoked", "failed", "revoked")
	revoked, failed := h.auditRecords(id, "revoked"), h.auditRecords(id, "failed")
	if !strings.Contains(revoked[0], `target="alice@example.com"`) || !strings.Contains(revoked[1], `target="carol@example.com"`) {
		t.Errorf("revoked records do not name their targets: %q", revoked)
	}
	if f := failed[0]; !strings.Contains(f, `target="bob@example.com"`) || strings.Contains(f, "alice@") || strings.Contains(f, "carol@") ||
		!strings.Contains(f, "Authentication error") {
		t.Errorf("failed record: %s", f)
	}
	if !strings.Contains(revoked[1], "2 of 3 revoked, 1 failed") {
		t.Errorf("the last record does not sum the request up: %s", revoked[1])
	}

	// The requester is told the same, directly, and not that it worked.
	dm := h.slack.WaitDirectMessage(requester, func(m bottest.Message) bool { return strings.Contains(m.Text, id) }, wait)
	if !strings.Contains(dm.Text, "2 of 3 revoked, 1 failed") || !strings.HasPrefix(dm.Text, ":x:") || strings.Contains(dm.Text, "white_check_mark") {
		t.Errorf("requester's direct message: %s", dm.Text)
	}
	settle()
	if n := len(h.slack.DirectMessages(requester)); n != 1 {
		t.Errorf("%d direct messages to the requester, want 1", n)
	}
}

// TestKillHalfwayThroughBulkRevocation kills revokebot while Cloudflare
// holds the second of three revocations: after the restart the first is
// not revoked again, the other two are.
func TestKillHalfwayThroughBulkRevocation(t *testing.T) {
	t.Parallel()
	h := startProcess(t, nil)
	m := h.request("alice@example.com bob@example.com carol@example.com")
	id := requestID(t, m)
	h.cf.Script(cftest.Response{}, cftest.Response{Delay: time.Minute}) // alice at once; bob's call hangs
	h.click(approver, m, "revoke_approve")
	h.cf.WaitCalls(t, 2, wait)
	h.slack.Eventually("alice's revocation recorded", wait, func() bool {
		var r approvals.Request
		h.withDB(func(db *sqlite.DB) { r, _ = db.Get(context.Background(), id) })
		return len(r.Targets) == 3 && r.Targets[0].State == approvals.TargetRevoked && r.Targets[1].State == approvals.TargetWaiting
	})
	h.waitAudit(id, "requested", "approved", "revoked")
	h.slack.Eventually("the records marked delivered", wait, func() bool { return h.undelivered(approvals.AuditRecord) == 0 })
	h.kill() // bob's revocation in flight, carol's not started

	h.spawn()
	h.waitMessageState(m, "3 of 3 revoked")
	h.waitAudit(id, "requested", "approved", "revoked", "revoked", "revoked")
	settle()
	if got := h.callsPerEmail(); got["alice@example.com"] != 1 || got["bob@example.com"] != 2 || got["carol@example.com"] != 1 || len(got) != 3 {
		t.Fatalf("Cloudflare calls per email %v; want alice 1 (done before the crash), bob 2 (in flight, resumed), carol 1", got)
	}
	revoked := h.auditRecords(id, "revoked")
	if len(revoked) != 3 {
		t.Fatalf("revoked records %q", revoked)
	}
	for i, want := range []string{"alice@example.com", "bob@example.com", "carol@example.com"} {
		if !strings.Contains(revoked[i], `target="`+want+`"`) {
			t.Errorf("revoked record %d does not name %s: %s", i, want, revoked[i])
		}
		if resumed := strings.Contains(revoked[i], "resumed after a restart"); resumed != (i > 0) {
			t.Errorf("revoked record of %s says resumed: %t: %s", want, resumed, revoked[i])
		}
	}
	if got := h.auditEvents(id); strings.Join(got, " ") != "requested approved revoked revoked revoked" {
		t.Fatalf("audit records %v", got)
	}
	h.slack.WaitDirectMessage(requester, func(m bottest.Message) bool { return strings.Contains(m.Text, "3 of 3 revoked") }, wait)
	settle()
	if dms := h.slack.DirectMessages(requester); len(dms) != 1 {
		t.Fatalf("%d direct messages to the requester, want 1: %+v", len(dms), dms)
	}
}

func TestQuorumOfTwo(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_REQUIRED_APPROVALS": "2"})
	m := h.request("alice@example.com bob@example.com")
	id := requestID(t, m)
	if !strings.Contains(m.BlockText(), "*Approvals*\n0 of 2") {
		t.Errorf("approval message does not show 0 of 2 approvals: %s", m.BlockText())
	}
	h.waitAudit(id, "requested")
	if rec := h.auditRecord(id, "requested"); !strings.Contains(rec, "approvals_required=2") {
		t.Errorf("requested record: %s", rec)
	}

	// The requester is one of the approvers, but may not approve their own request.
	h.click(requester, m, "revoke_approve")
	h.slack.WaitEphemeral(requester, "cannot approve your own request", wait)
	h.waitAudit(id, "requested", "refused")
	if rec := h.auditRecord(id, "refused"); !strings.Contains(rec, "actor=<@"+requester+">") || !strings.Contains(rec, "own request") {
		t.Errorf("refused record: %s", rec)
	}

	// The first approval counts, and is shown, but revokes nothing yet.
	h.click(approver, m, "revoke_approve")
	h.waitAudit(id, "requested", "refused", "approved")
	if rec := h.auditRecord(id, "approved"); !strings.Contains(rec, `detail="1 of 2"`) || !strings.Contains(rec, "actor=<@"+approver+">") {
		t.Errorf("approved record: %s", rec)
	}
	one := h.slack.WaitMessage(secChannel, func(cur bottest.Message) bool {
		return cur.TS == m.TS && strings.Contains(cur.BlockText(), "1 of 2: <@"+approver+">")
	}, wait)
	if !one.HasButton("revoke_approve") {
		t.Fatalf("buttons gone after 1 of 2 approvals: %s", one.BlockText())
	}
	settle()
	if n := len(h.cf.Calls()); n != 0 {
		t.Fatalf("%d Cloudflare calls after 1 of 2 approvals", n)
	}

	// The same approver again: told privately, nothing changes.
	updates := h.messageNow(m).Updates
	h.click(approver, m, "revoke_approve")
	e := h.slack.WaitEphemeral(approver, "You already decided on this request", wait)
	if !strings.Contains(e.Text, "1 of the 2 approvals") {
		t.Errorf("reply to the second click: %s", e.Text)
	}
	settle()
	if got := h.auditEvents(id); strings.Join(got, " ") != "requested refused approved" {
		t.Fatalf("audit after a second click by the same approver: %v", got)
	}
	if cur := h.messageNow(m); cur.Updates != updates || !cur.HasButton("revoke_approve") {
		t.Fatalf("message changed after a second click by the same approver: %d updates, was %d", cur.Updates, updates)
	}
	if n := len(h.cf.Calls()); n != 0 {
		t.Fatalf("%d Cloudflare calls", n)
	}

	// The second approver completes the quorum: each target revoked once.
	h.click(groupie, m, "revoke_approve")
	final := h.waitMessageState(m, "2 of 2 revoked")
	if !strings.Contains(final.BlockText(), "Approved by <@"+approver+">, <@"+groupie+">") {
		t.Errorf("final message does not name both approvers: %s", final.BlockText())
	}
	h.waitAudit(id, "requested", "refused", "approved", "approved", "revoked", "revoked")
	if rec := h.auditRecords(id, "approved")[1]; !strings.Contains(rec, `detail="2 of 2"`) || !strings.Contains(rec, "actor=<@"+groupie+">") {
		t.Errorf("second approved record: %s", rec)
	}
	settle()
	if got := h.callsPerEmail(); got["alice@example.com"] != 1 || got["bob@example.com"] != 1 || len(got) != 2 {
		t.Fatalf("Cloudflare calls per email %v, want one for each target", got)
	}
}

func TestDenyWithReason(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request("alice@example.com")
	id := requestID(t, m)

	v := h.denyView(approver, m)
	if !strings.Contains(v.BlockText(), id) || !strings.Contains(v.BlockText(), "alice@example.com") {
		t.Errorf("deny modal does not say which request it denies: %s", v.BlockText())
	}
	// An empty reason is refused in the modal, which stays open; nothing is recorded.
	for _, empty := range []string{"", "   "} {
		ack := h.submitReason(approver, v, empty)
		if errs := ack.ViewErrors(); len(errs) != 1 || errs[v.Inputs()[0].BlockID] == "" {
			t.Fatalf("reason %q: ack %s, want an error on the reason's input", empty, ack.Payload)
		}
	}
	settle()
	if got := h.auditEvents(id); strings.Join(got, " ") != "requested" {
		t.Fatalf("audit after an empty reason: %v", got)
	}
	if cur := h.messageNow(m); cur.Updates != m.Updates || !cur.HasButton("revoke_deny") {
		t.Fatalf("message changed after an empty reason: %s", cur.BlockText())
	}

	// With a reason, the denial is recorded, shown and told.
	const reason = "false alarm: the laptop was found"
	if ack := h.submitReason(approver, v, reason); ack.ViewErrors() != nil {
		t.Fatalf("reason refused: %v", ack.ViewErrors())
	}
	final := h.waitMessageState(m, "Denied")
	if !strings.Contains(final.BlockText(), reason) || !strings.Contains(final.BlockText(), "*Denied* by <@"+approver+">") {
		t.Errorf("denied message lacks the reason or the denier: %s", final.BlockText())
	}
	h.waitAudit(id, "requested", "denied")
	if rec := h.auditRecord(id, "denied"); !strings.Contains(rec, `detail="`+reason+`"`) || !strings.Contains(rec, "actor=<@"+approver+">") {
		t.Errorf("denied record: %s", rec)
	}
	dm := h.slack.WaitDirectMessage(requester, func(m bottest.Message) bool { return strings.Contains(m.Text, id) }, wait)
	if !strings.Contains(dm.Text, "*denied* by <@"+approver+">") || !strings.Contains(dm.Text, reason) {
		t.Errorf("requester's direct message: %s", dm.Text)
	}
	if n := len(h.cf.Calls()); n != 0 {
		t.Fatalf("%d Cloudflare calls", n)
	}

	// The requester's own Deny cancels at once, without a modal.
	views := len(h.slack.OpenedViews())
	m2 := h.request("bob@example.com")
	id2 := requestID(t, m2)
	h.click(requester, m2, "revoke_deny")
	h.waitMessageState(m2, "Cancelled")
	h.waitAudit(id2, "requested", "cancelled")
	if n := len(h.slack.OpenedViews()); n != views {
		t.Fatalf("the requester's Deny opened %d modals", n-views)
	}
}

func TestGuestAndExternalMayNotAct(t *testing.T) {
	t.Parallel()
	const guest, external = "UGUEST01", "UEXTERN01"
	h := start(t, map[string]string{
		"REVOKEBOT_APPROVERS":  approver + ",SAPPROVERS," + requester + "," + external,
		"REVOKEBOT_REQUESTERS": requester + ",SAPPROVERS," + external,
	})
	// Listed through a group, and directly, before any lookup is made.
	h.slack.SetGroup("SAPPROVERS", groupie, guest)
	h.slack.SetUser(guest, bottest.User{Name: "guest", Email: "guest@partner.example", IsRestricted: true})
	h.slack.SetUser(external, bottest.User{Name: "extern", Email: "extern@other.example", TeamID: "TOTHERORG"})

	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.click(guest, m, "revoke_approve")
	h.slack.WaitEphemeral(guest, "Guests of this workspace may not request or decide revocations", wait)
	h.waitAudit(id, "requested", "refused")
	if rec := h.auditRecord(id, "refused"); !strings.Contains(rec, "actor=<@"+guest+">") || !strings.Contains(rec, "guest of the workspace") {
		t.Errorf("refused record: %s", rec)
	}
	// A guest's Deny is refused at once too, with no modal.
	h.click(guest, m, "revoke_deny")
	h.waitAudit(id, "requested", "refused", "refused")
	if n := len(h.slack.Ephemerals(guest)); n != 2 {
		t.Errorf("%d private replies to the guest, want 2", n)
	}

	h.click(external, m, "revoke_approve")
	h.slack.WaitEphemeral(external, "People from another organisation (Slack Connect) may not", wait)
	h.waitAudit(id, "requested", "refused", "refused", "refused")
	if rec := h.auditRecords(id, "refused")[2]; !strings.Contains(rec, "actor=<@"+external+">") || !strings.Contains(rec, "another organisation") {
		t.Errorf("refused record: %s", rec)
	}
	if n := len(h.slack.OpenedViews()); n != 0 {
		t.Fatalf("%d modals opened for people who may not decide", n)
	}
	if cur := h.messageNow(m); cur.Updates != m.Updates || !cur.HasButton("revoke_approve") {
		t.Fatalf("message changed after refused clicks: %s", cur.BlockText())
	}

	// Neither may request.
	h.command(guest, "bob@example.com")
	h.slack.Eventually("the guest's request refused", wait, func() bool {
		return len(h.slack.Ephemerals(guest)) == 3 && strings.Contains(h.slack.Ephemerals(guest)[2].Text, "Guests of this workspace")
	})
	h.command(external, "bob@example.com")
	h.slack.Eventually("the external user's request refused", wait, func() bool {
		e := h.slack.Ephemerals(external)
		return len(e) == 2 && strings.Contains(e[1].Text, "People from another organisation")
	})
	settle()
	if n := len(h.slack.Messages(secChannel)); n != 1 {
		t.Fatalf("%d approval messages, want 1", n)
	}
	// The refusals are all in the database; a full member still decides.
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
	if got := h.callsPerEmail(); got["alice@example.com"] != 1 || len(got) != 1 {
		t.Fatalf("Cloudflare calls %v", got)
	}
}

func TestMentionResolved(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.slack.SetUser("UALICE001", bottest.User{Name: "alice", Email: "alice@example.com"})
	m := h.request(`<@UALICE001|alice> bob@example.com --reason "phished"`)
	id := requestID(t, m)
	if line := targetLine(m, "alice@example.com"); !strings.Contains(line, "<@UALICE001>") {
		t.Fatalf("approval message does not show the person with the resolved email: %q in %s", line, m.BlockText())
	}
	h.waitAudit(id, "requested")
	if rec := h.auditRecord(id, "requested"); !strings.Contains(rec, `target="alice@example.com"`) || !strings.Contains(rec, "person=<@UALICE001>") {
		t.Errorf("requested record: %s", rec)
	}
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "2 of 2 revoked")
	if got := h.callsPerEmail(); got["alice@example.com"] != 1 || got["bob@example.com"] != 1 || len(got) != 2 {
		t.Fatalf("Cloudflare calls per email %v", got)
	}
	h.waitAudit(id, "requested", "approved", "revoked", "revoked")
	if rec := h.auditRecords(id, "revoked")[0]; !strings.Contains(rec, `target="alice@example.com"`) || !strings.Contains(rec, "person=<@UALICE001>") {
		t.Errorf("revoked record: %s", rec)
	}
}

func TestMentionNotResolvedRefused(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.slack.SetUser("UDEPLOYBOT", bottest.User{Name: "deploybot", Email: "deploy@example.com", IsBot: true})
	h.slack.SetUser("UNOMAIL01", bottest.User{Name: "nomail"})
	h.slack.SetUser("UGONE0001", bottest.User{Name: "gone", Email: "gone@example.com", Deleted: true})
	for _, tt := range []struct{ text, want string }{
		{"<@UNOBODY01|ghost>", "Slack knows no such user"},
		{"<@UDEPLOYBOT|deploybot>", "this is a bot"},
		{"<@" + bottest.BotUserID + "|revokebot>", "this is a bot"},
		{"<@UNOMAIL01|nomail>", "Slack shows no email for this person"},
		{"<@UGONE0001|gone>", "deactivated"},
		// Mixed with an address that would do: nothing is requested at all.
		{"bob@example.com <@UNOBODY01|ghost>", "target 2"},
	} {
		before := len(h.slack.Ephemerals(requester))
		if ack := h.command(requester, tt.text); ack.AckText() != "" {
			t.Fatalf("%q: ack %q", tt.text, ack.AckText())
		}
		h.slack.Eventually("the refusal of "+tt.text, wait, func() bool { return len(h.slack.Ephemerals(requester)) > before })
		e := h.slack.Ephemerals(requester)[before]
		if !strings.Contains(e.Text, "Nothing was requested") || !strings.Contains(e.Text, tt.want) || e.ResponseType != "ephemeral" {
			t.Errorf("%q: reply %q, want it private, saying nothing was requested, and %q", tt.text, e.Text, tt.want)
		}
	}
	settle()
	if n := len(h.slack.Messages(secChannel)) + len(h.slack.Messages(auditChannel)); n != 0 {
		t.Fatalf("%d messages posted for unresolved mentions", n)
	}
	if n := len(h.cf.Calls()); n != 0 {
		t.Fatalf("%d Cloudflare calls", n)
	}
}

func TestEscalation(t *testing.T) {
	t.Parallel()
	const escalator = "UESCALATE1"
	// The expirer, which escalates, runs every tenth of the TTL: 3s.
	h := start(t, map[string]string{
		"REVOKEBOT_REQUEST_TTL":          "30s",
		"REVOKEBOT_ESCALATE_AFTER":       "3s",
		"REVOKEBOT_ESCALATION_APPROVERS": escalator + ",SESCALATE",
	})
	h.slack.SetUser(escalator, bottest.User{Name: "escalator", Email: "escalator@corp.example"})
	h.slack.SetGroup("SESCALATE", "UOTHERESC")
	m := h.request("alice@example.com")
	id := requestID(t, m)
	// Not escalated yet: the escalation approver may not decide.
	h.click(escalator, m, "revoke_approve")
	h.slack.WaitEphemeral(escalator, "not allowed to decide", wait)
	h.waitAudit(id, "requested", "refused")

	reply := h.slack.WaitReply(secChannel, m.TS, func(r bottest.Message) bool { return strings.Contains(r.Text, "Escalated") }, wait)
	if !strings.Contains(reply.Text, "<@"+escalator+">") || !strings.Contains(reply.Text, "<!subteam^SESCALATE>") {
		t.Errorf("escalation reply does not mention the escalation approvers: %s", reply.Text)
	}
	h.waitAudit(id, "requested", "refused", "escalated")
	if rec := h.auditRecord(id, "escalated"); !strings.Contains(rec, "0 of 1 approvals") {
		t.Errorf("escalated record: %s", rec)
	}
	h.slack.WaitMessage(secChannel, func(cur bottest.Message) bool {
		return cur.TS == m.TS && cur.HasButton("revoke_approve") && strings.Contains(cur.BlockText(), "*Escalated*")
	}, wait)
	// Another round of the expirer escalates nothing again.
	time.Sleep(3200 * time.Millisecond)
	if n := len(h.slack.Replies(secChannel, m.TS)); n != 1 {
		t.Fatalf("%d replies in the request's thread, want exactly 1", n)
	}

	// Now the escalation approver, not a regular approver, may approve.
	h.click(escalator, m, "revoke_approve")
	done := h.waitMessageState(m, "Revoked")
	if !strings.Contains(done.BlockText(), "Approved by <@"+escalator+">") {
		t.Errorf("final message: %s", done.BlockText())
	}
	h.waitAudit(id, "requested", "refused", "escalated", "approved", "revoked")
	if got := h.callsPerEmail(); got["alice@example.com"] != 1 || len(got) != 1 {
		t.Fatalf("Cloudflare calls %v", got)
	}
	settle()
	if n := len(h.slack.Replies(secChannel, m.TS)); n != 1 {
		t.Fatalf("%d replies in the request's thread, want exactly 1", n)
	}
}

func TestStatusAndPending(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request("alice@example.com bob@example.com")
	id := requestID(t, m)

	// The requester asks by a prefix of the ID.
	h.command(requester, "status "+id[:8])
	e := h.slack.WaitEphemeral(requester, "*Request* `"+id+"`", wait)
	for _, want := range []string{"*pending*", "alice@example.com", "bob@example.com", "0 of 1"} {
		if !strings.Contains(e.Text, want) {
			t.Errorf("status lacks %q: %s", want, e.Text)
		}
	}
	// An approver lists what is open.
	h.command(approver, "pending")
	e = h.slack.WaitEphemeral(approver, "1 open request(s)", wait)
	if !strings.Contains(e.Text, id[:8]) || !strings.Contains(e.Text, "alice@example.com") {
		t.Errorf("pending: %s", e.Text)
	}
	// Anybody else is refused, and learns nothing of the request.
	h.command(outsider, "status "+id[:8])
	h.command(outsider, "pending")
	h.slack.Eventually("two refusals to the outsider", wait, func() bool { return len(h.slack.Ephemerals(outsider)) == 2 })
	for _, e := range h.slack.Ephemerals(outsider) {
		if !strings.Contains(e.Text, "You are not allowed") || strings.Contains(e.Text, id[:8]) || strings.Contains(e.Text, "alice@") {
			t.Errorf("reply to the outsider: %s", e.Text)
		}
	}
	// Once decided, the status tells each target's outcome.
	h.click(groupie, m, "revoke_approve")
	h.waitMessageState(m, "2 of 2 revoked")
	h.command(groupie, "status "+id)
	e = h.slack.WaitEphemeral(groupie, "*Request* `"+id+"`", wait)
	if !strings.Contains(e.Text, "*revoked*") || strings.Count(e.Text, "revoked:") != 2 {
		t.Errorf("status after the revocation: %s", e.Text)
	}
	h.command(requester, "pending")
	h.slack.WaitEphemeral(requester, "No request is waiting", wait)
	h.waitAudit(id, "requested", "approved", "revoked", "revoked")
	settle()
	// Reading is not an event: nothing more in the audit, nothing posted.
	if n := len(h.slack.Messages(auditChannel)); n != 4 {
		t.Fatalf("%d audit records, want 4: status and pending are not audited", n)
	}
	if n := len(h.slack.Messages(secChannel)); n != 1 {
		t.Fatalf("%d messages in the channel", n)
	}
}

func TestNotifyMentionedOnApprovalMessage(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_NOTIFY": "UONCALL01,SONCALL"})
	m := h.request("alice@example.com")
	for _, want := range []string{"<@UONCALL01>", "<!subteam^SONCALL>"} {
		if !strings.Contains(m.BlockText(), want) || !strings.Contains(m.Text, want) {
			t.Errorf("approval message does not mention %s: text %q, blocks %s", want, m.Text, m.BlockText())
		}
	}
	h.click(approver, m, "revoke_approve")
	done := h.waitMessageState(m, "Revoked")
	if strings.Contains(done.Text, "<@UONCALL01>") || strings.Contains(done.BlockText(), "<!subteam^SONCALL>") {
		t.Errorf("a decided request still calls on people: %s", done.BlockText())
	}
}
