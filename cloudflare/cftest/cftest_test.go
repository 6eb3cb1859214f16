package cftest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revokebot/revokebot/cloudflare/cftest"
)

type answer struct {
	Status int
	Header http.Header
	Body   string
	Env    struct {
		Success bool            `json:"success"`
		Result  json.RawMessage `json:"result"`
		Errors  []struct {
			Code    int
			Message string
		}
		Messages []struct {
			Code    int
			Message string
		}
	}
}

// send makes one request to the fake and decodes the answer.
func send(t *testing.T, method, url string, header http.Header, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: string(raw)}
	_ = json.Unmarshal(raw, &a.Env) // scripted bodies may not be JSON
	return a
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}, "Content-Type": {"application/json"}}
}

func revokeURL(s *cftest.Server) string {
	return s.URL() + "/accounts/" + s.AccountID() + "/access/organizations/revoke_user?devices=true"
}

const body = `{"email":"a@b.c","devices":true,"warp_session_reauth":false}`

func TestDefaults(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	if got, want := s.APIToken(), "cf-test-token"; got != want {
		t.Errorf("APIToken = %q, want %q", got, want)
	}
	if got, want := s.AccountID(), "acc-test"; got != want {
		t.Errorf("AccountID = %q, want %q", got, want)
	}
	if s.ZoneID() != "" {
		t.Errorf("ZoneID = %q, want empty", s.ZoneID())
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/client/v4") {
		t.Errorf("URL = %q, want http://127.0.0.1:PORT/client/v4", s.URL())
	}
}

func TestRevokeSuccessIsRecorded(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	a := send(t, http.MethodPost, revokeURL(s), bearer(s.APIToken()), body)
	if a.Status != 200 || a.Body != `{"result":true,"success":true,"errors":[],"messages":[]}` {
		t.Fatalf("answer = %d %s", a.Status, a.Body)
	}
	if ct := a.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	calls := s.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls = %d, want 1", len(calls))
	}
	c := calls[0]
	if c.Method != "POST" || c.Path != "/client/v4/accounts/acc-test/access/organizations/revoke_user" || c.Query.Get("devices") != "true" {
		t.Errorf("call = %s %s ?%v", c.Method, c.Path, c.Query)
	}
	if !c.AuthOK || c.Status != 200 || c.At.IsZero() {
		t.Errorf("AuthOK=%v Status=%d At=%v", c.AuthOK, c.Status, c.At)
	}
	if got := c.Header.Get("Authorization"); got != cftest.Redacted {
		t.Errorf("Authorization recorded as %q, want %q", got, cftest.Redacted)
	}
	if c.Body.Email != "a@b.c" || c.Body.Devices == nil || !*c.Body.Devices || c.Body.WARPSessionReauth == nil || *c.Body.WARPSessionReauth || c.Body.UserUID != "" {
		t.Errorf("body = %+v", c.Body)
	}
	if string(c.RawBody) != body {
		t.Errorf("raw body = %s", c.RawBody)
	}
}

func TestAuthFailures(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t, cftest.WithAPIToken("right"))
	s.Script(cftest.Fail(500, 1, "scripted"))
	for _, h := range []http.Header{bearer("wrong"), {}, {"X-Auth-Email": {"a@b.c"}, "X-Auth-Key": {"right"}}} {
		a := send(t, http.MethodPost, revokeURL(s), h, body)
		if a.Status != 403 || len(a.Env.Errors) != 1 || a.Env.Errors[0].Code != 10000 || a.Env.Errors[0].Message != "Authentication error" || a.Env.Success {
			t.Errorf("answer = %d %s, want 403 [10000] Authentication error", a.Status, a.Body)
		}
	}
	calls := s.Calls()
	if len(calls) != 3 {
		t.Fatalf("calls = %d, want 3", len(calls))
	}
	for _, c := range calls {
		if c.AuthOK || c.Status != 403 {
			t.Errorf("call AuthOK=%v Status=%d, want false, 403", c.AuthOK, c.Status)
		}
		for _, h := range []string{"Authorization", "X-Auth-Key"} {
			if v, ok := c.Header[h]; ok && (len(v) != 1 || v[0] != cftest.Redacted) {
				t.Errorf("%s recorded as %q", h, v)
			}
		}
		if strings.Contains(fmt.Sprint(c.Header), "wrong") || strings.Contains(fmt.Sprint(c.Header), "right") {
			t.Errorf("header not redacted: %v", c.Header)
		}
	}
	// Auth failures do not consume the script.
	if a := send(t, http.MethodPost, revokeURL(s), bearer("right"), body); a.Status != 500 {
		t.Errorf("first authenticated call = %d, want the scripted 500", a.Status)
	}
}

func TestGlobalKey(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t, cftest.WithGlobalKey("ops@example.com", "k3y"))
	if s.APIToken() != "" {
		t.Errorf("APIToken = %q, want empty in global-key mode", s.APIToken())
	}
	h := http.Header{"X-Auth-Email": {"ops@example.com"}, "X-Auth-Key": {"k3y"}}
	if a := send(t, http.MethodPost, revokeURL(s), h, body); a.Status != 200 {
		t.Errorf("global key: %d %s", a.Status, a.Body)
	}
	if a := send(t, http.MethodPost, revokeURL(s), bearer(cftest.DefaultAPIToken), body); a.Status != 403 {
		t.Errorf("bearer in global-key mode: %d, want 403", a.Status)
	}
	calls := s.Calls()
	if len(calls) != 2 || !calls[0].AuthOK || calls[1].AuthOK {
		t.Fatalf("calls = %+v", calls)
	}
	if got := calls[0].Header.Get("X-Auth-Key"); got != cftest.Redacted {
		t.Errorf("X-Auth-Key recorded as %q", got)
	}
	if got := calls[0].Header.Get("X-Auth-Email"); got != "ops@example.com" {
		t.Errorf("X-Auth-Email recorded as %q", got)
	}
}

func TestScriptOrder(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	s.Script(cftest.Fail(500, 10001, "Internal server error"), cftest.RateLimited(7))
	s.Script(
		cftest.Response{Status: 502, Body: "<html>Bad gateway</html>", Header: http.Header{"Content-Type": {"text/html"}}},
		cftest.Response{Status: 503},
		cftest.Response{Body: `{"result":false,"success":true,"errors":[],"messages":[]}`},
	)
	want := []struct {
		status int
		code   int
		check  func(answer) bool
	}{
		{500, 10001, func(a answer) bool {
			return a.Env.Errors[0].Message == "Internal server error" && string(a.Env.Result) == "null"
		}},
		{429, cftest.RateLimitCode, func(a answer) bool { return a.Header.Get("Retry-After") == "7" }},
		{502, 0, func(a answer) bool {
			return a.Body == "<html>Bad gateway</html>" && a.Header.Get("Content-Type") == "text/html"
		}},
		{503, 10001, func(a answer) bool { return !a.Env.Success }},
		{200, 0, func(a answer) bool { return string(a.Env.Result) == "false" }},
		{200, 0, func(a answer) bool { return string(a.Env.Result) == "true" && a.Env.Success }}, // script empty
	}
	for i, w := range want {
		a := send(t, http.MethodPost, revokeURL(s), bearer(s.APIToken()), body)
		if a.Status != w.status {
			t.Errorf("call %d: status %d, want %d (%s)", i, a.Status, w.status, a.Body)
			continue
		}
		if w.code != 0 && (len(a.Env.Errors) != 1 || a.Env.Errors[0].Code != w.code) {
			t.Errorf("call %d: body %s, want code %d", i, a.Body, w.code)
		}
		if !w.check(a) {
			t.Errorf("call %d: unexpected answer %v %s", i, a.Header, a.Body)
		}
	}
	for i, c := range s.Calls() {
		if c.Status != want[i].status {
			t.Errorf("recorded call %d: status %d, want %d", i, c.Status, want[i].status)
		}
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	s.Script(cftest.Fail(500, 1, "scripted"))
	for _, b := range []string{`{not json`, `{"devices":true}`} {
		a := send(t, http.MethodPost, revokeURL(s), bearer(s.APIToken()), b)
		if a.Status != 400 || len(a.Env.Errors) != 1 || a.Env.Errors[0].Code != 9207 {
			t.Errorf("body %s: answer %d %s, want 400 code 9207", b, a.Status, a.Body)
		}
	}
	calls := s.Calls()
	if len(calls) != 2 || calls[0].Status != 400 || string(calls[0].RawBody) != `{not json` || calls[0].Body.Email != "" {
		t.Errorf("calls = %+v, want both bad requests recorded", calls)
	}
	// Bad requests do not consume the script.
	if a := send(t, http.MethodPost, revokeURL(s), bearer(s.APIToken()), body); a.Status != 500 {
		t.Errorf("status = %d, want the scripted 500", a.Status)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t, cftest.WithAccountID("acc-1"), cftest.WithZoneID("zone-1"))
	h := bearer(s.APIToken())
	tests := []struct {
		method, path string
		status, code int
		recorded     bool
	}{
		{"POST", "/zones/zone-1/access/organizations/revoke_user", 200, 0, true},
		{"POST", "/accounts/acc-1/access/organizations/revoke_user", 404, 7003, true}, // zone mode
		{"POST", "/zones/other/access/organizations/revoke_user", 404, 7003, true},
		{"GET", "/zones/zone-1/access/organizations/revoke_user", 405, 10405, true},
		{"GET", "/user/tokens/verify", 200, 0, false},
		{"GET", "/accounts/acc-1/tokens/verify", 200, 0, false},
		{"GET", "/accounts/other/tokens/verify", 404, 7003, false},
		{"GET", "/nope", 404, 7000, false},
	}
	for _, tt := range tests {
		before := len(s.Calls())
		a := send(t, tt.method, s.URL()+tt.path, h, body)
		if a.Status != tt.status {
			t.Errorf("%s %s: %d, want %d (%s)", tt.method, tt.path, a.Status, tt.status, a.Body)
		}
		if tt.code != 0 && (len(a.Env.Errors) == 0 || a.Env.Errors[0].Code != tt.code) {
			t.Errorf("%s %s: body %s, want code %d", tt.method, tt.path, a.Body, tt.code)
		}
		if got := len(s.Calls()) > before; got != tt.recorded {
			t.Errorf("%s %s: recorded = %v, want %v", tt.method, tt.path, got, tt.recorded)
		}
	}
	if a := send(t, "GET", strings.TrimSuffix(s.URL(), "/client/v4")+"/user/tokens/verify", h, ""); a.Status != 404 {
		t.Errorf("path without /client/v4: %d, want 404", a.Status)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t, cftest.WithAPIToken("tkn"))
	for _, path := range []string{"/user/tokens/verify", "/accounts/acc-test/tokens/verify"} {
		a := send(t, http.MethodGet, s.URL()+path, bearer("tkn"), "")
		if a.Status != 200 || string(a.Env.Result) != `{"id":"tok-test","status":"active"}` || !a.Env.Success {
			t.Errorf("%s valid: %d %s", path, a.Status, a.Body)
		}
		a = send(t, http.MethodGet, s.URL()+path, bearer("nope"), "")
		if a.Status != 401 || a.Env.Success || len(a.Env.Errors) != 1 || a.Env.Errors[0].Code != 1000 {
			t.Errorf("%s invalid: %d %s", path, a.Status, a.Body)
		}
	}
}

func TestScriptVerify(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	notBefore := time.Date(2024, 6, 1, 0, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	s.ScriptVerify(
		cftest.VerifyResult("expired", expires, notBefore),
		cftest.Fail(http.StatusServiceUnavailable, 10001, "try later"),
		cftest.Response{Status: http.StatusOK},
	)
	user, account := s.URL()+"/user/tokens/verify", s.URL()+"/accounts/acc-test/tokens/verify"

	// A wrong token and a wrong account do not consume the script.
	if a := send(t, http.MethodGet, user, bearer("nope"), ""); a.Status != 401 {
		t.Errorf("wrong token: %d %s", a.Status, a.Body)
	}
	if a := send(t, http.MethodGet, s.URL()+"/accounts/other/tokens/verify", bearer(s.APIToken()), ""); a.Status != 404 {
		t.Errorf("wrong account: %d %s", a.Status, a.Body)
	}
	a := send(t, http.MethodGet, user, bearer(s.APIToken()), "")
	if want := `{"expires_on":"2030-01-02T03:04:05Z","id":"tok-test","not_before":"2024-05-31T22:00:00Z","status":"expired"}`; a.Status != 200 || string(a.Env.Result) != want {
		t.Errorf("first: %d %s, want result %s", a.Status, a.Body, want)
	}
	if a := send(t, http.MethodGet, account, bearer(s.APIToken()), ""); a.Status != 503 || a.Env.Errors[0].Message != "try later" {
		t.Errorf("second: %d %s, want the scripted 503", a.Status, a.Body)
	}
	for _, name := range []string{"third (2xx without a body)", "fourth (script empty)"} {
		if a := send(t, http.MethodGet, user, bearer(s.APIToken()), ""); a.Status != 200 || string(a.Env.Result) != `{"id":"tok-test","status":"active"}` {
			t.Errorf("%s: %d %s, want active", name, a.Status, a.Body)
		}
	}
	if n := len(s.Calls()); n != 0 {
		t.Errorf("%d token checks recorded as revoke_user calls", n)
	}
}

func TestScriptVerifyDelay(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	s.ScriptVerify(cftest.Response{Delay: time.Minute})
	client := &http.Client{Timeout: 100 * time.Millisecond}
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/user/tokens/verify", nil)
	req.Header = bearer(s.APIToken())
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("delayed answer arrived before the client timeout")
	}
}

func TestCallsAreCopies(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	send(t, http.MethodPost, revokeURL(s), bearer(s.APIToken()), body)
	c := s.Calls()
	c[0].Header.Set("X-Mutated", "1")
	c[0].Query.Set("devices", "mutated")
	*c[0].Body.Devices = false
	c[0].RawBody[0] = 'X'
	c[0].Status = 1
	again := s.Calls()[0]
	if again.Header.Get("X-Mutated") != "" || again.Query.Get("devices") != "true" || !*again.Body.Devices || again.RawBody[0] != '{' || again.Status != 200 {
		t.Errorf("Calls shares state with the server: %+v", again)
	}
}

func TestWaitCalls(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	go func() {
		for range 3 {
			time.Sleep(20 * time.Millisecond)
			req, _ := http.NewRequest(http.MethodPost, revokeURL(s), strings.NewReader(body))
			req.Header = bearer(s.APIToken())
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	calls := s.WaitCalls(t, 3, 5*time.Second)
	if len(calls) < 3 {
		t.Fatalf("WaitCalls returned %d calls, want ≥ 3", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].At.Before(calls[i-1].At) {
			t.Errorf("calls out of order: %v before %v", calls[i].At, calls[i-1].At)
		}
	}
}

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	mu    sync.Mutex
	fatal string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fatal = fmt.Sprintf(format, args...)
}

func TestWaitCallsTimeout(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	send(t, http.MethodPost, revokeURL(s), bearer(s.APIToken()), body)
	tb := &fakeTB{TB: t}
	start := time.Now()
	if calls := s.WaitCalls(tb, 2, 100*time.Millisecond); calls != nil {
		t.Errorf("WaitCalls = %v, want nil on timeout", calls)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("WaitCalls returned after %s, want about 100ms", d)
	}
	if !strings.Contains(tb.fatal, "got 1 revoke_user calls") || !strings.Contains(tb.fatal, "want at least 2") {
		t.Errorf("Fatalf message = %q", tb.fatal)
	}
}

func TestDelayEndsWhenClientGivesUp(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	s.Script(cftest.Response{Delay: time.Minute})
	client := &http.Client{Timeout: 100 * time.Millisecond}
	req, _ := http.NewRequest(http.MethodPost, revokeURL(s), strings.NewReader(body))
	req.Header = bearer(s.APIToken())
	start := time.Now()
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("delayed answer arrived before the client timeout")
	}
	s.Close() // must not wait for the minute-long delay
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took until %s", d)
	}
	if calls := s.Calls(); len(calls) != 1 || calls[0].Status != 200 {
		t.Errorf("calls = %+v, want the delayed call recorded", calls)
	}
}

// revokeConcurrently sends n revoke_user calls to s at once and returns
// their statuses.
func revokeConcurrently(t *testing.T, s *cftest.Server, n int) []int {
	t.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses []int
	)
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, revokeURL(s), strings.NewReader(body))
			req.Header = bearer(s.APIToken())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			_ = s.Calls() // read while others write, for the race detector
			mu.Lock()
			statuses = append(statuses, resp.StatusCode)
			mu.Unlock()
		})
	}
	wg.Wait()
	return statuses
}

func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	const n = 20
	for range n / 2 {
		s.Script(cftest.Fail(500, 1, "x"))
	}
	count := map[int]int{}
	for _, st := range revokeConcurrently(t, s, n) {
		count[st]++
	}
	if count[500] != n/2 || count[200] != n/2 {
		t.Errorf("statuses = %v, want %d×500 and %d×200", count, n/2, n/2)
	}
	if got := len(s.WaitCalls(t, n, time.Second)); got != n {
		t.Errorf("calls = %d, want %d", got, n)
	}
}
