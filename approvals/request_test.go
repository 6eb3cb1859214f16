package approvals_test

import (
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

func TestStatesFinalAndValid(t *testing.T) {
	t.Parallel()
	for _, s := range []approvals.State{approvals.StatePending, approvals.StateExecuting} {
		if !s.Valid() || s.Final() {
			t.Errorf("%s: valid %t, final %t; want valid, not final", s, s.Valid(), s.Final())
		}
	}
	for _, s := range []approvals.State{approvals.StateRefused, approvals.StateDenied, approvals.StateRevoked,
		approvals.StateFailed, approvals.StateExpired, approvals.StateCancelled} {
		if !s.Valid() || !s.Final() {
			t.Errorf("%s: valid %t, final %t; want valid and final", s, s.Valid(), s.Final())
		}
	}
	if approvals.State("approved").Valid() {
		t.Error("unknown state reported valid")
	}
	for _, s := range []approvals.TargetState{approvals.TargetWaiting, approvals.TargetRevoked, approvals.TargetFailed} {
		if !s.Valid() {
			t.Errorf("target state %s not valid", s)
		}
	}
	if approvals.TargetState("pending").Valid() {
		t.Error("unknown target state reported valid")
	}
}

func TestParseDecision(t *testing.T) {
	t.Parallel()
	for _, d := range []approvals.Decision{approvals.Approve, approvals.Deny} {
		if got, err := approvals.ParseDecision(d.String()); err != nil || got != d {
			t.Errorf("ParseDecision(%q) = %v, %v; want %v", d.String(), got, err, d)
		}
	}
	if _, err := approvals.ParseDecision("maybe"); err == nil {
		t.Error("ParseDecision(maybe) succeeded")
	}
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// aggregate returns a request of U1 for emails needing required approvals,
// every target waiting.
func aggregate(required int, emails ...string) approvals.Request {
	r := approvals.Request{ID: "r", Requester: "U1", Required: required, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	for _, e := range emails {
		r.Targets = append(r.Targets, approvals.Target{Email: e, State: approvals.TargetWaiting})
	}
	return r
}

func review(by string, d approvals.Decision) approvals.Review {
	return approvals.Review{By: by, Decision: d, At: t0}
}

// withTargets sets the targets' states, in order.
func withTargets(r approvals.Request, states ...approvals.TargetState) approvals.Request {
	r = r.Clone()
	for i, s := range states {
		r.Targets[i].State = s
	}
	return r
}

func TestStateIsDerived(t *testing.T) {
	t.Parallel()
	var (
		waiting = approvals.TargetWaiting
		revoked = approvals.TargetRevoked
		failed  = approvals.TargetFailed
	)
	three := aggregate(2, "a@example.com", "b@example.com", "c@example.com")
	quorum := three.Clone()
	quorum.Reviews = []approvals.Review{review("U2", approvals.Approve), review("U3", approvals.Approve)}
	half := three.Clone()
	half.Reviews = []approvals.Review{review("U2", approvals.Approve)}
	denied := half.Clone()
	denied.Reviews = append(denied.Reviews, review("U3", approvals.Deny))
	cancelled := three.Clone()
	cancelled.Reviews = []approvals.Review{review("U1", approvals.Deny)}
	expired := half.Clone()
	expired.ExpiredAt = t0.Add(time.Hour)
	refused := three.Clone()
	refused.Refusal = "requester is not in the requesters list"
	zero := aggregate(0, "a@example.com") // Required 0 means 1
	zero.Reviews = []approvals.Review{review("U2", approvals.Approve)}

	for _, tt := range []struct {
		name string
		r    approvals.Request
		want approvals.State
	}{
		{"no reviews", three, approvals.StatePending},
		{"one of two approvals", half, approvals.StatePending},
		{"quorum, targets waiting", quorum, approvals.StateExecuting},
		{"quorum, one target revoked", withTargets(quorum, revoked, waiting, waiting), approvals.StateExecuting},
		{"quorum, one target failed, others waiting", withTargets(quorum, failed, waiting, revoked), approvals.StateExecuting},
		{"every target revoked", withTargets(quorum, revoked, revoked, revoked), approvals.StateRevoked},
		{"one target failed (partial)", withTargets(quorum, revoked, failed, revoked), approvals.StateFailed},
		{"every target failed", withTargets(quorum, failed, failed, failed), approvals.StateFailed},
		{"an approver denied", denied, approvals.StateDenied},
		{"the requester denied", cancelled, approvals.StateCancelled},
		{"expired", expired, approvals.StateExpired},
		{"refused", refused, approvals.StateRefused},
		{"required 0 means 1", zero, approvals.StateExecuting},
	} {
		if got := tt.r.State(); got != tt.want {
			t.Errorf("%s: State() = %s, want %s", tt.name, got, tt.want)
		}
	}
	if got, want := zero.RequiredApprovals(), 1; got != want {
		t.Errorf("RequiredApprovals() with Required 0 = %d, want %d", got, want)
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	r := aggregate(1, "a@example.com", "b@example.com", "c@example.com")
	r.Reviews = []approvals.Review{review("U2", approvals.Approve)}
	for _, tt := range []struct {
		states []approvals.TargetState
		want   string
	}{
		{[]approvals.TargetState{approvals.TargetRevoked, approvals.TargetFailed, approvals.TargetRevoked}, "2 of 3 revoked, 1 failed"},
		{[]approvals.TargetState{approvals.TargetRevoked, approvals.TargetRevoked, approvals.TargetRevoked}, "3 of 3 revoked"},
		{[]approvals.TargetState{approvals.TargetRevoked, approvals.TargetWaiting, approvals.TargetWaiting}, "1 of 3 revoked, 2 to go"},
		{[]approvals.TargetState{approvals.TargetFailed, approvals.TargetWaiting, approvals.TargetRevoked}, "1 of 3 revoked, 1 failed, 1 to go"},
	} {
		if got := withTargets(r, tt.states...).Summary(); got != tt.want {
			t.Errorf("Summary() of %v = %q, want %q", tt.states, got, tt.want)
		}
	}
}

func TestReviewsAndTally(t *testing.T) {
	t.Parallel()
	r := aggregate(2, "a@example.com", "b@example.com", "c@example.com")
	r.Reviews = []approvals.Review{review("U2", approvals.Approve), review("U3", approvals.Approve)}
	r = withTargets(r, approvals.TargetRevoked, approvals.TargetFailed)
	if got, want := len(r.Approvals()), 2; got != want {
		t.Errorf("%d approvals, want %d", got, want)
	}
	if _, ok := r.Denial(); ok {
		t.Error("Denial() found one in approvals only")
	}
	if !r.Reviewed("U3") || r.Reviewed("U1") {
		t.Errorf("Reviewed(U3) = %t, Reviewed(U1) = %t; want true, false", r.Reviewed("U3"), r.Reviewed("U1"))
	}
	if revoked, failed, waiting := r.Tally(); revoked != 1 || failed != 1 || waiting != 1 {
		t.Errorf("Tally() = %d, %d, %d; want 1, 1, 1", revoked, failed, waiting)
	}
	if got, want := r.Revocation(1), (approvals.Revocation{Email: "b@example.com"}); got != want {
		t.Errorf("Revocation(1) = %+v, want %+v", got, want)
	}
	// Clone shares nothing.
	c := r.Clone()
	c.Targets[0].State = approvals.TargetWaiting
	c.Reviews[0].By = "U9"
	if r.Targets[0].State != approvals.TargetRevoked || r.Reviews[0].By != "U2" {
		t.Error("Clone shares its slices with the original")
	}
}
