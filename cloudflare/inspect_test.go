package cloudflare_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/cloudflare"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// The 200 examples of Cloudflare's API reference for "Get users" and "Get
// active sessions" (developers.cloudflare.com/api, built from the OpenAPI
// schema), as they are.
const (
	usersExample = `{
  "errors": [],
  "messages": [],
  "success": true,
  "result": [
    {
      "id": "f174e90a-fafe-4643-bbbc-4a0ed4fc8415",
      "access_seat": false,
      "active_device_count": 2,
      "created_at": "2014-01-01T05:20:00.12345Z",
      "email": "jdoe@example.com",
      "gateway_seat": false,
      "last_successful_login": "2020-07-01T05:20:00Z",
      "name": "Jane Doe",
      "seat_uid": "seat_uid",
      "uid": "uid",
      "updated_at": "2014-01-01T05:20:00.12345Z"
    }
  ],
  "result_info": {"count": 1, "page": 1, "per_page": 100, "total_count": 1, "total_pages": 100}
}`
	sessionsExample = `{
  "errors": [],
  "messages": [],
  "success": true,
  "result": [
    {
      "expiration": 1694813506,
      "metadata": {
        "apps": {
          "foo": {"hostname": "test.example.com", "name": "app name", "type": "self_hosted", "uid": "cc2a8145-0128-4429-87f3-872c4d380c4e"}
        },
        "expires": 1694813506,
        "iat": 1694791905,
        "nonce": "X1aXj1lFVcqqyoXF",
        "ttl": 21600
      },
      "name": "name"
    }
  ],
  "result_info": {"count": 1, "page": 1, "per_page": 20, "total_count": 2000, "total_pages": 100}
}`
	// logEntryExample is the item of the 200 example of "Get Access
	// authentication logs".
	logEntryExample = `{
      "action": "login",
      "allowed": true,
      "app_domain": "test.example.com/admin",
      "app_uid": "df7e2w5f-02b7-4d9d-af26-8d1988fca630",
      "connection": "saml",
      "created_at": "2014-01-01T05:20:00.12345Z",
      "ip_address": "198.41.129.166",
      "ray_id": "187d944c61940c77",
      "user_email": "user@example.com"
    }`
)

const (
	usersPath    = "/client/v4/accounts/abc/access/users"
	sessionsPath = "/client/v4/accounts/abc/access/users/f174e90a-fafe-4643-bbbc-4a0ed4fc8415/active_sessions"
	logsPath     = "/client/v4/accounts/abc/access/logs/access_requests"
)

func TestInspector_realShapedAnswers(t *testing.T) {
	t.Parallel()
	client, mux := setup(t)
	mux.HandleFunc(usersPath, func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		testHeader(t, r, "Authorization", "Bearer "+testToken)
		if got, want := r.URL.RawQuery, "email=JDoe%40Example.com&page=1&per_page=100"; got != want {
			t.Errorf("query = %s, want %s", got, want)
		}
		writeBody(w, http.StatusOK, usersExample)
	})
	mux.HandleFunc(sessionsPath, func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		if r.URL.RawQuery != "" {
			t.Errorf("sessions query = %q, want none", r.URL.RawQuery)
		}
		writeBody(w, http.StatusOK, sessionsExample)
	})
	mux.HandleFunc(logsPath, func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		if got, want := r.URL.RawQuery, "direction=asc&email=user%40example.com&email_exact=true&limit=1000&since=2014-01-01T05%3A00%3A00Z"; got != want {
			t.Errorf("query = %s, want %s", got, want)
		}
		writeBody(w, http.StatusOK, `{"errors":[],"messages":[],"success":true,"result":[`+logEntryExample+`]}`)
	})

	before := time.Now().UTC()
	p, err := client.Preview(ctxT(t), " JDoe@Example.com ")
	if err != nil {
		t.Fatalf("Preview: %v", err)
	}
	if p.At.Before(before) || p.At.After(time.Now().UTC()) || p.At.Location() != time.UTC {
		t.Errorf("At = %v, want now in UTC", p.At)
	}
	p.At = time.Time{}
	want := approvals.Preview{
		Known:     true,
		Email:     "jdoe@example.com",
		UserID:    "f174e90a-fafe-4643-bbbc-4a0ed4fc8415",
		LastLogin: time.Date(2020, 7, 1, 5, 20, 0, 0, time.UTC),
		Sessions:  1,
		Devices:   2,
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Preview = %+v, want %+v", p, want)
	}

	logins, err := client.Logins(ctxT(t), "user@example.com", time.Date(2014, 1, 1, 5, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("Logins: %v", err)
	}
	wantLogins := []approvals.Login{{At: time.Date(2014, 1, 1, 5, 20, 0, 123450000, time.UTC), App: "test.example.com/admin", IP: "198.41.129.166"}}
	if !reflect.DeepEqual(logins, wantLogins) {
		t.Errorf("Logins = %+v, want %+v", logins, wantLogins)
	}
}

func TestPreview_requests(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	login := time.Date(2026, 7, 1, 5, 20, 0, 0, time.UTC)
	u := srv.AddUser(cftest.User{Email: "a+b@example.com", Name: "Ann", LastLogin: login, Devices: 3, Sessions: 2})
	client := newFakeClient(t, srv)

	p, err := client.Preview(ctxT(t), "a+b@example.com")
	if err != nil {
		t.Fatalf("Preview: %v", err)
	}
	if !p.Known || p.UserID != u.ID || !p.LastLogin.Equal(login) || p.Sessions != 2 || p.Devices != 3 || p.At.IsZero() {
		t.Errorf("Preview = %+v", p)
	}
	reads := srv.Reads()
	if len(reads) != 2 {
		t.Fatalf("reads = %d, want 2", len(reads))
	}
	users, sessions := reads[0], reads[1]
	if users.Method != http.MethodGet || users.Path != "/client/v4/accounts/"+srv.AccountID()+"/access/users" ||
		!reflect.DeepEqual(users.Query, url.Values{"email": {"a+b@example.com"}, "page": {"1"}, "per_page": {"100"}}) {
		t.Errorf("users request = %s %s %v", users.Method, users.Path, users.Query)
	}
	if sessions.Method != http.MethodGet || sessions.Path != "/client/v4/accounts/"+srv.AccountID()+"/access/users/"+u.ID+"/active_sessions" || len(sessions.Query) != 0 {
		t.Errorf("sessions request = %s %s %v", sessions.Method, sessions.Path, sessions.Query)
	}
	for _, r := range reads {
		if got := r.Header.Get("Authorization"); got != cftest.Redacted || !r.AuthOK {
			t.Errorf("recorded Authorization %q (auth ok %t), want %q", got, r.AuthOK, cftest.Redacted)
		}
		if strings.Contains(fmt.Sprint(r.Header), srv.APIToken()) {
			t.Errorf("recorded headers hold the token: %v", r.Header)
		}
	}
}

func TestPreview_unknownEmail(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	// The fake, like the loosest reading of Cloudflare's schema, lists
	// every user whose email contains the one asked for.
	srv.AddUser(cftest.User{Email: "xa@b.c", Sessions: 1})
	srv.AddUser(cftest.User{Email: "a@b.co", Sessions: 1})
	client := newFakeClient(t, srv)

	p, err := client.Preview(ctxT(t), "a@b.c")
	if err != nil {
		t.Fatalf("Preview: %v", err)
	}
	if p.Known || p.UserID != "" || p.Sessions != 0 || p.At.IsZero() {
		t.Errorf("Preview = %+v, want unknown", p)
	}
	if n := len(srv.Reads(cftest.ReadUsers)); n != 1 {
		t.Errorf("users requests = %d, want 1", n)
	}
	if n := len(srv.Reads(cftest.ReadSessions)); n != 0 {
		t.Errorf("sessions requests = %d, want none for an unknown user", n)
	}
	if _, err := client.Preview(ctxT(t), "  "); err == nil {
		t.Error("Preview of an empty email: no error")
	}
}

func TestPreview_pagesForTheExactEmail(t *testing.T) {
	t.Parallel()
	client, mux := setup(t)
	var pages []string
	mux.HandleFunc(usersPath, func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		pages = append(pages, page)
		var items []string
		if page == "1" {
			for i := range 100 {
				items = append(items, fmt.Sprintf(`{"id":"x%d","email":"x%da@b.c"}`, i, i))
			}
		} else {
			items = append(items, `{"id":"","uid":"u-1","email":"A@B.C","active_device_count":1}`)
		}
		writeBody(w, http.StatusOK, `{"success":true,"errors":[],"messages":[],"result":[`+strings.Join(items, ",")+`]}`)
	})
	mux.HandleFunc("/client/v4/accounts/abc/access/users/u-1/active_sessions", func(w http.ResponseWriter, r *http.Request) {
		writeBody(w, http.StatusOK, `{"success":true,"errors":[],"messages":[],"result":[]}`)
	})
	p, err := client.Preview(ctxT(t), "a@b.c")
	if err != nil {
		t.Fatalf("Preview: %v", err)
	}
	if !p.Known || p.UserID != "u-1" || p.Devices != 1 || p.Sessions != 0 {
		t.Errorf("Preview = %+v", p)
	}
	if want := []string{"1", "2"}; !reflect.DeepEqual(pages, want) {
		t.Errorf("pages = %v, want %v", pages, want)
	}
}

func TestActiveSessions_escapesTheID(t *testing.T) {
	t.Parallel()
	client, mux := setup(t)
	var got atomic.Value
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.EscapedPath())
		writeBody(w, http.StatusOK, `{"success":true,"errors":[],"messages":[],"result":null}`)
	})
	n, err := client.ActiveSessions(ctxT(t), "a/b c?")
	if err != nil || n != 0 {
		t.Fatalf("ActiveSessions = %d, %v; want 0, nil", n, err)
	}
	if want := "/client/v4/accounts/abc/access/users/a%2Fb%20c%3F/active_sessions"; got.Load() != want {
		t.Errorf("path = %v, want %s", got.Load(), want)
	}
	if _, err := client.ActiveSessions(ctxT(t), ""); err == nil {
		t.Error("ActiveSessions of an empty ID: no error")
	}
}

func TestActiveSessions_endAfterRevoke(t *testing.T) {
	t.Parallel()
	const linger = time.Second
	srv := cftest.NewServer(t, cftest.WithSessionsLinger(linger))
	gone := srv.AddUser(cftest.User{Email: "a@b.c", Sessions: 2})
	stay := srv.AddUser(cftest.User{Email: "stay@b.c", Sessions: 1, SessionsStay: true})
	client := newFakeClient(t, srv)
	ctx := ctxT(t)

	p, err := client.Preview(ctx, "a@b.c")
	if err != nil || p.Sessions != 2 {
		t.Fatalf("Preview = %+v, %v; want 2 sessions", p, err)
	}
	start := time.Now()
	for _, email := range []string{"a@b.c", "stay@b.c"} {
		if _, err := client.Revoke(ctx, approvals.Revocation{Email: email}); err != nil {
			t.Fatalf("Revoke %s: %v", email, err)
		}
	}
	if n, err := client.ActiveSessions(ctx, gone.ID); err != nil || (n != 2 && time.Since(start) < linger) {
		t.Errorf("just after the revocation: %d, %v; want the 2 sessions to linger", n, err)
	}
	for {
		n, err := client.ActiveSessions(ctx, gone.ID)
		if err != nil {
			t.Fatalf("ActiveSessions: %v", err)
		}
		if n == 0 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%d sessions still listed 10s after the revocation", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if elapsed := time.Since(start); elapsed < linger {
		t.Errorf("sessions gone after %s, before the linger of %s", elapsed, linger)
	}
	if n, err := client.ActiveSessions(ctx, stay.ID); err != nil || n != 1 {
		t.Errorf("SessionsStay: %d, %v; want 1", n, err)
	}
}

func TestLogins_successfulOnesSince(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	since := time.Date(2026, 8, 1, 12, 0, 0, 500_000_000, time.UTC) // sent as 12:00:00
	at := func(d time.Duration) time.Time { return since.Add(d) }
	srv.AddLogin(
		cftest.Login{Email: "a@b.c", At: at(-time.Hour), AppDomain: "old.example.com", Allowed: true},
		cftest.Login{Email: "a@b.c", At: at(-100 * time.Millisecond), AppDomain: "same-second.example.com", Allowed: true},
		cftest.Login{Email: "a@b.c", At: at(3 * time.Minute), AppDomain: "app.example.com", IP: "198.51.100.7", Allowed: true},
		cftest.Login{Email: "a@b.c", At: at(time.Minute), AppDomain: "denied.example.com", Allowed: false},
		cftest.Login{Email: "a@b.c", At: at(2 * time.Minute), AppDomain: "app.example.com", Allowed: true, Action: "logout"},
		cftest.Login{Email: "a@b.c", At: at(4 * time.Minute), AppUID: "app-uid-1", IP: "2001:db8::1", Allowed: true},
		cftest.Login{Email: "xa@b.c", At: at(time.Minute), AppDomain: "other.example.com", Allowed: true},
		cftest.Login{Email: "a@b.c", At: at(0), AppDomain: "exact.example.com", IP: "198.51.100.8", Allowed: true},
	)
	client := newFakeClient(t, srv)
	logins, err := client.Logins(ctxT(t), "a@b.c", since)
	if err != nil {
		t.Fatalf("Logins: %v", err)
	}
	want := []approvals.Login{
		{At: at(0), App: "exact.example.com", IP: "198.51.100.8"},
		{At: at(3 * time.Minute), App: "app.example.com", IP: "198.51.100.7"},
		{At: at(4 * time.Minute), App: "app-uid-1", IP: "2001:db8::1"},
	}
	if !reflect.DeepEqual(logins, want) {
		t.Errorf("Logins =\n%+v, want\n%+v", logins, want)
	}
	reads := srv.Reads(cftest.ReadLogs)
	if len(reads) != 1 {
		t.Fatalf("log requests = %d, want 1", len(reads))
	}
	r := reads[0]
	wantQuery := url.Values{
		"email": {"a@b.c"}, "email_exact": {"true"}, "direction": {"asc"},
		"limit": {"1000"}, "since": {"2026-08-01T12:00:00Z"},
	}
	if r.Method != http.MethodGet || r.Path != "/client/v4/accounts/"+srv.AccountID()+"/access/logs/access_requests" ||
		!reflect.DeepEqual(r.Query, wantQuery) || r.Header.Get("Authorization") != cftest.Redacted {
		t.Errorf("request = %s %s %v %v", r.Method, r.Path, r.Query, r.Header)
	}

	none, err := client.Logins(ctxT(t), "nobody@b.c", since)
	if err != nil || len(none) != 0 {
		t.Errorf("Logins of nobody = %v, %v; want none", none, err)
	}
}

func TestLogins_filtersWhatTheServerSends(t *testing.T) {
	t.Parallel()
	client, mux := setup(t)
	mux.HandleFunc(logsPath, func(w http.ResponseWriter, r *http.Request) {
		// A server that ignores the filters.
		writeBody(w, http.StatusOK, `{"success":true,"errors":[],"messages":[],"result":[
			{"action":"login","allowed":true,"app_domain":"b.example.com","created_at":"2026-08-01T12:05:00Z","ip_address":"198.51.100.2","user_email":"A@B.C"},
			{"action":"login","allowed":true,"app_domain":"x.example.com","created_at":"2026-08-01T12:06:00Z","user_email":"xa@b.c"},
			{"action":"login","allowed":true,"app_domain":"y.example.com","created_at":"2026-08-01T12:07:00Z"},
			{"action":"login","allowed":true,"app_domain":"z.example.com","created_at":"not a date","user_email":"a@b.c"},
			{"action":"login","allowed":true,"app_domain":"early.example.com","created_at":"2026-08-01T11:00:00Z","user_email":"a@b.c"},
			{"action":"LOGIN","allowed":true,"app_domain":"a.example.com","created_at":"2026-08-01T12:01:00+02:00","ip_address":"198.51.100.1","user_email":"a@b.c"},
			{"action":"login","allowed":true,"app_domain":"REDACTED-if-`+testToken+`","created_at":"2026-08-01T12:08:00Z","user_email":"a@b.c"}
		]}`)
	})
	logins, err := client.Logins(ctxT(t), "a@b.c", time.Date(2026, 8, 1, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("Logins: %v", err)
	}
	want := []approvals.Login{
		{At: time.Date(2026, 8, 1, 10, 1, 0, 0, time.UTC), App: "a.example.com", IP: "198.51.100.1"},
		{At: time.Date(2026, 8, 1, 11, 0, 0, 0, time.UTC), App: "early.example.com"},
		{At: time.Date(2026, 8, 1, 12, 5, 0, 0, time.UTC), App: "b.example.com", IP: "198.51.100.2"},
		{At: time.Date(2026, 8, 1, 12, 8, 0, 0, time.UTC), App: "REDACTED-if-REDACTED"},
	}
	if !reflect.DeepEqual(logins, want) {
		t.Errorf("Logins =\n%+v, want\n%+v", logins, want)
	}
}

// TestLogins_readsOnWhenCutShort plays a server that sends at most 25
// entries whatever the limit: Logins asks again from the last one's time.
func TestLogins_readsOnWhenCutShort(t *testing.T) {
	t.Parallel()
	client, mux := setup(t)
	t0 := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	var sinces []string
	mux.HandleFunc(logsPath, func(w http.ResponseWriter, r *http.Request) {
		since, err := time.Parse(time.RFC3339, r.URL.Query().Get("since"))
		if err != nil {
			t.Errorf("since: %v", err)
		}
		sinces = append(sinces, r.URL.Query().Get("since"))
		var items []string
		for i := range 60 {
			at := t0.Add(time.Duration(i) * time.Second)
			if at.Before(since) || len(items) == 25 {
				continue
			}
			items = append(items, fmt.Sprintf(`{"action":"login","allowed":true,"app_domain":"app%d","created_at":%q,"ray_id":"r%d","user_email":"a@b.c"}`,
				i, at.Format(time.RFC3339), i))
		}
		writeBody(w, http.StatusOK, `{"success":true,"errors":[],"messages":[],"result":[`+strings.Join(items, ",")+`]}`)
	})
	logins, err := client.Logins(ctxT(t), "a@b.c", t0)
	if err != nil {
		t.Fatalf("Logins: %v", err)
	}
	if len(logins) != 60 {
		t.Fatalf("Logins = %d entries, want 60", len(logins))
	}
	for i, l := range logins {
		if want := t0.Add(time.Duration(i) * time.Second); !l.At.Equal(want) || l.App != fmt.Sprintf("app%d", i) {
			t.Errorf("login %d = %+v, want app%d at %v", i, l, i, want)
		}
	}
	want := []string{"2026-08-01T12:00:00Z", "2026-08-01T12:00:24Z", "2026-08-01T12:00:48Z"}
	if !reflect.DeepEqual(sinces, want) {
		t.Errorf("since of each call = %v, want %v", sinces, want)
	}
}

func TestInspector_forbiddenIsUnavailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		deny cftest.Read
		call func(*cloudflare.Client, cftest.User) error
		why  string
	}{
		{cftest.ReadUsers, func(c *cloudflare.Client, _ cftest.User) error { _, err := c.Preview(t.Context(), "a@b.c"); return err }, cloudflare.WhyNoUsers},
		{cftest.ReadSessions, func(c *cloudflare.Client, _ cftest.User) error { _, err := c.Preview(t.Context(), "a@b.c"); return err }, cloudflare.WhyNoUsers},
		{cftest.ReadSessions, func(c *cloudflare.Client, u cftest.User) error {
			_, err := c.ActiveSessions(t.Context(), u.ID)
			return err
		}, cloudflare.WhyNoUsers},
		{cftest.ReadLogs, func(c *cloudflare.Client, _ cftest.User) error {
			_, err := c.Logins(t.Context(), "a@b.c", time.Now().Add(-time.Hour))
			return err
		}, cloudflare.WhyNoLogs},
	} {
		srv := cftest.NewServer(t)
		u := srv.AddUser(cftest.User{Email: "a@b.c", Sessions: 1})
		srv.DenyRead(tc.deny)
		err := tc.call(newFakeClient(t, srv), u)
		if got := approvals.UnavailableWhy(err); got != tc.why {
			t.Errorf("deny %s: UnavailableWhy(%v) = %q, want %q", tc.deny, err, got, tc.why)
		}
		var apiErr *cloudflare.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || !reflect.DeepEqual(apiErr.Codes(), []int{10000}) {
			t.Errorf("deny %s: error %v does not wrap the 403 *APIError", tc.deny, err)
		}
		if strings.Contains(err.Error(), srv.APIToken()) {
			t.Errorf("error shows the token: %v", err)
		}
		if n := len(srv.Reads(tc.deny)); n != 1 {
			t.Errorf("deny %s: %d requests, want 1 (a 403 is not retried)", tc.deny, n)
		}
	}
	if !strings.HasPrefix(cloudflare.WhyNoUsers, "the token cannot read Access users") ||
		!strings.HasPrefix(cloudflare.WhyNoLogs, "the token cannot read Access logs") {
		t.Errorf("reasons %q, %q", cloudflare.WhyNoUsers, cloudflare.WhyNoLogs)
	}
}

func TestInspector_zoneMode(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t, cftest.WithZoneID("zone-test"))
	client := newFakeClient(t, srv)
	ctx := ctxT(t)
	_, errPreview := client.Preview(ctx, "a@b.c")
	_, errSessions := client.ActiveSessions(ctx, "u-1")
	_, errLogins := client.Logins(ctx, "a@b.c", time.Now())
	for name, err := range map[string]error{"Preview": errPreview, "ActiveSessions": errSessions, "Logins": errLogins} {
		var u *approvals.Unavailable
		if !errors.As(err, &u) || u.Why != cloudflare.WhyZoneMode {
			t.Errorf("%s: %v, want Unavailable %q", name, err, cloudflare.WhyZoneMode)
		}
	}
	if n := len(srv.Reads()); n != 0 {
		t.Errorf("zone mode sent %d requests, want none", n)
	}
}

func TestInspector_retriesLikeEveryCall(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	srv.AddUser(cftest.User{Email: "a@b.c", Sessions: 1})
	srv.ScriptRead(cftest.ReadUsers, cftest.Fail(http.StatusInternalServerError, 10001, "Internal server error"))
	srv.ScriptRead(cftest.ReadSessions, cftest.Fail(http.StatusBadGateway, 10001, "Bad gateway"), cftest.RateLimited(0))
	srv.ScriptRead(cftest.ReadLogs, cftest.Fail(http.StatusServiceUnavailable, 10001, "Unavailable"))
	client := newFakeClient(t, srv)

	p, err := client.Preview(ctxT(t), "a@b.c")
	if err != nil || p.Sessions != 1 {
		t.Fatalf("Preview = %+v, %v; want success after retries", p, err)
	}
	if _, err := client.Logins(ctxT(t), "a@b.c", time.Now().Add(-time.Hour)); err != nil {
		t.Fatalf("Logins: %v", err)
	}
	for what, want := range map[cftest.Read]int{cftest.ReadUsers: 2, cftest.ReadSessions: 3, cftest.ReadLogs: 2} {
		if n := len(srv.Reads(what)); n != want {
			t.Errorf("%s: %d requests, want %d", what, n, want)
		}
	}

	// Past the retry budget, the last error stays the client's usual one.
	srv.ScriptRead(cftest.ReadLogs,
		cftest.Fail(http.StatusInternalServerError, 10001, "a"),
		cftest.Fail(http.StatusInternalServerError, 10001, "b"),
		cftest.Fail(http.StatusInternalServerError, 10001, "c"))
	_, err = client.Logins(ctxT(t), "a@b.c", time.Now())
	var apiErr *cloudflare.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusInternalServerError || approvals.UnavailableWhy(err) != "" {
		t.Errorf("Logins after 3 failures: %v, want the 500 *APIError, not Unavailable", err)
	}
	if err != nil && !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("error %q does not count the attempts", err)
	}

	// A 404 is final and not Unavailable.
	srv.ScriptRead(cftest.ReadUsers, cftest.Fail(http.StatusNotFound, 7003, "Could not route"))
	_, err = client.Preview(ctxT(t), "a@b.c")
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || approvals.UnavailableWhy(err) != "" {
		t.Errorf("Preview after a 404: %v, want the 404 *APIError", err)
	}
}

func TestInspector_unexpectedResult(t *testing.T) {
	t.Parallel()
	client, mux := setup(t)
	for _, p := range []string{usersPath, logsPath, "/client/v4/accounts/abc/access/users/u-1/active_sessions"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			writeBody(w, http.StatusOK, `{"success":true,"errors":[],"messages":[],"result":{"not":"a list"}}`)
		})
	}
	ctx := ctxT(t)
	_, err1 := client.Preview(ctx, "a@b.c")
	_, err2 := client.ActiveSessions(ctx, "u-1")
	_, err3 := client.Logins(ctx, "a@b.c", time.Now())
	for i, err := range []error{err1, err2, err3} {
		var apiErr *cloudflare.APIError
		if !errors.As(err, &apiErr) || !strings.Contains(apiErr.Detail, "unexpected result") {
			t.Errorf("call %d: %v, want an *APIError about the result", i+1, err)
		}
	}
}
