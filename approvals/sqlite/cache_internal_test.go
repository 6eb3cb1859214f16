package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestPageCachesAreSmall: every connection, the writer's and the reads',
// has the small page cache it is opened with, not SQLite's default of
// 2,000 KiB (which let a burst grow the process by 10 MB for good).
func TestPageCachesAreSmall(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "cache.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var read int
	if err := d.read.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&read); err != nil {
		t.Fatal(err)
	}
	if read != readCacheKiB {
		t.Errorf("read connection's cache_size %d, want %d", read, readCacheKiB)
	}
	var write int
	if err := d.w.doAlone(ctx, func(conn *sql.Conn) error {
		return conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&write)
	}); err != nil {
		t.Fatal(err)
	}
	if write != writeCacheKiB {
		t.Errorf("write connection's cache_size %d, want %d", write, writeCacheKiB)
	}
}
