// Package sqlite stores approvals.Requests in a SQLite database file, using a
// pure-Go driver so that revokebot builds with CGO_ENABLED=0.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/internal/observed"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a SQLite-backed approvals.Store. Its writes go through one writer
// that commits them together (see writer.go); its reads run on a pool of
// read-only connections (see reader.go).
type DB struct {
	read *reader
	w    *writer // nil if opened read-only

	closeOnce sync.Once
	closeErr  error
}

var _ approvals.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path and brings its
// schema up to date. The caller must Close it. An in-memory database
// (":memory:") is refused: the writer and the reads have connections of
// their own, and each would see a database of its own.
func Open(ctx context.Context, path string) (*DB, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	// The write connection: SQLite allows one writer at a time anyway.
	// Every COMMIT is flushed to disk (synchronous FULL) before it returns.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", fmt.Sprintf("cache_size(%d)", writeCacheKiB))
	q.Set("_txlock", "immediate")
	wdb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	conn, err := wdb.Conn(ctx)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := migrate(ctx, conn); err != nil {
		conn.Close()
		wdb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// The reads: WAL lets them run beside the writer.
	q = url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "query_only(1)")
	q.Add("_pragma", fmt.Sprintf("cache_size(%d)", readCacheKiB))
	rdb, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		conn.Close()
		wdb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	d := &DB{read: newReader(rdb), w: newWriter(wdb, conn)}
	if err := d.chainOld(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("open database %s: chain the event log: %w", path, err)
	}
	return d, nil
}

// The page caches of the connections, in KiB (negative, as SQLite's
// cache_size takes KiB). SQLite's default, 2,000 KiB each, let the five
// connections grow by up to 10 MB under a burst and keep it (the pages are
// SQLite's, not Go's heap): at n=1,000 the load benchmark's peak RSS was
// 51 MB, and 43 MB with these. The file's pages stay in the kernel's cache,
// so a page read again costs a system call, not a disk read.
const (
	writeCacheKiB = -1024
	readCacheKiB  = -256
)

// checkPath refuses a path Open cannot serve: empty, or an in-memory
// database.
func checkPath(path string) error {
	if path == "" {
		return errors.New("open database: empty path")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file::memory:") || strings.Contains(path, "mode=memory") {
		return fmt.Errorf("open database %s: an in-memory database is not supported: name a file", path)
	}
	return nil
}

// OpenReadOnly opens the database file at path for reading only (a copy, or
// a file this process may not write), changing nothing: no migration, no
// chaining. Its schema must be the one this revokebot writes; an older one
// is refused, saying to start revokebot once on it. Only reads may be made
// through it.
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(5000)")
	sqlDB, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	d := &DB{read: newReader(sqlDB)}
	v, err := d.SchemaVersion(ctx)
	if err == nil {
		var latest int
		if latest, err = latestMigration(); err == nil && v != latest {
			err = fmt.Errorf("its schema is version %d, and this revokebot reads version %d: start this revokebot on it once (it upgrades the file), or use the revokebot that wrote it", v, latest)
		}
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("open database %s read-only: %w", path, err)
	}
	return d, nil
}

// latestMigration is the number of the last embedded migration.
func latestMigration() (int, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		return 0, fmt.Errorf("list migrations: %v", err)
	}
	sort.Strings(names)
	base := strings.TrimPrefix(names[len(names)-1], "migrations/")
	return strconv.Atoi(strings.SplitN(base, "_", 2)[0])
}

// Close waits for the writes queued to be committed, stops the writer, and
// closes the connections. Writes after Close fail; so does every call
// after it. Closing again returns what the first Close returned.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		var errs []error
		if d.w != nil {
			errs = append(errs, d.w.close())
		}
		d.closeErr = errors.Join(append(errs, d.read.close())...)
	})
	return d.closeErr
}

// Ping checks that the database answers reads, and that the store is not
// closed. (A write that fails tells its caller; the writer opens a new
// connection for the next one.)
func (d *DB) Ping(ctx context.Context) error {
	if d.w != nil && d.w.isClosed() {
		return errClosed
	}
	return d.read.db.PingContext(ctx)
}

// errReadOnly is what a write returns on a database opened read-only.
var errReadOnly = errors.New("the database is open read-only (sqlite.OpenReadOnly): no write is made through it")

// write runs fn as one operation of the writer (see writer.go), with the
// writer's transaction and context, and returns its error once the batch it
// was part of is committed, or the batch's if it failed. fn must be quick
// and touch nothing but tx.
func (d *DB) write(ctx context.Context, fn func(ctx context.Context, tx *wtx) error) error {
	if d.w == nil {
		return errReadOnly
	}
	return d.w.do(ctx, fn)
}

// rowQueryer is a connection, a pool or a transaction.
type rowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SchemaVersion returns the number of the last migration applied.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	return schemaVersion(ctx, d.read)
}

// schemaVersion reads the database's user_version.
func schemaVersion(ctx context.Context, q rowQueryer) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// migrate applies, in order and each in its own transaction, every embedded
// migration numbered above the database's user_version, on conn. Their
// bodies hold several statements each, and are run once: not prepared.
func migrate(ctx context.Context, conn *sql.Conn) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	current, err := schemaVersion(ctx, conn)
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
		if err := applyMigration(ctx, conn, string(body), n); err != nil {
			return fmt.Errorf("apply migration %s: %w", base, err)
		}
		current = n
	}
	return nil
}

// applyMigration runs body and sets the user_version to n, in one
// transaction.
func applyMigration(ctx context.Context, conn *sql.Conn, body string, n int) error {
	tx, err := conn.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see Open)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", n)); err != nil {
		return err
	}
	return tx.Commit()
}

const columns = `id, email, devices, warp_reauth, user_uid, reason, requester, state, dry_run,
	created_at, expires_at, finished_at, channel, message_ts, submit_key,
	version, required_approvals, escalated_at, expired_at, refusal`

// prefixed returns columns with each name prefixed by a table alias.
func prefixed(alias string) string {
	names := strings.Split(columns, ",")
	for i, n := range names {
		names[i] = alias + "." + strings.TrimSpace(n)
	}
	return strings.Join(names, ", ")
}

// requestColumns selects a request r whole, in one statement: its columns,
// then its targets and its reviews, each packed in a text (see packed),
// read by scan. One statement instead of three (each a read transaction, a
// lock on the WAL index, a trip through database/sql and the driver). The
// rows carry what orders them (position; seq, at), and scan sorts them:
// ORDER BY within the aggregate would sort them in a temporary B-tree,
// which costs more than the two statements saved.
var requestColumns = prefixed("r") + `,
	` + packed("targets t", "t.request_id = r.id", "t.position", "t.email", "t.person", "t.state", "t.outcome", "t.finished_at", "t.observed") + `,
	` + packed("reviews v", "v.request_id = r.id", "v.seq", "v.reviewer", "v.decision", "v.reason", "v.at")

// maxUpdateAttempts bounds how often Update retries after finding the
// request changed meanwhile.
const maxUpdateAttempts = 10

// Create implements approvals.Store.
func (d *DB) Create(ctx context.Context, r approvals.Request, e approvals.Event, maxPending int) error {
	if len(r.Targets) == 0 {
		return fmt.Errorf("insert request %s: no targets", r.ID)
	}
	r.Version = 1
	state := r.State()
	err := d.write(ctx, func(ctx context.Context, tx *wtx) error {
		// A submit key recorded already is told by its unique index
		// (migration 0003): then nothing is inserted.
		res, err := tx.ExecContext(ctx, `INSERT INTO requests (`+columns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (submit_key) WHERE submit_key != '' DO NOTHING`,
			r.ID, r.Targets[0].Email, r.Options.Devices, r.Options.WARPReauth, r.Options.UserUID,
			r.Reason, r.Requester, string(state), r.DryRun,
			millis(r.CreatedAt), millis(r.ExpiresAt), millis(r.FinishedAt), r.Channel, r.MessageTS, r.SubmitKey,
			r.Version, r.RequiredApprovals(), millis(r.EscalatedAt), millis(r.ExpiredAt), r.Refusal)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return approvals.ErrDuplicate
		}
		if state == approvals.StatePending && maxPending > 0 {
			// Counted once the request is in (a duplicate is told
			// first): the writer runs one operation at a time, in a
			// transaction holding SQLite's write lock (BEGIN IMMEDIATE),
			// and if the cap is passed, this operation's savepoint is
			// rolled back, the insert with it.
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM requests WHERE requester = ? AND state = 'pending'`, r.Requester).Scan(&n); err != nil {
				return err
			}
			if n > maxPending {
				return fmt.Errorf("%s has %d pending: %w", r.Requester, n-1, approvals.ErrLimit)
			}
		}
		for i, t := range r.Targets {
			if !t.State.Valid() {
				return fmt.Errorf("target %s has unknown state %q", t.Email, t.State)
			}
			seen, err := observed.Encode(t)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO targets (request_id, position, email, person, state, outcome, finished_at,
				observed, check_pending_until, watch_until)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, i, t.Email, t.Person, string(t.State), t.Outcome, millis(t.FinishedAt),
				seen, observed.PendingUntil(t), observed.WatchUntil(t)); err != nil {
				return fmt.Errorf("insert target %s: %w", t.Email, err)
			}
		}
		if err := insertReviews(ctx, tx, r.ID, 0, r.Reviews); err != nil {
			return err
		}
		e.Request = r
		return insertEvent(ctx, tx, r, e)
	})
	if err != nil {
		return fmt.Errorf("insert request %s: %w", r.ID, err)
	}
	return nil
}

// insertReviews adds reviews to request id, numbering them from first. A
// second review by one person is told by the primary key (request_id,
// reviewer): then nothing is inserted, and it returns ErrReviewed.
func insertReviews(ctx context.Context, tx *wtx, id string, first int, reviews []approvals.Review) error {
	for i, rv := range reviews {
		res, err := tx.ExecContext(ctx, `INSERT INTO reviews (request_id, reviewer, decision, reason, at, seq)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (request_id, reviewer) DO NOTHING`, id, rv.By, rv.Decision.String(), rv.Reason, millis(rv.At), first+i)
		if err != nil {
			return fmt.Errorf("insert review by %s: %w", rv.By, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("insert review by %s: %w", rv.By, err)
		} else if n == 0 {
			return fmt.Errorf("review by %s: %w", rv.By, approvals.ErrReviewed)
		}
	}
	return nil
}

// insertEvent appends e, about request r (as it stands after e), to the
// event log and outbox. An event whose Key is recorded already is refused
// with ErrDuplicate.
func insertEvent(ctx context.Context, tx *wtx, r approvals.Request, e approvals.Event) error {
	if !e.Kind.Valid() {
		return fmt.Errorf("event of unknown kind %q", e.Kind)
	}
	e.State = r.State()
	var audited int64 // 0: its audit record is to deliver
	if !e.Audited() {
		audited = time.Now().UnixMilli()
	}
	// The event is numbered and chained as it is inserted: the writer holds
	// SQLite's write lock, and runs one operation at a time, so that no
	// event is recorded between reading the tip and this insert.
	tip, err := tx.chainTip(ctx)
	if err != nil {
		return fmt.Errorf("record %s event: read the last event: %w", e.Kind, err)
	}
	seq := tip.seq + 1
	e.Request = approvals.Request{ID: r.ID}
	e.At = fromMillis(millis(e.At))
	hash := approvals.ChainHash(tip.hash, seq, e)
	// The unique index on key (migration 0003) tells a key recorded
	// already: then nothing is inserted.
	res, err := tx.ExecContext(ctx, `INSERT INTO events (seq, request_id, kind, state, actor, detail, at, message_due, key, target,
			notice_due, audited_at, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) WHERE key != '' DO NOTHING`,
		seq, r.ID, string(e.Kind), string(e.State), e.Actor, e.Detail, millis(e.At), e.ShowsOnMessage(), e.Key, e.Target,
		e.HasNotice() && r.Channel != "", audited, hash)
	if err != nil {
		return fmt.Errorf("insert %s event: %w", e.Kind, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("insert %s event: %w", e.Kind, err)
	} else if n == 0 {
		return fmt.Errorf("%s event %s: %w", e.Kind, e.Key, approvals.ErrDuplicate)
	}
	tx.tip = chainTip{seq: seq, hash: hash, known: true}
	return nil
}

// chainTip is where the event log ends: the greatest seq given to an event
// (the next event is numbered seq+1, as AUTOINCREMENT would number it), and
// the hash of the event with the greatest seq, which the next one follows.
type chainTip struct {
	seq   int64
	hash  string
	known bool
}

// chainTip returns where the event log ends: as the events this
// transaction recorded left it, or else as read. Events are recorded only
// by insertEvent, which sets tx.tip; the writer forgets it whenever what
// the transaction wrote may be undone (an operation's savepoint or the
// batch rolled back) and at each BEGIN, before which another process may
// have written (see wtx).
func (tx *wtx) chainTip(ctx context.Context) (chainTip, error) {
	if tx.tip.known {
		return tx.tip, nil
	}
	var given, last int64
	var hash string
	err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
		COALESCE((SELECT MAX(seq) FROM events), 0),
		COALESCE((SELECT hash FROM events ORDER BY seq DESC LIMIT 1), '')`).Scan(&given, &last, &hash)
	if err != nil {
		return chainTip{}, err
	}
	tx.tip = chainTip{seq: max(given, last), hash: hash, known: true}
	return tx.tip, nil
}

// chainEvent stores the hash of event e, numbered seq, after the event
// recorded before it: an event recorded before the log was a chain (see
// chainOld; insertEvent chains the events it records).
func chainEvent(ctx context.Context, tx *wtx, seq int64, e approvals.Event) error {
	var prev string
	err := tx.QueryRowContext(ctx, `SELECT hash FROM events WHERE seq < ? ORDER BY seq DESC LIMIT 1`, seq).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE events SET hash = ? WHERE seq = ?`, approvals.ChainHash(prev, seq, e), seq)
	return err
}

// chainOld chains the events recorded before the log was a chain (an
// upgrade), in order.
func (d *DB) chainOld(ctx context.Context) error {
	return d.write(ctx, func(ctx context.Context, tx *wtx) error {
		tx.tip = chainTip{} // the hashes it sets are read anew
		// Only the events before the first one chained as it was recorded:
		// an unchained event after it was written by an older revokebot
		// meanwhile, and must show as a break, not be quietly accepted.
		links, err := chainLinks(ctx, tx, `WHERE hash = '' AND seq < COALESCE((SELECT MIN(seq) FROM events WHERE hash != ''), 9223372036854775807) ORDER BY seq`)
		if err != nil {
			return err
		}
		for _, l := range links {
			if err := chainEvent(ctx, tx, l.Seq, l.Event); err != nil {
				return fmt.Errorf("chain event %d: %w", l.Seq, err)
			}
		}
		return nil
	})
}

// queryer is the reads' pool or the writer's transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// chainLinks reads the events the clause (after FROM events) selects, as links.
func chainLinks(ctx context.Context, q queryer, clause string, args ...any) ([]approvals.Link, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, request_id, kind, state, actor, target, detail, at, key, hash FROM events `+clause, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []approvals.Link
	for rows.Next() {
		var (
			l           approvals.Link
			kind, state string
			at          int64
		)
		if err := rows.Scan(&l.Seq, &l.Event.Request.ID, &kind, &state, &l.Event.Actor, &l.Event.Target, &l.Event.Detail, &at, &l.Event.Key, &l.Hash); err != nil {
			return nil, err
		}
		l.Event.Kind, l.Event.State, l.Event.At, l.Event.Hash = approvals.EventKind(kind), approvals.State(state), fromMillis(at), l.Hash
		out = append(out, l)
	}
	return out, rows.Err()
}

// Chain implements approvals.Store.
func (d *DB) Chain(ctx context.Context, from int64, limit int) ([]approvals.Link, error) {
	links, err := chainLinks(ctx, d.read, `WHERE seq >= ? ORDER BY seq LIMIT ?`, from, limit)
	if err != nil {
		return nil, fmt.Errorf("read the event log from %d: %w", from, err)
	}
	return links, nil
}

// Get implements approvals.Store.
func (d *DB) Get(ctx context.Context, id string) (approvals.Request, error) {
	return getRequest(ctx, d.read, id)
}

// getRequest reads request id through q.
func getRequest(ctx context.Context, q queryer, id string) (approvals.Request, error) {
	rs, err := requests(ctx, q, `WHERE id = ?`, id)
	if err != nil {
		return approvals.Request{}, fmt.Errorf("get request %s: %w", id, err)
	}
	if len(rs) == 0 {
		return approvals.Request{}, fmt.Errorf("get request %s: %w", id, approvals.ErrNotFound)
	}
	return rs[0], nil
}

// requests returns the requests matching the SQL clause that follows FROM
// requests (whose alias is r), with their targets and reviews, read through
// q in one statement.
func requests(ctx context.Context, q queryer, clause string, args ...any) ([]approvals.Request, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+requestColumns+` FROM requests r `+clause, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []approvals.Request
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// SetMessage implements approvals.Store.
func (d *DB) SetMessage(ctx context.Context, id, channel, ts string) error {
	var found error
	err := d.write(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE requests SET channel = ?, message_ts = ? WHERE id = ?`, channel, ts, id)
		if err == nil {
			found = expectOne(res, id)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("set message of request %s: %w", id, err)
	}
	return found
}

// errStale: the request changed between reading it and writing it.
var errStale = errors.New("stale version")

// Update implements approvals.Store. It reads the request and lets fn
// change it in the caller's goroutine, so that updates compute their
// changes at once; the writer then writes the change only if the request's
// version is still the one read. If it is not (another update wrote first,
// perhaps earlier in the same batch), the writer reads the request again and
// calls fn again, within its transaction, where nothing changes it
// meanwhile. So fn may run on the writer's goroutine: it must be quick and
// have no side effects, as approvals.UpdateFunc says.
func (d *DB) Update(ctx context.Context, id string, fn approvals.UpdateFunc) (approvals.Request, error) {
	cur, err := d.Get(ctx, id)
	if err != nil {
		return approvals.Request{}, err
	}
	next, events, err := fn(cur.Clone())
	if err != nil {
		return cur, err
	}
	if next, err = approvals.NextVersion(cur, next); err != nil {
		return cur, fmt.Errorf("update request %s: %w", id, err)
	}
	u := &update{id: id, fn: fn, cur: cur, next: next, events: events}
	err = d.write(ctx, u.run)
	switch {
	case err == nil:
		return u.next, nil
	case u.fnErr != nil && err == u.fnErr:
		return u.cur, err
	}
	return u.cur, fmt.Errorf("update request %s: %w", id, err)
}

// update is one Update, as the writer runs it.
type update struct {
	id string
	fn approvals.UpdateFunc
	// cur is the request as last read, next as fn changed it, with events.
	cur, next approvals.Request
	events    []approvals.Event
	fnErr     error // fn's own error, returned as it is
}

// run writes u.next over u.cur, reading the request again and calling fn
// again if it changed since it was read.
func (u *update) run(ctx context.Context, tx *wtx) error {
	for attempt := 1; ; attempt++ {
		err := writeNext(ctx, tx, u.cur, &u.next, u.events)
		if err == nil {
			break
		}
		if !errors.Is(err, errStale) {
			return err
		}
		if attempt == maxUpdateAttempts {
			return fmt.Errorf("changed %d times while updating: %w", maxUpdateAttempts, approvals.ErrConflict)
		}
		if err := u.again(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// again reads the request in tx and lets fn change it anew.
func (u *update) again(ctx context.Context, tx *wtx) error {
	cur, err := getRequest(ctx, tx, u.id)
	if err != nil {
		return err
	}
	u.cur = cur
	next, events, err := u.fn(cur.Clone())
	if err != nil {
		u.fnErr = err
		return err
	}
	if u.next, err = approvals.NextVersion(cur, next); err != nil {
		return err
	}
	u.events = events
	return nil
}

// writeNext stores *next (as approvals.NextVersion made it) over cur, with
// events, in tx. If the stored request is no longer at cur's version, it
// writes nothing and returns errStale. If next has no message, it is given
// the one stored: SetMessage may have run since the request was read, and
// it does not change the version.
func writeNext(ctx context.Context, tx *wtx, cur approvals.Request, next *approvals.Request, events []approvals.Event) error {
	var channel, ts string
	err := tx.QueryRowContext(ctx, `UPDATE requests SET version = ?, state = ?, dry_run = ?,
		escalated_at = ?, expired_at = ?, refusal = ?, finished_at = ?
		WHERE id = ? AND version = ?
		RETURNING channel, message_ts`,
		next.Version, string(next.State()), next.DryRun,
		millis(next.EscalatedAt), millis(next.ExpiredAt), next.Refusal, millis(next.FinishedAt),
		cur.ID, cur.Version).Scan(&channel, &ts)
	if errors.Is(err, sql.ErrNoRows) {
		return errStale
	}
	if err != nil {
		return err
	}
	for i, t := range next.Targets {
		if t == cur.Targets[i] {
			continue
		}
		seen, err := observed.Encode(t)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE targets SET state = ?, outcome = ?, finished_at = ?,
			observed = ?, check_pending_until = ?, watch_until = ?
			WHERE request_id = ? AND position = ?`, string(t.State), t.Outcome, millis(t.FinishedAt),
			seen, observed.PendingUntil(t), observed.WatchUntil(t), cur.ID, i); err != nil {
			return fmt.Errorf("update target %s: %w", t.Email, err)
		}
	}
	if err := insertReviews(ctx, tx, cur.ID, len(cur.Reviews), next.Reviews[len(cur.Reviews):]); err != nil {
		return err
	}
	for _, e := range events {
		if err := insertEvent(ctx, tx, *next, e); err != nil {
			return err
		}
	}
	if next.MessageTS == "" {
		next.Channel, next.MessageTS = channel, ts
	}
	return nil
}

// Append implements approvals.Store.
func (d *DB) Append(ctx context.Context, e approvals.Event) error {
	if err := d.write(ctx, func(ctx context.Context, tx *wtx) error { return insertEvent(ctx, tx, e.Request, e) }); err != nil {
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
	err := d.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE key = ?)
		OR EXISTS (SELECT 1 FROM requests WHERE submit_key = ?)`, key, key).Scan(&seen)
	if err != nil {
		return false, fmt.Errorf("look up key %s: %w", key, err)
	}
	return seen, nil
}

// CountByRequester implements approvals.Store.
func (d *DB) CountByRequester(ctx context.Context, requester string, s approvals.State) (int, error) {
	var n int
	err := d.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM requests WHERE requester = ? AND state = ?`,
		requester, string(s)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count %s requests of %s: %w", s, requester, err)
	}
	return n, nil
}

// CountByState returns how many requests are in state s.
func (d *DB) CountByState(ctx context.Context, s approvals.State) (int, error) {
	var n int
	if err := d.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM requests WHERE state = ?`, string(s)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s requests: %w", s, err)
	}
	return n, nil
}

// ListByState implements approvals.Store.
func (d *DB) ListByState(ctx context.Context, s approvals.State) ([]approvals.Request, error) {
	out, err := requests(ctx, d.read, `WHERE state = ? ORDER BY created_at, id`, string(s))
	if err != nil {
		return nil, fmt.Errorf("list %s requests: %w", s, err)
	}
	return out, nil
}

// Watched implements approvals.Store.
func (d *DB) Watched(ctx context.Context, now time.Time) ([]approvals.Request, error) {
	out, err := requests(ctx, d.read, `WHERE id IN (SELECT request_id FROM targets
		WHERE (check_pending_until != 0 OR watch_until != 0) AND (check_pending_until != 0 OR watch_until > ?))
		ORDER BY created_at, id`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("list watched requests: %w", err)
	}
	return out, nil
}

// FindByPrefix implements approvals.Store.
func (d *DB) FindByPrefix(ctx context.Context, prefix string, limit int) ([]approvals.Request, error) {
	// A range on the primary key: IDs are lower-case hex and hyphens, all
	// below DEL (0x7f).
	out, err := requests(ctx, d.read, `WHERE id >= ? AND id < ? ORDER BY created_at, id LIMIT ?`, prefix, prefix+"\x7f", limit)
	if err != nil {
		return nil, fmt.Errorf("find requests %s…: %w", prefix, err)
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

// scan reads a request from the first columns of a row (requestColumns),
// and any extra columns into extra.
func scan(s scanner, extra ...any) (approvals.Request, error) {
	var (
		r                                                approvals.Request
		email, state, targets, reviews                   string
		created, expires, finished, escalated, expiredAt int64
	)
	dest := append([]any{&r.ID, &email, &r.Options.Devices, &r.Options.WARPReauth, &r.Options.UserUID,
		&r.Reason, &r.Requester, &state, &r.DryRun,
		&created, &expires, &finished, &r.Channel, &r.MessageTS, &r.SubmitKey,
		&r.Version, &r.Required, &escalated, &expiredAt, &r.Refusal,
		&targets, &reviews}, extra...)
	if err := s.Scan(dest...); err != nil {
		return r, err
	}
	if !approvals.State(state).Valid() {
		return r, fmt.Errorf("request %s has unknown state %q", r.ID, state)
	}
	r.CreatedAt, r.ExpiresAt, r.FinishedAt = fromMillis(created), fromMillis(expires), fromMillis(finished)
	r.EscalatedAt, r.ExpiredAt = fromMillis(escalated), fromMillis(expiredAt)
	if err := scanTargets(targets, &r); err != nil {
		return r, fmt.Errorf("read targets of %s: %w", r.ID, err)
	}
	if err := scanReviews(reviews, &r); err != nil {
		return r, fmt.Errorf("read reviews of %s: %w", r.ID, err)
	}
	return r, nil
}

// scanTargets sets r's targets from their packed rows (see requestColumns).
func scanTargets(rows string, r *approvals.Request) error {
	pr := newPackedRows(rows)
	var order []key
	for {
		var (
			t                    approvals.Target
			position, finished   int64
			state, outcome, seen string
		)
		ok, err := pr.scan(&position, &t.Email, &t.Person, &state, &outcome, &finished, &seen)
		if err != nil {
			return err
		}
		if !ok {
			inOrder(r.Targets, order)
			return nil
		}
		order = append(order, key{position, 0})
		if err := observed.Decode(seen, &t); err != nil {
			return err
		}
		t.State, t.Outcome, t.FinishedAt = approvals.TargetState(state), outcome, fromMillis(finished)
		if !t.State.Valid() {
			return fmt.Errorf("target %s has unknown state %q", t.Email, state)
		}
		r.Targets = append(r.Targets, t)
	}
}

// scanReviews sets r's reviews from their packed rows (see requestColumns).
func scanReviews(rows string, r *approvals.Request) error {
	pr := newPackedRows(rows)
	var order []key
	for {
		var (
			rv       approvals.Review
			seq, at  int64
			decision string
		)
		ok, err := pr.scan(&seq, &rv.By, &decision, &rv.Reason, &at)
		if err != nil {
			return err
		}
		if !ok {
			inOrder(r.Reviews, order)
			return nil
		}
		order = append(order, key{seq, at})
		if rv.Decision, err = approvals.ParseDecision(decision); err != nil {
			return fmt.Errorf("review by %s: %w", rv.By, err)
		}
		rv.At = fromMillis(at)
		r.Reviews = append(r.Reviews, rv)
	}
}

// key is what rows are ordered by: targets by position, reviews by seq then
// at.
type key [2]int64

// inOrder sorts items, whose keys are keys, by key, keeping the order of
// equal keys, as ORDER BY does. (group_concat aggregates its rows in no
// promised order; ORDER BY within it would sort them in a temporary B-tree,
// costing more than reading the request.)
func inOrder[T any](items []T, keys []key) {
	if slices.IsSortedFunc(keys, compareKeys) {
		return
	}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return compareKeys(keys[a], keys[b]) })
	sorted := make([]T, len(items))
	for i, j := range idx {
		sorted[i] = items[j]
	}
	copy(items, sorted)
}

// compareKeys orders keys.
func compareKeys(a, b key) int {
	if c := cmp.Compare(a[0], b[0]); c != 0 {
		return c
	}
	return cmp.Compare(a[1], b[1])
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
