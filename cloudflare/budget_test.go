package cloudflare_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revokebot/revokebot/cloudflare"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// fakeBudget is a shared budget that hands out the waits in waits, one per
// reservation, and records what was asked of it.
type fakeBudget struct {
	mu       sync.Mutex
	waits    []time.Duration
	err      error
	asked    int
	name     string
	interval time.Duration
	burst    int
}

func (b *fakeBudget) Reserve(_ context.Context, name string, interval time.Duration, burst int) (time.Duration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.asked++
	b.name, b.interval, b.burst = name, interval, burst
	if b.err != nil {
		return 0, b.err
	}
	if len(b.waits) == 0 {
		return 0, nil
	}
	w := b.waits[0]
	b.waits = b.waits[1:]
	return w, nil
}

// With a shared budget, every attempt takes its turn there (not in the
// Client's own limiter), and waits as long as the budget says.
func TestSharedBudgetPacesEveryAttempt(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	budget := &fakeBudget{waits: []time.Duration{0, 300 * time.Millisecond}}
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.RateLimit = cloudflare.RateLimit{Requests: 1, Per: time.Hour} // the Client alone would wait an hour
		o.Budget = budget
	})
	start := time.Now()
	for range 2 {
		if _, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "alice@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("two calls took %s; the budget asked the second to wait 300ms", took)
	}
	if budget.asked != 2 || budget.name != "cloudflare" || budget.burst != 1 {
		t.Errorf("budget asked %d times for %q with burst %d; want 2 for \"cloudflare\" with 1", budget.asked, budget.name, budget.burst)
	}
	if want := time.Hour + time.Second; budget.interval != want {
		t.Errorf("interval %s, want %s (Per plus the slack, over one refill)", budget.interval, want)
	}
}

// A budget past the caller's deadline fails at once with ErrQueuedTooLong.
func TestSharedBudgetPastTheDeadline(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.Budget = &fakeBudget{waits: []time.Duration{time.Hour}}
	})
	ctx, cancel := context.WithTimeout(ctxT(t), time.Second)
	defer cancel()
	start := time.Now()
	_, err := client.RevokeUser(ctx, cloudflare.RevokeUserParams{Email: "alice@example.com"})
	if !errors.Is(err, cloudflare.ErrQueuedTooLong) || time.Since(start) > 500*time.Millisecond {
		t.Errorf("err = %v after %s, want ErrQueuedTooLong at once", err, time.Since(start))
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("Cloudflare saw %d calls", n)
	}
}

// A budget that does not answer (its database is down) leaves the Client
// pacing itself: the revocation still goes.
func TestSharedBudgetDownFallsBackToOwnPace(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	var logs bytes.Buffer
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.Budget = &fakeBudget{err: errors.New("connection refused")}
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	if _, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "alice@example.com"}); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	if !strings.Contains(logs.String(), "pacing this replica alone") {
		t.Errorf("no warning in the Client's logger: %q", logs.String())
	}
	if n := len(srv.Calls()); n != 1 {
		t.Errorf("Cloudflare saw %d calls, want 1", n)
	}
}

// stuckBudget never answers until its caller gives up, as a budget whose
// database is partitioned away.
type stuckBudget struct{}

func (stuckBudget) Reserve(ctx context.Context, _ string, _ time.Duration, _ int) (time.Duration, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

// A budget that hangs is given up on after a short while: the revocation
// goes, paced by the Client alone.
func TestSharedBudgetThatHangsIsGivenUp(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	client := newFakeClient(t, srv, func(o *cloudflare.Options) {
		o.Budget = stuckBudget{}
		o.Logger = slog.New(slog.DiscardHandler)
	})
	ctx, cancel := context.WithTimeout(ctxT(t), 30*time.Second)
	defer cancel()
	if _, err := client.RevokeUser(ctx, cloudflare.RevokeUserParams{Email: "alice@example.com"}); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	if n := len(srv.Calls()); n != 1 {
		t.Errorf("Cloudflare saw %d calls, want 1", n)
	}
}
