package cftest_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revokebot/revokebot/cloudflare/cftest"
)

func TestRateLimitWindow(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t, cftest.WithRateLimit(3, time.Second))
	s.Script(cftest.Fail(500, 10001, "scripted"))
	h := bearer(s.APIToken())

	want := []int{500, 200, 200, 429, 429}
	for i, w := range want {
		a := send(t, http.MethodPost, revokeURL(s), h, body)
		if a.Status != w {
			t.Fatalf("call %d: %d %s, want %d", i, a.Status, a.Body, w)
		}
		if w != 429 {
			continue
		}
		if len(a.Env.Errors) != 1 || a.Env.Errors[0].Code != cftest.RateLimitCode || a.Env.Errors[0].Message != cftest.RateLimitMessage || a.Env.Success {
			t.Errorf("call %d: body %s, want code %d", i, a.Body, cftest.RateLimitCode)
		}
		if got := a.Header.Get("Retry-After"); got != "1" {
			t.Errorf("call %d: Retry-After = %q, want 1", i, got)
		}
	}
	// The limit covers every route, not only revoke_user.
	if a := send(t, http.MethodGet, s.URL()+"/user/tokens/verify", h, ""); a.Status != 429 {
		t.Errorf("verify past the limit: %d, want 429", a.Status)
	}
	if a := send(t, http.MethodGet, s.URL()+"/nope", h, ""); a.Status != 429 {
		t.Errorf("unknown route past the limit: %d, want 429", a.Status)
	}
	if got := s.RateLimitedCount(); got != 4 {
		t.Errorf("RateLimitedCount = %d, want 4", got)
	}
	calls := s.Calls()
	if len(calls) != len(want) {
		t.Fatalf("recorded %d revoke_user calls, want %d (429s included)", len(calls), len(want))
	}
	for i, c := range calls {
		if c.Status != want[i] || !c.AuthOK || c.Body.Email != "a@b.c" {
			t.Errorf("call %d recorded as status %d, AuthOK %v, body %+v; want status %d", i, c.Status, c.AuthOK, c.Body, want[i])
		}
	}

	// Once the oldest admitted request has left the window, requests get
	// through again. The fake admits a request before it records its
	// arrival, so the window is over one second after the recorded arrival.
	time.Sleep(time.Until(calls[0].At.Add(time.Second + time.Millisecond)))
	s.Script(cftest.Fail(502, 10001, "second script"))
	if a := send(t, http.MethodPost, revokeURL(s), h, body); a.Status != 502 {
		t.Errorf("after the window: %d %s, want the scripted 502 (429s must not consume the script)", a.Status, a.Body)
	}
	if got := s.RateLimitedCount(); got != 4 {
		t.Errorf("RateLimitedCount = %d after the window, want still 4", got)
	}
}

func TestRateLimitAppliesBeforeAuth(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t, cftest.WithRateLimit(1, time.Minute))
	if a := send(t, http.MethodPost, revokeURL(s), bearer("wrong"), body); a.Status != 403 {
		t.Fatalf("first call: %d, want 403", a.Status)
	}
	a := send(t, http.MethodPost, revokeURL(s), bearer("wrong"), body)
	if a.Status != 429 {
		t.Fatalf("second call: %d, want 429 (requests with bad credentials count too)", a.Status)
	}
	if got := a.Header.Get("Retry-After"); got != "60" && got != "59" {
		t.Errorf("Retry-After = %q, want about 60", got)
	}
	calls := s.Calls()
	if len(calls) != 2 || calls[1].Status != 429 || calls[1].AuthOK {
		t.Fatalf("calls = %+v, want the 429 recorded", calls)
	}
	if got := calls[1].Header.Get("Authorization"); got != cftest.Redacted {
		t.Errorf("Authorization of a rate-limited call recorded as %q", got)
	}
}

func TestRateLimitBurst(t *testing.T) {
	t.Parallel()
	const n, limit = 50, 10
	s := cftest.NewServer(t, cftest.WithRateLimit(limit, time.Minute))
	revokeConcurrently(t, s, n)
	count := map[int]int{}
	for _, c := range s.Calls() {
		count[c.Status]++
	}
	if count[200] != limit || count[429] != n-limit {
		t.Errorf("statuses = %v, want %d×200 and %d×429", count, limit, n-limit)
	}
	if got := s.RateLimitedCount(); got != n-limit {
		t.Errorf("RateLimitedCount = %d, want %d", got, n-limit)
	}
}

func TestRateLimitedCountIgnoresScripted429(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	s.Script(cftest.RateLimited(3))
	if a := send(t, http.MethodPost, revokeURL(s), bearer(s.APIToken()), body); a.Status != 429 {
		t.Fatalf("status %d, want the scripted 429", a.Status)
	}
	if got := s.RateLimitedCount(); got != 0 {
		t.Errorf("RateLimitedCount = %d, want 0 without WithRateLimit", got)
	}
}

func TestWithRateLimitRejectsNonPositive(t *testing.T) {
	t.Parallel()
	for _, o := range []cftest.Option{cftest.WithRateLimit(0, time.Second), cftest.WithRateLimit(5, 0), cftest.WithRateLimit(-1, -time.Second)} {
		tb := &fakeTB{TB: t}
		cftest.NewServer(tb, o)
		if !strings.Contains(tb.fatal, "WithRateLimit") || !strings.Contains(tb.fatal, "positive") {
			t.Errorf("Fatalf message = %q, want it to reject the option", tb.fatal)
		}
	}
}

func TestMaxConcurrent(t *testing.T) {
	t.Parallel()
	s := cftest.NewServer(t)
	if got := s.MaxConcurrent(); got != 0 {
		t.Errorf("MaxConcurrent = %d before any request, want 0", got)
	}
	send(t, http.MethodPost, revokeURL(s), bearer(s.APIToken()), body)
	send(t, http.MethodGet, s.URL()+"/user/tokens/verify", bearer(s.APIToken()), "")
	if got := s.MaxConcurrent(); got != 1 {
		t.Errorf("MaxConcurrent = %d after sequential requests, want 1", got)
	}

	const n = 3
	for range n {
		s.Script(cftest.Response{Delay: 200 * time.Millisecond})
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { send(t, http.MethodPost, revokeURL(s), bearer(s.APIToken()), body) })
	}
	wg.Wait()
	if got := s.MaxConcurrent(); got != n {
		t.Errorf("MaxConcurrent = %d after %d overlapping requests, want %d", got, n, n)
	}
}
