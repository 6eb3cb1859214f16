package cftest

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The read-only endpoints that the Inspector of revokebot uses, as the fake
// serves them (account routes only; a Server made WithZoneID answers them
// 404, as it has no account):
//
//	GET /accounts/{id}/access/users                         "Get users"
//	GET /accounts/{id}/access/users/{user_id}/active_sessions "Get active sessions"
//	GET /accounts/{id}/access/logs/access_requests          "Get Access authentication logs"
//
// Cloudflare's schema (x-api-token-group) gates all three with one
// permission, "Access: Audit Logs Read"; DenyRead plays a token without it.

// Read names one of those endpoints, for DenyRead, ScriptRead and Reads.
type Read string

// The read-only endpoints of the fake.
const (
	// ReadUsers is GET /accounts/{id}/access/users.
	ReadUsers Read = "users"
	// ReadSessions is GET /accounts/{id}/access/users/{user_id}/active_sessions.
	ReadSessions Read = "sessions"
	// ReadLogs is GET /accounts/{id}/access/logs/access_requests.
	ReadLogs Read = "logs"
)

// allReads lists every Read, for DenyRead() and Reads().
var allReads = []Read{ReadUsers, ReadSessions, ReadLogs}

// Defaults of the read endpoints.
const (
	// DefaultUsersPerPage is the page size of GET …/access/users when the
	// request has no per_page.
	DefaultUsersPerPage = 1000
	// DefaultLogLimit is how many log entries GET …/logs/access_requests
	// returns when the request has no limit.
	DefaultLogLimit = 25
	// SessionTTL is the lifetime of the sessions the fake lists.
	SessionTTL = 6 * time.Hour
)

// User is an Access user of the fake, listed by GET …/access/users and
// owning Sessions active sessions (GET …/users/{id}/active_sessions).
//
// A revoke_user call for the user's email (compared without regard to
// case) that the fake answers with a 2xx status ends those sessions: they
// are no longer listed once SessionsLinger (or, when it is zero, the
// Server's WithSessionsLinger) has passed since the call, unless
// SessionsStay is set. Only sessions the user had when revoked end: AddUser
// again (same ID) to give the user sessions anew, as a login after the
// revocation would.
type User struct {
	// ID is the user's UUID (the "id" of the listing, and the user_id of
	// the sessions route). Empty means one derived from Email.
	ID string
	// Email is the user's email. Required.
	Email string
	// Name is the user's display name.
	Name string
	// LastLogin is reported as last_successful_login; zero omits it.
	LastLogin time.Time
	// Devices is reported as active_device_count.
	Devices int
	// Sessions is how many active sessions the user has.
	Sessions int
	// SessionsLinger overrides WithSessionsLinger for this user.
	SessionsLinger time.Duration
	// SessionsStay keeps the sessions listed after a revocation, as if
	// Cloudflare never dropped them.
	SessionsStay bool
}

// Login is one entry of the fake's Access authentication log (GET
// …/access/logs/access_requests).
type Login struct {
	// Email is the user_email of the entry.
	Email string
	// At is its created_at.
	At time.Time
	// AppDomain and AppUID name the Access application (app_domain,
	// app_uid).
	AppDomain string
	AppUID    string
	// IP is the ip_address the request came from.
	IP string
	// Allowed is the result of the authentication event.
	Allowed bool
	// Action is the event; empty means "login" (Cloudflare's log fields
	// name "login" and "logout").
	Action string
	// Connection is the identity provider used, e.g. "saml".
	Connection string
	// RayID is the ray_id; empty means one derived from the entry.
	RayID string
}

// WithSessionsLinger sets how long a user's sessions stay listed after a
// successful revoke_user call for the user's email (see User). Default 0:
// they are gone at once.
func WithSessionsLinger(d time.Duration) Option {
	return func(s *Server) { s.inspect.linger = d }
}

// inspectState is the fake's Access users, sessions and log; its fields
// other than linger are guarded by Server.mu.
type inspectState struct {
	linger  time.Duration // WithSessionsLinger; read-only once the server runs
	users   []userRecord  // in the order added
	logins  []Login       // in the order added
	denied  map[Read]bool
	scripts map[Read][]Response
	reads   []readCall
}

// userRecord is a User and when it was revoked (zero: not since added).
type userRecord struct {
	User
	revokedAt time.Time
}

// readCall is a recorded request to a read endpoint.
type readCall struct {
	what Read
	call Call
}

// AddUser adds u to the users of the account, or replaces the user with
// the same ID (sessions revoked no more), and returns it with its ID set.
func (s *Server) AddUser(u User) User {
	if u.ID == "" {
		u.ID = uuid.NewSHA1(uuid.NameSpaceURL, []byte("cftest:user:"+strings.ToLower(u.Email))).String()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := userRecord{User: u}
	if i := slices.IndexFunc(s.inspect.users, func(r userRecord) bool { return r.ID == u.ID }); i >= 0 {
		s.inspect.users[i] = rec
	} else {
		s.inspect.users = append(s.inspect.users, rec)
	}
	return u
}

// AddLogin adds entries to the Access authentication log.
func (s *Server) AddLogin(entries ...Login) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inspect.logins = append(s.inspect.logins, entries...)
}

// DenyRead makes the given endpoints answer 403 with Cloudflare's
// {"code":10000,"message":"Authentication error"}, as for a token without
// the permission; with no argument, all three, which is what a token
// without "Access: Audit Logs Read" gets (Cloudflare's schema asks that one
// permission of each). Denied requests are still recorded (see Reads).
func (s *Server) DenyRead(what ...Read) {
	s.setDenied(what, true)
}

// AllowRead undoes DenyRead for the given endpoints (with no argument, all).
func (s *Server) AllowRead(what ...Read) {
	s.setDenied(what, false)
}

func (s *Server) setDenied(what []Read, deny bool) {
	if len(what) == 0 {
		what = allReads
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inspect.denied == nil {
		s.inspect.denied = make(map[Read]bool)
	}
	for _, w := range what {
		s.inspect.denied[w] = deny
	}
}

// ScriptRead queues answers to the endpoint what, consumed one per request
// that carries the right credentials and account and is not denied. When
// the queue is empty, the endpoint answers from the fake's users and log.
func (s *Server) ScriptRead(what Read, responses ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inspect.scripts == nil {
		s.inspect.scripts = make(map[Read][]Response)
	}
	s.inspect.scripts[what] = append(s.inspect.scripts[what], responses...)
}

// Reads returns copies of the requests received by the given endpoints
// (with no argument, all three), in order, whatever the answer. Requests
// answered 429 by WithRateLimit are not among them.
func (s *Server) Reads(what ...Read) []Call {
	if len(what) == 0 {
		what = allReads
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, rc := range s.inspect.reads {
		if slices.Contains(what, rc.what) {
			out = append(out, rc.call)
		}
	}
	return copyCalls(out)
}

// noteRevoked marks the users with email as revoked at at, unless they
// already are.
func (s *Server) noteRevoked(email string, at time.Time) {
	email = strings.TrimSpace(email)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.inspect.users {
		u := &s.inspect.users[i]
		if strings.EqualFold(u.Email, email) && u.revokedAt.IsZero() {
			u.revokedAt = at
		}
	}
}

// sessionsAt returns how many sessions u lists at now.
func (s *Server) sessionsAt(u userRecord, now time.Time) int {
	if u.revokedAt.IsZero() || u.SessionsStay {
		return u.Sessions
	}
	linger := u.SessionsLinger
	if linger == 0 {
		linger = s.inspect.linger
	}
	if now.Before(u.revokedAt.Add(linger)) {
		return u.Sessions
	}
	return 0
}

// readRoute tells which read endpoint parts (the unescaped path segments
// after /client/v4/) name, and the user ID for ReadSessions.
func readRoute(parts []string) (what Read, userID string, ok bool) {
	switch {
	case len(parts) == 4 && parts[3] == "users":
		return ReadUsers, "", true
	case len(parts) == 6 && parts[3] == "users" && parts[5] == "active_sessions":
		return ReadSessions, parts[4], true
	case len(parts) == 5 && parts[3] == "logs" && parts[4] == "access_requests":
		return ReadLogs, "", true
	}
	return "", "", false
}

// serveRead answers the read endpoints under /accounts/{id}/access/
// (parts[0] is "accounts", parts[2] "access"): a wrong credential gets 403
// (code 10000), an account other than the server's, or any account with
// WithZoneID, 404 (code 7003), a method other than GET 405, a denied
// endpoint 403 (code 10000); otherwise the next scripted answer, or the
// fake's data.
func (s *Server) serveRead(w http.ResponseWriter, r *http.Request, parts []string) {
	what, userID, ok := readRoute(parts)
	if !ok {
		writeJSON(w, http.StatusNotFound, nil, errorEnvelope(7000, "No route for that URI"))
		return
	}
	call, _ := s.newCall(r)

	var resp Response
	scripted := false
	switch {
	case !call.AuthOK:
		resp = Fail(http.StatusForbidden, 10000, "Authentication error")
	case s.zoneID != "" || parts[1] != s.accountID:
		resp = Fail(http.StatusNotFound, 7003, "Could not route to "+r.URL.Path+", perhaps your object identifier is invalid?")
	case r.Method != http.MethodGet:
		resp = Fail(http.StatusMethodNotAllowed, 10405, "Method not allowed")
	default:
		s.mu.Lock()
		switch {
		case s.inspect.denied[what]:
			resp = Fail(http.StatusForbidden, 10000, "Authentication error")
		case len(s.inspect.scripts[what]) > 0:
			resp, s.inspect.scripts[what] = s.inspect.scripts[what][0], s.inspect.scripts[what][1:]
			scripted = true
		}
		s.mu.Unlock()
		if resp.Status == 0 && !scripted {
			resp = s.readAnswer(what, userID, r)
		}
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	if resp.Body == "" {
		resp.Body = defaultBody(resp.Status)
		if resp.Status >= 200 && resp.Status <= 299 {
			resp.Body = s.readAnswer(what, userID, r).Body
		}
	}
	call.Status = resp.Status
	s.mu.Lock()
	s.inspect.reads = append(s.inspect.reads, readCall{what: what, call: call})
	s.mu.Unlock()
	s.reply(w, r, resp)
}

// readAnswer is the fake's own answer to a read request.
func (s *Server) readAnswer(what Read, userID string, r *http.Request) Response {
	q := r.URL.Query()
	switch what {
	case ReadUsers:
		return s.usersAnswer(q)
	case ReadSessions:
		return s.sessionsAnswer(userID)
	default:
		return s.logsAnswer(q)
	}
}

// usersAnswer lists the users matching the query. Cloudflare's schema says
// of "email" only "The email of the user", not whether it must match
// exactly; the fake takes the looser reading, a substring match without
// regard to case (so "a@b.c" also lists "xa@b.c" and "a@b.co"), which a
// client must be ready for anyway. "name" matches the same way, and
// "search" matches the email or the name. page (from 1) and per_page
// (DefaultUsersPerPage) page the result, with a result_info.
func (s *Server) usersAnswer(q map[string][]string) Response {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	page, err := positive(get("page"), 1)
	if err != nil {
		return Fail(http.StatusBadRequest, 9207, "page must be a positive integer")
	}
	perPage, err := positive(get("per_page"), DefaultUsersPerPage)
	if err != nil {
		return Fail(http.StatusBadRequest, 9207, "per_page must be a positive integer")
	}
	contains := func(s, sub string) bool { return strings.Contains(strings.ToLower(s), strings.ToLower(sub)) }
	email, name, search := get("email"), get("name"), get("search")

	s.mu.Lock()
	var match []userRecord
	for _, u := range s.inspect.users {
		if (email == "" || contains(u.Email, email)) && (name == "" || contains(u.Name, name)) &&
			(search == "" || contains(u.Email, search) || contains(u.Name, search)) {
			match = append(match, u)
		}
	}
	s.mu.Unlock()

	total := len(match)
	from := min((page-1)*perPage, total)
	to := min(from+perPage, total)
	result := make([]map[string]any, 0, to-from)
	for _, u := range match[from:to] {
		item := map[string]any{
			"id":                  u.ID,
			"uid":                 u.ID,
			"email":               u.Email,
			"name":                u.Name,
			"access_seat":         true,
			"gateway_seat":        u.Devices > 0,
			"active_device_count": u.Devices,
			"seat_uid":            strings.ReplaceAll(u.ID, "-", ""),
			"created_at":          "2024-01-01T00:00:00Z",
			"updated_at":          "2024-01-01T00:00:00Z",
		}
		if !u.LastLogin.IsZero() {
			item["last_successful_login"] = u.LastLogin.UTC().Format(time.RFC3339Nano)
		}
		result = append(result, item)
	}
	return Response{Status: http.StatusOK, Body: successBody(result, map[string]any{
		"page":        page,
		"per_page":    perPage,
		"count":       len(result),
		"total_count": total,
		"total_pages": (total + perPage - 1) / perPage,
	})}
}

// sessionsAnswer lists the active sessions of the user userID, shaped as
// Cloudflare's "Get active sessions": expiration, metadata {apps, expires,
// iat, nonce, ttl} and name. An unknown user ID is a 404.
func (s *Server) sessionsAnswer(userID string) Response {
	now := time.Now()
	s.mu.Lock()
	var u userRecord
	i := slices.IndexFunc(s.inspect.users, func(r userRecord) bool { return r.ID == userID })
	n := 0
	if i >= 0 {
		u = s.inspect.users[i]
		n = s.sessionsAt(u, now)
	}
	s.mu.Unlock()
	if i < 0 {
		// A user ID nobody has is an error, not an empty list: a wrong ID
		// must never read as "no session left".
		return Fail(http.StatusNotFound, 7003, "Could not route to /access/users/"+userID+"/active_sessions, perhaps your object identifier is invalid?")
	}

	iat := now.Add(-time.Hour)
	if !u.LastLogin.IsZero() {
		iat = u.LastLogin
	}
	expires := iat.Add(SessionTTL)
	result := make([]map[string]any, 0, n)
	for k := range n {
		appUID := uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "cftest:app:%d", k)).String()
		result = append(result, map[string]any{
			"expiration": expires.Unix(),
			"name":       u.Name,
			"metadata": map[string]any{
				"apps": map[string]any{
					appUID: map[string]any{
						"hostname": fmt.Sprintf("app%d.cftest.example", k),
						"name":     fmt.Sprintf("cftest app %d", k),
						"type":     "self_hosted",
						"uid":      appUID,
					},
				},
				"expires": expires.Unix(),
				"iat":     iat.Unix(),
				"nonce":   shortHash(fmt.Sprintf("%s/%d", userID, k)),
				"ttl":     int64(SessionTTL / time.Second),
			},
		})
	}
	return Response{Status: http.StatusOK, Body: successBody(result, map[string]any{
		"page": 1, "per_page": max(n, 1), "count": n, "total_count": n, "total_pages": 1,
	})}
}

// logsAnswer lists the log entries matching the query, as "Get Access
// authentication logs" documents its parameters: "email" matches a
// substring of user_email, or, with email_exact=true, the whole of it
// (both with regard to case: Cloudflare documents its substring match as
// case-sensitive, and says nothing of case for the exact one); since and
// until (RFC 3339) bound created_at, both inclusive; direction is "desc"
// (default) or "asc"; limit (DefaultLogLimit) caps the count. There is no
// result_info. Other parameters are ignored.
func (s *Server) logsAnswer(q map[string][]string) Response {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	limit, err := positive(get("limit"), DefaultLogLimit)
	if err != nil {
		return Fail(http.StatusBadRequest, 9207, "limit must be a positive integer")
	}
	var since, until time.Time
	for _, p := range []struct {
		key string
		t   *time.Time
	}{{"since", &since}, {"until", &until}} {
		if v := get(p.key); v != "" {
			if *p.t, err = time.Parse(time.RFC3339, v); err != nil {
				return Fail(http.StatusBadRequest, 9207, p.key+" must be an RFC 3339 date-time")
			}
		}
	}
	desc := true
	switch get("direction") {
	case "", "desc":
	case "asc":
		desc = false
	default:
		return Fail(http.StatusBadRequest, 9207, `direction must be "asc" or "desc"`)
	}
	email, exact := get("email"), get("email_exact") == "true"

	s.mu.Lock()
	var match []Login
	for _, l := range s.inspect.logins {
		switch {
		case email != "" && exact && l.Email != email,
			email != "" && !exact && !strings.Contains(l.Email, email),
			!since.IsZero() && l.At.Before(since),
			!until.IsZero() && l.At.After(until):
			continue
		}
		match = append(match, l)
	}
	s.mu.Unlock()

	slices.SortStableFunc(match, func(a, b Login) int { return a.At.Compare(b.At) })
	if desc {
		slices.Reverse(match)
	}
	match = match[:min(limit, len(match))]
	result := make([]map[string]any, 0, len(match))
	for _, l := range match {
		action := l.Action
		if action == "" {
			action = "login"
		}
		ray := l.RayID
		if ray == "" {
			ray = shortHash(fmt.Sprintf("%s/%s/%s/%s", l.Email, l.At.Format(time.RFC3339Nano), l.AppUID, l.AppDomain))
		}
		result = append(result, map[string]any{
			"action":     action,
			"allowed":    l.Allowed,
			"app_domain": l.AppDomain,
			"app_uid":    l.AppUID,
			"connection": l.Connection,
			"created_at": l.At.UTC().Format(time.RFC3339Nano),
			"ip_address": l.IP,
			"ray_id":     ray,
			"user_email": l.Email,
		})
	}
	return Response{Status: http.StatusOK, Body: successBody(result, nil)}
}

// positive reads a positive integer, or returns def for "".
func positive(v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("not a positive integer: %q", v)
	}
	return n, nil
}

// shortHash is 16 hex digits derived from s (like a ray ID or a nonce).
func shortHash(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// successBody is a success envelope with result and, unless nil, a
// result_info.
func successBody(result any, info map[string]any) string {
	env := map[string]any{
		"success":  true,
		"errors":   []any{},
		"messages": []any{},
		"result":   result,
	}
	if info != nil {
		env["result_info"] = info
	}
	b, err := json.Marshal(env)
	if err != nil {
		panic(err) // cannot happen: the map holds only JSON types
	}
	return string(b)
}
