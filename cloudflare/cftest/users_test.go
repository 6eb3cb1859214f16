package cftest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// listed decodes the result of a read answer.
func listed[T any](t *testing.T, a answer) []T {
	t.Helper()
	if a.Status != http.StatusOK || !a.Env.Success {
		t.Fatalf("status %d: %s", a.Status, a.Body)
	}
	var out []T
	if err := json.Unmarshal(a.Env.Result, &out); err != nil {
		t.Fatalf("result %s: %v", a.Env.Result, err)
	}
	return out
}

type userItem struct {
	ID                  string `json:"id"`
	UID                 string `json:"uid"`
	Email               string `json:"email"`
	Name                string `json:"name"`
	LastSuccessfulLogin string `json:"last_successful_login"`
	ActiveDeviceCount   int    `json:"active_device_count"`
	AccessSeat          *bool  `json:"access_seat"`
	GatewaySeat         *bool  `json:"gateway_seat"`
	SeatUID             string `json:"seat_uid"`
	CreatedAt           string `json:"created_at"`
	UpdatedAt           string `json:"updated_at"`
}

type sessionItem struct {
	Expiration int64  `json:"expiration"`
	Name       string `json:"name"`
	Metadata   struct {
		Apps map[string]struct {
			Hostname, Name, Type, UID string
		} `json:"apps"`
		Expires int64  `json:"expires"`
		IAT     int64  `json:"iat"`
		Nonce   string `json:"nonce"`
		TTL     int64  `json:"ttl"`
	} `json:"metadata"`
}

type logItem struct {
	Action     string `json:"action"`
	Allowed    bool   `json:"allowed"`
	AppDomain  string `json:"app_domain"`
	AppUID     string `json:"app_uid"`
	Connection string `json:"connection"`
	CreatedAt  string `json:"created_at"`
	IPAddress  string `json:"ip_address"`
	RayID      string `json:"ray_id"`
	UserEmail  string `json:"user_email"`
}

func usersURL(s *cftest.Server, q url.Values) string {
	return s.URL() + "/accounts/" + s.AccountID() + "/access/users?" + q.Encode()
}

func sessionsURL(s *cftest.Server, id string) string {
	return s.URL() + "/accounts/" + s.AccountID() + "/access/users/" + url.PathEscape(id) + "/active_sessions"
}

func logsURL(s *cftest.Server, q url.Values) string {
	return s.URL() + "/accounts/" + s.AccountID() + "/access/logs/access_requests?" + q.Encode()
}

func TestUsers(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	login := time.Date(2026, 7, 1, 5, 20, 0, 0, time.UTC)
	a := s.AddUser(cftest.User{Email: "a@b.c", Name: "Ann", LastLogin: login, Devices: 2, Sessions: 1})
	s.AddUser(cftest.User{ID: "u-2", Email: "XA@b.c", Name: "Xavier"})
	if a.ID == "" || len(a.ID) != 36 {
		t.Fatalf("AddUser gave ID %q, want a UUID", a.ID)
	}
	if again := s.AddUser(cftest.User{Email: "a@b.c", Name: "Ann"}); again.ID != a.ID {
		t.Errorf("the derived ID changed: %q then %q", a.ID, again.ID)
	}
	s.AddUser(a) // back to the first version

	users := listed[userItem](t, send(t, http.MethodGet, usersURL(s, url.Values{"email": {"a@b.c"}}), bearer(s.APIToken()), ""))
	if got := len(users); got != 2 {
		t.Fatalf("email=a@b.c listed %d users, want 2 (a substring match, without regard to case): %+v", got, users)
	}
	u := users[0]
	if u.ID != a.ID || u.UID != a.ID || u.Email != "a@b.c" || u.Name != "Ann" || u.ActiveDeviceCount != 2 ||
		u.LastSuccessfulLogin != "2026-07-01T05:20:00Z" || u.AccessSeat == nil || u.GatewaySeat == nil || !*u.GatewaySeat ||
		u.SeatUID == "" || u.CreatedAt == "" || u.UpdatedAt == "" {
		t.Errorf("user = %+v", u)
	}
	if users[1].LastSuccessfulLogin != "" {
		t.Errorf("a user who never logged in has last_successful_login %q", users[1].LastSuccessfulLogin)
	}

	for q, want := range map[string][]string{
		"email=nobody@b.c":       nil,
		"name=xav":               {"u-2"},
		"search=ANN":             {a.ID},
		"per_page=1&page=2":      {"u-2"},
		"per_page=1&page=3":      nil,
		"email=b.c&search=xa@b.": {"u-2"},
	} {
		v, _ := url.ParseQuery(q)
		var ids []string
		for _, u := range listed[userItem](t, send(t, http.MethodGet, usersURL(s, v), bearer(s.APIToken()), "")) {
			ids = append(ids, u.ID)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("%s: listed %v, want %v", q, ids, want)
		}
	}
	a1 := send(t, http.MethodGet, usersURL(s, url.Values{"per_page": {"1"}}), bearer(s.APIToken()), "")
	var env struct {
		ResultInfo struct {
			Page       int `json:"page"`
			PerPage    int `json:"per_page"`
			Count      int `json:"count"`
			TotalCount int `json:"total_count"`
			TotalPages int `json:"total_pages"`
		} `json:"result_info"`
	}
	if err := json.Unmarshal([]byte(a1.Body), &env); err != nil {
		t.Fatal(err)
	}
	if ri := env.ResultInfo; ri.Page != 1 || ri.PerPage != 1 || ri.Count != 1 || ri.TotalCount != 2 || ri.TotalPages != 2 {
		t.Errorf("result_info = %+v, want page 1, count 1 of 2 pages", ri)
	}

	reads := s.Reads(cftest.ReadUsers)
	if len(reads) != 8 {
		t.Fatalf("Reads(users) = %d, want 8", len(reads))
	}
	r := reads[0]
	if r.Method != http.MethodGet || r.Path != "/client/v4/accounts/"+s.AccountID()+"/access/users" ||
		r.Query.Get("email") != "a@b.c" || !r.AuthOK || r.Status != http.StatusOK || r.Header.Get("Authorization") != cftest.Redacted {
		t.Errorf("read = %+v", r)
	}
	if n := len(s.Calls()); n != 0 {
		t.Errorf("reads recorded as %d revoke_user calls", n)
	}
}

func TestReads_refused(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	zone := cftest.NewServer(t, cftest.WithZoneID("zone-test"))
	for name, tc := range map[string]struct {
		method, url, token string
		status             int
	}{
		"wrong token":    {http.MethodGet, usersURL(s, nil), "nope", http.StatusForbidden},
		"wrong account":  {http.MethodGet, s.URL() + "/accounts/other/access/users", s.APIToken(), http.StatusNotFound},
		"zone route":     {http.MethodGet, s.URL() + "/zones/" + s.AccountID() + "/access/users", s.APIToken(), http.StatusNotFound},
		"zone mode":      {http.MethodGet, usersURL(zone, nil), zone.APIToken(), http.StatusNotFound},
		"zone mode logs": {http.MethodGet, logsURL(zone, nil), zone.APIToken(), http.StatusNotFound},
		"wrong method":   {http.MethodPost, usersURL(s, nil), s.APIToken(), http.StatusMethodNotAllowed},
		"unknown route":  {http.MethodGet, s.URL() + "/accounts/" + s.AccountID() + "/access/users/x/nope", s.APIToken(), http.StatusNotFound},
		"bad since":      {http.MethodGet, logsURL(s, url.Values{"since": {"yesterday"}}), s.APIToken(), http.StatusBadRequest},
		"bad direction":  {http.MethodGet, logsURL(s, url.Values{"direction": {"up"}}), s.APIToken(), http.StatusBadRequest},
		"bad limit":      {http.MethodGet, logsURL(s, url.Values{"limit": {"0"}}), s.APIToken(), http.StatusBadRequest},
		"bad per_page":   {http.MethodGet, usersURL(s, url.Values{"per_page": {"x"}}), s.APIToken(), http.StatusBadRequest},
	} {
		if a := send(t, tc.method, tc.url, bearer(tc.token), ""); a.Status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", name, a.Status, tc.status, a.Body)
		}
	}
}

func TestSessions_endAfterRevoke(t *testing.T) {
	t.Parallel()
	const linger = 300 * time.Millisecond
	s := cftest.NewServer(t, cftest.WithSessionsLinger(linger))
	gone := s.AddUser(cftest.User{Email: "a@b.c", Name: "Ann", Sessions: 2})
	stay := s.AddUser(cftest.User{Email: "stay@b.c", Sessions: 3, SessionsStay: true})
	slow := s.AddUser(cftest.User{Email: "slow@b.c", Sessions: 1, SessionsLinger: time.Hour})
	other := s.AddUser(cftest.User{Email: "other@b.c", Sessions: 1})
	count := func(u cftest.User) int {
		t.Helper()
		return len(listed[sessionItem](t, send(t, http.MethodGet, sessionsURL(s, u.ID), bearer(s.APIToken()), "")))
	}

	items := listed[sessionItem](t, send(t, http.MethodGet, sessionsURL(s, gone.ID), bearer(s.APIToken()), ""))
	if len(items) != 2 {
		t.Fatalf("sessions = %d, want 2", len(items))
	}
	it := items[0]
	if it.Expiration == 0 || it.Metadata.Expires != it.Expiration || it.Metadata.IAT == 0 || it.Metadata.Nonce == "" ||
		it.Metadata.TTL != int64(cftest.SessionTTL/time.Second) || len(it.Metadata.Apps) != 1 || it.Name != "Ann" {
		t.Errorf("session = %+v", it)
	}
	// A user ID nobody has is a 404, never an empty list.
	if resp := send(t, http.MethodGet, sessionsURL(s, "unknown"), bearer(s.APIToken()), ""); resp.Status != http.StatusNotFound {
		t.Errorf("sessions of an unknown user ID: status %d, want 404", resp.Status)
	}

	// A failed revocation ends nothing.
	s.Script(cftest.Fail(http.StatusInternalServerError, 10001, "Internal server error"))
	send(t, http.MethodPost, revokeURL(s), bearer(s.APIToken()), `{"email":"A@B.C"}`)
	time.Sleep(2 * linger)
	if got := count(gone); got != 2 {
		t.Fatalf("after a failed revocation: %d sessions, want 2", got)
	}

	start := time.Now()
	for _, email := range []string{"A@B.C", "stay@b.c", "slow@b.c"} {
		if a := send(t, http.MethodPost, revokeURL(s), bearer(s.APIToken()), `{"email":"`+email+`"}`); a.Status != http.StatusOK {
			t.Fatalf("revoke %s: %d", email, a.Status)
		}
	}
	if got := count(gone); got != 2 && time.Since(start) < linger {
		t.Errorf("just after the revocation: %d sessions, want 2 for %s", got, linger)
	}
	for count(gone) != 0 {
		if time.Since(start) > 10*time.Second {
			t.Fatal("sessions still listed 10s after the revocation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if elapsed := time.Since(start); elapsed < linger {
		t.Errorf("sessions gone after %s, before the linger of %s", elapsed, linger)
	}
	if got := count(stay); got != 3 {
		t.Errorf("SessionsStay: %d sessions, want 3", got)
	}
	if got := count(slow); got != 1 {
		t.Errorf("SessionsLinger of an hour: %d sessions, want 1", got)
	}
	if got := count(other); got != 1 {
		t.Errorf("a user not revoked: %d sessions, want 1", got)
	}
	s.AddUser(gone) // logs in again
	if got := count(gone); got != 2 {
		t.Errorf("after AddUser again: %d sessions, want 2", got)
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	t0 := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	s.AddLogin(
		cftest.Login{Email: "a@b.c", At: t0, AppDomain: "app.example.com/admin", AppUID: "app-1", IP: "198.51.100.1", Allowed: true, Connection: "saml", RayID: "187d944c61940c77"},
		cftest.Login{Email: "a@b.c", At: t0.Add(2 * time.Minute), Allowed: false},
		cftest.Login{Email: "xa@b.c", At: t0.Add(time.Minute), Allowed: true},
		cftest.Login{Email: "a@b.c", At: t0.Add(3 * time.Minute), Allowed: true, Action: "logout"},
	)
	all := listed[logItem](t, send(t, http.MethodGet, logsURL(s, nil), bearer(s.APIToken()), ""))
	var times []string
	for _, e := range all {
		times = append(times, e.CreatedAt[11:16])
	}
	if want := []string{"12:03", "12:02", "12:01", "12:00"}; !slices.Equal(times, want) {
		t.Errorf("default order %v, want newest first %v", times, want)
	}
	first := all[3]
	if want := (logItem{Action: "login", Allowed: true, AppDomain: "app.example.com/admin", AppUID: "app-1", Connection: "saml",
		CreatedAt: "2026-08-01T12:00:00Z", IPAddress: "198.51.100.1", RayID: "187d944c61940c77", UserEmail: "a@b.c"}); first != want {
		t.Errorf("entry = %+v, want %+v", first, want)
	}
	if all[1].RayID == "" || len(all[1].RayID) != 16 {
		t.Errorf("derived ray_id %q, want 16 hex digits", all[1].RayID)
	}

	for q, want := range map[string][]string{
		"email=a@b.c":                                 {"12:03", "12:02", "12:01", "12:00"},
		"email=a@b.c&email_exact=true":                {"12:03", "12:02", "12:00"},
		"email=A@B.C&email_exact=true":                nil,
		"email=a@b.c&email_exact=true&direction=asc":  {"12:00", "12:02", "12:03"},
		"direction=asc&since=2026-08-01T12:01:00Z":    {"12:01", "12:02", "12:03"},
		"direction=asc&until=2026-08-01T12:01:00Z":    {"12:00", "12:01"},
		"direction=asc&limit=2":                       {"12:00", "12:01"},
		"limit=1":                                     {"12:03"},
		"since=2026-08-01T12:00:00%2B02:00&limit=100": {"12:03", "12:02", "12:01", "12:00"},
	} {
		v, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range listed[logItem](t, send(t, http.MethodGet, logsURL(s, v), bearer(s.APIToken()), "")) {
			got = append(got, e.CreatedAt[11:16])
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
	if got, want := len(s.Reads(cftest.ReadLogs)), 10; got != want {
		t.Errorf("Reads(logs) = %d, want %d", got, want)
	}
}

func TestDenyRead(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	u := s.AddUser(cftest.User{Email: "a@b.c", Sessions: 1})
	urls := map[cftest.Read]string{
		cftest.ReadUsers:    usersURL(s, nil),
		cftest.ReadSessions: sessionsURL(s, u.ID),
		cftest.ReadLogs:     logsURL(s, nil),
	}
	status := func(what cftest.Read) answer {
		t.Helper()
		return send(t, http.MethodGet, urls[what], bearer(s.APIToken()), "")
	}

	s.DenyRead()
	for what := range urls {
		a := status(what)
		if a.Status != http.StatusForbidden || a.Env.Success || len(a.Env.Errors) != 1 ||
			a.Env.Errors[0].Code != 10000 || a.Env.Errors[0].Message != "Authentication error" {
			t.Errorf("%s denied: %d %s", what, a.Status, a.Body)
		}
	}
	s.AllowRead(cftest.ReadLogs)
	for what, want := range map[cftest.Read]int{cftest.ReadUsers: 403, cftest.ReadSessions: 403, cftest.ReadLogs: 200} {
		if a := status(what); a.Status != want {
			t.Errorf("after AllowRead(logs): %s %d, want %d", what, a.Status, want)
		}
	}
	s.AllowRead()
	s.DenyRead(cftest.ReadUsers)
	for what, want := range map[cftest.Read]int{cftest.ReadUsers: 403, cftest.ReadSessions: 200, cftest.ReadLogs: 200} {
		if a := status(what); a.Status != want {
			t.Errorf("after DenyRead(users): %s %d, want %d", what, a.Status, want)
		}
	}
	if got, want := len(s.Reads()), 9; got != want {
		t.Errorf("Reads() = %d, want %d (denied ones too)", got, want)
	}
}

func TestScriptRead(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	s.AddUser(cftest.User{Email: "a@b.c"})
	s.ScriptRead(cftest.ReadUsers, cftest.Fail(http.StatusBadGateway, 10001, "Bad gateway"), cftest.Response{Status: http.StatusOK})
	if a := send(t, http.MethodGet, usersURL(s, nil), bearer(s.APIToken()), ""); a.Status != http.StatusBadGateway {
		t.Errorf("first: %d, want 502", a.Status)
	}
	if a := send(t, http.MethodGet, logsURL(s, nil), bearer(s.APIToken()), ""); a.Status != http.StatusOK {
		t.Errorf("logs do not use the users script: %d", a.Status)
	}
	for i := range 2 {
		if users := listed[userItem](t, send(t, http.MethodGet, usersURL(s, nil), bearer(s.APIToken()), "")); len(users) != 1 {
			t.Errorf("answer %d: %d users, want the fake's 1", i+2, len(users))
		}
	}
	statuses := []int{}
	for _, c := range s.Reads(cftest.ReadUsers) {
		statuses = append(statuses, c.Status)
	}
	if want := []int{502, 200, 200}; !slices.Equal(statuses, want) {
		t.Errorf("recorded statuses %v, want %v", statuses, want)
	}
}
