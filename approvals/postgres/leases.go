package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/revokebot/revokebot/approvals"
)

// Lease implements approvals.Leases, on the server's clock, in one
// statement: the insert takes a free lease; on conflict, the row is taken
// over only if owner holds it already or its holder's time is up.
func (d *DB) Lease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if owner == "" {
		return false, fmt.Errorf("take lease %s: no owner", name)
	}
	var held bool
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `INSERT INTO leases (name, owner, until) VALUES ($1, $2, now() + $3::interval)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
			WHERE leases.owner = excluded.owner OR leases.until <= now()
			RETURNING owner`, name, owner, ttl)
		if err != nil {
			return err
		}
		owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
		held = len(owners) == 1
		return err
	})
	if err != nil {
		return false, fail(err, "take lease %s for %s", name, owner)
	}
	return held, nil
}

// Renew implements approvals.Leases, on the server's clock.
func (d *DB) Renew(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	var held bool
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `UPDATE leases SET until = now() + $3::interval WHERE name = $1 AND owner = $2`, name, owner, ttl)
		held = tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fail(err, "renew lease %s of %s", name, owner)
	}
	return held, nil
}

// Release implements approvals.Leases.
func (d *DB) Release(ctx context.Context, name, owner string) error {
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND owner = $2`, name, owner)
		return err
	})
	if err != nil {
		return fail(err, "release lease %s of %s", name, owner)
	}
	return nil
}

// HeldLeases implements approvals.Leases. The times are in UTC, to the
// microsecond (the server's precision).
func (d *DB) HeldLeases(ctx context.Context) ([]approvals.Lease, error) {
	var out []approvals.Lease
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `SELECT name, owner, until FROM leases WHERE until > now() ORDER BY name`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (approvals.Lease, error) {
			var l approvals.Lease
			err := row.Scan(&l.Name, &l.Owner, &l.Until)
			l.Until = l.Until.UTC()
			return l, err
		})
		return err
	})
	if err != nil {
		return nil, fail(err, "list held leases")
	}
	return out, nil
}

// Reserve takes one unit of the rate budget name, shared by every process
// using the database, and returns how long the caller must wait before
// spending it: zero while the budget has room. The budget allows burst
// units at once, then one every interval (GCRA, on the server's clock).
// A reservation is never refused or taken back: a caller that does not
// wait spends someone else's share, and one that gives up wastes its own.
//
// The budget's state is one row (its theoretical arrival time, tat), moved
// on by interval in one statement per call: tat = max(tat, now) + interval,
// and the wait is tat - burst×interval - now, if positive. Callers at the
// same moment queue on the row, each getting the next slot.
func (d *DB) Reserve(ctx context.Context, name string, interval time.Duration, burst int) (time.Duration, error) {
	if interval <= 0 {
		return 0, fmt.Errorf("reserve from rate budget %s: interval %s is not positive", name, interval)
	}
	burst = max(burst, 1)
	var tat, now time.Time
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `INSERT INTO rate_budgets (name, tat) VALUES ($1, clock_timestamp() + $2::interval)
			ON CONFLICT (name) DO UPDATE SET tat = GREATEST(rate_budgets.tat, clock_timestamp()) + $2::interval
			RETURNING tat, clock_timestamp()`, name, interval).Scan(&tat, &now)
	})
	if err != nil {
		return 0, fail(err, "reserve from rate budget %s", name)
	}
	return max(0, tat.Sub(now)-time.Duration(burst)*interval), nil
}
