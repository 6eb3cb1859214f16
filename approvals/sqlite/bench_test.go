package sqlite_test

import (
	"testing"

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
