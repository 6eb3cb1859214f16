package cloudflare_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revokebot/revokebot/cloudflare"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

func TestVerifyToken(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	client := newFakeClient(t, srv)

	for name, verify := range map[string]func() (*cloudflare.TokenStatus, error){
		"user":    func() (*cloudflare.TokenStatus, error) { return client.VerifyToken(ctxT(t)) },
		"account": func() (*cloudflare.TokenStatus, error) { return client.VerifyAccountToken(ctxT(t)) },
	} {
		ts, err := verify()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, want := *ts, (cloudflare.TokenStatus{ID: cftest.TokenID, Status: "active"}); got != want {
			t.Errorf("%s: status = %+v, want %+v", name, got, want)
		}
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("verify calls were recorded as revoke_user calls: %d", n)
	}
}

func TestVerifyToken_request(t *testing.T) {
	t.Parallel()
	client, mux := setup(t, func(o *cloudflare.Options) { o.AccountID = "acc/1" })
	var paths []string
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		testHeader(t, r, "Authorization", "Bearer "+testToken)
		testHeader(t, r, "Content-Type", "")
		paths = append(paths, r.URL.EscapedPath())
		writeBody(w, http.StatusOK, `{"result":{"id":"t1","status":"disabled"},"success":true,"errors":[],"messages":[]}`)
	})
	ts, err := client.VerifyToken(ctxT(t))
	if err != nil || ts.Status != "disabled" || ts.ID != "t1" {
		t.Fatalf("VerifyToken = %+v, %v", ts, err)
	}
	if _, err := client.VerifyAccountToken(ctxT(t)); err != nil {
		t.Fatalf("VerifyAccountToken: %v", err)
	}
	if want := []string{"/client/v4/user/tokens/verify", "/client/v4/accounts/acc%2F1/tokens/verify"}; !slices.Equal(paths, want) {
		t.Errorf("paths = %q, want %q", paths, want)
	}
}

func TestVerifyToken_invalid(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	client := newFakeClient(t, srv, func(o *cloudflare.Options) { o.APIToken = testToken })
	_, err := client.VerifyToken(ctxT(t))
	var apiErr *cloudflare.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || !slices.Equal(apiErr.Codes(), []int{1000}) {
		t.Fatalf("err = %v, want 401 [1000]", err)
	}
	if !strings.Contains(err.Error(), "verify token: after 1 attempt: cloudflare: GET /user/tokens/verify: 401 Unauthorized: [1000] Invalid API Token") {
		t.Errorf("err = %q", err)
	}
	assertNoSecrets(t, err.Error())
}

func TestVerifyToken_globalKey(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	client, mux := setup(t, func(o *cloudflare.Options) { o.APIToken, o.Email, o.APIKey = "", testEmail, testKey })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	if _, err := client.VerifyToken(ctxT(t)); !errors.Is(err, cloudflare.ErrNoAPIToken) {
		t.Errorf("VerifyToken err = %v, want ErrNoAPIToken", err)
	}
	if _, err := client.VerifyAccountToken(ctxT(t)); !errors.Is(err, cloudflare.ErrNoAPIToken) {
		t.Errorf("VerifyAccountToken err = %v, want ErrNoAPIToken", err)
	}
	if calls.Load() != 0 {
		t.Errorf("requests sent: %d, want 0", calls.Load())
	}
}

func TestVerifyAccountToken_needsAccount(t *testing.T) {
	t.Parallel()
	client, _ := setup(t, func(o *cloudflare.Options) { o.AccountID, o.ZoneID = "", "z" })
	if _, err := client.VerifyAccountToken(ctxT(t)); err == nil || !strings.Contains(err.Error(), "Options.AccountID") {
		t.Errorf("err = %v, want it to name Options.AccountID", err)
	}
}

func TestVerifyToken_dates(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	notBefore := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	srv.ScriptVerify(
		cftest.VerifyResult("active", expires, notBefore),
		cftest.Response{Body: `{"result":{"id":"t","status":"active","expires_on":"next week","not_before":null},"success":true,"errors":[],"messages":[]}`},
	)
	client := newFakeClient(t, srv)
	ts, err := client.VerifyToken(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !ts.ExpiresOn.Equal(expires) || !ts.NotBefore.Equal(notBefore) {
		t.Errorf("dates = %v, %v; want %v, %v", ts.ExpiresOn, ts.NotBefore, expires, notBefore)
	}
	// An unreadable or missing date is zero, not a failure.
	ts, err = client.VerifyToken(ctxT(t))
	if err != nil || !ts.ExpiresOn.IsZero() || !ts.NotBefore.IsZero() || ts.Status != "active" {
		t.Errorf("VerifyToken = %+v, %v; want active with zero dates", ts, err)
	}
}
