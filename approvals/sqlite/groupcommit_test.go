package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
)

// TestConcurrentWritesDurableAndChained: many goroutines writing at once
// (creates, approvals, refusals, message records, leases), as a burst does;
// after a restart, every write is there, and every event is chained after
// the one recorded before it.
func TestConcurrentWritesDurableAndChained(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := MustOpen(t)
	const writers, each = 32, 5
	ids := make([][]string, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				id, err := lifecycle(ctx, db, fmt.Sprintf("U%d", g), fmt.Sprintf("%d-%d", g, i))
				if err != nil {
					t.Errorf("writer %d, request %d: %v", g, i, err)
					return
				}
				ids[g] = append(ids[g], id)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	db.Close()
	db = openAt(t, path)

	links, err := db.Chain(ctx, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := approvals.VerifyChain("", links); err != nil {
		t.Errorf("the chain after a burst: %v", err)
	}
	if got, want := len(links), writers*each*3; got != want {
		t.Errorf("%d events, want %d", got, want)
	}
	kinds := map[string][]approvals.EventKind{}
	for i, l := range links {
		if i > 0 && l.Seq <= links[i-1].Seq {
			t.Errorf("event %d after %d", l.Seq, links[i-1].Seq)
		}
		kinds[l.Event.Request.ID] = append(kinds[l.Event.Request.ID], l.Event.Kind)
	}
	for g := range writers {
		for _, id := range ids[g] {
			r, err := db.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Version != 2 || len(r.Reviews) != 1 || r.MessageTS != "1.2" || r.State() != approvals.StateExecuting {
				t.Errorf("%s after the burst: version %d, %d reviews, message %q, %s", id, r.Version, len(r.Reviews), r.MessageTS, r.State())
			}
			want := []approvals.EventKind{approvals.EventRequested, approvals.EventRefused, approvals.EventApproved}
			if fmt.Sprint(kinds[id]) != fmt.Sprint(want) {
				t.Errorf("%s: events %v, want %v", id, kinds[id], want)
			}
		}
	}
	if held, err := db.HeldLeases(ctx); err != nil || len(held) != writers {
		t.Errorf("%d leases held, %v; want %d", len(held), err, writers)
	}
}

// lifecycle writes a request of requester as a burst does: created, its
// message recorded, a refused click, an approval, a lease.
func lifecycle(ctx context.Context, db *sqlite.DB, requester, n string) (string, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := approvals.Request{ID: uuid.NewString(), Requester: requester, Required: 1, SubmitKey: "submit-" + n,
		Targets:   []approvals.Target{{Email: "t" + n + "@example.com", State: approvals.TargetWaiting}},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: requester, At: now}, 3); err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	if err := db.SetMessage(ctx, r.ID, "C1", "1.2"); err != nil {
		return "", err
	}
	if err := db.Append(ctx, approvals.Event{Kind: approvals.EventRefused, Request: r, Actor: "UX", At: now, Key: "refused-" + n}); err != nil {
		return "", err
	}
	if _, err := db.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "UAPP", Decision: approvals.Approve, At: now})
		return cur, []approvals.Event{{Kind: approvals.EventApproved, Actor: "UAPP", At: now, Key: "approve-" + n}}, nil
	}); err != nil {
		return "", err
	}
	if held, err := db.Lease(ctx, "lease:"+requester, requester, time.Hour); err != nil || !held {
		return "", fmt.Errorf("lease: %v, %v", held, err)
	}
	return r.ID, nil
}

// TestConcurrentCreatesPendingCap: of creates racing for one requester's
// pending cap from many goroutines, exactly the cap's number succeed.
func TestConcurrentCreatesPendingCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := MustOpen(t)
	const n, limit = 40, 4
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			now := time.Now().UTC().Truncate(time.Millisecond)
			r := approvals.Request{ID: uuid.NewString(), Requester: "UREQ", Required: 1,
				Targets:   []approvals.Target{{Email: fmt.Sprintf("u%d@example.com", i), State: approvals.TargetWaiting}},
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			<-start
			errs[i] = db.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r, At: now}, limit)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, approvals.ErrLimit):
			t.Errorf("Create: %v, want nil or ErrLimit", err)
		}
	}
	if n, err := db.CountByRequester(ctx, "UREQ", approvals.StatePending); ok != limit || n != limit || err != nil {
		t.Errorf("%d creates succeeded, %d pending (%v); want %d", ok, n, err, limit)
	}
}

// TestOpenRefusesMemory: an in-memory database would be one per connection.
func TestOpenRefusesMemory(t *testing.T) {
	t.Parallel()
	for _, path := range []string{":memory:", "file::memory:?cache=shared"} {
		if db, err := sqlite.Open(context.Background(), path); err == nil || !strings.Contains(err.Error(), "in-memory") {
			if db != nil {
				db.Close()
			}
			t.Errorf("Open(%q): %v, want a refusal", path, err)
		}
	}
}

// TestReadOnlyWritesRefused: every write through a read-only open fails
// saying so, and reads work.
func TestReadOnlyWritesRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, path := MustOpen(t)
	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	r := approvals.Request{ID: uuid.NewString(), Requester: "U1", Required: 1,
		Targets: []approvals.Target{{Email: "a@example.com", State: approvals.TargetWaiting}}}
	writes := map[string]error{
		"Create":     ro.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r}, 0),
		"Append":     ro.Append(ctx, approvals.Event{Kind: approvals.EventRefused, Request: r}),
		"ReleaseAll": ro.ReleaseAll(ctx),
	}
	_, writes["Lease"] = ro.Lease(ctx, "x", "me", time.Minute)
	_, writes["Claim"] = ro.Claim(ctx, approvals.AuditRecord, "me", 1, time.Minute)
	for name, err := range writes {
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s through a read-only open: %v, want a refusal saying read-only", name, err)
		}
	}
	if err := ro.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if n, err := ro.Backlog(ctx); err != nil || n != 0 {
		t.Errorf("Backlog: %d, %v", n, err)
	}
}
