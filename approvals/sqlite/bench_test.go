package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/approvals/storetest"
)

// The benchmarks are storetest's, run on a database file here and on a
// PostgreSQL schema in approvals/postgres, for comparing the stores. Each
// reports, besides time, the COMMITs and the statements (on the write
// connection and on the reads') per iteration.

// BenchmarkRequestLifecycle runs storetest.BenchRequestLifecycle.
func BenchmarkRequestLifecycle(b *testing.B) {
	db, _ := MustOpen(b)
	defer reportCounts(b, db)()
	storetest.BenchRequestLifecycle(b, db)
}

// BenchmarkBulkRequest runs storetest.BenchBulkRequest.
func BenchmarkBulkRequest(b *testing.B) {
	db, _ := MustOpen(b)
	defer reportCounts(b, db)()
	storetest.BenchBulkRequest(b, db)
}

// BenchmarkClaim runs storetest.BenchClaim. Its counts include the requests
// made before the clock starts.
func BenchmarkClaim(b *testing.B) {
	db, _ := MustOpen(b)
	defer reportCounts(b, db)()
	storetest.BenchClaim(b, db)
}

// BenchmarkParallelLifecycle runs storetest.BenchParallelLifecycle with 16
// goroutines a core, as a burst of commands and clicks does.
func BenchmarkParallelLifecycle(b *testing.B) {
	db, _ := MustOpen(b)
	defer reportCounts(b, db)()
	storetest.BenchParallelLifecycle(b, db, 16)
}

// BenchmarkGet measures reading a request of 1 target and 1 review, and one
// of 50 targets and 2 reviews, each target with a preview: what every click
// and every target's outcome reads first. No write, no fsync: the CPU the
// reads take.
func BenchmarkGet(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			ctx := context.Background()
			db, _ := MustOpen(b)
			now := time.Now().UTC().Truncate(time.Millisecond)
			r := approvals.Request{ID: uuid.NewString(), Requester: "UREQ", Required: 3, Channel: "CAPPROVE",
				Reason: "laptop stolen", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			for i := range n {
				r.Targets = append(r.Targets, approvals.Target{Email: fmt.Sprintf("user%02d@example.com", i), State: approvals.TargetWaiting,
					Look: approvals.Look{State: approvals.LookDone, Preview: approvals.Preview{Known: true, Email: fmt.Sprintf("User%02d@example.com", i),
						UserID: uuid.NewString(), LastLogin: now.Add(-time.Hour), Sessions: 2, Devices: 1, At: now}}})
			}
			for i := range min(n, 2) {
				r.Reviews = append(r.Reviews, approvals.Review{By: fmt.Sprintf("UAPP%d", i), Decision: approvals.Approve, At: now})
			}
			if err := db.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r, At: now}, 0); err != nil {
				b.Fatal(err)
			}
			defer reportCounts(b, db)()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.Get(ctx, r.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reportCounts reads db's counts, and returns a function that reports
// those made since, per iteration.
func reportCounts(b *testing.B, db *sqlite.DB) func() {
	commits, writes, reads := db.Counts()
	return func() {
		c, w, r := db.Counts()
		n := float64(b.N)
		b.ReportMetric(float64(c-commits)/n, "commits/op")
		b.ReportMetric(float64(w-writes)/n, "writes/op")
		b.ReportMetric(float64(r-reads)/n, "reads/op")
	}
}
