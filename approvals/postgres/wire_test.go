package postgres_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/postgres"
)

// wire counts what a store sends to the server: round trips (writes on its
// connections: each is a flush of messages whose answers the store then
// waits for), statements, and transactions begun.
type wire struct {
	writes, statements, txs atomic.Int64
	// mode is how the pool's connections execute statements.
	mode pgx.QueryExecMode
}

// counts is a reading of a wire.
type counts struct{ roundTrips, statements, txs int64 }

func (w *wire) read() counts {
	return counts{w.writes.Load(), w.statements.Load(), w.txs.Load()}
}

func (c counts) minus(o counts) counts {
	return counts{c.roundTrips - o.roundTrips, c.statements - o.statements, c.txs - o.txs}
}

// adjust makes a pool of one connection, counted by w, never pinged.
func (w *wire) adjust(cfg *pgxpool.Config) {
	w.mode = cfg.ConnConfig.DefaultQueryExecMode
	cfg.MaxConns, cfg.MinConns = 1, 1
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countedConn{Conn: c, w: w}, nil
	}
	cfg.ConnConfig.Tracer = w
}

func (w *wire) statement(sql string) {
	w.statements.Add(1)
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(sql)), "begin") {
		w.txs.Add(1)
	}
}

func (w *wire) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	w.statement(data.SQL)
	return ctx
}

func (w *wire) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (w *wire) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	for _, q := range data.Batch.QueuedQueries {
		w.statement(q.SQL)
	}
	return ctx
}

func (w *wire) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (w *wire) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// countedConn counts its writes on a wire.
type countedConn struct {
	net.Conn
	w *wire
}

func (c *countedConn) Write(b []byte) (int, error) {
	c.w.writes.Add(1)
	return c.Conn.Write(b)
}

// TestRoundTrips counts the round trips, statements and transactions of
// each operation on the hot path of a request, its statements prepared
// already (the second time it runs on the pool's one connection), and
// holds them to what they are, so that a change that adds one is seen.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	w := &wire{}
	ctx := context.Background()
	db, err := postgres.OpenAdjusted(ctx, newSchema(t), w.adjust)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Statements are prepared once per connection, then only bound and
	// executed (pgx's default, unless the URL sets default_query_exec_mode).
	if w.mode != pgx.QueryExecModeCacheStatement {
		t.Skipf("statements executed in mode %s, not cache_statement: the counts are for that", w.mode)
	}

	// Each operation works on a request of its own, made (uncounted) by
	// setup, if any.
	type op struct {
		name  string
		setup func(t *testing.T) approvals.Request
		run   func(t *testing.T, r approvals.Request) error
		want  counts // at most
	}
	created := func(t *testing.T) approvals.Request {
		r := newRequest()
		r.DryRun = false
		create(t, db, r)
		return r
	}
	approved := func(t *testing.T) approvals.Request {
		r := created(t)
		if _, err := db.Update(ctx, r.ID, approveFn("UAPP")); err != nil {
			t.Fatal(err)
		}
		return r
	}
	ops := []op{
		{name: "Create", want: counts{1, 6, 1}, run: func(t *testing.T, _ approvals.Request) error {
			r := newRequest()
			return db.Create(ctx, r, eventOf(approvals.EventRequested, r), 0)
		}},
		{name: "Create with a submit key and the pending cap", want: counts{2, 8, 1}, run: func(t *testing.T, _ approvals.Request) error {
			r := newRequest()
			r.SubmitKey, r.Requester = "submit-"+r.ID, "UCAP-"+r.ID
			e := eventOf(approvals.EventRequested, r)
			e.Key = r.SubmitKey
			return db.Create(ctx, r, e, 3)
		}},
		{name: "Get", setup: created, want: counts{1, 3, 0}, run: func(t *testing.T, r approvals.Request) error {
			_, err := db.Get(ctx, r.ID)
			return err
		}},
		{name: "Update (approve)", setup: created, want: counts{3, 9, 1}, run: func(t *testing.T, r approvals.Request) error {
			_, err := db.Update(ctx, r.ID, approveFn("UAPP"))
			return err
		}},
		{name: "Update (a target's outcome)", setup: approved, want: counts{3, 9, 1}, run: func(t *testing.T, r approvals.Request) error {
			_, err := db.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
				at := time.Now().UTC().Truncate(time.Millisecond)
				cur.Targets[0].State, cur.Targets[0].Outcome, cur.Targets[0].FinishedAt = approvals.TargetRevoked, "revoked", at
				return cur, []approvals.Event{{Kind: approvals.EventRevoked, Target: cur.Targets[0].Email, At: at}}, nil
			})
			return err
		}},
		{name: "Append", setup: created, want: counts{1, 4, 1}, run: func(t *testing.T, r approvals.Request) error {
			e := eventOf(approvals.EventRefused, r)
			e.Actor, e.Key = "UX", "refused-"+r.ID
			return db.Append(ctx, e)
		}},
		{name: "Claim and MarkDelivered", setup: created, want: counts{3, 7, 1}, run: func(t *testing.T, r approvals.Request) error {
			ds, err := db.Claim(ctx, approvals.AuditRecord, "replica-a", 1, time.Minute)
			if err != nil || len(ds) != 1 {
				t.Fatalf("Claim = %d, %v", len(ds), err)
			}
			return db.MarkDelivered(ctx, ds[0].Seq, approvals.AuditRecord)
		}},
	}
	for _, o := range ops {
		var got counts
		for range 2 { // the first prepares the statements
			var r approvals.Request
			if o.setup != nil {
				r = o.setup(t)
			}
			before := w.read()
			if err := o.run(t, r); err != nil {
				t.Fatalf("%s: %v", o.name, err)
			}
			got = w.read().minus(before)
		}
		t.Logf("%-45s %2d round trips, %2d statements, %d transactions", o.name, got.roundTrips, got.statements, got.txs)
		if got.roundTrips > o.want.roundTrips || got.statements > o.want.statements || got.txs > o.want.txs {
			t.Errorf("%s: %d round trips, %d statements, %d transactions; want at most %d, %d, %d",
				o.name, got.roundTrips, got.statements, got.txs, o.want.roundTrips, o.want.statements, o.want.txs)
		}
	}
}
