// Package dbcopy moves revokebot's whole history from a SQLite file
// (approvals/sqlite) into an empty PostgreSQL database (approvals/postgres),
// so that a team that ran one instance can go on with several replicas.
//
// Copy writes everything in one PostgreSQL transaction, compares every row
// it wrote with its source before committing, and keeps every event's seq
// (the audit records in chat name it, and a delivery begun before the move
// is found again by it). Verify then reads the history back through the
// Store and Outbox of both databases.
//
// How the columns map (SQLite schema version 5 to PostgreSQL schema
// version 1); every time is Unix milliseconds, 0 for unset, on both sides:
//
//   - requests, targets, reviews: every column of the PostgreSQL table is
//     copied from the SQLite column of the same name; SQLite's 0/1 integers
//     become booleans (devices, warp_reauth, dry_run). The state column is
//     copied as stored, so that ListByState answers alike.
//   - requests.email, decided_by, decided_at and outcome exist in SQLite
//     only: they are the single-target columns of schema 3, which migration
//     0004 turned into targets, reviews, refusal and expired_at, and which
//     new rows fill with the first target's email only. Nothing reads them.
//     They are not copied; Copy reports (Summary.Legacy) any request whose
//     legacy columns hold something found nowhere else in its history.
//   - events: every column but the claims is copied, seq included;
//     message_due and notice_due become booleans (true where SQLite's is 1,
//     the only value its store treats as due). The claims
//     (audit_claim_owner, audit_claim_until and those of message and
//     notice) are not copied: every part starts unclaimed, for whichever
//     replica comes first. PostgreSQL's seq identity is restarted past the
//     highest seq SQLite ever gave out.
//   - leases are not copied: work in progress belongs to the process that
//     held it, and Copy refuses a file whose leases or claims are held.
//   - rate_budgets and schema_migrations exist in PostgreSQL only, and
//     start as postgres.Open leaves them.
package dbcopy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/revokebot/revokebot/approvals/postgres"
	"github.com/revokebot/revokebot/approvals/sqlite"
)

// Summary says what Copy copied.
type Summary struct {
	// Rows copied, per table.
	Requests, Targets, Reviews, Events int64
	// LastSeq is the highest event seq copied, 0 if there was none.
	// PostgreSQL numbers the events recorded from now on after it.
	LastSeq int64
	// Legacy lists, by ID, the requests whose schema-3 columns (email,
	// decided_by, decided_at, outcome) hold something that neither their
	// targets, reviews, refusal, times nor events say. PostgreSQL has no
	// place for it: it stays in the SQLite file only.
	Legacy []string
}

// NotEmptyError is Copy's refusal of a PostgreSQL database that holds a
// history already: a copy goes into an empty database only, so that it is
// never made twice and two histories never mix.
type NotEmptyError struct {
	Requests, Events int64
}

func (e *NotEmptyError) Error() string {
	return fmt.Sprintf("the PostgreSQL database holds %d requests and %d events already: a history is copied into an empty database only", e.Requests, e.Events)
}

// InUseError is Copy's refusal of a SQLite file in which a process holds
// work (a lease, or a claim on a delivery): a revokebot is running on it,
// or was killed less than a lease ago. What it records after the copy
// would be lost.
type InUseError struct {
	// Owner holds work until Until (the latest such time).
	Owner string
	Until time.Time
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("%s holds work in the SQLite file until %s: a revokebot is running on it, or was killed moments ago",
		e.Owner, e.Until.Format(time.DateTime+" MST"))
}

// kind is a column's type, as Go sees it on both sides.
type kind int

const (
	text    kind = iota // TEXT; text
	integer             // INTEGER; bigint or integer
	boolean             // INTEGER 0 or 1; boolean
)

// column is one PostgreSQL column and where its values come from.
type column struct {
	// name is the column's name in PostgreSQL.
	name string
	kind kind
	// from is the SQLite expression read for it; empty: the column of the
	// same name.
	from string
}

// table is a PostgreSQL table and the SQLite table it is copied from.
type table struct {
	name    string
	columns []column
	// key is how many of the first columns identify a row: rows are read
	// in their order (byte order, on both sides), and named by them.
	key int
}

// tables are copied in this order, which the foreign keys need.
var tables = []table{
	{name: "requests", key: 1, columns: []column{
		{name: "id"},
		{name: "requester"},
		{name: "reason"},
		{name: "devices", kind: boolean, from: "devices != 0"},
		{name: "warp_reauth", kind: boolean, from: "warp_reauth != 0"},
		{name: "user_uid"},
		{name: "state"},
		{name: "dry_run", kind: boolean, from: "dry_run != 0"},
		{name: "required_approvals", kind: integer},
		{name: "submit_key"},
		{name: "version", kind: integer},
		{name: "created_at", kind: integer},
		{name: "expires_at", kind: integer},
		{name: "escalated_at", kind: integer},
		{name: "expired_at", kind: integer},
		{name: "finished_at", kind: integer},
		{name: "refusal"},
		{name: "channel"},
		{name: "message_ts"},
		{name: "message_posting_at", kind: integer},
	}},
	{name: "targets", key: 2, columns: []column{
		{name: "request_id"},
		{name: "position", kind: integer},
		{name: "email"},
		{name: "person"},
		{name: "state"},
		{name: "outcome"},
		{name: "finished_at", kind: integer},
		{name: "observed"},
		{name: "check_pending_until", kind: integer},
		{name: "watch_until", kind: integer},
	}},
	{name: "reviews", key: 2, columns: []column{
		{name: "request_id"},
		{name: "reviewer"},
		{name: "decision"},
		{name: "reason"},
		{name: "at", kind: integer},
		{name: "seq", kind: integer},
	}},
	{name: "events", key: 1, columns: []column{
		{name: "seq", kind: integer},
		{name: "request_id"},
		{name: "kind"},
		{name: "state"},
		{name: "actor"},
		{name: "detail"},
		{name: "target"},
		{name: "at", kind: integer},
		{name: "key"},
		{name: "audited_at", kind: integer},
		{name: "audit_attempted_at", kind: integer},
		{name: "message_due", kind: boolean, from: "message_due = 1"},
		{name: "message_updated_at", kind: integer},
		{name: "notice_due", kind: boolean, from: "notice_due = 1"},
		{name: "notice_attempted_at", kind: integer},
		{name: "notice_done_at", kind: integer},
		{name: "hash"},
	}},
}

// names returns the PostgreSQL names of t's columns.
func (t table) names() []string {
	out := make([]string, len(t.columns))
	for i, c := range t.columns {
		out[i] = c.name
	}
	return out
}

// fromSQLite selects t's rows from SQLite, in key order.
func (t table) fromSQLite() string {
	exprs := make([]string, len(t.columns))
	for i, c := range t.columns {
		exprs[i] = c.name
		if c.from != "" {
			exprs[i] = c.from
		}
	}
	return `SELECT ` + strings.Join(exprs, ", ") + ` FROM ` + t.name + ` ORDER BY ` + strings.Join(t.names()[:t.key], ", ")
}

// fromPostgres selects t's rows from PostgreSQL, in the same order.
func (t table) fromPostgres() string {
	order := make([]string, t.key)
	for i, c := range t.columns[:t.key] {
		order[i] = c.name
		if c.kind == text {
			order[i] += ` COLLATE "C"`
		}
	}
	return `SELECT ` + strings.Join(t.names(), ", ") + ` FROM ` + t.name + ` ORDER BY ` + strings.Join(order, ", ")
}

// newRow returns a row of t's destinations, to scan into.
func (t table) newRow() []any {
	row := make([]any, len(t.columns))
	for i, c := range t.columns {
		switch c.kind {
		case text:
			row[i] = new(string)
		case integer:
			row[i] = new(int64)
		case boolean:
			row[i] = new(bool)
		}
	}
	return row
}

// values returns what a row's destinations hold.
func values(row []any) []any {
	out := make([]any, len(row))
	for i, p := range row {
		switch p := p.(type) {
		case *string:
			out[i] = *p
		case *int64:
			out[i] = *p
		case *bool:
			out[i] = *p
		}
	}
	return out
}

// describe names the row of t holding vals, by its key.
func (t table) describe(vals []any) string {
	parts := make([]string, t.key)
	for i, c := range t.columns[:t.key] {
		parts[i] = fmt.Sprintf("%s %v", c.name, vals[i])
	}
	return t.name + " row (" + strings.Join(parts, ", ") + ")"
}

// check refuses a value PostgreSQL cannot store as text (a NUL byte, or
// bytes that are not UTF-8), naming where it is rather than letting the
// copy fail somewhere in a stream.
func (t table) check(vals []any) error {
	for i, c := range t.columns {
		if s, ok := vals[i].(string); ok && (!utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0) {
			return fmt.Errorf("%s: %s holds a NUL byte or bytes that are not UTF-8, which PostgreSQL cannot store as text; correct it in the SQLite file and run again",
				t.describe(vals), c.name)
		}
	}
	return nil
}

// Copy copies the whole history of from into to, which must hold none, in
// one transaction of to: every request with its targets and reviews, and
// every event with its seq and the state of its deliveries (see the
// package's documentation for each column). Before committing, it reads
// every row back from to and compares it with from's: if anything differs,
// or anything fails, nothing is written.
//
// It holds from's write lock meanwhile, and locks to's tables, so that
// neither changes during the copy. It refuses, writing nothing, a to that
// holds any request or event (*NotEmptyError), and a from in which a
// process holds a lease or a claim (*InUseError). from is not changed.
func Copy(ctx context.Context, from *sqlite.DB, to *postgres.DB) (Summary, error) {
	var sum Summary
	err := from.View(ctx, func(src *sql.Tx) error {
		if err := checkIdle(ctx, src, time.Now()); err != nil {
			return err
		}
		var err error
		if sum.Legacy, err = legacyOnly(ctx, src); err != nil {
			return err
		}
		var issued int64
		if err := src.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'events'`).Scan(&issued); err != nil {
			return fmt.Errorf("read the last event seq SQLite gave out: %w", err)
		}
		return to.WithTx(ctx, func(dst pgx.Tx) error {
			// Nothing else writes, or reads half a copy, until the commit;
			// a second Copy waits here, then finds the history.
			if _, err := dst.Exec(ctx, `LOCK TABLE requests, targets, reviews, events IN ACCESS EXCLUSIVE MODE`); err != nil {
				return fmt.Errorf("lock the PostgreSQL tables: %w", err)
			}
			var held NotEmptyError
			if err := dst.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM requests), (SELECT COUNT(*) FROM events)`).Scan(&held.Requests, &held.Events); err != nil {
				return fmt.Errorf("look into the PostgreSQL database: %w", err)
			}
			if held.Requests > 0 || held.Events > 0 {
				return &held
			}
			counts := []*int64{&sum.Requests, &sum.Targets, &sum.Reviews, &sum.Events} // as in tables
			for i, t := range tables {
				n, err := copyTable(ctx, src, dst, t)
				if err != nil {
					return err
				}
				*counts[i] = n
			}
			if err := dst.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&sum.LastSeq); err != nil {
				return fmt.Errorf("read the last event seq copied: %w", err)
			}
			if next := max(sum.LastSeq, issued) + 1; next > 1 {
				if _, err := dst.Exec(ctx, fmt.Sprintf(`ALTER TABLE events ALTER COLUMN seq RESTART WITH %d`, next)); err != nil {
					return fmt.Errorf("number new events from %d: %w", next, err)
				}
			}
			for _, t := range tables {
				if err := compareTable(ctx, src, dst, t); err != nil {
					return fmt.Errorf("the copy differs from the SQLite file, so nothing was written: %w", err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// copyTable streams t's rows from src into dst (COPY), and returns how
// many it copied.
func copyTable(ctx context.Context, src *sql.Tx, dst pgx.Tx, t table) (int64, error) {
	rows, err := src.QueryContext(ctx, t.fromSQLite())
	if err != nil {
		return 0, fmt.Errorf("read %s from SQLite: %w", t.name, err)
	}
	defer rows.Close()
	s := &rowSource{t: t, rows: rows, row: t.newRow()}
	n, err := dst.CopyFrom(ctx, pgx.Identifier{t.name}, t.names(), s)
	if s.err != nil {
		return 0, s.err // what made the source stop, rather than how pgx relays it
	}
	if err != nil {
		return 0, fmt.Errorf("copy %s into PostgreSQL: %w", t.name, err)
	}
	return n, nil
}

// rowSource is a pgx.CopyFromSource reading a table's rows from SQLite.
type rowSource struct {
	t    table
	rows *sql.Rows
	row  []any
	vals []any
	err  error
}

func (s *rowSource) Next() bool {
	if !s.rows.Next() {
		if err := s.rows.Err(); err != nil {
			s.err = fmt.Errorf("read %s from SQLite: %w", s.t.name, err)
		}
		return false
	}
	if err := s.rows.Scan(s.row...); err != nil {
		s.err = fmt.Errorf("read %s from SQLite: %w", s.t.name, err)
		return false
	}
	s.vals = values(s.row)
	if err := s.t.check(s.vals); err != nil {
		s.err = err
		return false
	}
	return true
}

func (s *rowSource) Values() ([]any, error) { return s.vals, nil }

func (s *rowSource) Err() error { return s.err }

// compareTable reads t from both sides, in key order, and reports the first
// row that differs, or is on one side only.
func compareTable(ctx context.Context, src *sql.Tx, dst pgx.Tx, t table) error {
	srows, err := src.QueryContext(ctx, t.fromSQLite())
	if err != nil {
		return fmt.Errorf("read %s from SQLite: %w", t.name, err)
	}
	defer srows.Close()
	prows, err := dst.Query(ctx, t.fromPostgres())
	if err != nil {
		return fmt.Errorf("read %s from PostgreSQL: %w", t.name, err)
	}
	defer prows.Close()
	srow, prow := t.newRow(), t.newRow()
	for {
		more, pmore := srows.Next(), prows.Next()
		if !more || !pmore {
			if err := srows.Err(); err != nil {
				return fmt.Errorf("read %s from SQLite: %w", t.name, err)
			}
			if err := prows.Err(); err != nil {
				return fmt.Errorf("read %s from PostgreSQL: %w", t.name, err)
			}
			switch {
			case more:
				if err := srows.Scan(srow...); err != nil {
					return fmt.Errorf("read %s from SQLite: %w", t.name, err)
				}
				return fmt.Errorf("%s is missing from PostgreSQL", t.describe(values(srow)))
			case pmore:
				if err := prows.Scan(prow...); err != nil {
					return fmt.Errorf("read %s from PostgreSQL: %w", t.name, err)
				}
				return fmt.Errorf("%s is in PostgreSQL only", t.describe(values(prow)))
			}
			return nil
		}
		if err := srows.Scan(srow...); err != nil {
			return fmt.Errorf("read %s from SQLite: %w", t.name, err)
		}
		if err := prows.Scan(prow...); err != nil {
			return fmt.Errorf("read %s from PostgreSQL: %w", t.name, err)
		}
		svals, pvals := values(srow), values(prow)
		for i, c := range t.columns {
			if svals[i] != pvals[i] {
				return fmt.Errorf("%s: %s is %#v in SQLite, %#v in PostgreSQL", t.describe(svals), c.name, svals[i], pvals[i])
			}
		}
	}
}

// checkIdle refuses a file in which a process holds a lease or a claim
// that has not ended by now.
func checkIdle(ctx context.Context, src *sql.Tx, now time.Time) error {
	var (
		owner string
		until int64
	)
	err := src.QueryRowContext(ctx, `SELECT owner, until FROM (
			SELECT owner, until FROM leases
			UNION ALL SELECT audit_claim_owner, audit_claim_until FROM events WHERE audit_claim_owner != ''
			UNION ALL SELECT message_claim_owner, message_claim_until FROM events WHERE message_claim_owner != ''
			UNION ALL SELECT notice_claim_owner, notice_claim_until FROM events WHERE notice_claim_owner != '')
		WHERE until > ? ORDER BY until DESC LIMIT 1`, now.UnixMilli()).Scan(&owner, &until)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("look for leases and claims held in the SQLite file: %w", err)
	}
	return &InUseError{Owner: owner, Until: time.UnixMilli(until).UTC()}
}

// legacyOnly returns the IDs of the requests whose schema-3 columns hold
// what nothing else in their history says: an email none of their targets
// has, a decider who left no review, a decision time that is neither a
// review's nor the end's, an outcome that is neither the refusal, a
// target's outcome, nor an event's detail.
func legacyOnly(ctx context.Context, src *sql.Tx) ([]string, error) {
	rows, err := src.QueryContext(ctx, `SELECT r.id FROM requests r
		WHERE r.email NOT IN (SELECT t.email FROM targets t WHERE t.request_id = r.id)
		OR (r.decided_by != '' AND NOT EXISTS (SELECT 1 FROM reviews v WHERE v.request_id = r.id AND v.reviewer = r.decided_by))
		OR (r.decided_at != 0 AND r.decided_at NOT IN (r.finished_at, r.expired_at)
			AND NOT EXISTS (SELECT 1 FROM reviews v WHERE v.request_id = r.id AND v.at = r.decided_at))
		OR (r.outcome != '' AND r.outcome != r.refusal
			AND NOT EXISTS (SELECT 1 FROM targets t WHERE t.request_id = r.id AND t.outcome = r.outcome)
			AND NOT EXISTS (SELECT 1 FROM events e WHERE e.request_id = r.id AND e.detail = r.outcome))
		ORDER BY r.id`)
	if err != nil {
		return nil, fmt.Errorf("compare the legacy columns of requests with their history: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("compare the legacy columns of requests with their history: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("compare the legacy columns of requests with their history: %w", err)
	}
	return ids, nil
}
