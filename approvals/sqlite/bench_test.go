package sqlite_test

import (
	"testing"

	"github.com/revokebot/revokebot/approvals/storetest"
)

// The benchmarks are storetest's, run on a database file here and on a
// PostgreSQL schema in approvals/postgres, for comparing the stores.

// BenchmarkRequestLifecycle runs storetest.BenchRequestLifecycle.
func BenchmarkRequestLifecycle(b *testing.B) {
	db, _ := MustOpen(b)
	storetest.BenchRequestLifecycle(b, db)
}

// BenchmarkBulkRequest runs storetest.BenchBulkRequest.
func BenchmarkBulkRequest(b *testing.B) {
	db, _ := MustOpen(b)
	storetest.BenchBulkRequest(b, db)
}

// BenchmarkClaim runs storetest.BenchClaim.
func BenchmarkClaim(b *testing.B) {
	db, _ := MustOpen(b)
	storetest.BenchClaim(b, db)
}

// BenchmarkParallelLifecycle runs storetest.BenchParallelLifecycle with 16
// goroutines a core, as a burst of commands and clicks does.
func BenchmarkParallelLifecycle(b *testing.B) {
	db, _ := MustOpen(b)
	storetest.BenchParallelLifecycle(b, db, 16)
}
