package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// View runs fn in a transaction that sees the whole database as it stands,
// for tools that read the tables directly (approvals/dbcopy). The
// transaction runs on the write connection, between two batches of writes,
// and holds the write lock from its start, so that no other process
// changes the file until fn returns; it is rolled back: fn changes nothing.
// The store's writes wait meanwhile: fn must not make any through d (its
// reads work).
func (d *DB) View(ctx context.Context, fn func(*sql.Tx) error) error {
	if d.w == nil {
		return fmt.Errorf("begin reading the database: %w", errReadOnly)
	}
	return d.w.doAlone(ctx, func(conn *sql.Conn) error {
		tx, err := conn.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see Open)
		if err != nil {
			return fmt.Errorf("begin reading the database: %w", err)
		}
		defer tx.Rollback()
		return fn(tx)
	})
}
