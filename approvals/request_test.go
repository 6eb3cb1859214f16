package approvals_test

import (
	"testing"

	"github.com/revokebot/revokebot/approvals"
)

func TestCanTransition(t *testing.T) {
	t.Parallel()
	all := []approvals.State{approvals.StateRefused, approvals.StatePending, approvals.StateExecuting,
		approvals.StateDenied, approvals.StateCancelled, approvals.StateExpired, approvals.StateRevoked, approvals.StateFailed}
	legal := map[[2]approvals.State]bool{
		{approvals.StatePending, approvals.StateExecuting}: true,
		{approvals.StatePending, approvals.StateDenied}:    true,
		{approvals.StatePending, approvals.StateCancelled}: true,
		{approvals.StatePending, approvals.StateExpired}:   true,
		{approvals.StateExecuting, approvals.StateRevoked}: true,
		{approvals.StateExecuting, approvals.StateFailed}:  true,
	}
	for _, from := range all {
		if !from.Valid() {
			t.Errorf("%s not valid", from)
		}
		for _, to := range all {
			if got, want := approvals.CanTransition(from, to), legal[[2]approvals.State{from, to}]; got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
	for _, s := range []approvals.State{approvals.StatePending, approvals.StateExecuting} {
		if s.Final() {
			t.Errorf("%s is final", s)
		}
	}
	for _, s := range []approvals.State{approvals.StateRefused, approvals.StateDenied, approvals.StateRevoked, approvals.StateFailed, approvals.StateExpired, approvals.StateCancelled} {
		if !s.Final() {
			t.Errorf("%s is not final", s)
		}
	}
	if approvals.State("approved").Valid() {
		t.Error("unknown state reported valid")
	}
}
