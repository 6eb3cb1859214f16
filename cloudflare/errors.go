package cloudflare

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxExcerpt bounds how much of a non-JSON body an error quotes.
const maxExcerpt = 200

// ErrNoAPIToken is returned by VerifyToken and VerifyAccountToken when the
// client authenticates with a global API key: only API tokens can be verified.
var ErrNoAPIToken = errors.New("cloudflare: only API tokens can be verified; this client uses a global API key (Options.Email/Options.APIKey)")

// ErrQueuedTooLong is wrapped by the error of a call that was not sent
// because its context ended (or would end first) while it queued locally for
// Options.RateLimit or a MaxInFlight slot. Cloudflare never saw the request,
// so it is not a *RateLimitError; the error also wraps the context's error,
// or the rate limiter's "would exceed context deadline".
var ErrQueuedTooLong = errors.New("queued too long, not sent")

// ResponseInfo is one entry of an envelope's "errors" or "messages".
type ResponseInfo struct {
	// Code is Cloudflare's numeric code, e.g. 10000.
	Code int `json:"code"`
	// Message is the human-readable text.
	Message string `json:"message"`
	// DocumentationURL links to documentation about the code, when given.
	DocumentationURL string `json:"documentation_url,omitempty"`
	// Source points at the part of the request at fault, when given.
	Source *ResponseInfoSource `json:"source,omitempty"`
	// ErrorChain lists underlying errors, when given.
	ErrorChain []ResponseInfo `json:"error_chain,omitempty"`
}

// ResponseInfoSource locates the part of a request an error is about.
type ResponseInfoSource struct {
	// Pointer is a JSON pointer into the request body, e.g. "/email".
	Pointer string `json:"pointer,omitempty"`
}

// String formats the entry as "[code] message" (or just the message when the
// code is 0), on one line.
func (i ResponseInfo) String() string {
	msg := sanitize(i.Message, maxExcerpt)
	if i.Code == 0 {
		return msg
	}
	if msg == "" {
		return fmt.Sprintf("[%d]", i.Code)
	}
	return fmt.Sprintf("[%d] %s", i.Code, msg)
}

func joinInfos(infos []ResponseInfo) string {
	parts := make([]string, 0, len(infos))
	for _, i := range infos {
		if s := i.String(); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

// APIError is an answer from Cloudflare that reports failure: a non-2xx
// status, "success": false, or a body that is not what the call expects.
type APIError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Method and Path identify the call; Path is relative to the base URL,
	// e.g. "/accounts/abc/access/organizations/revoke_user".
	Method string
	Path   string
	// Errors and Messages are the envelope's lists, if the body had them.
	Errors   []ResponseInfo
	Messages []ResponseInfo
	// Detail describes what else was wrong: a short, sanitized excerpt of a
	// body that was not a Cloudflare envelope, or the unexpected result.
	Detail string
}

// Error reads like
// "cloudflare: POST /accounts/abc/access/organizations/revoke_user: 403 Forbidden: [10000] Authentication error".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cloudflare: %s %s: %s", e.Method, e.Path, statusLine(e.StatusCode))
	switch {
	case len(e.Errors) > 0:
		b.WriteString(": " + joinInfos(e.Errors))
	case len(e.Messages) > 0:
		b.WriteString(": " + joinInfos(e.Messages))
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// Codes returns the codes of e.Errors, in order.
func (e *APIError) Codes() []int {
	codes := make([]int, 0, len(e.Errors))
	for _, i := range e.Errors {
		codes = append(codes, i.Code)
	}
	return codes
}

// RateLimitError is a 429 answer. errors.As also finds its *APIError.
type RateLimitError struct {
	// RetryAfter is the server's Retry-After (seconds or HTTP date), or 0
	// when it sent none.
	RetryAfter time.Duration
	APIError
}

// Error is the APIError text followed by the Retry-After, if any.
func (e *RateLimitError) Error() string {
	s := e.APIError.Error()
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter.Round(time.Millisecond))
	}
	return s
}

// Unwrap returns the embedded *APIError, so errors.As finds it.
func (e *RateLimitError) Unwrap() error { return &e.APIError }

func statusLine(code int) string {
	if text := http.StatusText(code); text != "" {
		return fmt.Sprintf("%d %s", code, text)
	}
	return fmt.Sprint(code)
}

// sanitize makes s fit for a one-line error: invalid UTF-8 and control or
// unprintable characters become spaces, runs of white space collapse to one,
// and the result is cut to at most limit characters.
func sanitize(s string, limit int) string {
	s = strings.ToValidUTF8(s, " ")
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	const ellipsis = "..."
	r := []rune(s)
	return string(r[:limit-len(ellipsis)]) + ellipsis
}

// afterAttempts prefixes err with what failed and, if any attempt was
// sent, how many: "revoke a@b.c: after 2 attempts: …".
func afterAttempts(what string, n int, err error) error {
	if n == 0 {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: after %s: %w", what, attemptsText(n), err)
}

// attemptsText is "1 attempt" or "n attempts".
func attemptsText(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}
