package cloudflare_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/revokebot/revokebot/cloudflare"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

func TestAccessOrganization(t *testing.T) {
	t.Parallel()
	for name, srv := range map[string]*cftest.Server{
		"account": cftest.NewServer(t),
		"zone":    cftest.NewServer(t, cftest.WithZoneID("zone-test")),
	} {
		org, err := newFakeClient(t, srv).AccessOrganization(ctxT(t))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if org.Name != cftest.OrganizationName || org.AuthDomain != cftest.OrganizationAuthDomain {
			t.Errorf("%s: organization = %+v", name, org)
		}
	}
}

func TestAccessOrganizationFailures(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		script  []cftest.Response
		modify  func(*cloudflare.Options)
		status  int
		message string
	}{
		"no permission":  {script: []cftest.Response{cftest.Fail(403, 10000, "Authentication error")}, status: 403, message: "[10000] Authentication error"},
		"wrong account":  {modify: func(o *cloudflare.Options) { o.AccountID = "other" }, status: 404, message: "[7003]"},
		"wrong token":    {modify: func(o *cloudflare.Options) { o.APIToken = "tok-SECRET-wrong" }, status: 403, message: "Authentication error"},
		"null result":    {script: []cftest.Response{{Body: `{"result":null,"success":true,"errors":[],"messages":[]}`}}, status: 200, message: "unexpected result null"},
		"server failure": {script: []cftest.Response{cftest.Fail(500, 10001, "x"), cftest.Fail(500, 10001, "x"), cftest.Fail(500, 10001, "x")}, status: 500, message: "after 3 attempts"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := cftest.NewServer(t)
			srv.ScriptOrganization(tc.script...)
			var modify []func(*cloudflare.Options)
			if tc.modify != nil {
				modify = append(modify, tc.modify)
			}
			_, err := newFakeClient(t, srv, modify...).AccessOrganization(ctxT(t))
			var apiErr *cloudflare.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v is not an *APIError", err)
			}
			if apiErr.StatusCode != tc.status || apiErr.Method != http.MethodGet || !strings.HasSuffix(apiErr.Path, "/access/organizations") {
				t.Errorf("APIError = %d %s %s, want %d GET …/access/organizations", apiErr.StatusCode, apiErr.Method, apiErr.Path, tc.status)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not contain %q", err, tc.message)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q contains a secret", err)
			}
		})
	}
}
