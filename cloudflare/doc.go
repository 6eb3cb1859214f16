// Package cloudflare is a small client for the parts of the Cloudflare API that
// revokebot uses: "Revoke all Access tokens for a user" and the token check.
//
// A Client is made once with New and is safe for concurrent use. Every call
// retries rate limits (429), server errors (5xx) and network failures with
// capped, jittered exponential backoff inside a bounded budget (see
// RetryPolicy); other 4xx answers are returned at once.
//
// Failed calls return errors that can be inspected with errors.As: *APIError
// for any answer Cloudflare gave, *RateLimitError (which also matches
// *APIError) for 429. Credentials are sent only in request headers and never
// appear in error strings; Options and Client print them as "REDACTED".
//
// *Client satisfies approvals.Revoker.
package cloudflare
