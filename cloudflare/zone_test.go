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

func TestRevoke_zoneSendsOnlyTheEmail(t *testing.T) {
	t.Parallel()
	for _, auth := range []cftest.Option{cftest.WithAPIToken(testToken), cftest.WithGlobalKey(testEmail, testKey)} {
		srv := cftest.NewServer(t, cftest.WithZoneID("zone-test"), auth)
		client := newFakeClient(t, srv, func(o *cloudflare.Options) {
			if srv.APIToken() == "" {
				o.Email, o.APIKey = testEmail, testKey
			}
		})
		if _, err := client.Revoke(ctxT(t), approvals.Revocation{Email: " a@b.c "}); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		calls := srv.Calls()
		if len(calls) != 1 {
			t.Fatalf("calls = %d, want 1", len(calls))
		}
		c := calls[0]
		if c.Path != "/client/v4/zones/zone-test/access/organizations/revoke_user" || c.Method != http.MethodPost || !c.AuthOK {
			t.Errorf("call = %s %s (auth ok %t), want POST to the zone route", c.Method, c.Path, c.AuthOK)
		}
		if len(c.Query) != 0 {
			t.Errorf("query = %v, want none", c.Query)
		}
		if got, want := string(c.RawBody), `{"email":"a@b.c"}`; got != want {
			t.Errorf("body = %s, want %s", got, want)
		}
	}
}

func TestCheckRevocation(t *testing.T) {
	t.Parallel()
	account := newFakeClient(t, cftest.NewServer(t))
	zone := newFakeClient(t, cftest.NewServer(t, cftest.WithZoneID("zone-test")))
	const why = " cannot be used: revokebot is set up for a Cloudflare zone (CLOUDFLARE_ZONE_ID), and the zone route of Cloudflare's revoke_user API accepts only the email; set CLOUDFLARE_ACCOUNT_ID instead to "
	for _, tc := range []struct {
		name string
		r    approvals.Revocation
		want string // for the zone; "" for no error
	}{
		{"email only", approvals.Revocation{Email: "a@b.c"}, ""},
		{"blank uid", approvals.Revocation{Email: "a@b.c", UserUID: "  "}, ""},
		{"devices", approvals.Revocation{Email: "a@b.c", Devices: true}, "--devices" + why + "revoke device sessions"},
		{"warp", approvals.Revocation{Email: "a@b.c", WARPReauth: true}, "--warp-reauth" + why + "force WARP re-authentication"},
		{"uid", approvals.Revocation{Email: "a@b.c", UserUID: "6c1b5c46-0000-4000-8000-000000000001"}, "--uid" + why + "name an Access user ID"},
		{"devices and uid", approvals.Revocation{Email: "a@b.c", Devices: true, UserUID: "u"}, "--devices and --uid" + why + "revoke device sessions or name an Access user ID"},
		{"all", approvals.Revocation{Email: "a@b.c", Devices: true, WARPReauth: true, UserUID: "u"},
			"--devices, --warp-reauth and --uid" + why + "revoke device sessions, force WARP re-authentication or name an Access user ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := account.CheckRevocation(tc.r); err != nil {
				t.Errorf("account: %v, want nil", err)
			}
			err := zone.CheckRevocation(tc.r)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("zone: %v, want nil", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("zone: %v\nwant %s", err, tc.want)
			case tc.want != "" && !errors.Is(err, cloudflare.ErrZoneEmailOnly):
				t.Errorf("zone: %v does not match ErrZoneEmailOnly", err)
			}
		})
	}
}

// TestZoneRefusesMoreThanTheEmail checks that Revoke and RevokeUser refuse, in
// zone mode, what the zone route does not take, and send nothing.
func TestZoneRefusesMoreThanTheEmail(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t, cftest.WithZoneID("zone-test"))
	client := newFakeClient(t, srv)

	summary, err := client.Revoke(ctxT(t), approvals.Revocation{Email: "a@b.c", Devices: true, WARPReauth: true})
	if summary != "" || !errors.Is(err, cloudflare.ErrZoneEmailOnly) ||
		!strings.HasPrefix(err.Error(), "revoke a@b.c: --devices and --warp-reauth cannot be used") {
		t.Errorf("Revoke = %q, %v; want the zone refusal", summary, err)
	}
	for _, p := range []cloudflare.RevokeUserParams{
		{Email: "a@b.c", Devices: true},
		{Email: "a@b.c", WARPSessionReauth: true},
		{Email: "a@b.c", UserUID: "u"},
	} {
		_, err := client.RevokeUser(ctxT(t), p)
		if !errors.Is(err, cloudflare.ErrZoneEmailOnly) || !strings.Contains(err.Error(), "cannot be used with a zone (Options.ZoneID)") {
			t.Errorf("RevokeUser(%+v) = %v, want the zone refusal", p, err)
		}
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("%d calls sent, want none", n)
	}
}
