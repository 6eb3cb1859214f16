package approvals

import (
	"context"
	"fmt"
	"time"
)

// Store keeps requests and the log of their events. Every change of a request
// is written together with the events that record it, in one transaction, so
// that no change exists without its event and vice versa: the event log
// doubles as the outbox from which chat is told (see Outbox).
//
// Every invariant that must hold across processes holds here: one decision
// per person, one outcome per target, the per-requester cap on pending
// requests, each action's key recorded once. The behaviour every Store
// promises is written as tests in package approvals/storetest.
type Store interface {
	// Create stores a new request (with Version 1) together with its first
	// event (requested, or refused). If r.SubmitKey is not empty and a
	// request with that key exists, it stores nothing and returns an error
	// wrapping ErrDuplicate. If r is pending, maxPending > 0 and the
	// requester already has maxPending pending requests, it stores nothing
	// and returns an error wrapping ErrLimit; the count and the insert are
	// one atomic step.
	Create(ctx context.Context, r Request, e Event, maxPending int) error
	// Get returns the request with the given ID, or an error wrapping
	// ErrNotFound if there is none.
	Get(ctx context.Context, id string) (Request, error)
	// Update changes request id as fn says, atomically: fn gets the request
	// as stored and returns the changed request and the events that record
	// the change. If the stored request changed meanwhile (its Version is no
	// longer the one fn saw), Update calls fn again on the fresh request, a
	// few times, then gives up with an error wrapping ErrConflict. So fn
	// must have no side effects. If fn returns an error, Update changes
	// nothing and returns the request as fn saw it with that error. On
	// success it returns the request as stored, with Version incremented.
	//
	// What may change: the State, Outcome and FinishedAt of a target not
	// yet done (an outcome, once recorded, is final); a target's
	// observations (Look, Check, Watch; a verification over and a relogin
	// seen are final); new reviews (appended:
	// existing reviews never change, and a second review by the same person
	// is refused with an error wrapping ErrReviewed); DryRun (from false to
	// true only), EscalatedAt, ExpiredAt, Refusal, FinishedAt. A change that
	// breaks these rules is refused with an error, and nothing is written.
	// Everything else is fixed at Create, and changes fn makes to it are
	// ignored (SetMessage sets Channel and MessageTS); NextVersion applies
	// these rules, for every Store. If an event's Key is
	// already recorded, Update changes nothing and returns an error wrapping
	// ErrDuplicate.
	Update(ctx context.Context, id string, fn UpdateFunc) (Request, error)
	// SetMessage records where a request's approval message was posted.
	SetMessage(ctx context.Context, id, channel, ts string) error
	// Append records an event that changes no request, such as a refused
	// decision. An event that is not audited (Event.Audited) is stored with
	// its audit record done. If e.Key is already recorded, it returns an error wrapping
	// ErrDuplicate and records nothing.
	Append(ctx context.Context, e Event) error
	// SeenKey reports whether a request's SubmitKey or an event's Key equal
	// to key is recorded.
	SeenKey(ctx context.Context, key string) (bool, error)
	// ListByState returns the requests in state s, oldest first.
	ListByState(ctx context.Context, s State) ([]Request, error)
	// CountByRequester returns how many requests of requester are in state s.
	CountByRequester(ctx context.Context, requester string, s State) (int, error)
	// FindByPrefix returns up to limit requests whose ID starts with prefix
	// (lower-case), oldest first.
	FindByPrefix(ctx context.Context, prefix string, limit int) ([]Request, error)
	// Watched returns the requests, oldest first, with a target still
	// observed after its revocation: its verification pending (whatever
	// its Until), or its watch for a return on at now.
	Watched(ctx context.Context, now time.Time) ([]Request, error)
	// Chain returns up to limit events of the log (all if limit is
	// negative) from record number from on, in order, each with its stored
	// hash (see Link, and the chain's definition in chain.go). Every event
	// is chained as it is recorded: its hash follows from the hash of the
	// event recorded before it.
	Chain(ctx context.Context, from int64, limit int) ([]Link, error)

	Leases
}

// Leases are named claims on work, each held by one owner (a replica of
// revokebot) at a time and only for a while: an owner that dies leaves a
// lease that ends by itself, and another owner may then take the work over.
// They live in the Store, so that they hold across processes.
//
// Times are the store's own clock (the database server's, when there is
// one), so that owners on machines whose clocks differ agree on when a lease
// ends.
type Leases interface {
	// Lease takes lease name for owner for ttl from now, if nobody holds
	// it, its holder's time is up, or owner holds it already (then it is
	// renewed). It reports whether owner holds it now.
	Lease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// Renew extends owner's lease name for ttl from now, and reports
	// whether owner still holds it. Unlike Lease, it never takes a lease
	// that owner no longer holds: one that another owner took over, even
	// if that owner released it since, is lost for good to owner.
	Renew(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// Release ends owner's lease name; a lease held by another owner is
	// left as it is.
	Release(ctx context.Context, name, owner string) error
	// HeldLeases returns the leases held now (not ended), ordered by name.
	HeldLeases(ctx context.Context) ([]Lease, error)
}

// Lease is one held lease.
type Lease struct {
	Name, Owner string
	// Until is when the lease ends unless renewed.
	Until time.Time
}

// ExecutionLease names the lease of the owner revoking request id's targets.
func ExecutionLease(id string) string { return "execute:" + id }

// UpdateFunc states a change of a request as a function of its stored value;
// see Store.Update.
type UpdateFunc func(current Request) (next Request, events []Event, err error)

// Outbox is the part of the Store that hands recorded events to whoever
// delivers them to chat. An event is delivered in up to three parts: its audit
// record; for every event but a refusal, the posting or redrawing of the
// request's approval message; and for some (Event.HasNotice) a notice to
// people beyond the two channels. The
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
	// Undelivered returns up to limit deliveries whose part is still to do
	// (all of them if limit is negative), in the order their events
	// happened, claimed or not. For AuditRecord,
	// refused events are left out: they are read with PendingRefusals.
	Undelivered(ctx context.Context, part Part, limit int) ([]Delivery, error)
	// Claim returns up to limit deliveries whose part is still to do, in
	// the order their events happened, and claims them for owner for ttl
	// (by the store's clock). Until a claim ends (by MarkDelivered, by
	// ReleaseClaims, or by its time running out), Claim gives neither that
	// delivery nor any later delivery of part of the same request to any
	// other owner, so that several owners never deliver the same part twice
	// and one request's deliveries stay in order. Claims owner holds already
	// are renewed and returned again. Claims are made one caller at a time.
	// For AuditRecord, refused events are left out.
	Claim(ctx context.Context, part Part, owner string, limit int, ttl time.Duration) ([]Delivery, error)
	// ReleaseClaims ends every claim of owner that is not delivered yet, so
	// that other owners may take the work over at once (at shutdown).
	ReleaseClaims(ctx context.Context, owner string) error
	// MarkDelivered records that part of event seq was delivered (or, for a
	// message update, that it cannot be, for good), and ends its claim.
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
	// Notice is telling people beyond the two channels (see
	// Event.HasNotice): a post in the request's thread, or a direct message.
	Notice
)

// String names the part.
func (p Part) String() string {
	switch p {
	case AuditRecord:
		return "audit record"
	case MessageUpdate:
		return "message update"
	case Notice:
		return "notice"
	}
	return fmt.Sprintf("Part(%d)", int(p))
}

// Delivery is a recorded event with what is left to deliver of it.
type Delivery struct {
	// Seq orders all events; it identifies the delivery.
	Seq int64
	// Event is the event as recorded. Its State is the request's state
	// right after the event; its Request is the request as it stands now.
	Event Event
	// Current is the request as it stands now, to draw its message from.
	Current Request
}

// Clock returns the current time. Tests inject their own.
type Clock func() time.Time
