package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/revokebot/revokebot/approvals"
)

// WithTx runs fn in a transaction on the tables themselves, committed if fn
// returns nil and rolled back otherwise, for tools that write a whole
// history at once (approvals/dbcopy): fn keeps the Store's invariants
// itself. As with the Store's methods, an error saying that the server
// cannot be reached wraps approvals.ErrUnavailable.
func (d *DB) WithTx(ctx context.Context, fn func(pgx.Tx) error) error {
	// A whole history may take longer than one call of the Store: only ctx
	// bounds it.
	err := d.within(ctx, 0, func(ctx context.Context, c *pgxpool.Conn) error { return pgx.BeginFunc(ctx, c, fn) })
	if err != nil && !errors.Is(err, approvals.ErrUnavailable) && unavailable(err) {
		return fmt.Errorf("%w (%w)", approvals.ErrUnavailable, err)
	}
	return err
}
