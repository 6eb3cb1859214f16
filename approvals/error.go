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

// Error is a domain error that carries a code and a message fit for the user
// who caused it. Internal failures are plain wrapped errors instead.
type Error struct {
	Code    string
	Message string
	// Request is the request concerned, when there is one (e.g. for ECONFLICT,
	// the request as it stands now, so the caller can say who decided).
	Request *Request
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
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

// ErrorMessage returns the user-facing message of the first *Error in err's
// chain, and a generic text for any other error (its details belong in logs).
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "Something went wrong on our side; the details are in revokebot's log."
}

// ErrNotFound is what a Store returns when no request has the given ID.
var ErrNotFound = errors.New("request not found")

// ErrConflict is what a Store returns when a compare-and-swap finds the
// request in another state than expected.
var ErrConflict = errors.New("request changed concurrently")

// ErrDuplicate is what a Store returns when a request with the same
// SubmitKey, or an event with the same Key, exists: the submission or the
// decision was already made.
var ErrDuplicate = errors.New("request already submitted")
