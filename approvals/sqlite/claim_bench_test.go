package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// BenchmarkClaim measures a courier's share of one delivery: claim it,
// mark it delivered. The events are recorded before the clock starts. It
// matches approvals/postgres's BenchmarkClaim, for comparing the stores.
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
