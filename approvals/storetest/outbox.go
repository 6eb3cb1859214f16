package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// The outbox: which parts of which events are due, marking them delivered,
// and remembering attempts. Claims are in shared.go.

func kindsOf(ds []approvals.Delivery) []approvals.EventKind {
	var out []approvals.EventKind
	for _, d := range ds {
		out = append(out, d.Event.Kind)
	}
	return out
}

// testOutboxOrderAndMarks follows a request's events through the outbox:
// which parts are due, in order, marked one by one, and what is left after
// a restart.
func testOutboxOrderAndMarks(t *testing.T, s approvals.Store, reopen func() approvals.Store) {
	o := outbox(t, s)
	r := mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	if err := s.SetMessage(ctx, r.ID, "C1", "1.1"); err != nil {
		t.Fatal(err)
	}
	refused := approvals.Event{Kind: approvals.EventRefused, Request: r, State: r.State(), Actor: "U9", Detail: "user is not an approver", At: base}
	if err := s.Append(ctx, refused); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, r.ID, approve("UAPP", base)); err != nil {
		t.Fatal(err)
	}

	audits, err := o.Undelivered(ctx, approvals.AuditRecord, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Refused attempts are audited apart (PendingRefusals).
	if k := kindsOf(audits); len(k) != 2 || k[0] != approvals.EventRequested || k[1] != approvals.EventApproved {
		t.Fatalf("audit kinds %v, want requested, approved", k)
	}
	if !(audits[0].Seq < audits[1].Seq) {
		t.Fatalf("seqs not increasing: %d %d", audits[0].Seq, audits[1].Seq)
	}
	for i, d := range audits {
		if d.Current.State() != approvals.StateExecuting || d.Current.Channel != "C1" || len(d.Current.Targets) != 1 {
			t.Errorf("delivery %d: current %+v, want the request as it stands now", i, d.Current)
		}
	}
	// The event keeps the request's state after the event.
	if audits[0].Event.State != approvals.StatePending || audits[1].Event.State != approvals.StateExecuting {
		t.Fatalf("events %+v", audits)
	}
	if audits[0].Event.Request.Options != r.Options || audits[0].Event.Request.Reason != r.Reason || len(audits[0].Event.Request.Targets) != 1 {
		t.Fatalf("event request %+v", audits[0].Event.Request)
	}
	refusals, err := o.PendingRefusals(ctx)
	if err != nil || len(refusals) != 1 || refusals[0].Actor != "U9" || refusals[0].Count != 1 ||
		refusals[0].First.Event.Detail != "user is not an approver" || !refusals[0].LastAudited.IsZero() {
		t.Fatalf("pending refusals %+v, %v", refusals, err)
	}
	// The first event posts the message, a state change redraws it; a
	// refusal changes nothing there.
	messages, err := o.Undelivered(ctx, approvals.MessageUpdate, 10)
	if err != nil || len(messages) != 2 || messages[0].Seq != audits[0].Seq || messages[1].Seq != audits[1].Seq {
		t.Fatalf("message updates %+v, %v", messages, err)
	}

	for _, seq := range []int64{audits[0].Seq, audits[1].Seq} {
		if err := o.MarkDelivered(ctx, seq, approvals.AuditRecord); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.MarkDelivered(ctx, messages[0].Seq, approvals.MessageUpdate); err != nil {
		t.Fatal(err)
	}
	if err := o.MarkDelivered(ctx, audits[1].Seq+1_000_000, approvals.AuditRecord); err == nil {
		t.Fatal("marking a missing event succeeded")
	}
	if err := o.MarkDelivered(ctx, audits[0].Seq, approvals.Part(9)); err == nil {
		t.Fatal("marking an unknown part succeeded")
	}

	// What is left survives a restart.
	s = reopen()
	o = outbox(t, s)
	if n, err := o.Backlog(ctx); err != nil || n != 2 {
		t.Fatalf("backlog = %d, %v; want 2 (the refused record, the approved message)", n, err)
	}
	at := base.Add(time.Hour)
	if err := o.MarkRefusalsDelivered(ctx, "U9", refusals[0].Last.Seq, at); err != nil {
		t.Fatal(err)
	}
	if err := o.MarkDelivered(ctx, messages[1].Seq, approvals.MessageUpdate); err != nil {
		t.Fatal(err)
	}
	if n, err := o.Backlog(ctx); err != nil || n != 0 {
		t.Fatalf("backlog = %d, %v; want 0", n, err)
	}
	for _, part := range []approvals.Part{approvals.AuditRecord, approvals.MessageUpdate, approvals.Notice} {
		if rest, _ := o.Undelivered(ctx, part, 10); len(rest) != 0 {
			t.Fatalf("undelivered %s after marking all: %+v", part, rest)
		}
	}
	// The next refusal of U9 knows when U9's last record went out.
	if err := s.Append(ctx, refused); err != nil {
		t.Fatal(err)
	}
	if refusals, err = o.PendingRefusals(ctx); err != nil || len(refusals) != 1 || !refusals[0].LastAudited.Equal(at) {
		t.Fatalf("pending refusals after one was audited: %+v, %v", refusals, err)
	}
}

// testNotices: the end of a posted request is a notice to deliver; the end
// of one whose message was never posted is not.
func testNotices(t *testing.T, s approvals.Store) {
	o := outbox(t, s)
	posted := mustCreate(t, s, newRequest("UREQ", "a@example.com"))
	unposted := newRequest("UREQ", "b@example.com")
	unposted.Channel = ""
	unposted = mustCreate(t, s, unposted)
	deny := func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "UAPP", Decision: approvals.Deny, Reason: "no", At: base})
		cur.FinishedAt = base
		return cur, []approvals.Event{{Kind: approvals.EventDenied, Actor: "UAPP", At: base}}, nil
	}
	for _, id := range []string{posted.ID, unposted.ID} {
		if _, err := s.Update(ctx, id, deny); err != nil {
			t.Fatal(err)
		}
	}
	notices, err := o.Undelivered(ctx, approvals.Notice, 10)
	if err != nil || len(notices) != 1 || notices[0].Current.ID != posted.ID || notices[0].Event.Kind != approvals.EventDenied {
		t.Fatalf("notices %+v, %v; want the posted request's denial", notices, err)
	}
	if got := mustClaim(t, o, approvals.Notice, "replica-a", 10, time.Minute); !slices.Equal(seqsOf(got), seqsOf(notices)) {
		t.Errorf("claimed notices %v, want %v", seqsOf(got), seqsOf(notices))
	}
	if err := o.MarkDelivered(ctx, notices[0].Seq, approvals.Notice); err != nil {
		t.Fatal(err)
	}
	if rest, _ := o.Undelivered(ctx, approvals.Notice, 10); len(rest) != 0 {
		t.Errorf("notices after marking: %+v", rest)
	}
}

func testUndeliveredLimit(t *testing.T, s approvals.Store) {
	o := outbox(t, s)
	for range 5 {
		mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	}
	if got, err := o.Undelivered(ctx, approvals.AuditRecord, 3); err != nil || len(got) != 3 {
		t.Fatalf("got %d, %v; want 3", len(got), err)
	}
	if got, err := o.Undelivered(ctx, approvals.AuditRecord, -1); err != nil || len(got) != 5 {
		t.Fatalf("with no limit (-1): got %d, %v; want 5", len(got), err)
	}
}

// testAttemptsSurviveRestart: an attempt to deliver, begun before a crash,
// is known after it, with its time.
func testAttemptsSurviveRestart(t *testing.T, s approvals.Store, reopen func() approvals.Store) {
	o := outbox(t, s)
	r := mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	audits, err := o.Undelivered(ctx, approvals.AuditRecord, 1)
	if err != nil || len(audits) != 1 {
		t.Fatal(audits, err)
	}
	seq := audits[0].Seq
	if first, err := o.BeginAttempt(ctx, seq, approvals.AuditRecord); err != nil || !first.IsZero() {
		t.Fatalf("first attempt: %v, %v; want the zero time", first, err)
	}
	if first, err := o.BeginPost(ctx, r.ID); err != nil || !first.IsZero() {
		t.Fatalf("first post: %v, %v; want the zero time", first, err)
	}
	o = outbox(t, reopen())
	// A second attempt, after a crash, learns when the first began.
	if first, err := o.BeginAttempt(ctx, seq, approvals.AuditRecord); err != nil || first.IsZero() || time.Since(first) > time.Minute {
		t.Fatalf("second attempt: %v, %v; want the first attempt's time", first, err)
	}
	if first, err := o.BeginPost(ctx, r.ID); err != nil || first.IsZero() || time.Since(first) > time.Minute {
		t.Fatalf("second post: %v, %v; want the first attempt's time", first, err)
	}
	if first, err := o.BeginAttempt(ctx, seq, approvals.Notice); err != nil || !first.IsZero() {
		t.Fatalf("first notice attempt: %v, %v; want the zero time (tracked apart from the audit record)", first, err)
	}
	if _, err := o.BeginAttempt(ctx, seq, approvals.MessageUpdate); err == nil {
		t.Fatal("attempts of message updates (which are redrawn in place) are not tracked; want an error")
	}
	if _, err := o.BeginAttempt(ctx, seq+1_000_000, approvals.AuditRecord); err == nil {
		t.Fatal("an attempt of a missing event succeeded")
	}
	if _, err := o.BeginPost(ctx, "missing"); err == nil {
		t.Fatal("a post of a missing request succeeded")
	}
}

// testBeginAttemptRace: of attempts beginning at once, exactly one is the
// first; the others learn its time.
func testBeginAttemptRace(t *testing.T, s approvals.Store) {
	o := outbox(t, s)
	mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	audits, err := o.Undelivered(ctx, approvals.AuditRecord, 1)
	if err != nil || len(audits) != 1 {
		t.Fatal(audits, err)
	}
	const n = 8
	var got [n]time.Time
	atOnce(n, func(i int) {
		var err error
		if got[i], err = o.BeginAttempt(ctx, audits[0].Seq, approvals.AuditRecord); err != nil {
			t.Errorf("BeginAttempt: %v", err)
		}
	})
	firsts := 0
	var seen time.Time
	for _, at := range got {
		if at.IsZero() {
			firsts++
			continue
		}
		if !seen.IsZero() && !seen.Equal(at) {
			t.Errorf("attempts learnt different first times: %v, %v", seen, at)
		}
		seen = at
	}
	if firsts != 1 {
		t.Errorf("%d attempts were told they are the first, want 1", firsts)
	}
}
