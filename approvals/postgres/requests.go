package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/internal/observed"
)

// querier is what reads need of a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const columns = `id, requester, reason, devices, warp_reauth, user_uid, state, dry_run,
	required_approvals, submit_key, version, created_at, expires_at, escalated_at,
	expired_at, finished_at, refusal, channel, message_ts`

// prefixed returns columns with each name prefixed by a table alias.
func prefixed(alias string) string {
	names := strings.Split(columns, ",")
	for i, n := range names {
		names[i] = alias + "." + strings.TrimSpace(n)
	}
	return strings.Join(names, ", ")
}

// maxUpdateAttempts bounds how often Update retries after finding the
// request changed meanwhile.
const maxUpdateAttempts = 10

// Create implements approvals.Store. The pending cap holds across processes:
// the transaction takes an advisory lock on the requester before counting,
// so that two creates for one requester count and insert one after the other.
func (d *DB) Create(ctx context.Context, r approvals.Request, e approvals.Event, maxPending int) error {
	if len(r.Targets) == 0 {
		return fmt.Errorf("insert request %s: no targets", r.ID)
	}
	r.Version = 1
	state := r.State()
	err := d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if r.SubmitKey != "" {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM requests WHERE submit_key = $1 AND submit_key <> '')`, r.SubmitKey).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return approvals.ErrDuplicate
			}
		}
		if state == approvals.StatePending && maxPending > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, requesterLock, r.Requester); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM requests WHERE requester = $1 AND state = 'pending'`, r.Requester).Scan(&n); err != nil {
				return err
			}
			if n >= maxPending {
				return fmt.Errorf("%s has %d pending: %w", r.Requester, n, approvals.ErrLimit)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO requests (`+columns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			r.ID, r.Requester, r.Reason, r.Options.Devices, r.Options.WARPReauth, r.Options.UserUID,
			string(state), r.DryRun, r.RequiredApprovals(), r.SubmitKey, r.Version,
			millis(r.CreatedAt), millis(r.ExpiresAt), millis(r.EscalatedAt), millis(r.ExpiredAt), millis(r.FinishedAt),
			r.Refusal, r.Channel, r.MessageTS); err != nil {
			return err
		}
		if err := insertTargets(ctx, tx, r); err != nil {
			return err
		}
		if err := insertReviews(ctx, tx, r.ID, 0, r.Reviews); err != nil {
			return err
		}
		e.Request = r
		return insertEvent(ctx, tx, r, e)
	})
	if err != nil {
		return fail(uniqueViolation(err), "insert request %s", r.ID)
	}
	return nil
}

// insertTargets adds r's targets, in one statement.
func insertTargets(ctx context.Context, tx pgx.Tx, r approvals.Request) error {
	n := len(r.Targets)
	var (
		positions                      = make([]int32, n)
		emails, persons, states, outcs = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		finished, pending, watch       = make([]int64, n), make([]int64, n), make([]int64, n)
		seen                           = make([]string, n)
	)
	for i, t := range r.Targets {
		if !t.State.Valid() {
			return fmt.Errorf("target %s has unknown state %q", t.Email, t.State)
		}
		var err error
		if seen[i], err = observed.Encode(t); err != nil {
			return err
		}
		positions[i], emails[i], persons[i], states[i], outcs[i], finished[i] =
			int32(i), t.Email, t.Person, string(t.State), t.Outcome, millis(t.FinishedAt)
		pending[i], watch[i] = observed.PendingUntil(t), observed.WatchUntil(t)
	}
	_, err := tx.Exec(ctx, `INSERT INTO targets (request_id, position, email, person, state, outcome, finished_at,
			observed, check_pending_until, watch_until)
		SELECT $1, * FROM unnest($2::integer[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
			$8::text[], $9::bigint[], $10::bigint[])`,
		r.ID, positions, emails, persons, states, outcs, finished, seen, pending, watch)
	if err != nil {
		return fmt.Errorf("insert targets: %w", err)
	}
	return nil
}

// insertReviews adds reviews to request id, numbering them from first. A
// second review by one person is refused with ErrReviewed.
func insertReviews(ctx context.Context, tx pgx.Tx, id string, first int, reviews []approvals.Review) error {
	if len(reviews) == 0 {
		return nil
	}
	n := len(reviews)
	var (
		by, decisions, reasons = make([]string, n), make([]string, n), make([]string, n)
		at                     = make([]int64, n)
		seqs                   = make([]int32, n)
	)
	for i, rv := range reviews {
		by[i], decisions[i], reasons[i], at[i], seqs[i] = rv.By, rv.Decision.String(), rv.Reason, millis(rv.At), int32(first+i)
	}
	var reviewed string
	err := tx.QueryRow(ctx, `SELECT reviewer FROM reviews WHERE request_id = $1 AND reviewer = ANY($2) LIMIT 1`, id, by).Scan(&reviewed)
	switch {
	case err == nil:
		return fmt.Errorf("review by %s: %w", reviewed, approvals.ErrReviewed)
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("look up reviews: %w", err)
	}
	// The primary key refuses two reviews by one person among these, or
	// one written meanwhile (uniqueViolation makes it ErrReviewed).
	if _, err := tx.Exec(ctx, `INSERT INTO reviews (request_id, reviewer, decision, reason, at, seq)
		SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::integer[])`,
		id, by, decisions, reasons, at, seqs); err != nil {
		return fmt.Errorf("insert reviews: %w", uniqueViolation(err))
	}
	return nil
}

// insertEvent appends e, about request r (as it stands after e), to the
// event log and outbox. An event whose Key is recorded already is refused
// with ErrDuplicate.
func insertEvent(ctx context.Context, tx pgx.Tx, r approvals.Request, e approvals.Event) error {
	if !e.Kind.Valid() {
		return fmt.Errorf("event of unknown kind %q", e.Kind)
	}
	if e.Key != "" {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE key = $1 AND key <> '')`, e.Key).Scan(&exists); err != nil {
			return fmt.Errorf("look up event key: %w", err)
		}
		if exists {
			return fmt.Errorf("%s event %s: %w", e.Kind, e.Key, approvals.ErrDuplicate)
		}
	}
	e.State = r.State()
	var audited int64 // 0: its audit record is to deliver
	if !e.Audited() {
		audited = time.Now().UnixMilli()
	}
	// Events are numbered and chained one after the other, in every
	// process: the lock is held until the transaction ends.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, chainLock); err != nil {
		return fmt.Errorf("insert %s event: %w", e.Kind, err)
	}
	var seq int64
	err := tx.QueryRow(ctx, `INSERT INTO events (request_id, kind, state, actor, detail, at, message_due, key, target, notice_due, audited_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING seq`,
		r.ID, string(e.Kind), string(e.State), e.Actor, e.Detail, millis(e.At), e.ShowsOnMessage(), e.Key, e.Target,
		e.HasNotice() && r.Channel != "", audited).Scan(&seq)
	if err != nil {
		return fmt.Errorf("insert %s event: %w", e.Kind, uniqueViolation(err))
	}
	e.Request = approvals.Request{ID: r.ID}
	if err := chainEvent(ctx, tx, seq, e); err != nil {
		return fmt.Errorf("chain %s event: %w", e.Kind, err)
	}
	return nil
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

// Get implements approvals.Store.
func (d *DB) Get(ctx context.Context, id string) (approvals.Request, error) {
	var rs []approvals.Request
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		var err error
		rs, err = requests(ctx, c, `WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return approvals.Request{}, fail(err, "get request %s", id)
	}
	if len(rs) == 0 {
		return approvals.Request{}, fmt.Errorf("get request %s: %w", id, approvals.ErrNotFound)
	}
	return rs[0], nil
}

// requests returns the requests matching the SQL clause that follows FROM
// requests, with their targets and reviews.
func requests(ctx context.Context, q querier, clause string, args ...any) ([]approvals.Request, error) {
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM requests `+clause, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (approvals.Request, error) { return scan(row) })
	if err != nil {
		return nil, err
	}
	ptrs := make([]*approvals.Request, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	if err := complete(ctx, q, ptrs); err != nil {
		return nil, err
	}
	return out, nil
}

// complete reads the targets and reviews of rs, in two queries whatever
// their number. A request may appear more than once.
func complete(ctx context.Context, q querier, rs []*approvals.Request) error {
	if len(rs) == 0 {
		return nil
	}
	byID := map[string][]*approvals.Request{}
	var ids []string
	for _, r := range rs {
		if _, ok := byID[r.ID]; !ok {
			ids = append(ids, r.ID)
		}
		byID[r.ID] = append(byID[r.ID], r)
		r.Targets, r.Reviews = nil, nil
	}
	rows, err := q.Query(ctx, `SELECT request_id, email, person, state, outcome, finished_at, observed FROM targets
		WHERE request_id = ANY($1) ORDER BY request_id, position`, ids)
	if err != nil {
		return fmt.Errorf("read targets: %w", err)
	}
	var (
		id, state, seen string
		t               approvals.Target
		finished        int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &t.Email, &t.Person, &state, &t.Outcome, &finished, &seen}, func() error {
		t.State, t.FinishedAt = approvals.TargetState(state), fromMillis(finished)
		t.Look, t.Check, t.Watch = approvals.Look{}, approvals.Check{}, approvals.Watch{}
		if err := observed.Decode(seen, &t); err != nil {
			return fmt.Errorf("request %s: %w", id, err)
		}
		if !t.State.Valid() {
			return fmt.Errorf("request %s: target %s has unknown state %q", id, t.Email, state)
		}
		for _, r := range byID[id] {
			r.Targets = append(r.Targets, t)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read targets: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT request_id, reviewer, decision, reason, at FROM reviews
		WHERE request_id = ANY($1) ORDER BY request_id, seq, at`, ids)
	if err != nil {
		return fmt.Errorf("read reviews: %w", err)
	}
	var (
		rv       approvals.Review
		decision string
		at       int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &rv.By, &decision, &rv.Reason, &at}, func() error {
		var err error
		if rv.Decision, err = approvals.ParseDecision(decision); err != nil {
			return fmt.Errorf("request %s: review by %s: %w", id, rv.By, err)
		}
		rv.At = fromMillis(at)
		for _, r := range byID[id] {
			r.Reviews = append(r.Reviews, rv)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read reviews: %w", err)
	}
	return nil
}

// SetMessage implements approvals.Store. It does not change the request's
// version: an update racing with it keeps what it sets (see Update).
func (d *DB) SetMessage(ctx context.Context, id, channel, ts string) error {
	var n int64
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `UPDATE requests SET channel = $1, message_ts = $2 WHERE id = $3`, channel, ts, id)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fail(err, "set message of request %s", id)
	}
	if n == 0 {
		return fmt.Errorf("set message of request %s: %w", id, approvals.ErrNotFound)
	}
	return nil
}

// errStale: the request changed between reading it and writing it.
var errStale = errors.New("stale version")

// Update implements approvals.Store. It reads the request, lets fn change
// it, and writes the change only if the request's version is still the one
// read (UPDATE … WHERE version = the one read): of two updates racing from
// one version, one writes and the other reads again.
func (d *DB) Update(ctx context.Context, id string, fn approvals.UpdateFunc) (approvals.Request, error) {
	var cur approvals.Request
	for range maxUpdateAttempts {
		var err error
		if cur, err = d.Get(ctx, id); err != nil {
			return approvals.Request{}, err
		}
		next, events, err := fn(cur.Clone())
		if err != nil {
			return cur, err
		}
		if next, err = approvals.NextVersion(cur, next); err != nil {
			return cur, fmt.Errorf("update request %s: %w", id, err)
		}
		err = d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error { return write(ctx, tx, cur, next, events) })
		if errors.Is(err, errStale) {
			continue
		}
		if err != nil {
			return cur, fail(uniqueViolation(err), "update request %s", id)
		}
		if next.MessageTS == "" {
			// SetMessage may have run meanwhile; it does not bump the version.
			_ = d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
				var channel, ts string
				if err := c.QueryRow(ctx, `SELECT channel, message_ts FROM requests WHERE id = $1`, id).Scan(&channel, &ts); err != nil {
					return err
				}
				next.Channel, next.MessageTS = channel, ts
				return nil
			})
		}
		return next, nil
	}
	return cur, fmt.Errorf("update request %s: changed %d times while updating: %w", id, maxUpdateAttempts, approvals.ErrConflict)
}

// write stores next (as approvals.NextVersion made it) over cur, with
// events, in tx.
func write(ctx context.Context, tx pgx.Tx, cur, next approvals.Request, events []approvals.Event) error {
	tag, err := tx.Exec(ctx, `UPDATE requests SET version = $1, state = $2, dry_run = $3,
		escalated_at = $4, expired_at = $5, refusal = $6, finished_at = $7
		WHERE id = $8 AND version = $9`,
		next.Version, string(next.State()), next.DryRun,
		millis(next.EscalatedAt), millis(next.ExpiredAt), next.Refusal, millis(next.FinishedAt),
		cur.ID, cur.Version)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return errStale
	}
	for i, t := range next.Targets {
		if t == cur.Targets[i] {
			continue
		}
		seen, err := observed.Encode(t)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE targets SET state = $1, outcome = $2, finished_at = $3,
			observed = $4, check_pending_until = $5, watch_until = $6
			WHERE request_id = $7 AND position = $8`, string(t.State), t.Outcome, millis(t.FinishedAt),
			seen, observed.PendingUntil(t), observed.WatchUntil(t), cur.ID, i); err != nil {
			return fmt.Errorf("update target %s: %w", t.Email, err)
		}
	}
	if err := insertReviews(ctx, tx, cur.ID, len(cur.Reviews), next.Reviews[len(cur.Reviews):]); err != nil {
		return err
	}
	for _, e := range events {
		if err := insertEvent(ctx, tx, next, e); err != nil {
			return err
		}
	}
	return nil
}

// Append implements approvals.Store.
func (d *DB) Append(ctx context.Context, e approvals.Event) error {
	if err := d.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error { return insertEvent(ctx, tx, e.Request, e) }); err != nil {
		return fail(err, "record %s event of request %s", e.Kind, e.Request.ID)
	}
	return nil
}

// SeenKey implements approvals.Store.
func (d *DB) SeenKey(ctx context.Context, key string) (bool, error) {
	if key == "" {
		return false, nil
	}
	var seen bool
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE key = $1 AND key <> '')
			OR EXISTS (SELECT 1 FROM requests WHERE submit_key = $1 AND submit_key <> '')`, key).Scan(&seen)
	})
	if err != nil {
		return false, fail(err, "look up key %s", key)
	}
	return seen, nil
}

// CountByRequester implements approvals.Store.
func (d *DB) CountByRequester(ctx context.Context, requester string, s approvals.State) (int, error) {
	var n int
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT COUNT(*) FROM requests WHERE requester = $1 AND state = $2`,
			requester, string(s)).Scan(&n)
	})
	if err != nil {
		return 0, fail(err, "count %s requests of %s", s, requester)
	}
	return n, nil
}

// CountByState returns how many requests are in state s.
func (d *DB) CountByState(ctx context.Context, s approvals.State) (int, error) {
	var n int
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT COUNT(*) FROM requests WHERE state = $1`, string(s)).Scan(&n)
	})
	if err != nil {
		return 0, fail(err, "count %s requests", s)
	}
	return n, nil
}

// ListByState implements approvals.Store.
func (d *DB) ListByState(ctx context.Context, s approvals.State) ([]approvals.Request, error) {
	var out []approvals.Request
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		var err error
		out, err = requests(ctx, c, `WHERE state = $1 ORDER BY created_at, id`, string(s))
		return err
	})
	if err != nil {
		return nil, fail(err, "list %s requests", s)
	}
	return out, nil
}

// FindByPrefix implements approvals.Store.
func (d *DB) FindByPrefix(ctx context.Context, prefix string, n int) ([]approvals.Request, error) {
	// A range on the primary key (in byte order, COLLATE "C"): IDs are
	// lower-case hex and hyphens, all below DEL (0x7f).
	var out []approvals.Request
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		var err error
		out, err = requests(ctx, c, `WHERE id >= $1 AND id < $2 ORDER BY created_at, id LIMIT $3`, prefix, prefix+"\x7f", limit(n))
		return err
	})
	if err != nil {
		return nil, fail(err, "find requests %s…", prefix)
	}
	return out, nil
}

// Watched implements approvals.Store.
func (d *DB) Watched(ctx context.Context, now time.Time) ([]approvals.Request, error) {
	var out []approvals.Request
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		var err error
		out, err = requests(ctx, c, `WHERE id IN (SELECT request_id FROM targets
			WHERE (check_pending_until <> 0 OR watch_until <> 0) AND (check_pending_until <> 0 OR watch_until > $1))
			ORDER BY created_at, id`, now.UnixMilli())
		return err
	})
	if err != nil {
		return nil, fail(err, "list watched requests")
	}
	return out, nil
}

// scan reads a request's row from the first columns of a row, and any extra
// columns into extra. Its targets and reviews are read apart (see complete).
func scan(row pgx.Row, extra ...any) (approvals.Request, error) {
	var (
		r                                                approvals.Request
		state                                            string
		created, expires, escalated, expiredAt, finished int64
	)
	dest := append([]any{&r.ID, &r.Requester, &r.Reason, &r.Options.Devices, &r.Options.WARPReauth, &r.Options.UserUID,
		&state, &r.DryRun, &r.Required, &r.SubmitKey, &r.Version, &created, &expires, &escalated,
		&expiredAt, &finished, &r.Refusal, &r.Channel, &r.MessageTS}, extra...)
	if err := row.Scan(dest...); err != nil {
		return r, err
	}
	if !approvals.State(state).Valid() {
		return r, fmt.Errorf("request %s has unknown state %q", r.ID, state)
	}
	r.CreatedAt, r.ExpiresAt, r.FinishedAt = fromMillis(created), fromMillis(expires), fromMillis(finished)
	r.EscalatedAt, r.ExpiredAt = fromMillis(escalated), fromMillis(expiredAt)
	return r, nil
}
