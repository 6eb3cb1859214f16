package sqlite_test

import (
	"context"
	"testing"

	"github.com/revokebot/revokebot/approvals"
)

// BenchmarkRequestLifecycle measures the store's share of one request:
// create, read, decide (compare-and-swap), finish, on a real database file.
func BenchmarkRequestLifecycle(b *testing.B) {
	db, _ := MustOpen(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r := newRequest()
		if err := db.Create(ctx, r, eventOf(approvals.EventRequested, r)); err != nil {
			b.Fatal(err)
		}
		got, err := db.Get(ctx, r.ID)
		if err != nil {
			b.Fatal(err)
		}
		next := got
		next.State = approvals.StateExecuting
		if err := db.CompareAndSwap(ctx, approvals.StatePending, next, eventOf(approvals.EventApproved, next)); err != nil {
			b.Fatal(err)
		}
		done := next
		done.State = approvals.StateRevoked
		if err := db.CompareAndSwap(ctx, approvals.StateExecuting, done, eventOf(approvals.EventRevoked, done)); err != nil {
			b.Fatal(err)
		}
	}
}
