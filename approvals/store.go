package approvals

import (
	"context"
	"time"
)

// Store keeps requests. Implementations must make CompareAndSwap atomic: of
// two concurrent swaps from the same state, exactly one succeeds.
type Store interface {
	// Create stores a new request. It fails if the ID exists.
	Create(ctx context.Context, r Request) error
	// Get returns the request with the given ID, or an error wrapping
	// ErrNotFound if there is none.
	Get(ctx context.Context, id string) (Request, error)
	// SetMessage records where a request's approval message was posted.
	SetMessage(ctx context.Context, id, channel, ts string) error
	// CompareAndSwap writes next's mutable fields (State, DecidedBy,
	// DecidedAt, Outcome, FinishedAt) to the stored request next.ID, but only
	// if the stored request is still in state from. Otherwise it returns an
	// error wrapping ErrConflict (or ErrNotFound) and changes nothing. The
	// other fields are fixed at Create (SetMessage sets Channel and MessageTS).
	CompareAndSwap(ctx context.Context, from State, next Request) error
	// ListByState returns the requests in state s, oldest first.
	ListByState(ctx context.Context, s State) ([]Request, error)
}

// Clock returns the current time. Tests inject their own.
type Clock func() time.Time
