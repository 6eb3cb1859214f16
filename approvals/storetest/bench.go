package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// The benchmarks, written once so that the stores are measured alike. Each
// store runs them from a BenchmarkX of its own on a store it opened, new
// and empty.

// finish returns an UpdateFunc that records target i revoked.
func finish(i int) approvals.UpdateFunc {
	return func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Targets[i].State, cur.Targets[i].FinishedAt = approvals.TargetRevoked, time.Now()
		return cur, []approvals.Event{{Kind: approvals.EventRevoked, Target: cur.Targets[i].Email, At: time.Now()}}, nil
	}
}

// mustUpdate is Update, failing tb on an error.
func mustUpdate(tb testing.TB, s approvals.Store, id string, fn approvals.UpdateFunc) {
	tb.Helper()
	if _, err := s.Update(ctx, id, fn); err != nil {
		tb.Fatalf("Update: %v", err)
	}
}

// BenchRequestLifecycle measures the store's share of one request: create,
// read, approve (a versioned update), finish.
func BenchRequestLifecycle(b *testing.B, s approvals.Store) {
	b.ReportAllocs()
	for b.Loop() {
		r := mustCreate(b, s, newRequest("UREQ", "alice@example.com"))
		mustUpdate(b, s, r.ID, approve("UAPP", time.Now()))
		mustUpdate(b, s, r.ID, finish(0))
	}
}

// BenchBulkRequest measures a request of 50 targets (the default
// REVOKEBOT_MAX_TARGETS): create, approve, then one update per target's
// outcome, as Execute records them.
func BenchBulkRequest(b *testing.B, s approvals.Store) {
	emails := make([]string, 50)
	for i := range emails {
		emails[i] = fmt.Sprintf("user%02d@example.com", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		r := newRequest("UREQ", emails...)
		if err := s.Create(ctx, r, requested(r), 0); err != nil {
			b.Fatalf("Create: %v", err)
		}
		mustUpdate(b, s, r.ID, approve("UAPP", time.Now()))
		for i := range r.Targets {
			mustUpdate(b, s, r.ID, finish(i))
		}
	}
}

// BenchClaim measures a courier's share of one delivery: claim it, mark it
// delivered. The events are recorded before the clock starts.
func BenchClaim(b *testing.B, s approvals.Store) {
	o := outbox(b, s)
	for range b.N {
		r := newRequest("UREQ", "alice@example.com")
		if err := s.Create(ctx, r, requested(r), 0); err != nil {
			b.Fatalf("Create: %v", err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ds, err := o.Claim(ctx, approvals.AuditRecord, "replica-a", 1, time.Minute)
		if err != nil || len(ds) != 1 {
			b.Fatalf("Claim = %d, %v", len(ds), err)
		}
		if err := o.MarkDelivered(ctx, ds[0].Seq, approvals.AuditRecord); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchParallelLifecycle is BenchRequestLifecycle from many goroutines at
// once (GOMAXPROCS × parallelism, as b.SetParallelism says), as a burst of
// commands and clicks drives the store: what group commit is for.
func BenchParallelLifecycle(b *testing.B, s approvals.Store, parallelism int) {
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := newRequest("UREQ", "alice@example.com")
			if err := s.Create(ctx, r, requested(r), 0); err != nil {
				b.Errorf("Create: %v", err)
				return
			}
			if _, err := s.Update(ctx, r.ID, approve("UAPP", time.Now())); err != nil {
				b.Errorf("Update: %v", err)
				return
			}
			if _, err := s.Update(ctx, r.ID, finish(0)); err != nil {
				b.Errorf("Update: %v", err)
				return
			}
		}
	})
}
