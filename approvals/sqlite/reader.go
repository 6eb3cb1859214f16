package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
)

// readConns is how many connections the reads have. In WAL mode they read
// at once, and while the writer writes; each sees what was committed before
// its read began, so a read made after a write returned sees that write.
const readConns = 4

// reader runs the store's reads on a pool of read-only connections, each SQL
// text prepared once (database/sql prepares it again on each connection
// that runs it).
type reader struct {
	db    *sql.DB
	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
	// statements counts the queries run, for the test that holds each
	// operation to its count.
	statements atomic.Int64
}

// newReader returns a reader on db, a pool of read-only connections.
func newReader(db *sql.DB) *reader {
	db.SetMaxOpenConns(readConns)
	db.SetMaxIdleConns(readConns) // kept open, with their prepared statements
	return &reader{db: db, stmts: map[string]*sql.Stmt{}}
}

// stmt returns query prepared, preparing it the first time, or nil if the
// cache is full.
func (r *reader) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	r.mu.RLock()
	s, ok := r.stmts[query]
	full := len(r.stmts) >= maxStmts
	r.mu.RUnlock()
	if ok || full {
		return s, nil
	}
	// Prepared without the lock, which a prepare waiting for a connection
	// must not hold: two callers may prepare the same text, and one keeps it.
	s, err := r.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if kept, ok := r.stmts[query]; ok {
		s.Close()
		return kept, nil
	}
	r.stmts[query] = s
	return s, nil
}

// QueryContext runs a query that returns rows.
func (r *reader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	r.statements.Add(1)
	s, err := r.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return r.db.QueryContext(ctx, query, args...)
	}
	return s.QueryContext(ctx, args...)
}

// QueryRowContext runs a query that returns at most one row.
func (r *reader) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	r.statements.Add(1)
	s, err := r.stmt(ctx, query)
	if err != nil || s == nil {
		// Unprepared: the error, if any, comes again from the query.
		return r.db.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// close closes the prepared statements and the connections.
func (r *reader) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for q, s := range r.stmts {
		errs = append(errs, s.Close())
		delete(r.stmts, q)
	}
	return errors.Join(append(errs, r.db.Close())...)
}
