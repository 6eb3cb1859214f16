package sqlite_test

import (
	"context"
	"fmt"
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
