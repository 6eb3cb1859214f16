// Package approvals is revokebot's domain: a revocation request, the states it
// moves through, who may ask for and decide one, and the service that submits,
// decides, expires and executes requests. It knows nothing about Slack, HTTP or
// SQL: those are adapters that implement the interfaces defined here.
package approvals

import (
	"fmt"
	"time"
)

// State is where a request stands. The legal moves are:
//
//	pending   → executing (approved), denied, cancelled, expired
//	executing → revoked, failed
//
// refused, denied, cancelled, expired, revoked and failed are final.
type State string

// The states of a request.
const (
	// StateRefused: the requester was not allowed to ask; nothing was queued.
	StateRefused State = "refused"
	// StatePending: waiting for an approver.
	StatePending State = "pending"
	// StateExecuting: approved; the revocation has been started but its outcome
	// is not yet recorded. A request found here after a restart is resumed.
	StateExecuting State = "executing"
	// StateDenied: an approver said no.
	StateDenied State = "denied"
	// StateCancelled: the requester withdrew the request.
	StateCancelled State = "cancelled"
	// StateExpired: nobody decided before the request's expiry time.
	StateExpired State = "expired"
	// StateRevoked: the revocation succeeded.
	StateRevoked State = "revoked"
	// StateFailed: the revocation was attempted and failed.
	StateFailed State = "failed"
)

var transitions = map[State][]State{
	StatePending:   {StateExecuting, StateDenied, StateCancelled, StateExpired},
	StateExecuting: {StateRevoked, StateFailed},
}

// CanTransition reports whether a request may move from one state to another.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Final reports whether no further transition is possible from s.
func (s State) Final() bool { return len(transitions[s]) == 0 }

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	switch s {
	case StateRefused, StatePending, StateExecuting, StateDenied, StateCancelled,
		StateExpired, StateRevoked, StateFailed:
		return true
	}
	return false
}

// Request is one ask to revoke a user's sessions, and everything that happened to it.
type Request struct {
	// ID is a random UUID; it is what the Slack buttons carry.
	ID string
	// Revocation is what will be revoked once approved.
	Revocation Revocation
	// Reason is the requester's free-text justification (may be empty).
	Reason string
	// Requester is the chat user ID of the person who asked.
	Requester string
	// State is where the request stands.
	State State
	// DryRun requests are decided as usual but never reach the Revoker.
	DryRun bool
	// SubmitKey, if set, identifies the submission (such as the chat
	// delivery that carried the command), so that a redelivery of the same
	// submission does not make a second request.
	SubmitKey string

	// CreatedAt is when the request was submitted; ExpiresAt, when a pending
	// request stops accepting decisions.
	CreatedAt time.Time
	ExpiresAt time.Time

	// DecidedBy is the user who approved, denied or cancelled the request,
	// empty while pending and for expiry; DecidedAt is when that happened.
	DecidedBy string
	DecidedAt time.Time

	// Outcome is the Revoker's summary or error text once revoked or failed.
	Outcome string
	// FinishedAt is when the request reached a final state.
	FinishedAt time.Time

	// Channel and MessageTS locate the approval message in chat, so that it can
	// be updated later, even after a restart. Empty until the message is posted.
	Channel   string
	MessageTS string
}

// apply returns a copy of r moved to state to, or an error if the move is illegal.
func (r Request) apply(to State, actor string, at time.Time, outcome string) (Request, error) {
	if !CanTransition(r.State, to) {
		return r, fmt.Errorf("request %s: cannot move from %s to %s", r.ID, r.State, to)
	}
	next := r
	next.State = to
	if r.State == StatePending {
		next.DecidedBy = actor
		next.DecidedAt = at
	}
	if to.Final() {
		next.FinishedAt = at
		next.Outcome = outcome
	}
	return next, nil
}
