package app

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// Verified containment end to end: what Cloudflare knows of a person is on
// the approval message before anyone approves, the revoked record says
// whether the sessions are gone, and a return is seen and told once.

// waitText waits until approval message m's blocks contain text.
func (h *harness) waitText(m bottest.Message, text string) bottest.Message {
	h.t.Helper()
	return h.slack.WaitMessage(m.Channel, func(cur bottest.Message) bool {
		return cur.TS == m.TS && strings.Contains(cur.BlockText(), text)
	}, 2*wait)
}

// A known user whose sessions vanish after the revocation: the message
// shows them before approval, and the revoked record says verified.
func TestContainmentVerified(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.cf.AddUser(cftest.User{Email: "alice@example.com", Sessions: 2, Devices: 1, LastLogin: time.Now().Add(-time.Hour)})
	m := h.request("alice@example.com")
	id := requestID(t, m)
	if text := m.BlockText(); !strings.Contains(text, "Cloudflare Access user") || !strings.Contains(text, "2 active sessions") ||
		!strings.Contains(text, "1 active device") {
		t.Fatalf("the approval message does not show alice's sessions: %s", text)
	}
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
	h.waitAudit(id, "requested", "approved", "revoked")
	if rec := h.auditRecord(id, "revoked"); !strings.Contains(rec, "verified: no active session left") {
		t.Errorf("revoked record: %s", rec)
	}
	h.waitText(m, "verified: no active session left")
	h.waitText(m, "watching for a return until")
}

// Sessions still listed past REVOKEBOT_VERIFY_TIMEOUT: the record says
// pending with the count, then an unverified record names how many
// remain; the outcome stays revoked.
func TestContainmentUnverified(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_VERIFY_TIMEOUT": "2s"})
	h.cf.AddUser(cftest.User{Email: "alice@example.com", Sessions: 3, SessionsStay: true})
	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
	h.slack.Eventually("the unverified record", 3*wait, func() bool { return len(h.auditRecords(id, "unverified")) == 1 })
	if rec := h.auditRecord(id, "revoked"); !strings.Contains(rec, "verification pending: 3 active sessions still listed") {
		t.Errorf("revoked record: %s", rec)
	}
	if rec := h.auditRecords(id, "unverified")[0]; !strings.Contains(rec, "3 active sessions still listed") {
		t.Errorf("unverified record: %s", rec)
	}
	h.waitText(m, "unverified: 3 active sessions still listed after the timeout")
	time.Sleep(2 * time.Second) // more passes of the watcher: still one record
	if got := h.auditEvents(id); strings.Join(got, " ") != "requested approved revoked unverified" {
		t.Errorf("audit %v", got)
	}
}

// An email Cloudflare does not know is flagged before anyone approves;
// approving it still revokes (the person may not have logged in yet).
func TestContainmentUnknownEmailFlagged(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request("alcie@example.com")
	if text := m.BlockText(); !strings.Contains(text, "no Cloudflare Access user has this email") || !strings.Contains(text, "check for a typo") {
		t.Fatalf("an unknown email is not flagged: %s", text)
	}
	if !m.HasButton("revoke_approve") {
		t.Fatal("approving an unknown email is not possible")
	}
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
	h.waitAudit(requestID(t, m), "requested", "approved", "revoked")
	if rec := h.auditRecord(requestID(t, m), "revoked"); !strings.Contains(rec, "not verified: no Cloudflare Access user has this email") {
		t.Errorf("revoked record: %s", rec)
	}
}

// A token without "Access: Audit Logs Read": every feature says it is
// unavailable, and the revocation works.
func TestContainmentWithoutReadPermission(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_WATCH_EVERY": "1s"})
	h.cf.AddUser(cftest.User{Email: "alice@example.com", Sessions: 2})
	h.cf.DenyRead()
	m := h.request("alice@example.com")
	id := requestID(t, m)
	if text := m.BlockText(); !strings.Contains(text, "preview unavailable") || !strings.Contains(text, "the token cannot read Access users") {
		t.Fatalf("the message does not say the preview is unavailable: %s", text)
	}
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
	h.waitAudit(id, "requested", "approved", "revoked")
	if rec := h.auditRecord(id, "revoked"); !strings.Contains(rec, "verification unavailable") {
		t.Errorf("revoked record: %s", rec)
	}
	if n := len(h.cf.Calls()); n != 1 {
		t.Errorf("%d revocations, want 1", n)
	}
	h.waitText(m, "return watch stopped")
}

// A login after the revocation: one relogin record and one post in the
// request's thread, however many times the watch looks; and after a
// restart, neither again, while a login that happened while revokebot was
// down is found.
func TestContainmentReloginOnceAcrossRestart(t *testing.T) {
	t.Parallel()
	h := startProcess(t, map[string]string{"REVOKEBOT_WATCH_EVERY": "1s"})
	for _, email := range []string{"alice@example.com", "bob@example.com"} {
		h.cf.AddUser(cftest.User{Email: email, Sessions: 1})
	}
	var ms []bottest.Message
	var ids []string
	for _, email := range []string{"alice@example.com", "bob@example.com"} {
		m := h.request(email)
		h.click(approver, m, "revoke_approve")
		h.waitMessageState(m, "Revoked")
		ms, ids = append(ms, m), append(ids, requestID(t, m))
	}
	h.cf.AddLogin(cftest.Login{Email: "alice@example.com", At: time.Now().Add(-time.Hour), AppDomain: "wiki.example.com", IP: "198.51.100.1", Allowed: true}) // before: not a return
	h.cf.AddLogin(cftest.Login{Email: "alice@example.com", At: time.Now(), AppDomain: "git.example.com", IP: "203.0.113.7", Allowed: true})
	h.slack.Eventually("alice's relogin record", 3*wait, func() bool { return len(h.auditRecords(ids[0], "relogin")) == 1 })
	rec := h.auditRecords(ids[0], "relogin")[0]
	for _, want := range []string{"git.example.com", "203.0.113.7", "identity-provider account is still active"} {
		if !strings.Contains(rec, want) {
			t.Errorf("relogin record lacks %q: %s", want, rec)
		}
	}
	h.slack.WaitReply(ms[0].Channel, ms[0].TS, func(r bottest.Message) bool { return strings.Contains(r.Text, "logged in again") }, wait)
	time.Sleep(3 * time.Second) // three more passes

	h.kill()
	h.cf.AddLogin(cftest.Login{Email: "bob@example.com", At: time.Now(), AppDomain: "mail.example.com", IP: "192.0.2.5", Allowed: true})
	h.spawn()
	h.slack.Eventually("bob's relogin, seen after the restart", 3*wait, func() bool { return len(h.auditRecords(ids[1], "relogin")) == 1 })
	time.Sleep(3 * time.Second)
	for i, id := range ids {
		if n := len(h.auditRecords(id, "relogin")); n != 1 {
			t.Errorf("request %d: %d relogin records, want 1", i, n)
		}
		replies := 0
		for _, r := range h.slack.Replies(ms[i].Channel, ms[i].TS) {
			if strings.Contains(r.Text, "logged in again") {
				replies++
			}
		}
		if replies != 1 {
			t.Errorf("request %d: %d thread posts about the return, want 1", i, replies)
		}
	}
	h.waitText(ms[0], "logged in again at")
}

// A bulk request with mixed results: one verified, one unknown (not
// verified), one whose sessions stay (pending, then unverified); every
// outcome is revoked.
func TestContainmentBulkMixed(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_VERIFY_TIMEOUT": "2s"})
	h.cf.AddUser(cftest.User{Email: "alice@example.com", Sessions: 2})
	h.cf.AddUser(cftest.User{Email: "carol@example.com", Sessions: 1, SessionsStay: true})
	m := h.request("alice@example.com nobody@example.com carol@example.com")
	id := requestID(t, m)
	text := m.BlockText()
	if !strings.Contains(text, "2 active sessions") || !strings.Contains(text, "no Cloudflare Access user has this email") {
		t.Fatalf("preview of the bulk request: %s", text)
	}
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "3 of 3 revoked")
	h.waitAudit(id, "requested", "approved", "revoked", "revoked", "revoked")
	h.slack.Eventually("carol's unverified record", 3*wait, func() bool { return len(h.auditRecords(id, "unverified")) == 1 })
	revoked := h.auditRecords(id, "revoked")
	if len(revoked) != 3 {
		t.Fatalf("%d revoked records, want 3", len(revoked))
	}
	wants := map[string]string{
		"alice@example.com":  "verified: no active session left",
		"nobody@example.com": "not verified: no Cloudflare Access user has this email",
		"carol@example.com":  "verification pending: 1 active session still listed",
	}
	for _, rec := range revoked {
		for email, want := range wants {
			if strings.Contains(rec, `target="`+email+`"`) && !strings.Contains(rec, want) {
				t.Errorf("%s's record lacks %q: %s", email, want, rec)
			}
		}
	}
	if rec := h.auditRecords(id, "unverified")[0]; !strings.Contains(rec, "carol@example.com") {
		t.Errorf("unverified record: %s", rec)
	}
}

// In zone mode Cloudflare has no user endpoints: the features are off, and
// the message and the record say so; the revocation works.
func TestContainmentOffInZoneMode(t *testing.T) {
	t.Parallel()
	ws := bottest.New(t)
	setPeople(ws)
	cf := cftest.NewServer(t, cftest.WithZoneID("zone-test"))
	env := baseEnv(ws, cf, filepath.Join(t.TempDir(), "revokebot.db"))
	env["CLOUDFLARE_ACCOUNT_ID"], env["CLOUDFLARE_ZONE_ID"] = "", cf.ZoneID()
	h := &harness{t: t, slack: ws, cf: cf, env: env}
	h.boot()
	m := h.request("alice@example.com")
	id := requestID(t, m)
	if text := m.BlockText(); !strings.Contains(text, "preview unavailable") || !strings.Contains(text, "zone mode") {
		t.Fatalf("the message does not say the preview is off in zone mode: %s", text)
	}
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
	h.waitAudit(id, "requested", "approved", "revoked")
	if rec := h.auditRecord(id, "revoked"); !strings.Contains(rec, "verification unavailable") || !strings.Contains(rec, "zone mode") {
		t.Errorf("revoked record: %s", rec)
	}
	if n := len(cf.Reads()); n != 0 {
		t.Errorf("%d reads sent in zone mode, want none", n)
	}
}
