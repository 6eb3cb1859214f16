package approvals

import (
	"errors"
	"fmt"
)

// Error codes of the domain. Adapters turn them into words for people.
const (
	// EINVALID: the input is malformed.
	EINVALID = "invalid"
	// ENOTFOUND: no request has that ID.
	ENOTFOUND = "not_found"
	// EFORBIDDEN: the user may not do this.
	EFORBIDDEN = "forbidden"
	// ECONFLICT: the request was already decided.
	ECONFLICT = "conflict"
	// EEXPIRED: the request expired before anyone decided.
	EEXPIRED = "expired"
	// EUNAVAILABLE: the action cannot be taken yet; trying again shortly may work.
	EUNAVAILABLE = "unavailable"
	// EINTERNAL: something failed that the user cannot fix.
	EINTERNAL = "internal"
)

// Why names the fact behind an *Error, so that an adapter can word it for
// people. The domain never words errors for people itself: one place in
// each adapter does.
type Why string

// The facts behind domain errors.
const (
	// WhyInvalid: the input is malformed; Error.Message says how.
	WhyInvalid Why = "invalid"
	// WhyNotRequester: the user is not among the requesters.
	WhyNotRequester Why = "not_requester"
	// WhyNotApprover: the user is not among the approvers.
	WhyNotApprover Why = "not_approver"
	// WhyOwnRequest: the requester tried to approve their own request.
	WhyOwnRequest Why = "own_request"
	// WhyGuest: the user is a guest (single- or multi-channel) of the workspace.
	WhyGuest Why = "guest"
	// WhyExternal: the user belongs to another organisation (Slack Connect).
	WhyExternal Why = "external"
	// WhyUnverified: the user's permission could not be established (a
	// directory lookup failed); nothing was allowed.
	WhyUnverified Why = "unverified"
	// WhyPendingLimit: the requester has Error.Limit pending requests already.
	WhyPendingLimit Why = "pending_limit"
	// WhyTooManyTargets: a request names more than Error.Limit targets.
	WhyTooManyTargets Why = "too_many_targets"
	// WhyOtherMessage: a decision was made on another message than the
	// request's own.
	WhyOtherMessage Why = "other_message"
	// WhyMessageNotRecorded: the request's message is not recorded yet, so a
	// decision made on it cannot be checked; trying again shortly works.
	WhyMessageNotRecorded Why = "message_not_recorded"
	// WhyReviewed: the user already reviewed this request.
	WhyReviewed Why = "reviewed"
	// WhyDecided: the request is no longer pending (Error.Request says how
	// it ended).
	WhyDecided Why = "decided"
	// WhyExpired: the request expired before enough approvers decided.
	WhyExpired Why = "expired"
	// WhyNoRequest: no request has that ID (or prefix).
	WhyNoRequest Why = "no_request"
	// WhyAmbiguous: a prefix matches Error.Limit requests or more.
	WhyAmbiguous Why = "ambiguous"
	// WhyReasonRequired: a denial needs a reason.
	WhyReasonRequired Why = "reason_required"
)

// Error is a domain error: a code, the fact behind it, and the facts an
// adapter needs to word it. Internal failures are plain wrapped errors instead.
type Error struct {
	Code string
	Why  Why
	// Message is a detail for the user, already worded (such as why the
	// Revoker cannot carry out a target); may be empty.
	Message string
	// Request is the request concerned, when there is one (e.g. for ECONFLICT,
	// the request as it stands now, so the caller can say who decided).
	Request *Request
	// Limit is the number a WhyPendingLimit, WhyTooManyTargets or
	// WhyAmbiguous error is about.
	Limit int
}

// fail returns an *Error with code and why about request r.
func fail(code string, why Why, r Request) *Error {
	return &Error{Code: code, Why: why, Request: &r}
}

// Error implements error.
func (e *Error) Error() string {
	s := e.Code + ": " + string(e.Why)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Errorf returns an *Error with code, the fact why, and a formatted message.
func Errorf(code string, why Why, format string, args ...any) *Error {
	return &Error{Code: code, Why: why, Message: fmt.Sprintf(format, args...)}
}

// ErrorWhy returns the fact behind the first *Error in err's chain, or "".
func ErrorWhy(err error) Why {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Why
	}
	return ""
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EINTERNAL
}

// ErrNotFound is what a Store returns when no request has the given ID.
var ErrNotFound = errors.New("request not found")

// ErrConflict is what a Store returns when an update finds the request
// changed since it was read, more times than it retries.
var ErrConflict = errors.New("request changed concurrently")

// ErrLimit is what Store.Create returns when the requester already has as
// many pending requests as allowed.
var ErrLimit = errors.New("too many pending requests")

// ErrReviewed is what a Store returns when an update adds a second review by
// the same person to a request.
var ErrReviewed = errors.New("already reviewed by this person")

// ErrUnavailable is what a Store returns when it cannot reach its database
// (a server that is down or unreachable). Trying again shortly may work. A
// connection lost while a change was being committed leaves it unknown
// whether the change was made: retry with the same keys (SubmitKey, an
// event's Key), which make a second attempt a duplicate rather than a
// second change.
var ErrUnavailable = errors.New("the database cannot be reached")

// ErrDuplicate is what a Store returns when a request with the same
// SubmitKey, or an event with the same Key, exists: the submission or the
// decision was already made.
var ErrDuplicate = errors.New("request already submitted")
