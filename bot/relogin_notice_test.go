package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack"
)

// relogin records, as the watcher would, that request id's only target,
// revoked, logged in again: a relogin event, with the login on the
// target's watch.
func (f *courierFixture) relogin(t *testing.T, id string) approvals.Request {
	t.Helper()
	next, err := f.db.Update(context.Background(), id, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		now := time.Now().UTC()
		tg := &cur.Targets[0]
		tg.Check = approvals.Check{State: approvals.CheckVerified, At: now}
		tg.Watch = approvals.Watch{Until: now.Add(time.Hour), Checked: now,
			Relogin: approvals.Login{At: now, App: "<!channel> grafana", IP: "203.0.113.7"}}
		e := approvals.Event{Kind: approvals.EventRelogin, Target: tg.Email, At: now,
			Detail: "logged in again to <!channel> grafana from 203.0.113.7: their identity-provider account is still active; suspend it there"}
		e.Request, e.State = cur, cur.State()
		return cur, []approvals.Event{e}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// reloginNotices returns the replies in the thread of r's message that are
// notices.
func (f *courierFixture) reloginNotices(t *testing.T, r approvals.Request) []bottest.Message {
	t.Helper()
	var out []bottest.Message
	for _, m := range f.ws.Replies("C1", r.MessageTS) {
		if metadataOf(t, m).EventType == bot.MetadataNotice {
			out = append(out, m)
		}
	}
	return out
}

// checkReloginNotice checks the text of a relogin notice for a@example.com.
func checkReloginNotice(t *testing.T, text, head string) {
	t.Helper()
	if !strings.HasPrefix(text, head+"`a@example.com` logged in again after the revocation (at <!date^") ||
		!strings.HasSuffix(text, ", to `&lt;!channel&gt; grafana`, from `203.0.113.7`): their identity-provider account is still active. "+
			"Suspend it there, then revoke again.") {
		t.Errorf("relogin notice %q", text)
	}
	if strings.Contains(text, "<!channel>") {
		t.Errorf("relogin notice pings the channel: %q", text)
	}
}

// TestNoticeReloginInThreadOnce: a relogin is told once in the request's
// thread, mentioning its requester, not broadcast; a restart does not tell
// it again; it sends the requester no second outcome message; it has its
// audit record, and the request's message shows it.
func TestNoticeReloginInThreadOnce(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	r := f.record(t, approvals.EventApproved, approvals.EventRevoked)
	f.run(t)
	f.waitEmpty(t)
	r = f.relogin(t, r.ID)
	f.waitEmpty(t)
	f.restart(t)

	notices := f.reloginNotices(t, r)
	if len(notices) != 1 {
		t.Fatalf("%d notices in the request's thread, want 1", len(notices))
	}
	checkReloginNotice(t, notices[0].Text, ":rotating_light: <@U1>: ")
	if notices[0].Broadcast {
		t.Errorf("the relogin notice is broadcast to the channel")
	}
	ds, err := f.db.Undelivered(context.Background(), approvals.AuditRecord, -1)
	if err != nil || len(ds) != 0 {
		t.Fatalf("undelivered audit records %v, %v", ds, err)
	}
	if dms := f.ws.DirectMessages("U1"); len(dms) != 1 || strings.Contains(dms[0].Text, "logged in again") {
		t.Errorf("the requester's direct messages: %+v; want the outcome only", dms)
	}
	if got := f.audit(); len(got) != 4 || got[3] != "relogin "+r.ID {
		t.Errorf("audit %v", got)
	}
	if m := f.messageAt(t, "C1", r.MessageTS); !strings.Contains(m.BlockText(), ":rotating_light: logged in again at ") {
		t.Errorf("the request's message does not show the relogin:\n%s", m.BlockText())
	}
}

// TestNoticeReloginAdoptedAfterCrash: an attempt began and its reply is in
// the thread: it is found, not posted again.
func TestNoticeReloginAdoptedAfterCrash(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	f.courier.BotUserID = bottest.BotUserID
	ctx := context.Background()
	r := f.record(t, approvals.EventApproved, approvals.EventRevoked)
	r = f.relogin(t, r.ID)
	seq := f.noticeSeq(t, r.ID, approvals.EventRelogin)
	if _, err := f.db.BeginAttempt(ctx, seq, approvals.Notice); err != nil {
		t.Fatal(err)
	}
	api := slack.New(f.ws.BotToken(), slack.OptionAPIURL(f.ws.APIURL()))
	if _, _, err := api.PostMessage("C1", slack.MsgOptionTS(r.MessageTS), slack.MsgOptionText("relogin earlier", false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: bot.MetadataNotice,
			EventPayload: map[string]any{"request_id": r.ID, "seq": seq, "event": "relogin"}})); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	f.waitEmpty(t)
	f.restart(t)
	if notices := f.reloginNotices(t, r); len(notices) != 1 || notices[0].Text != "relogin earlier" {
		t.Fatalf("notices %+v, want only the earlier one", notices)
	}
	checkNoticeMetadata(t, f.reloginNotices(t, r)[0], r.ID, seq, approvals.EventRelogin)
}

// recordUnposted records a request of U1 for the approval channel C1 whose
// message is not posted yet, approved, revoked, then a relogin.
func (f *courierFixture) recordUnposted(t *testing.T) approvals.Request {
	t.Helper()
	r := newRequest("U1")
	r.Channel = "C1"
	if err := f.db.Create(context.Background(), r, approvals.Event{Kind: approvals.EventRequested, Request: r,
		State: approvals.StatePending, Actor: "U1", At: r.CreatedAt}, 0); err != nil {
		t.Fatal(err)
	}
	f.change(t, r.ID, approvals.EventApproved)
	f.change(t, r.ID, approvals.EventRevoked)
	return f.relogin(t, r.ID)
}

// TestNoticeReloginWaitsForTheMessage: a relogin recorded before the
// request's message is posted goes in its thread once it is.
func TestNoticeReloginWaitsForTheMessage(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	r := f.recordUnposted(t)
	// Slack holds the approval message a while: the notice lane finds
	// the relogin, with no message to reply to, again and again.
	release := f.ws.Hold("chat.postMessage")
	f.run(t)
	f.ws.Eventually("the approval message held", 5*time.Second, func() bool { return f.ws.HeldCalls("chat.postMessage") > 0 })
	time.Sleep(10 * f.courier.Poll)
	release()
	f.waitEmpty(t)
	got, err := f.db.Get(context.Background(), r.ID)
	if err != nil || got.MessageTS == "" {
		t.Fatalf("request message not recorded: %+v, %v", got, err)
	}
	notices := f.reloginNotices(t, got)
	if len(notices) != 1 {
		t.Fatalf("%d relogin notices in the thread, want 1", len(notices))
	}
	checkReloginNotice(t, notices[0].Text, ":rotating_light: <@U1>: ")
	for _, dm := range f.ws.DirectMessages("U1") {
		if strings.Contains(dm.Text, "logged in again") {
			t.Errorf("the relogin was also sent directly: %q", dm.Text)
		}
	}
}

// TestNoticeReloginWithoutMessage: a request whose message revokebot gave
// up on (the channel would not take it) has no thread: its requester is
// told directly, once.
func TestNoticeReloginWithoutMessage(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	ctx := context.Background()
	r := f.recordUnposted(t)
	// The message lane is done with every event of the request, and
	// posted nothing.
	draws, err := f.db.Undelivered(ctx, approvals.MessageUpdate, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range draws {
		if err := f.db.MarkDelivered(ctx, d.Seq, approvals.MessageUpdate); err != nil {
			t.Fatal(err)
		}
	}
	f.run(t)
	f.waitEmpty(t)
	f.restart(t)
	var relogins []bottest.Message
	for _, dm := range f.ws.DirectMessages("U1") {
		if strings.Contains(dm.Text, "logged in again") {
			relogins = append(relogins, dm)
		}
	}
	if len(relogins) != 1 {
		t.Fatalf("%d relogin direct messages, want 1: %+v", len(relogins), f.ws.DirectMessages("U1"))
	}
	checkReloginNotice(t, relogins[0].Text, ":rotating_light: Your request `"+r.ID+"`: ")
	if n := len(f.ws.Messages("C1")); n != 0 {
		t.Errorf("%d messages in the approval channel, want none", n)
	}
}

// TestNoticeReloginThreadGone: a thread Slack will not take a reply in
// (the channel closed to the bot) gives way to a direct message.
func TestNoticeReloginThreadGone(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	ctx := context.Background()
	r := f.record(t, approvals.EventApproved, approvals.EventRevoked)
	f.run(t)
	f.waitEmpty(t)
	f.stop()
	r = f.relogin(t, r.ID)
	// Its record and its redraw are done: the notice is the only post.
	for _, part := range []approvals.Part{approvals.AuditRecord, approvals.MessageUpdate} {
		if err := f.db.MarkDelivered(ctx, f.noticeSeq(t, r.ID, approvals.EventRelogin), part); err != nil {
			t.Fatal(err)
		}
	}
	f.ws.Fail("chat.postMessage", bottest.Failure{Error: "not_in_channel"})
	f.run(t)
	f.waitEmpty(t)
	if notices := f.reloginNotices(t, r); len(notices) != 0 {
		t.Errorf("%d notices in the thread", len(notices))
	}
	var relogins int
	for _, dm := range f.ws.DirectMessages("U1") {
		if strings.Contains(dm.Text, "logged in again") {
			relogins++
			checkReloginNotice(t, dm.Text, ":rotating_light: Your request `"+r.ID+"`: ")
		}
	}
	if relogins != 1 {
		t.Errorf("%d relogin direct messages, want 1", relogins)
	}
}
