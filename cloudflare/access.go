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
// Only the account route takes more than the email: a Client for a zone
// (Options.ZoneID) refuses Devices, UserUID and WARPSessionReauth.
type RevokeUserParams struct {
	// Email is the user whose Access tokens are revoked. Required.
	Email string
	// Devices also revokes the user's devices: Cloudflare's schema says "all
	// devices associated with the user will be revoked". It is sent both as
	// the "devices" query parameter and as the body field, as Cloudflare's
	// SDK does. Account route only.
	Devices bool
	// UserUID optionally names the Access user by ID; omitted when empty.
	// Account route only.
	UserUID string
	// WARPSessionReauth makes the user re-authenticate to WARP for Gateway
	// policies that enforce a WARP session duration. Account route only.
	WARPSessionReauth bool
}

// revokeUserBody is the JSON body of revoke_user on the account route.
type revokeUserBody struct {
	Email             string `json:"email"`
	Devices           bool   `json:"devices"`
	UserUID           string `json:"user_uid,omitempty"`
	WARPSessionReauth bool   `json:"warp_session_reauth"`
}

// zoneRevokeUserBody is the JSON body of revoke_user on the zone route, whose
// schema lists only the email.
type zoneRevokeUserBody struct {
	Email string `json:"email"`
}

// ErrZoneEmailOnly is matched (errors.Is) by the error of a revocation that a
// Client for a zone refuses because it asks for more than the email: the zone
// route of Cloudflare's revoke_user API (POST
// /zones/{zone_id}/access/organizations/revoke_user) takes only "email" in
// its body and no "devices" query parameter.
var ErrZoneEmailOnly = errors.New("the zone route of Cloudflare's revoke_user API accepts only the email")

// zoneRefusal is the error of CheckRevocation in zone mode. Its text is meant
// for the person who asked for the revocation.
type zoneRefusal struct {
	flags    []string // the refused options, as the requester typed them
	purposes []string // what each is for
}

func (e *zoneRefusal) Error() string {
	return fmt.Sprintf("%s cannot be used: revokebot is set up for a Cloudflare zone (CLOUDFLARE_ZONE_ID), and %s; set CLOUDFLARE_ACCOUNT_ID instead to %s",
		joinAnd(e.flags), ErrZoneEmailOnly, joinOr(e.purposes))
}

// Is makes errors.Is(err, ErrZoneEmailOnly) true.
func (e *zoneRefusal) Is(target error) bool { return target == ErrZoneEmailOnly }

// joinAnd is "a", "a and b" or "a, b and c".
func joinAnd(items []string) string { return joinLast(items, " and ") }

// joinOr is "a", "a or b" or "a, b or c".
func joinOr(items []string) string { return joinLast(items, " or ") }

func joinLast(items []string, last string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + last + items[len(items)-1]
}

// CheckRevocation reports whether c can carry out r, before anyone approves
// it. It returns nil for a Client for an account, and for a Client for a zone
// when r asks for nothing but the email. Otherwise (a zone and Devices,
// WARPReauth or UserUID) it returns an error wrapping ErrZoneEmailOnly whose
// text, fit to show the requester, names every option refused by its
// /revoke flag (--devices, --warp-reauth, --uid), e.g. "--devices cannot be
// used: revokebot is set up for a Cloudflare zone (CLOUDFLARE_ZONE_ID), and
// the zone route of Cloudflare's revoke_user API accepts only the email; set
// CLOUDFLARE_ACCOUNT_ID instead to revoke device sessions".
//
// Its signature is that of approvals.RevocationChecker.
func (c *Client) CheckRevocation(r approvals.Revocation) error {
	if c.zoneID == "" {
		return nil
	}
	e := &zoneRefusal{}
	if r.Devices {
		e.flags = append(e.flags, "--devices")
		e.purposes = append(e.purposes, "revoke device sessions")
	}
	if r.WARPReauth {
		e.flags = append(e.flags, "--warp-reauth")
		e.purposes = append(e.purposes, "force WARP re-authentication")
	}
	if strings.TrimSpace(r.UserUID) != "" {
		e.flags = append(e.flags, "--uid")
		e.purposes = append(e.purposes, "name an Access user ID")
	}
	if len(e.flags) == 0 {
		return nil
	}
	return e
}

// RevokeUser revokes every Access token issued to p.Email:
// POST /accounts/{account_id}/access/organizations/revoke_user with the body
// {"email", "devices", "warp_session_reauth", "user_uid" when set} and the
// query devices=true|false, or, for a zone, POST
// /zones/{zone_id}/access/organizations/revoke_user with {"email"} alone and
// no query, as Cloudflare's schema has it; a Client for a zone refuses the
// other params with an error wrapping ErrZoneEmailOnly, sending nothing.
//
// Cloudflare answers "result": true on success; any other result is reported
// as an *APIError, returned together with the Response. On other failures the
// Response is nil. Failures are retried as the client's RetryPolicy allows,
// and the error says how many attempts were made. Every attempt is paced by
// Options.RateLimit and Options.MaxInFlight; if ctx ends (or would end)
// before an attempt may be sent, the error wraps ErrQueuedTooLong.
func (c *Client) RevokeUser(ctx context.Context, p RevokeUserParams) (*Response, error) {
	email := strings.TrimSpace(p.Email)
	if email == "" {
		return nil, errors.New("cloudflare: revoke user: RevokeUserParams.Email is required")
	}
	r := request{
		method: http.MethodPost,
		path:   c.scopePath() + "/access/organizations/revoke_user",
	}
	var body any
	if c.zoneID != "" {
		var refused []string
		if p.Devices {
			refused = append(refused, "RevokeUserParams.Devices")
		}
		if p.WARPSessionReauth {
			refused = append(refused, "RevokeUserParams.WARPSessionReauth")
		}
		if strings.TrimSpace(p.UserUID) != "" {
			refused = append(refused, "RevokeUserParams.UserUID")
		}
		if len(refused) > 0 {
			return nil, fmt.Errorf("cloudflare: revoke user %s: %s cannot be used with a zone (Options.ZoneID): %w",
				email, joinAnd(refused), ErrZoneEmailOnly)
		}
		body = zoneRevokeUserBody{Email: email}
	} else {
		body = revokeUserBody{
			Email:             email,
			Devices:           p.Devices,
			UserUID:           strings.TrimSpace(p.UserUID),
			WARPSessionReauth: p.WARPSessionReauth,
		}
		r.query = url.Values{"devices": {strconv.FormatBool(p.Devices)}}
	}
	var err error
	if r.body, err = json.Marshal(body); err != nil {
		return nil, fmt.Errorf("cloudflare: revoke user %s: encoding body: %w", email, err)
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
// approvals.Revoker. It first refuses, sending nothing, what CheckRevocation
// refuses. The summary reads like
// "Cloudflare revoked the sessions (success=true, result=true)", followed by
// any messages Cloudflare returned.
func (c *Client) Revoke(ctx context.Context, r approvals.Revocation) (string, error) {
	if err := c.CheckRevocation(r); err != nil {
		return "", fmt.Errorf("revoke %s: %w", strings.TrimSpace(r.Email), err)
	}
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

var (
	_ approvals.Revoker           = (*Client)(nil)
	_ approvals.RevocationChecker = (*Client)(nil)
)
