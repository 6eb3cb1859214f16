package approvals_test

import (
	"context"
	"strings"
	"testing"

	"github.com/revokebot/revokebot/approvals"
)

// TestSubmitTargetsDifferingInCaseCountOnce: the same address in another
// case is the same person, revoked once.
func TestSubmitTargetsDifferingInCaseCountOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t, "Alice@example.com", "alice@example.com", "ALICE@example.com", "bob@example.com")
	if got := r.Emails(); len(got) != 2 || got[0] != "Alice@example.com" || got[1] != "bob@example.com" {
		t.Fatalf("targets %v, want the first spelling of alice, and bob", got)
	}
}

// TestRefusedRequesterWithUnresolvedPerson: someone who may not ask is
// refused before any target is looked up, and the refusal is recorded with
// the person as named.
func TestRefusedRequesterWithUnresolvedPerson(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	wantError(t, f.svc.CheckRequester(ctx, "U9"), approvals.EFORBIDDEN, approvals.WhyNotRequester)
	if err := f.svc.CheckRequester(ctx, "U1"); err != nil {
		t.Fatalf("CheckRequester(U1) = %v, want nil", err)
	}
	r, err := f.svc.Submit(ctx, approvals.SubmitInput{Requester: "U9", Targets: []approvals.TargetInput{{Person: "UALICE"}, {Person: "UALICE"}}})
	wantError(t, err, approvals.EFORBIDDEN, approvals.WhyNotRequester)
	stored := f.get(t, r.ID)
	if stored.State() != approvals.StateRefused || len(stored.Targets) != 1 || stored.Targets[0].Person != "UALICE" {
		t.Fatalf("refused request stored as %+v", stored)
	}
	// An allowed requester must name every target's email.
	_, err = f.svc.Submit(ctx, approvals.SubmitInput{Requester: "U1", Targets: []approvals.TargetInput{{Person: "UALICE"}}})
	wantError(t, err, approvals.EINVALID, approvals.WhyInvalid)
}

// TestApproverWhoApprovedThenDenies is told they decided already, not asked
// for a reason they cannot give.
func TestApproverWhoApprovedThenDenies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.Policy.RequiredApprovals = 2
	r := f.submit(t)
	ctx := context.Background()
	if _, err := f.svc.Decide(ctx, r.ID, "U2", approvals.Approve); err != nil {
		t.Fatal(err)
	}
	in := approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Deny}
	_, err := f.svc.CheckDecider(ctx, in)
	wantError(t, err, approvals.ECONFLICT, approvals.WhyReviewed)
	_, err = f.svc.DecideFrom(ctx, in)
	wantError(t, err, approvals.ECONFLICT, approvals.WhyReviewed)
}

// TestDryRunBulkNeverSaysRevoked: the last record of a dry-run request says
// nothing was revoked.
func TestDryRunBulkNeverSaysRevoked(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.DryRun = true
	r := f.submit(t, "a@example.com", "b@example.com")
	got, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Approve)
	if err != nil || got.State() != approvals.StateRevoked || !got.DryRun {
		t.Fatalf("Decide = %s (dry run %v), %v", got.State(), got.DryRun, err)
	}
	events := f.recorded(t)
	last := events[len(events)-1]
	if !strings.Contains(last.Detail, "dry run, nothing revoked") || strings.Contains(last.Detail, "2 of 2 revoked") {
		t.Fatalf("last detail %q", last.Detail)
	}
}
