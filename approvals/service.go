package approvals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
)

// DefaultTTL is how long a request waits for a decision unless configured otherwise.
const DefaultTTL = 30 * time.Minute

// DefaultExecTimeout bounds a revocation unless configured otherwise.
const DefaultExecTimeout = 2 * time.Minute

// DefaultMaxPending is how many pending requests one requester may have at
// once unless configured otherwise.
const DefaultMaxPending = 5

// resumeConcurrency bounds how many interrupted revocations Resume runs at
// once (the Revoker paces its own calls too).
const resumeConcurrency = 8

// Service runs requests through their life: submit, decide, execute, expire.
// Its fields are set once, before first use.
type Service struct {
	Store     Store
	Revoker   Revoker
	Notifier  Notifier
	Directory GroupDirectory
	Policy    Policy
	// TTL is how long a pending request accepts decisions. Zero means DefaultTTL.
	TTL time.Duration
	// DryRun records and decides requests as usual but never calls the
	// Revoker, whatever mode a request was created in.
	DryRun bool
	// ExecTimeout bounds one revocation and the recording of its outcome. The
	// work is detached from the caller's cancellation, so that a revocation
	// once started is finished and recorded. Zero means DefaultExecTimeout.
	ExecTimeout time.Duration
	// MaxPending is how many pending requests one requester may have at
	// once; past it, Submit refuses. Zero means DefaultMaxPending.
	MaxPending int
	// Now is the clock; nil means time.Now.
	Now Clock
	// Logger receives internal failures; nil means slog.Default().
	Logger *slog.Logger

	// submitMu makes counting a requester's pending requests and adding one
	// a single step.
	submitMu sync.Mutex
}

// SubmitInput is what a requester asks for.
type SubmitInput struct {
	Requester  string
	Revocation Revocation
	Reason     string
	// Key, if set, identifies this submission; submitting the same key again
	// returns an error wrapping ErrDuplicate and changes nothing.
	Key string
	// Channel is where the request's approval message is to be posted.
	Channel string
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return DefaultTTL
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Service) maxPending() int {
	if s.MaxPending > 0 {
		return s.MaxPending
	}
	return DefaultMaxPending
}

func (s *Service) event(kind EventKind, r Request, actor, detail string) Event {
	return Event{Kind: kind, Request: r, Actor: actor, Detail: detail, At: s.now()}
}

// announce tells the Notifier about an event the Store has recorded.
func (s *Service) announce(ctx context.Context, e Event) {
	if s.Notifier != nil {
		s.Notifier.Notify(ctx, e)
	}
}

// Submit records a new request. If the requester may not ask, or already has
// as many pending requests as allowed, the attempt is recorded as refused,
// audited, and an EFORBIDDEN error is returned along with the refused request.
// If in.Key was submitted before, it returns an error wrapping ErrDuplicate.
// Otherwise the request is pending and returned.
func (s *Service) Submit(ctx context.Context, in SubmitInput) (Request, error) {
	if in.Requester == "" || in.Revocation.Email == "" {
		return Request{}, Errorf(EINVALID, "a request needs a requester and a target email")
	}
	if checker, ok := s.Revoker.(RevocationChecker); ok {
		if err := checker.CheckRevocation(in.Revocation); err != nil {
			return Request{}, Errorf(EINVALID, "%s", err.Error())
		}
	}
	if in.Key != "" {
		seen, err := s.Store.SeenKey(ctx, in.Key)
		if err != nil {
			return Request{}, fmt.Errorf("look up submission %s: %w", in.Key, err)
		}
		if seen {
			return Request{}, fmt.Errorf("submission %s: %w", in.Key, ErrDuplicate)
		}
	}
	now := s.now()
	r := Request{
		ID:         uuid.NewString(),
		Revocation: in.Revocation,
		Reason:     in.Reason,
		Requester:  in.Requester,
		State:      StatePending,
		DryRun:     s.DryRun,
		SubmitKey:  in.Key,
		Channel:    in.Channel,
		CreatedAt:  now,
		ExpiresAt:  now.Add(s.ttl()),
	}

	allowed, err := s.Policy.MayRequest(ctx, s.Directory, in.Requester)
	if err != nil {
		s.logger().ErrorContext(ctx, "check requester", "request_id", r.ID, "user", in.Requester, "err", err)
		return s.refuseSubmit(ctx, r, "requester's group membership could not be checked: "+err.Error(),
			"Your permission to request revocations could not be checked right now, so the request was refused. Try again in a minute; if it persists, tell your revokebot admin.")
	}
	if !allowed {
		return s.refuseSubmit(ctx, r, "requester is not in the requesters list",
			"You are not allowed to request revocations. Ask your security team to add you to revokebot's requesters.")
	}

	s.submitMu.Lock()
	defer s.submitMu.Unlock()
	pending, err := s.Store.CountByRequester(ctx, in.Requester, StatePending)
	if err != nil {
		return Request{}, fmt.Errorf("count pending requests of %s: %w", in.Requester, err)
	}
	if limit := s.maxPending(); pending >= limit {
		return s.refuseSubmit(ctx, r, fmt.Sprintf("requester already has %d pending requests (limit %d)", pending, limit),
			fmt.Sprintf("You already have %d requests waiting for a decision, the most revokebot allows per person. "+
				"Cancel one you no longer need (press Deny on your own request), or wait until they are decided or expire.", pending))
	}

	e := s.event(EventRequested, r, in.Requester, "")
	if err := s.Store.Create(ctx, r, e); err != nil {
		return Request{}, fmt.Errorf("create request for %s: %w", in.Revocation.Email, err)
	}
	s.announce(ctx, e)
	return r, nil
}

// refuseSubmit records r as a refused request with its refused event, and
// returns the EFORBIDDEN error carrying msg for the requester.
func (s *Service) refuseSubmit(ctx context.Context, r Request, detail, msg string) (Request, error) {
	r.State = StateRefused
	r.Channel = "" // a refused request has no approval message
	r.FinishedAt = r.CreatedAt
	r.Outcome = detail
	ev := s.event(EventRefused, r, r.Requester, detail)
	if err := s.Store.Create(ctx, r, ev); err != nil {
		return Request{}, fmt.Errorf("record refused request %s: %w", r.ID, err)
	}
	s.announce(ctx, ev)
	e := Errorf(EFORBIDDEN, "%s", msg)
	e.Request = &r
	return r, e
}

// AttachMessage records where the request's approval message lives in chat.
func (s *Service) AttachMessage(ctx context.Context, id, channel, ts string) error {
	if err := s.Store.SetMessage(ctx, id, channel, ts); err != nil {
		return fmt.Errorf("attach message to request %s: %w", id, err)
	}
	return nil
}

// Decision is an approver's answer.
type Decision int

// The two decisions.
const (
	Approve Decision = iota + 1
	Deny
)

// DecideInput is one person's answer to a request, and where it came from.
type DecideInput struct {
	// ID is the request's ID.
	ID string
	// Actor is the chat user who decided.
	Actor    string
	Decision Decision
	// Key, if set, identifies the person's action (such as one click), so
	// that a redelivery of it changes nothing: deciding with a key already
	// recorded returns an error wrapping ErrDuplicate.
	Key string
	// On, if set, is the message the decision was made on: the decision
	// counts only when that is the request's own approval message.
	On *MessageRef
}

// MessageRef locates a chat message.
type MessageRef struct {
	Channel, TS string
}

// Decide applies actor's decision to request id; see DecideFrom.
func (s *Service) Decide(ctx context.Context, id, actor string, d Decision) (Request, error) {
	return s.DecideFrom(ctx, DecideInput{ID: id, Actor: actor, Decision: d})
}

// DecideFrom applies a decision to a request. Exactly one decision wins per
// request, however many arrive at once; the others get ECONFLICT with the
// request as decided. A requester denying their own request cancels it; a
// requester approving it, anybody outside the approvers, or a decision made
// on another message than the request's own gets EFORBIDDEN, and the attempt
// is audited as refused. Permission is checked before anything about the
// request's state is revealed. A decision on an expired request expires it
// and returns EEXPIRED.
//
// On approval the revocation is executed before DecideFrom returns, so the
// caller should pass a context that outlives the user's interaction.
func (s *Service) DecideFrom(ctx context.Context, in DecideInput) (Request, error) {
	d, actor := in.Decision, in.Actor
	if d != Approve && d != Deny {
		return Request{}, Errorf(EINVALID, "unknown decision %d", d)
	}
	if in.Key != "" {
		seen, err := s.Store.SeenKey(ctx, in.Key)
		if err != nil {
			return Request{}, fmt.Errorf("look up decision %s: %w", in.Key, err)
		}
		if seen {
			return Request{}, fmt.Errorf("decision %s: %w", in.Key, ErrDuplicate)
		}
	}
	r, err := s.get(ctx, in.ID)
	if err != nil {
		return Request{}, err
	}

	var to State
	var kind EventKind
	switch {
	case d == Deny && actor == r.Requester:
		to, kind = StateCancelled, EventCancelled
	case d == Approve && actor == r.Requester:
		return r, s.refuse(ctx, r, in.Key, actor, "requester tried to approve their own request",
			"You cannot approve your own request: another approver has to.")
	default:
		ok, err := s.Policy.MayApprove(ctx, s.Directory, actor, r)
		if err != nil {
			s.logger().ErrorContext(ctx, "check approver", "request_id", r.ID, "user", actor, "err", err)
			return r, s.refuse(ctx, r, in.Key, actor, "approver's group membership could not be checked: "+err.Error(),
				"Your permission to decide could not be checked right now, so nothing changed. Try again in a minute.")
		}
		if !ok {
			return r, s.refuse(ctx, r, in.Key, actor, "user is not an approver",
				"You are not allowed to decide revocation requests.")
		}
		if d == Approve {
			to, kind = StateExecuting, EventApproved
		} else {
			to, kind = StateDenied, EventDenied
		}
	}
	if in.On != nil {
		if r.MessageTS == "" && r.State == StatePending && in.On.Channel == r.Channel {
			// The message is shown before chat says where it is: the
			// decision cannot be checked yet, and is not counted.
			return r, Errorf(EUNAVAILABLE, "This request's message is still being recorded. Click again in a moment.")
		}
		if in.On.Channel != r.Channel || in.On.TS != r.MessageTS || r.MessageTS == "" {
			return r, s.refuse(ctx, r, in.Key, actor, "decision made on another message than the request's own",
				"This button is not on the request's own message, so it was ignored. Decide on the request's message in its channel.")
		}
	}
	if r.State != StatePending {
		return r, s.conflict(ctx, r, in.Key)
	}
	// The membership lookup may have taken a while: a decision must still
	// land before the deadline.
	if !s.now().Before(r.ExpiresAt) {
		return s.expireNow(ctx, r)
	}
	if to == StateExecuting && s.DryRun {
		r.DryRun = true // approved while dry run is on: nothing will be revoked
	}

	next, err := s.swap(ctx, r, to, actor, "", kind, "", in.Key)
	if err != nil {
		return next, err
	}
	if next.State == StateExecuting {
		return s.Execute(ctx, next, "")
	}
	return next, nil
}

// Execute carries out an approved (executing) request and records the outcome.
// note, if set, is prefixed to the audit detail (e.g. that this is a resume).
func (s *Service) Execute(ctx context.Context, r Request, note string) (Request, error) {
	if r.State != StateExecuting {
		return r, fmt.Errorf("execute request %s: state is %s, not executing", r.ID, r.State)
	}
	timeout := s.ExecTimeout
	if timeout <= 0 {
		timeout = DefaultExecTimeout
	}
	detached := context.WithoutCancel(ctx)
	var (
		to      = StateRevoked
		kind    = EventRevoked
		outcome string
	)
	if r.DryRun || s.DryRun {
		r.DryRun = true
		outcome = "dry run: Cloudflare was not called"
	} else {
		revokeCtx, cancel := context.WithTimeout(detached, timeout)
		summary, err := s.Revoker.Revoke(revokeCtx, r.Revocation)
		cancel()
		if err != nil {
			to, kind, outcome = StateFailed, EventFailed, err.Error()
			s.logger().ErrorContext(ctx, "revoke", "request_id", r.ID, "err", err)
		} else {
			outcome = summary
		}
	}
	if note != "" {
		outcome = note + "; " + outcome
	}
	// The outcome is recorded with a deadline of its own: a revocation that
	// used up its time must still end as failed, not stay executing.
	recordCtx, cancel := context.WithTimeout(detached, recordTimeout)
	defer cancel()
	return s.swap(recordCtx, r, to, "", outcome, kind, outcome, "")
}

// recordTimeout bounds the recording of a revocation's outcome.
const recordTimeout = 30 * time.Second

// ExpireDue expires every pending request whose expiry time has passed and
// returns how many it expired. It stops early, between requests, when ctx ends.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	pending, err := s.Store.ListByState(ctx, StatePending)
	if err != nil {
		return 0, fmt.Errorf("list pending requests: %w", err)
	}
	n := 0
	for _, r := range pending {
		if ctx.Err() != nil {
			return n, nil
		}
		if s.now().Before(r.ExpiresAt) {
			continue
		}
		// Once started, an expiry is recorded and announced in full.
		expired, err := s.expire(context.WithoutCancel(ctx), r)
		if err != nil && ErrorCode(err) != ECONFLICT {
			return n, err
		}
		if expired {
			n++
		}
	}
	return n, nil
}

// RunExpirer calls ExpireDue every interval until ctx ends.
func (s *Service) RunExpirer(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.ExpireDue(ctx); err != nil && ctx.Err() == nil {
			s.logger().ErrorContext(ctx, "expire requests", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Resume executes every request left in the executing state, e.g. by a crash
// between approval and the revocation's outcome, a few at a time. Revoking
// again is safe: Cloudflare's revocation is idempotent. When ctx ends it
// starts no more, and waits for those under way.
func (s *Service) Resume(ctx context.Context) error {
	executing, err := s.Store.ListByState(ctx, StateExecuting)
	if err != nil {
		return fmt.Errorf("list executing requests: %w", err)
	}
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, resumeConcurrency)
		errs  = make([]error, len(executing))
	)
	for i, r := range executing {
		if ctx.Err() != nil {
			break // the rest stay executing, for the next start
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if _, err := s.Execute(ctx, r, "resumed after a restart"); err != nil && ErrorCode(err) != ECONFLICT {
				errs[i] = fmt.Errorf("resume request %s: %w", r.ID, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// expire moves a pending request to expired and audits it. It reports false,
// with an ECONFLICT error, if the request was decided meanwhile.
func (s *Service) expire(ctx context.Context, r Request) (bool, error) {
	detail := "no decision before " + r.ExpiresAt.Format(time.RFC3339)
	if _, err := s.swap(ctx, r, StateExpired, "", detail, EventExpired, detail, ""); err != nil {
		return false, err
	}
	return true, nil
}

// expireNow expires r for a decision that came too late, and returns the
// EEXPIRED error for the person who decided (or ECONFLICT if another decision
// won meanwhile).
func (s *Service) expireNow(ctx context.Context, r Request) (Request, error) {
	if _, err := s.expire(ctx, r); err != nil {
		return r, err
	}
	r.State = StateExpired
	e := Errorf(EEXPIRED, "This request expired at %s without a decision. Ask for a new one if it is still needed.",
		r.ExpiresAt.Format(time.RFC1123))
	e.Request = &r
	return r, e
}

// refuse audits a refused decision and returns the matching EFORBIDDEN
// error, or an error wrapping ErrDuplicate if the decision's key was already
// recorded (a redelivery: it was refused, and told, before).
func (s *Service) refuse(ctx context.Context, r Request, key, actor, detail, msg string) error {
	ev := s.event(EventRefused, r, actor, detail)
	ev.Key = key
	if err := s.Store.Append(ctx, ev); errors.Is(err, ErrDuplicate) {
		return fmt.Errorf("refused decision %s: %w", key, err)
	} else if err != nil {
		// Nothing changed; the refusal itself stands, only its record is missing.
		s.logger().ErrorContext(ctx, "record refused decision", "request_id", r.ID, "user", actor, "detail", detail, "err", err)
	} else {
		s.announce(ctx, ev)
	}
	e := Errorf(EFORBIDDEN, "%s", msg)
	e.Request = &r
	return e
}

// swap moves r to state to atomically, recording an event of the given kind
// with it, and announces the event. If another change won the race, it
// returns ECONFLICT with the request as it now stands.
// key, if set, identifies the action that caused the change (see
// DecideInput.Key).
func (s *Service) swap(ctx context.Context, r Request, to State, actor, outcome string, kind EventKind, detail, key string) (Request, error) {
	next, err := r.apply(to, actor, s.now(), outcome)
	if err != nil {
		return r, err
	}
	e := s.event(kind, next, actor, detail)
	e.Key = key
	if err := s.Store.CompareAndSwap(ctx, r.State, next, e); err != nil {
		if errors.Is(err, ErrDuplicate) {
			return r, fmt.Errorf("move request %s to %s: %w", r.ID, to, err)
		}
		if !errors.Is(err, ErrConflict) {
			return r, fmt.Errorf("move request %s to %s: %w", r.ID, to, err)
		}
		current, gerr := s.get(ctx, r.ID)
		if gerr != nil {
			return r, gerr
		}
		return current, s.conflict(ctx, current, key)
	}
	s.announce(ctx, e)
	return next, nil
}

// Get returns request id, or an ENOTFOUND error.
func (s *Service) Get(ctx context.Context, id string) (Request, error) { return s.get(ctx, id) }

func (s *Service) get(ctx context.Context, id string) (Request, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Request{}, Errorf(ENOTFOUND, "That request ID is not valid.")
	}
	r, err := s.Store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Request{}, Errorf(ENOTFOUND, "There is no request %s.", id)
	}
	if err != nil {
		return Request{}, fmt.Errorf("get request %s: %w", id, err)
	}
	return r, nil
}

// conflict returns the ECONFLICT error for a change that found r already
// decided, or, if key (the identity of the person's action) is recorded by
// now, an error wrapping ErrDuplicate: the same action, delivered twice,
// raced itself, and its first delivery is what decided.
func (s *Service) conflict(ctx context.Context, r Request, key string) error {
	if key != "" {
		if seen, err := s.Store.SeenKey(ctx, key); err == nil && seen {
			return fmt.Errorf("decision %s: %w", key, ErrDuplicate)
		}
	}
	return conflict(r)
}

func conflict(r Request) error {
	e := Errorf(ECONFLICT, "This request is already %s.", r.State)
	e.Request = &r
	return e
}
