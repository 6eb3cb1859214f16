// Package cloudflare is a small client for the parts of the Cloudflare API that
// revokebot uses: "Revoke all Access tokens for a user", the token check, and
// the read-only lookups of Access users, their active sessions and the Access
// authentication log (inspect.go, which lists them with their permissions).
//
// A Client is made once with New and is safe for concurrent use. Every call
// retries what Cloudflare's own SDKs retry: network failures and the answers
// 408, 409, 429 and 5xx, waiting as the answer's Retry-After asks or else
// with capped, jittered exponential backoff, inside a bounded budget (see
// RetryPolicy). Every other answer (400, 401, 403, 404, 422, …) is returned
// at once.
//
// All HTTP attempts of a Client, first tries and retries of every method,
// share one token-bucket limiter (Options.RateLimit, by default Cloudflare's
// global 1,200 requests per five minutes) and at most Options.MaxInFlight of
// them are on the wire at once, so a burst of work queues locally instead of
// earning a five-minute 429 lock-out. Make one Client per API token and share
// it. A call whose context ends while it queues fails with an error wrapping
// ErrQueuedTooLong, never with a *RateLimitError.
//
// Failed calls return errors that can be inspected with errors.As: *APIError
// for any answer Cloudflare gave, *RateLimitError (which also matches
// *APIError) for 429. Credentials are sent only in request headers. Whatever
// part of an answer echoes one (result, errors, messages, headers, a body
// that is not JSON, even JSON-escaped), it is replaced by "REDACTED" before
// it reaches an error, a Response, a summary or any other returned value;
// Options and Client print them as "REDACTED" too.
//
// *Client satisfies approvals.Revoker and approvals.Inspector.
package cloudflare
