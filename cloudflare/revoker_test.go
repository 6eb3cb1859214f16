package cloudflare_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/cloudflare"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

func TestRevoke_mapsFields(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	var revoker approvals.Revoker = newFakeClient(t, srv)

	summary, err := revoker.Revoke(ctxT(t), approvals.Revocation{
		Email: "a@b.c", Devices: true, WARPReauth: true, UserUID: "uid-1",
	})
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if want := "Cloudflare revoked the sessions (success=true, result=true)"; summary != want {
		t.Errorf("summary = %q, want %q", summary, want)
	}
	calls := srv.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls = %d, want 1", len(calls))
	}
	b := calls[0].Body
	if b.Email != "a@b.c" || b.UserUID != "uid-1" || b.Devices == nil || !*b.Devices || b.WARPSessionReauth == nil || !*b.WARPSessionReauth {
		t.Errorf("body = %+v, want all fields mapped", b)
	}
	if got := calls[0].Query.Get("devices"); got != "true" {
		t.Errorf("devices query = %q, want true", got)
	}

	if _, err := revoker.Revoke(ctxT(t), approvals.Revocation{Email: "x@y.z"}); err != nil {
		t.Fatal(err)
	}
	b = srv.Calls()[1].Body
	if b.Devices == nil || *b.Devices || b.WARPSessionReauth == nil || *b.WARPSessionReauth || b.UserUID != "" {
		t.Errorf("body = %+v, want devices/warp false and no user_uid", b)
	}
	if !strings.Contains(string(srv.Calls()[1].RawBody), `"devices":false`) || strings.Contains(string(srv.Calls()[1].RawBody), "user_uid") {
		t.Errorf("raw body = %s", srv.Calls()[1].RawBody)
	}
}

func TestRevoke_summaryIncludesMessages(t *testing.T) {
	t.Parallel()
	client, mux := setup(t)
	mux.HandleFunc(revokePath, func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, http.StatusOK, `{"result":true,"success":true,"errors":[],"messages":[{"code":1001,"message":"user had no sessions"}]}`)
	})
	summary, err := client.Revoke(ctxT(t), approvals.Revocation{Email: "a@b.c"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Cloudflare revoked the sessions (success=true, result=true): [1001] user had no sessions"; summary != want {
		t.Errorf("summary = %q, want %q", summary, want)
	}
}

func TestRevoke_errorCarriesCodes(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	srv.Script(cftest.Fail(http.StatusForbidden, 10000, "Authentication error"))
	summary, err := newFakeClient(t, srv).Revoke(ctxT(t), approvals.Revocation{Email: "a@b.c"})
	if summary != "" || err == nil || !strings.Contains(err.Error(), "[10000] Authentication error") {
		t.Fatalf("Revoke = %q, %v; want an error with the code", summary, err)
	}
	var apiErr *cloudflare.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("errors.As(*APIError) failed on %v", err)
	}
}
