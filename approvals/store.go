package approvals

import (
	"context"
	"fmt"
	"time"
)

// Store keeps requests and the log of their events. Every change of a request
// is written together with the event that records it, in one transaction, so
// that no state change exists without its event and vice versa: the event log
// doubles as the outbox from which chat is told (see Outbox).
//
// Implementations must make CompareAndSwap atomic: of two concurrent swaps
// from the same state, exactly one succeeds.
type Store interface {
	// Create stores a new request together with its first event (requested,
	// or refused). If r.SubmitKey is not empty and a request with that key
	// exists, it stores nothing and returns an error wrapping ErrDuplicate.
	Create(ctx context.Context, r Request, e Event) error
	// Get returns the request with the given ID, or an error wrapping
	// ErrNotFound if there is none.
	Get(ctx context.Context, id string) (Request, error)
	// SetMessage records where a request's approval message was posted.
	SetMessage(ctx context.Context, id, channel, ts string) error
	// CompareAndSwap writes next's mutable fields (State, DryRun, DecidedBy,
	// DecidedAt, Outcome, FinishedAt) to the stored request next.ID and
	// appends e to its events, but only if the stored request is still in
	// state from. Otherwise it returns an error wrapping ErrConflict (or
	// ErrNotFound) and changes nothing. If e.Key is already recorded, it
	// returns an error wrapping ErrDuplicate and changes nothing. The other
	// fields are fixed at Create (SetMessage sets Channel and MessageTS).
	CompareAndSwap(ctx context.Context, from State, next Request, e Event) error
	// Append records an event that changes no request's state, such as a
	// refused decision. If e.Key is already recorded, it returns an error
	// wrapping ErrDuplicate and records nothing.
	Append(ctx context.Context, e Event) error
	// SeenKey reports whether a request's SubmitKey or an event's Key equal
	// to key is recorded.
	SeenKey(ctx context.Context, key string) (bool, error)
	// ListByState returns the requests in state s, oldest first.
	ListByState(ctx context.Context, s State) ([]Request, error)
	// CountByRequester returns how many requests of requester are in state s.
	CountByRequester(ctx context.Context, requester string, s State) (int, error)
}

// Outbox is the part of the Store that hands recorded events to whoever
// delivers them to chat. An event is delivered in up to two parts: its audit
// record, and, for a request's first event and every event that changes its
// state, the posting or redrawing of the request's approval message. The
// parts are delivered independently (a message that cannot be redrawn must
// not hold up the audit trail), each in event order, and each is marked once
// done, so a restart redoes only what was not.
//
// Refused attempts are audited apart from the other events (see
// PendingRefusals), so that a flood of them never delays the records of
// real requests.
//
// A delivery that may have reached chat before a crash is found again rather
// than sent twice: BeginAttempt and BeginPost say whether an earlier attempt
// was made, and since when, so that the deliverer can look for its result.
type Outbox interface {
	// Undelivered returns up to limit deliveries whose part is still to do,
	// in the order their events happened. For AuditRecord, refused events
	// are left out: they are read with PendingRefusals.
	Undelivered(ctx context.Context, part Part, limit int) ([]Delivery, error)
	// MarkDelivered records that part of event seq was delivered (or, for a
	// message update, that it cannot be, for good).
	MarkDelivered(ctx context.Context, seq int64, part Part) error
	// BeginAttempt records that a delivery of part of event seq is about to
	// be tried, and returns when the first such attempt began: the zero time
	// if this is the first.
	BeginAttempt(ctx context.Context, seq int64, part Part) (time.Time, error)
	// BeginPost records that the approval message of request id is about to
	// be posted, and returns when the first such attempt began: the zero time
	// if this is the first.
	BeginPost(ctx context.Context, id string) (time.Time, error)
	// PendingRefusals returns, per actor, the refused events whose audit
	// record is still to deliver, oldest actor first.
	PendingRefusals(ctx context.Context) ([]Refusals, error)
	// MarkRefusalsDelivered marks the audit records of actor's refused
	// events up to and including seq delivered, at time at.
	MarkRefusalsDelivered(ctx context.Context, actor string, through int64, at time.Time) error
	// Backlog returns how many events have a part still to deliver.
	Backlog(ctx context.Context) (int, error)
}

// Refusals are one actor's refused attempts whose audit record is still to
// deliver.
type Refusals struct {
	Actor string
	// Count is how many there are; First and Last are the oldest and the
	// newest of them.
	Count       int
	First, Last Delivery
	// LastAudited is when the actor's latest refused attempt was last
	// delivered to the audit channel, or the zero time.
	LastAudited time.Time
}

// Part is one of the two deliveries of an event.
type Part int

// The parts of an event's delivery.
const (
	// AuditRecord is the event's record in the audit channel.
	AuditRecord Part = iota + 1
	// MessageUpdate is the redrawing of the request's approval message.
	MessageUpdate
)

// String names the part.
func (p Part) String() string {
	switch p {
	case AuditRecord:
		return "audit record"
	case MessageUpdate:
		return "message update"
	}
	return fmt.Sprintf("Part(%d)", int(p))
}

// Delivery is a recorded event with what is left to deliver of it.
type Delivery struct {
	// Seq orders all events; it identifies the delivery.
	Seq int64
	// Event is the event as recorded. Its Request is the request's current
	// row with State as it stood after the event; the other fields that
	// change (DecidedBy, Outcome, …) are current, not historical.
	Event Event
	// Current is the request as it stands now, to draw its message from.
	Current Request
}

// Clock returns the current time. Tests inject their own.
type Clock func() time.Time
