package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit. Every write of the store is an operation handed to one
// goroutine, the writer, which owns the only write connection. It takes the
// first operation queued and whatever else is queued then, and runs them in
// one transaction; the operations queued while they run join it before its
// COMMIT, up to maxBatch in all:
//
//	BEGIN IMMEDIATE
//	SAVEPOINT op; <operation 1>; RELEASE op      (it succeeded)
//	SAVEPOINT op; <operation 2>; ROLLBACK TO op; RELEASE op   (it failed: its writes vanish)
//	…                                            (and those queued meanwhile)
//	COMMIT
//
// Each caller is told its operation's result only once that COMMIT has
// returned: with synchronous=FULL, a write whose method returned nil is on
// disk. One flush serves the whole batch, instead of one per write. If a
// savepoint statement or the COMMIT fails, the batch is rolled back and every
// caller in it gets that error: none of their writes stands.
//
// Operations run one after the other, in the order they were queued, so
// each sees the writes of those before it (the pending cap, key uniqueness,
// the hash chain: where the event log ends is read once per transaction,
// then carried from one event to the next, see wtx.tip). Their statements
// run with the batch's own context, which no caller can cancel: SQLite
// interrupts a statement whose context ends, and an interrupted write can
// roll back the whole transaction, the other callers' writes with it. An
// operation whose caller's context has ended before it starts is skipped
// (ctx.Err()); once started, it runs to the end, and its caller waits for
// the batch.
//
// That context has no deadline either: the driver watches a context that
// can end with a goroutine per statement (165 of the 967 allocations of
// BenchmarkRequestLifecycle), and a deadline would cut short the chaining
// of a large old log at an upgrade. What bounds a batch: maxBatch operations,
// each a few indexed statements, and busy_timeout for a lock held by
// another process (BEGIN IMMEDIATE then fails, and so does the batch).

const (
	// maxBatch bounds the operations committed together.
	maxBatch = 128
	// connectTimeout bounds the opening of a write connection after a
	// failure dropped one.
	connectTimeout = 30 * time.Second
	// maxStmts bounds each cache of prepared statements. Past it, a new SQL
	// text runs unprepared (texts are few, but an IN list's length varies).
	maxStmts = 256
)

// errClosed is what a write returns after Close.
var errClosed = errors.New("the database is closed")

// op is one operation queued for the writer.
type op struct {
	ctx context.Context // the caller's: skipped if done before it starts
	// run is the operation, run in its own savepoint of a batch. Its ctx is
	// the batch's, not the caller's.
	run func(ctx context.Context, tx *wtx) error
	// solo, if set instead of run, runs alone, outside any batch, with the
	// connection (see DB.View).
	solo     func(conn *sql.Conn) error
	err      error
	panicked any // what run or solo panicked with, re-panicked in the caller
	done     chan struct{}
}

// writer owns the write connection and runs every write (see above).
type writer struct {
	db *sql.DB // one connection, held as conn
	// conn, stmts and tx belong to the writer's goroutine once it runs.
	conn  *sql.Conn
	stmts map[string]*sql.Stmt // prepared on conn, by SQL text
	tx    wtx

	mu      sync.Mutex
	queue   []*op
	closed  bool
	wake    chan struct{} // a token: the queue may hold work
	stopped chan struct{} // closed when the goroutine ends

	// batches and ops count the batches committed and the operations they
	// ran, failed the batches rolled back, for tests that check that writes
	// are grouped.
	batches, ops, failed atomic.Int64
	// statements counts the statements run on the write connection, for
	// the test that holds each operation to its count.
	statements atomic.Int64
	// failCommit, if set, is called before each COMMIT: an error fails the
	// batch as a failed COMMIT would. Tests set it from a solo operation,
	// on the writer's goroutine, which alone uses it.
	failCommit func() error
}

// newWriter returns a writer owning conn, a connection of db, and starts its
// goroutine.
func newWriter(db *sql.DB, conn *sql.Conn) *writer {
	w := &writer{db: db, conn: conn, stmts: map[string]*sql.Stmt{},
		wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	w.tx.w = w
	go w.loop()
	return w
}

// do runs fn as an operation of the writer's next batch, and returns its
// error, or the batch's, once the batch is committed or rolled back.
func (w *writer) do(ctx context.Context, fn func(ctx context.Context, tx *wtx) error) error {
	return w.wait(&op{ctx: ctx, run: fn, done: make(chan struct{})})
}

// doAlone runs fn with the write connection, between two batches.
func (w *writer) doAlone(ctx context.Context, fn func(conn *sql.Conn) error) error {
	return w.wait(&op{ctx: ctx, solo: fn, done: make(chan struct{})})
}

// wait queues o and waits for its result.
func (w *writer) wait(o *op) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errClosed
	}
	w.queue = append(w.queue, o)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // a token is there already
	}
	<-o.done
	if o.panicked != nil {
		panic(o.panicked)
	}
	return o.err
}

// close stops the writer once it has run what is queued, then closes the
// connection.
func (w *writer) close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.stopped
	w.closeStmts()
	var errs []error
	if w.conn != nil {
		errs = append(errs, w.conn.Close())
	}
	return errors.Join(append(errs, w.db.Close())...)
}

// loop runs the queued operations, batch after batch, until close.
func (w *writer) loop() {
	defer close(w.stopped)
	var batch []*op
	for {
		var ok bool
		if batch, ok = w.take(batch[:0]); !ok {
			return
		}
		if batch[0].solo != nil {
			w.runAlone(batch[0])
		} else {
			batch = w.runBatch(batch)
		}
		for _, o := range batch {
			close(o.done)
		}
		clear(batch)
	}
}

// take waits for work and appends to buf the next batch: up to maxBatch
// operations in the order queued, or one solo operation. It reports false
// once the writer is closed and nothing is left.
func (w *writer) take(buf []*op) ([]*op, bool) {
	for {
		w.mu.Lock()
		if len(w.queue) > 0 {
			if w.queue[0].solo != nil {
				buf = w.dequeue(buf, 1)
			} else {
				buf = w.joinLocked(buf)
			}
			w.mu.Unlock()
			return buf, true
		}
		closed := w.closed
		w.mu.Unlock()
		if closed {
			return buf, false
		}
		<-w.wake
	}
}

// join appends to batch, up to maxBatch operations in all, the operations
// queued at the head of the queue: those queued while batch ran join it,
// before its COMMIT. A solo operation, and those queued after it, wait for
// the next batch: operations run in the order queued.
func (w *writer) join(batch []*op) []*op {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.joinLocked(batch)
}

// joinLocked is join, with w.mu held.
func (w *writer) joinLocked(batch []*op) []*op {
	n := 0
	for n < len(w.queue) && len(batch)+n < maxBatch && w.queue[n].solo == nil {
		n++
	}
	return w.dequeue(batch, n)
}

// dequeue moves the first n operations of the queue to the end of buf.
// w.mu is held.
func (w *writer) dequeue(buf []*op, n int) []*op {
	if n == 0 {
		return buf
	}
	buf = append(buf, w.queue[:n]...)
	left := copy(w.queue, w.queue[n:])
	clear(w.queue[left:])
	w.queue = w.queue[:left]
	return buf
}

// runAlone runs solo operation o with the connection.
func (w *writer) runAlone(o *op) {
	if o.err = o.ctx.Err(); o.err != nil {
		return
	}
	if o.err = w.connect(); o.err != nil {
		return
	}
	o.err = guard(o, func() error { return o.solo(w.conn) })
}

// runBatch runs the operations of batch, and those that join it, in one
// transaction, and sets each one's error: its own, or the batch's if the
// batch failed. It returns the batch with the operations that joined it.
func (w *writer) runBatch(batch []*op) []*op {
	ctx := context.Background() // see above: never cancelled
	batch, err := w.commitBatch(ctx, batch)
	if err != nil {
		w.failed.Add(1)
		err = fmt.Errorf("commit %d writes together: %w", len(batch), err)
		for _, o := range batch {
			if o.panicked == nil {
				o.err = err
			}
		}
		return batch
	}
	w.batches.Add(1)
	w.ops.Add(int64(len(batch)))
	return batch
}

// commitBatch runs batch in one transaction, the operations queued
// meanwhile joining it, and commits it. It returns the batch with those
// that joined. An error means that the transaction is rolled back: no
// operation of the batch stands.
func (w *writer) commitBatch(ctx context.Context, batch []*op) ([]*op, error) {
	if err := w.connect(); err != nil {
		return batch, err
	}
	if err := w.exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
			w.drop() // the next batch opens a new one
		}
		return batch, fmt.Errorf("begin: %w", err)
	}
	w.tx.tip = chainTip{} // another process may have written before the lock
	for i := 0; i < len(batch); i++ {
		if err := w.runOp(ctx, batch[i]); err != nil {
			w.rollback(ctx)
			return batch, err
		}
		if i == len(batch)-1 {
			batch = w.join(batch)
		}
	}
	var err error
	if w.failCommit != nil {
		err = w.failCommit()
	}
	if err == nil {
		err = w.exec(ctx, "COMMIT")
	}
	if err != nil {
		w.rollback(ctx)
		return batch, fmt.Errorf("commit: %w", err)
	}
	return batch, nil
}

// runOp runs o in a savepoint of the transaction: released if o succeeds,
// rolled back if it fails, so that its partial writes vanish and the others'
// stand. o's own error is set in o.err; the error returned is a savepoint
// statement's, which fails the batch.
func (w *writer) runOp(ctx context.Context, o *op) error {
	if o.err = o.ctx.Err(); o.err != nil {
		return nil // skipped: its caller has gone
	}
	if err := w.exec(ctx, "SAVEPOINT op"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if o.err = guard(o, func() error { return o.run(ctx, &w.tx) }); o.err == nil {
		if err := w.exec(ctx, "RELEASE op"); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
		return nil
	}
	// If SQLite rolled back the whole transaction (an I/O error, a full
	// disk), the savepoint is gone: ROLLBACK TO fails, and so does the batch.
	w.tx.tip = chainTip{} // o may have recorded events
	if err := w.exec(ctx, "ROLLBACK TO op"); err != nil {
		return fmt.Errorf("roll back to savepoint after %v: %w", o.err, err)
	}
	if err := w.exec(ctx, "RELEASE op"); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// errPanicked is the error of an operation that panicked; its caller
// panics again with the value.
var errPanicked = errors.New("the write panicked")

// guard runs fn, operation o, catching a panic for o's caller: the writer
// must go on.
func guard(o *op, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			o.panicked = fmt.Sprintf("%v [in the SQLite store's writer]\n%s", p, debug.Stack())
			err = errPanicked
		}
	}()
	return fn()
}

// rollback ends a failed batch's transaction. If even that fails, the
// connection is dropped (closing it rolls back) and the next batch opens
// another, rather than every later BEGIN failing inside a transaction left
// open. ROLLBACK fails too when SQLite has rolled back already.
func (w *writer) rollback(ctx context.Context) {
	w.tx.tip = chainTip{}
	if err := w.exec(ctx, "ROLLBACK"); err != nil {
		w.drop()
	}
}

// drop closes the write connection, which a failure left unusable: the
// next batch opens a new one (connect).
func (w *writer) drop() {
	w.closeStmts()
	// Returning ErrBadConn makes database/sql close the connection.
	_ = w.conn.Raw(func(any) error { return driver.ErrBadConn })
	w.conn.Close()
	w.conn = nil
}

// connect opens a write connection if the writer has none (after a
// failure dropped it).
func (w *writer) connect() error {
	if w.conn != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open a write connection: %w", err)
	}
	w.conn = conn
	return nil
}

// exec runs a statement that returns nothing on the write connection.
func (w *writer) exec(ctx context.Context, query string) error {
	_, err := w.tx.ExecContext(ctx, query)
	return err
}

// stmt returns query prepared on the write connection, preparing it the
// first time, or nil if the cache is full.
func (w *writer) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := w.stmts[query]; ok {
		return s, nil
	}
	if len(w.stmts) >= maxStmts {
		return nil, nil
	}
	s, err := w.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	w.stmts[query] = s
	return s, nil
}

// closeStmts closes the prepared statements of the write connection.
func (w *writer) closeStmts() {
	for q, s := range w.stmts {
		s.Close()
		delete(w.stmts, q)
	}
}

// wtx is the writer's transaction as an operation sees it: statements on
// the write connection, each SQL text prepared once. Only the writer's
// goroutine uses it, within an operation.
type wtx struct {
	w *writer
	// tip is where the event log ends, as the events recorded in this
	// transaction left it (see chainTip): it spares reading it again for
	// each event. The writer forgets it at each BEGIN, and when an
	// operation's savepoint or the batch is rolled back.
	tip chainTip
}

// ExecContext runs a statement that returns no rows.
func (tx *wtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	tx.w.statements.Add(1)
	s, err := tx.w.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return tx.w.conn.ExecContext(ctx, query, args...)
	}
	return s.ExecContext(ctx, args...)
}

// QueryContext runs a query that returns rows.
func (tx *wtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	tx.w.statements.Add(1)
	s, err := tx.w.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return tx.w.conn.QueryContext(ctx, query, args...)
	}
	return s.QueryContext(ctx, args...)
}

// QueryRowContext runs a query that returns at most one row.
func (tx *wtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	tx.w.statements.Add(1)
	s, err := tx.w.stmt(ctx, query)
	if err != nil || s == nil {
		// Unprepared: the error, if any, comes again from the query.
		return tx.w.conn.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// isClosed reports whether close was called.
func (w *writer) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}
