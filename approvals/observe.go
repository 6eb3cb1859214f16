package approvals

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Verification and the watch for a return, unless configured otherwise.
const (
	// DefaultVerifyTimeout is how long a revoked target's sessions are
	// looked at, at most, before the verification gives up (unverified).
	DefaultVerifyTimeout = 2 * time.Minute
	// DefaultWatchFor is how long a revoked target is watched for a return.
	DefaultWatchFor = 24 * time.Hour
	// DefaultWatchEvery is how often a watched target's logins are read.
	DefaultWatchEvery = 5 * time.Minute
)

// verifyWindow bounds how long one run waits for sessions to disappear
// before it records the outcomes of the targets it revoked: their sessions
// are looked at together, once every target is revoked. What is still
// listed then stays pending, for the watcher.
const verifyWindow = 10 * time.Second

// logLag is how late a login may show in the platform's log: each look at
// a watched target's logins reads this far before the last one.
const logLag = 10 * time.Minute

// lookTimeout bounds one call of the Inspector.
const lookTimeout = 20 * time.Second

// WatchLease is the lease of the one replica that verifies pending targets
// and watches for returns.
const WatchLease = "watch"

func (s *Service) verifyTimeout() time.Duration {
	if s.VerifyTimeout > 0 {
		return s.VerifyTimeout
	}
	return DefaultVerifyTimeout
}

func (s *Service) watchEvery() time.Duration {
	if s.WatchEvery > 0 {
		return s.WatchEvery
	}
	return DefaultWatchEvery
}

// phrase words the verification for the record of a revocation.
func (c Check) phrase() string {
	switch c.State {
	case CheckVerified:
		return "verified: no active session left"
	case CheckPending:
		listed := sessions(c.Remaining) + " still listed"
		if c.Remaining < 0 {
			listed = "the sessions could not be read yet"
		}
		return fmt.Sprintf("verification pending: %s, looked at again until %s", listed, c.Until.UTC().Format(time.RFC3339))
	case CheckUnavailable:
		return "verification unavailable: " + c.Why
	case CheckSkipped:
		return "not verified: " + c.Why
	}
	return ""
}

func sessions(n int) string {
	if n == 1 {
		return "1 active session"
	}
	return fmt.Sprintf("%d active sessions", n)
}

// previewTargets looks up what the identity platform knows of r's targets
// and records it, with an observed event that redraws the approval message.
// It runs apart from Submit, which does not wait for it: the approval
// message is posted first, and filled in when the preview arrives.
func (s *Service) previewTargets(ctx context.Context, r Request) {
	looks := make([]Look, len(r.Targets))
	var (
		wg   sync.WaitGroup
		next atomic.Int64 // the next target to look at
	)
	for range min(verifyConcurrency, len(r.Targets)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(r.Targets); i = int(next.Add(1) - 1) {
				looks[i] = s.look(ctx, r.Targets[i].Email)
			}
		})
	}
	wg.Wait()
	_, _, err := s.update(ctx, r.ID, func(cur Request) (Request, []Event, error) {
		next := cur.Clone()
		changed := false
		for i := range next.Targets {
			// A preview is what was known before approval: none is
			// written for a target revoked meanwhile.
			if next.Targets[i].Look.State == LookNone && looks[i].State != LookNone && !next.Targets[i].Done() {
				next.Targets[i].Look, changed = looks[i], true
			}
		}
		if !changed {
			return cur, nil, errNothingToDo
		}
		return next, []Event{{Kind: EventObserved, At: s.now()}}, nil
	})
	if err != nil && !errors.Is(err, errNothingToDo) {
		s.logger().WarnContext(ctx, "record the preview of a request", "request_id", r.ID, "err", err)
	}
}

// The previews of new requests are made by previewWorkers goroutines, each
// looking at up to verifyConcurrency targets of one request at a time; at
// most previewBacklog requests wait. A burst of requests costs a bounded
// number of goroutines and Inspector calls at once.
const (
	previewWorkers = 4
	previewBacklog = 1024
)

// previewQueue holds the requests whose previews are still to make.
type previewQueue struct {
	start sync.Once
	queue chan Request
}

// queuePreview has r's targets previewed, soon, by a preview worker. Past
// previewBacklog waiting, r goes without a preview (logged): its approval
// message shows none, and each target is looked up after its revocation
// all the same, to verify it.
func (s *Service) queuePreview(ctx context.Context, r Request) {
	s.previews.start.Do(func() {
		s.previews.queue = make(chan Request, previewBacklog)
		for range previewWorkers {
			go func() {
				for r := range s.previews.queue {
					s.previewTargets(context.Background(), r)
				}
			}()
		}
	})
	select {
	case s.previews.queue <- r:
	default:
		s.logger().WarnContext(ctx, "too many previews waiting; this request goes without one", "request_id", r.ID, "waiting", previewBacklog)
	}
}

// errNothingToDo ends an update that finds its work done already.
var errNothingToDo = errors.New("nothing to do")

// look asks the Inspector about email.
func (s *Service) look(ctx context.Context, email string) Look {
	ctx, cancel := context.WithTimeout(ctx, lookTimeout)
	defer cancel()
	p, err := s.Inspector.Preview(ctx, email)
	switch {
	case err == nil:
		p.At = s.now()
		return Look{Preview: p, State: LookDone}
	case UnavailableWhy(err) != "":
		return Look{State: LookUnavailable, Why: UnavailableWhy(err)}
	}
	s.logger().WarnContext(ctx, "preview a target", "target", email, "err", err)
	return Look{State: LookFailed, Why: err.Error()}
}

// verify looks at the sessions of target t, revoked at revokedAt, waiting
// with backoff until they are gone or deadline passes (one look at least),
// and returns the verification and the watch to record with its outcome.
func (s *Service) verify(ctx context.Context, t Target, revokedAt, deadline time.Time) (Check, Watch) {
	var watch Watch
	if s.WatchFor > 0 {
		// The first read of the log is due at once.
		watch = Watch{From: revokedAt, Until: revokedAt.Add(s.WatchFor), Checked: revokedAt.Add(-s.watchEvery())}
	}
	look := t.Look
	if look.State != LookDone || !look.Known {
		// Not looked up before approval, that failed, or the person was
		// not known then: they may be now.
		look = s.look(ctx, t.Email)
	}
	pending := func(n int) (Check, Watch) {
		return Check{State: CheckPending, Remaining: n, Until: revokedAt.Add(s.verifyTimeout()), At: s.now()}, watch
	}
	switch {
	case look.State == LookUnavailable:
		return Check{State: CheckUnavailable, Why: look.Why, At: s.now()}, watch
	case look.State == LookDone && !look.Known:
		return Check{State: CheckSkipped, Why: "no Cloudflare Access user has this email", At: s.now()}, watch
	case look.State != LookDone:
		return pending(-1) // the platform did not answer: the watcher looks again
	}
	wait := 250 * time.Millisecond
	for {
		n, err := s.activeSessions(ctx, look.UserID)
		switch {
		case err == nil && n == 0:
			return Check{State: CheckVerified, At: s.now()}, watch
		case UnavailableWhy(err) != "":
			return Check{State: CheckUnavailable, Why: UnavailableWhy(err), At: s.now()}, watch
		case err != nil:
			n = -1 // unknown: the last look failed
		}
		if time.Until(deadline) < wait || !sleepCtx(ctx, wait) {
			return pending(n)
		}
		wait *= 2
	}
}

func (s *Service) activeSessions(ctx context.Context, userID string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, lookTimeout)
	defer cancel()
	return s.Inspector.ActiveSessions(ctx, userID)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// RunWatcher, while this replica holds WatchLease, looks at the targets
// still observed every interval: a pending verification until its sessions
// are gone (verified) or its time is up (unverified), and a revoked target's
// logins every WatchEvery while it is watched, and once more at the end of
// the watch (a login after the revocation: relogin). The lease is renewed
// before each target, and a pass stops when it is lost. It runs until ctx
// ends; without an Inspector it does nothing.
func (s *Service) RunWatcher(ctx context.Context, interval time.Duration) {
	if s.Inspector == nil {
		return
	}
	owner := s.replica() + "/watch"
	ttl := max(3*interval, s.leaseTTL())
	defer s.Store.Release(context.WithoutCancel(ctx), WatchLease, owner)
	pass := &watchPass{retryAt: map[string]time.Time{}, keep: func() bool {
		held, err := s.Store.Renew(ctx, WatchLease, owner, ttl)
		return err == nil && held
	}}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if held, err := s.Store.Lease(ctx, WatchLease, owner, ttl); err == nil && held {
			if err := s.watch(ctx, pass); err != nil && ctx.Err() == nil {
				s.logger().ErrorContext(ctx, "watch revoked targets", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watchPass is what the watcher keeps from one pass to the next: when a
// look that failed may be tried again (a scheduling aid, not an invariant:
// a replica taking over starts afresh), and how to keep its lease.
type watchPass struct {
	retryAt map[string]time.Time
	keep    func() bool
}

// WatchOnce makes one pass over the targets still observed (see
// RunWatcher), without a lease.
func (s *Service) WatchOnce(ctx context.Context) error {
	return s.watch(ctx, &watchPass{retryAt: map[string]time.Time{}, keep: func() bool { return true }})
}

func (s *Service) watch(ctx context.Context, pass *watchPass) error {
	if s.Inspector == nil {
		return nil
	}
	watched, err := s.Store.Watched(ctx, s.now())
	if err != nil {
		return fmt.Errorf("list watched requests: %w", err)
	}
	var errs []error
	for _, r := range watched {
		for i, t := range r.Targets {
			now := s.now()
			key := r.ID + "/" + t.Email
			pendingDue := t.Check.State == CheckPending
			watchDue := t.Watch.Open() && (!now.Before(t.Watch.Until) || !now.Before(t.Watch.Checked.Add(s.watchEvery())))
			if !pendingDue && !watchDue || now.Before(pass.retryAt[key]) {
				continue
			}
			if ctx.Err() != nil || !pass.keep() {
				return errors.Join(errs...) // another replica watches now
			}
			failed := false
			if pendingDue {
				err := s.recheck(ctx, r, i)
				errs, failed = append(errs, err), err != nil
			}
			if watchDue {
				err := s.watchLogins(ctx, r, i)
				errs, failed = append(errs, err), failed || err != nil
			}
			if failed {
				// Looked at again after a while, not at every pass.
				pass.retryAt[key] = now.Add(min(s.watchEvery(), time.Minute))
			} else {
				delete(pass.retryAt, key)
			}
		}
	}
	return errors.Join(errs...)
}

// recheck looks at the sessions of target i, whose verification is pending.
func (s *Service) recheck(ctx context.Context, r Request, i int) error {
	t := r.Targets[i]
	userID := t.Look.UserID
	if t.Look.State != LookDone || !t.Look.Known {
		look := s.look(ctx, t.Email)
		userID = look.UserID
		if look.State == LookDone && !look.Known {
			return s.settleCheck(ctx, r.ID, i, Check{State: CheckSkipped, Why: "no Cloudflare Access user has this email", At: s.now()},
				"not verified: no Cloudflare Access user has this email")
		}
	}
	n, err := -1, error(nil)
	if userID != "" {
		n, err = s.activeSessions(ctx, userID)
	}
	now := s.now()
	switch {
	case err == nil && n == 0:
		return s.settleCheck(ctx, r.ID, i, Check{State: CheckVerified, At: now}, fmt.Sprintf(
			"no active session left, %s after the revocation", now.Sub(t.FinishedAt).Round(time.Second)))
	case UnavailableWhy(err) != "":
		return s.settleCheck(ctx, r.ID, i, Check{State: CheckUnavailable, Why: UnavailableWhy(err), At: now},
			"not verified: the sessions cannot be read: "+UnavailableWhy(err))
	case now.Before(t.Check.Until):
		if err != nil {
			s.logger().WarnContext(ctx, "look at the sessions of a revoked target; looking again", "request_id", r.ID, "target", t.Email, "err", err)
		}
		return nil
	}
	detail := fmt.Sprintf("%s still listed %s after the revocation", sessions(n), t.Check.Until.Sub(t.FinishedAt).Round(time.Second))
	if n < 0 {
		detail = fmt.Sprintf("the sessions could not be read within %s of the revocation", t.Check.Until.Sub(t.FinishedAt).Round(time.Second))
	}
	return s.settleCheck(ctx, r.ID, i, Check{State: CheckUnverified, Remaining: n, At: now}, detail)
}

// settleCheck records target i's verification as check, with its event:
// verified, or unverified (sessions still listed, or none could be read).
func (s *Service) settleCheck(ctx context.Context, id string, i int, check Check, detail string) error {
	_, _, err := s.update(context.WithoutCancel(ctx), id, func(cur Request) (Request, []Event, error) {
		if cur.Targets[i].Check.State != CheckPending {
			return cur, nil, errNothingToDo // settled meanwhile
		}
		next := cur.Clone()
		next.Targets[i].Check = check
		kind := EventVerified
		if check.State != CheckVerified {
			kind = EventUnverified
		}
		return next, []Event{{Kind: kind, Target: next.Targets[i].Email, Detail: detail, At: check.At}}, nil
	})
	if errors.Is(err, errNothingToDo) {
		return nil
	}
	return err
}

// watchLogins reads target i's logins since the watch last looked (less
// the log's lag), and records the first successful one after the
// revocation, and before the watch's end, as a relogin.
func (s *Service) watchLogins(ctx context.Context, r Request, i int) error {
	t := r.Targets[i]
	w := t.Watch
	from := w.From
	if from.IsZero() {
		from = t.FinishedAt // recorded before the watch knew its start
	}
	since := w.Checked.Add(-logLag)
	if since.Before(from) {
		since = from
	}
	email := t.Email
	if t.Look.Known && t.Look.Email != "" {
		email = t.Look.Email // as the platform keeps it: its log is matched exactly
	}
	lookCtx, cancel := context.WithTimeout(ctx, lookTimeout)
	logins, err := s.Inspector.Logins(lookCtx, email, since)
	cancel()
	now := s.now()
	var seen *Login
	for _, l := range logins {
		if l.At.After(from) && !l.At.After(w.Until) {
			seen = &l
			break
		}
	}
	switch {
	case UnavailableWhy(err) != "":
		// The log cannot be read: the watch stops, saying why on the message.
		return s.observe(ctx, r.ID, i, func(w *Watch) ([]Event, bool) {
			w.Why = "the login log cannot be read: " + UnavailableWhy(err)
			return []Event{{Kind: EventObserved, Target: t.Email, At: now}}, true
		})
	case err != nil:
		return fmt.Errorf("read the logins of %s: %w", t.Email, err)
	}
	return s.observe(ctx, r.ID, i, func(w *Watch) ([]Event, bool) {
		if w.Seen() {
			return nil, false // recorded meanwhile: once
		}
		w.Checked = now
		if seen == nil {
			return nil, true
		}
		w.Relogin = *seen
		detail := fmt.Sprintf("logged in again at %s to %s from %s, after the revocation at %s: "+
			"their identity-provider account is still active; suspend it there",
			seen.At.UTC().Format(time.RFC3339), orUnknown(seen.App), orUnknown(seen.IP), from.UTC().Format(time.RFC3339))
		return []Event{{Kind: EventRelogin, Target: t.Email, Detail: detail, At: now}}, true
	})
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// observe changes target i's watch as change says, if change reports a
// change, with the events it returns.
func (s *Service) observe(ctx context.Context, id string, i int, change func(*Watch) ([]Event, bool)) error {
	_, _, err := s.update(context.WithoutCancel(ctx), id, func(cur Request) (Request, []Event, error) {
		next := cur.Clone()
		events, changed := change(&next.Targets[i].Watch)
		if !changed {
			return cur, nil, errNothingToDo
		}
		return next, events, nil
	})
	if errors.Is(err, errNothingToDo) {
		return nil
	}
	return err
}
