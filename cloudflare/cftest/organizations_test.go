package cftest_test

import (
	"net/http"
	"testing"

	"github.com/revokebot/revokebot/cloudflare/cftest"
)

func TestOrganization(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	url := s.URL() + "/accounts/" + s.AccountID() + "/access/organizations"
	s.ScriptOrganization(cftest.Fail(http.StatusForbidden, 10000, "Authentication error"))

	for i, want := range []int{http.StatusForbidden, http.StatusOK} {
		a := send(t, http.MethodGet, url, bearer(s.APIToken()), "")
		if a.Status != want {
			t.Fatalf("request %d: status %d, want %d: %s", i, a.Status, want, a.Body)
		}
	}
	a := send(t, http.MethodGet, url, bearer(s.APIToken()), "")
	if !a.Env.Success || string(a.Env.Result) == "null" {
		t.Errorf("success body %s", a.Body)
	}
	for name, tc := range map[string]struct {
		method, url, token string
		status             int
	}{
		"wrong token":   {http.MethodGet, url, "nope", http.StatusForbidden},
		"wrong account": {http.MethodGet, s.URL() + "/accounts/other/access/organizations", s.APIToken(), http.StatusNotFound},
		"zone route":    {http.MethodGet, s.URL() + "/zones/" + s.AccountID() + "/access/organizations", s.APIToken(), http.StatusNotFound},
		"wrong method":  {http.MethodDelete, url, s.APIToken(), http.StatusMethodNotAllowed},
	} {
		if a := send(t, tc.method, tc.url, bearer(tc.token), ""); a.Status != tc.status {
			t.Errorf("%s: status %d, want %d", name, a.Status, tc.status)
		}
	}
	if n := len(s.Calls()); n != 0 {
		t.Errorf("organization requests recorded as %d revoke_user calls", n)
	}
}
