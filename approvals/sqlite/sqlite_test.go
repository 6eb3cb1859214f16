package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
)

// MustOpen opens a fresh database in a temporary directory.
func MustOpen(tb testing.TB) (*sqlite.DB, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "revokebot.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, path
}

func newRequest() approvals.Request {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return approvals.Request{
		ID:         uuid.NewString(),
		Revocation: approvals.Revocation{Email: "alice@example.com", Devices: true, WARPReauth: true, UserUID: uuid.NewString()},
		Reason:     "laptop stolen",
		Requester:  "U1",
		State:      approvals.StatePending,
		DryRun:     true,
		CreatedAt:  now,
		ExpiresAt:  now.Add(time.Hour),
	}
}

// eventOf returns an event of kind about r, as it stands after the event.
func eventOf(kind approvals.EventKind, r approvals.Request) approvals.Event {
	return approvals.Event{Kind: kind, Request: r, Actor: r.DecidedBy, At: time.Now().UTC().Truncate(time.Millisecond)}
}

func TestCreateGetRoundTrip(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	want := newRequest()
	if err := db.Create(ctx, want, eventOf(approvals.EventRequested, want)); err != nil {
		t.Fatal(err)
	}
	got, err := db.Get(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if err := db.Create(ctx, want, eventOf(approvals.EventRequested, want)); err == nil {
		t.Fatal("creating the same ID twice succeeded")
	}
}

func TestGetNotFound(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	_, err := db.Get(context.Background(), uuid.NewString())
	if !errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if err := db.SetMessage(context.Background(), uuid.NewString(), "C1", "1.2"); !errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("SetMessage err = %v, want ErrNotFound", err)
	}
}

func TestSetMessageSurvivesReopen(t *testing.T) {
	t.Parallel()
	db, path := MustOpen(t)
	ctx := context.Background()
	r := newRequest()
	if err := db.Create(ctx, r, eventOf(approvals.EventRequested, r)); err != nil {
		t.Fatal(err)
	}
	if err := db.SetMessage(ctx, r.ID, "C123", "1700000000.000100"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	again, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got, err := again.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Channel != "C123" || got.MessageTS != "1700000000.000100" {
		t.Fatalf("message = %q/%q after reopen", got.Channel, got.MessageTS)
	}
	if v, err := again.SchemaVersion(ctx); err != nil || v != 3 {
		t.Fatalf("schema version = %d, %v; want 2", v, err)
	}
}

func TestCompareAndSwap(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	r := newRequest()
	if err := db.Create(ctx, r, eventOf(approvals.EventRequested, r)); err != nil {
		t.Fatal(err)
	}
	next := r
	next.State = approvals.StateExecuting
	next.DecidedBy = "U2"
	next.DecidedAt = r.CreatedAt.Add(time.Minute)
	if err := db.CompareAndSwap(ctx, approvals.StatePending, next, eventOf(approvals.EventApproved, next)); err != nil {
		t.Fatal(err)
	}
	// The same swap again must fail: the request is no longer pending.
	if err := db.CompareAndSwap(ctx, approvals.StatePending, next, eventOf(approvals.EventApproved, next)); !errors.Is(err, approvals.ErrConflict) {
		t.Fatalf("second swap err = %v, want ErrConflict", err)
	}
	got, _ := db.Get(ctx, r.ID)
	if got.State != approvals.StateExecuting || got.DecidedBy != "U2" || !got.DecidedAt.Equal(next.DecidedAt) {
		t.Fatalf("stored %+v", got)
	}
	missing := newRequest()
	if err := db.CompareAndSwap(ctx, approvals.StatePending, missing, eventOf(approvals.EventApproved, missing)); !errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("swap of a missing request: err = %v, want ErrNotFound", err)
	}
}

func TestCompareAndSwapConcurrentExactlyOneWins(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	r := newRequest()
	if err := db.Create(ctx, r, eventOf(approvals.EventRequested, r)); err != nil {
		t.Fatal(err)
	}
	const n = 32
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for i := range n {
		wg.Go(func() {
			next := r
			next.State = approvals.StateExecuting
			next.DecidedBy = "U" + string(rune('A'+i%26))
			err := db.CompareAndSwap(ctx, approvals.StatePending, next, eventOf(approvals.EventApproved, next))
			if err == nil {
				mu.Lock()
				wins = append(wins, next.DecidedBy)
				mu.Unlock()
			} else if !errors.Is(err, approvals.ErrConflict) {
				t.Errorf("swap: %v", err)
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d swaps won, want exactly 1", len(wins))
	}
	got, _ := db.Get(ctx, r.ID)
	if got.DecidedBy != wins[0] {
		t.Fatalf("stored decider %q, winner %q", got.DecidedBy, wins[0])
	}
	// Only the winning swap left an event: requested + one approved.
	if n, err := db.Backlog(ctx); err != nil || n != 2 {
		t.Fatalf("events recorded = %d, %v; want 2", n, err)
	}
}

func TestListByState(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Millisecond)
	var pendingIDs []string
	for i := range 4 {
		r := newRequest()
		r.CreatedAt = base.Add(time.Duration(-i) * time.Minute) // newest first on insert
		if i == 2 {
			r.State = approvals.StateRefused
		} else {
			pendingIDs = append([]string{r.ID}, pendingIDs...)
		}
		if err := db.Create(ctx, r, eventOf(approvals.EventRequested, r)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.ListByState(ctx, approvals.StatePending)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(pendingIDs) {
		t.Fatalf("got %d pending, want %d", len(got), len(pendingIDs))
	}
	for i := range got {
		if got[i].ID != pendingIDs[i] {
			t.Fatalf("order: got[%d] = %s, want %s (oldest first)", i, got[i].ID, pendingIDs[i])
		}
	}
	if none, err := db.ListByState(ctx, approvals.StateRevoked); err != nil || len(none) != 0 {
		t.Fatalf("revoked = %v, %v; want none", none, err)
	}
}

func TestOpenBadPath(t *testing.T) {
	t.Parallel()
	_, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "missing-dir", "x.db"))
	if err == nil {
		t.Fatal("opening a database in a missing directory succeeded")
	}
	if _, err := sqlite.Open(context.Background(), ""); err == nil {
		t.Fatal("empty path accepted")
	}
}
