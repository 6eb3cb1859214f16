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
)

// Valid reports whether k is one of the known event kinds.
func (k EventKind) Valid() bool {
	switch k {
	case EventRequested, EventRefused, EventApproved, EventDenied, EventCancelled,
		EventExpired, EventRevoked, EventFailed:
		return true
	}
	return false
}

// Event is one thing that happened to a request.
type Event struct {
	Kind EventKind
	// Request is the request as it stands after the event.
	Request Request
	// Actor is the user who caused the event; empty when revokebot itself did
	// (expiry, the revocation's outcome).
	Actor string
	// Detail explains the event: why a refusal, or the Revoker's answer.
	Detail string
	At     time.Time
	// Key, if set, identifies the person's action that caused the event
	// (such as one click); a Store records each key at most once.
	Key string
}

// ChangesState reports whether the event moved the request to a new state
// (as opposed to a refused attempt that left it as it was).
func (e Event) ChangesState() bool {
	return e.Kind != EventRefused && e.Kind != EventRequested
}

// ShowsOnMessage reports whether the event changes what the request's
// approval message shows: its first event (which posts it), and every state
// change.
func (e Event) ShowsOnMessage() bool {
	return e.Kind == EventRequested || e.ChangesState()
}

// Notifier is told about every event after the Store has recorded it, in
// order for each request. Delivery works from the Store's Outbox, so a
// Notifier only needs to wake it (or count events); it must not block.
type Notifier interface {
	Notify(ctx context.Context, e Event)
}
