package bot

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack"
)

const verifyChannel = "CAUDIT"

// verifyFixture is a real store whose records a real Courier delivered to
// a fake Slack.
type verifyFixture struct {
	path string
	db   *sqlite.DB
	ws   *bottest.Workspace
	api  *slack.Client
}

func newVerifyFixture(t *testing.T) *verifyFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ws := bottest.New(t)
	return &verifyFixture{path: path, db: db, ws: ws, api: slack.New(ws.BotToken(), slack.OptionAPIURL(ws.APIURL()))}
}

// deliver runs a Courier folding refusals within window until the outbox
// is empty (refusals still folding go out at once, as at shutdown).
func (f *verifyFixture) deliver(t *testing.T, window time.Duration) {
	t.Helper()
	c := NewCourier(f.api, f.db, verifyChannel, Unpaced, slog.New(slog.DiscardHandler))
	c.MinBackoff, c.MaxBackoff, c.Poll = time.Millisecond, 20*time.Millisecond, 20*time.Millisecond
	c.RefusalWindow = window
	c.BotUserID = bottest.BotUserID
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	flush, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := c.Flush(flush); err != nil {
		t.Fatal(err)
	}
}

// request records a request of U1 for a@example.com, at at, and moves it
// through kinds as the service would (approved by U2, revoked, a refused
// click by U9).
func (f *verifyFixture) request(t *testing.T, at time.Time, kinds ...approvals.EventKind) approvals.Request {
	t.Helper()
	ctx := context.Background()
	r := approvals.Request{ID: uuid.NewString(), Targets: []approvals.Target{{Email: "a@example.com", State: approvals.TargetWaiting}},
		Requester: "U1", Reason: "laptop <stolen> & gone", Required: 1, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	if err := f.db.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r, State: approvals.StatePending, Actor: "U1", At: at}, 0); err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds {
		r = f.change(t, r, k, at)
	}
	return r
}

// change records event k of r at at.
func (f *verifyFixture) change(t *testing.T, r approvals.Request, k approvals.EventKind, at time.Time) approvals.Request {
	t.Helper()
	ctx := context.Background()
	if k == approvals.EventRefused {
		if err := f.db.Append(ctx, approvals.Event{Kind: k, Request: r, State: r.State(), Actor: "U9", Detail: "user is not an approver", At: at}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	next, err := f.db.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		e := approvals.Event{Kind: k, At: at}
		switch k {
		case approvals.EventApproved:
			cur.Reviews = append(cur.Reviews, approvals.Review{By: "U2", Decision: approvals.Approve, At: at})
			e.Actor = "U2"
		case approvals.EventRevoked:
			tg := &cur.Targets[0]
			tg.State, tg.Outcome, tg.FinishedAt = approvals.TargetRevoked, "revoked", at
			e.Target, e.Detail = tg.Email, "sessions revoked"
			cur.FinishedAt = at
		default:
			t.Fatalf("change: event %s", k)
		}
		e.Request, e.State = cur, cur.State()
		return cur, []approvals.Event{e}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// refusals records n refused attempts by actor on r.
func (f *verifyFixture) refusals(t *testing.T, r approvals.Request, actor string, n int) {
	t.Helper()
	for range n {
		if err := f.db.Append(context.Background(), approvals.Event{Kind: approvals.EventRefused, Request: r, State: r.State(),
			Actor: actor, Detail: "user is not an approver", At: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *verifyFixture) verify(t *testing.T, since time.Time, limits verifyLimits) AuditReport {
	t.Helper()
	rep, err := verifyAudit(context.Background(), f.api, f.db, verifyChannel, bottest.BotUserID, since, limits)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range rep.Findings {
		t.Logf("%s record %d request %s at %s: %s", x.Kind, x.Seq, x.RequestID, x.At.Format(time.RFC3339), x.Explanation)
	}
	return rep
}

// link returns the stored event of r of kind k.
func (f *verifyFixture) link(t *testing.T, r approvals.Request, k approvals.EventKind) approvals.Link {
	t.Helper()
	links, err := f.db.Chain(context.Background(), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Event.Request.ID == r.ID && l.Event.Kind == k {
			return l
		}
	}
	t.Fatalf("no %s event of %s", k, r.ID)
	return approvals.Link{}
}

// record returns the message whose metadata names record seq.
func (f *verifyFixture) record(t *testing.T, seq int64) bottest.Message {
	t.Helper()
	for _, m := range f.ws.Messages(verifyChannel) {
		var md slack.SlackMetadata
		if json.Unmarshal(m.Metadata, &md) == nil && md.EventType == MetadataAudit && md.EventPayload["seq"] == float64(seq) {
			return m
		}
	}
	t.Fatalf("no message of record %d", seq)
	return bottest.Message{}
}

// only checks that rep has exactly one finding, of kind k about record
// seq, and returns it.
func only(t *testing.T, rep AuditReport, k FindingKind, seq int64) Finding {
	t.Helper()
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != k || rep.Findings[0].Seq != seq {
		t.Fatalf("findings %+v, want one %s at record %d", rep.Findings, k, seq)
	}
	return rep.Findings[0]
}

// history makes a history of every kind of record: requests approved and
// revoked, a refused click audited alone, a flood of refusals folded into
// one record, a request that became a dry run when approved after its
// first record went out, people talking, and an event not delivered yet.
// It has 16 events, 15 of them delivered in 12 records, and 14 messages.
func history(t *testing.T) (*verifyFixture, approvals.Request) {
	t.Helper()
	f := newVerifyFixture(t)
	now := time.Now().UTC()
	r := f.request(t, now, approvals.EventRefused, approvals.EventApproved, approvals.EventRevoked)
	f.request(t, now, approvals.EventApproved)
	dry := f.request(t, now)
	f.refusals(t, r, "UFLOOD", 5)
	f.refusals(t, r, "UTWICE", 2) // the second folded alone: "refused count=1"
	f.deliver(t, time.Hour)
	if _, err := f.db.Update(context.Background(), dry.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.DryRun = true
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "U2", Decision: approvals.Approve, At: now})
		return cur, []approvals.Event{{Kind: approvals.EventApproved, Request: cur, State: cur.State(), Actor: "U2", At: now}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	f.deliver(t, time.Hour)
	f.ws.Forge(verifyChannel, "UHUMAN", "approved the budget request? request=later", nil)
	f.ws.Forge(verifyChannel, "UHUMAN", "looks fine to me", nil)
	f.request(t, now) // recorded, not delivered yet
	return f, r
}

func TestVerifyAuditCleanHistory(t *testing.T) {
	t.Parallel()
	f, _ := history(t)
	var folded, dry int
	for _, m := range f.ws.Messages(verifyChannel) {
		if strings.HasPrefix(m.Text, "refused count=4 ") || strings.HasPrefix(m.Text, "refused count=1 ") {
			folded++
		}
		if strings.HasPrefix(m.Text, "[DRY RUN] approved ") {
			dry++
		}
	}
	if folded != 2 || dry != 1 {
		t.Fatalf("history has %d folded refusal records and %d dry-run approvals, want 2 and 1", folded, dry)
	}
	rep := f.verify(t, time.Time{}, defaultVerifyLimits)
	if !rep.Matches() || rep.Records != 15 || rep.Chained != 16 || rep.Messages != 14 || rep.Pages != 1 {
		t.Fatalf("report %+v, want a match of 15 records (of 16 events) against 14 messages", rep)
	}
}

func TestVerifyAuditDeletedRecord(t *testing.T) {
	t.Parallel()
	f, r := history(t)
	approved := f.link(t, r, approvals.EventApproved)
	f.ws.DeleteMessage(verifyChannel, f.record(t, approved.Seq).TS)
	rep := f.verify(t, time.Time{}, defaultVerifyLimits)
	got := only(t, rep, FindingMissing, approved.Seq)
	if got.RequestID != r.ID || !got.At.Equal(approved.Event.At) || !strings.Contains(got.Explanation, "approved record") {
		t.Fatalf("finding %+v", got)
	}
}

func TestVerifyAuditDeletedFoldedRecord(t *testing.T) {
	t.Parallel()
	f, _ := history(t)
	var folded bottest.Message
	for _, m := range f.ws.Messages(verifyChannel) {
		if strings.HasPrefix(m.Text, "refused count=4 ") {
			folded = m
		}
	}
	f.ws.DeleteMessage(verifyChannel, folded.TS)
	rep := f.verify(t, time.Time{}, defaultVerifyLimits)
	if len(rep.Findings) != 4 || rep.Count(FindingMissing) != 4 {
		t.Fatalf("findings %+v, want the 4 refusals it folded missing", rep.Findings)
	}
}

func TestVerifyAuditEditedRecord(t *testing.T) {
	t.Parallel()
	f, r := history(t)
	revoked := f.link(t, r, approvals.EventRevoked)
	m := f.record(t, revoked.Seq)
	if !f.ws.EditText(verifyChannel, m.TS, strings.Replace(m.Text, "target=", "target=b@example.com was ", 1)) {
		t.Fatal("no message to edit")
	}
	rep := f.verify(t, time.Time{}, defaultVerifyLimits)
	got := only(t, rep, FindingEdited, revoked.Seq)
	if got.TS != m.TS || got.RequestID != r.ID || !strings.Contains(got.Explanation, "b@example.com") {
		t.Fatalf("finding %+v", got)
	}
}

// A record whose metadata no longer carries the store's hash was changed
// with revokebot's token.
func TestVerifyAuditEditedMetadata(t *testing.T) {
	t.Parallel()
	f, r := history(t)
	requested := f.link(t, r, approvals.EventRequested)
	m := f.record(t, requested.Seq)
	f.ws.DeleteMessage(verifyChannel, m.TS)
	f.ws.Forge(verifyChannel, bottest.BotUserID, m.Text, json.RawMessage(strings.Replace(string(m.Metadata), requested.Hash, strings.Repeat("0", 64), 1)))
	rep := f.verify(t, time.Time{}, defaultVerifyLimits)
	if got := only(t, rep, FindingEdited, requested.Seq); !strings.Contains(got.Explanation, "hash 000000000000…") {
		t.Fatalf("finding %+v", got)
	}
}

// Slack may make links of the addresses in a record: that is no edit.
func TestVerifyAuditSlackLinks(t *testing.T) {
	t.Parallel()
	f, r := history(t)
	m := f.record(t, f.link(t, r, approvals.EventRevoked).Seq)
	f.ws.EditText(verifyChannel, m.TS, strings.Replace(m.Text, "a@example.com", "<mailto:a@example.com|a@example.com>", 1))
	if rep := f.verify(t, time.Time{}, defaultVerifyLimits); !rep.Matches() {
		t.Fatalf("findings %+v, want none", rep.Findings)
	}
	f.ws.EditText(verifyChannel, m.TS, strings.Replace(m.Text, "a@example.com", "<mailto:b@example.com|b@example.com>", 1))
	only(t, f.verify(t, time.Time{}, defaultVerifyLimits), FindingEdited, f.link(t, r, approvals.EventRevoked).Seq)
}

func TestVerifyAuditEditedFoldedRecord(t *testing.T) {
	t.Parallel()
	f, _ := history(t)
	for _, m := range f.ws.Messages(verifyChannel) {
		if strings.HasPrefix(m.Text, "refused count=4 ") {
			f.ws.EditText(verifyChannel, m.TS, strings.Replace(m.Text, "count=4", "count=1", 1))
		}
	}
	rep := f.verify(t, time.Time{}, defaultVerifyLimits)
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != FindingEdited || !strings.Contains(rep.Findings[0].Explanation, `"1 `) {
		t.Fatalf("findings %+v, want the folded record edited", rep.Findings)
	}
}

func TestVerifyAuditForgedRecords(t *testing.T) {
	t.Parallel()
	f, r := history(t)
	approved := f.link(t, r, approvals.EventApproved)
	real := f.record(t, approved.Seq)
	// A look-alike with the real record's metadata, posted by someone else;
	// and one without metadata naming a record the store does not have.
	f.ws.Forge(verifyChannel, "UMALLORY", strings.Replace(real.Text, "<@U2>", "<@UMALLORY>", 1), real.Metadata)
	f.ws.Forge(verifyChannel, "UMALLORY", fmt.Sprintf("revoked request=%s record=999 target=\"ceo@example.com\"", r.ID), nil)
	// Posted with revokebot's own token: a record number the store does
	// not have, and a record of the store without metadata.
	f.ws.Forge(verifyChannel, bottest.BotUserID, "approved request="+r.ID+" record=1000", json.RawMessage(
		fmt.Sprintf(`{"event_type":"revokebot_audit","event_payload":{"request_id":%q,"seq":1000,"event":"approved"}}`, r.ID)))
	f.ws.Forge(verifyChannel, bottest.BotUserID, strings.Replace(real.Text, "<@U2>", "<@UMALLORY>", 1), nil)
	rep := f.verify(t, time.Time{}, defaultVerifyLimits)
	if len(rep.Findings) != 4 || rep.Count(FindingForged) != 4 {
		t.Fatalf("findings %+v, want four forged", rep.Findings)
	}
	for i, want := range []struct {
		seq  int64
		text string
	}{{approved.Seq, "posted by UMALLORY"}, {approved.Seq, "no revokebot_audit metadata"}, {999, "posted by UMALLORY"}, {1000, "database does not have"}} {
		if got := rep.Findings[i]; got.Seq != want.seq || got.RequestID != r.ID || got.TS == "" || !strings.Contains(got.Explanation, want.text) {
			t.Errorf("finding %d: %+v, want record %d, %q", i, got, want.seq, want.text)
		}
	}
}

func TestVerifyAuditStoreAltered(t *testing.T) {
	t.Parallel()
	f, r := history(t)
	revoked := f.link(t, r, approvals.EventRevoked)
	db, err := sql.Open("sqlite", f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE events SET detail = 'nothing happened' WHERE seq = ?`, revoked.Seq); err != nil {
		t.Fatal(err)
	}
	rep := f.verify(t, time.Time{}, defaultVerifyLimits)
	got := only(t, rep, FindingChain, revoked.Seq)
	if got.RequestID != r.ID || !strings.Contains(got.Explanation, "channel's copy") {
		t.Fatalf("finding %+v, want it to point at the channel's copy", got)
	}
}

func TestVerifyAuditSince(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	old := f.request(t, time.Now().UTC().Add(-72*time.Hour), approvals.EventApproved)
	f.request(t, time.Now().UTC(), approvals.EventApproved)
	f.deliver(t, 0)
	f.ws.DeleteMessage(verifyChannel, f.record(t, f.link(t, old, approvals.EventApproved).Seq).TS)
	if rep := f.verify(t, time.Now().Add(-24*time.Hour), defaultVerifyLimits); !rep.Matches() || rep.Records != 2 {
		t.Fatalf("report %+v, want the 2 records of the last day to match", rep)
	}
	rep := f.verify(t, time.Time{}, defaultVerifyLimits)
	only(t, rep, FindingMissing, f.link(t, old, approvals.EventApproved).Seq)
}

// TestVerifyAuditPages: a history longer than a page is read page by page,
// through a rate limit; and the reading stops at its bound, saying so,
// without reporting the records it did not reach as missing.
func TestVerifyAuditPages(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	start := time.Now().UTC().Add(-time.Hour)
	for i := range 70 {
		f.request(t, start.Add(time.Duration(i)*time.Minute), approvals.EventApproved, approvals.EventRevoked)
	}
	f.deliver(t, 0)
	f.ws.Fail("conversations.history", bottest.Failure{RetryAfter: 1})
	rep := f.verify(t, time.Time{}, defaultVerifyLimits)
	if !rep.Matches() || rep.Records != 210 || rep.Messages != 210 || rep.Pages != 2 {
		t.Fatalf("report %+v, want 210 records matched over 2 pages", rep)
	}

	limits := defaultVerifyLimits
	limits.pageSize, limits.maxPages = 20, 3
	f.ws.DeleteMessage(verifyChannel, f.ws.Messages(verifyChannel)[0].TS) // the oldest record, not reached
	rep = f.verify(t, time.Time{}, limits)
	if rep.Matches() || len(rep.Findings) != 0 || rep.Incomplete == "" || rep.Pages != 3 || rep.Messages != 60 || rep.Unchecked == 0 || rep.Records+rep.Unchecked != 210 {
		t.Fatalf("report %+v, want 3 pages read, the rest not checked", rep)
	}
	limits.maxPages = 11
	rep = f.verify(t, time.Time{}, limits)
	only(t, rep, FindingMissing, 1)
}

func TestVerifyAuditSlackErrors(t *testing.T) {
	t.Parallel()
	f, _ := history(t)
	f.ws.Fail("conversations.history", bottest.Failure{Error: "not_in_channel"})
	_, err := verifyAudit(context.Background(), f.api, f.db, verifyChannel, bottest.BotUserID, time.Time{}, defaultVerifyLimits)
	var se slack.SlackErrorResponse
	if err == nil || !strings.Contains(err.Error(), "conversations.history") || !errors.As(err, &se) || se.Err != "not_in_channel" {
		t.Fatalf("err %v, want Slack's not_in_channel", err)
	}
}

// A forged self-check record, checked or tampered, posted without metadata
// by someone else, is found like any other forged record.
func TestVerifyAuditForgedSelfCheckRecords(t *testing.T) {
	t.Parallel()
	f, _ := history(t)
	f.ws.Forge(verifyChannel, "UMALLORY", "checked record=99 actor=revokebot `detail=\"12 records against 12 messages: everything matches\"` at=2026-11-30T09:00:00Z chain=0123456789ab", nil)
	f.ws.Forge(verifyChannel, "UMALLORY", "tampered record=100 actor=revokebot `detail=\"1 problem\"` at=2026-11-30T09:00:00Z", nil)
	rep := f.verify(t, time.Time{}, defaultVerifyLimits)
	if rep.Count(FindingForged) != 2 || len(rep.Findings) != 2 {
		t.Fatalf("findings %+v, want the two forged self-check records", rep.Findings)
	}
}
