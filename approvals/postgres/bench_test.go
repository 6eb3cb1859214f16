package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/revokebot/revokebot/approvals/postgres"
	"github.com/revokebot/revokebot/approvals/storetest"
)

// The benchmarks are storetest's, run on a schema of their own here and on
// a database file in approvals/sqlite, for comparing the stores. They need
// REVOKEBOT_TEST_POSTGRES_URL, like the tests.

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

// BenchmarkChainLock measures how long the chain's lock is held for each
// transaction that records an event: the event log's commits are made one
// after the other, cluster-wide, for that long each. While the lifecycle
// runs (one goroutine, then 32), another connection looks every
// millisecond whether one of the store's connections holds the lock; the
// share of looks that find it held, times the time, over the events
// recorded, is the time held per event (each lifecycle records three, one
// per transaction). Run it alone: it is a sample, and a busy machine
// stretches what it measures.
func BenchmarkChainLock(b *testing.B) {
	for _, bc := range []struct {
		name        string
		parallelism int // goroutines a core; 0: one goroutine
	}{{"serial", 0}, {"parallel", 16}} {
		b.Run(bc.name, func(b *testing.B) {
			app := "revokebot-bench-" + uuid.NewString()[:8]
			url := withSetting(b, newSchema(b), "application_name", app)
			db := openURL(b, url)
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(ctx)
			var (
				looks, held int
				done        = make(chan struct{})
				stopped     = make(chan struct{})
			)
			go func() {
				defer close(stopped)
				for {
					select {
					case <-done:
						return
					case <-time.After(time.Millisecond):
					}
					var h bool
					if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
						WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = 0 AND l.objsubid = 2 AND l.granted
							AND a.application_name = $2)`, postgres.ChainLockClass, app).Scan(&h); err != nil {
						b.Error(err)
						return
					}
					looks++
					if h {
						held++
					}
				}
			}()
			start := time.Now()
			if bc.parallelism == 0 {
				storetest.BenchRequestLifecycle(b, db)
			} else {
				storetest.BenchParallelLifecycle(b, db, bc.parallelism)
			}
			elapsed := time.Since(start)
			close(done)
			<-stopped
			if looks == 0 {
				return
			}
			share := float64(held) / float64(looks)
			b.ReportMetric(100*share, "%held")
			b.ReportMetric(share*float64(elapsed.Microseconds())/float64(3*b.N), "µs-held/event")
		})
	}
}
