package cloudflare_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revokebot/revokebot/cloudflare"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

func TestRevokeUser_retriesServerError(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	srv.Script(cftest.Fail(500, 10001, "Internal server error"))
	client := newFakeClient(t, srv)

	resp, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c", Devices: true})
	if err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	if resp.Attempts != 2 {
		t.Errorf("Attempts = %d, want 2", resp.Attempts)
	}
	calls := srv.Calls()
	if len(calls) != 2 {
		t.Fatalf("calls = %d, want 2", len(calls))
	}
	if calls[0].Status != 500 || calls[1].Status != 200 {
		t.Errorf("statuses = %d, %d; want 500, 200", calls[0].Status, calls[1].Status)
	}
	// The body is rebuilt for every attempt.
	if len(calls[1].RawBody) == 0 || !bytes.Equal(calls[0].RawBody, calls[1].RawBody) {
		t.Errorf("bodies differ or are empty: %q vs %q", calls[0].RawBody, calls[1].RawBody)
	}
	if calls[1].Body.Email != "a@b.c" || calls[1].Body.Devices == nil || !*calls[1].Body.Devices {
		t.Errorf("second body = %+v", calls[1].Body)
	}
}

func TestRevokeUser_rateLimitHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	srv.Script(cftest.RateLimited(1))
	client := newFakeClient(t, srv)

	start := time.Now()
	if _, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"}); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	if elapsed := time.Since(start); elapsed < 950*time.Millisecond {
		t.Errorf("returned after %s; want a wait of about 1s (Retry-After)", elapsed)
	}
	calls := srv.Calls()
	if len(calls) != 2 {
		t.Fatalf("calls = %d, want 2", len(calls))
	}
	if gap := calls[1].At.Sub(calls[0].At); gap < 950*time.Millisecond {
		t.Errorf("gap between calls = %s, want ≥ ~1s", gap)
	}
}

func TestRevokeUser_rateLimitWithoutRetryAfterBacksOff(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	srv.Script(cftest.Response{Status: http.StatusTooManyRequests})
	client := newFakeClient(t, srv)
	if _, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"}); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	if got := len(srv.Calls()); got != 2 {
		t.Errorf("calls = %d, want 2", got)
	}
}

func TestRevokeUser_rateLimitBeyondBudgetGivesUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		retryAfter string
		min        time.Duration
	}{
		{"seconds", "60", 60 * time.Second},
		{"http date", time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat), 100 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := cftest.NewServer(t)
			r := cftest.RateLimited(0)
			r.Header.Set("Retry-After", tt.retryAfter)
			srv.Script(r, r, r)
			client := newFakeClient(t, srv, func(o *cloudflare.Options) { o.Retry.MaxElapsed = 2 * time.Second })

			start := time.Now()
			_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
			if elapsed := time.Since(start); elapsed > time.Second {
				t.Errorf("took %s; want to give up at once", elapsed)
			}
			var rl *cloudflare.RateLimitError
			if !errors.As(err, &rl) {
				t.Fatalf("err = %v, want *RateLimitError", err)
			}
			if rl.RetryAfter < tt.min {
				t.Errorf("RetryAfter = %s, want ≥ %s", rl.RetryAfter, tt.min)
			}
			var apiErr *cloudflare.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
				t.Errorf("errors.As(*APIError) = %v, want status 429", apiErr)
			}
			for _, want := range []string{"after 1 attempt:", "429 Too Many Requests", "[971] Please wait", "giving up"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to contain %q", err, want)
				}
			}
			if got := len(srv.Calls()); got != 1 {
				t.Errorf("calls = %d, want 1", got)
			}
		})
	}
}

func TestRevokeUser_maxAttemptsExhausted(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	for range 5 {
		srv.Script(cftest.Response{Status: http.StatusServiceUnavailable})
	}
	client := newFakeClient(t, srv) // MaxAttempts 3

	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	if err == nil || !strings.Contains(err.Error(), "revoke a@b.c: after 3 attempts: ") {
		t.Fatalf("err = %v, want it to mention 3 attempts", err)
	}
	var apiErr *cloudflare.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("errors.As(*APIError) = %v, want status 503", apiErr)
	}
	if got := len(srv.Calls()); got != 3 {
		t.Errorf("calls = %d, want 3", got)
	}
}

func TestRevokeUser_defaultMaxAttempts(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	for range 10 {
		srv.Script(cftest.Response{Status: http.StatusInternalServerError})
	}
	client := newFakeClient(t, srv, func(o *cloudflare.Options) { o.Retry.MaxAttempts = 0 })
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	if err == nil || !strings.Contains(err.Error(), "after 4 attempts") {
		t.Fatalf("err = %v, want 4 attempts (default)", err)
	}
	if got := len(srv.Calls()); got != 4 {
		t.Errorf("calls = %d, want 4", got)
	}
}

func TestRevokeUser_maxElapsedBoundsRetries(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	for range 20 {
		srv.Script(cftest.Response{Status: http.StatusInternalServerError})
	}
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.Retry = cloudflare.RetryPolicy{MaxAttempts: 20, BaseDelay: 200 * time.Millisecond, MaxDelay: 200 * time.Millisecond, MaxElapsed: 300 * time.Millisecond}
	})
	start := time.Now()
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	if elapsed := time.Since(start); elapsed > 800*time.Millisecond {
		t.Errorf("took %s; want it to stay within the 300ms budget (plus slack)", elapsed)
	}
	if err == nil || !strings.Contains(err.Error(), "giving up") {
		t.Fatalf("err = %v, want a give-up error", err)
	}
	if n := len(srv.Calls()); n < 1 || n > 3 {
		t.Errorf("calls = %d, want 1..3", n)
	}
}

func TestRevokeUser_cancelDuringBackoff(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	srv.Script(cftest.Response{Status: http.StatusServiceUnavailable}, cftest.Response{Status: http.StatusServiceUnavailable})
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.Retry.BaseDelay, o.Retry.MaxDelay = 20*time.Second, 20*time.Second
		o.Retry.MaxElapsed = time.Minute
	})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := client.RevokeUser(ctx, cloudflare.RevokeUserParams{Email: "a@b.c"})
		errc <- err
	}()
	srv.WaitCalls(t, 1, 5*time.Second)
	time.Sleep(50 * time.Millisecond) // let the client start waiting
	cancel()
	cancelled := time.Now()

	select {
	case err := <-errc:
		if d := time.Since(cancelled); d > 500*time.Millisecond {
			t.Errorf("returned %s after cancel; want promptly", d)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		var apiErr *cloudflare.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 {
			t.Errorf("err = %v, want the last *APIError (503) too", err)
		}
		if !strings.Contains(err.Error(), "after 1 attempt") {
			t.Errorf("err = %q, want the attempt count", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RevokeUser did not return after cancel")
	}
	if got := len(srv.Calls()); got != 1 {
		t.Errorf("calls = %d, want 1", got)
	}
}

func TestRevokeUser_callTimeoutRetriedThenFails(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	slow := cftest.Response{Delay: 5 * time.Second}
	srv.Script(slow, slow, slow)
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.Retry.MaxAttempts = 2
		o.Retry.CallTimeout = 100 * time.Millisecond
	})

	start := time.Now()
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("took %s; want about 2×100ms", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	for _, want := range []string{"after 2 attempts", "timed out after 100ms"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
	if got := len(srv.WaitCalls(t, 2, time.Second)); got != 2 {
		t.Errorf("calls = %d, want 2", got)
	}
}

func TestRevokeUser_networkErrorRetried(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	client, mux := setup(t)
	mux.HandleFunc(revokePath, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// Drop the connection without an answer.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		writeBody(w, http.StatusOK, okBody)
	})
	resp, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	if err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	if resp.Attempts != 2 || calls.Load() != 2 {
		t.Errorf("attempts = %d, calls = %d; want 2, 2", resp.Attempts, calls.Load())
	}
}

func TestRevokeUser_connectionRefused(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	url := srv.URL()
	srv.Close()
	client := newFakeClient(t, srv, func(o *cloudflare.Options) { o.BaseURL = url })
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	if err == nil || !strings.Contains(err.Error(), "after 3 attempts") || !strings.Contains(err.Error(), "POST /accounts/acc-test/access/organizations/revoke_user") {
		t.Fatalf("err = %v, want a network error after 3 attempts", err)
	}
	var apiErr *cloudflare.APIError
	if errors.As(err, &apiErr) {
		t.Errorf("network error matched *APIError: %v", apiErr)
	}
}

// TestRevokeUser_retriesWhatTheSDKRetries checks the statuses Cloudflare's
// own SDKs retry (408, 409, 429, 5xx): each is tried again, then succeeds.
func TestRevokeUser_retriesWhatTheSDKRetries(t *testing.T) {
	t.Parallel()
	for _, status := range []int{408, 409, 429, 500, 502, 503, 504, 520, 524} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			srv := cftest.NewServer(t)
			srv.Script(cftest.Response{Status: status})
			resp, err := newFakeClient(t, srv).RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
			if err != nil {
				t.Fatalf("RevokeUser: %v", err)
			}
			if resp.Attempts != 2 {
				t.Errorf("Attempts = %d, want 2", resp.Attempts)
			}
			calls := srv.Calls()
			if len(calls) != 2 || calls[0].Status != status || calls[1].Status != http.StatusOK {
				t.Errorf("calls = %d, want %d then 200", len(calls), status)
			}
		})
	}
}

// TestRevokeUser_retryAfterOnEveryRetryableStatus checks that Retry-After is
// honoured on every retryable answer, not only 429: a wait beyond the retry
// budget makes the client give up at once, after one attempt, instead of
// backing off on its own (or not retrying at all).
func TestRevokeUser_retryAfterOnEveryRetryableStatus(t *testing.T) {
	t.Parallel()
	for _, status := range []int{408, 409, 429, 503} {
		for name, retryAfter := range map[string]string{
			"seconds":   "60",
			"http date": time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat),
		} {
			t.Run(fmt.Sprint(status, " ", name), func(t *testing.T) {
				t.Parallel()
				srv := cftest.NewServer(t)
				r := cftest.Response{Status: status, Header: http.Header{"Retry-After": {retryAfter}}}
				srv.Script(r, r, r)
				client := newFakeClient(t, srv, func(o *cloudflare.Options) { o.Retry.MaxElapsed = 5 * time.Second })
				_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
				for _, want := range []string{"after 1 attempt:", fmt.Sprint(status), "giving up: next wait 1m", "exceeds the remaining retry budget"} {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("err = %v, want it to contain %q", err, want)
					}
				}
				var apiErr *cloudflare.APIError
				if !errors.As(err, &apiErr) || apiErr.StatusCode != status {
					t.Errorf("errors.As(*APIError) = %v, want status %d", apiErr, status)
				}
				if got := len(srv.Calls()); got != 1 {
					t.Errorf("calls = %d, want 1", got)
				}
			})
		}
	}
}
