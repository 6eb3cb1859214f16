package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/postgres"
	"github.com/revokebot/revokebot/approvals/postgres/pgtest"
	"github.com/revokebot/revokebot/approvals/storetest"
)

func serverURL(tb testing.TB) string { return pgtest.ServerURL(tb) }

func withSetting(tb testing.TB, url, key, value string) string {
	return pgtest.WithSetting(tb, url, key, value)
}

func newSchema(tb testing.TB) string { return pgtest.Schema(tb) }

// queryInt returns the one number sql selects on url.
func queryInt(tb testing.TB, url, sql string, args ...any) int {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return n
}

// openURL opens the store at url, closed when tb ends.
func openURL(tb testing.TB, url string) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// MustOpen opens a store in a fresh schema; it also returns the schema's URL.
func MustOpen(tb testing.TB) (*postgres.DB, string) {
	tb.Helper()
	url := newSchema(tb)
	return openURL(tb, url), url
}

// TestConformance runs the behaviour every approvals.Store promises.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) (approvals.Store, func() approvals.Store) {
		db, url := MustOpen(t)
		return db, func() approvals.Store {
			db.Close()
			return openURL(t, url)
		}
	})
}

// migrationCount is how many migrations are embedded.
func migrationCount(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestMigrationsAppliedOnceByReplicasStartingTogether(t *testing.T) {
	t.Parallel()
	url := newSchema(t)
	const replicas = 5
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		dbs   [replicas]*postgres.DB
		errs  [replicas]error
	)
	for i := range replicas {
		wg.Go(func() {
			<-start
			dbs[i], errs[i] = postgres.Open(context.Background(), url)
		})
	}
	close(start)
	wg.Wait()
	want := migrationCount(t)
	for i, db := range dbs {
		if errs[i] != nil {
			t.Fatalf("replica %d: Open: %v", i, errs[i])
		}
		defer db.Close()
		if v, err := db.SchemaVersion(context.Background()); err != nil || v != want {
			t.Errorf("replica %d: SchemaVersion = %d, %v; want %d", i, v, err, want)
		}
		// Each replica's store works.
		r := newRequest()
		create(t, db, r)
		if _, err := db.Get(context.Background(), r.ID); err != nil {
			t.Errorf("replica %d: Get: %v", i, err)
		}
	}
	if n := queryInt(t, url, `SELECT COUNT(*) FROM schema_migrations`); n != want {
		t.Errorf("schema_migrations has %d rows, want %d (each migration once)", n, want)
	}
	if n := queryInt(t, url, `SELECT COUNT(DISTINCT version) FROM schema_migrations`); n != want {
		t.Errorf("schema_migrations has %d versions, want %d", n, want)
	}
}

// TestReopenAppliesNothing: a store opened again on a migrated schema
// applies no migration again (that what was written survives is
// storetest's RequestsSurviveRestart).
func TestReopenAppliesNothing(t *testing.T) {
	t.Parallel()
	db, url := MustOpen(t)
	const lastApplied = `SELECT (EXTRACT(EPOCH FROM MAX(applied_at)) * 1e6)::bigint FROM schema_migrations`
	applied := queryInt(t, url, lastApplied)
	db.Close()
	openURL(t, url)
	if n := queryInt(t, url, `SELECT COUNT(*) FROM schema_migrations`); n != migrationCount(t) {
		t.Errorf("schema_migrations has %d rows after reopening, want %d", n, migrationCount(t))
	}
	if at := queryInt(t, url, lastApplied); at != applied {
		t.Errorf("a migration was applied again on reopening")
	}
}

// TestCountByState: CountByState is not part of approvals.Store, so its
// test is run here rather than by storetest.Run.
func TestCountByState(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	storetest.CountByState(t, db)
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, url := range []string{
		"postgres://postgres:s3cret@127.0.0.1:1/test",
		"postgresql://postgres:s3cret@127.0.0.1:1/test?sslmode=disable&search_path=x",
		"postgres://postgres@127.0.0.1:1/test?password=s3cret",
		"host=127.0.0.1 port=1 user=postgres password=s3cret dbname=test sslmode=disable",
	} {
		_, err := postgres.Open(ctx, url)
		if err == nil {
			t.Fatalf("Open(%s) succeeded", url)
		}
		msg := err.Error()
		if strings.Contains(msg, "s3cret") {
			t.Errorf("the error shows the password: %s", msg)
		}
		if !strings.Contains(msg, "127.0.0.1:1/test") {
			t.Errorf("the error does not name the server and database (127.0.0.1:1/test): %s", msg)
		}
		if !errors.Is(err, approvals.ErrUnavailable) {
			t.Errorf("the error does not wrap ErrUnavailable: %v", err)
		}
		t.Logf("%s", msg)
	}
}

func TestOpenBadURL(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"postgres://postgres:s3cret@127.0.0.1:notaport/test",
		"postgres://postgres:s3cret@127.0.0.1:5432/test?pool_max_conns=many",
		"postgres://postgres:s3cret@127.0.0.1:5432/test?sslmode=sometimes",
		"host=127.0.0.1 password=s3cret connect_timeout=soon",
		"postgres://postgres@127.0.0.1:5432/test?password=s3cret&pool_min_conns=few",
		"",
	} {
		_, err := postgres.Open(context.Background(), url)
		if err == nil {
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the password: %s", err)
		}
		t.Logf("%s", err)
	}
}

// TestOpenRefused: a server that answers but refuses (no such database)
// is not an outage, and its error shows no password either.
func TestOpenRefused(t *testing.T) {
	t.Parallel()
	url := withSetting(t, serverURL(t), "dbname", "revokebot_missing_"+strconv.Itoa(os.Getpid()))
	url = withSetting(t, url, "password", "s3cret")
	_, err := postgres.Open(context.Background(), url)
	if err == nil {
		t.Fatal("Open of a missing database succeeded")
	}
	if errors.Is(err, approvals.ErrUnavailable) {
		t.Errorf("a refusal is reported as an outage: %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the password: %s", err)
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "3D000" {
		t.Errorf("err = %v, want the server's invalid_catalog_name (3D000)", err)
	}
}

// TestUnavailable takes the server away from a working store: every
// operation then fails with an error wrapping ErrUnavailable.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	p := pgtest.NewProxy(t, newSchema(t))
	proxied := p.URL()
	db := openURL(t, proxied)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := newRequest()
	create(t, db, r)
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping through the proxy: %v", err)
	}

	p.Cut()
	ops := map[string]func() error{
		"Ping": func() error { return db.Ping(ctx) },
		"Get":  func() error { _, err := db.Get(ctx, r.ID); return err },
		"Create": func() error {
			r := newRequest()
			return db.Create(ctx, r, eventOf(approvals.EventRequested, r), 3)
		},
		"Update":  func() error { _, err := db.Update(ctx, r.ID, approveFn("U2")); return err },
		"Claim":   func() error { _, err := db.Claim(ctx, approvals.AuditRecord, "a", 10, time.Minute); return err },
		"Lease":   func() error { _, err := db.Lease(ctx, "x", "a", time.Minute); return err },
		"Reserve": func() error { _, err := db.Reserve(ctx, "x", time.Second, 1); return err },
		"Backlog": func() error { _, err := db.Backlog(ctx); return err },
	}
	for name, op := range ops {
		err := op()
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, approvals.ErrUnavailable) {
			t.Errorf("%s with the server gone: %v, want an error wrapping ErrUnavailable", name, err)
		}
	}
	// A store whose server is gone from the start says so at Open.
	if _, err := postgres.Open(ctx, proxied); !errors.Is(err, approvals.ErrUnavailable) {
		t.Errorf("Open with the server gone: %v, want ErrUnavailable", err)
	}
	// Nor is a request the store cannot read reported missing.
	if _, err := db.Get(ctx, uuid.NewString()); errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("Get answered ErrNotFound with the server gone")
	}
}

// TestPartition: a server that stops answering without closing anything (a
// network partition) is an outage once a call has waited its bound, not a
// hang.
func TestPartition(t *testing.T) {
	t.Parallel()
	p := pgtest.NewProxy(t, newSchema(t))
	db := openURL(t, p.URL())
	db.SetCallTimeout(300 * time.Millisecond)
	r := newRequest()
	create(t, db, r)

	p.Stall()
	ctx := context.Background()
	for name, op := range map[string]func() error{
		"Get":    func() error { _, err := db.Get(ctx, r.ID); return err },
		"Update": func() error { _, err := db.Update(ctx, r.ID, approveFn("U2")); return err },
		"Lease":  func() error { _, err := db.Lease(ctx, "x", "a", time.Minute); return err },
	} {
		start := time.Now()
		err := op()
		if !errors.Is(err, approvals.ErrUnavailable) || time.Since(start) > 5*time.Second {
			t.Errorf("%s during a partition: %v after %s, want ErrUnavailable within the bound", name, err, time.Since(start))
		}
	}
	// The caller's own deadline is the caller's: not an outage.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := db.Get(short, r.ID); errors.Is(err, approvals.ErrUnavailable) {
		t.Errorf("the caller's deadline reported as an outage: %v", err)
	}
	p.Cut() // the stalled connections' goodbyes would wait for their own deadline
}

// TestRefusalIsNoOutage: an error the server answers with does not wrap
// ErrUnavailable.
func TestRefusalIsNoOutage(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	r := newRequest()
	// An event of a request that does not exist breaks a foreign key.
	err := db.Append(ctx, eventOf(approvals.EventRefused, r))
	if err == nil || errors.Is(err, approvals.ErrUnavailable) {
		t.Errorf("Append of an event of a missing request: %v, want a plain error", err)
	}
	if _, err := db.Get(ctx, r.ID); !errors.Is(err, approvals.ErrNotFound) || errors.Is(err, approvals.ErrUnavailable) {
		t.Errorf("Get of a missing request: %v, want ErrNotFound alone", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.Get(ctx, r.ID); err == nil || errors.Is(err, approvals.ErrUnavailable) {
		t.Errorf("Get with a cancelled context: %v, want a plain error", err)
	}
}

func newRequest() approvals.Request {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return approvals.Request{
		ID:        uuid.NewString(),
		Targets:   []approvals.Target{{Email: "alice@example.com", State: approvals.TargetWaiting}},
		Options:   approvals.Options{Devices: true, WARPReauth: true, UserUID: "0123456789abcdef0123456789abcdef"},
		Reason:    "laptop stolen",
		Requester: "U1",
		Required:  1,
		DryRun:    true,
		CreatedAt: now,
		ExpiresAt: now.Add(time.Hour),
	}
}

// eventOf returns an event of kind about r, as it stands after the event.
func eventOf(kind approvals.EventKind, r approvals.Request) approvals.Event {
	return approvals.Event{Kind: kind, Request: r, State: r.State(), At: time.Now().UTC().Truncate(time.Millisecond)}
}

// create stores r with its requested event.
func create(tb testing.TB, db *postgres.DB, r approvals.Request) {
	tb.Helper()
	if err := db.Create(context.Background(), r, eventOf(approvals.EventRequested, r), 0); err != nil {
		tb.Fatal(err)
	}
}

// approveFn returns an UpdateFunc recording who's approval.
func approveFn(who string) approvals.UpdateFunc {
	return func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		at := time.Now().UTC().Truncate(time.Millisecond)
		cur.Reviews = append(cur.Reviews, approvals.Review{By: who, Decision: approvals.Approve, At: at})
		return cur, []approvals.Event{{Kind: approvals.EventApproved, Actor: who, At: at}}, nil
	}
}

// A read-only open (a replica) reads what the store wrote, writes nothing,
// and refuses a schema that is not this revokebot's.
func TestOpenReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, url := MustOpen(t)
	r := newRequest()
	create(t, db, r)
	ro, err := postgres.OpenReadOnly(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got, err := ro.Get(ctx, r.ID); err != nil || got.ID != r.ID {
		t.Errorf("Get through the read-only open: %+v, %v", got, err)
	}
	if links, err := ro.Chain(ctx, 0, -1); err != nil || len(links) != 1 {
		t.Errorf("Chain: %d links, %v", len(links), err)
	}
	if err := ro.SetMessage(ctx, r.ID, "C1", "1.2"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a write through the read-only open: %v, want refused", err)
	}
	pgtest.Exec(t, url, `DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)`)
	if _, err := postgres.OpenReadOnly(ctx, url); err == nil || !strings.Contains(err.Error(), "its schema is version") {
		t.Errorf("another schema: %v, want refused", err)
	}
}

// The chain holds whatever the server's default isolation: under
// SERIALIZABLE (or REPEATABLE READ) a transaction's snapshot would be taken before the
// chain's lock is granted, and two events would chain from one predecessor.
func TestChainUnderSerializableDefault(t *testing.T) {
	t.Parallel()
	url := pgtest.WithSetting(t, newSchema(t), "default_transaction_isolation", "serializable")
	db := openURL(t, url)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			r := newRequest()
			if err := db.Create(ctx, r, eventOf(approvals.EventRequested, r), 0); err != nil {
				t.Errorf("Create: %v", err)
			}
		})
	}
	wg.Wait()
	links, err := db.Chain(ctx, 0, -1)
	if err != nil || len(links) != 16 {
		t.Fatalf("Chain: %d links, %v", len(links), err)
	}
	if _, err := approvals.VerifyChain("", links); err != nil {
		t.Errorf("the chain under a SERIALIZABLE default: %v", err)
	}
}

// The chain holds when replicas record events at once: two pools on one
// schema (one of them on a server whose default is SERIALIZABLE), each with
// many goroutines creating, approving and appending (some with a key
// another also records), make one chain with every event recorded in it,
// numbered in chain order, and each key once. Each event's hash is computed
// by the server from the previous one: it must be the one
// approvals.ChainHash gives, whatever the text (escapes, non-ASCII).
func TestChainAcrossPools(t *testing.T) {
	t.Parallel()
	url := newSchema(t)
	pools := []*postgres.DB{openURL(t, url), openURL(t, pgtest.WithSetting(t, url, "default_transaction_isolation", "serializable"))}
	ctx := context.Background()
	details := []string{"", `<@U1> & "quotes" \ back`, "tab\tnew\nline", "é ü ß 中文 🙂", "\u2028\u2029", strings.Repeat("x", 2000)}
	const workers = 12 // per pool
	var (
		wg                sync.WaitGroup
		recorded, dupKeys atomic.Int64
	)
	for p, db := range pools {
		for w := range workers {
			wg.Go(func() {
				for i := range 4 {
					r := newRequest()
					r.Reason = details[(w+i)%len(details)]
					if err := db.Create(ctx, r, eventOf(approvals.EventRequested, r), 0); err != nil {
						t.Errorf("Create: %v", err)
						return
					}
					recorded.Add(1)
					if _, err := db.Update(ctx, r.ID, approveFn("UAPP")); err != nil {
						t.Errorf("Update: %v", err)
						return
					}
					recorded.Add(1)
					e := eventOf(approvals.EventRefused, r)
					e.Actor, e.Detail = "UX", details[(p+w+i)%len(details)]
					e.Key = fmt.Sprintf("shared-%d-%d", w, i) // the same in both pools
					switch err := db.Append(ctx, e); {
					case err == nil:
						recorded.Add(1)
					case errors.Is(err, approvals.ErrDuplicate):
						dupKeys.Add(1)
					default:
						t.Errorf("Append: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	links, err := pools[0].Chain(ctx, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := int64(len(links)), recorded.Load(); got != want {
		t.Errorf("%d links, want the %d events recorded", got, want)
	}
	if got, want := dupKeys.Load(), int64(workers*4); got != want {
		t.Errorf("%d appends refused as duplicates, want %d (each shared key recorded once)", got, want)
	}
	if _, err := approvals.VerifyChain("", links); err != nil {
		t.Errorf("the chain written by two pools at once: %v", err)
	}
	for i := 1; i < len(links); i++ {
		if links[i].Seq <= links[i-1].Seq {
			t.Fatalf("link %d numbered %d after %d", i, links[i].Seq, links[i-1].Seq)
		}
	}
}
