package storetest

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// The work several replicas share through the store: leases, and claims on
// the outbox's deliveries. A store must be an approvals.Outbox too.

func outbox(tb testing.TB, s approvals.Store) approvals.Outbox {
	tb.Helper()
	o, ok := s.(approvals.Outbox)
	if !ok {
		tb.Fatalf("%T is not an approvals.Outbox: every store delivers its events", s)
	}
	return o
}

func mustLease(t *testing.T, s approvals.Store, name, owner string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := s.Lease(ctx, name, owner, ttl)
	if err != nil {
		t.Fatalf("Lease(%s, %s): %v", name, owner, err)
	}
	if got != want {
		t.Fatalf("Lease(%s, %s) = %v, want %v", name, owner, got, want)
	}
}

func testLeaseOneOwner(t *testing.T, s approvals.Store) {
	mustLease(t, s, "execute:1", "replica-a", time.Minute, true)
	mustLease(t, s, "execute:1", "replica-b", time.Minute, false)
	mustLease(t, s, "execute:1", "replica-a", time.Minute, true) // renewed
	mustLease(t, s, "execute:2", "replica-b", time.Minute, true) // another name
	held, err := s.HeldLeases(ctx)
	if err != nil {
		t.Fatalf("HeldLeases: %v", err)
	}
	var got []string
	for _, l := range held {
		got = append(got, l.Name+"="+l.Owner)
		if time.Until(l.Until) <= 0 || time.Until(l.Until) > 2*time.Minute {
			t.Errorf("lease %s ends at %v, want about a minute from now", l.Name, l.Until)
		}
	}
	if want := []string{"execute:1=replica-a", "execute:2=replica-b"}; !slices.Equal(got, want) {
		t.Errorf("HeldLeases = %v, want %v", got, want)
	}
	if err := s.Release(ctx, "execute:1", "replica-b"); err != nil {
		t.Fatalf("Release by another: %v", err)
	}
	mustLease(t, s, "execute:1", "replica-b", time.Minute, false) // still a's
	if err := s.Release(ctx, "execute:1", "replica-a"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	mustLease(t, s, "execute:1", "replica-b", time.Minute, true)
}

func testLeaseEnds(t *testing.T, s approvals.Store) {
	mustLease(t, s, "execute:1", "replica-a", 50*time.Millisecond, true)
	mustLease(t, s, "execute:1", "replica-b", time.Minute, false)
	time.Sleep(120 * time.Millisecond)
	mustLease(t, s, "execute:1", "replica-b", time.Minute, true) // a's time is up
	mustLease(t, s, "execute:1", "replica-a", time.Minute, false)
	held, err := s.HeldLeases(ctx)
	if err != nil || len(held) != 1 || held[0].Owner != "replica-b" {
		t.Errorf("HeldLeases = %+v, %v; want b's only", held, err)
	}
}

func testLeaseRace(t *testing.T, s approvals.Store) {
	const n = 8
	var (
		wg  sync.WaitGroup
		won atomic.Int32
	)
	for i := range n {
		wg.Go(func() {
			ok, err := s.Lease(ctx, "sweep", fmt.Sprintf("replica-%d", i), time.Minute)
			if err != nil {
				t.Errorf("Lease: %v", err)
			}
			if ok {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d of %d owners hold the lease, want exactly 1", won.Load(), n)
	}
}

// withEvents creates n requests with three events each (requested, and two
// approvals of a request needing three), and returns their IDs in order.
func withEvents(t *testing.T, s approvals.Store, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		r := newRequest("UREQ", fmt.Sprintf("user%d@example.com", i))
		r.Required = 3
		r.CreatedAt = base.Add(time.Duration(i) * time.Second)
		r = mustCreate(t, s, r)
		for _, who := range []string{"UAPP1", "UAPP2"} {
			if _, err := s.Update(ctx, r.ID, approve(who, base)); err != nil {
				t.Fatalf("Update: %v", err)
			}
		}
		ids = append(ids, r.ID)
	}
	return ids
}

func seqsOf(ds []approvals.Delivery) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	return out
}

func mustClaim(t *testing.T, o approvals.Outbox, part approvals.Part, owner string, limit int, ttl time.Duration) []approvals.Delivery {
	t.Helper()
	ds, err := o.Claim(ctx, part, owner, limit, ttl)
	if err != nil {
		t.Fatalf("Claim(%s, %s): %v", part, owner, err)
	}
	return ds
}

func testClaimExclusive(t *testing.T, s approvals.Store) {
	o := outbox(t, s)
	ids := withEvents(t, s, 2)
	a := mustClaim(t, o, approvals.AuditRecord, "replica-a", 10, time.Minute)
	if len(a) != 6 {
		t.Fatalf("a claimed %d audit records, want all 6", len(a))
	}
	for i, d := range a {
		if d.Event.Request.ID != d.Current.ID || d.Current.ID != ids[i/3] {
			t.Errorf("claim %d is of request %s, want %s", i, d.Current.ID, ids[i/3])
		}
		if len(d.Current.Targets) != 1 || len(d.Current.Reviews) != 2 {
			t.Errorf("claim %d: request without its targets and reviews: %+v", i, d.Current)
		}
	}
	if !slices.IsSorted(seqsOf(a)) {
		t.Errorf("claims out of order: %v", seqsOf(a))
	}
	if b := mustClaim(t, o, approvals.AuditRecord, "replica-b", 10, time.Minute); len(b) != 0 {
		t.Errorf("b claimed %v while a holds them", seqsOf(b))
	}
	// Parts are claimed apart: a message update is not an audit record.
	if b := mustClaim(t, o, approvals.MessageUpdate, "replica-b", 10, time.Minute); len(b) != 6 {
		t.Errorf("b claimed %d message updates, want 6", len(b))
	}
	// a's own claims are renewed and handed back to it.
	if again := mustClaim(t, o, approvals.AuditRecord, "replica-a", 10, time.Minute); !slices.Equal(seqsOf(again), seqsOf(a)) {
		t.Errorf("a's claim again = %v, want %v", seqsOf(again), seqsOf(a))
	}
	// Delivered is delivered: never claimed again, by anybody.
	for _, d := range a {
		if err := o.MarkDelivered(ctx, d.Seq, approvals.AuditRecord); err != nil {
			t.Fatalf("MarkDelivered: %v", err)
		}
	}
	for _, owner := range []string{"replica-a", "replica-b"} {
		if ds := mustClaim(t, o, approvals.AuditRecord, owner, 10, time.Minute); len(ds) != 0 {
			t.Errorf("%s claimed delivered records %v", owner, seqsOf(ds))
		}
	}
}

// testClaimKeepsRequestOrder: while one owner holds a request's first due
// delivery, no other owner gets a later one of the same request; other
// requests' deliveries are free.
func testClaimKeepsRequestOrder(t *testing.T, s approvals.Store) {
	o := outbox(t, s)
	ids := withEvents(t, s, 2)
	a := mustClaim(t, o, approvals.AuditRecord, "replica-a", 1, time.Minute)
	if len(a) != 1 || a[0].Current.ID != ids[0] || a[0].Event.Kind != approvals.EventRequested {
		t.Fatalf("a claimed %+v, want the first request's first record", a)
	}
	b := mustClaim(t, o, approvals.AuditRecord, "replica-b", 10, time.Minute)
	if len(b) != 3 {
		t.Fatalf("b claimed %d, want the second request's 3", len(b))
	}
	for _, d := range b {
		if d.Current.ID != ids[1] {
			t.Errorf("b claimed %d of request %s, whose earlier record a holds", d.Seq, d.Current.ID)
		}
	}
	// Claimed or not, every due delivery is still undelivered.
	if all, err := o.Undelivered(ctx, approvals.AuditRecord, 10); err != nil || len(all) != 6 {
		t.Errorf("Undelivered = %v, %v; want all 6, claimed or not", seqsOf(all), err)
	}
	// Once a has delivered its one, the rest of that request goes to
	// whoever claims it first, still in order.
	if err := o.MarkDelivered(ctx, a[0].Seq, approvals.AuditRecord); err != nil {
		t.Fatal(err)
	}
	c := mustClaim(t, o, approvals.AuditRecord, "replica-c", 10, time.Minute)
	if len(c) != 2 || c[0].Current.ID != ids[0] || c[0].Seq > c[1].Seq {
		t.Errorf("c claimed %v, want the first request's other 2 in order", seqsOf(c))
	}
}

func testClaimEndsAndIsReleased(t *testing.T, s approvals.Store) {
	o := outbox(t, s)
	withEvents(t, s, 1)
	if a := mustClaim(t, o, approvals.AuditRecord, "replica-a", 10, 50*time.Millisecond); len(a) != 3 {
		t.Fatalf("a claimed %d, want 3", len(a))
	}
	time.Sleep(120 * time.Millisecond) // a died: its claims end
	b := mustClaim(t, o, approvals.AuditRecord, "replica-b", 10, time.Minute)
	if len(b) != 3 {
		t.Fatalf("b claimed %d after a's claims ended, want 3", len(b))
	}
	if a := mustClaim(t, o, approvals.AuditRecord, "replica-a", 10, time.Minute); len(a) != 0 {
		t.Errorf("a claimed %v back while b holds them", seqsOf(a))
	}
	if err := o.ReleaseClaims(ctx, "replica-b"); err != nil {
		t.Fatalf("ReleaseClaims: %v", err)
	}
	if a := mustClaim(t, o, approvals.AuditRecord, "replica-a", 10, time.Minute); len(a) != 3 {
		t.Errorf("a claimed %d after b released, want 3", len(a))
	}
}

func testClaimLeavesRefusalsOut(t *testing.T, s approvals.Store) {
	o := outbox(t, s)
	r := mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	e := approvals.Event{Kind: approvals.EventRefused, Request: r, Actor: "UX", Detail: "user is not an approver", At: base}
	if err := s.Append(ctx, e); err != nil {
		t.Fatal(err)
	}
	ds := mustClaim(t, o, approvals.AuditRecord, "replica-a", 10, time.Minute)
	if len(ds) != 1 || ds[0].Event.Kind != approvals.EventRequested {
		t.Errorf("claimed %+v, want the requested record only (refusals are audited apart)", ds)
	}
}

// ClaimRace has one owner per handle claim and deliver at once, as
// replicas' couriers do: every record is delivered exactly once, and each
// request's records in order. The handles are stores on one database: the
// same store more than once for owners sharing a process (as Run does), or
// stores opened apart for owners in processes of their own.
func ClaimRace(t *testing.T, handles ...approvals.Store) {
	const requests = 10
	ids := withEvents(t, handles[0], requests)
	var (
		mu        sync.Mutex
		delivered = map[int64]string{}
		order     = map[string][]int64{}
		wg        sync.WaitGroup
	)
	for i, s := range handles {
		o := outbox(t, s)
		owner := fmt.Sprintf("replica-%d", i)
		wg.Go(func() {
			for range 500 {
				ds, err := o.Claim(ctx, approvals.AuditRecord, owner, 2, time.Minute)
				if err != nil {
					t.Errorf("Claim: %v", err)
					return
				}
				if len(ds) == 0 {
					if left, _ := o.Undelivered(ctx, approvals.AuditRecord, 1); len(left) == 0 {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				for _, d := range ds {
					mu.Lock()
					if by, twice := delivered[d.Seq]; twice {
						t.Errorf("record %d delivered by %s and %s", d.Seq, by, owner)
					}
					delivered[d.Seq] = owner
					order[d.Current.ID] = append(order[d.Current.ID], d.Seq)
					mu.Unlock()
					if err := o.MarkDelivered(ctx, d.Seq, approvals.AuditRecord); err != nil {
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
	for _, id := range ids {
		if seqs := order[id]; len(seqs) != 3 || !slices.IsSorted(seqs) {
			t.Errorf("request %s delivered as %v, want its 3 records in order", id, seqs)
		}
	}
}

func testClaimNeedsOwner(t *testing.T, s approvals.Store) {
	o := outbox(t, s)
	withEvents(t, s, 1)
	if _, err := o.Claim(ctx, approvals.AuditRecord, "", 10, time.Minute); err == nil {
		t.Error("Claim without an owner succeeded")
	}
	if _, err := s.Lease(ctx, "x", "", time.Minute); err == nil {
		t.Error("Lease without an owner succeeded")
	}
	if _, err := o.Claim(ctx, approvals.Part(99), "replica-a", 10, time.Minute); err == nil {
		t.Error("Claim of an unknown part succeeded")
	}
}

func mustRenew(t *testing.T, s approvals.Store, name, owner string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := s.Renew(ctx, name, owner, ttl)
	if err != nil {
		t.Fatalf("Renew(%s, %s): %v", name, owner, err)
	}
	if got != want {
		t.Fatalf("Renew(%s, %s) = %v, want %v", name, owner, got, want)
	}
}

// testLeaseRenew: Renew extends a lease its owner holds, and never takes
// one back: not one never taken, not one another owner holds, not one
// another owner took over and released since.
func testLeaseRenew(t *testing.T, s approvals.Store) {
	mustRenew(t, s, "execute:1", "replica-a", time.Minute, false) // never taken
	mustLease(t, s, "execute:1", "replica-a", 50*time.Millisecond, true)
	mustRenew(t, s, "execute:1", "replica-a", time.Minute, true)
	time.Sleep(120 * time.Millisecond) // past the first term, within the renewed one
	mustLease(t, s, "execute:1", "replica-b", time.Minute, false)
	mustRenew(t, s, "execute:1", "replica-b", time.Minute, false)

	mustLease(t, s, "execute:2", "replica-a", 50*time.Millisecond, true)
	time.Sleep(120 * time.Millisecond) // a stalls; b takes over, finishes, releases
	mustLease(t, s, "execute:2", "replica-b", time.Minute, true)
	if err := s.Release(ctx, "execute:2", "replica-b"); err != nil {
		t.Fatal(err)
	}
	mustRenew(t, s, "execute:2", "replica-a", time.Minute, false)
	if held, _ := s.HeldLeases(ctx); len(held) != 1 || held[0].Name != "execute:1" {
		t.Errorf("HeldLeases = %+v, want execute:1 only", held)
	}
}
