package bot_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack"
)

const auditChannel = "CAUDIT"

// courierFixture is a Courier on a real database, talking to a fake Slack.
type courierFixture struct {
	db      *sqlite.DB
	ws      *bottest.Workspace
	courier *bot.Courier
	stop    func()
}

func newCourierFixture(t *testing.T) *courierFixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ws := bottest.New(t)
	api := slack.New(ws.BotToken(), slack.OptionAPIURL(ws.APIURL()))
	c := bot.NewCourier(api, db, auditChannel, bot.Unpaced, nil)
	c.MinBackoff, c.MaxBackoff, c.Poll = time.Millisecond, 20*time.Millisecond, 20*time.Millisecond
	c.RefusalWindow = 0
	return &courierFixture{db: db, ws: ws, courier: c}
}

func (f *courierFixture) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.courier.Run(ctx) }()
	f.stop = func() { cancel(); <-done }
	t.Cleanup(f.stop)
}

// record stores a request of U1 with a message in channel C1 and moves it
// through the given events, as the service would.
func (f *courierFixture) record(t *testing.T, kinds ...approvals.EventKind) approvals.Request {
	t.Helper()
	return f.recordFor(t, "U1", kinds...)
}

// newRequest is a pending request of requester for a@example.com.
func newRequest(requester string) approvals.Request {
	now := time.Now().UTC()
	return approvals.Request{ID: uuid.NewString(),
		Targets:   []approvals.Target{{Email: "a@example.com", State: approvals.TargetWaiting}},
		Requester: requester, Required: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// recordFor is record with another requester.
func (f *courierFixture) recordFor(t *testing.T, requester string, kinds ...approvals.EventKind) approvals.Request {
	t.Helper()
	ctx := context.Background()
	r := newRequest(requester)
	now := r.CreatedAt
	if err := f.db.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r, State: approvals.StatePending, Actor: requester, At: now}, 0); err != nil {
		t.Fatal(err)
	}
	_, ts, err := slack.New(f.ws.BotToken(), slack.OptionAPIURL(f.ws.APIURL())).PostMessage("C1", slack.MsgOptionText("request", false))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.SetMessage(ctx, r.ID, "C1", ts); err != nil {
		t.Fatal(err)
	}
	r.Channel, r.MessageTS = "C1", ts
	for _, k := range kinds {
		if k == approvals.EventRefused {
			if err := f.db.Append(ctx, approvals.Event{Kind: k, Request: r, State: r.State(), Actor: "U9", At: now}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		r = f.change(t, r.ID, k)
	}
	return r
}

// change records event k of request id, changing the request as the
// service would: approved by U2, denied by U2, the target revoked or
// failed, escalated, expired.
func (f *courierFixture) change(t *testing.T, id string, k approvals.EventKind) approvals.Request {
	t.Helper()
	next, err := f.db.Update(context.Background(), id, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		now := time.Now().UTC()
		e := approvals.Event{Kind: k, At: now}
		switch k {
		case approvals.EventApproved:
			cur.Reviews = append(cur.Reviews, approvals.Review{By: "U2", Decision: approvals.Approve, At: now})
			e.Actor = "U2"
		case approvals.EventDenied:
			cur.Reviews = append(cur.Reviews, approvals.Review{By: "U2", Decision: approvals.Deny, Reason: "not without a ticket", At: now})
			e.Actor, e.Detail = "U2", "not without a ticket"
		case approvals.EventRevoked, approvals.EventFailed:
			tg := &cur.Targets[0]
			tg.State, tg.Outcome, tg.FinishedAt = approvals.TargetRevoked, "revoked", now
			if k == approvals.EventFailed {
				tg.State, tg.Outcome = approvals.TargetFailed, "cloudflare: 500"
			}
			e.Target, e.Detail = tg.Email, tg.Outcome
		case approvals.EventEscalated:
			cur.EscalatedAt = now
		case approvals.EventExpired:
			cur.ExpiredAt = now
		default:
			t.Fatalf("change: event %s", k)
		}
		if cur.State().Final() {
			cur.FinishedAt = now
		}
		e.Request, e.State = cur, cur.State()
		return cur, []approvals.Event{e}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return next
}

func (f *courierFixture) waitEmpty(t *testing.T) {
	t.Helper()
	f.ws.Eventually("outbox empty", 10*time.Second, func() bool {
		n, err := f.db.Backlog(context.Background())
		return err == nil && n == 0
	})
}

// audit returns "event request" of each audit record, in posting order.
func (f *courierFixture) audit() []string {
	var out []string
	for _, m := range f.ws.Messages(auditChannel) {
		word, rest, _ := strings.Cut(m.Text, " request=")
		id, _, _ := strings.Cut(rest, " ")
		out = append(out, word+" "+id)
	}
	return out
}

func TestCourierDeliversInOrderThroughOutage(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	var want, wantRefused []string
	for range 3 {
		r := f.record(t, approvals.EventRefused, approvals.EventApproved, approvals.EventRevoked)
		for _, k := range []string{"requested", "approved", "revoked"} {
			want = append(want, k+" "+r.ID)
		}
		wantRefused = append(wantRefused, "refused "+r.ID)
	}
	// Slack fails in every way for a while, longer than any retry budget of
	// a single call, then recovers.
	var failures []bottest.Failure
	for i := range 12 {
		failures = append(failures, []bottest.Failure{{Error: "internal_error"}, {Status: 503}, {Error: "not_in_channel"}}[i%3])
	}
	f.ws.Fail("chat.postMessage", failures...)
	f.ws.Fail("chat.update", bottest.Failure{Status: 500}, bottest.Failure{Error: "service_unavailable"})
	f.run(t)
	f.waitEmpty(t)
	// Refusals are audited in a lane of their own: the other records keep
	// their order, and every refusal is there.
	var got, refused []string
	for _, rec := range f.audit() {
		if strings.HasPrefix(rec, "refused ") {
			refused = append(refused, rec)
		} else {
			got = append(got, rec)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(refused) == 0 || len(refused) > len(wantRefused) {
		t.Fatalf("refusal records %v, want the %d refusals in at most %[2]d records", refused, len(wantRefused))
	}
	// Every request message shows its final state.
	for _, m := range f.ws.Messages("C1") {
		if !strings.Contains(m.Text, "revoked") {
			t.Errorf("message %s: %q", m.TS, m.Text)
		}
	}
}

func TestCourierHonoursRateLimit(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	f.record(t)
	f.ws.Fail("chat.postMessage", bottest.Failure{RetryAfter: 1})
	f.run(t)
	f.waitEmpty(t)
	calls := f.ws.Calls("chat.postMessage")
	var audits []bottest.Call
	for _, c := range calls {
		if c.Params["channel"] == auditChannel {
			audits = append(audits, c)
		}
	}
	if len(audits) != 2 {
		t.Fatalf("%d audit posts, want 2", len(audits))
	}
	if gap := audits[1].At.Sub(audits[0].At); gap < time.Second {
		t.Fatalf("retried after %v, before Slack's Retry-After of 1s", gap)
	}
}

func TestCourierMessageFailureDoesNotHoldAudit(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	release := f.ws.Hold("chat.update")
	r := f.record(t, approvals.EventApproved, approvals.EventRevoked)
	f.run(t)
	f.ws.Eventually("audit records while chat.update hangs", 10*time.Second, func() bool { return len(f.audit()) == 3 })
	release()
	f.waitEmpty(t)

	// A message Slack will never update is given up on; the audit goes on.
	// The courier is stopped while the request is recorded: running, it
	// could draw the message between the request's two events, and the
	// second draw would find the scripted failure used up.
	f.stop()
	f.ws.Fail("chat.update", bottest.Failure{Error: "message_not_found"})
	updates := len(f.ws.Calls("chat.update"))
	gone := f.record(t, approvals.EventDenied)
	f.run(t)
	f.waitEmpty(t)
	if n := len(f.ws.Calls("chat.update")) - updates; n != 1 {
		t.Fatalf("%d chat.update calls for a message that is gone, want 1 (then give up)", n)
	}
	if got := f.audit(); len(got) != 5 || got[0] != "requested "+r.ID || got[4] != "denied "+gone.ID {
		t.Fatalf("audit %v", got)
	}
}

func TestCourierRedrawsEachMessageOncePerBatch(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	f.record(t, approvals.EventApproved, approvals.EventRevoked)
	f.run(t)
	f.waitEmpty(t)
	if n := len(f.ws.Calls("chat.update")); n != 1 {
		t.Fatalf("%d chat.update calls for one message with two state changes, want 1", n)
	}
}

func TestCourierFlushLeavesTheRestForNextStart(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	f.record(t, approvals.EventApproved)
	var failures []bottest.Failure
	for range 1000 {
		failures = append(failures, bottest.Failure{Error: "internal_error"})
	}
	f.ws.Fail("chat.postMessage", failures...)
	f.run(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := f.courier.Flush(ctx)
	if err == nil || !strings.Contains(err.Error(), "2 events not yet delivered") {
		t.Fatalf("Flush = %v", err)
	}
	f.stop()
	if n, _ := f.db.Backlog(context.Background()); n != 2 {
		t.Fatalf("backlog %d after a failed flush, want 2", n)
	}
}

// BenchmarkCourierDelivery measures delivering one event from the outbox:
// its audit record posted to the fake Slack and marked in a real database
// file, and its message redraw.
func BenchmarkCourierDelivery(b *testing.B) {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "r.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ws := bottest.New(b)
	api := slack.New(ws.BotToken(), slack.OptionAPIURL(ws.APIURL()))
	c := bot.NewCourier(api, db, auditChannel, bot.Unpaced, slog.New(slog.DiscardHandler))
	c.Poll = time.Millisecond
	ctx := context.Background()
	now := time.Now().UTC()
	for range b.N {
		r := newRequest("U1")
		if err := db.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: "U1", At: now}, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); c.Run(runCtx) }()
	for {
		if n, _ := db.Backlog(ctx); n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-done
}

// flakyMarks is an outbox whose first marks of audit records fail.
type flakyMarks struct {
	*sqlite.DB
	mu    sync.Mutex
	fails int
}

func (f *flakyMarks) MarkDelivered(ctx context.Context, seq int64, part approvals.Part) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if part == approvals.AuditRecord && f.fails > 0 {
		f.fails--
		return errors.New("database is locked")
	}
	return f.DB.MarkDelivered(ctx, seq, part)
}

func TestCourierRetriesAFailedMarkWithoutPostingAgain(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	outbox := &flakyMarks{DB: f.db, fails: 3}
	api := slack.New(f.ws.BotToken(), slack.OptionAPIURL(f.ws.APIURL()))
	f.courier = bot.NewCourier(api, outbox, auditChannel, bot.Unpaced, nil)
	f.courier.MinBackoff, f.courier.MaxBackoff = time.Millisecond, 5*time.Millisecond
	r := f.record(t)
	f.run(t)
	f.waitEmpty(t)
	if got := f.audit(); len(got) != 1 || got[0] != "requested "+r.ID {
		t.Fatalf("audit %v: a record whose mark failed was posted again", got)
	}
}
