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

// noticeSeq returns the seq of request id's event of kind whose notice is
// still to deliver.
func (f *courierFixture) noticeSeq(t *testing.T, id string, kind approvals.EventKind) int64 {
	t.Helper()
	ds, err := f.db.Undelivered(context.Background(), approvals.Notice, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Current.ID == id && d.Event.Kind == kind {
			return d.Seq
		}
	}
	t.Fatalf("no %s notice due for request %s", kind, id)
	return 0
}

// checkNoticeMetadata checks that m carries the metadata of the notice of
// event seq of request id.
func checkNoticeMetadata(t *testing.T, m bottest.Message, id string, seq int64, kind approvals.EventKind) {
	t.Helper()
	md := metadataOf(t, m)
	if md.EventType != bot.MetadataNotice || md.EventPayload["request_id"] != id ||
		md.EventPayload["seq"] != float64(seq) || md.EventPayload["event"] != string(kind) {
		t.Errorf("notice metadata %+v, want %s of request %s, seq %d", md, kind, id, seq)
	}
}

// restart stops the courier, starts it again and waits for the outbox to
// empty: what a restart would deliver again, it does.
func (f *courierFixture) restart(t *testing.T) {
	t.Helper()
	f.stop()
	f.run(t)
	f.waitEmpty(t)
	time.Sleep(3 * f.courier.Poll)
}

func TestNoticeEscalationInThread(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	f.courier.EscalationApprovers = approvals.Audience{Users: []string{"UESC", "<!channel>"}, Groups: []string{"SESC"}}
	r := f.record(t, approvals.EventEscalated)
	seq := f.noticeSeq(t, r.ID, approvals.EventEscalated)
	f.run(t)
	f.waitEmpty(t)
	f.restart(t)

	replies := f.ws.Replies("C1", r.MessageTS)
	if len(replies) != 1 {
		t.Fatalf("%d replies in the request's thread, want 1", len(replies))
	}
	text := replies[0].Text
	if !strings.HasPrefix(text, ":rotating_light: *Escalated:* <@UESC> <!subteam^SESC>, ") || strings.Contains(text, "<!channel>") ||
		!strings.Contains(text, "0 of 1 approvals") {
		t.Errorf("escalation reply %q", text)
	}
	if replies[0].Broadcast {
		t.Errorf("the escalation reply is broadcast to the channel")
	}
	checkNoticeMetadata(t, replies[0], r.ID, seq, approvals.EventEscalated)
	if n := len(f.ws.Messages("C1")); n != 1 {
		t.Errorf("%d messages in the channel, want only the request's", n)
	}
	if dms := f.ws.DirectMessages("U1"); len(dms) != 0 {
		t.Errorf("escalation sent the requester %d direct messages", len(dms))
	}
	// The request's message says it is escalated.
	if m := f.messageAt(t, "C1", r.MessageTS); !strings.Contains(m.BlockText(), "*Escalated*") {
		t.Errorf("the request's message does not show the escalation:\n%s", m.BlockText())
	}
}

// TestNoticeEscalationAdoptedAfterCrash: an attempt began, and the reply is
// in the thread (the crash came between Slack taking it and its mark): the
// reply is found, not posted again. An attempt that began but posted
// nothing is made again.
func TestNoticeEscalationAdoptedAfterCrash(t *testing.T) {
	t.Parallel()
	for _, posted := range []bool{true, false} {
		f := newCourierFixture(t)
		f.courier.BotUserID = bottest.BotUserID
		f.courier.EscalationApprovers = approvals.Audience{Users: []string{"UESC"}}
		ctx := context.Background()
		r := f.record(t, approvals.EventEscalated)
		seq := f.noticeSeq(t, r.ID, approvals.EventEscalated)
		if _, err := f.db.BeginAttempt(ctx, seq, approvals.Notice); err != nil {
			t.Fatal(err)
		}
		api := slack.New(f.ws.BotToken(), slack.OptionAPIURL(f.ws.APIURL()))
		meta := slack.SlackMetadata{EventType: bot.MetadataNotice,
			EventPayload: map[string]any{"request_id": r.ID, "seq": seq, "event": "escalated"}}
		// Chatter in the thread; and, in the channel, a post with the same
		// metadata that is not in the thread.
		for range 3 {
			if _, _, err := api.PostMessage("C1", slack.MsgOptionTS(r.MessageTS), slack.MsgOptionText("looking", false)); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := api.PostMessage("C1", slack.MsgOptionText("elsewhere", false), slack.MsgOptionMetadata(meta)); err != nil {
			t.Fatal(err)
		}
		if posted {
			if _, _, err := api.PostMessage("C1", slack.MsgOptionTS(r.MessageTS), slack.MsgOptionText("escalated earlier", false),
				slack.MsgOptionMetadata(meta)); err != nil {
				t.Fatal(err)
			}
		}
		before := len(f.ws.Calls("chat.postMessage"))
		f.run(t)
		f.waitEmpty(t)
		f.restart(t)

		var notices []bottest.Message
		for _, m := range f.ws.Replies("C1", r.MessageTS) {
			if metadataOf(t, m).EventType == bot.MetadataNotice {
				notices = append(notices, m)
			}
		}
		if len(notices) != 1 {
			t.Fatalf("posted earlier %t: %d escalation replies, want 1", posted, len(notices))
		}
		if posted != (notices[0].Text == "escalated earlier") {
			t.Errorf("posted earlier %t: the reply is %q", posted, notices[0].Text)
		}
		if len(f.ws.Calls("conversations.replies")) == 0 {
			t.Errorf("posted earlier %t: the thread was not read", posted)
		}
		var threadPosts int
		for _, c := range f.ws.Calls("chat.postMessage")[before:] {
			if c.Params["thread_ts"] != "" {
				threadPosts++
			}
		}
		if want := map[bool]int{true: 0, false: 1}[posted]; threadPosts != want {
			t.Errorf("posted earlier %t: %d posts in the thread, want %d", posted, threadPosts, want)
		}
	}
}

// TestNoticeEscalationWaitsForTheMessage: a request escalated before its
// approval message is posted gets its escalation reply once the message is
// there, in its thread.
func TestNoticeEscalationWaitsForTheMessage(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	r, _ := f.pending(t)
	f.change(t, r.ID, approvals.EventEscalated)
	f.ws.Fail("chat.postMessage", bottest.Failure{Error: "internal_error"}, bottest.Failure{Error: "internal_error"})
	f.run(t)
	f.waitEmpty(t)
	got, err := f.db.Get(context.Background(), r.ID)
	if err != nil || got.MessageTS == "" {
		t.Fatalf("request message not recorded: %+v, %v", got, err)
	}
	if replies := f.ws.Replies("C1", got.MessageTS); len(replies) != 1 || !strings.Contains(replies[0].Text, "*Escalated:*") {
		t.Fatalf("replies %+v", replies)
	}
}

// TestNoticeOutcomeToRequester: the end of a request is told to its
// requester directly, once: revoked, failed, denied (with the reason),
// expired. A cancellation (the requester's own doing) and an approval
// still being carried out are not.
func TestNoticeOutcomeToRequester(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	type outcome struct {
		kinds []approvals.EventKind
		want  string // "" for no message
	}
	cases := map[string]outcome{
		"UREVOKED":   {[]approvals.EventKind{approvals.EventApproved, approvals.EventRevoked}, ":white_check_mark: Your request `%s` to revoke `a@example.com` was approved by <@U2>. *1 of 1 revoked.*"},
		"UFAILED":    {[]approvals.EventKind{approvals.EventApproved, approvals.EventFailed}, ":x: Your request `%s` to revoke `a@example.com` was approved by <@U2>, but *0 of 1 revoked, 1 failed*."},
		"UDENIED":    {[]approvals.EventKind{approvals.EventDenied}, ":no_entry: Your request `%s` to revoke `a@example.com` was *denied* by <@U2>. Their reason: `not without a ticket`"},
		"UEXPIRED":   {[]approvals.EventKind{approvals.EventExpired}, "*expired*"},
		"UEXECUTING": {[]approvals.EventKind{approvals.EventApproved}, ""},
		"UPENDING":   {[]approvals.EventKind{approvals.EventEscalated}, ""},
	}
	ids := map[string]string{}
	for user, c := range cases {
		ids[user] = f.recordFor(t, user, c.kinds...).ID
	}
	cancelled := newRequest("UCANCEL")
	if err := f.db.Create(context.Background(), cancelled, approvals.Event{Kind: approvals.EventRequested, Request: cancelled,
		State: approvals.StatePending, Actor: "UCANCEL", At: cancelled.CreatedAt}, 0); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	f.waitEmpty(t)
	f.restart(t)
	for user, c := range cases {
		dms := f.ws.DirectMessages(user)
		if c.want == "" {
			if len(dms) != 0 {
				t.Errorf("%s: %d direct messages, want none: %q", user, len(dms), dms[0].Text)
			}
			continue
		}
		if len(dms) != 1 {
			t.Errorf("%s: %d direct messages, want 1", user, len(dms))
			continue
		}
		want := c.want
		if strings.Contains(want, "%s") {
			want = strings.ReplaceAll(want, "%s", ids[user])
		}
		if !strings.Contains(dms[0].Text, want) {
			t.Errorf("%s: direct message %q, want %q", user, dms[0].Text, want)
		}
		if md := metadataOf(t, dms[0]); md.EventType != bot.MetadataNotice || md.EventPayload["request_id"] != ids[user] {
			t.Errorf("%s: metadata %+v", user, md)
		}
	}
	if dms := f.ws.DirectMessages("UCANCEL"); len(dms) != 0 {
		t.Errorf("a cancelled request's requester got %d direct messages", len(dms))
	}
}

// TestNoticeOutcomeAdoptedAfterCrash: a direct message an earlier attempt
// sent is found in the conversation's history, not sent again.
func TestNoticeOutcomeAdoptedAfterCrash(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	f.courier.BotUserID = bottest.BotUserID
	ctx := context.Background()
	r := f.record(t, approvals.EventDenied)
	seq := f.noticeSeq(t, r.ID, approvals.EventDenied)
	if _, err := f.db.BeginAttempt(ctx, seq, approvals.Notice); err != nil {
		t.Fatal(err)
	}
	api := slack.New(f.ws.BotToken(), slack.OptionAPIURL(f.ws.APIURL()))
	if _, _, err := api.PostMessage("U1", slack.MsgOptionText("denied earlier", false), slack.MsgOptionMetadata(slack.SlackMetadata{
		EventType: bot.MetadataNotice, EventPayload: map[string]any{"request_id": r.ID, "seq": seq, "event": "denied"}})); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	f.waitEmpty(t)
	f.restart(t)
	if dms := f.ws.DirectMessages("U1"); len(dms) != 1 || dms[0].Text != "denied earlier" {
		t.Fatalf("direct messages %+v, want only the earlier one", dms)
	}
	if len(f.ws.Calls("conversations.history")) == 0 {
		t.Errorf("the conversation's history was not read")
	}
}

// TestNoticeFailureDoesNotBlockOthers: a requester who cannot be written to
// (a deactivated account) is given up on; the notices after theirs go out.
// A passing failure is retried, and the message sent once.
func TestNoticeFailureDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	f.ws.SetUser("UGONE", bottest.User{Name: "gone", Deleted: true})
	gone := f.recordFor(t, "UGONE", approvals.EventDenied)
	later := f.recordFor(t, "U1", approvals.EventDenied)
	// An answer without a channel (ok false, and no error) is retried.
	f.ws.Fail("conversations.open", bottest.Failure{})
	f.run(t)
	f.waitEmpty(t)
	if dms := f.ws.DirectMessages("U1"); len(dms) != 1 || !strings.Contains(dms[0].Text, later.ID) {
		t.Fatalf("the later requester's direct messages: %+v", dms)
	}
	if dms := f.ws.DirectMessages("UGONE"); len(dms) != 0 {
		t.Fatalf("a deactivated requester was written to: %+v", dms)
	}
	if got := f.audit(); len(got) != 4 || got[1] != "denied "+gone.ID || got[3] != "denied "+later.ID {
		t.Fatalf("audit %v", got)
	}

	// Slack fails for a while: the notice waits, then goes out once.
	f.ws.Fail("conversations.open", bottest.Failure{Error: "internal_error"}, bottest.Failure{Status: 503},
		bottest.Failure{RetryAfter: 1})
	third := f.recordFor(t, "U3", approvals.EventDenied)
	f.waitEmpty(t)
	f.restart(t)
	if dms := f.ws.DirectMessages("U3"); len(dms) != 1 || !strings.Contains(dms[0].Text, third.ID) {
		t.Fatalf("direct messages after a passing failure: %+v", dms)
	}
}
