package app

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// Test users and channels.
const (
	requester    = "UREQUESTER" // may request, and is an approver too
	approver     = "UAPPROVER"  // approver by user ID
	groupie      = "UGROUPIE"   // approver through the SAPPROVERS group
	outsider     = "UOUTSIDER"  // nobody
	secChannel   = "CSECURITY"
	auditChannel = "CAUDIT"
	wait         = 10 * time.Second
)

// setPeople registers the test users with the fake Slack: the policy looks
// every requester and approver up with users.info, and refuses a user
// Slack does not know. All are full members of the workspace.
func setPeople(ws *bottest.Workspace) {
	ws.SetGroup("SAPPROVERS", groupie)
	for id, name := range map[string]string{requester: "requester", approver: "approver", groupie: "groupie", outsider: "outsider"} {
		ws.SetUser(id, bottest.User{Name: name, Email: name + "@corp.example", TeamID: bottest.DefaultTeamID})
	}
}

// syncBuffer is a bytes.Buffer safe for the bot's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a running revokebot wired to a fake Slack and a fake Cloudflare.
type harness struct {
	t      testing.TB
	slack  *bottest.Workspace
	cf     *cftest.Server
	env    map[string]string
	logs   *syncBuffer
	cancel context.CancelFunc // stops the bot, as SIGTERM would
	done   chan error         // run's result
	// proc is the bot's process when it runs in a child process (spawn).
	proc *exec.Cmd
}

func baseEnv(ws *bottest.Workspace, cf *cftest.Server, db string) map[string]string {
	return map[string]string{
		"SLACK_APP_TOKEN":         ws.AppToken(),
		"SLACK_BOT_TOKEN":         ws.BotToken(),
		"SLACK_API_URL":           ws.APIURL(),
		"CLOUDFLARE_API_TOKEN":    cf.APIToken(),
		"CLOUDFLARE_ACCOUNT_ID":   cf.AccountID(),
		"CLOUDFLARE_BASE_URL":     cf.URL(),
		"REVOKEBOT_AUDIT_CHANNEL": auditChannel,
		"REVOKEBOT_REQUESTERS":    requester,
		"REVOKEBOT_APPROVERS":     approver + ",SAPPROVERS," + requester,
		"REVOKEBOT_DATABASE":      db,
		"REVOKEBOT_LOG_LEVEL":     "debug",
		// The fake Slack has no rate limit: lift the pacing of posts.
		"SLACK_POST_RATE_LIMIT":   "1000/1s",
		"SLACK_UPDATE_RATE_LIMIT": "1000/1s",
		// Every refusal audited on its own, unless a test says otherwise.
		"REVOKEBOT_AUDIT_REFUSAL_WINDOW": "0",
	}
}

// start runs revokebot against fresh fakes; overrides change its environment
// (an empty value removes a variable).
func start(t testing.TB, overrides map[string]string) *harness {
	t.Helper()
	ws := bottest.New(t)
	setPeople(ws)
	cf := cftest.NewServer(t)
	env := baseEnv(ws, cf, filepath.Join(t.TempDir(), "revokebot.db"))
	for k, v := range overrides {
		env[k] = v
	}
	h := &harness{t: t, slack: ws, cf: cf, env: env}
	h.boot()
	return h
}

// boot starts revokebot with h.env and waits for its Socket Mode connection.
func (h *harness) boot() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done, h.logs = cancel, make(chan error, 1), &syncBuffer{}
	connected := h.slack.Connections()
	go func() {
		h.done <- Run(ctx, nil, func(k string) string { return h.env[k] }, &bytes.Buffer{}, h.logs)
	}()
	h.t.Cleanup(h.stop)
	h.slack.WaitConnected(connected+1, wait)
}

// stop shuts revokebot down as SIGTERM would and checks it exited cleanly
// without ever logging a secret.
func (h *harness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("run returned %v after shutdown", err)
		}
	case <-time.After(wait):
		h.t.Errorf("revokebot did not stop within %s", wait)
		if h.proc != nil {
			h.proc.Process.Kill()
		}
	}
	logs := h.logs.String()
	for _, secret := range []string{h.env["SLACK_APP_TOKEN"], h.env["SLACK_BOT_TOKEN"], h.env["CLOUDFLARE_API_TOKEN"]} {
		if secret != "" && strings.Contains(logs, secret) {
			h.t.Errorf("logs contain a secret")
		}
	}
}

// command types /revoke text as user and returns the ack.
func (h *harness) command(user, text string) bottest.Ack {
	h.t.Helper()
	return h.slack.WaitAck(h.slack.SlashCommand(user, secChannel, text), wait)
}

// request submits a valid request as the requester and returns its approval message.
func (h *harness) request(text string) bottest.Message {
	h.t.Helper()
	seen := map[string]bool{}
	for _, m := range h.slack.Messages(secChannel) {
		seen[m.TS] = true
	}
	if ack := h.command(requester, text); ack.AckText() != "" {
		h.t.Fatalf("command refused: %s", ack.AckText())
	}
	// The message is posted at once, then redrawn with the preview of its
	// targets: it is returned once it shows the preview, so that a test
	// sees it settled.
	m := h.slack.WaitMessage(secChannel, func(m bottest.Message) bool {
		return !seen[m.TS] && m.HasButton("revoke_approve") && previewed(m)
	}, wait)
	// The preview may have been in the first post, and its redraw still
	// to come: wait for the message's deliveries to be done.
	id := requestID(h.t, m)
	h.slack.Eventually("the approval message drawn", wait, func() bool { return h.messageDrawn(id) })
	return h.messageNow(m)
}

// messageDrawn reports whether request id's approval message has no
// redraw left to deliver.
func (h *harness) messageDrawn(id string) bool {
	h.t.Helper()
	db, _, err := openDatabase(context.Background(), h.env["REVOKEBOT_DATABASE"])
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	due, err := db.Undelivered(context.Background(), approvals.MessageUpdate, -1)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, d := range due {
		if d.Current.ID == id {
			return false
		}
	}
	return true
}

// previewed reports whether approval message m shows what Cloudflare knows
// of its targets (or why it cannot).
func previewed(m bottest.Message) bool {
	text := m.BlockText()
	return strings.Contains(text, "Cloudflare Access user") || strings.Contains(text, "preview unavailable") ||
		strings.Contains(text, "preview failed")
}

// click clicks a button and waits for the ack.
func (h *harness) click(user string, m bottest.Message, action string) {
	h.t.Helper()
	h.slack.WaitAck(h.slack.Click(user, m, action), wait)
}

// denyView clicks Deny on m as user, an approver, and returns the modal
// that asks for the reason (callback_id revoke_deny_reason).
func (h *harness) denyView(user string, m bottest.Message) bottest.View {
	h.t.Helper()
	opened := len(h.slack.OpenedViews())
	h.click(user, m, "revoke_deny")
	v := h.slack.WaitView(func(v bottest.View) bool {
		return v.User == user && v.CallbackID == "revoke_deny_reason"
	}, wait)
	if n := len(h.slack.OpenedViews()); n != opened+1 {
		h.t.Fatalf("%d views opened by one click on Deny, want 1", n-opened)
	}
	return v
}

// submitReason submits the deny modal v as user with reason, and returns the ack.
func (h *harness) submitReason(user string, v bottest.View, reason string) bottest.Ack {
	h.t.Helper()
	inputs := v.Inputs()
	if len(inputs) != 1 || inputs[0].Type != "plain_text_input" || inputs[0].Optional {
		h.t.Fatalf("deny modal inputs %+v, want one required plain_text_input", inputs)
	}
	values := map[string]map[string]string{inputs[0].BlockID: {inputs[0].ActionID: reason}}
	return h.slack.WaitAck(h.slack.SubmitView(user, v, values), wait)
}

// deny denies m as user, an approver, giving reason in the modal.
func (h *harness) deny(user string, m bottest.Message, reason string) {
	h.t.Helper()
	if ack := h.submitReason(user, h.denyView(user, m), reason); ack.ViewErrors() != nil {
		h.t.Fatalf("deny modal refused %q: %v", reason, ack.ViewErrors())
	}
}

// messageNow returns the approval message m as it stands now.
func (h *harness) messageNow(m bottest.Message) bottest.Message {
	for _, cur := range h.slack.Messages(m.Channel) {
		if cur.TS == m.TS {
			return cur
		}
	}
	h.t.Fatalf("message %s vanished", m.TS)
	return bottest.Message{}
}

// waitMessageState waits until the approval message m shows text and has no buttons.
func (h *harness) waitMessageState(m bottest.Message, text string) bottest.Message {
	h.t.Helper()
	return h.slack.WaitMessage(m.Channel, func(cur bottest.Message) bool {
		return cur.TS == m.TS && len(cur.Buttons()) == 0 && strings.Contains(cur.BlockText(), text)
	}, wait)
}

// auditEvents returns the event words of the audit records about request id, in order.
func (h *harness) auditEvents(id string) []string {
	return auditEvents(h.slack.Messages(auditChannel), id)
}

func auditEvents(msgs []bottest.Message, id string) []string {
	var out []string
	for _, m := range msgs {
		if !strings.Contains(m.Text, "request="+id+" ") {
			continue
		}
		word, _, _ := strings.Cut(strings.TrimPrefix(m.Text, "[DRY RUN] "), " ")
		out = append(out, word)
	}
	return out
}

// waitAudit waits until the audit records of request id are exactly want.
func (h *harness) waitAudit(id string, want ...string) {
	h.t.Helper()
	h.slack.Eventually("audit events "+strings.Join(want, ", "), wait, func() bool {
		return strings.Join(h.auditEvents(id), " ") == strings.Join(want, " ")
	})
}

// auditRecord returns the audit text of id's event, or fails.
func (h *harness) auditRecord(id, event string) string {
	h.t.Helper()
	for _, m := range h.slack.Messages(auditChannel) {
		if strings.Contains(m.Text, "request="+id+" ") && strings.HasPrefix(strings.TrimPrefix(m.Text, "[DRY RUN] "), event+" ") {
			return m.Text
		}
	}
	h.t.Fatalf("no %s audit record for %s; audit: %v", event, id, h.slack.Messages(auditChannel))
	return ""
}

func requestID(t testing.TB, m bottest.Message) string {
	t.Helper()
	for _, b := range m.Buttons() {
		if b.ActionID == "revoke_approve" {
			return b.Value
		}
	}
	t.Fatalf("message has no approve button")
	return ""
}

// markExecuting moves request id to executing in the database at path, with
// its approved event, as a crash right after approval would leave it.
func markExecuting(t testing.TB, path, id, by string) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := db.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.State() != approvals.StatePending {
		t.Fatalf("request %s is %s, not pending", id, r.State())
	}
	if _, err := db.Update(context.Background(), id, approveAll(by, time.Now().UTC())); err != nil {
		t.Fatal(err)
	}
}

// approveAll is the Store.Update that records by's approval of a pending
// request needing one, as the service would: the request is then executing.
func approveAll(by string, at time.Time) approvals.UpdateFunc {
	return func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		next := cur.Clone()
		next.Reviews = append(next.Reviews, approvals.Review{By: by, Decision: approvals.Approve, At: at})
		e := approvals.Event{Kind: approvals.EventApproved, Request: next, State: next.State(), Actor: by, At: at,
			Detail: fmt.Sprintf("%d of %d", len(next.Approvals()), next.RequiredApprovals())}
		return next, []approvals.Event{e}, nil
	}
}
