package cloudflare_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/revokebot/revokebot/cloudflare"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

type countingTransport struct {
	next  http.RoundTripper
	calls *atomic.Int32
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	return c.next.RoundTrip(r)
}

func TestWrapTransportSeesEveryCall(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	var calls atomic.Int32
	client, err := cloudflare.New(cloudflare.Options{
		BaseURL: srv.URL(), APIToken: srv.APIToken(), AccountID: srv.AccountID(),
		WrapTransport: func(next http.RoundTripper) http.RoundTripper {
			if next == nil {
				t.Error("WrapTransport got no transport to wrap")
			}
			return countingTransport{next: next, calls: &calls}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Script(cftest.Fail(http.StatusInternalServerError, 10001, "Internal server error"))
	if _, err := client.RevokeUser(context.Background(), cloudflare.RevokeUserParams{Email: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.VerifyToken(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A retried revocation (two attempts) and a verify.
	if n := calls.Load(); n != 3 {
		t.Fatalf("the wrapper saw %d calls, want 3", n)
	}
}

func TestWrapTransportWithHTTPClientRefused(t *testing.T) {
	t.Parallel()
	_, err := cloudflare.New(cloudflare.Options{APIToken: "t", AccountID: "a", HTTPClient: &http.Client{},
		WrapTransport: func(next http.RoundTripper) http.RoundTripper { return next }})
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("err = %v", err)
	}
}
