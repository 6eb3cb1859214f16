package cloudflare

// This file makes *Client an approvals.Inspector, with three read-only
// endpoints of Cloudflare's account-level Zero Trust API. Their shapes and
// permissions are those of Cloudflare's OpenAPI schema (cloudflare/api-schemas,
// openapi.json, as of July 2026: each operation's "x-api-token-group"), of
// the API reference built from it (developers.cloudflare.com/api, "Accepted
// Permissions") and of cloudflare-go v6 (zero_trust/accessuser.go,
// accessuseractivesession.go, accesslogaccessrequest.go):
//
//   - "Get users" (zero-trust-users-get-users):
//     GET /accounts/{account_id}/access/users?email=…&page=…&per_page=…
//     Permission: "Access: Audit Logs Read".
//     Query: email, name, search, page, per_page. The schema says of email
//     only "The email of the user", not whether it matches exactly, so the
//     answer is searched for the exact email here (without regard to case).
//     Result: a list of {id (UUID, the user_id of the next route),
//     access_seat, active_device_count (number), created_at, email,
//     gateway_seat, last_successful_login (RFC 3339), name, seat_uid, uid,
//     updated_at}, with a result_info.
//
//   - "Get active sessions" (zero-trust-users-get-active-sessions):
//     GET /accounts/{account_id}/access/users/{user_id}/active_sessions
//     Permission: "Access: Audit Logs Read".
//     Result: a list of {expiration, metadata {apps {…: {hostname, name,
//     type, uid}}, expires, iat, nonce, ttl}, name}; only counted here.
//
//   - "Get Access authentication logs"
//     (access-authentication-logs-get-access-authentication-logs):
//     GET /accounts/{account_id}/access/logs/access_requests?direction=asc&email=…&email_exact=true&limit=1000&since=…
//     Permission: "Access: Audit Logs Read".
//     Query: limit, direction (desc|asc), since and until (date-time), page,
//     per_page, email, email_exact, emailOp (eq|neq|contains) and other
//     *Op operators, fields, user_id (deprecated, ignored). Without
//     email_exact=true (or emailOp=eq), email matches a substring.
//     Result: a list of {action ("login" or "logout"), allowed, app_domain,
//     app_uid, connection, created_at, ip_address, ray_id, user_email}, no
//     result_info.
//
// There are no such routes for a zone. A token without the permission gets
// 403 (Cloudflare's {"code":10000,"message":"Authentication error"}), which
// the methods report as an *approvals.Unavailable (WhyNoUsers, WhyNoLogs).
// Revoking needs another permission, "Access: Organizations, Identity
// Providers, and Groups Write" (or, since 2026, "Access: Organizations
// Revoke"), so a token may revoke without being able to look.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// The reasons of the *approvals.Unavailable errors of the Inspector
// methods, one per feature.
const (
	// WhyZoneMode: a Client for a zone has no user or log endpoints.
	WhyZoneMode = "Cloudflare has no user endpoints in zone mode (CLOUDFLARE_ZONE_ID)"
	// WhyNoUsers: Cloudflare refused to list users or their sessions.
	WhyNoUsers = `the token cannot read Access users (it needs the permission "Access: Audit Logs Read")`
	// WhyNoLogs: Cloudflare refused to read the authentication log.
	WhyNoLogs = `the token cannot read Access logs (it needs the permission "Access: Audit Logs Read")`
)

// Paging of the lookups.
const (
	// usersPerPage is the per_page of "Get users".
	usersPerPage = 100
	// maxUserPages bounds how many pages of users one lookup reads.
	maxUserPages = 10
	// logLimit is the limit of one "Get Access authentication logs" call.
	logLimit = 1000
	// logShortPage is Cloudflare's default page size of the log (per_page
	// 25); an answer at least this long may have been cut short.
	logShortPage = 25
	// maxLogPages bounds how many calls one Logins makes.
	maxLogPages = 20
)

var _ approvals.Inspector = (*Client)(nil)

// accessUser is an item of "Get users".
type accessUser struct {
	ID                  string  `json:"id"`
	UID                 string  `json:"uid"`
	Email               string  `json:"email"`
	Name                string  `json:"name"`
	LastSuccessfulLogin string  `json:"last_successful_login"`
	ActiveDeviceCount   float64 `json:"active_device_count"`
}

// accessRequest is an item of "Get Access authentication logs". It is
// comparable, so that an entry seen twice is known.
type accessRequest struct {
	Action     string `json:"action"`
	Allowed    bool   `json:"allowed"`
	AppDomain  string `json:"app_domain"`
	AppUID     string `json:"app_uid"`
	Connection string `json:"connection"`
	CreatedAt  string `json:"created_at"`
	IPAddress  string `json:"ip_address"`
	RayID      string `json:"ray_id"`
	UserEmail  string `json:"user_email"`
}

// Preview looks email up among the account's Access users ("Get users",
// filtered by email, the exact address picked from the answer without
// regard to case) and, for a known user, counts its active sessions ("Get
// active sessions"). A person Cloudflare does not know is a Preview with
// Known false (and At set), not an error. At is when the answers were in.
//
// A Client for a zone returns an *approvals.Unavailable (WhyZoneMode)
// without calling anything; a 403 from Cloudflare is an error wrapping an
// *approvals.Unavailable (WhyNoUsers) and the *APIError. Other failures are
// those of every call (retries, *APIError, ErrQueuedTooLong).
func (c *Client) Preview(ctx context.Context, email string) (approvals.Preview, error) {
	if c.zoneID != "" {
		return approvals.Preview{}, &approvals.Unavailable{Why: WhyZoneMode}
	}
	email = strings.TrimSpace(email)
	if email == "" {
		return approvals.Preview{}, errors.New("cloudflare: preview: the email is empty")
	}
	u, err := c.findUser(ctx, email)
	if err != nil {
		return approvals.Preview{}, err
	}
	if u == nil {
		return approvals.Preview{Known: false, At: time.Now().UTC()}, nil
	}
	sessions, err := c.ActiveSessions(ctx, u.ID)
	if err != nil {
		return approvals.Preview{}, err
	}
	return approvals.Preview{
		Known:     true,
		Email:     strings.TrimSpace(u.Email),
		UserID:    u.ID,
		LastLogin: parseTime(u.LastSuccessfulLogin),
		Sessions:  sessions,
		Devices:   max(0, int(u.ActiveDeviceCount)),
		At:        time.Now().UTC(),
	}, nil
}

// findUser returns the Access user whose email is email (without regard
// to case), or nil. Its ID is set (from "uid" if "id" is empty).
func (c *Client) findUser(ctx context.Context, email string) (*accessUser, error) {
	what := "look up Access user " + email
	for page := 1; page <= maxUserPages; page++ {
		r := request{
			method: http.MethodGet,
			path:   c.scopePath() + "/access/users",
			query: url.Values{
				"email":    {email},
				"page":     {strconv.Itoa(page)},
				"per_page": {strconv.Itoa(usersPerPage)},
			},
		}
		resp, n, err := c.do(ctx, r)
		if err != nil {
			return nil, unavailableIfDenied(afterAttempts(what, n, err), WhyNoUsers)
		}
		var users []accessUser
		if err := json.Unmarshal(resp.Result, &users); err != nil {
			return nil, fmt.Errorf("%s: %w", what, unexpected(r, resp, "a list of users"))
		}
		for i := range users {
			u := &users[i]
			if !strings.EqualFold(strings.TrimSpace(u.Email), email) {
				continue
			}
			if u.ID == "" {
				u.ID = u.UID
			}
			if u.ID = strings.TrimSpace(u.ID); u.ID == "" {
				return nil, fmt.Errorf("%s: %w", what, unexpected(r, resp, "a user with an id"))
			}
			return u, nil
		}
		if len(users) < usersPerPage {
			return nil, nil
		}
	}
	return nil, nil
}

// ActiveSessions counts the active sessions of the Access user userID (a
// Preview's UserID): GET /accounts/{account_id}/access/users/{user_id}/active_sessions.
// Errors are as Preview's.
func (c *Client) ActiveSessions(ctx context.Context, userID string) (int, error) {
	if c.zoneID != "" {
		return 0, &approvals.Unavailable{Why: WhyZoneMode}
	}
	userID = strings.TrimSpace(userID)
	if userID == "" {
		return 0, errors.New("cloudflare: active sessions: the user ID is empty")
	}
	what := "get active sessions of Access user " + userID
	r := request{
		method: http.MethodGet,
		path:   c.scopePath() + "/access/users/" + url.PathEscape(userID) + "/active_sessions",
	}
	resp, n, err := c.do(ctx, r)
	if err != nil {
		return 0, unavailableIfDenied(afterAttempts(what, n, err), WhyNoUsers)
	}
	var sessions []json.RawMessage
	if err := json.Unmarshal(resp.Result, &sessions); err != nil {
		return 0, fmt.Errorf("%s: %w", what, unexpected(r, resp, "a list of sessions"))
	}
	return len(sessions), nil
}

// Logins returns email's successful logins at or after since, oldest first,
// from "Get Access authentication logs": GET
// /accounts/{account_id}/access/logs/access_requests with email, email_exact=true,
// direction=asc, limit=1000 and since (RFC 3339, seconds; left out when
// since is zero). An entry counts when its user_email is email (without
// regard to case), its action is "login", allowed is true and created_at is
// at or after since; App is its app_domain, or else its app_uid, and IP its
// ip_address.
//
// Cloudflare's schema has both limit and page/per_page (default 25) without
// saying how they combine, and the answer has no result_info. So an answer
// of 25 entries or more is taken as possibly cut short: the log is asked
// again from the last entry's created_at (since is inclusive; entries seen
// already are skipped), until an answer is shorter or brings nothing new,
// for at most 20 calls. Errors are as Preview's, with WhyNoLogs.
func (c *Client) Logins(ctx context.Context, email string, since time.Time) ([]approvals.Login, error) {
	if c.zoneID != "" {
		return nil, &approvals.Unavailable{Why: WhyZoneMode}
	}
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, errors.New("cloudflare: logins: the email is empty")
	}
	what := "read Access logins of " + email
	seen := make(map[accessRequest]bool)
	var logins []approvals.Login
	cursor := since.UTC().Truncate(time.Second)
	complete := false
	for range maxLogPages {
		q := url.Values{
			"email":       {email},
			"email_exact": {"true"},
			"direction":   {"asc"},
			"limit":       {strconv.Itoa(logLimit)},
		}
		if !cursor.IsZero() {
			q.Set("since", cursor.Format(time.RFC3339))
		}
		r := request{method: http.MethodGet, path: c.scopePath() + "/access/logs/access_requests", query: q}
		resp, n, err := c.do(ctx, r)
		if err != nil {
			return nil, unavailableIfDenied(afterAttempts(what, n, err), WhyNoLogs)
		}
		var entries []accessRequest
		if err := json.Unmarshal(resp.Result, &entries); err != nil {
			return nil, fmt.Errorf("%s: %w", what, unexpected(r, resp, "a list of log entries"))
		}
		fresh := 0
		last := cursor
		for _, e := range entries {
			if seen[e] {
				continue
			}
			seen[e] = true
			fresh++
			at := parseTime(e.CreatedAt)
			if at.After(last) {
				last = at
			}
			if !strings.EqualFold(strings.TrimSpace(e.UserEmail), email) || !e.Allowed ||
				!strings.EqualFold(strings.TrimSpace(e.Action), "login") || at.IsZero() || at.Before(since) {
				continue
			}
			app := e.AppDomain
			if strings.TrimSpace(app) == "" {
				app = e.AppUID
			}
			logins = append(logins, approvals.Login{
				At:  at.UTC(),
				App: sanitize(app, maxExcerpt),
				IP:  sanitize(e.IPAddress, maxExcerpt),
			})
		}
		next := last.Truncate(time.Second)
		if len(entries) < logShortPage || fresh == 0 || !next.After(cursor) {
			complete = true
			break
		}
		cursor = next
	}
	if !complete {
		// Returning part of the log would let the caller read on from past
		// what it did not see.
		return nil, fmt.Errorf("%s: more than %d pages of log since %s; read again later", what, maxLogPages, since.UTC().Format(time.RFC3339))
	}
	slices.SortStableFunc(logins, func(a, b approvals.Login) int { return a.At.Compare(b.At) })
	return logins, nil
}

// unavailableIfDenied wraps err, the error of a lookup, with an
// *approvals.Unavailable saying why when Cloudflare answered 403: the
// token lacks the permission (Cloudflare's code 10000 "Authentication
// error", or 9109 "Unauthorized to access requested resource").
func unavailableIfDenied(err error, why string) error {
	if apiErr, ok := errors.AsType[*APIError](err); ok && apiErr.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%w: %w", &approvals.Unavailable{Why: why}, err)
	}
	return err
}

// unexpected is the *APIError of a successful answer whose result is not
// what r expects (want).
func unexpected(r request, resp *Response, want string) *APIError {
	return &APIError{
		StatusCode: resp.StatusCode,
		Method:     r.method,
		Path:       r.path,
		Messages:   resp.Messages,
		Detail:     "unexpected result " + resultText(resp.Result) + ", want " + want,
	}
}
