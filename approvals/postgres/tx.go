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

// The store's transactions are sent as batches of statements (pgx.Batch:
// one round trip each, the statements prepared once per connection), the
// first beginning with beginSQL and the last ending with commitSQL, so that
// a transaction that needs no answer midway is one round trip.
//
// Transactions are READ COMMITTED whatever the server's default: each
// statement sees what was committed before it began, which the store's
// advisory locks rely on. The server runs a batch's statements one after
// the other, so a statement queued after a lock's sees what the lock's
// previous holder committed (the chain's previous hash is read after its
// lock is granted, not at the transaction's first statement).
const (
	beginSQL  = `BEGIN ISOLATION LEVEL READ COMMITTED`
	commitSQL = `COMMIT`
)

// inBatches runs fn on a connection of the pool, within callTimeout (see
// with): fn sends one transaction on c as batches (see beginSQL), and must
// use the context it is given. If fn returns with the transaction still
// open (a statement failed, or fn stopped between batches), it is rolled
// back; a connection that cannot roll back is closed by the pool.
func (d *DB) inBatches(ctx context.Context, fn func(context.Context, *pgx.Conn) error) error {
	return d.with(ctx, func(ctx context.Context, pc *pgxpool.Conn) error {
		c := pc.Conn()
		err := fn(ctx, c)
		if !c.IsClosed() && c.PgConn().TxStatus() != 'I' {
			if _, rbErr := c.Exec(ctx, `ROLLBACK`); rbErr != nil && err == nil {
				err = fmt.Errorf("roll back: %w", rbErr)
			}
			if err == nil {
				err = errors.New("transaction left open")
			}
		}
		return err
	})
}

// send sends b and reads its results, running their functions in order; it
// returns the first error.
func send(ctx context.Context, q querier, b *pgx.Batch) error {
	return q.SendBatch(ctx, b).Close()
}
