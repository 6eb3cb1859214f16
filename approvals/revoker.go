package approvals

import "context"

// Revocation says whose sessions to revoke and how. It mirrors the options of
// Cloudflare's "Revoke all Access tokens for a user" call without knowing about HTTP.
type Revocation struct {
	// Email is the user whose Access sessions are revoked. Required.
	Email string
	// Devices also revokes the user's device (WARP) sessions.
	Devices bool
	// WARPReauth forces the user to re-authenticate their WARP session.
	WARPReauth bool
	// UserUID optionally pins the revocation to one Access user ID (a UUID).
	UserUID string
}

// Revoker carries out a revocation. Implementations must be safe to call again
// for the same revocation: revoking twice has the same effect as revoking once.
type Revoker interface {
	// Revoke revokes every session the revocation names. On success it returns
	// a short, human-readable summary of the provider's answer; on failure, an
	// error whose text carries the provider's error codes and messages.
	Revoke(ctx context.Context, r Revocation) (summary string, err error)
}

// RevocationChecker is implemented by a Revoker that can tell, before a
// request is made, that it cannot carry out a revocation (for example an
// option its mode does not support). The error's text is shown to the
// requester as it is.
type RevocationChecker interface {
	CheckRevocation(r Revocation) error
}

// Options are how a request's targets are revoked: the same for every target
// of one request.
type Options struct {
	// Devices also revokes the targets' device (WARP) sessions.
	Devices bool
	// WARPReauth forces the targets to re-authenticate their WARP session.
	WARPReauth bool
	// UserUID optionally pins the revocation to one Access user ID; a request
	// with a UserUID has exactly one target.
	UserUID string
}

// For returns the revocation of email with these options.
func (o Options) For(email string) Revocation {
	return Revocation{Email: email, Devices: o.Devices, WARPReauth: o.WARPReauth, UserUID: o.UserUID}
}
