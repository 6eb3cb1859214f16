package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// SetCallTimeout shortens the bound of each call, so that a test of a
// partition need not wait the full callTimeout.
func (d *DB) SetCallTimeout(t time.Duration) { d.callTimeout = t }

// OpenAdjusted is Open with adjust applied to the pool's configuration
// first, so that a test can watch the connections (count round trips).
func OpenAdjusted(ctx context.Context, url string, adjust func(*pgxpool.Config)) (*DB, error) {
	return open(ctx, url, adjust)
}

// ChainLockClass is the first key of the chain's advisory lock (the second
// is 0), as pg_locks shows it (classid).
const ChainLockClass = uint32(chainLock)
