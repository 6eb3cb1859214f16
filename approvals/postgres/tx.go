package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/revokebot/revokebot/approvals"
)

// WithTx runs fn in a transaction on the tables themselves, committed if fn
// returns nil and rolled back otherwise, for tools that write a whole
// history at once (approvals/dbcopy): fn keeps the Store's invariants
// itself. As with the Store's methods, an error saying that the server
// cannot be reached wraps approvals.ErrUnavailable.
func (d *DB) WithTx(ctx context.Context, fn func(pgx.Tx) error) error {
	err := d.inTx(ctx, fn)
	if err != nil && !errors.Is(err, approvals.ErrUnavailable) && unavailable(err) {
		return fmt.Errorf("%w (%w)", approvals.ErrUnavailable, err)
	}
	return err
}
