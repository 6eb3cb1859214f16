package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/revokebot/revokebot/approvals"
)

// The event log is a hash chain (see approvals/chain.go): events are
// numbered (seq) and chained one after the other, in every process, under
// the chain's advisory lock (chainLock), held until the transaction ends.
// Its commits are therefore made one at a time, cluster-wide, each holding
// the lock through its WAL flush: a transaction takes it last, after all
// its other work, and sends the lock, the events and its COMMIT in the same
// batch, so that no round trip is made while it is held. (Only a statement
// failing after the lock, such as an event key recorded already, keeps it
// one round trip longer, until the rollback.)

// Append implements approvals.Store.
func (d *DB) Append(ctx context.Context, e approvals.Event) error {
	b := &pgx.Batch{}
	b.Queue(beginSQL)
	err := queueEvents(b, e.Request, e)
	if err == nil {
		b.Queue(commitSQL)
		err = d.inBatches(ctx, func(ctx context.Context, c *pgx.Conn) error { return send(ctx, c, b) })
	}
	if err != nil {
		return fail(uniqueViolation(err), "record %s event of request %s", e.Kind, e.Request.ID)
	}
	return nil
}

// queueEvents queues on b the recording of events about request r (as it
// stands after them) in the event log and outbox: the chain's lock, then a
// statement per event. They must be the last statements of a transaction
// before its COMMIT, in the same batch. An event whose Key is recorded
// already is refused by the events_key index (ErrDuplicate, through
// uniqueViolation).
func queueEvents(b *pgx.Batch, r approvals.Request, events ...approvals.Event) error {
	if len(events) == 0 {
		return nil
	}
	args := make([][]any, len(events))
	for i, e := range events {
		if !e.Kind.Valid() {
			return fmt.Errorf("event of unknown kind %q", e.Kind)
		}
		e.State = r.State()
		e.Request = approvals.Request{ID: r.ID}
		var audited int64 // 0: its audit record is to deliver
		if !e.Audited() {
			audited = time.Now().UnixMilli()
		}
		tail, err := canonicalTail(e)
		if err != nil {
			return fmt.Errorf("chain %s event: %w", e.Kind, err)
		}
		args[i] = []any{r.ID, string(e.Kind), string(e.State), e.Actor, e.Detail, millis(e.At), e.ShowsOnMessage(), e.Key,
			e.Target, e.HasNotice() && r.Channel != "", audited, tail}
	}
	b.Queue(`SELECT pg_advisory_xact_lock($1, 0)`, chainLock)
	for _, a := range args {
		b.Queue(insertEvent, a...)
	}
	return nil
}

// insertEvent records an event, with the lock held: it numbers the event
// from the events' identity (so that, numbered under the lock, seq order is
// chain order) and stores its hash, approvals.ChainHash of the hash of the
// event before it and of its canonical encoding, "[" + seq + $12 (see
// canonicalTail), computed by the server in the same statement.
const insertEvent = `INSERT INTO events (seq, request_id, kind, state, actor, detail, at, message_due, key, target,
		notice_due, audited_at, hash)
	OVERRIDING SYSTEM VALUE
	SELECT n.seq, $1::text, $2::text, $3::text, $4::text, $5::text, $6::bigint, $7::boolean, $8::text, $9::text,
		$10::boolean, $11::bigint,
		encode(sha256(convert_to(COALESCE((SELECT p.hash FROM events p WHERE p.seq < n.seq ORDER BY p.seq DESC LIMIT 1), '')
			|| '[' || n.seq, 'UTF8') || $12::bytea), 'hex')
	FROM (SELECT nextval(pg_get_serial_sequence('events', 'seq')) AS seq) n`

// canonicalTail returns what follows the number in the canonical encoding
// of e (approvals.Canonical, a JSON array whose first element is seq): the
// encoding of e numbered seq is "[" + seq in decimal + the tail.
func canonicalTail(e approvals.Event) ([]byte, error) {
	c := approvals.Canonical(0, e)
	if !bytes.HasPrefix(c, []byte("[0,")) {
		return nil, fmt.Errorf("its canonical encoding does not begin with its number: %.20q", c)
	}
	return c[len("[0"):], nil
}

// chainEvent stores the hash of event e, numbered seq, after the event
// recorded before it. The caller holds chainLock.
func chainEvent(ctx context.Context, tx pgx.Tx, seq int64, e approvals.Event) error {
	var prev string
	err := tx.QueryRow(ctx, `SELECT hash FROM events WHERE seq < $1 ORDER BY seq DESC LIMIT 1`, seq).Scan(&prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE events SET hash = $1 WHERE seq = $2`, approvals.ChainHash(prev, seq, e), seq)
	return err
}

// chainOld chains the events recorded before the log was a chain (an
// upgrade), in order.
func (d *DB) chainOld(ctx context.Context) error {
	return d.within(ctx, 0, func(ctx context.Context, c *pgxpool.Conn) error {
		return pgx.BeginTxFunc(ctx, c, readCommitted, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, chainLock); err != nil {
				return err
			}
			// Only the events before the first one chained as it was
			// recorded: an unchained event after it was written by an
			// older revokebot meanwhile, and must show as a break, not be
			// quietly accepted.
			links, err := chainLinks(ctx, tx, `WHERE hash = '' AND seq < COALESCE((SELECT MIN(seq) FROM events WHERE hash <> ''), 9223372036854775807) ORDER BY seq`)
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
	})
}

// readCommitted are the options of a transaction begun by pgx rather than
// sent in batches (see beginSQL).
var readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// chainLinks reads the events the clause (after FROM events) selects, as links.
func chainLinks(ctx context.Context, q querier, clause string, args ...any) ([]approvals.Link, error) {
	rows, err := q.Query(ctx, `SELECT seq, request_id, kind, state, actor, target, detail, at, key, hash FROM events `+clause, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (approvals.Link, error) {
		var (
			l           approvals.Link
			kind, state string
			at          int64
		)
		err := row.Scan(&l.Seq, &l.Event.Request.ID, &kind, &state, &l.Event.Actor, &l.Event.Target, &l.Event.Detail, &at, &l.Event.Key, &l.Hash)
		l.Event.Kind, l.Event.State, l.Event.At, l.Event.Hash = approvals.EventKind(kind), approvals.State(state), fromMillis(at), l.Hash
		return l, err
	})
}

// Chain implements approvals.Store.
func (d *DB) Chain(ctx context.Context, from int64, n int) ([]approvals.Link, error) {
	var out []approvals.Link
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		var err error
		out, err = chainLinks(ctx, c, `WHERE seq >= $1 ORDER BY seq LIMIT $2`, from, limit(n))
		return err
	})
	if err != nil {
		return nil, fail(err, "read the event log from %d", from)
	}
	return out, nil
}
