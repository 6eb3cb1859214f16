// Package sqlite stores approvals.Requests in a SQLite database file, using a
// pure-Go driver so that revokebot builds with CGO_ENABLED=0.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/revokebot/revokebot/approvals"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a SQLite-backed approvals.Store.
type DB struct {
	db *sql.DB
}

var _ approvals.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path and brings its
// schema up to date. The caller must Close it.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	sqlDB, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// One connection serializes writers; SQLite allows only one at a time anyway.
	sqlDB.SetMaxOpenConns(1)
	d := &DB{db: sqlDB}
	if err := d.migrate(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return d, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

// SchemaVersion returns the number of the last migration applied.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := d.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// migrate applies, in order and each in its own transaction, every embedded
// migration numbered above the database's user_version.
func (d *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	current, err := d.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		n, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", base)
		}
		if n <= current {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", base, err)
		}
		if err := d.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", n))
			return err
		}); err != nil {
			return fmt.Errorf("apply migration %s: %w", base, err)
		}
		current = n
	}
	return nil
}

func (d *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

const columns = `id, email, devices, warp_reauth, user_uid, reason, requester, state, dry_run,
	created_at, expires_at, decided_by, decided_at, outcome, finished_at, channel, message_ts, submit_key`

// prefixed returns columns with each name prefixed by a table alias.
func prefixed(alias string) string {
	names := strings.Split(columns, ",")
	for i, n := range names {
		names[i] = alias + "." + strings.TrimSpace(n)
	}
	return strings.Join(names, ", ")
}

// Create implements approvals.Store.
func (d *DB) Create(ctx context.Context, r approvals.Request, e approvals.Event) error {
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		if r.SubmitKey != "" {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM requests WHERE submit_key = ? AND submit_key != ''`, r.SubmitKey).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return approvals.ErrDuplicate
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO requests (`+columns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.Revocation.Email, r.Revocation.Devices, r.Revocation.WARPReauth, r.Revocation.UserUID,
			r.Reason, r.Requester, string(r.State), r.DryRun,
			millis(r.CreatedAt), millis(r.ExpiresAt), r.DecidedBy, millis(r.DecidedAt),
			r.Outcome, millis(r.FinishedAt), r.Channel, r.MessageTS, r.SubmitKey); err != nil {
			return err
		}
		return insertEvent(ctx, tx, r.ID, e)
	})
	if err != nil {
		return fmt.Errorf("insert request %s: %w", r.ID, err)
	}
	return nil
}

// insertEvent appends e, about request id, to the event log and outbox. An
// event whose Key is recorded already is refused with ErrDuplicate.
func insertEvent(ctx context.Context, tx *sql.Tx, id string, e approvals.Event) error {
	if !e.Kind.Valid() {
		return fmt.Errorf("event of unknown kind %q", e.Kind)
	}
	if e.Key != "" {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE key = ?`, e.Key).Scan(&n); err != nil {
			return fmt.Errorf("look up event key: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%s event %s: %w", e.Kind, e.Key, approvals.ErrDuplicate)
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO events (request_id, kind, state, actor, detail, at, message_due, key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		id, string(e.Kind), string(e.Request.State), e.Actor, e.Detail, millis(e.At), e.ShowsOnMessage(), e.Key)
	if err != nil {
		return fmt.Errorf("insert %s event: %w", e.Kind, err)
	}
	return nil
}

// Get implements approvals.Store.
func (d *DB) Get(ctx context.Context, id string) (approvals.Request, error) {
	row := d.db.QueryRowContext(ctx, `SELECT `+columns+` FROM requests WHERE id = ?`, id)
	r, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return approvals.Request{}, fmt.Errorf("get request %s: %w", id, approvals.ErrNotFound)
	}
	if err != nil {
		return approvals.Request{}, fmt.Errorf("get request %s: %w", id, err)
	}
	return r, nil
}

// SetMessage implements approvals.Store.
func (d *DB) SetMessage(ctx context.Context, id, channel, ts string) error {
	res, err := d.db.ExecContext(ctx, `UPDATE requests SET channel = ?, message_ts = ? WHERE id = ?`, channel, ts, id)
	if err != nil {
		return fmt.Errorf("set message of request %s: %w", id, err)
	}
	return expectOne(res, id)
}

// CompareAndSwap implements approvals.Store. The WHERE clause on the state
// makes the swap atomic: of concurrent swaps from one state, one matches.
func (d *DB) CompareAndSwap(ctx context.Context, from approvals.State, r approvals.Request, e approvals.Event) error {
	var swapped bool
	err := d.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE requests SET
			state = ?, dry_run = ?, decided_by = ?, decided_at = ?, outcome = ?, finished_at = ?
			WHERE id = ? AND state = ?`,
			string(r.State), r.DryRun, r.DecidedBy, millis(r.DecidedAt), r.Outcome, millis(r.FinishedAt),
			r.ID, string(from))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n != 1 {
			return err
		}
		swapped = true
		return insertEvent(ctx, tx, r.ID, e)
	})
	if err != nil {
		return fmt.Errorf("update request %s: %w", r.ID, err)
	}
	if swapped {
		return nil
	}
	if _, err := d.Get(ctx, r.ID); err != nil {
		return err
	}
	return fmt.Errorf("update request %s from %s: %w", r.ID, from, approvals.ErrConflict)
}

// Append implements approvals.Store.
func (d *DB) Append(ctx context.Context, e approvals.Event) error {
	if err := d.inTx(ctx, func(tx *sql.Tx) error { return insertEvent(ctx, tx, e.Request.ID, e) }); err != nil {
		return fmt.Errorf("record %s event of request %s: %w", e.Kind, e.Request.ID, err)
	}
	return nil
}

// SeenKey implements approvals.Store.
func (d *DB) SeenKey(ctx context.Context, key string) (bool, error) {
	if key == "" {
		return false, nil
	}
	var seen bool
	err := d.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE key = ?)
		OR EXISTS (SELECT 1 FROM requests WHERE submit_key = ?)`, key, key).Scan(&seen)
	if err != nil {
		return false, fmt.Errorf("look up key %s: %w", key, err)
	}
	return seen, nil
}

// CountByRequester implements approvals.Store.
func (d *DB) CountByRequester(ctx context.Context, requester string, s approvals.State) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM requests WHERE requester = ? AND state = ?`,
		requester, string(s)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count %s requests of %s: %w", s, requester, err)
	}
	return n, nil
}

// CountByState returns how many requests are in state s.
func (d *DB) CountByState(ctx context.Context, s approvals.State) (int, error) {
	var n int
	if err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM requests WHERE state = ?`, string(s)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s requests: %w", s, err)
	}
	return n, nil
}

// ListByState implements approvals.Store.
func (d *DB) ListByState(ctx context.Context, s approvals.State) ([]approvals.Request, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+columns+` FROM requests WHERE state = ? ORDER BY created_at, id`, string(s))
	if err != nil {
		return nil, fmt.Errorf("list %s requests: %w", s, err)
	}
	defer rows.Close()
	var out []approvals.Request
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s requests: %w", s, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s requests: %w", s, err)
	}
	return out, nil
}

func expectOne(res sql.Result, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("request %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("request %s: %w", id, approvals.ErrNotFound)
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

// scan reads a request from the first columns of a row, and any extra
// columns into extra.
func scan(s scanner, extra ...any) (approvals.Request, error) {
	var (
		r                                   approvals.Request
		state                               string
		created, expires, decided, finished int64
	)
	dest := append([]any{&r.ID, &r.Revocation.Email, &r.Revocation.Devices, &r.Revocation.WARPReauth, &r.Revocation.UserUID,
		&r.Reason, &r.Requester, &state, &r.DryRun,
		&created, &expires, &r.DecidedBy, &decided, &r.Outcome, &finished, &r.Channel, &r.MessageTS, &r.SubmitKey}, extra...)
	if err := s.Scan(dest...); err != nil {
		return r, err
	}
	r.State = approvals.State(state)
	if !r.State.Valid() {
		return r, fmt.Errorf("request %s has unknown state %q", r.ID, state)
	}
	r.CreatedAt, r.ExpiresAt = fromMillis(created), fromMillis(expires)
	r.DecidedAt, r.FinishedAt = fromMillis(decided), fromMillis(finished)
	return r, nil
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
