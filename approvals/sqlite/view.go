package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// View runs fn in a transaction that sees the whole database as it stands,
// for tools that read the tables directly (approvals/dbcopy). The
// transaction holds the write lock from its start, so that no other process
// changes the file until fn returns, and it is rolled back: fn changes
// nothing. fn must not call d's other methods: d has one connection, which
// fn holds.
func (d *DB) View(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see Open)
	if err != nil {
		return fmt.Errorf("begin reading the database: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}
