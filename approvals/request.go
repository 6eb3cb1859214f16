// Package approvals is revokebot's domain: a revocation request, the states it
// moves through, who may ask for and decide one, and the service that submits,
// decides, expires and executes requests. It knows nothing about Slack, HTTP or
// SQL: those are adapters that implement the interfaces defined here.
package approvals

import (
	"fmt"
	"slices"
	"time"
)

// State is where a request stands. It is not stored as such: State computes
// it from the request's reviews, targets and the few facts that end a
// request (refusal, expiry). The moves it can make are:
//
//	pending   → executing (the last approval needed), denied, cancelled, expired
//	executing → revoked (every target revoked), failed (every target done, one or more failed)
//
// refused, denied, cancelled, expired, revoked and failed are final.
type State string

// The states of a request.
const (
	// StateRefused: the requester was not allowed to ask; nothing was queued.
	StateRefused State = "refused"
	// StatePending: waiting for approvers.
	StatePending State = "pending"
	// StateExecuting: approved by as many approvers as required; some targets
	// are still to revoke. A request found here after a restart is resumed.
	StateExecuting State = "executing"
	// StateDenied: an approver said no.
	StateDenied State = "denied"
	// StateCancelled: the requester withdrew the request.
	StateCancelled State = "cancelled"
	// StateExpired: not enough approvals before the request's expiry time.
	StateExpired State = "expired"
	// StateRevoked: every target's revocation succeeded.
	StateRevoked State = "revoked"
	// StateFailed: every target was attempted, and at least one failed.
	StateFailed State = "failed"
)

// Final reports whether nothing more can happen to a request in state s.
func (s State) Final() bool {
	return s != StatePending && s != StateExecuting
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	switch s {
	case StateRefused, StatePending, StateExecuting, StateDenied, StateCancelled,
		StateExpired, StateRevoked, StateFailed:
		return true
	}
	return false
}

// TargetState is where one target of an approved request stands.
type TargetState string

// The states of a target.
const (
	// TargetWaiting: not revoked yet (the request is pending, or executing
	// and this target's turn has not come).
	TargetWaiting TargetState = "waiting"
	// TargetRevoked: Cloudflare revoked the target's sessions.
	TargetRevoked TargetState = "revoked"
	// TargetFailed: the revocation was attempted and failed.
	TargetFailed TargetState = "failed"
)

// Valid reports whether s is one of the known target states.
func (s TargetState) Valid() bool {
	return s == TargetWaiting || s == TargetRevoked || s == TargetFailed
}

// Target is one person whose sessions a request revokes.
type Target struct {
	// Email is the address revoked at Cloudflare: what the approver saw.
	Email string
	// Person is the chat user the email was resolved from, when the
	// requester named a person rather than typing an address; else empty.
	Person string
	// State is where this target's revocation stands; Outcome is the
	// Revoker's summary or error text once done, and FinishedAt when.
	State      TargetState
	Outcome    string
	FinishedAt time.Time
	// Look is what the identity platform knew of the target before
	// approval; Check, whether its sessions were gone after the
	// revocation; Watch, the watch for its return. They are observations:
	// they never change the outcome.
	Look  Look
	Check Check
	Watch Watch
}

// Done reports whether the target's revocation was attempted.
func (t Target) Done() bool { return t.State == TargetRevoked || t.State == TargetFailed }

// Decision is an approver's answer.
type Decision int

// The two decisions.
const (
	Approve Decision = iota + 1
	Deny
)

// String returns "approve" or "deny".
func (d Decision) String() string {
	switch d {
	case Approve:
		return "approve"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// ParseDecision is the inverse of Decision.String.
func ParseDecision(s string) (Decision, error) {
	switch s {
	case "approve":
		return Approve, nil
	case "deny":
		return Deny, nil
	}
	return 0, fmt.Errorf("unknown decision %q", s)
}

// Review is one person's decision on a request. A request has at most one
// review per person. The requester's own Deny is the request's cancellation.
type Review struct {
	By       string
	Decision Decision
	// Reason is the reviewer's explanation (a denial's reason), may be empty.
	Reason string
	At     time.Time
}

// Request is one ask to revoke the sessions of one or more people, and
// everything that happened to it: an aggregate, changed only as a whole
// through Store.Update.
type Request struct {
	// ID is a random UUID; it is what the Slack buttons carry.
	ID string
	// Version counts the request's changes; the Store uses it to detect a
	// concurrent change. It is 1 once created.
	Version int64
	// Targets are whose sessions will be revoked once approved, in the
	// order the requester named them. Never empty, fixed at creation but
	// for each target's State, Outcome and FinishedAt.
	Targets []Target
	// Options are how every target is revoked.
	Options Options
	// Reason is the requester's free-text justification (may be empty).
	Reason string
	// Requester is the chat user ID of the person who asked.
	Requester string
	// Required is how many distinct approvers must approve (at least 1).
	Required int
	// Reviews are the decisions made on the request, oldest first.
	Reviews []Review
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
	// EscalatedAt is when the request, still pending, was escalated to
	// more approvers; zero if it was not.
	EscalatedAt time.Time
	// ExpiredAt is when the request was found expired; zero if it was not.
	ExpiredAt time.Time
	// Refusal says why the submission was refused; empty unless the
	// request is refused.
	Refusal string
	// FinishedAt is when the request reached a final state.
	FinishedAt time.Time

	// Channel and MessageTS locate the approval message in chat, so that it can
	// be updated later, even after a restart. MessageTS is empty until the
	// message is posted; neither changes through Store.Update.
	Channel   string
	MessageTS string
}

// State computes where the request stands.
func (r Request) State() State {
	switch {
	case r.Refusal != "":
		return StateRefused
	}
	if d, ok := r.Denial(); ok {
		if d.By == r.Requester {
			return StateCancelled
		}
		return StateDenied
	}
	if !r.ExpiredAt.IsZero() {
		return StateExpired
	}
	if len(r.Approvals()) < r.RequiredApprovals() {
		return StatePending
	}
	revoked, failed, waiting := r.Tally()
	switch {
	case waiting > 0:
		return StateExecuting
	case failed > 0:
		return StateFailed
	case revoked > 0:
		return StateRevoked
	}
	return StateExecuting
}

// RequiredApprovals is how many approvals the request needs: Required, and
// at least 1.
func (r Request) RequiredApprovals() int { return max(r.Required, 1) }

// Approvals returns the approving reviews, oldest first.
func (r Request) Approvals() []Review {
	var out []Review
	for _, rv := range r.Reviews {
		if rv.Decision == Approve {
			out = append(out, rv)
		}
	}
	return out
}

// Denial returns the review that denied or cancelled the request, if any.
func (r Request) Denial() (Review, bool) {
	for _, rv := range r.Reviews {
		if rv.Decision == Deny {
			return rv, true
		}
	}
	return Review{}, false
}

// Reviewed reports whether user already reviewed the request.
func (r Request) Reviewed(user string) bool {
	return slices.ContainsFunc(r.Reviews, func(rv Review) bool { return rv.By == user })
}

// Tally counts the targets by state.
func (r Request) Tally() (revoked, failed, waiting int) {
	for _, t := range r.Targets {
		switch t.State {
		case TargetRevoked:
			revoked++
		case TargetFailed:
			failed++
		default:
			waiting++
		}
	}
	return revoked, failed, waiting
}

// Summary says in a few words how the request's targets stand once it is
// executing or done, such as "2 of 3 revoked, 1 failed".
func (r Request) Summary() string {
	revoked, failed, waiting := r.Tally()
	s := fmt.Sprintf("%d of %d revoked", revoked, len(r.Targets))
	if failed > 0 {
		s += fmt.Sprintf(", %d failed", failed)
	}
	if waiting > 0 && r.State() == StateExecuting {
		s += fmt.Sprintf(", %d to go", waiting)
	}
	return s
}

// Emails returns the targets' emails, in order.
func (r Request) Emails() []string {
	out := make([]string, len(r.Targets))
	for i, t := range r.Targets {
		out[i] = t.Email
	}
	return out
}

// Revocation returns what revoking target i means at the Revoker.
func (r Request) Revocation(i int) Revocation { return r.Options.For(r.Targets[i].Email) }

// Clone returns a copy of r that shares no slices with it.
func (r Request) Clone() Request {
	r.Targets = slices.Clone(r.Targets)
	r.Reviews = slices.Clone(r.Reviews)
	return r
}

// Transitions. Each returns a changed copy and the event that records the
// change, or an *Error saying why the change cannot be made. None of them
// has side effects: a Store may call them again on a fresher copy.

// review adds rv to a pending request. It refuses a second review by the
// same person (WhyReviewed), and a review of a request that is no longer
// pending (ECONFLICT).
func (r Request) review(rv Review) (Request, Event, error) {
	if s := r.State(); s != StatePending {
		return r, Event{}, conflict(r)
	}
	if r.Reviewed(rv.By) {
		return r, Event{}, fail(ECONFLICT, WhyReviewed, r)
	}
	next := r.Clone()
	next.Reviews = append(next.Reviews, rv)
	e := Event{Actor: rv.By, At: rv.At, Detail: rv.Reason}
	switch {
	case rv.Decision == Deny && rv.By == r.Requester:
		e.Kind = EventCancelled
	case rv.Decision == Deny:
		e.Kind = EventDenied
	default:
		e.Kind = EventApproved
		e.Detail = fmt.Sprintf("%d of %d", len(next.Approvals()), next.RequiredApprovals())
	}
	return next.settle(rv.At), e, nil
}

// expire ends a pending request whose time is up.
func (r Request) expire(at time.Time) (Request, Event, error) {
	if r.State() != StatePending {
		return r, Event{}, conflict(r)
	}
	next := r.Clone()
	next.ExpiredAt = at
	e := Event{Kind: EventExpired, At: at, Detail: expiryDetail(r)}
	return next.settle(at), e, nil
}

func expiryDetail(r Request) string {
	d := "no decision before " + r.ExpiresAt.Format(time.RFC3339)
	if n := len(r.Approvals()); n > 0 {
		d = fmt.Sprintf("%d of %d approvals before %s", n, r.RequiredApprovals(), r.ExpiresAt.Format(time.RFC3339))
	}
	return d
}

// escalate marks a pending request escalated.
func (r Request) escalate(at time.Time) (Request, Event, error) {
	if r.State() != StatePending || !r.EscalatedAt.IsZero() {
		return r, Event{}, conflict(r)
	}
	next := r.Clone()
	next.EscalatedAt = at
	e := Event{Kind: EventEscalated, At: at, Detail: fmt.Sprintf("%d of %d approvals after %s",
		len(r.Approvals()), r.RequiredApprovals(), at.Sub(r.CreatedAt).Round(time.Second))}
	return next, e, nil
}

// finish records the outcome of target i of an executing request.
// A revoked target's record carries its verification (check) and the start
// of its watch, as they stood when it was made.
func (r Request) finish(i int, ok bool, outcome string, at time.Time, check Check, watch Watch) (Request, Event, error) {
	if r.State() != StateExecuting || i < 0 || i >= len(r.Targets) || r.Targets[i].Done() {
		return r, Event{}, conflict(r)
	}
	next := r.Clone()
	t := &next.Targets[i]
	t.State, t.Outcome, t.FinishedAt = TargetFailed, outcome, at
	e := Event{Kind: EventFailed, At: at, Target: t.Email, Detail: outcome}
	if ok {
		t.State, e.Kind = TargetRevoked, EventRevoked
		t.Check, t.Watch = check, watch
		if phrase := check.phrase(); phrase != "" {
			e.Detail += "; " + phrase
		}
	}
	next = next.settle(at)
	switch {
	case next.State().Final() && next.DryRun:
		e.Detail += "; request done: dry run, nothing revoked"
	case next.State().Final() && len(next.Targets) > 1:
		e.Detail += "; request done: " + next.Summary()
	}
	return next, e, nil
}

// settle stamps FinishedAt once the request is final.
func (r Request) settle(at time.Time) Request {
	if r.State().Final() && r.FinishedAt.IsZero() {
		r.FinishedAt = at
	}
	return r
}
