package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

func kindsOf(ds []approvals.Delivery) []approvals.EventKind {
	var out []approvals.EventKind
	for _, d := range ds {
		out = append(out, d.Event.Kind)
	}
	return out
}

func seqsOf(ds []approvals.Delivery) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	return out
}

func TestOutboxOrderAndMarks(t *testing.T) {
	t.Parallel()
	db, url := MustOpen(t)
	ctx := context.Background()
	r := newRequest()
	create(t, db, r)
	if err := db.SetMessage(ctx, r.ID, "C1", "1.1"); err != nil {
		t.Fatal(err)
	}
	refused := eventOf(approvals.EventRefused, r)
	refused.Actor, refused.Detail = "U9", "user is not an approver"
	if err := db.Append(ctx, refused); err != nil {
		t.Fatal(err)
	}
	approveBy(t, db, r.ID, "U2")

	audits, err := db.Undelivered(ctx, approvals.AuditRecord, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Refused attempts are audited apart (PendingRefusals).
	if k := kindsOf(audits); len(k) != 2 || k[0] != approvals.EventRequested || k[1] != approvals.EventApproved {
		t.Fatalf("audit kinds %v", k)
	}
	if !(audits[0].Seq < audits[1].Seq) {
		t.Fatalf("seqs not increasing: %d %d", audits[0].Seq, audits[1].Seq)
	}
	for i, d := range audits {
		if d.Current.State() != approvals.StateExecuting || d.Current.Channel != "C1" || len(d.Current.Targets) != 1 {
			t.Errorf("delivery %d: current %+v", i, d.Current)
		}
	}
	// The event keeps the request's state after the event.
	if audits[0].Event.State != approvals.StatePending || audits[1].Event.State != approvals.StateExecuting {
		t.Fatalf("events %+v", audits)
	}
	if audits[0].Event.Request.Options != r.Options || audits[0].Event.Request.Reason != r.Reason || len(audits[0].Event.Request.Targets) != 1 {
		t.Fatalf("event request %+v", audits[0].Event.Request)
	}
	refusals, err := db.PendingRefusals(ctx)
	if err != nil || len(refusals) != 1 || refusals[0].Actor != "U9" || refusals[0].Count != 1 ||
		refusals[0].First.Event.Detail != "user is not an approver" || !refusals[0].LastAudited.IsZero() {
		t.Fatalf("pending refusals %+v, %v", refusals, err)
	}
	// The first event posts the message, a state change redraws it; a
	// refusal changes nothing there.
	messages, err := db.Undelivered(ctx, approvals.MessageUpdate, 10)
	if err != nil || len(messages) != 2 || messages[0].Seq != audits[0].Seq || messages[1].Seq != audits[1].Seq {
		t.Fatalf("message updates %+v, %v", messages, err)
	}

	for _, seq := range []int64{audits[0].Seq, audits[1].Seq} {
		if err := db.MarkDelivered(ctx, seq, approvals.AuditRecord); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.MarkDelivered(ctx, messages[0].Seq, approvals.MessageUpdate); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkDelivered(ctx, 999999, approvals.AuditRecord); err == nil {
		t.Fatal("marking a missing event succeeded")
	}
	if err := db.MarkDelivered(ctx, audits[0].Seq, approvals.Part(9)); err == nil {
		t.Fatal("marking an unknown part succeeded")
	}
	db.Close()

	// What is left survives a restart.
	again := openURL(t, url)
	if n, err := again.Backlog(ctx); err != nil || n != 2 {
		t.Fatalf("backlog = %d, %v; want 2 (the refused record, the approved message)", n, err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := again.MarkRefusalsDelivered(ctx, "U9", refusals[0].Last.Seq, at); err != nil {
		t.Fatal(err)
	}
	if err := again.MarkDelivered(ctx, messages[1].Seq, approvals.MessageUpdate); err != nil {
		t.Fatal(err)
	}
	if n, err := again.Backlog(ctx); err != nil || n != 0 {
		t.Fatalf("backlog = %d, %v; want 0", n, err)
	}
	for _, part := range []approvals.Part{approvals.AuditRecord, approvals.MessageUpdate, approvals.Notice} {
		if rest, _ := again.Undelivered(ctx, part, 10); len(rest) != 0 {
			t.Fatalf("undelivered %s after marking all: %+v", part, rest)
		}
	}
	// The next refusal of U9 knows when U9's last record went out.
	if err := again.Append(ctx, refused); err != nil {
		t.Fatal(err)
	}
	if refusals, err = again.PendingRefusals(ctx); err != nil || len(refusals) != 1 || !refusals[0].LastAudited.Equal(at) {
		t.Fatalf("pending refusals after one was audited: %+v, %v", refusals, err)
	}
}

// TestNotices: the end of a posted request is a notice to deliver; the
// end of one whose message was never posted is not.
func TestNotices(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	posted := newRequest()
	posted.Channel = "C1"
	create(t, db, posted)
	unposted := newRequest()
	create(t, db, unposted)
	deny := func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "U2", Decision: approvals.Deny, Reason: "no", At: time.Now()})
		cur.FinishedAt = time.Now()
		return cur, []approvals.Event{{Kind: approvals.EventDenied, Actor: "U2", At: time.Now()}}, nil
	}
	for _, id := range []string{posted.ID, unposted.ID} {
		if _, err := db.Update(ctx, id, deny); err != nil {
			t.Fatal(err)
		}
	}
	notices, err := db.Undelivered(ctx, approvals.Notice, 10)
	if err != nil || len(notices) != 1 || notices[0].Current.ID != posted.ID || notices[0].Event.Kind != approvals.EventDenied {
		t.Fatalf("notices %+v, %v; want the posted request's denial", notices, err)
	}
	if got := mustClaim(t, db, approvals.Notice, "a", 10, time.Minute); !slices.Equal(seqsOf(got), seqsOf(notices)) {
		t.Errorf("claimed notices %v, want %v", seqsOf(got), seqsOf(notices))
	}
	if err := db.MarkDelivered(ctx, notices[0].Seq, approvals.Notice); err != nil {
		t.Fatal(err)
	}
	if rest, _ := db.Undelivered(ctx, approvals.Notice, 10); len(rest) != 0 {
		t.Errorf("notices after marking: %+v", rest)
	}
}

func TestAttemptsAreRemembered(t *testing.T) {
	t.Parallel()
	db, url := MustOpen(t)
	ctx := context.Background()
	r := newRequest()
	create(t, db, r)
	audits, err := db.Undelivered(ctx, approvals.AuditRecord, 1)
	if err != nil || len(audits) != 1 {
		t.Fatal(audits, err)
	}
	seq := audits[0].Seq
	if first, err := db.BeginAttempt(ctx, seq, approvals.AuditRecord); err != nil || !first.IsZero() {
		t.Fatalf("first attempt: %v, %v; want the zero time", first, err)
	}
	if first, err := db.BeginPost(ctx, r.ID); err != nil || !first.IsZero() {
		t.Fatalf("first post: %v, %v; want the zero time", first, err)
	}
	db.Close()
	again := openURL(t, url)
	// A second attempt, after a crash, learns when the first began.
	if first, err := again.BeginAttempt(ctx, seq, approvals.AuditRecord); err != nil || first.IsZero() || time.Since(first) > time.Minute {
		t.Fatalf("second attempt: %v, %v; want the first attempt's time", first, err)
	}
	if first, err := again.BeginPost(ctx, r.ID); err != nil || first.IsZero() {
		t.Fatalf("second post: %v, %v; want the first attempt's time", first, err)
	}
	if first, err := again.BeginAttempt(ctx, seq, approvals.Notice); err != nil || !first.IsZero() {
		t.Fatalf("first notice attempt: %v, %v; want the zero time (tracked apart from the audit record)", first, err)
	}
	if _, err := again.BeginAttempt(ctx, seq, approvals.MessageUpdate); err == nil {
		t.Fatal("attempts of message updates (which are redrawn in place) are not tracked; want an error")
	}
	if _, err := again.BeginAttempt(ctx, 999999, approvals.AuditRecord); err == nil {
		t.Fatal("an attempt of a missing event succeeded")
	}
	if _, err := again.BeginPost(ctx, "missing"); err == nil {
		t.Fatal("a post of a missing request succeeded")
	}
}

// TestBeginAttemptRace: of attempts beginning at once, exactly one is the
// first; the others learn its time.
func TestBeginAttemptRace(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	r := newRequest()
	create(t, db, r)
	audits, _ := db.Undelivered(ctx, approvals.AuditRecord, 1)
	const n = 8
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		got   [n]time.Time
	)
	for i := range n {
		wg.Go(func() {
			<-start
			var err error
			if got[i], err = db.BeginAttempt(ctx, audits[0].Seq, approvals.AuditRecord); err != nil {
				t.Errorf("BeginAttempt: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
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

func TestDuplicatesRacing(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	const n = 6
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		created [n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			r := newRequest()
			r.SubmitKey = "envelope-race"
			created[i] = db.Create(ctx, r, eventOf(approvals.EventRequested, r), 0)
		})
	}
	close(start)
	wg.Wait()
	ok, dup := 0, 0
	for _, err := range created {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, approvals.ErrDuplicate):
			dup++
		default:
			t.Errorf("Create: %v", err)
		}
	}
	if ok != 1 || dup != n-1 {
		t.Errorf("%d created, %d duplicates; want 1 and %d", ok, dup, n-1)
	}

	// Event keys racing, from updates of different requests.
	var rs [n]approvals.Request
	for i := range rs {
		rs[i] = newRequest()
		create(t, db, rs[i])
	}
	start = make(chan struct{})
	var updated [n]error
	for i := range n {
		wg.Go(func() {
			<-start
			_, updated[i] = db.Update(ctx, rs[i].ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
				next, events, err := approveFn("U2")(cur)
				events[0].Key = "click-race"
				return next, events, err
			})
		})
	}
	close(start)
	wg.Wait()
	ok, dup = 0, 0
	for _, err := range updated {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, approvals.ErrDuplicate):
			dup++
		default:
			t.Errorf("Update: %v", err)
		}
	}
	if ok != 1 || dup != n-1 {
		t.Errorf("%d updated, %d duplicates; want 1 and %d", ok, dup, n-1)
	}
}

func TestUndeliveredLimit(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	for range 5 {
		create(t, db, newRequest())
	}
	if got, err := db.Undelivered(ctx, approvals.AuditRecord, 3); err != nil || len(got) != 3 {
		t.Fatalf("got %d, %v; want 3", len(got), err)
	}
	if got, err := db.Undelivered(ctx, approvals.AuditRecord, -1); err != nil || len(got) != 5 {
		t.Fatalf("with no limit: got %d, %v; want 5", len(got), err)
	}
}

func TestCreateIsAtomicWithItsEvent(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	r := newRequest()
	// An event the log refuses must take the request down with it.
	if err := db.Create(ctx, r, eventOf("bogus", r), 0); err == nil {
		t.Fatal("create with an invalid event succeeded")
	}
	if _, err := db.Get(ctx, r.ID); !errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("request stored without its event: %v", err)
	}
	create(t, db, r)
	_, err := db.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "U2", Decision: approvals.Approve, At: time.Now()})
		return cur, []approvals.Event{{Kind: "bogus", At: time.Now()}}, nil
	})
	if err == nil {
		t.Fatal("update with an invalid event succeeded")
	}
	if got, _ := db.Get(ctx, r.ID); got.State() != approvals.StatePending || len(got.Reviews) != 0 {
		t.Fatalf("state changed without its event: %s", got.State())
	}
}

func TestCountByState(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	for i, who := range []string{"U1", "U1", "U2", "U1"} {
		r := newRequest()
		r.Requester = who
		if i == 3 {
			r.Refusal = "requester is not in the requesters list"
		}
		create(t, db, r)
	}
	if n, err := db.CountByRequester(ctx, "U1", approvals.StatePending); err != nil || n != 2 {
		t.Fatalf("U1 pending = %d, %v; want 2", n, err)
	}
	if n, err := db.CountByState(ctx, approvals.StatePending); err != nil || n != 3 {
		t.Fatalf("pending = %d, %v; want 3", n, err)
	}
	if n, err := db.CountByState(ctx, approvals.StateRefused); err != nil || n != 1 {
		t.Fatalf("refused = %d, %v; want 1", n, err)
	}
}

func mustClaim(tb testing.TB, o approvals.Outbox, part approvals.Part, owner string, limit int, ttl time.Duration) []approvals.Delivery {
	tb.Helper()
	ds, err := o.Claim(context.Background(), part, owner, limit, ttl)
	if err != nil {
		tb.Fatalf("Claim(%s, %s): %v", part, owner, err)
	}
	return ds
}

// TestClaimAcrossHandles: two handles on one database (as two replicas):
// claims made by one hold for the other.
func TestClaimAcrossHandles(t *testing.T) {
	t.Parallel()
	a, url := MustOpen(t)
	b := openURL(t, url)
	ctx := context.Background()
	// R has two audit records (requested, approved), S one.
	r := newRequest()
	r.Required = 2
	create(t, a, r)
	approveBy(t, a, r.ID, "U2")
	s := newRequest()
	create(t, a, s)

	first := mustClaim(t, a, approvals.AuditRecord, "replica-a", 1, time.Minute)
	if len(first) != 1 || first[0].Current.ID != r.ID || first[0].Event.Kind != approvals.EventRequested {
		t.Fatalf("a claimed %+v, want R's first record", first)
	}
	// R's later record is held back from b; S's is free.
	got := mustClaim(t, b, approvals.AuditRecord, "replica-b", 10, time.Minute)
	if len(got) != 1 || got[0].Current.ID != s.ID {
		t.Fatalf("b claimed %v, want S's record only", seqsOf(got))
	}
	// Claimed or not, every due delivery is still undelivered.
	if all, _ := b.Undelivered(ctx, approvals.AuditRecord, 10); len(all) != 3 {
		t.Errorf("Undelivered = %v, want all 3", seqsOf(all))
	}
	// a renews its claim and gets the rest of R, in order.
	again := mustClaim(t, a, approvals.AuditRecord, "replica-a", 10, time.Minute)
	if len(again) != 2 || again[0].Seq != first[0].Seq || again[1].Current.ID != r.ID {
		t.Fatalf("a's second claim = %v, want R's two records", seqsOf(again))
	}
	// Marked delivered, a claim ends: b may take R's second record once
	// a releases it.
	if err := a.MarkDelivered(ctx, again[0].Seq, approvals.AuditRecord); err != nil {
		t.Fatal(err)
	}
	if got := mustClaim(t, b, approvals.AuditRecord, "replica-b", 10, time.Minute); len(got) != 1 || got[0].Current.ID != s.ID {
		t.Fatalf("b claimed %v while a holds R's second record", seqsOf(got))
	}
	if err := a.ReleaseClaims(ctx, "replica-a"); err != nil {
		t.Fatal(err)
	}
	sSeq := got[0].Seq
	got = mustClaim(t, b, approvals.AuditRecord, "replica-b", 10, time.Minute)
	if want := []int64{again[1].Seq, sSeq}; !slices.Equal(seqsOf(got), want) {
		t.Fatalf("b claimed %v after a released, want %v (R's second record, and S's renewed)", seqsOf(got), want)
	}
	// An expired claim is taken over.
	if got := mustClaim(t, b, approvals.AuditRecord, "replica-b", 10, time.Millisecond); len(got) != 2 {
		t.Fatalf("b renewed %d claims, want 2", len(got))
	}
	time.Sleep(50 * time.Millisecond)
	if got := mustClaim(t, a, approvals.AuditRecord, "replica-a", 10, time.Minute); len(got) != 2 {
		t.Fatalf("a took over %d expired claims, want 2", len(got))
	}
}

// TestClaimRaceAcrossHandles has owners on two handles claim and deliver
// at once: every record is delivered exactly once, each request's in order.
func TestClaimRaceAcrossHandles(t *testing.T) {
	t.Parallel()
	a, url := MustOpen(t)
	b := openURL(t, url)
	ctx := context.Background()
	const requests = 10
	for range requests {
		r := newRequest()
		r.Required = 3
		create(t, a, r)
		approveBy(t, a, r.ID, "U2")
		approveBy(t, a, r.ID, "U3")
	}
	var (
		mu        sync.Mutex
		delivered = map[int64]string{}
		order     = map[string][]int64{}
		wg        sync.WaitGroup
	)
	for i, db := range []approvals.Outbox{a, b, a, b} {
		owner := fmt.Sprintf("replica-%d", i)
		wg.Go(func() {
			for range 500 {
				ds, err := db.Claim(ctx, approvals.AuditRecord, owner, 2, time.Minute)
				if err != nil {
					t.Errorf("Claim: %v", err)
					return
				}
				if len(ds) == 0 {
					if left, _ := db.Undelivered(ctx, approvals.AuditRecord, 1); len(left) == 0 {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				for _, d := range ds {
					mu.Lock()
					if by, twice := delivered[d.Seq]; twice {
						t.Errorf("record %d claimed by %s and %s", d.Seq, by, owner)
					}
					delivered[d.Seq] = owner
					order[d.Current.ID] = append(order[d.Current.ID], d.Seq)
					mu.Unlock()
					if err := db.MarkDelivered(ctx, d.Seq, approvals.AuditRecord); err != nil {
						t.Errorf("MarkDelivered: %v", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if len(delivered) != 3*requests {
		t.Errorf("%d records delivered, want %d", len(delivered), 3*requests)
	}
	for id, seqs := range order {
		if len(seqs) != 3 || !slices.IsSorted(seqs) {
			t.Errorf("request %s delivered as %v, want its 3 records in order", id, seqs)
		}
	}
}
