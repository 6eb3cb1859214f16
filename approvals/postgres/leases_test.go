package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestLeaseAcrossHandles: a lease taken through one handle holds for
// another, as for another replica.
func TestLeaseAcrossHandles(t *testing.T) {
	t.Parallel()
	a, url := MustOpen(t)
	b := openURL(t, url)
	ctx := context.Background()
	if ok, err := a.Lease(ctx, "execute:1", "replica-a", time.Minute); err != nil || !ok {
		t.Fatalf("a's Lease = %v, %v; want true", ok, err)
	}
	if ok, err := b.Lease(ctx, "execute:1", "replica-b", time.Minute); err != nil || ok {
		t.Fatalf("b's Lease = %v, %v; want false while a holds it", ok, err)
	}
	held, err := b.HeldLeases(ctx)
	if err != nil || len(held) != 1 || held[0].Owner != "replica-a" || held[0].Until.Location() != time.UTC {
		t.Fatalf("HeldLeases = %+v, %v", held, err)
	}
	if err := a.Release(ctx, "execute:1", "replica-a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Lease(ctx, "execute:1", "replica-b", time.Minute); err != nil || !ok {
		t.Fatalf("b's Lease after a released = %v, %v; want true", ok, err)
	}
}

// TestReserve: callers on two handles share one budget: burst calls go at
// once, then one every interval. The interval is long (an hour), so that
// the time the calls take is lost in it: the waits are checked, never
// waited for.
func TestReserve(t *testing.T) {
	t.Parallel()
	a, url := MustOpen(t)
	b := openURL(t, url)
	ctx := context.Background()
	const (
		callers  = 12
		burst    = 3
		interval = time.Hour
		slack    = 10 * time.Second
	)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		mu    sync.Mutex
		waits []time.Duration
	)
	for i := range callers {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Go(func() {
			<-start
			w, err := db.Reserve(ctx, "cloudflare", interval, burst)
			if err != nil {
				t.Errorf("Reserve: %v", err)
				return
			}
			mu.Lock()
			waits = append(waits, w)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	slices.Sort(waits)
	if len(waits) != callers {
		t.Fatalf("%d reservations, want %d", len(waits), callers)
	}
	var sum time.Duration
	for i, w := range waits {
		want := time.Duration(max(0, i+1-burst)) * interval
		if w > want || w < want-slack {
			t.Errorf("wait %d = %s, want about %s", i, w, want)
		}
		sum += w
	}
	// The waits sum to 1+2+…+(callers-burst) intervals, less the time the
	// calls took.
	n := callers - burst
	if want := time.Duration(n*(n+1)/2) * interval; sum > want || sum < want-time.Duration(n)*slack {
		t.Errorf("waits sum to %s, want about %s: %v", sum, want, waits)
	}
	// Another budget is untouched.
	if w, err := b.Reserve(ctx, "other", interval, 1); err != nil || w != 0 {
		t.Errorf("Reserve of another budget = %s, %v; want 0", w, err)
	}
	if _, err := b.Reserve(ctx, "bad", 0, 1); err == nil {
		t.Error("Reserve with no interval succeeded")
	}
}

// TestReserveRefills: a budget unused for a while has room again.
func TestReserveRefills(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	const interval = 200 * time.Millisecond
	var waits []string
	for range 2 {
		w, err := db.Reserve(ctx, "b", interval, 1)
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, fmt.Sprint(w > 0))
	}
	time.Sleep(3 * interval)
	if w, err := db.Reserve(ctx, "b", interval, 1); err != nil || w != 0 {
		t.Errorf("Reserve after the budget refilled = %s, %v; want 0", w, err)
	}
	if !slices.Equal(waits, []string{"false", "true"}) {
		t.Errorf("waits positive: %v; want the second only", waits)
	}
}
