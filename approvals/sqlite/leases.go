package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// Lease implements approvals.Leases. One SQLite file serves the processes
// of one machine, whose clock they share.
func (d *DB) Lease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if owner == "" {
		return false, fmt.Errorf("lease %s: no owner", name)
	}
	var holder string
	err := d.write(ctx, func(ctx context.Context, tx *wtx) error {
		now := time.Now().UnixMilli()
		err := tx.QueryRowContext(ctx, `INSERT INTO leases (name, owner, until) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
			WHERE leases.owner = excluded.owner OR leases.until <= ?
			RETURNING owner`, name, owner, now+ttl.Milliseconds(), now).Scan(&holder)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // held by another
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("lease %s for %s: %w", name, owner, err)
	}
	return holder == owner, nil
}

// Renew implements approvals.Leases.
func (d *DB) Renew(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	var n int64
	err := d.write(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE leases SET until = ? WHERE name = ? AND owner = ?`,
			time.Now().UnixMilli()+ttl.Milliseconds(), name, owner)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("renew lease %s of %s: %w", name, owner, err)
	}
	return n == 1, nil
}

// Release implements approvals.Leases.
func (d *DB) Release(ctx context.Context, name, owner string) error {
	err := d.write(ctx, func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND owner = ?`, name, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s of %s: %w", name, owner, err)
	}
	return nil
}

// HeldLeases implements approvals.Leases.
func (d *DB) HeldLeases(ctx context.Context) ([]approvals.Lease, error) {
	rows, err := d.read.QueryContext(ctx, `SELECT name, owner, until FROM leases WHERE until > ? ORDER BY name`, time.Now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	defer rows.Close()
	var out []approvals.Lease
	for rows.Next() {
		var (
			l     approvals.Lease
			until int64
		)
		if err := rows.Scan(&l.Name, &l.Owner, &until); err != nil {
			return nil, fmt.Errorf("list leases: %w", err)
		}
		l.Until = fromMillis(until)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return out, nil
}

// ReleaseAll ends every lease and every delivery claim, whoever holds them.
// A SQLite file serves one process at a time: at its start, whatever a
// predecessor held (it was killed, or crashed) is free, and waiting for
// those leases to end would only delay the work.
func (d *DB) ReleaseAll(ctx context.Context) error {
	err := d.write(ctx, func(ctx context.Context, tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM leases`); err != nil {
			return err
		}
		for _, part := range []approvals.Part{approvals.AuditRecord, approvals.MessageUpdate, approvals.Notice} {
			where, _, _ := due(part)
			ownerCol, untilCol := claimColumns(part)
			if _, err := tx.ExecContext(ctx, `UPDATE events SET `+ownerCol+` = '', `+untilCol+` = 0
				WHERE `+strings.ReplaceAll(where, "e.", "")+` AND `+ownerCol+` != ''`); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release leases and claims left by an earlier process: %w", err)
	}
	return nil
}
