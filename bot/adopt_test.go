package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack"
)

// pending stores a pending request whose approval message goes to C1 and
// is not posted yet, and returns it with its requested event's seq.
func (f *courierFixture) pending(t *testing.T) (approvals.Request, int64) {
	t.Helper()
	ctx := context.Background()
	r := newRequest("U1")
	r.Channel = "C1"
	if err := f.db.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r, State: approvals.StatePending, Actor: "U1", At: r.CreatedAt}, 0); err != nil {
		t.Fatal(err)
	}
	ds, err := f.db.Undelivered(ctx, approvals.AuditRecord, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Event.Request.ID == r.ID {
			return r, d.Seq
		}
	}
	t.Fatal("no requested event")
	return r, 0
}

// metadataOf decodes a message's metadata.
func metadataOf(t *testing.T, m bottest.Message) slack.SlackMetadata {
	t.Helper()
	var md slack.SlackMetadata
	if len(m.Metadata) > 0 {
		if err := json.Unmarshal(m.Metadata, &md); err != nil {
			t.Fatalf("metadata %s: %v", m.Metadata, err)
		}
	}
	return md
}

func TestCourierPostsCarryMetadata(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	r, seq := f.pending(t)
	f.run(t)
	f.waitEmpty(t)
	msgs := f.ws.Messages("C1")
	if len(msgs) != 1 {
		t.Fatalf("%d approval messages", len(msgs))
	}
	if md := metadataOf(t, msgs[0]); md.EventType != bot.MetadataRequest || md.EventPayload["request_id"] != r.ID {
		t.Fatalf("approval message metadata %+v", md)
	}
	if got, _ := f.db.Get(context.Background(), r.ID); got.MessageTS != msgs[0].TS {
		t.Fatalf("recorded message %q, posted %q", got.MessageTS, msgs[0].TS)
	}
	audits := f.ws.Messages(auditChannel)
	if len(audits) != 1 {
		t.Fatalf("%d audit records", len(audits))
	}
	md := metadataOf(t, audits[0])
	if md.EventType != bot.MetadataAudit || md.EventPayload["request_id"] != r.ID ||
		md.EventPayload["seq"] != float64(seq) || md.EventPayload["event"] != "requested" {
		t.Fatalf("audit record metadata %+v", md)
	}
}

// TestCourierAdoptsWhatAnEarlierAttemptPosted is the crash between Slack
// taking a post and revokebot recording it: the next attempt finds the post
// in the channel's history, by its metadata, and posts nothing again.
func TestCourierAdoptsWhatAnEarlierAttemptPosted(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	ctx := context.Background()
	r, seq := f.pending(t)
	// The earlier attempt: begun, posted, never recorded.
	if _, err := f.db.BeginAttempt(ctx, seq, approvals.AuditRecord); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.BeginPost(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	api := slack.New(f.ws.BotToken(), slack.OptionAPIURL(f.ws.APIURL()))
	_, auditTS, err := api.PostMessage(auditChannel, slack.MsgOptionText("requested request="+r.ID, false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: bot.MetadataAudit,
			EventPayload: map[string]any{"request_id": r.ID, "seq": seq, "event": "requested"}}))
	if err != nil {
		t.Fatal(err)
	}
	_, messageTS, err := api.PostMessage("C1", slack.MsgOptionText("request", false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: bot.MetadataRequest, EventPayload: map[string]any{"request_id": r.ID}}))
	if err != nil {
		t.Fatal(err)
	}
	// Busy channels: the posts are not on the first page of the history.
	for i := range 250 {
		f.ws.Forge(auditChannel, "U7", fmt.Sprintf("chatter %d", i), nil)
		f.ws.Forge("C1", "U7", fmt.Sprintf("chatter %d", i), nil)
	}
	f.run(t)
	f.waitEmpty(t)
	if n := len(f.ws.Calls("chat.postMessage")); n != 2 {
		t.Fatalf("%d posts, want only the 2 of the earlier attempt", n)
	}
	if len(f.ws.Calls("conversations.history")) < 4 {
		t.Fatalf("history read in %d pages; the posts were beyond the first", len(f.ws.Calls("conversations.history")))
	}
	got, _ := f.db.Get(ctx, r.ID)
	if got.MessageTS != messageTS {
		t.Fatalf("adopted message %q, want %q", got.MessageTS, messageTS)
	}
	if m := f.messageAt(t, "C1", messageTS); m.Updates != 1 || !strings.Contains(m.Text, "a@example.com") {
		t.Fatalf("adopted message not redrawn: %+v", m)
	}
	_ = auditTS
}

// messageAt returns the message ts in channel.
func (f *courierFixture) messageAt(t *testing.T, channel, ts string) bottest.Message {
	t.Helper()
	for _, m := range f.ws.Messages(channel) {
		if m.TS == ts {
			return m
		}
	}
	t.Fatalf("no message %s in %s", ts, channel)
	return bottest.Message{}
}

// TestCourierDoesNotAdoptAForgery: a message by someone else with the same
// metadata is not revokebot's post; the record is posted.
func TestCourierDoesNotAdoptAForgery(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	f.courier.BotUserID = bottest.BotUserID
	ctx := context.Background()
	r, seq := f.pending(t)
	if _, err := f.db.BeginAttempt(ctx, seq, approvals.AuditRecord); err != nil {
		t.Fatal(err)
	}
	forged, _ := json.Marshal(slack.SlackMetadata{EventType: bot.MetadataAudit,
		EventPayload: map[string]any{"request_id": r.ID, "seq": seq, "event": "requested"}})
	f.ws.Forge(auditChannel, "UMALLORY", "requested request="+r.ID, forged)
	f.run(t)
	f.waitEmpty(t)
	var ours int
	for _, m := range f.ws.Messages(auditChannel) {
		if m.User == bottest.BotUserID {
			ours++
		}
	}
	if ours != 1 {
		t.Fatalf("%d records posted by revokebot, want 1 (the forgery is not its record)", ours)
	}
}

// TestRefusalFloodIsFoldedAndDelaysNoRequest: 200 refused attempts by one
// person make two audit records (the first, then one with the count when
// the window ends), all 200 stay in the database, and a real request's
// records, recorded after the flood, go out before the folded record.
func TestRefusalFloodIsFoldedAndDelaysNoRequest(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	f.courier.RefusalWindow = 2 * time.Second
	ctx := context.Background()
	target := f.record(t)
	now := time.Now().UTC()
	for range 200 {
		if err := f.db.Append(ctx, approvals.Event{Kind: approvals.EventRefused, Request: target, Actor: "UFLOOD",
			Detail: "user is not an approver", At: now}); err != nil {
			t.Fatal(err)
		}
	}
	real := f.record(t, approvals.EventApproved, approvals.EventRevoked)
	f.run(t)
	f.ws.Eventually("the real request's records", 10*time.Second, func() bool {
		return strings.Contains(strings.Join(f.audit(), "\n"), "revoked "+real.ID)
	})
	var refusals []string
	for _, rec := range f.audit() {
		if strings.HasPrefix(rec, "refused") {
			refusals = append(refusals, rec)
		}
	}
	if len(refusals) != 1 {
		t.Fatalf("%d refusal records before the window ended, want 1: %v", len(refusals), refusals)
	}
	f.waitEmpty(t)
	var texts []string
	for _, m := range f.ws.Messages(auditChannel) {
		if strings.HasPrefix(m.Text, "refused") {
			texts = append(texts, m.Text)
		}
	}
	if len(texts) != 2 || !strings.HasPrefix(texts[1], "refused count=199 ") {
		t.Fatalf("refusal records:\n%s\nwant the first, then one folding the other 199", strings.Join(texts, "\n"))
	}
	if md := metadataOf(t, f.ws.Messages(auditChannel)[len(f.ws.Messages(auditChannel))-1]); md.EventPayload["count"] != float64(199) {
		t.Fatalf("folded record metadata %+v", md)
	}
}

// TestCourierPacesPosts: against a Slack that refuses more than 4 posts a
// second per channel, the paced courier earns no 429; unpaced, it does.
func TestCourierPacesPosts(t *testing.T) {
	t.Parallel()
	for _, paced := range []bool{true, false} {
		f := newCourierFixture(t)
		f.ws.LimitPosts(4)
		if paced {
			api := slack.New(f.ws.BotToken(), slack.OptionAPIURL(f.ws.APIURL()))
			f.courier = bot.NewCourier(api, f.db, auditChannel, bot.Pacing{PostEvery: 300 * time.Millisecond, PostBurst: 1}, nil)
			f.courier.MinBackoff, f.courier.Poll = time.Millisecond, 20*time.Millisecond
		}
		for range 4 {
			f.record(t, approvals.EventApproved)
		}
		f.run(t)
		f.waitEmpty(t)
		if n := f.ws.RateLimited(); paced && n != 0 || !paced && n == 0 {
			t.Fatalf("paced=%t: %d posts answered 429", paced, n)
		}
	}
}
