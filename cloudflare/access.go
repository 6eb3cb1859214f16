package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/revokebot/revokebot/approvals"
)

// RevokeUserParams are the options of "Revoke all Access tokens for a user".
type RevokeUserParams struct {
	// Email is the user whose Access tokens are revoked. Required.
	Email string
	// Devices also revokes every device associated with the user. It is sent
	// both as the "devices" query parameter and as the body field, as
	// Cloudflare documents both.
	Devices bool
	// UserUID optionally names the Access user by UUID; omitted when empty.
	UserUID string
	// WARPSessionReauth makes the user re-authenticate to WARP for Gateway
	// policies that enforce a WARP session duration.
	WARPSessionReauth bool
}

// revokeUserBody is the JSON body of revoke_user.
type revokeUserBody struct {
	Email             string `json:"email"`
	Devices           bool   `json:"devices"`
	UserUID           string `json:"user_uid,omitempty"`
	WARPSessionReauth bool   `json:"warp_session_reauth"`
}

// RevokeUser revokes every Access token issued to p.Email:
// POST /accounts/{account_id}/access/organizations/revoke_user (or the
// /zones/{zone_id}/… route). Cloudflare answers "result": true on success;
// any other result is reported as an *APIError, returned together with the
// Response. On other failures the Response is nil. Failures are retried as the
// client's RetryPolicy allows, and the error says how many attempts were made.
// Every attempt is paced by Options.RateLimit and Options.MaxInFlight; if ctx
// ends (or would end) before an attempt may be sent, the error wraps
// ErrQueuedTooLong.
func (c *Client) RevokeUser(ctx context.Context, p RevokeUserParams) (*Response, error) {
	email := strings.TrimSpace(p.Email)
	if email == "" {
		return nil, errors.New("cloudflare: revoke user: RevokeUserParams.Email is required")
	}
	body, err := json.Marshal(revokeUserBody{
		Email:             email,
		Devices:           p.Devices,
		UserUID:           strings.TrimSpace(p.UserUID),
		WARPSessionReauth: p.WARPSessionReauth,
	})
	if err != nil {
		return nil, fmt.Errorf("cloudflare: revoke user %s: encoding body: %w", email, err)
	}
	r := request{
		method: http.MethodPost,
		path:   c.scopePath() + "/access/organizations/revoke_user",
		query:  url.Values{"devices": {strconv.FormatBool(p.Devices)}},
		body:   body,
	}
	resp, n, err := c.do(ctx, r)
	if err != nil {
		return nil, afterAttempts("revoke "+email, n, err)
	}
	var revoked bool
	if err := json.Unmarshal(resp.Result, &revoked); err != nil || !revoked {
		return resp, fmt.Errorf("revoke %s: after %s: %w", email, attemptsText(n), &APIError{
			StatusCode: resp.StatusCode,
			Method:     r.method,
			Path:       r.path,
			Messages:   resp.Messages,
			Detail:     "unexpected result " + resultText(resp.Result) + ", want true",
		})
	}
	return resp, nil
}

func resultText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "(missing)"
	}
	return sanitize(string(raw), 40)
}

// Revoke carries out r with RevokeUser, so *Client satisfies
// approvals.Revoker. The summary reads like
// "Cloudflare revoked the sessions (success=true, result=true)", followed by
// any messages Cloudflare returned.
func (c *Client) Revoke(ctx context.Context, r approvals.Revocation) (string, error) {
	resp, err := c.RevokeUser(ctx, RevokeUserParams{
		Email:             r.Email,
		Devices:           r.Devices,
		UserUID:           r.UserUID,
		WARPSessionReauth: r.WARPReauth,
	})
	if err != nil {
		return "", err
	}
	summary := fmt.Sprintf("Cloudflare revoked the sessions (success=%t, result=%s)", resp.Success, resultText(resp.Result))
	if msgs := joinInfos(resp.Messages); msgs != "" {
		summary += ": " + msgs
	}
	return summary, nil
}

var _ approvals.Revoker = (*Client)(nil)
