package approvals

import (
	"context"
	"errors"
	"fmt"
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

// verifyWindow bounds how long one run waits, over all its targets, for
// sessions to disappear before it records their outcomes: the first
// target's record waits up to this long, a bulk request's others do not
// wait again. What is still pending then is looked at by the watcher.
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
		return fmt.Sprintf("verification pending: %s still listed, looked at again until %s",
			sessions(c.Remaining), c.Until.UTC().Format(time.RFC3339))
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
	for i, t := range r.Targets {
		looks[i] = s.look(ctx, t.Email)
	}
	_, _, err := s.update(ctx, r.ID, func(cur Request) (Request, []Event, error) {
		next := cur.Clone()
		changed := false
		for i := range next.Targets {
			if next.Targets[i].Look.State == LookNone && looks[i].State != LookNone {
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

// verify looks at the sessions of target t, just revoked at revokedAt,
// waiting with backoff until they are gone or budget is spent, and returns
// the verification and the watch to record with its outcome. budget is
// what the run has left to wait; verify returns it, less what it waited.
func (s *Service) verify(ctx context.Context, t Target, revokedAt time.Time, budget time.Duration) (Check, Watch, time.Duration) {
	var watch Watch
	if s.WatchFor > 0 {
		watch = Watch{Until: revokedAt.Add(s.WatchFor), Checked: revokedAt}
	}
	look := t.Look
	if look.State != LookDone {
		look = s.look(ctx, t.Email) // not looked up before approval, or that failed
	}
	switch {
	case look.State == LookUnavailable:
		return Check{State: CheckUnavailable, Why: look.Why, At: s.now()}, watch, budget
	case look.State == LookDone && !look.Known:
		return Check{State: CheckSkipped, Why: "no Cloudflare Access user has this email", At: s.now()}, watch, budget
	case look.State != LookDone:
		// The platform did not answer: the watcher looks again.
		return Check{State: CheckPending, Remaining: -1, Until: revokedAt.Add(s.verifyTimeout()), At: s.now()}, watch, budget
	}
	start, wait := time.Now(), 250*time.Millisecond
	for {
		n, err := s.activeSessions(ctx, look.UserID)
		switch {
		case err == nil && n == 0:
			return Check{State: CheckVerified, At: s.now()}, watch, budget - time.Since(start)
		case UnavailableWhy(err) != "":
			return Check{State: CheckUnavailable, Why: UnavailableWhy(err), At: s.now()}, watch, budget - time.Since(start)
		}
		left := budget - time.Since(start)
		if left < wait {
			remaining := n
			if err != nil {
				remaining = -1 // unknown: the last look failed
			}
			return Check{State: CheckPending, Remaining: remaining, Until: revokedAt.Add(s.verifyTimeout()), At: s.now()}, watch, max(left, 0)
		}
		if !sleepCtx(ctx, wait) {
			return Check{State: CheckPending, Remaining: n, Until: revokedAt.Add(s.verifyTimeout()), At: s.now()}, watch, 0
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
// logins every WatchEvery while it is watched (a login after the
// revocation: relogin). It runs until ctx ends; without an Inspector it
// does nothing.
func (s *Service) RunWatcher(ctx context.Context, interval time.Duration) {
	if s.Inspector == nil {
		return
	}
	owner := s.replica() + "/watch"
	ttl := max(3*interval, s.leaseTTL())
	defer s.Store.Release(context.WithoutCancel(ctx), WatchLease, owner)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if held, err := s.Store.Lease(ctx, WatchLease, owner, ttl); err == nil && held {
			if err := s.WatchOnce(ctx); err != nil && ctx.Err() == nil {
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

// WatchOnce makes one pass over the targets still observed (see
// RunWatcher).
func (s *Service) WatchOnce(ctx context.Context) error {
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
			if ctx.Err() != nil {
				return errors.Join(errs...)
			}
			if t.Check.State == CheckPending {
				errs = append(errs, s.recheck(ctx, r, i))
			}
			if t.Watch.Watching(s.now()) && !s.now().Before(t.Watch.Checked.Add(s.watchEvery())) {
				errs = append(errs, s.watchLogins(ctx, r, i))
			}
		}
	}
	return errors.Join(errs...)
}

// recheck looks at the sessions of target i, whose verification is pending.
func (s *Service) recheck(ctx context.Context, r Request, i int) error {
	t := r.Targets[i]
	userID := t.Look.UserID
	if t.Look.State != LookDone {
		look := s.look(ctx, t.Email)
		userID = look.UserID
		if look.State == LookDone && !look.Known {
			return s.settleCheck(ctx, r.ID, i, Check{State: CheckSkipped, Why: "no Cloudflare Access user has this email", At: s.now()}, "")
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
			"the sessions cannot be read: "+UnavailableWhy(err))
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

// settleCheck records target i's verification as check, with its event
// (verified or unverified) when detail is set.
func (s *Service) settleCheck(ctx context.Context, id string, i int, check Check, detail string) error {
	_, _, err := s.update(context.WithoutCancel(ctx), id, func(cur Request) (Request, []Event, error) {
		if cur.Targets[i].Check.State != CheckPending {
			return cur, nil, errNothingToDo // settled meanwhile
		}
		next := cur.Clone()
		next.Targets[i].Check = check
		if detail == "" {
			return next, nil, nil
		}
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

// watchLogins reads target i's logins since the watch last looked, and
// records the first successful one after the revocation as a relogin.
func (s *Service) watchLogins(ctx context.Context, r Request, i int) error {
	t := r.Targets[i]
	// The log may show a login some minutes late: read again from a while
	// before the last look (a login seen twice is recorded once).
	since := t.Watch.Checked.Add(-logLag)
	if since.Before(t.FinishedAt) {
		since = t.FinishedAt
	}
	lookCtx, cancel := context.WithTimeout(ctx, lookTimeout)
	logins, err := s.Inspector.Logins(lookCtx, t.Email, since)
	cancel()
	now := s.now()
	var seen *Login
	for _, l := range logins {
		if l.At.After(t.FinishedAt) {
			seen = &l
			break
		}
	}
	switch {
	case UnavailableWhy(err) != "":
		// The log cannot be read: the watch ends, saying why on the message.
		return s.observe(ctx, r.ID, i, func(w *Watch) ([]Event, bool) {
			w.Until, w.Why = now, "the login log cannot be read: "+UnavailableWhy(err)
			return []Event{{Kind: EventObserved, Target: t.Email, At: now}}, true
		})
	case err != nil:
		s.logger().WarnContext(ctx, "read the logins of a revoked target; looking again", "request_id", r.ID, "target", t.Email, "err", err)
		return nil
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
			seen.At.UTC().Format(time.RFC3339), orUnknown(seen.App), orUnknown(seen.IP), t.FinishedAt.UTC().Format(time.RFC3339))
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
