// Package cftest is a fake Cloudflare API for tests. It serves
// "Revoke all Access tokens for a user", "Get your Zero Trust organization"
// and the token checks on 127.0.0.1, records every revoke_user call, and can
// be scripted to fail, hang or answer otherwise. It also serves the Access
// users, their active sessions and the Access authentication log (see
// AddUser, AddLogin, DenyRead and Reads), whose sessions end when a
// revoke_user call for their email succeeds.
//
//	srv := cftest.NewServer(t)
//	srv.Script(cftest.Fail(500, 10001, "Internal server error")) // then success
//	client, _ := cloudflare.New(cloudflare.Options{
//		BaseURL: srv.URL(), APIToken: srv.APIToken(), AccountID: srv.AccountID(),
//	})
//	…
//	calls := srv.WaitCalls(t, 2, 5*time.Second)
package cftest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults of a Server.
const (
	DefaultAPIToken  = "cf-test-token"
	DefaultAccountID = "acc-test"
	// TokenID is the token ID the verify endpoints report.
	TokenID = "tok-test"
)

// RateLimitCode and RateLimitMessage are the error Cloudflare's API sends
// with a 429 when a token exceeds its rate limit.
const (
	RateLimitCode    = 971
	RateLimitMessage = "Please wait and consider throttling your request speed"
)

// Redacted replaces credential header values in recorded calls.
const Redacted = "REDACTED"

// prefix is the path under which the fake serves the API, like the real one.
const prefix = "/client/v4"

// maxBody bounds how much of a request body the fake reads.
const maxBody = 1 << 20

// Server is a fake Cloudflare API on 127.0.0.1 (an httptest.Server). It is
// safe for concurrent use.
//
// With WithRateLimit, any request past the limit gets 429 first, whatever
// its route or credentials. Otherwise a revoke_user request is answered in
// this order: a missing or wrong credential gets 403 {"code":10000,"message":"Authentication error"}; a body
// that is not valid JSON, or has no email, gets 400 (code 9207); otherwise
// the next scripted Response is consumed and sent, or, when the script is
// empty, success {"result":true,"success":true,"errors":[],"messages":[]}.
// Every revoke_user request is recorded (see Calls), whatever the answer.
type Server struct {
	srv       *httptest.Server
	closeOnce sync.Once
	closing   chan struct{}

	// Set by options before the server starts; read-only afterwards.
	token     string
	email     string
	apiKey    string
	globalKey bool
	accountID string
	zoneID    string

	mu      sync.Mutex
	script  []Response
	calls   []Call
	changed chan struct{} // closed and replaced whenever calls grows

	// WithRateLimit (read-only once the server runs): rateN requests per
	// rateWindow; rateWindow 0 means no limit.
	rateN      int
	rateWindow time.Duration
	// admitted holds the arrival times of the requests let through in the
	// last rateWindow, oldest first; limited counts the 429s it caused.
	admitted []time.Time
	limited  int
	// inFlight is how many requests are being handled now; maxInFlight the
	// most ever handled at once.
	inFlight, maxInFlight int

	// orgScript holds answers to GET …/access/organizations (ScriptOrganization).
	orgScript []Response
	// verifyScript holds answers to the token checks (ScriptVerify).
	verifyScript []Response

	// inspect holds the Access users, sessions and log (users.go).
	inspect inspectState
}

// Option configures a Server.
type Option func(*Server)

// WithAPIToken sets the API token the server accepts as
// "Authorization: Bearer <token>". Default DefaultAPIToken.
func WithAPIToken(token string) Option {
	return func(s *Server) { s.token = token }
}

// WithGlobalKey makes the server accept a legacy global API key
// (X-Auth-Email and X-Auth-Key) instead of an API token.
func WithGlobalKey(email, key string) Option {
	return func(s *Server) { s.globalKey, s.email, s.apiKey = true, email, key }
}

// WithAccountID sets the account ID of the /accounts/{id}/… routes.
// Default DefaultAccountID.
func WithAccountID(id string) Option {
	return func(s *Server) { s.accountID = id }
}

// WithZoneID serves revoke_user on /zones/{id}/… instead of /accounts/{id}/….
func WithZoneID(id string) Option {
	return func(s *Server) { s.zoneID = id }
}

// WithRateLimit makes the server enforce a sliding-window rate limit over
// all its routes together, like Cloudflare's per-token limit: a request that
// arrives when n requests were let through in the last window is answered
// 429, with "Retry-After" (whole seconds until the oldest of them leaves the
// window, at least 1) and the error RateLimitCode. Requests answered 429 do
// not count against the window and do not consume a script; a revoke_user
// one is still recorded (see Calls). n and window must be positive.
func WithRateLimit(n int, window time.Duration) Option {
	return func(s *Server) { s.rateN, s.rateWindow = n, window }
}

// Response is a scripted answer to one call (see Script, ScriptOrganization
// and ScriptVerify).
type Response struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Body is sent as is. Empty means a Cloudflare envelope fitting Status:
	// success for 2xx, else an error, e.g. for 500
	// {"success":false,"result":null,"errors":[{"code":10001,"message":"Internal server error"}],"messages":[]}.
	Body string
	// Header is added to the answer. Content-Type defaults to
	// application/json when Body is valid JSON.
	Header http.Header
	// Delay holds the answer back this long, or until the client gives up
	// (useful to test timeouts).
	Delay time.Duration
}

// Fail returns a Response with a Cloudflare error envelope carrying one error.
func Fail(status int, code int, message string) Response {
	return Response{Status: status, Body: errorEnvelope(code, message)}
}

// RateLimited returns a 429 Response with "Retry-After: <seconds>" and
// Cloudflare's rate-limit error (RateLimitCode, RateLimitMessage).
func RateLimited(retryAfterSeconds int) Response {
	r := Fail(http.StatusTooManyRequests, RateLimitCode, RateLimitMessage)
	r.Header = http.Header{"Retry-After": {fmt.Sprint(retryAfterSeconds)}}
	return r
}

// Call is one revoke_user request the server received.
type Call struct {
	// Method and Path are as received; Path includes the /client/v4 prefix.
	Method string
	Path   string
	// Query is the parsed query string.
	Query url.Values
	// Header holds the request headers, with the values of Authorization and
	// X-Auth-Key replaced by Redacted.
	Header http.Header
	// AuthOK reports whether the request carried the right credentials.
	AuthOK bool
	// Body is the decoded JSON body; zero if it did not decode.
	Body RevokeBody
	// RawBody is the body as received (at most 1 MiB).
	RawBody []byte
	// Status is the HTTP status the fake answered.
	Status int
	// At is when the request arrived.
	At time.Time
}

// RevokeBody is the JSON body of revoke_user. Pointers tell a field sent as
// false from one left out.
type RevokeBody struct {
	Email             string `json:"email"`
	Devices           *bool  `json:"devices"`
	UserUID           string `json:"user_uid"`
	WARPSessionReauth *bool  `json:"warp_session_reauth"`
}

// NewServer starts a fake API and registers tb.Cleanup to close it.
func NewServer(tb TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		token:     DefaultAPIToken,
		accountID: DefaultAccountID,
		closing:   make(chan struct{}),
		changed:   make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	if s.rateN != 0 || s.rateWindow != 0 {
		if s.rateN <= 0 || s.rateWindow <= 0 {
			tb.Fatalf("cftest: WithRateLimit(%d, %s): both must be positive", s.rateN, s.rateWindow)
		}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server, ending delayed answers early. It is called
// automatically at the end of the test; calling it again does nothing.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.srv.Close()
	})
}

// URL returns the API base URL, like http://127.0.0.1:PORT/client/v4 (no
// trailing slash).
func (s *Server) URL() string { return s.srv.URL + prefix }

// APIToken returns the API token the server accepts ("" with WithGlobalKey).
func (s *Server) APIToken() string {
	if s.globalKey {
		return ""
	}
	return s.token
}

// AccountID returns the account ID of the /accounts/{id}/… routes.
func (s *Server) AccountID() string { return s.accountID }

// ZoneID returns the zone ID set by WithZoneID, or "".
func (s *Server) ZoneID() string { return s.zoneID }

// Script queues responses, consumed one per revoke_user call in order (see
// Server for which calls consume one). When the queue is empty, calls succeed.
func (s *Server) Script(responses ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, responses...)
}

// Calls returns copies of every revoke_user request received, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyCalls(s.calls)
}

// RateLimitedCount returns how many requests, on any route, the server
// answered 429 because of WithRateLimit. Scripted 429s are not counted.
func (s *Server) RateLimitedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limited
}

// MaxConcurrent returns the largest number of requests, on any route, that
// the server was handling at the same time. A request counts from when its
// handler starts until its answer is written (a Delay included).
func (s *Server) MaxConcurrent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

// WaitCalls waits until at least n revoke_user requests were recorded and
// returns copies of all of them. On timeout it fails the test with
// tb.Fatalf (so call it from the test's goroutine) and returns nil.
func (s *Server) WaitCalls(tb TB, n int, timeout time.Duration) []Call {
	tb.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.calls) >= n {
			calls := copyCalls(s.calls)
			s.mu.Unlock()
			return calls
		}
		got, changed := len(s.calls), s.changed
		s.mu.Unlock()

		select {
		case <-changed:
		case <-timer.C:
			tb.Fatalf("cftest: got %d revoke_user calls after %s, want at least %d", got, timeout, n)
			return nil
		}
	}
}

func copyCalls(calls []Call) []Call {
	out := make([]Call, len(calls))
	for i, c := range calls {
		c.Query = url.Values(http.Header(c.Query).Clone())
		c.Header = c.Header.Clone()
		c.RawBody = bytes.Clone(c.RawBody)
		c.Body.Devices = cloneBool(c.Body.Devices)
		c.Body.WARPSessionReauth = cloneBool(c.Body.WARPSessionReauth)
		out[i] = c
	}
	return out
}

func cloneBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.enter()
	defer s.leave()
	if resp := s.admit(time.Now()); resp != nil {
		s.serveLimited(w, r, *resp)
		return
	}
	path, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix+"/")
	if !ok {
		writeJSON(w, http.StatusNotFound, nil, errorEnvelope(7000, "No route for that URI"))
		return
	}
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if u, err := url.PathUnescape(p); err == nil {
			parts[i] = u
		}
	}
	switch {
	case len(parts) == 5 && parts[2] == "access" && parts[3] == "organizations" && parts[4] == "revoke_user" &&
		(parts[0] == "accounts" || parts[0] == "zones"):
		s.serveRevoke(w, r, parts[0], parts[1])
	case len(parts) == 4 && parts[2] == "access" && parts[3] == "organizations" && (parts[0] == "accounts" || parts[0] == "zones"):
		s.serveOrganization(w, r, parts[0], parts[1])
	case len(parts) >= 4 && parts[0] == "accounts" && parts[2] == "access" && (parts[3] == "users" || parts[3] == "logs"):
		s.serveRead(w, r, parts)
	case len(parts) == 3 && parts[0] == "user" && parts[1] == "tokens" && parts[2] == "verify":
		s.serveVerify(w, r)
	case len(parts) == 4 && parts[0] == "accounts" && parts[2] == "tokens" && parts[3] == "verify":
		if parts[1] != s.accountID {
			writeJSON(w, http.StatusNotFound, nil, errorEnvelope(7003, "Could not route to "+r.URL.Path+", perhaps your object identifier is invalid?"))
			return
		}
		s.serveVerify(w, r)
	default:
		writeJSON(w, http.StatusNotFound, nil, errorEnvelope(7000, "No route for that URI"))
	}
}

// ScriptVerify queues answers to the token checks, GET /user/tokens/verify
// and GET /accounts/{id}/tokens/verify, consumed one per request that carries
// the right token (and, for the account route, the server's account ID). When
// the queue is empty, the token is reported active, with no expiry. A Response
// with a 2xx Status and no Body reports the token active too; see VerifyResult
// for other statuses and dates. These requests are not recorded in Calls.
func (s *Server) ScriptVerify(responses ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.verifyScript = append(s.verifyScript, responses...)
}

// VerifyResult returns a successful answer to a token check reporting the
// token TokenID with status ("active", "disabled" or "expired") and, unless
// they are zero, its expires_on and not_before, in RFC 3339 as Cloudflare
// sends them.
func VerifyResult(status string, expiresOn, notBefore time.Time) Response {
	return Response{Body: verifyBody(status, expiresOn, notBefore)}
}

// verifyBody is the success envelope of a token check.
func verifyBody(status string, expiresOn, notBefore time.Time) string {
	result := map[string]any{"id": TokenID, "status": status}
	if !expiresOn.IsZero() {
		result["expires_on"] = expiresOn.UTC().Format(time.RFC3339)
	}
	if !notBefore.IsZero() {
		result["not_before"] = notBefore.UTC().Format(time.RFC3339)
	}
	b, err := json.Marshal(map[string]any{
		"success":  true,
		"errors":   []any{},
		"messages": []any{map[string]any{"code": 10000, "message": "This API Token is valid and active", "type": nil}},
		"result":   result,
	})
	if err != nil {
		panic(err) // cannot happen: the map holds only JSON types
	}
	return string(b)
}

func (s *Server) serveVerify(w http.ResponseWriter, r *http.Request) {
	var resp Response
	switch {
	case r.Method != http.MethodGet:
		resp = Fail(http.StatusMethodNotAllowed, 10405, "Method not allowed")
	case s.globalKey || r.Header.Get("Authorization") != "Bearer "+s.token:
		resp = Fail(http.StatusUnauthorized, 1000, "Invalid API Token")
	default:
		s.mu.Lock()
		if len(s.verifyScript) > 0 {
			resp, s.verifyScript = s.verifyScript[0], s.verifyScript[1:]
		}
		s.mu.Unlock()
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	if resp.Body == "" {
		resp.Body = defaultBody(resp.Status)
		if resp.Status >= 200 && resp.Status <= 299 {
			resp.Body = verifyBody("active", time.Time{}, time.Time{})
		}
	}
	s.reply(w, r, resp)
}

// reply sends resp after its Delay, or nothing if the client goes away or
// the server closes first.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, resp Response) {
	if resp.Delay > 0 {
		t := time.NewTimer(resp.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
	writeJSON(w, resp.Status, resp.Header, resp.Body)
}

// enter and leave track how many requests are being handled at once.
func (s *Server) enter() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
}

func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
}

// admit applies WithRateLimit to a request arriving at now: it returns nil
// and counts the request if the window has room, else the 429 to send.
func (s *Server) admit(now time.Time) *Response {
	if s.rateWindow == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := now.Add(-s.rateWindow)
	expired := 0
	for expired < len(s.admitted) && !s.admitted[expired].After(cutoff) {
		expired++
	}
	s.admitted = s.admitted[expired:]
	if len(s.admitted) < s.rateN {
		s.admitted = append(s.admitted, now)
		return nil
	}
	s.limited++
	wait := s.admitted[0].Add(s.rateWindow).Sub(now)
	r := RateLimited(max(1, int((wait+time.Second-1)/time.Second))) // whole seconds, rounded up
	return &r
}

// serveLimited sends resp, the 429 of WithRateLimit, recording the call if
// it is a revoke_user request.
func (s *Server) serveLimited(w http.ResponseWriter, r *http.Request, resp Response) {
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), prefix+"/"), "/")
	if strings.HasPrefix(r.URL.EscapedPath(), prefix+"/") && len(parts) == 5 &&
		parts[2] == "access" && parts[3] == "organizations" && parts[4] == "revoke_user" &&
		(parts[0] == "accounts" || parts[0] == "zones") {
		call, _ := s.newCall(r)
		call.Status = resp.Status
		s.record(call)
	}
	writeJSON(w, resp.Status, resp.Header, resp.Body)
}

// newCall reads a revoke_user request into a Call (Status not yet set); the
// error is that of decoding its body.
func (s *Server) newCall(r *http.Request) (Call, error) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	call := Call{
		Method:  r.Method,
		Path:    r.URL.Path,
		Query:   r.URL.Query(),
		Header:  r.Header.Clone(),
		AuthOK:  s.authOK(r),
		RawBody: raw,
		At:      time.Now(),
	}
	for _, h := range []string{"Authorization", "X-Auth-Key"} {
		if _, ok := call.Header[h]; ok {
			call.Header[h] = []string{Redacted}
		}
	}
	bodyErr := json.Unmarshal(raw, &call.Body)
	if bodyErr != nil {
		call.Body = RevokeBody{}
	}
	return call, bodyErr
}

func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request, scope, id string) {
	call, bodyErr := s.newCall(r)

	wantScope, wantID := "accounts", s.accountID
	if s.zoneID != "" {
		wantScope, wantID = "zones", s.zoneID
	}

	var resp Response
	switch {
	case !call.AuthOK:
		resp = Fail(http.StatusForbidden, 10000, "Authentication error")
	case scope != wantScope || id != wantID:
		resp = Fail(http.StatusNotFound, 7003, "Could not route to "+r.URL.Path+", perhaps your object identifier is invalid?")
	case r.Method != http.MethodPost:
		resp = Fail(http.StatusMethodNotAllowed, 10405, "Method not allowed")
	case bodyErr != nil:
		resp = Fail(http.StatusBadRequest, 9207, "Request body is invalid.")
	case strings.TrimSpace(call.Body.Email) == "":
		resp = Fail(http.StatusBadRequest, 9207, "email is required")
	default:
		resp = s.next()
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	if resp.Body == "" {
		resp.Body = defaultBody(resp.Status)
	}
	if resp.Status >= 200 && resp.Status <= 299 {
		s.noteRevoked(call.Body.Email, call.At)
	}
	call.Status = resp.Status
	s.record(call)
	s.reply(w, r, resp)
}

func (s *Server) authOK(r *http.Request) bool {
	if s.globalKey {
		return r.Header.Get("Authorization") == "" &&
			r.Header.Get("X-Auth-Email") == s.email && r.Header.Get("X-Auth-Key") == s.apiKey
	}
	return r.Header.Get("Authorization") == "Bearer "+s.token
}

// next pops the next scripted response; a zero Response means success.
func (s *Server) next() Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.script) == 0 {
		return Response{}
	}
	r := s.script[0]
	s.script = s.script[1:]
	return r
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	close(s.changed)
	s.changed = make(chan struct{})
}

// defaultBody is the envelope the fake sends for a status without a body.
func defaultBody(status int) string {
	switch {
	case status >= 200 && status <= 299:
		return `{"result":true,"success":true,"errors":[],"messages":[]}`
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return errorEnvelope(10000, "Authentication error")
	case status == http.StatusNotFound:
		return errorEnvelope(7003, "Could not route to the object, perhaps your object identifier is invalid?")
	case status == http.StatusTooManyRequests:
		return errorEnvelope(RateLimitCode, RateLimitMessage)
	case status == http.StatusInternalServerError:
		return errorEnvelope(10001, "Internal server error")
	default:
		msg := http.StatusText(status)
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d", status)
		}
		return errorEnvelope(10001, msg)
	}
}

func errorEnvelope(code int, message string) string {
	b, err := json.Marshal(map[string]any{
		"success":  false,
		"result":   nil,
		"errors":   []map[string]any{{"code": code, "message": message}},
		"messages": []any{},
	})
	if err != nil {
		panic(err) // cannot happen: the map holds only JSON types
	}
	return string(b)
}

func writeJSON(w http.ResponseWriter, status int, header http.Header, body string) {
	h := w.Header()
	maps.Copy(h, header.Clone())
	if h.Get("Content-Type") == "" && json.Valid([]byte(body)) {
		h.Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
