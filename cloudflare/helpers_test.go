package cloudflare_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/revokebot/revokebot/cloudflare"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

const (
	testToken   = "tok-SECRET-0123456789"
	testEmail   = "admin@example.com"
	testKey     = "key-SECRET-9876543210"
	testAccount = "abc"
	revokePath  = "/client/v4/accounts/abc/access/organizations/revoke_user"
)

// fastRetry retries quickly so tests do not sleep for long.
var fastRetry = cloudflare.RetryPolicy{
	MaxAttempts: 3,
	BaseDelay:   time.Millisecond,
	MaxDelay:    5 * time.Millisecond,
	MaxElapsed:  10 * time.Second,
	CallTimeout: 5 * time.Second,
}

// setup returns a client pointed at a fresh httptest server and the server's
// mux, like go-github's tests. The client uses testToken and account "abc";
// modify adjusts its Options.
func setup(t *testing.T, modify ...func(*cloudflare.Options)) (*cloudflare.Client, *http.ServeMux) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	opts := cloudflare.Options{
		BaseURL:   srv.URL + "/client/v4/",
		APIToken:  testToken,
		AccountID: testAccount,
		Retry:     fastRetry,
	}
	for _, m := range modify {
		m(&opts)
	}
	c, err := cloudflare.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, mux
}

// newFakeClient returns a client for a cftest server.
func newFakeClient(t *testing.T, srv *cftest.Server, modify ...func(*cloudflare.Options)) *cloudflare.Client {
	t.Helper()
	opts := cloudflare.Options{
		BaseURL:   srv.URL(),
		APIToken:  srv.APIToken(),
		AccountID: srv.AccountID(),
		Retry:     fastRetry,
	}
	if srv.ZoneID() != "" {
		opts.AccountID, opts.ZoneID = "", srv.ZoneID()
	}
	for _, m := range modify {
		m(&opts)
	}
	c, err := cloudflare.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func testMethod(t *testing.T, r *http.Request, want string) {
	t.Helper()
	if got := r.Method; got != want {
		t.Errorf("request method = %q, want %q", got, want)
	}
}

func testHeader(t *testing.T, r *http.Request, name, want string) {
	t.Helper()
	if got := r.Header.Get(name); got != want {
		t.Errorf("header %s = %q, want %q", name, got, want)
	}
}

func writeBody(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

const okBody = `{"result":true,"success":true,"errors":[],"messages":[]}`

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
