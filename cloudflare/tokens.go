package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TokenStatus is the answer of a token verification.
type TokenStatus struct {
	// ID is the token's identifier (not the secret).
	ID string
	// Status is "active", "disabled" or "expired".
	Status string
	// ExpiresOn is when the token stops working (Cloudflare's "expires_on"),
	// or zero if it never expires (or Cloudflare sent no readable date).
	ExpiresOn time.Time
	// NotBefore is when the token starts working ("not_before"), or zero if
	// it has no such limit.
	NotBefore time.Time
}

// tokenResult is the "result" of a token check, as Cloudflare's schema has
// it; the dates are RFC 3339.
type tokenResult struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	ExpiresOn string `json:"expires_on"`
	NotBefore string `json:"not_before"`
}

// parseTime reads an RFC 3339 date, or returns zero.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}
	}
	return t
}

// VerifyToken checks a user API token: GET /user/tokens/verify. It returns
// the token's status (callers should check Status == "active"), an *APIError
// if Cloudflare rejects the token, or ErrNoAPIToken if the client uses a
// global API key.
func (c *Client) VerifyToken(ctx context.Context) (*TokenStatus, error) {
	return c.verify(ctx, "/user/tokens/verify")
}

// VerifyAccountToken checks an account-owned API token:
// GET /accounts/{account_id}/tokens/verify. It needs Options.AccountID and
// otherwise behaves like VerifyToken.
func (c *Client) VerifyAccountToken(ctx context.Context) (*TokenStatus, error) {
	if c.accountID == "" {
		return nil, errors.New("cloudflare: verify account token: Options.AccountID is not set")
	}
	return c.verify(ctx, "/accounts/"+url.PathEscape(c.accountID)+"/tokens/verify")
}

func (c *Client) verify(ctx context.Context, path string) (*TokenStatus, error) {
	if c.creds.token == "" {
		return nil, ErrNoAPIToken
	}
	resp, n, err := c.do(ctx, request{method: http.MethodGet, path: path})
	if err != nil {
		return nil, afterAttempts("verify token", n, err)
	}
	var res tokenResult
	if err := json.Unmarshal(resp.Result, &res); err != nil || res.Status == "" {
		return nil, fmt.Errorf("verify token: %w", &APIError{
			StatusCode: resp.StatusCode,
			Method:     http.MethodGet,
			Path:       path,
			Detail:     "unexpected result " + resultText(resp.Result),
		})
	}
	// ID and Status are shown to people: keep them printable and short (the
	// result is already free of secrets).
	return &TokenStatus{
		ID:        sanitize(res.ID, maxExcerpt),
		Status:    sanitize(res.Status, maxExcerpt),
		ExpiresOn: parseTime(res.ExpiresOn),
		NotBefore: parseTime(res.NotBefore),
	}, nil
}
