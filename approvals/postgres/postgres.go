// Package postgres stores approvals.Requests in PostgreSQL, so that several
// replicas of revokebot can share one store. It uses pgx and its connection
// pool (pgxpool): the native protocol, typed errors (a server's SQLSTATE
// apart from a broken connection), and a bounded pool.
//
// Every invariant the Store promises holds across processes: a transaction
// per change, a version check for updates, unique indexes for keys and
// reviews, and advisory locks where a count must stay true until an insert
// (the pending cap), where claims are handed out one caller at a time,
// where events are chained, and while the schema is migrated.
//
// A change's statements are sent in batches, one round trip each (see
// beginSQL): a Create or an Append is one round trip, an Update three.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	neturl "net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/revokebot/revokebot/approvals"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Defaults of the pool, unless the URL sets them (pool_max_conns,
// pool_min_conns, connect_timeout).
const (
	defaultMaxConns       = 10
	defaultMinConns       = 1
	defaultConnectTimeout = 5 * time.Second
)

// Advisory lock keys. The migration lock is a session lock on one bigint
// key; the others are transaction locks on two int4 keys (a class and a
// value), a key space apart from the first.
const (
	// migrationLock is held while migrations are applied ("revokebot" in
	// ASCII, 0x7265766f6b65626f).
	migrationLock int64 = 0x7265766f6b65626f
	// requesterLock, with hashtext of a requester, is held by Create while
	// it counts that requester's pending requests and inserts one.
	requesterLock int32 = 0x72657601
	// claimLock, with a Part, is held by Claim while it claims that part.
	claimLock int32 = 0x72657602
	// chainLock, with 0, is held by every transaction that records an
	// event, from just before the event's insert to its commit, so that
	// events are numbered and chained one after the other (see events.go).
	chainLock int32 = 0x72657603
)

// DB is a PostgreSQL-backed approvals.Store and approvals.Outbox.
type DB struct {
	pool *pgxpool.Pool
	// callTimeout bounds each call (see with); tests shorten it.
	callTimeout time.Duration
}

var _ approvals.Store = (*DB)(nil)

// Open connects to the PostgreSQL database at url and brings its schema up
// to date. url is a postgres:// or postgresql:// URL or a libpq keyword/value
// string, as pgxpool.ParseConfig reads it: sslmode and the pool_* settings
// are understood, and unknown parameters (such as search_path) are sent to
// the server as run-time parameters. The pool keeps up to 10 connections
// and at least 1, and a connection attempt gives up after 5 seconds, unless
// url says otherwise.
//
// If the server cannot be reached, Open returns an error wrapping
// approvals.ErrUnavailable that names the host, port and database. No
// error of Open shows the password. An empty url is refused (libpq would
// read it as "the defaults"; write "postgres://" for that). The caller must
// Close the DB.
func Open(ctx context.Context, url string) (*DB, error) {
	return open(ctx, url, nil)
}

// open is Open, with adjust (unless nil) applied to the pool's
// configuration first: tests watch the connections through it.
func open(ctx context.Context, url string, adjust func(*pgxpool.Config)) (*DB, error) {
	if strings.TrimSpace(url) == "" {
		// libpq would connect to its defaults: most likely a mistake.
		return nil, errors.New("open database: empty URL")
	}
	cfg, err := parseConfig(url)
	if err != nil {
		return nil, err
	}
	if adjust != nil {
		adjust(cfg)
	}
	where := address(cfg.ConnConfig.Config)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %s", where, redact(err.Error(), secrets(url, cfg)...))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, connectError(where, cfg, url, err)
	}
	d := &DB{pool: pool, callTimeout: callTimeout}
	if err := d.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database %s: %w", where, err)
	}
	if err := d.chainOld(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database %s: chain the event log: %w", where, err)
	}
	return d, nil
}

// OpenReadOnly connects to the PostgreSQL database at url for reading only
// (a read-only replica, say), changing nothing: every transaction is read
// only, and there is no migration and no chaining. Its schema must be the
// one this revokebot writes; another is refused. Only reads may be made
// through it.
func OpenReadOnly(ctx context.Context, url string) (*DB, error) {
	cfg, err := parseConfig(url)
	if err != nil {
		return nil, err
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	where := address(cfg.ConnConfig.Config)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %s", where, redact(err.Error(), secrets(url, cfg)...))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, connectError(where, cfg, url, err)
	}
	d := &DB{pool: pool, callTimeout: callTimeout}
	v, err := d.SchemaVersion(ctx)
	if err == nil {
		var all []migration
		if all, err = embedded(); err == nil && len(all) > 0 && v != all[len(all)-1].version {
			err = fmt.Errorf("its schema is version %d, and this revokebot reads version %d: start this revokebot on the primary once (it upgrades it), or use the revokebot that wrote it", v, all[len(all)-1].version)
		}
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database %s read-only: %w", where, err)
	}
	return d, nil
}

// parseConfig reads url, setting this package's defaults where url sets
// nothing. Its errors never show the password.
func parseConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts what it recognises as a password; redact again what
		// we can find, and keep the error out of the chain (it holds the
		// URL).
		return nil, errors.New("parse database URL: " + redact(err.Error(), secrets(url, nil)...))
	}
	// pgxpool sets its own pool sizes when the URL sets none, and removes
	// the pool_* settings: look for them in a plain parse.
	plain, err := pgconn.ParseConfig(url)
	if err != nil {
		return nil, errors.New("parse database URL: " + redact(err.Error(), secrets(url, nil)...))
	}
	if _, ok := plain.RuntimeParams["pool_max_conns"]; !ok {
		cfg.MaxConns = defaultMaxConns
	}
	if _, ok := plain.RuntimeParams["pool_min_conns"]; !ok {
		cfg.MinConns = min(defaultMinConns, cfg.MaxConns)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	return cfg, nil
}

// address names the server and database of cfg, as host:port/database.
func address(cfg pgconn.Config) string {
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database
}

// connectError explains why the first connection failed, without the
// password.
func connectError(where string, cfg *pgxpool.Config, url string, err error) error {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && !unavailableCode(pgErr.Code) {
		// The server answered, and refused (a wrong password, a missing
		// database): not an outage.
		return &safeError{
			msg: fmt.Sprintf("open database %s as %s: %s", where, cfg.ConnConfig.User,
				redact(pgErr.Message+" (SQLSTATE "+pgErr.Code+")", secrets(url, cfg)...)),
			errs: []error{err},
		}
	}
	// What the network said (the address and the failure, never the
	// password), or, failing that, pgx's own words redacted.
	reason := redact(err.Error(), secrets(url, cfg)...)
	if opErr, ok := errors.AsType[*net.OpError](err); ok {
		reason = opErr.Error()
	} else if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
		reason = fmt.Sprintf("no answer within %s", cfg.ConnConfig.ConnectTimeout)
	}
	return &safeError{
		msg:  fmt.Sprintf("open database %s: %s: %s", where, approvals.ErrUnavailable, reason),
		errs: []error{approvals.ErrUnavailable, err},
	}
}

// safeError says msg, which shows no secret, and wraps errs for errors.Is
// and errors.As.
type safeError struct {
	msg  string
	errs []error
}

func (e *safeError) Error() string   { return e.msg }
func (e *safeError) Unwrap() []error { return e.errs }

var passwordSetting = regexp.MustCompile(`(?:^|\s)(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// secrets returns the passwords in url and cfg (which may be nil), in the
// forms they may take in an error.
func secrets(url string, cfg *pgxpool.Config) []string {
	var out []string
	if u, err := neturl.Parse(url); err == nil {
		if p, ok := u.User.Password(); ok {
			out = append(out, p, neturl.QueryEscape(p), neturl.PathEscape(p))
		}
		for _, k := range []string{"password", "sslpassword"} {
			if v := u.Query().Get(k); v != "" {
				out = append(out, v, neturl.QueryEscape(v))
			}
		}
	} else if i, j := strings.Index(url, "://"), strings.LastIndex(url, "@"); i >= 0 && j > i {
		// A URL too broken to parse: whatever follows user: is secret.
		if k := strings.Index(url[i+3:j], ":"); k >= 0 {
			out = append(out, url[i+3+k+1:j])
		}
	}
	for _, m := range passwordSetting.FindAllStringSubmatch(url, -1) {
		out = append(out, strings.Trim(m[1], "'"))
	}
	if cfg != nil {
		// Includes a password read from PGPASSWORD or a password file.
		out = append(out, cfg.ConnConfig.Password)
	}
	return out
}

// redact replaces every secret in s.
func redact(s string, secrets ...string) string {
	// Longest first, so that a secret containing another goes whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, p := range secrets {
		if p != "" {
			s = strings.ReplaceAll(s, p, "xxxxx")
		}
	}
	return s
}

// Close closes the pool's connections. It always returns nil.
func (d *DB) Close() error {
	d.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error { return c.Ping(ctx) }); err != nil {
		return fail(err, "ping database")
	}
	return nil
}

// SchemaVersion returns the number of the last migration applied.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	})
	if err != nil {
		return 0, fail(err, "read schema version")
	}
	return v, nil
}

// migration is one embedded migration.
type migration struct {
	version int
	name    string
	body    string
}

// embedded returns the embedded migrations, in order.
func embedded() ([]migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var out []migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		n, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with its number", base)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", base, err)
		}
		out = append(out, migration{version: n, name: base, body: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies, in order and each in its own transaction, every embedded
// migration not recorded in schema_migrations. It holds an advisory lock
// meanwhile, on one connection, so that replicas starting together apply
// each migration once: the others wait, then find it applied.
func (d *DB) migrate(ctx context.Context) error {
	all, err := embedded()
	if err != nil {
		return err
	}
	c, err := d.pool.Acquire(ctx)
	if err != nil {
		return fail(err, "migrate")
	}
	defer c.Release()
	if _, err := c.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fail(err, "lock for migrations")
	}
	defer func() {
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := c.Exec(unlockCtx, `SELECT pg_advisory_unlock($1)`, migrationLock); err != nil {
			// The session may hold the lock still: end it, and the lock
			// with it.
			c.Conn().Close(unlockCtx)
		}
	}()
	if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fail(err, "create schema_migrations")
	}
	applied := map[int]bool{}
	rows, err := c.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fail(err, "read schema_migrations")
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fail(err, "read schema_migrations")
	}
	for _, v := range versions {
		applied[v] = true
	}
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.body); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.version)
			return err
		})
		if err != nil {
			return fail(err, "apply migration %s", m.name)
		}
	}
	return nil
}

// callTimeout bounds one call of the Store (the acquiring of a connection,
// and every statement of the call), so that a server that stops answering
// without closing the connection (a network partition) is an outage after
// a while, not a hang.
const callTimeout = 10 * time.Second

// errCallTimeout is the cause of a call that ran out of callTimeout.
var errCallTimeout = errors.New("the database did not answer in time")

// with runs fn on a connection of the pool, within callTimeout: fn must use
// the context it is given. A connection the pool cannot give (the server
// cannot be reached, or none is free in time), or a call that runs out of
// callTimeout, is an error wrapping approvals.ErrUnavailable.
func (d *DB) with(ctx context.Context, fn func(context.Context, *pgxpool.Conn) error) error {
	return d.within(ctx, d.callTimeout, fn)
}

// within is with, bounded by timeout instead (0: only by ctx).
func (d *DB) within(ctx context.Context, timeout time.Duration, fn func(context.Context, *pgxpool.Conn) error) error {
	call := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		call, cancel = context.WithTimeoutCause(ctx, timeout, errCallTimeout)
		defer cancel()
	}
	timedOut := func(err error) error {
		if ctx.Err() == nil && errors.Is(context.Cause(call), errCallTimeout) {
			return fmt.Errorf("%w: no answer within %s (%w)", approvals.ErrUnavailable, timeout, err)
		}
		return err
	}
	c, err := d.pool.Acquire(call)
	if err != nil {
		if ctx.Err() != nil {
			return err // the caller gave up: not an outage
		}
		if err := timedOut(err); errors.Is(err, approvals.ErrUnavailable) {
			return err
		}
		return fmt.Errorf("%w (%w)", approvals.ErrUnavailable, err)
	}
	defer c.Release()
	return timedOut(fn(call, c))
}

// fail wraps err with what failed, and with approvals.ErrUnavailable if the
// failure is that the server cannot be reached.
func fail(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if !errors.Is(err, approvals.ErrUnavailable) && unavailable(err) {
		return fmt.Errorf("%s: %w (%w)", what, approvals.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// unavailable reports whether err says that the server cannot be reached
// (or cannot serve now), rather than that it refused what was asked.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return unavailableCode(pgErr.Code)
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller gave up (context.DeadlineExceeded is a net.Error too).
		return false
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err)
}

// unavailableCode reports whether a server's SQLSTATE says that it cannot
// serve now: a connection exception (class 08), a shutdown, or too many
// connections.
func unavailableCode(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"),
		code == "57P01", // admin_shutdown
		code == "57P02", // crash_shutdown
		code == "57P03", // cannot_connect_now
		code == "53300": // too_many_connections
		return true
	}
	return false
}

// uniqueViolation turns a violation of the unique indexes that stand for the
// Store's invariants into the domain's error: a key recorded already
// (ErrDuplicate), a second review by one person (ErrReviewed). Other errors
// are returned as they are.
func uniqueViolation(err error) error {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	if !ok || pgErr.Code != "23505" {
		return err
	}
	switch pgErr.ConstraintName {
	case "requests_submit_key", "events_key":
		return fmt.Errorf("%w (%s)", approvals.ErrDuplicate, pgErr.ConstraintName)
	case "reviews_pkey":
		return fmt.Errorf("%w (%s)", approvals.ErrReviewed, pgErr.ConstraintName)
	}
	return err
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

// limit is a LIMIT argument: as in SQLite, a negative limit is none.
func limit(n int) any {
	if n < 0 {
		return nil
	}
	return n
}
