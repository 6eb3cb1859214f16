package approvals_test

import (
	"context"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

func TestEscalation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.TTL = 30 * time.Minute
	f.svc.EscalateAfter = 10 * time.Minute
	f.svc.Policy.EscalationApprovers = approvals.Audience{Users: []string{"U5"}}
	ctx := context.Background()
	r := f.submit(t)

	// Before the delay: nothing.
	f.clock.Advance(10*time.Minute - time.Second)
	if n, err := f.svc.ExpireDue(ctx); err != nil || n != 0 {
		t.Fatalf("ExpireDue = %d, %v", n, err)
	}
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested) {
		t.Fatalf("recorded events %v", k)
	}
	if stored := f.get(t, r.ID); !stored.EscalatedAt.IsZero() {
		t.Fatalf("escalated at %v before the delay", stored.EscalatedAt)
	}
	// The escalation approver may not approve yet.
	_, err := f.svc.Decide(ctx, r.ID, "U5", approvals.Approve)
	wantError(t, err, approvals.EFORBIDDEN, approvals.WhyNotApprover)

	// After the delay: escalated, once.
	f.clock.Advance(time.Second)
	if n, err := f.svc.ExpireDue(ctx); err != nil || n != 0 {
		t.Fatalf("ExpireDue = %d, %v; escalating expires nothing", n, err)
	}
	stored := f.get(t, r.ID)
	if !stored.EscalatedAt.Equal(f.clock.Now()) || stored.State() != approvals.StatePending {
		t.Fatalf("escalated at %v in %s, want %v, pending", stored.EscalatedAt, stored.State(), f.clock.Now())
	}
	last := f.events.last(t)
	if last.Kind != approvals.EventEscalated || last.State != approvals.StatePending || !last.HasNotice() || last.Request.EscalatedAt.IsZero() {
		t.Fatalf("escalation told as %+v", last)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.svc.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested, approvals.EventRefused, approvals.EventEscalated) {
		t.Fatalf("recorded events %v, want one escalation", k)
	}
	if got := f.countKinds(t, r.ID)[approvals.EventEscalated]; got != 1 {
		t.Fatalf("%d escalations told, want 1", got)
	}

	// Now the escalation approver may approve.
	got, err := f.svc.Decide(ctx, r.ID, "U5", approvals.Approve)
	if err != nil || got.State() != approvals.StateRevoked {
		t.Fatalf("escalation approver after escalation: %s, %v", got.State(), err)
	}
}

func TestEscalationOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.TTL = 30 * time.Minute
	f.submit(t)
	f.clock.Advance(29 * time.Minute)
	if _, err := f.svc.ExpireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested) {
		t.Fatalf("recorded events %v with EscalateAfter zero", k)
	}
}

func TestExpiryWinsOverEscalation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.EscalateAfter = 5 * time.Minute
	r := f.submit(t)
	f.clock.Advance(10 * time.Minute) // past both
	if n, err := f.svc.ExpireDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
	}
	if stored := f.get(t, r.ID); stored.State() != approvals.StateExpired || !stored.EscalatedAt.IsZero() {
		t.Fatalf("stored %s, escalated at %v", stored.State(), stored.EscalatedAt)
	}
}
