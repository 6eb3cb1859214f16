package approvals

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Inspector looks up what the identity platform knows of the people a
// request names: before approval (who they are, how many sessions they
// have), after the revocation (are the sessions gone), and for a while
// after (did they log in again). Every answer is an observation: it never
// changes what was decided or revoked. The Cloudflare client implements it.
type Inspector interface {
	// Preview returns what the platform knows of email now. A person the
	// platform does not know is a Preview with Known false, not an error.
	Preview(ctx context.Context, email string) (Preview, error)
	// ActiveSessions returns how many active sessions the user with the
	// platform's ID userID (Preview.UserID) has now.
	ActiveSessions(ctx context.Context, userID string) (int, error)
	// Logins returns email's successful logins at or after since, oldest
	// first.
	Logins(ctx context.Context, email string, since time.Time) ([]Login, error)
}

// Preview is what the identity platform knows of a target.
type Preview struct {
	// Known reports whether the platform has a user with the email.
	Known bool
	// Email is the user's email as the platform keeps it (its case may
	// differ from the one typed), when known.
	Email string
	// UserID is the platform's ID of the user, when known.
	UserID string
	// LastLogin is the user's last successful login, or the zero time.
	LastLogin time.Time
	// Sessions is how many active sessions the user has; Devices, how
	// many active devices.
	Sessions, Devices int
	// At is when the preview was taken.
	At time.Time
}

// Login is one successful login seen in the platform's log.
type Login struct {
	At time.Time
	// App names the application logged in to (its domain, or its name).
	App string
	// IP is the address the login came from.
	IP string
}

// Unavailable is the error of an Inspector that cannot answer at all for
// a reason no retry fixes: its credentials lack a permission, or its mode
// has no such lookups. Why says which, for people ("the token cannot read
// Access users").
type Unavailable struct {
	Why string
}

func (u *Unavailable) Error() string { return "unavailable: " + u.Why }

// UnavailableWhy returns the reason of an Unavailable in err's chain, or "".
func UnavailableWhy(err error) string {
	if u, ok := errors.AsType[*Unavailable](err); ok {
		return u.Why
	}
	return ""
}

// Look is a target's preview as recorded: what was seen before approval,
// or why nothing could be.
type Look struct {
	Preview
	// State says how the lookup went.
	State LookState
	// Why explains LookUnavailable or LookFailed.
	Why string
}

// LookState says how a target's preview went.
type LookState string

// The states of a target's preview.
const (
	// LookNone: not looked up (yet, or the feature is off).
	LookNone LookState = ""
	// LookDone: Preview holds the answer (known or not).
	LookDone LookState = "done"
	// LookUnavailable: the feature is unavailable (see Unavailable).
	LookUnavailable LookState = "unavailable"
	// LookFailed: the lookup failed (a passing error).
	LookFailed LookState = "failed"
)

// Check is the verification of a target's revocation: are its sessions
// gone?
type Check struct {
	State CheckState
	// Remaining is how many active sessions were still listed at the last
	// look (pending, unverified).
	Remaining int
	// Until is when a pending verification gives up.
	Until time.Time
	// At is when the state was reached.
	At time.Time
	// Why explains CheckUnavailable and CheckSkipped.
	Why string
}

// CheckState is where a target's verification stands.
type CheckState string

// The states of a target's verification. Verified and unverified are final.
const (
	// CheckNone: not verified (the target is not revoked, or the feature is off).
	CheckNone CheckState = ""
	// CheckVerified: no active session was left.
	CheckVerified CheckState = "verified"
	// CheckPending: sessions were still listed; looked at again until Until.
	CheckPending CheckState = "pending"
	// CheckUnverified: sessions were still listed when Until passed.
	CheckUnverified CheckState = "unverified"
	// CheckUnavailable: the sessions cannot be read (see Unavailable).
	CheckUnavailable CheckState = "unavailable"
	// CheckSkipped: nothing to verify (a user the platform does not know,
	// a dry run).
	CheckSkipped CheckState = "skipped"
)

// Final reports whether the verification is over.
func (s CheckState) Final() bool {
	return s == CheckVerified || s == CheckUnverified || s == CheckUnavailable || s == CheckSkipped
}

// Valid reports whether s is one of the states.
func (s CheckState) Valid() bool {
	switch s {
	case CheckNone, CheckVerified, CheckPending, CheckUnverified, CheckUnavailable, CheckSkipped:
		return true
	}
	return false
}

// Watch is the watch for a revoked target's return: a successful login
// after the revocation means that the identity-provider account is still
// active.
type Watch struct {
	// From is the revocation's time: a login after it is a return.
	From time.Time
	// Until is when the watch ends; the zero time: not watched.
	Until time.Time
	// Checked is how far the login log was read.
	Checked time.Time
	// Relogin is the first successful login seen after the revocation (the
	// zero Login: none yet); once seen it is final.
	Relogin Login
	// Why, if set, says why the watch stopped early (the login log cannot
	// be read).
	Why string
}

// Seen reports whether a login after the revocation was seen.
func (w Watch) Seen() bool { return !w.Relogin.At.IsZero() }

// Watching reports whether the watch is on at now.
func (w Watch) Watching(now time.Time) bool {
	return w.Open() && now.Before(w.Until)
}

// Open reports whether the log is still to be read for a return: no
// relogin seen, not stopped, and not yet read up to Until (after Until, one
// last read covers the end of the watch).
func (w Watch) Open() bool {
	return !w.Seen() && w.Why == "" && !w.Until.IsZero() && w.Checked.Before(w.Until)
}

// checkObservations returns an error if next's observations of target
// (its look, check and watch) break the rules: a final check is final, and
// a relogin seen is final.
func checkObservations(was, t Target) error {
	if !t.Check.State.Valid() {
		return fmt.Errorf("target %s has unknown verification state %q", t.Email, t.Check.State)
	}
	if was.Check.State.Final() && t.Check != was.Check {
		return fmt.Errorf("target %s is %s already: its verification cannot change", t.Email, was.Check.State)
	}
	if was.Watch.Seen() && t.Watch.Relogin != was.Watch.Relogin {
		return fmt.Errorf("target %s: a relogin seen cannot change", t.Email)
	}
	if was.Check.State == CheckPending && t.Check.State == CheckNone {
		return fmt.Errorf("target %s: a pending verification can only settle", t.Email)
	}
	if (t.Check != Check{} || t.Watch != Watch{}) && t.State != TargetRevoked {
		return fmt.Errorf("target %s is %s: only a revoked target is verified or watched", t.Email, t.State)
	}
	if was.Watch.Why != "" && t.Watch.Why != was.Watch.Why || !was.Watch.Until.IsZero() && !t.Watch.Until.Equal(was.Watch.Until) {
		return fmt.Errorf("target %s: a watch cannot be reopened or extended", t.Email)
	}
	return nil
}
