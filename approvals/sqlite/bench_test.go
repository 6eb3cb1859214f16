package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// BenchmarkRequestLifecycle measures the store's share of one request:
// create, read, approve (a versioned update), finish, on a real database file.
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
