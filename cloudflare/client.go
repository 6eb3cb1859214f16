package cloudflare

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// DefaultBaseURL is the Cloudflare API v4 endpoint used when Options.BaseURL is empty.
const DefaultBaseURL = "https://api.cloudflare.com/client/v4"

// DefaultUserAgent is the User-Agent sent when Options.UserAgent is empty.
const DefaultUserAgent = "revokebot"

// maxBodyBytes bounds how much of any response body the client reads.
const maxBodyBytes = 1 << 20

// redacted replaces secrets wherever the client prints its configuration.
const redacted = "REDACTED"

// Defaults of RetryPolicy; a zero field takes the matching default.
const (
	DefaultMaxAttempts = 4
	DefaultBaseDelay   = 500 * time.Millisecond
	DefaultMaxDelay    = 5 * time.Second
	DefaultMaxElapsed  = 30 * time.Second
	DefaultCallTimeout = 10 * time.Second
)

// DefaultRateLimit is Cloudflare's global API limit, 1,200 requests per five
// minutes per user or token, used when Options.RateLimit is zero.
var DefaultRateLimit = RateLimit{Requests: 1200, Per: 5 * time.Minute}

// DefaultMaxInFlight is the number of concurrent HTTP attempts a Client
// allows when Options.MaxInFlight is zero.
const DefaultMaxInFlight = 8

// Options configures a Client. Set exactly one of AccountID and ZoneID, and
// exactly one way to authenticate: APIToken, or Email together with APIKey
// (the legacy global API key). Surrounding white space is trimmed from every
// string field.
//
// Options formats itself (fmt, log/slog) with the secrets replaced by
// "REDACTED", so it is safe to print.
type Options struct {
	// BaseURL is the API root, with or without a trailing slash. Default
	// DefaultBaseURL. It must be an absolute http or https URL without user
	// info, query or fragment.
	BaseURL string
	// APIToken is an API token, sent as "Authorization: Bearer <token>".
	APIToken string
	// Email is the account email of a legacy global API key (X-Auth-Email).
	Email string
	// APIKey is the legacy global API key (X-Auth-Key).
	APIKey string
	// AccountID selects the account-level routes (/accounts/{id}/…).
	AccountID string
	// ZoneID selects the zone-level routes (/zones/{id}/…).
	ZoneID string
	// HTTPClient sends the requests. Default: a client with dial, TLS and
	// idle timeouts. The client is copied; if its CheckRedirect is nil the
	// copy does not follow redirects, so credentials never travel to another
	// host.
	HTTPClient *http.Client
	// WrapTransport, if set, wraps the default client's transport, for
	// example to measure every call; the default's timeouts stay. It cannot
	// be combined with HTTPClient.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Retry bounds retries; zero fields take defaults.
	Retry RetryPolicy
	// UserAgent is sent as User-Agent. Default DefaultUserAgent.
	UserAgent string
	// RateLimit paces every HTTP attempt of the Client (first tries and
	// retries, of every method) so that a burst of calls queues locally
	// instead of earning Cloudflare's five-minute 429 lock-out. The zero
	// value means DefaultRateLimit. Lower it when other tools share the
	// token, since Cloudflare counts all of the token's traffic together.
	RateLimit RateLimit
	// Logger receives the Client's warnings (such as a shared Budget that
	// does not answer); nil means slog.Default().
	Logger *slog.Logger
	// Budget, if set, is where the RateLimit budget is kept when several
	// processes (replicas) share the token: each attempt reserves its place
	// in it, so that the replicas together stay within RateLimit instead
	// of each spending all of it. If Budget fails, the Client paces itself
	// alone for that attempt.
	Budget Budget
	// MaxInFlight bounds how many HTTP attempts of the Client are on the
	// wire at once. A call holds a slot only while an attempt is sent and its
	// answer read, not while it waits for the rate limit or to retry.
	// Default DefaultMaxInFlight.
	MaxInFlight int
}

// RateLimit is a request budget: at most Requests calls in any window of
// length Per. Set both fields, or neither (for DefaultRateLimit); negative
// values are rejected by New.
//
// A Client enforces it with one token bucket (golang.org/x/time/rate) shared
// by all its calls: max(1, Requests/5) calls may go at once, and the rest of
// the budget is spread evenly over Per plus a slack of min(Per/5, 1s), which
// absorbs calls reaching Cloudflare a little sooner or later than they left.
// Calls beyond it wait, in order, until the budget allows them or their
// context ends.
type RateLimit struct {
	// Requests is the number of calls allowed per window.
	Requests int
	// Per is the length of the window.
	Per time.Duration
}

// String formats l like "1200 requests per 5m0s".
func (l RateLimit) String() string {
	noun := "requests"
	if l.Requests == 1 {
		noun = "request"
	}
	return fmt.Sprintf("%d %s per %s", l.Requests, noun, l.Per)
}

// withDefaults checks l and applies DefaultRateLimit to the zero value.
func (l RateLimit) withDefaults() (RateLimit, error) {
	switch {
	case l.Requests < 0:
		return l, errors.New("cloudflare: Options.RateLimit.Requests must not be negative")
	case l.Per < 0:
		return l, errors.New("cloudflare: Options.RateLimit.Per must not be negative")
	case l == RateLimit{}:
		return DefaultRateLimit, nil
	case l.Requests == 0 || l.Per == 0:
		return l, errors.New("cloudflare: Options.RateLimit.Requests and Options.RateLimit.Per must be set together (or both left zero for DefaultRateLimit)")
	}
	return l, nil
}

// Budget is a rate budget kept outside the process, shared by every
// process that uses it with the same name.
type Budget interface {
	// Reserve takes one call from the budget called name, which lets
	// burst calls go at once and then one every interval, and returns how
	// long the caller must wait before making it.
	Reserve(ctx context.Context, name string, interval time.Duration, burst int) (time.Duration, error)
}

// budgetName names the shared budget of Cloudflare calls.
const budgetName = "cloudflare"

// budgetTimeout bounds the asking of the shared budget for a turn; past
// it, the Client paces itself alone.
const budgetTimeout = 2 * time.Second

// pace returns the burst and the refill interval that enforce l (see
// newLimiter).
func pace(l RateLimit) (burst int, interval time.Duration) {
	burst = max(1, l.Requests/5)
	refill := max(1, l.Requests-burst)
	slack := min(l.Per/5, time.Second)
	return burst, (l.Per + slack) / time.Duration(refill)
}

// newLimiter builds the token bucket that enforces l (both fields positive).
//
// A token bucket with burst B that refills at r tokens per second lets at
// most B + r*L calls through in any window of length L: B saved up at the
// window's start, plus what refills during it. Cloudflare counts calls when
// they arrive, though, not when the limiter lets them go, and the first calls
// of a burst arrive later than the rest (new connections, a busy scheduler):
// that squeezes a little more than Per of the limiter's time into Per of the
// server's. So the refill is spread over Per plus a slack S:
//
//	B = max(1, Requests/5)                  // a fifth of the budget may go at once
//	S = min(Per/5, 1s)                      // skew between leaving and arriving
//	r = (Requests - B) / (Per + S) seconds  // the rest is spread evenly
//
// Then B + r*(Per + S) = Requests: any window of length Per at the server
// sees at most Requests calls as long as calls reach it with delays that
// differ by less than S. (B + r*Per < Requests.) For Cloudflare's 1,200 per 5
// minutes that is a burst of 240, then 960 per 301 s, about 3.19 calls per
// second; for 100 per second, a burst of 20, then 80 per 1.2 s. With
// Requests == 1 (B = 1), Requests - B would be 0 and never refill; there
// r = 1/(Per + S), which spaces calls Per + S apart.
func newLimiter(l RateLimit) *rate.Limiter {
	burst, interval := pace(l)
	return rate.NewLimiter(rate.Every(interval), burst)
}

// RetryPolicy bounds how a Client retries. It retries what Cloudflare's own
// SDKs retry: network failures and answers 408 Request Timeout, 409
// Conflict, 429 Too Many Requests and 5xx, waiting as long as the answer's
// Retry-After asks (seconds or an HTTP date) when it has one. Every other
// answer is returned at once.
// Zero fields take the Default* constants; negative ones are rejected by New.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, including the first.
	MaxAttempts int
	// BaseDelay is the first backoff; the n-th retry waits about
	// min(MaxDelay, BaseDelay*2^n), with equal jitter.
	BaseDelay time.Duration
	// MaxDelay caps a single backoff (not a server's Retry-After).
	MaxDelay time.Duration
	// MaxElapsed is the budget for all attempts and waits together. The client
	// never sleeps past it: if the next wait (Retry-After included) would not
	// fit in what is left, it stops and returns the last error. Time spent
	// queued locally, for Options.RateLimit or a MaxInFlight slot, does not
	// count: the caller's context bounds that.
	MaxElapsed time.Duration
	// CallTimeout bounds each attempt, including reading the response (but
	// not the local queueing before it).
	CallTimeout time.Duration
}

// String formats o with the API token and API key replaced by "REDACTED".
func (o Options) String() string {
	hc := "nil"
	if o.HTTPClient != nil {
		hc = "set"
	}
	return fmt.Sprintf("cloudflare.Options{BaseURL:%q APIToken:%s Email:%q APIKey:%s AccountID:%q ZoneID:%q HTTPClient:%s Retry:%+v UserAgent:%q RateLimit:{Requests:%d Per:%s} MaxInFlight:%d}",
		o.BaseURL, mask(o.APIToken), o.Email, mask(o.APIKey), o.AccountID, o.ZoneID, hc, o.Retry, o.UserAgent,
		o.RateLimit.Requests, o.RateLimit.Per, o.MaxInFlight)
}

// GoString is like String; it keeps %#v from printing secrets.
func (o Options) GoString() string { return o.String() }

// Format writes String for every verb, so no verb prints the secrets.
func (o Options) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, o.String()) }

// LogValue logs Options with the secrets replaced by "REDACTED".
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", o.BaseURL),
		slog.String("api_token", mask(o.APIToken)),
		slog.String("email", o.Email),
		slog.String("api_key", mask(o.APIKey)),
		slog.String("account_id", o.AccountID),
		slog.String("zone_id", o.ZoneID),
		slog.String("user_agent", o.UserAgent),
		slog.Int("rate_limit_requests", o.RateLimit.Requests),
		slog.Duration("rate_limit_per", o.RateLimit.Per),
		slog.Int("max_in_flight", o.MaxInFlight),
	)
}

// mask returns "" for an unset secret and "REDACTED" for a set one.
func mask(secret string) string {
	if secret == "" {
		return `""`
	}
	return redacted
}

// Client calls the Cloudflare API. Make one with New; it is safe for
// concurrent use.
type Client struct {
	baseURL   *url.URL
	http      *http.Client
	retry     RetryPolicy
	userAgent string

	// rateLimit is the budget limiter enforces; every HTTP attempt takes a
	// token from limiter and then a slot in slots (cap MaxInFlight) for as
	// long as it is on the wire.
	rateLimit RateLimit
	limiter   *rate.Limiter
	budget    Budget
	log       *slog.Logger
	slots     chan struct{}

	// creds is a pointer so that even printing a dereferenced Client shows
	// only an address.
	creds *credentials

	accountID string
	zoneID    string
}

// credentials holds exactly one of token and (email, apiKey).
type credentials struct {
	token  string
	email  string
	apiKey string
}

// New checks opts and returns a Client. Errors name the Options field at fault.
func New(opts Options) (*Client, error) {
	creds := &credentials{
		token:  strings.TrimSpace(opts.APIToken),
		email:  strings.TrimSpace(opts.Email),
		apiKey: strings.TrimSpace(opts.APIKey),
	}
	c := &Client{
		creds:     creds,
		accountID: strings.TrimSpace(opts.AccountID),
		zoneID:    strings.TrimSpace(opts.ZoneID),
		userAgent: strings.TrimSpace(opts.UserAgent),
	}

	switch {
	case c.accountID != "" && c.zoneID != "":
		return nil, errors.New("cloudflare: Options.AccountID and Options.ZoneID are mutually exclusive; set exactly one")
	case c.accountID == "" && c.zoneID == "":
		return nil, errors.New("cloudflare: Options.AccountID or Options.ZoneID is required")
	}

	switch {
	case creds.token != "" && (creds.email != "" || creds.apiKey != ""):
		return nil, errors.New("cloudflare: Options.APIToken and Options.Email/Options.APIKey are mutually exclusive; use an API token or a global API key, not both")
	case creds.token == "" && creds.email == "" && creds.apiKey == "":
		return nil, errors.New("cloudflare: no credentials: set Options.APIToken (or Options.Email and Options.APIKey)")
	case creds.token == "" && creds.apiKey == "":
		return nil, errors.New("cloudflare: Options.Email is set but Options.APIKey is empty; a global API key needs both")
	case creds.token == "" && creds.email == "":
		return nil, errors.New("cloudflare: Options.APIKey is set but Options.Email is empty; a global API key needs both")
	}

	base, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		// The URL is not a secret, but keep a misplaced credential out anyway.
		return nil, errors.New(c.redact(err.Error()))
	}
	c.baseURL = base

	if c.retry, err = opts.Retry.withDefaults(); err != nil {
		return nil, err
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.rateLimit, err = opts.RateLimit.withDefaults(); err != nil {
		return nil, err
	}
	c.limiter = newLimiter(c.rateLimit)
	c.budget = opts.Budget
	c.log = opts.Logger
	if c.log == nil {
		c.log = slog.Default()
	}
	switch {
	case opts.MaxInFlight < 0:
		return nil, errors.New("cloudflare: Options.MaxInFlight must not be negative")
	case opts.MaxInFlight == 0:
		c.slots = make(chan struct{}, DefaultMaxInFlight)
	default:
		c.slots = make(chan struct{}, opts.MaxInFlight)
	}

	switch {
	case opts.HTTPClient != nil && opts.WrapTransport != nil:
		return nil, errors.New("cloudflare: set Options.HTTPClient or Options.WrapTransport, not both")
	case opts.HTTPClient != nil:
		hc := *opts.HTTPClient
		if hc.CheckRedirect == nil {
			hc.CheckRedirect = noRedirects
		}
		c.http = &hc
	default:
		c.http = defaultHTTPClient(cap(c.slots))
		if opts.WrapTransport != nil {
			c.http.Transport = opts.WrapTransport(c.http.Transport)
		}
	}
	return c, nil
}

// parseBaseURL checks Options.BaseURL. Its errors never quote the URL, which
// could carry credentials.
func parseBaseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("cloudflare: Options.BaseURL is not a valid URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("cloudflare: Options.BaseURL must be an absolute http or https URL")
	case u.Host == "":
		return nil, errors.New("cloudflare: Options.BaseURL has no host")
	case u.User != nil:
		return nil, errors.New("cloudflare: Options.BaseURL must not contain user info")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("cloudflare: Options.BaseURL must not have a query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, nil
}

func (p RetryPolicy) withDefaults() (RetryPolicy, error) {
	switch {
	case p.MaxAttempts < 0:
		return p, errors.New("cloudflare: Options.Retry.MaxAttempts must not be negative")
	case p.BaseDelay < 0:
		return p, errors.New("cloudflare: Options.Retry.BaseDelay must not be negative")
	case p.MaxDelay < 0:
		return p, errors.New("cloudflare: Options.Retry.MaxDelay must not be negative")
	case p.MaxElapsed < 0:
		return p, errors.New("cloudflare: Options.Retry.MaxElapsed must not be negative")
	case p.CallTimeout < 0:
		return p, errors.New("cloudflare: Options.Retry.CallTimeout must not be negative")
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxElapsed == 0 {
		p.MaxElapsed = DefaultMaxElapsed
	}
	if p.CallTimeout == 0 {
		p.CallTimeout = DefaultCallTimeout
	}
	return p, nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// defaultHTTPClient keeps up to maxIdle idle connections, so that every
// MaxInFlight slot can reuse one.
func defaultHTTPClient(maxIdle int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 5 * time.Second
	t.ResponseHeaderTimeout = 15 * time.Second
	t.ExpectContinueTimeout = time.Second
	t.IdleConnTimeout = 90 * time.Second
	t.MaxIdleConnsPerHost = max(4, maxIdle)
	return &http.Client{Transport: t, CheckRedirect: noRedirects}
}

// String describes the client without its secrets.
func (c *Client) String() string {
	if c == nil || c.creds == nil {
		return "cloudflare.Client(invalid; use New)"
	}
	auth := "api-token"
	if c.creds.token == "" {
		auth = "global-key(" + c.creds.email + ")"
	}
	scope := "account " + c.accountID
	if c.zoneID != "" {
		scope = "zone " + c.zoneID
	}
	return fmt.Sprintf("cloudflare.Client{%s, %s, auth %s}", c.baseURL.Redacted(), scope, auth)
}

// GoString is like String; it keeps %#v from printing secrets.
func (c *Client) GoString() string { return c.String() }

// Format writes String for every verb, so no verb prints the secrets.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue logs the client without its secrets.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// scopePath returns "/accounts/{id}" or "/zones/{id}", path-escaped.
func (c *Client) scopePath() string {
	if c.zoneID != "" {
		return "/zones/" + url.PathEscape(c.zoneID)
	}
	return "/accounts/" + url.PathEscape(c.accountID)
}

// Response is a successful Cloudflare answer: a 2xx status and an envelope
// with "success": true. Every credential of the Client that the answer
// echoed, in any header or string, is replaced by "REDACTED", so a Response
// is safe to print or log.
type Response struct {
	// StatusCode is the HTTP status, e.g. 200.
	StatusCode int
	// Header holds the response headers, secrets redacted.
	Header http.Header
	// Success is the envelope's "success" (always true here).
	Success bool
	// Result is the envelope's "result", secrets redacted: as sent when it
	// holds none, else re-encoded with every string that held one redacted.
	Result json.RawMessage
	// Errors and Messages are the envelope's lists, secrets redacted.
	Errors   []ResponseInfo
	Messages []ResponseInfo
	// Attempts is how many attempts the call took (1 without retries).
	Attempts int
}

// envelope is the shape of every Cloudflare v4 answer.
type envelope struct {
	Result   json.RawMessage `json:"result"`
	Success  *bool           `json:"success"`
	Errors   []ResponseInfo  `json:"errors"`
	Messages []ResponseInfo  `json:"messages"`
}

// request is one API call, rebuilt into an *http.Request for every attempt.
type request struct {
	method string
	path   string // relative to the base URL, escaped, starting with "/"
	query  url.Values
	body   []byte // JSON; nil for none
}

// do sends r, retrying as c.retry allows. It returns the response or the
// last error, and the number of attempts made (0 if none was sent).
//
// Every attempt first queues (see queue); the time that takes is added to the
// retry budget's deadline, so MaxElapsed counts only time on the wire and in
// backoff.
func (c *Client) do(ctx context.Context, r request) (*Response, int, error) {
	deadline := time.Now().Add(c.retry.MaxElapsed)
	var lastErr error
	for attempt := 1; ; attempt++ {
		if time.Until(deadline) <= 0 {
			return nil, attempt - 1, fmt.Errorf("%w; giving up: retry budget of %s exhausted", lastErr, c.retry.MaxElapsed)
		}
		queued, err := c.queue(ctx, r)
		if err != nil {
			if lastErr != nil {
				// lastErr is quoted, not wrapped: a 429 from Cloudflare
				// earlier must not make this local failure look like one.
				err = fmt.Errorf("%w; last error: %v", err, lastErr)
			}
			return nil, attempt - 1, err
		}
		deadline = deadline.Add(queued)
		resp, v, err := c.attempt(ctx, r, min(c.retry.CallTimeout, time.Until(deadline)))
		<-c.slots
		if err == nil {
			resp.Attempts = attempt
			return resp, attempt, nil
		}
		lastErr = err
		if ctx.Err() != nil || !v.retry || attempt >= c.retry.MaxAttempts {
			return nil, attempt, err
		}

		wait := c.backoff(attempt)
		if v.after > 0 {
			wait = v.after
		}
		if left := time.Until(deadline); wait > left {
			return nil, attempt, fmt.Errorf("%w; giving up: next wait %s exceeds the remaining retry budget %s",
				err, wait.Round(time.Millisecond), max(left, 0).Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, attempt, fmt.Errorf("cloudflare: %s %s: waiting to retry: %w; last error: %w", r.method, r.path, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// queue waits until the rate limiter allows one more attempt and a
// MaxInFlight slot is free, and takes the slot; the caller must free it with
// <-c.slots after the attempt. It returns how long it waited, or an error
// wrapping ErrQueuedTooLong if ctx ends, or would end, first.
func (c *Client) queue(ctx context.Context, r request) (time.Duration, error) {
	start := time.Now()
	if err := c.waitBudget(ctx); err != nil {
		return 0, fmt.Errorf("cloudflare: %s %s: local rate limit (%s): %w: %w", r.method, r.path, c.rateLimit, ErrQueuedTooLong, err)
	}
	select {
	case c.slots <- struct{}{}:
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("cloudflare: %s %s: all %d in-flight slots busy (Options.MaxInFlight): %w: %w", r.method, r.path, cap(c.slots), ErrQueuedTooLong, ctx.Err())
	}
}

// waitBudget waits for the attempt's turn in the rate budget: the shared
// one (Options.Budget) if there is one and it answers, else the Client's
// own. Like rate.Limiter.Wait, it fails at once, without waiting, when the
// wait would run past ctx's deadline.
func (c *Client) waitBudget(ctx context.Context) error {
	if c.budget == nil {
		return c.limiter.Wait(ctx)
	}
	burst, interval := pace(c.rateLimit)
	// The budget is asked briefly: one that does not answer (its database
	// is partitioned away) must not hold a revocation up.
	reserveCtx, cancel := context.WithTimeout(ctx, budgetTimeout)
	wait, err := c.budget.Reserve(reserveCtx, budgetName, interval, burst)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Warn("cloudflare: the shared rate budget does not answer; pacing this replica alone", "err", err)
		return c.limiter.Wait(ctx)
	}
	if deadline, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(deadline) {
		return fmt.Errorf("the shared budget's next turn is in %s, past the deadline", wait.Round(time.Millisecond))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff returns the wait after the given attempt (1-based):
// min(MaxDelay, BaseDelay*2^(attempt-1)) with equal jitter.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.BaseDelay
	for i := 1; i < attempt && d < c.retry.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, c.retry.MaxDelay)
	half := d / 2
	return half + rand.N(d-half+1)
}

// verdict says whether a failed attempt may succeed when tried again, and
// how long the server asked to wait first.
type verdict struct {
	retry bool
	// after is the server's Retry-After, or 0 when it sent none (then the
	// client backs off on its own).
	after time.Duration
}

// retryableStatus reports whether an answer with this status is worth trying
// again. It is the rule of Cloudflare's own SDKs: 408 Request Timeout,
// 409 Conflict, 429 Too Many Requests and every 5xx. Every other status,
// 4xx or not, is final.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout ||
		code == http.StatusConflict ||
		code == http.StatusTooManyRequests ||
		code >= http.StatusInternalServerError
}

// attempt makes one try at r within timeout, and says whether a failure may
// be retried.
func (c *Client) attempt(ctx context.Context, r request, timeout time.Duration) (*Response, verdict, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := c.newRequest(actx, r)
	if err != nil {
		return nil, verdict{}, err
	}
	hresp, err := c.http.Do(req)
	if err != nil {
		return nil, verdict{retry: ctx.Err() == nil}, c.transportError(ctx, actx, r, timeout, err)
	}
	defer hresp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(hresp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, verdict{retry: ctx.Err() == nil}, c.transportError(ctx, actx, r, timeout, fmt.Errorf("reading response: %w", err))
	}
	resp, err := c.checkResponse(r, hresp, body)
	if err == nil {
		return resp, verdict{}, nil
	}
	v := verdict{retry: retryableStatus(hresp.StatusCode)}
	if v.retry {
		v.after = parseRetryAfter(hresp.Header.Get("Retry-After"), time.Now())
	}
	return nil, v, err
}

// transportError wraps a failure to exchange a request and its response.
// The *url.Error wrapper (which repeats the URL) is dropped.
func (c *Client) transportError(ctx, actx context.Context, r request, timeout time.Duration, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("cloudflare: %s %s: attempt timed out after %s: %w", r.method, r.path, timeout, err)
	}
	return fmt.Errorf("cloudflare: %s %s: %w", r.method, r.path, err)
}

func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	path, err := url.PathUnescape(r.path)
	if err != nil {
		return nil, fmt.Errorf("cloudflare: %s %s: building request: %w", r.method, r.path, err)
	}
	u := *c.baseURL
	u.Path = c.baseURL.Path + path
	u.RawPath = c.baseURL.EscapedPath() + r.path
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("cloudflare: %s %s: building request: %w", r.method, r.path, err)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.creds.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.creds.token)
	} else {
		req.Header.Set("X-Auth-Email", c.creds.email)
		req.Header.Set("X-Auth-Key", c.creds.apiKey)
	}
	return req, nil
}

// checkResponse turns an HTTP answer into a Response or a typed error.
func (c *Client) checkResponse(r request, hresp *http.Response, body []byte) (*Response, error) {
	apiErr := &APIError{StatusCode: hresp.StatusCode, Method: r.method, Path: r.path}

	var env envelope
	var parseErr error
	if len(body) > maxBodyBytes {
		body = body[:maxBodyBytes]
		parseErr = errors.New("response body exceeds 1 MiB")
	} else {
		parseErr = json.Unmarshal(body, &env)
	}
	env.Result = c.redactJSON(env.Result)
	env.Errors = c.redactInfos(env.Errors)
	env.Messages = c.redactInfos(env.Messages)

	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		if parseErr == nil && len(env.Errors)+len(env.Messages) > 0 {
			apiErr.Errors, apiErr.Messages = env.Errors, env.Messages
		} else {
			apiErr.Detail = c.excerpt(body)
		}
		if hresp.StatusCode == http.StatusTooManyRequests {
			return nil, &RateLimitError{RetryAfter: parseRetryAfter(hresp.Header.Get("Retry-After"), time.Now()), APIError: *apiErr}
		}
		return nil, apiErr
	}

	if parseErr != nil {
		apiErr.Detail = "invalid response: " + parseErr.Error()
		if ex := c.excerpt(body); ex != "" {
			apiErr.Detail += ": " + ex
		}
		return nil, apiErr
	}
	if env.Success == nil || !*env.Success {
		apiErr.Errors, apiErr.Messages = env.Errors, env.Messages
		if len(env.Errors) == 0 {
			apiErr.Detail = "success is not true"
		}
		return nil, apiErr
	}
	return &Response{
		StatusCode: hresp.StatusCode,
		Header:     c.redactHeader(hresp.Header),
		Success:    true,
		Result:     env.Result,
		Errors:     env.Errors,
		Messages:   env.Messages,
	}, nil
}

// parseRetryAfter reads a Retry-After value in seconds or as an HTTP date.
// It returns 0 when the header is absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// redact removes the client's secrets (the API token, or the global API
// key, and so the email-key pair) from text that came from the server.
func (c *Client) redact(s string) string {
	for _, secret := range []string{c.creds.token, c.creds.apiKey} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return s
}

// redactJSON returns raw with the client's secrets removed. JSON may spell a
// secret with escapes ("\u0074ok…"), so raw is decoded and every string, key
// and number is redacted; raw is returned as is if none held a secret, and
// re-encoded otherwise. Text that is not JSON is redacted as text.
func (c *Client) redactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return json.RawMessage(c.redact(string(raw)))
	}
	v, changed := c.redactValue(v)
	if !changed && c.redact(string(raw)) == string(raw) {
		return raw
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Cannot happen: v holds only what the decoder made.
		return json.RawMessage(`"` + redacted + `"`)
	}
	return json.RawMessage(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// redactValue redacts the secrets in a decoded JSON value, and reports
// whether there were any.
func (c *Client) redactValue(v any) (any, bool) {
	switch v := v.(type) {
	case string:
		r := c.redact(v)
		return r, r != v
	case json.Number:
		if r := c.redact(string(v)); r != string(v) {
			return r, true
		}
		return v, false
	case []any:
		changed := false
		for i, e := range v {
			var ch bool
			v[i], ch = c.redactValue(e)
			changed = changed || ch
		}
		return v, changed
	case map[string]any:
		out := make(map[string]any, len(v))
		changed := false
		for k, e := range v {
			rk := c.redact(k)
			re, ch := c.redactValue(e)
			out[rk] = re
			changed = changed || ch || rk != k
		}
		return out, changed
	}
	return v, false
}

// redactHeader returns a copy of h with the secrets removed from its values.
func (c *Client) redactHeader(h http.Header) http.Header {
	out := h.Clone()
	for k, vs := range out {
		for i, v := range vs {
			vs[i] = c.redact(v)
		}
		out[k] = vs
	}
	return out
}

func (c *Client) redactInfos(in []ResponseInfo) []ResponseInfo {
	for i := range in {
		in[i].Message = c.redact(in[i].Message)
		in[i].DocumentationURL = c.redact(in[i].DocumentationURL)
		if in[i].Source != nil {
			in[i].Source.Pointer = c.redact(in[i].Source.Pointer)
		}
		in[i].ErrorChain = c.redactInfos(in[i].ErrorChain)
	}
	return in
}

// excerpt returns a short, printable, secret-free excerpt of a body. A JSON
// body is redacted as JSON, so that an escaped secret goes too.
func (c *Client) excerpt(body []byte) string {
	if json.Valid(body) {
		return sanitize(string(c.redactJSON(body)), maxExcerpt)
	}
	return sanitize(c.redact(string(body)), maxExcerpt)
}
