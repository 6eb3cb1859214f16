package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
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

// TestWriterReplacesAClosedConnection: a write connection closed under the
// writer (database/sql gives it up after a driver.ErrBadConn) fails one
// batch at most; the next opens a new connection and commits.
func TestWriterReplacesAClosedConnection(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "conn.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.w.doAlone(ctx, func(conn *sql.Conn) error { return conn.Close() }); err != nil {
		t.Fatal(err)
	}
	write := func() error { return d.SetMessage(ctx, "no-such-request", "C1", "1.2") }
	first := write()
	if second := write(); second == nil || !strings.Contains(second.Error(), "not found") {
		t.Fatalf("writes after the connection closed: %v, then %v; want the second to reach the database (not found)", first, second)
	}
}
