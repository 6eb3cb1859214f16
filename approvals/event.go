package approvals

import (
	"context"
	"time"
)

// EventKind names something that happened to a request. The words are public:
// the audit channel carries them, and people search for them.
type EventKind string

// The audit events.
const (
	EventRequested EventKind = "requested"
	EventRefused   EventKind = "refused"
	EventApproved  EventKind = "approved"
	EventDenied    EventKind = "denied"
	EventCancelled EventKind = "cancelled"
	EventExpired   EventKind = "expired"
	EventRevoked   EventKind = "revoked"
	EventFailed    EventKind = "failed"
	// EventEscalated: a request still pending after the escalation delay
	// was shown to the escalation approvers, who may approve it from then on.
	EventEscalated EventKind = "escalated"
	// EventVerified: a revoked target's sessions, still listed when its
	// revoked record was made, were gone before the verification timeout.
	EventVerified EventKind = "verified"
	// EventUnverified: a revoked target's sessions were still listed when
	// the verification timeout passed.
	EventUnverified EventKind = "unverified"
	// EventRelogin: a revoked target logged in again while watched: their
	// identity-provider account is still active.
	EventRelogin EventKind = "relogin"
	// EventChecked: the periodic self-check of the audit trail found the
	// audit channel and the event log to match.
	EventChecked EventKind = "checked"
	// EventTampered: the periodic self-check found the audit channel or
	// the event log altered; the detail names what differs.
	EventTampered EventKind = "tampered"
	// EventObserved: what the identity platform knows of a target changed
	// without a record of its own (a preview arrived, a watch stopped). It
	// redraws the approval message and is not audited: the records that
	// follow carry what matters.
	EventObserved EventKind = "observed"
)

// Valid reports whether k is one of the known event kinds.
func (k EventKind) Valid() bool {
	switch k {
	case EventRequested, EventRefused, EventApproved, EventDenied, EventCancelled,
		EventExpired, EventRevoked, EventFailed, EventEscalated,
		EventVerified, EventUnverified, EventRelogin, EventObserved, EventChecked, EventTampered:
		return true
	}
	return false
}

// Event is one thing that happened to a request.
type Event struct {
	Kind EventKind
	// Request is the request the event is about. Its fields are as they
	// stood after the event when the event is made; read back from a Store
	// they are as they stand now: State is the request's state after the event.
	Request Request
	// State is the request's state right after the event.
	State State
	// Target is the email of the target the event is about (for revoked
	// and failed), else empty.
	Target string
	// Actor is the user who caused the event; empty when revokebot itself did
	// (expiry, the revocation's outcome).
	Actor string
	// Detail explains the event: why a refusal, or the Revoker's answer.
	Detail string
	At     time.Time
	// Key, if set, identifies the person's action that caused the event
	// (such as one click); a Store records each key at most once.
	Key string
	// Hash is the event's link in the log's hash chain (see Link), as read
	// back from a Store; empty before it is recorded.
	Hash string
}

// ShowsOnMessage reports whether the event changes what the request's
// approval message shows: its first event (which posts it), and every
// change (a review, a target's outcome, escalation, expiry) — everything
// but a refused attempt, which leaves the request as it was.
func (e Event) ShowsOnMessage() bool {
	return e.Kind != EventRefused && e.Kind != EventChecked && e.Kind != EventTampered
}

// HasNotice reports whether the event is told to people beyond the two
// channels: escalation (in the request's thread, to the escalation
// approvers), a relogin (in the request's thread), and the end of a request
// that was posted (to its requester, directly), unless the requester ended
// it themselves.
func (e Event) HasNotice() bool {
	switch e.Kind {
	case EventEscalated, EventRelogin:
		return true
	case EventRefused, EventRequested, EventCancelled, EventObserved, EventVerified, EventUnverified,
		EventChecked, EventTampered:
		return false
	}
	return e.State.Final()
}

// Audited reports whether the event has a record in the audit channel:
// every event but an observation, which only redraws the approval message.
func (e Event) Audited() bool {
	return e.Kind != EventObserved
}

// Notifier is told about every event after the Store has recorded it, in
// order for each request. Delivery works from the Store's Outbox, so a
// Notifier only needs to wake it (or count events); it must not block.
type Notifier interface {
	Notify(ctx context.Context, e Event)
}
