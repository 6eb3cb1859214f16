package cloudflare_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revokebot/revokebot/cloudflare"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// burst makes n concurrent RevokeUser calls and returns their errors.
func burst(t *testing.T, client *cloudflare.Client, n int) []error {
	t.Helper()
	ctx := ctxT(t)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = client.RevokeUser(ctx, cloudflare.RevokeUserParams{Email: fmt.Sprintf("user%d@example.com", i)})
		})
	}
	wg.Wait()
	return errs
}

// TestBurstStaysUnderLimit: a 500-request burst that stays under the
// Cloudflare limiter without a 429. The fake allows 100 requests in any
// second; a client paced at the same budget queues the burst (20 at once,
// then 80 per 1.2 s: about 7 s) instead of tripping it.
func TestBurstStaysUnderLimit(t *testing.T) {
	t.Parallel()
	const n = 500
	srv := cftest.NewServer(t, cftest.WithRateLimit(100, time.Second))
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.RateLimit = cloudflare.RateLimit{Requests: 100, Per: time.Second}
	})

	start := time.Now()
	for i, err := range burst(t, client, n) {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	t.Logf("%d calls took %s; at most %d at once", n, time.Since(start).Round(time.Millisecond), srv.MaxConcurrent())

	if got := len(srv.Calls()); got != n {
		t.Errorf("fake saw %d calls, want %d (any retry would add more)", got, n)
	}
	if got := srv.RateLimitedCount(); got != 0 {
		t.Errorf("fake answered %d calls with 429, want none", got)
	}
	if got := srv.MaxConcurrent(); got > cloudflare.DefaultMaxInFlight {
		t.Errorf("fake saw %d concurrent calls, want at most DefaultMaxInFlight = %d", got, cloudflare.DefaultMaxInFlight)
	}
}

// TestBurstAboveLimitIsRateLimited is the control for
// TestBurstStaysUnderLimit: the same burst from a client paced far above the
// fake's limit, without retries, does earn 429s, so the fake really enforces
// its limit. It is not parallel: its 500 unpaced calls would hog the CPU and
// delay the start of TestBurstStaysUnderLimit's burst.
func TestBurstAboveLimitIsRateLimited(t *testing.T) {
	const n = 500
	srv := cftest.NewServer(t, cftest.WithRateLimit(100, time.Second))
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.RateLimit = cloudflare.RateLimit{Requests: 100000, Per: time.Second}
		o.Retry.MaxAttempts = 1
	})

	failed := 0
	for i, err := range burst(t, client, n) {
		if err == nil {
			continue
		}
		failed++
		var rl *cloudflare.RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != time.Second || len(rl.Errors) != 1 || rl.Errors[0].Code != cftest.RateLimitCode {
			t.Errorf("call %d: err = %v, want a *RateLimitError with code %d and Retry-After 1s", i, err, cftest.RateLimitCode)
		}
	}
	limited := srv.RateLimitedCount()
	if limited == 0 {
		t.Fatal("fake answered no 429s, want some: it does not enforce its limit")
	}
	if failed != limited {
		t.Errorf("%d calls failed, fake answered %d with 429; want equal", failed, limited)
	}
	if got := len(srv.Calls()); got != n {
		t.Errorf("fake recorded %d calls, want %d (429s included)", got, n)
	}
	t.Logf("%d of %d calls got 429", limited, n)
}

// assertQueuedTooLong checks that err is the local "queued too long" error,
// not something Cloudflare answered.
func assertQueuedTooLong(t *testing.T, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, cloudflare.ErrQueuedTooLong) {
		t.Fatalf("err = %v, want it to wrap ErrQueuedTooLong", err)
	}
	var rl *cloudflare.RateLimitError
	if errors.As(err, &rl) {
		t.Errorf("err = %v is a *RateLimitError; a local wait must not look like Cloudflare's 429", err)
	}
	var apiErr *cloudflare.APIError
	if errors.As(err, &apiErr) {
		t.Errorf("err = %v is an *APIError; Cloudflare never answered", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %q, want it to contain %q", err, w)
		}
	}
	assertNoSecrets(t, err.Error())
}

func TestRevokeUser_limiterWaitPastDeadlineFailsFast(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.RateLimit = cloudflare.RateLimit{Requests: 1, Per: time.Hour}
	})
	if _, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "first@example.com"}); err != nil {
		t.Fatalf("first call (the burst of 1): %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := client.RevokeUser(ctx, cloudflare.RevokeUserParams{Email: "second@example.com"})
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("took %s; the limiter knows at once that the wait outlasts the deadline", d)
	}
	assertQueuedTooLong(t, err, "revoke second@example.com: cloudflare: POST ", "local rate limit (1 request per 1h0m0s)", "queued too long, not sent")
	if strings.Contains(err.Error(), "attempt") {
		t.Errorf("err = %q mentions attempts; none was sent", err)
	}
	if got := len(srv.Calls()); got != 1 {
		t.Errorf("fake saw %d calls, want 1", got)
	}
}

func TestRevokeUser_cancelWhileQueuedForLimiter(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.RateLimit = cloudflare.RateLimit{Requests: 2, Per: time.Minute} // a burst of 1, then one per minute
	})
	if _, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "first@example.com"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context()) // no deadline: Wait really waits
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := client.RevokeUser(ctx, cloudflare.RevokeUserParams{Email: "second@example.com"})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %s, want soon after the cancel", d)
	}
	assertQueuedTooLong(t, err, "local rate limit (2 requests per 1m0s)")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it to wrap context.Canceled", err)
	}
}

func TestRevokeUser_retriesWaitForLimiter(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	srv.Script(cftest.Fail(500, 10001, "Internal server error"))
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.RateLimit = cloudflare.RateLimit{Requests: 1, Per: time.Hour}
	})
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	assertQueuedTooLong(t, err, "after 1 attempt:", "local rate limit", "last error: cloudflare: POST ", "500 Internal Server Error")
	if got := len(srv.Calls()); got != 1 {
		t.Errorf("fake saw %d calls, want 1: the retry must wait for the limiter", got)
	}
}

func TestRevokeUser_rateLimitBeforeLocalWaitIsNotWrapped(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	srv.Script(cftest.RateLimited(0)) // no Retry-After: a short backoff
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.RateLimit = cloudflare.RateLimit{Requests: 1, Per: time.Hour}
	})
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	// Cloudflare's earlier 429 is quoted, but errors.As must not find it.
	assertQueuedTooLong(t, err, "after 1 attempt:", "last error:", "429 Too Many Requests")
}

func TestVerifyToken_sharesLimiter(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.RateLimit = cloudflare.RateLimit{Requests: 1, Per: time.Hour}
	})
	if _, err := client.VerifyToken(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	assertQueuedTooLong(t, err, "local rate limit")
	_, err = client.VerifyAccountToken(ctxT(t))
	assertQueuedTooLong(t, err, "verify token: cloudflare: GET /accounts/", "local rate limit")
	if got := len(srv.Calls()); got != 0 {
		t.Errorf("fake saw %d revoke_user calls, want 0", got)
	}
}

func TestMaxInFlight(t *testing.T) {
	t.Parallel()
	const n = 10
	srv := cftest.NewServer(t)
	for range n {
		srv.Script(cftest.Response{Delay: 50 * time.Millisecond})
	}
	client := newFakeClient(t, srv, func(o *cloudflare.Options) { o.MaxInFlight = 2 })
	for i, err := range burst(t, client, n) {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if got := srv.MaxConcurrent(); got != 2 {
		t.Errorf("fake saw at most %d concurrent calls, want MaxInFlight = 2", got)
	}
	if got := len(srv.Calls()); got != n {
		t.Errorf("fake saw %d calls, want %d", got, n)
	}
}

// TestMaxInFlight_slotFreeDuringBackoff: a call sleeping before its retry
// does not hold its slot.
func TestMaxInFlight_slotFreeDuringBackoff(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	srv.Script(cftest.RateLimited(1)) // the first call then sleeps 1 s
	client := newFakeClient(t, srv, func(o *cloudflare.Options) { o.MaxInFlight = 1 })

	first := make(chan error, 1)
	go func() {
		resp, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "first@example.com"})
		if err == nil && resp.Attempts != 2 {
			err = fmt.Errorf("attempts = %d, want 2", resp.Attempts)
		}
		first <- err
	}()
	srv.WaitCalls(t, 1, 5*time.Second)

	start := time.Now()
	if _, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "second@example.com"}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("second call took %s; the only slot was held during the first call's backoff", d)
	}
	select {
	case err := <-first:
		t.Errorf("first call ended (%v) before the second; want it still waiting to retry", err)
	default:
	}
	if err := <-first; err != nil {
		t.Errorf("first call: %v", err)
	}
}

func TestMaxInFlight_waitForSlotRespectsContext(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	srv.Script(cftest.Response{Delay: time.Minute})
	client := newFakeClient(t, srv, func(o *cloudflare.Options) { o.MaxInFlight = 1 })

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _, _ = client.RevokeUser(ctx, cloudflare.RevokeUserParams{Email: "slow@example.com"}) }()
	srv.WaitCalls(t, 1, 5*time.Second) // it holds the only slot

	qctx, qcancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer qcancel()
	start := time.Now()
	_, err := client.RevokeUser(qctx, cloudflare.RevokeUserParams{Email: "queued@example.com"})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("returned after %s, want about 100ms", d)
	}
	assertQueuedTooLong(t, err, "all 1 in-flight slots busy (Options.MaxInFlight)")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if got := len(srv.Calls()); got != 1 {
		t.Errorf("fake saw %d calls, want 1", got)
	}
}

func TestRateLimit_String(t *testing.T) {
	t.Parallel()
	if got, want := cloudflare.DefaultRateLimit.String(), "1200 requests per 5m0s"; got != want {
		t.Errorf("DefaultRateLimit.String() = %q, want %q", got, want)
	}
	opts := cloudflare.Options{APIToken: testToken, RateLimit: cloudflare.RateLimit{Requests: 7, Per: time.Second}, MaxInFlight: 3}
	if s := opts.String(); !strings.Contains(s, "RateLimit:{Requests:7 Per:1s} MaxInFlight:3") {
		t.Errorf("Options.String() = %q, want the pacing shown", s)
	}
}

// BenchmarkRevokeUser measures one RevokeUser against the fake, one call at
// a time, with a limit so high the limiter never waits: what pacing costs
// when it does not hold anything back.
func BenchmarkRevokeUser(b *testing.B) {
	srv := cftest.NewServer(b)
	client, err := cloudflare.New(cloudflare.Options{
		BaseURL:   srv.URL(),
		APIToken:  srv.APIToken(),
		AccountID: srv.AccountID(),
		RateLimit: cloudflare.RateLimit{Requests: 1 << 40, Per: time.Second},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	p := cloudflare.RevokeUserParams{Email: "a@b.c"}
	for b.Loop() {
		if _, err := client.RevokeUser(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}
