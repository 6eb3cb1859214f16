package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// TokenStatus is the answer of a token verification.
type TokenStatus struct {
	// ID is the token's identifier (not the secret).
	ID string `json:"id"`
	// Status is "active", "disabled" or "expired".
	Status string `json:"status"`
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
	var ts TokenStatus
	if err := json.Unmarshal(resp.Result, &ts); err != nil || ts.Status == "" {
		return nil, fmt.Errorf("verify token: %w", &APIError{
			StatusCode: resp.StatusCode,
			Method:     http.MethodGet,
			Path:       path,
			Detail:     "unexpected result " + resultText(resp.Result),
		})
	}
	// Both are shown to people: keep them printable and short (the result
	// is already free of secrets).
	ts.ID, ts.Status = sanitize(ts.ID, maxExcerpt), sanitize(ts.Status, maxExcerpt)
	return &ts, nil
}
