package cloudflare

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Organization is the Zero Trust (Access) organization of an account or
// zone: the one whose sessions RevokeUser revokes.
type Organization struct {
	// Name is the organization's display name.
	Name string `json:"name"`
	// AuthDomain is its team domain, e.g. "example.cloudflareaccess.com".
	AuthDomain string `json:"auth_domain"`
}

// AccessOrganization reads the Zero Trust organization that revocations go to:
// GET /accounts/{account_id}/access/organizations (or /zones/{zone_id}/…),
// Cloudflare's "Get your Zero Trust organization". It changes nothing, so it
// shows whether the credentials reach the account's or zone's Access API
// before a revocation depends on it. Cloudflare accepts any of the "Access:
// Organizations, Identity Providers, and Groups" Read, Write or Revoke
// permissions for it. Failures are *APIError values (a 403 usually means the
// token lacks the permission for this account or zone; a 404, a wrong ID),
// retried like every call.
func (c *Client) AccessOrganization(ctx context.Context) (*Organization, error) {
	r := request{method: http.MethodGet, path: c.scopePath() + "/access/organizations"}
	resp, n, err := c.do(ctx, r)
	if err != nil {
		return nil, afterAttempts("get access organization", n, err)
	}
	var org *Organization
	if err := json.Unmarshal(resp.Result, &org); err != nil || org == nil {
		return nil, fmt.Errorf("get access organization: %w", &APIError{
			StatusCode: resp.StatusCode,
			Method:     r.method,
			Path:       r.path,
			Messages:   resp.Messages,
			Detail:     "unexpected result " + resultText(resp.Result) + ", want the organization",
		})
	}
	// Both are shown to people: keep them printable and short.
	org.Name = sanitize(c.redact(org.Name), maxExcerpt)
	org.AuthDomain = sanitize(c.redact(org.AuthDomain), maxExcerpt)
	return org, nil
}
