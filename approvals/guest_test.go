package approvals_test

import (
	"context"
	"testing"

	"github.com/revokebot/revokebot/approvals"
)

// guestFixture lists the people of guestDirectory as requesters and as
// approvers, directly and through group S1, along with U1 and U2.
func guestFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.svc.Directory = guestDirectory()
	listed := approvals.Audience{Users: []string{"U1", "U2", "UG", "UX", "UDOWN"}, Groups: []string{"S1"}}
	f.svc.Policy.Requesters, f.svc.Policy.Approvers = listed, listed
	return f
}

func TestGuestsAndExternalUsersMayNotRequest(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		user string
		want approvals.Why
	}{
		{"UG", approvals.WhyGuest},
		{"UG2", approvals.WhyGuest}, // through the group
		{"UX", approvals.WhyExternal},
		{"UX2", approvals.WhyExternal}, // through the group
		{"UDOWN", approvals.WhyUnverified},
	} {
		f := guestFixture(t)
		r, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: tt.user,
			Targets: []approvals.TargetInput{{Email: "alice@example.com"}}})
		wantError(t, err, approvals.EFORBIDDEN, tt.want)
		if stored := f.get(t, r.ID); stored.State() != approvals.StateRefused {
			t.Errorf("%s: stored %s, want refused", tt.user, stored.State())
		}
		if last := f.events.last(t); last.Kind != approvals.EventRefused || last.Actor != tt.user {
			t.Errorf("%s: told %+v, want a refusal", tt.user, last)
		}
	}
}

func TestGuestsAndExternalUsersMayNotDecide(t *testing.T) {
	t.Parallel()
	f := guestFixture(t)
	ctx := context.Background()
	r := f.submit(t)
	for _, tt := range []struct {
		user string
		want approvals.Why
	}{
		{"UG", approvals.WhyGuest},
		{"UG2", approvals.WhyGuest},
		{"UX", approvals.WhyExternal},
		{"UX2", approvals.WhyExternal},
		{"UDOWN", approvals.WhyUnverified},
	} {
		for _, d := range []approvals.Decision{approvals.Approve, approvals.Deny} {
			_, err := f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r.ID, Actor: tt.user, Decision: d, Reason: "no"})
			wantError(t, err, approvals.EFORBIDDEN, tt.want)
		}
		if last := f.events.last(t); last.Kind != approvals.EventRefused || last.Actor != tt.user {
			t.Errorf("%s: told %+v, want a refusal", tt.user, last)
		}
		// Status and pending are theirs no more than deciding.
		_, err := f.svc.Status(ctx, tt.user, r.ID)
		wantError(t, err, approvals.EFORBIDDEN, tt.want)
	}
	if stored := f.get(t, r.ID); stored.State() != approvals.StatePending || len(stored.Reviews) != 0 {
		t.Fatalf("stored %s with %d reviews", stored.State(), len(stored.Reviews))
	}
	if n := f.revoker.calls.Load(); n != 0 {
		t.Fatalf("%d revocations", n)
	}
	// A full member still may.
	if got, err := f.svc.Decide(ctx, r.ID, "U2", approvals.Approve); err != nil || got.State() != approvals.StateRevoked {
		t.Fatalf("member: %s, %v", got.State(), err)
	}
}
