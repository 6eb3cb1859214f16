package approvals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// DefaultTTL is how long a request waits for a decision unless configured otherwise.
const DefaultTTL = 30 * time.Minute

// DefaultExecTimeout bounds the revocation of one target unless configured otherwise.
const DefaultExecTimeout = 2 * time.Minute

// DefaultMaxPending is how many pending requests one requester may have at
// once unless configured otherwise.
const DefaultMaxPending = 5

// DefaultMaxTargets is how many targets one request may name unless
// configured otherwise.
const DefaultMaxTargets = 50

// DefaultLeaseTTL is how long a lease on a revocation in progress lasts
// unless renewed, unless configured otherwise.
const DefaultLeaseTTL = 15 * time.Second

// DefaultReplica names this process when Service.Replica is empty: the host
// name (a pod's name, in Kubernetes) and a random suffix, so that two
// processes on one host differ.
var DefaultReplica = func() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "revokebot"
	}
	return host + "-" + uuid.NewString()[:8]
}()

// resumeConcurrency bounds how many interrupted requests Resume runs at
// once (the Revoker paces its own calls too).
const resumeConcurrency = 8

// MaxDenyReason bounds a denial's reason, in characters.
const MaxDenyReason = 500

// Service runs requests through their life: submit, decide, execute, expire.
// Its fields are set once, before first use. It keeps no invariant of its
// own (only a bounded queue of previews to make): every invariant is the
// Store's, so several Services (in several processes) may share one Store.
type Service struct {
	Store   Store
	Revoker Revoker
	// Inspector, if set, is asked what the identity platform knows of the
	// targets: before approval (the preview on the approval message),
	// after each revocation (are the sessions gone), and while a revoked
	// target is watched (did they log in again). Nil turns these off.
	Inspector Inspector
	// VerifyTimeout is how long a revoked target's sessions are looked at,
	// at most, before its verification gives up. Zero means
	// DefaultVerifyTimeout.
	VerifyTimeout time.Duration
	// WatchFor is how long a revoked target is watched for a return; zero
	// turns the watch off. WatchEvery is how often its logins are read;
	// zero means DefaultWatchEvery.
	WatchFor, WatchEvery time.Duration
	Notifier             Notifier
	Directory            Directory
	Policy               Policy
	// TTL is how long a pending request accepts decisions. Zero means DefaultTTL.
	TTL time.Duration
	// EscalateAfter, if positive, is how long a request may stay pending
	// before it is escalated to Policy.EscalationApprovers.
	EscalateAfter time.Duration
	// DryRun records and decides requests as usual but never calls the
	// Revoker, whatever mode a request was created in.
	DryRun bool
	// ExecTimeout bounds the revocation of one target and the recording of
	// its outcome. The work is detached from the caller's cancellation, so
	// that a revocation once started is finished and recorded. Zero means
	// DefaultExecTimeout.
	ExecTimeout time.Duration
	// MaxPending is how many pending requests one requester may have at
	// once; past it, Submit refuses. Zero means DefaultMaxPending.
	MaxPending int
	// MaxTargets is how many targets one request may name. Zero means
	// DefaultMaxTargets.
	MaxTargets int
	// Replica names this process among the replicas sharing the Store, in
	// the leases it takes (see Store.Lease) and so in metrics. Empty means
	// DefaultReplica.
	Replica string
	// LeaseTTL is how long the lease on a revocation in progress lasts
	// unless renewed; it is renewed every third of it while the revocation
	// runs. A replica that dies while revoking leaves a lease that ends
	// within LeaseTTL, and the next sweep of Resume on any replica then
	// takes the revocation over. Zero means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now Clock
	// Logger receives internal failures; nil means slog.Default().
	Logger *slog.Logger

	previews previewQueue
}

// TargetInput is one person a requester names.
type TargetInput struct {
	Email string
	// Person is the chat user the email was resolved from, if any.
	Person string
}

// SubmitInput is what a requester asks for.
type SubmitInput struct {
	Requester string
	Targets   []TargetInput
	Options   Options
	Reason    string
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

func (s *Service) replica() string {
	if s.Replica != "" {
		return s.Replica
	}
	return DefaultReplica
}

func (s *Service) leaseTTL() time.Duration {
	if s.LeaseTTL > 0 {
		return s.LeaseTTL
	}
	return DefaultLeaseTTL
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// announce tells the Notifier about events the Store has recorded.
func (s *Service) announce(ctx context.Context, events ...Event) {
	if s.Notifier == nil {
		return
	}
	for _, e := range events {
		s.Notifier.Notify(ctx, e)
	}
}

// Submit records a new request. If the requester may not ask, or already has
// as many pending requests as allowed, the attempt is recorded as refused,
// audited, and an EFORBIDDEN error is returned along with the refused request.
// If in.Key was submitted before, it returns an error wrapping ErrDuplicate.
// Targets naming the same email (in any case) count once. Otherwise the
// request is pending and returned.
//
// Permission is checked before the targets: a refused request is recorded
// with its targets as given, and a target may then lack its email (a person
// the adapter did not look up for someone who may not ask; see
// CheckRequester). A request that is allowed needs every target's email.
func (s *Service) Submit(ctx context.Context, in SubmitInput) (Request, error) {
	if in.Requester == "" || len(in.Targets) == 0 {
		return Request{}, Errorf(EINVALID, WhyInvalid, "a request needs a requester and at least one target")
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
		ID:        uuid.NewString(),
		Targets:   distinctTargets(in.Targets),
		Options:   in.Options,
		Reason:    in.Reason,
		Requester: in.Requester,
		Required:  max(s.Policy.RequiredApprovals, 1),
		DryRun:    s.DryRun,
		SubmitKey: in.Key,
		Channel:   in.Channel,
		CreatedAt: now,
		ExpiresAt: now.Add(s.ttl()),
	}

	why, err := s.Policy.MayRequest(ctx, s.Directory, in.Requester)
	if err != nil {
		s.logger().ErrorContext(ctx, "check requester", "request_id", r.ID, "user", in.Requester, "err", err)
		return s.refuseSubmit(ctx, r, why, "requester's permission could not be checked: "+err.Error(), 0)
	}
	if why != "" {
		return s.refuseSubmit(ctx, r, why, refusalDetail(why), 0)
	}
	if err := s.checkTargets(r.Targets, in.Options); err != nil {
		return Request{}, err
	}

	limit := orDefault(s.MaxPending, DefaultMaxPending)
	e := Event{Kind: EventRequested, Request: r, State: StatePending, Actor: in.Requester, At: now}
	err = s.Store.Create(ctx, r, e, limit)
	if errors.Is(err, ErrLimit) {
		return s.refuseSubmit(ctx, r, WhyPendingLimit, fmt.Sprintf("requester already has %d pending requests (the limit)", limit), limit)
	}
	if err != nil {
		return Request{}, fmt.Errorf("create request for %s: %w", strings.Join(r.Emails(), ", "), err)
	}
	r.Version = 1
	s.announce(ctx, e)
	if s.Inspector != nil {
		// The approval message does not wait for the preview: it is
		// posted, then redrawn when the preview arrives.
		s.queuePreview(ctx, r)
	}
	return r, nil
}

// CheckRequester says, without recording anything, whether user may submit
// requests: nil, or the EFORBIDDEN error Submit would refuse them with. An
// adapter calls it before it looks anything up for the request (such as who
// a mentioned person is), so that someone who may not ask learns nothing;
// Submit checks again, and records the refusal.
func (s *Service) CheckRequester(ctx context.Context, user string) error {
	why, err := s.Policy.MayRequest(ctx, s.Directory, user)
	if err != nil {
		s.logger().ErrorContext(ctx, "check requester", "user", user, "err", err)
	}
	if why != "" {
		return &Error{Code: EFORBIDDEN, Why: why}
	}
	return nil
}

// distinctTargets returns the targets waiting, without repeats: the same
// email in any case, or the same person not yet resolved to an email. A
// person resolved to an email typed too is kept with it.
func distinctTargets(in []TargetInput) []Target {
	var targets []Target
	seen := map[string]int{}
	for _, t := range in {
		key := "person:" + t.Person
		if t.Email != "" {
			key = "email:" + strings.ToLower(t.Email)
		}
		if i, dup := seen[key]; dup {
			if targets[i].Person == "" {
				targets[i].Person = t.Person
			}
			continue
		}
		seen[key] = len(targets)
		targets = append(targets, Target{Email: t.Email, Person: t.Person, State: TargetWaiting})
	}
	return targets
}

// checkTargets validates the targets of a request about to be made.
func (s *Service) checkTargets(targets []Target, opts Options) error {
	for _, t := range targets {
		if t.Email == "" {
			return Errorf(EINVALID, WhyInvalid, "a target has no email")
		}
	}
	if limit := orDefault(s.MaxTargets, DefaultMaxTargets); len(targets) > limit {
		return &Error{Code: EINVALID, Why: WhyTooManyTargets, Limit: limit}
	}
	if opts.UserUID != "" && len(targets) > 1 {
		return Errorf(EINVALID, WhyInvalid, "--uid pins one Cloudflare user: name only one target with it")
	}
	if checker, ok := s.Revoker.(RevocationChecker); ok {
		for _, t := range targets {
			if err := checker.CheckRevocation(opts.For(t.Email)); err != nil {
				return Errorf(EINVALID, WhyInvalid, "%s", err.Error())
			}
		}
	}
	return nil
}

// refusalDetail is the audit's wording of a refusal.
func refusalDetail(why Why) string {
	switch why {
	case WhyNotRequester:
		return "requester is not in the requesters list"
	case WhyNotApprover:
		return "user is not an approver"
	case WhyOwnRequest:
		return "requester tried to approve their own request"
	case WhyGuest:
		return "user is a guest of the workspace"
	case WhyExternal:
		return "user belongs to another organisation"
	case WhyOtherMessage:
		return "decision made on another message than the request's own"
	}
	return string(why)
}

// refuseSubmit records r as a refused request with its refused event, and
// returns the EFORBIDDEN error saying why.
func (s *Service) refuseSubmit(ctx context.Context, r Request, why Why, detail string, limit int) (Request, error) {
	r.Refusal = detail
	r.Channel = "" // a refused request has no approval message
	r.FinishedAt = r.CreatedAt
	ev := Event{Kind: EventRefused, Request: r, State: StateRefused, Actor: r.Requester, Detail: detail, At: r.CreatedAt}
	if err := s.Store.Create(ctx, r, ev, 0); err != nil {
		return Request{}, fmt.Errorf("record refused request %s: %w", r.ID, err)
	}
	r.Version = 1
	s.announce(ctx, ev)
	e := fail(EFORBIDDEN, why, r)
	e.Limit = limit
	return r, e
}

// AttachMessage records where the request's approval message lives in chat.
func (s *Service) AttachMessage(ctx context.Context, id, channel, ts string) error {
	if err := s.Store.SetMessage(ctx, id, channel, ts); err != nil {
		return fmt.Errorf("attach message to request %s: %w", id, err)
	}
	return nil
}

// DecideInput is one person's answer to a request, and where it came from.
type DecideInput struct {
	// ID is the request's ID.
	ID string
	// Actor is the chat user who decided.
	Actor    string
	Decision Decision
	// Reason explains a denial; required when an approver denies (not when
	// the requester cancels), at most MaxDenyReason characters.
	Reason string
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

// Decide applies actor's decision to request id, from nowhere in
// particular and without a key; see DecideFrom. An approver's denial is
// recorded with the reason "denied". Adapters use DecideFrom.
func (s *Service) Decide(ctx context.Context, id, actor string, d Decision) (Request, error) {
	in := DecideInput{ID: id, Actor: actor, Decision: d}
	if d == Deny {
		in.Reason = "denied"
	}
	return s.DecideFrom(ctx, in)
}

// CheckDecider says, without changing anything, whether in.Actor may make
// the decision in on the request (permission, origin, state), so that an
// adapter can ask a denier for a reason only when the denial can count. It
// returns the request, or the error DecideFrom would return (refused
// attempts are not audited here: DecideFrom audits them).
func (s *Service) CheckDecider(ctx context.Context, in DecideInput) (Request, error) {
	r, err := s.get(ctx, in.ID)
	if err != nil {
		return r, err
	}
	why, err := s.mayDecide(ctx, r, in)
	if why != "" {
		if err != nil {
			s.logger().ErrorContext(ctx, "check approver", "request_id", r.ID, "user", in.Actor, "err", err)
		}
		if why == WhyMessageNotRecorded {
			return r, fail(EUNAVAILABLE, why, r)
		}
		return Request{}, &Error{Code: EFORBIDDEN, Why: why}
	}
	if r.State() != StatePending {
		return r, conflict(r)
	}
	if r.Reviewed(in.Actor) {
		return r, fail(ECONFLICT, WhyReviewed, r)
	}
	return r, nil
}

// mayDecide returns "" if in.Actor may make in's decision on r from where
// it was made, else the fact why not.
func (s *Service) mayDecide(ctx context.Context, r Request, in DecideInput) (Why, error) {
	if !(in.Decision == Deny && in.Actor == r.Requester) {
		if why, err := s.Policy.MayApprove(ctx, s.Directory, in.Actor, r); why != "" {
			return why, err
		}
	}
	if in.On != nil {
		if r.MessageTS == "" && r.State() == StatePending && in.On.Channel == r.Channel {
			// The message is shown before chat says where it is: the
			// decision cannot be checked yet, and is not counted.
			return WhyMessageNotRecorded, nil
		}
		if in.On.Channel != r.Channel || in.On.TS != r.MessageTS || r.MessageTS == "" {
			return WhyOtherMessage, nil
		}
	}
	return "", nil
}

// DecideFrom applies a decision to a request. A request needs
// Policy.RequiredApprovals approvals from distinct approvers; one denial
// ends it; each person reviews a request once (a second review gets
// ECONFLICT with WhyReviewed). Decisions that arrive at once are applied
// one after the other by the Store, so exactly one of them completes the
// approval, and only that one executes the revocation; a decision that
// finds the request no longer pending gets ECONFLICT with the request as
// it stands. A requester denying their own request cancels it; a requester
// approving it, anybody outside the approvers, or a decision made on another
// message than the request's own gets EFORBIDDEN, and the attempt is audited
// as refused. Permission is checked before anything about the request's
// state is revealed. A decision on an expired request expires it and returns
// EEXPIRED.
//
// When a decision completes the approval, the revocation is executed before
// DecideFrom returns, so the caller should pass a context that outlives the
// user's interaction. A revocation that fails to run to its end (its store
// went away) is logged, not returned: the decision stands, and a sweep of
// Resume finishes it.
func (s *Service) DecideFrom(ctx context.Context, in DecideInput) (Request, error) {
	if in.Decision != Approve && in.Decision != Deny {
		return Request{}, Errorf(EINVALID, WhyInvalid, "unknown decision %d", in.Decision)
	}
	if len([]rune(in.Reason)) > MaxDenyReason {
		return Request{}, Errorf(EINVALID, WhyInvalid, "a reason may be at most %d characters", MaxDenyReason)
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
	why, err := s.mayDecide(ctx, r, in)
	switch {
	case why == WhyMessageNotRecorded:
		return r, fail(EUNAVAILABLE, why, r)
	case why != "":
		detail := refusalDetail(why)
		if err != nil {
			s.logger().ErrorContext(ctx, "check approver", "request_id", r.ID, "user", in.Actor, "err", err)
			detail = "approver's permission could not be checked: " + err.Error()
		}
		return r, s.refuse(ctx, r, in.Key, in.Actor, why, detail)
	}
	needsReason := in.Decision == Deny && in.Actor != r.Requester && strings.TrimSpace(in.Reason) == ""

	now := s.now()
	var expired bool
	next, events, err := s.update(ctx, in.ID, func(cur Request) (Request, []Event, error) {
		expired = false
		if cur.State() == StatePending && !now.Before(cur.ExpiresAt) {
			// The membership lookup may have taken a while: a decision
			// must still land before the deadline.
			expired = true
			next, e, err := cur.expire(now)
			return next, []Event{e}, err
		}
		if needsReason && cur.State() == StatePending && !cur.Reviewed(in.Actor) {
			return cur, nil, fail(EINVALID, WhyReasonRequired, cur)
		}
		next, e, err := cur.review(Review{By: in.Actor, Decision: in.Decision, Reason: strings.TrimSpace(in.Reason), At: now})
		if err != nil {
			return cur, nil, err
		}
		e.Key = in.Key
		if next.State() == StateExecuting && s.DryRun {
			next.DryRun = true // approved while dry run is on: nothing will be revoked
		}
		return next, []Event{e}, nil
	})
	if err != nil {
		if errors.Is(err, ErrDuplicate) {
			return next, fmt.Errorf("decision %s: %w", in.Key, err)
		}
		if ErrorCode(err) == ECONFLICT {
			return next, s.conflict(ctx, next, in.Key, err)
		}
		return next, err
	}
	if expired {
		return next, fail(EEXPIRED, WhyExpired, next)
	}
	if len(events) == 1 && events[0].Kind == EventApproved && next.State() == StateExecuting {
		done, err := s.Execute(ctx, next, "")
		if err != nil {
			// The decision stands, recorded: the request stays executing,
			// and the next sweep of Resume, on any replica, finishes it.
			s.logger().ErrorContext(ctx, "revoke after approval; a sweep resumes it", "request_id", next.ID, "err", err)
		}
		return done, nil
	}
	return next, nil
}

// update runs Store.Update with fn, stamps each event with the request as
// changed and its state, and announces the events. It returns the request
// as stored and the events recorded.
func (s *Service) update(ctx context.Context, id string, fn UpdateFunc) (Request, []Event, error) {
	var recorded []Event
	next, err := s.Store.Update(ctx, id, func(cur Request) (Request, []Event, error) {
		next, events, err := fn(cur)
		if err != nil {
			return next, nil, err
		}
		for i := range events {
			events[i].Request = next
			events[i].State = next.State()
		}
		recorded = events
		return next, events, nil
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return next, nil, Errorf(ENOTFOUND, WhyNoRequest, "%s", id)
		}
		if errors.Is(err, ErrReviewed) {
			return next, nil, fail(ECONFLICT, WhyReviewed, next)
		}
		if _, ok := errors.AsType[*Error](err); ok {
			return next, nil, err
		}
		return next, nil, fmt.Errorf("update request %s: %w", id, err)
	}
	for i := range recorded {
		recorded[i].Request = next
	}
	s.announce(ctx, recorded...)
	return next, recorded, nil
}

// Execute revokes the waiting targets of an executing request, one after
// the other, and records each outcome as it comes. A target already done
// (by an earlier run cut short) is not revoked again. note, if set, is
// prefixed to each audit detail (e.g. that this is a resume).
//
// Only one run at a time revokes a request, in any of the processes sharing
// the Store: a run first takes the request's lease (see ExecutionLease), and
// renews it while it works. If another run holds it, Execute returns the
// request as it is, and that run records the outcomes. A run that loses its
// lease (it stalled for longer than LeaseTTL, and another took over) stops
// before the next target; an outcome is recorded once whichever run
// records it first.
func (s *Service) Execute(ctx context.Context, r Request, note string) (Request, error) {
	if r.State() != StateExecuting {
		return r, fmt.Errorf("execute request %s: state is %s, not executing", r.ID, r.State())
	}
	timeout := s.ExecTimeout
	if timeout <= 0 {
		timeout = DefaultExecTimeout
	}
	detached := context.WithoutCancel(ctx)
	// Each run is an owner of its own, so that a sweep in the same process
	// does not join a run under way.
	lease, owner, ttl := ExecutionLease(r.ID), s.replica()+"/"+uuid.NewString()[:8], s.leaseTTL()
	held, err := s.Store.Lease(detached, lease, owner, ttl)
	if err != nil {
		return r, fmt.Errorf("execute request %s: take its lease: %w", r.ID, err)
	}
	if !held {
		return r, nil // another run is revoking it
	}
	var lost atomic.Bool
	renewing, stopRenewing := context.WithCancel(detached)
	var renewer sync.WaitGroup
	renewer.Go(func() { s.renew(renewing, lease, owner, ttl, &lost) })
	defer func() {
		stopRenewing()
		renewer.Wait()
		if err := s.Store.Release(detached, lease, owner); err != nil {
			s.logger().WarnContext(ctx, "release the lease of a revocation; it ends by itself", "request_id", r.ID, "err", err)
		}
	}()
	// The run that held the lease before may have recorded outcomes.
	if fresh, err := s.Store.Get(detached, r.ID); err != nil {
		return r, fmt.Errorf("execute request %s: %w", r.ID, err)
	} else if r = fresh; r.State() != StateExecuting {
		return r, nil
	}
	// Each target is revoked in turn. Its sessions are verified apart, so
	// that verifying one never delays the revocation of the next; its
	// outcome is recorded as soon as that is done, the outcomes in the
	// order of the targets, by one recorder. The sessions of all the targets
	// are waited for within one window from the run's start, one look at
	// least each; what is still listed then stays pending, for the watcher.
	deadline := time.Now().Add(min(verifyWindow, s.verifyTimeout()))
	targets := r.Clone() // the loop's view; the recorder owns r
	queue := make(chan chan outcome, len(targets.Targets))
	recorded := make(chan error, 1)
	go func() {
		var errs []error
		for next := range queue {
			o := <-next
			var err error
			if r, err = s.record(detached, r, o); err != nil {
				errs = append(errs, err) // the others are still recorded
			}
		}
		recorded <- errors.Join(errs...)
	}()
	slots := make(chan struct{}, verifyConcurrency)
	var stop error
	for i := range targets.Targets {
		if targets.Targets[i].Done() {
			continue
		}
		// The lease is checked, and renewed, before each target: a run
		// that stalled past its lease (a pause, a partition) and lost it
		// learns so here, before calling Cloudflare again.
		if held, err := s.Store.Renew(detached, lease, owner, ttl); err != nil {
			stop = fmt.Errorf("execute request %s: renew its lease: %w", targets.ID, err)
			break
		} else if !held || lost.Load() {
			stop = fmt.Errorf("execute request %s: its lease was taken over; the run that took it finishes it", targets.ID)
			break
		}
		o := outcome{i: i, ok: true}
		dry := targets.DryRun || s.DryRun
		if dry {
			o.text = "dry run: Cloudflare was not called"
		} else {
			revokeCtx, cancel := context.WithTimeout(detached, timeout)
			summary, err := s.Revoker.Revoke(revokeCtx, targets.Revocation(i))
			cancel()
			if err != nil {
				o.ok, o.text = false, err.Error()
				s.logger().ErrorContext(ctx, "revoke", "request_id", targets.ID, "target", targets.Targets[i].Email, "err", err)
			} else {
				o.text = summary
			}
		}
		o.at = s.now() // when Cloudflare answered: the revocation's time
		if note != "" {
			o.text = note + "; " + o.text
		}
		done := make(chan outcome, 1)
		queue <- done
		if !o.ok || dry || s.Inspector == nil {
			done <- o
			continue
		}
		go func() {
			slots <- struct{}{}
			o.check, o.watch = s.verify(detached, targets.Targets[o.i], o.at, deadline)
			<-slots
			done <- o
		}()
	}
	close(queue)
	err = <-recorded
	return r, errors.Join(stop, err)
}

// verifyConcurrency bounds how many targets' sessions one run looks at at
// once.
const verifyConcurrency = 4

// outcome is what a run learned of one target: its revocation (ok, text,
// at) and, for one revoked, its verification and watch.
type outcome struct {
	i     int
	ok    bool
	text  string
	at    time.Time
	check Check
	watch Watch
}

// record records target o.i's outcome in request r, with its own deadline:
// a revocation that used up its time must still end as failed, not stay
// waiting. An outcome recorded meanwhile by another run stands.
func (s *Service) record(ctx context.Context, r Request, o outcome) (Request, error) {
	recordCtx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	next, _, err := s.update(recordCtx, r.ID, func(cur Request) (Request, []Event, error) {
		next, e, err := cur.finish(o.i, o.ok, o.text, o.at, o.check, o.watch)
		if err != nil {
			return cur, nil, err
		}
		return next, []Event{e}, nil
	})
	switch {
	case ErrorCode(err) == ECONFLICT:
		return next, nil
	case err != nil:
		return r, fmt.Errorf("record outcome for %s: %w", r.Targets[o.i].Email, err)
	}
	return next, nil
}

// renew renews lease every third of ttl until ctx ends, and sets lost if
// owner no longer holds it (another owner took it over meanwhile). A failure to reach the Store is retried
// at the next tick: the lease lasts until then.
func (s *Service) renew(ctx context.Context, lease, owner string, ttl time.Duration, lost *atomic.Bool) {
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		held, err := s.Store.Renew(ctx, lease, owner, ttl)
		switch {
		case err != nil && ctx.Err() == nil:
			s.logger().WarnContext(ctx, "renew the lease of a revocation", "lease", lease, "err", err)
		case err == nil && !held:
			s.logger().ErrorContext(ctx, "the lease of a revocation was taken over", "lease", lease, "owner", owner)
			lost.Store(true)
			return
		}
	}
}

// recordTimeout bounds the recording of a revocation's outcome.
const recordTimeout = 30 * time.Second

// ExpireDue expires every pending request whose expiry time has passed, and
// escalates every pending request older than EscalateAfter, and returns how
// many it expired. It stops early, between requests, when ctx ends.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	pending, err := s.Store.ListByState(ctx, StatePending)
	if err != nil {
		return 0, fmt.Errorf("list pending requests: %w", err)
	}
	n := 0
	var errs []error
	for _, r := range pending {
		if ctx.Err() != nil {
			break
		}
		now := s.now()
		// Once started, a change is recorded and announced in full.
		work := context.WithoutCancel(ctx)
		switch {
		case !now.Before(r.ExpiresAt):
			_, _, err := s.update(work, r.ID, func(cur Request) (Request, []Event, error) {
				next, e, err := cur.expire(now)
				return next, []Event{e}, err
			})
			if err != nil && ErrorCode(err) != ECONFLICT {
				errs = append(errs, err) // the others are still due
			}
			if err == nil {
				n++
			}
		case s.EscalateAfter > 0 && r.EscalatedAt.IsZero() && !now.Before(r.CreatedAt.Add(s.EscalateAfter)):
			_, _, err := s.update(work, r.ID, func(cur Request) (Request, []Event, error) {
				next, e, err := cur.escalate(now)
				return next, []Event{e}, err
			})
			if err != nil && ErrorCode(err) != ECONFLICT {
				errs = append(errs, err)
			}
		}
	}
	return n, errors.Join(errs...)
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

// Resume executes every request left in the executing state that no run is
// revoking (its lease is free or has ended: a crash, a kill, or a replica
// gone between approval and the last target's outcome), a few at a time;
// only the targets not yet done are revoked. Revoking again is safe:
// Cloudflare's revocation is idempotent. When ctx ends it starts no more,
// and waits for those under way.
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

// RunResumer sweeps at once and then every interval until ctx ends: like
// Resume, it executes the requests left executing that no run is revoking,
// a few at a time, so that a revocation left by a replica that died is
// taken over within LeaseTTL and interval. A sweep starts runs as slots
// free up, but does not wait for the runs it started to end: a long
// revocation does not hold up the next sweep, and a request this process
// is running already is not started again. When ctx ends, it waits for the
// runs under way.
func (s *Service) RunResumer(ctx context.Context, interval time.Duration) {
	var (
		runs    sync.WaitGroup
		mu      sync.Mutex
		running = map[string]bool{}
		slots   = make(chan struct{}, resumeConcurrency)
	)
	defer runs.Wait()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		executing, err := s.Store.ListByState(ctx, StateExecuting)
		if err != nil && ctx.Err() == nil {
			s.logger().ErrorContext(ctx, "list executing requests to resume", "err", err)
		}
		for _, r := range executing {
			mu.Lock()
			busy := running[r.ID]
			mu.Unlock()
			// A request listed while its last outcome was recorded may read
			// as done already: nothing to resume.
			if busy || ctx.Err() != nil || r.State() != StateExecuting {
				continue
			}
			select {
			case slots <- struct{}{}: // waits for a run to end when all slots are busy
			case <-ctx.Done():
				continue
			}
			mu.Lock()
			running[r.ID] = true
			mu.Unlock()
			runs.Go(func() {
				defer func() {
					mu.Lock()
					delete(running, r.ID)
					mu.Unlock()
					<-slots
				}()
				if _, err := s.Execute(ctx, r, "resumed after a restart"); err != nil && ErrorCode(err) != ECONFLICT {
					s.logger().ErrorContext(ctx, "resume an interrupted revocation", "request_id", r.ID, "err", err)
				}
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refuse audits a refused decision and returns the matching EFORBIDDEN
// error, or an error wrapping ErrDuplicate if the decision's key was already
// recorded (a redelivery: it was refused, and told, before).
func (s *Service) refuse(ctx context.Context, r Request, key, actor string, why Why, detail string) error {
	ev := Event{Kind: EventRefused, Request: r, State: r.State(), Actor: actor, Detail: detail, At: s.now(), Key: key}
	if err := s.Store.Append(ctx, ev); errors.Is(err, ErrDuplicate) {
		return fmt.Errorf("refused decision %s: %w", key, err)
	} else if err != nil {
		// Nothing changed; the refusal itself stands, only its record is missing.
		s.logger().ErrorContext(ctx, "record refused decision", "request_id", r.ID, "user", actor, "detail", detail, "err", err)
	} else {
		s.announce(ctx, ev)
	}
	// The request is not handed back: the refused person learns nothing of it.
	return &Error{Code: EFORBIDDEN, Why: why}
}

// Get returns request id, or an ENOTFOUND error.
func (s *Service) Get(ctx context.Context, id string) (Request, error) { return s.get(ctx, id) }

func (s *Service) get(ctx context.Context, id string) (Request, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Request{}, &Error{Code: ENOTFOUND, Why: WhyNoRequest}
	}
	r, err := s.Store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Request{}, &Error{Code: ENOTFOUND, Why: WhyNoRequest}
	}
	if err != nil {
		return Request{}, fmt.Errorf("get request %s: %w", id, err)
	}
	return r, nil
}

// ambiguityLimit is how many matches of a prefix Status lists at most.
const ambiguityLimit = 5

// Status returns the request whose ID is, or starts with, idOrPrefix, for
// user, who must be a requester or an approver. A prefix matching several
// requests gets EINVALID with WhyAmbiguous.
func (s *Service) Status(ctx context.Context, user, idOrPrefix string) (Request, error) {
	if why, err := s.Policy.MayView(ctx, s.Directory, user); why != "" {
		if err != nil {
			s.logger().ErrorContext(ctx, "check viewer", "user", user, "err", err)
		}
		return Request{}, &Error{Code: EFORBIDDEN, Why: why}
	}
	prefix := strings.ToLower(strings.TrimSpace(idOrPrefix))
	if prefix == "" {
		return Request{}, &Error{Code: ENOTFOUND, Why: WhyNoRequest}
	}
	found, err := s.Store.FindByPrefix(ctx, prefix, ambiguityLimit+1)
	if err != nil {
		return Request{}, fmt.Errorf("find request %s: %w", prefix, err)
	}
	// The audit trail's own records belong to no one's request.
	found = slices.DeleteFunc(found, func(r Request) bool { return r.ID == AuditRequestID })
	found = found[:min(len(found), ambiguityLimit)]
	switch len(found) {
	case 0:
		return Request{}, &Error{Code: ENOTFOUND, Why: WhyNoRequest}
	case 1:
		return found[0], nil
	}
	return Request{}, &Error{Code: EINVALID, Why: WhyAmbiguous, Limit: len(found)}
}

// Pending returns the pending and executing requests, oldest first, for
// user, who must be a requester or an approver.
func (s *Service) Pending(ctx context.Context, user string) ([]Request, error) {
	if why, err := s.Policy.MayView(ctx, s.Directory, user); why != "" {
		if err != nil {
			s.logger().ErrorContext(ctx, "check viewer", "user", user, "err", err)
		}
		return nil, &Error{Code: EFORBIDDEN, Why: why}
	}
	var out []Request
	for _, st := range []State{StatePending, StateExecuting} {
		rs, err := s.Store.ListByState(ctx, st)
		if err != nil {
			return nil, fmt.Errorf("list %s requests: %w", st, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// conflict returns the ECONFLICT error err (about the request as it now
// stands, r), or, if key (the identity of the person's action) is recorded
// by now, an error wrapping ErrDuplicate: the same action, delivered twice,
// raced itself, and its first delivery is what decided.
func (s *Service) conflict(ctx context.Context, r Request, key string, err error) error {
	if key != "" {
		if seen, serr := s.Store.SeenKey(ctx, key); serr == nil && seen {
			return fmt.Errorf("decision %s: %w", key, ErrDuplicate)
		}
	}
	return err
}

func conflict(r Request) error {
	return fail(ECONFLICT, WhyDecided, r)
}
