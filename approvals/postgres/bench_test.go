package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// The benchmarks match approvals/sqlite's, for comparing the stores. They
// need REVOKEBOT_TEST_POSTGRES_URL, like the tests.

// BenchmarkRequestLifecycle measures the store's share of one request:
// create, read, approve (a versioned update), finish.
func BenchmarkRequestLifecycle(b *testing.B) {
	db, _ := MustOpen(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r := newRequest()
		create(b, db, r)
		if _, err := db.Get(ctx, r.ID); err != nil {
			b.Fatal(err)
		}
		approveBy(b, db, r.ID, "U2")
		_, err := db.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
			cur.Targets[0].State, cur.Targets[0].FinishedAt = approvals.TargetRevoked, time.Now()
			return cur, []approvals.Event{{Kind: approvals.EventRevoked, Target: cur.Targets[0].Email, At: time.Now()}}, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBulkRequest measures a request of 50 targets (the default
// REVOKEBOT_MAX_TARGETS): create, approve, then one update per target's
// outcome, as Execute records them.
func BenchmarkBulkRequest(b *testing.B) {
	db, _ := MustOpen(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r := newRequest()
		r.Options.UserUID = ""
		r.Targets = nil
		for i := range 50 {
			r.Targets = append(r.Targets, approvals.Target{Email: fmt.Sprintf("user%02d@example.com", i), State: approvals.TargetWaiting})
		}
		create(b, db, r)
		approveBy(b, db, r.ID, "U2")
		for i := range r.Targets {
			_, err := db.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
				cur.Targets[i].State, cur.Targets[i].FinishedAt = approvals.TargetRevoked, time.Now()
				return cur, []approvals.Event{{Kind: approvals.EventRevoked, Target: cur.Targets[i].Email, At: time.Now()}}, nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkClaim measures a courier's share of one delivery: claim it,
// mark it delivered. The events are recorded before the clock starts.
func BenchmarkClaim(b *testing.B) {
	db, _ := MustOpen(b)
	ctx := context.Background()
	for range b.N {
		create(b, db, newRequest())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ds, err := db.Claim(ctx, approvals.AuditRecord, "replica-a", 1, time.Minute)
		if err != nil || len(ds) != 1 {
			b.Fatalf("Claim = %d, %v", len(ds), err)
		}
		if err := db.MarkDelivered(ctx, ds[0].Seq, approvals.AuditRecord); err != nil {
			b.Fatal(err)
		}
	}
}
