package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
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

// Create implements approvals.Store, in one round trip, or two under the
// pending cap. The cap holds across processes: the transaction takes an
// advisory lock on the requester before counting, so that two creates for
// one requester count and insert one after the other.
func (d *DB) Create(ctx context.Context, r approvals.Request, e approvals.Event, maxPending int) error {
	if len(r.Targets) == 0 {
		return fmt.Errorf("insert request %s: no targets", r.ID)
	}
	r.Version = 1
	state := r.State()
	capped := state == approvals.StatePending && maxPending > 0
	// Count (if capped), then insert everything, the events last.
	var (
		count, insert = &pgx.Batch{}, &pgx.Batch{}
		duplicate     bool
		pending       int
	)
	if capped {
		count.Queue(beginSQL)
		count.Queue(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, requesterLock, r.Requester)
		count.Queue(`SELECT EXISTS (SELECT 1 FROM requests WHERE submit_key = $1 AND submit_key <> ''),
			(SELECT COUNT(*) FROM requests WHERE requester = $2 AND state = 'pending')`,
			r.SubmitKey, r.Requester).QueryRow(func(row pgx.Row) error { return row.Scan(&duplicate, &pending) })
	} else {
		insert.Queue(beginSQL)
	}
	// A submit key recorded already is refused by requests_submit_key.
	insert.Queue(`INSERT INTO requests (`+columns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		r.ID, r.Requester, r.Reason, r.Options.Devices, r.Options.WARPReauth, r.Options.UserUID,
		string(state), r.DryRun, r.RequiredApprovals(), r.SubmitKey, r.Version,
		millis(r.CreatedAt), millis(r.ExpiresAt), millis(r.EscalatedAt), millis(r.ExpiredAt), millis(r.FinishedAt),
		r.Refusal, r.Channel, r.MessageTS)
	err := queueTargets(insert, r)
	if err == nil {
		queueReviews(insert, r.ID, 0, r.Reviews)
		e.Request = r
		err = queueEvents(insert, r, e)
	}
	if err != nil {
		return fmt.Errorf("insert request %s: %w", r.ID, err)
	}
	insert.Queue(commitSQL)
	err = d.inBatches(ctx, func(ctx context.Context, c *pgx.Conn) error {
		if capped {
			if err := send(ctx, c, count); err != nil {
				return err
			}
			if duplicate {
				return fmt.Errorf("submit key %s: %w", r.SubmitKey, approvals.ErrDuplicate)
			}
			if pending >= maxPending {
				return fmt.Errorf("%s has %d pending: %w", r.Requester, pending, approvals.ErrLimit)
			}
		}
		return send(ctx, c, insert)
	})
	if err != nil {
		return fail(uniqueViolation(err), "insert request %s", r.ID)
	}
	return nil
}

// queueTargets queues on b the insert of r's targets, in one statement.
func queueTargets(b *pgx.Batch, r approvals.Request) error {
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
	b.Queue(`INSERT INTO targets (request_id, position, email, person, state, outcome, finished_at,
			observed, check_pending_until, watch_until)
		SELECT $1, * FROM unnest($2::integer[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
			$8::text[], $9::bigint[], $10::bigint[])`,
		r.ID, positions, emails, persons, states, outcs, finished, seen, pending, watch)
	return nil
}

// queueTargetChanges queues on b the update of the targets that differ
// between cur and next, in one statement (none if none differ).
func queueTargetChanges(b *pgx.Batch, cur, next approvals.Request) error {
	var (
		positions                []int32
		states, outcs, seen      []string
		finished, pending, watch []int64
	)
	for i, t := range next.Targets {
		if t == cur.Targets[i] {
			continue
		}
		s, err := observed.Encode(t)
		if err != nil {
			return fmt.Errorf("update target %s: %w", t.Email, err)
		}
		positions, states, outcs = append(positions, int32(i)), append(states, string(t.State)), append(outcs, t.Outcome)
		finished, seen = append(finished, millis(t.FinishedAt)), append(seen, s)
		pending, watch = append(pending, observed.PendingUntil(t)), append(watch, observed.WatchUntil(t))
	}
	if len(positions) == 0 {
		return nil
	}
	b.Queue(`UPDATE targets t SET state = u.state, outcome = u.outcome, finished_at = u.finished_at,
			observed = u.observed, check_pending_until = u.pending, watch_until = u.watch
		FROM unnest($2::integer[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[])
			AS u(position, state, outcome, finished_at, observed, pending, watch)
		WHERE t.request_id = $1 AND t.position = u.position`,
		cur.ID, positions, states, outcs, finished, seen, pending, watch)
	return nil
}

// queueReviews queues on b the insert of reviews of request id, numbered
// from first, in one statement (none if there are none). The primary key
// refuses a second review by one person (ErrReviewed, through
// uniqueViolation).
func queueReviews(b *pgx.Batch, id string, first int, reviews []approvals.Review) {
	if len(reviews) == 0 {
		return
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
	b.Queue(`INSERT INTO reviews (request_id, reviewer, decision, reason, at, seq)
		SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::integer[])`,
		id, by, decisions, reasons, at, seqs)
}

// Get implements approvals.Store, in one round trip.
func (d *DB) Get(ctx context.Context, id string) (approvals.Request, error) {
	var (
		r     approvals.Request
		found bool
	)
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT `+columns+` FROM requests WHERE id = $1`, id).QueryRow(func(row pgx.Row) error {
			var err error
			if r, err = scan(row); errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			found = err == nil
			return err
		})
		p := queueParts(b, []string{id})
		if err := send(ctx, c, b); err != nil {
			return err
		}
		p.fill(&r)
		return nil
	})
	if err != nil {
		return approvals.Request{}, fail(err, "get request %s", id)
	}
	if !found {
		return approvals.Request{}, fmt.Errorf("get request %s: %w", id, approvals.ErrNotFound)
	}
	return r, nil
}

// requests returns the requests matching the SQL clause that follows FROM
// requests, with their targets and reviews, in two round trips.
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

// complete reads the targets and reviews of rs, in one round trip whatever
// their number. A request may appear more than once.
func complete(ctx context.Context, q querier, rs []*approvals.Request) error {
	if len(rs) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var ids []string
	for _, r := range rs {
		if !seen[r.ID] {
			seen[r.ID] = true
			ids = append(ids, r.ID)
		}
	}
	b := &pgx.Batch{}
	p := queueParts(b, ids)
	if err := send(ctx, q, b); err != nil {
		return err
	}
	filled := map[string]bool{}
	for _, r := range rs {
		p.fill(r)
		if filled[r.ID] {
			// Its own copies, as if read apart.
			r.Targets, r.Reviews = slices.Clone(r.Targets), slices.Clone(r.Reviews)
		}
		filled[r.ID] = true
	}
	return nil
}

// parts are the targets and reviews of requests, by request ID, as a batch
// reads them (see queueParts).
type parts struct {
	targets map[string][]approvals.Target
	reviews map[string][]approvals.Review
}

// queueParts queues on b the reading of the targets and reviews of the
// requests whose IDs are ids, into the parts it returns once b's results
// are read.
func queueParts(b *pgx.Batch, ids []string) *parts {
	p := &parts{targets: map[string][]approvals.Target{}, reviews: map[string][]approvals.Review{}}
	b.Queue(`SELECT request_id, email, person, state, outcome, finished_at, observed FROM targets
		WHERE request_id = ANY($1) ORDER BY request_id, position`, ids).Query(func(rows pgx.Rows) error {
		var (
			id, state, seen string
			t               approvals.Target
			finished        int64
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &t.Email, &t.Person, &state, &t.Outcome, &finished, &seen}, func() error {
			t.State, t.FinishedAt = approvals.TargetState(state), fromMillis(finished)
			t.Look, t.Check, t.Watch = approvals.Look{}, approvals.Check{}, approvals.Watch{}
			if err := observed.Decode(seen, &t); err != nil {
				return fmt.Errorf("request %s: %w", id, err)
			}
			if !t.State.Valid() {
				return fmt.Errorf("request %s: target %s has unknown state %q", id, t.Email, state)
			}
			p.targets[id] = append(p.targets[id], t)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read targets: %w", err)
		}
		return nil
	})
	b.Queue(`SELECT request_id, reviewer, decision, reason, at FROM reviews
		WHERE request_id = ANY($1) ORDER BY request_id, seq, at`, ids).Query(func(rows pgx.Rows) error {
		var (
			id, decision string
			rv           approvals.Review
			at           int64
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &rv.By, &decision, &rv.Reason, &at}, func() error {
			var err error
			if rv.Decision, err = approvals.ParseDecision(decision); err != nil {
				return fmt.Errorf("request %s: review by %s: %w", id, rv.By, err)
			}
			rv.At = fromMillis(at)
			p.reviews[id] = append(p.reviews[id], rv)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read reviews: %w", err)
		}
		return nil
	})
	return p
}

// fill sets the targets and reviews of r.
func (p *parts) fill(r *approvals.Request) {
	r.Targets, r.Reviews = p.targets[r.ID], p.reviews[r.ID]
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
// one version, one writes and the other reads again. It makes three round
// trips: the read, the version's check and the write.
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
		err = d.write(ctx, cur, &next, events)
		if errors.Is(err, errStale) {
			continue
		}
		if err != nil {
			return cur, fail(uniqueViolation(err), "update request %s", id)
		}
		return next, nil
	}
	return cur, fmt.Errorf("update request %s: changed %d times while updating: %w", id, maxUpdateAttempts, approvals.ErrConflict)
}

// write stores next (as approvals.NextVersion made it) over cur, with
// events, in a transaction of two batches: the request's row, if its
// version is still cur's (errStale if not), then everything else, the
// events last. It sets next's message to the one stored: SetMessage may
// have run meanwhile, and does not change the version.
func (d *DB) write(ctx context.Context, cur approvals.Request, next *approvals.Request, events []approvals.Event) error {
	for _, rv := range next.Reviews[len(cur.Reviews):] {
		for _, was := range cur.Reviews {
			if rv.By == was.By {
				return fmt.Errorf("review by %s: %w", rv.By, approvals.ErrReviewed)
			}
		}
	}
	rest := &pgx.Batch{}
	if err := queueTargetChanges(rest, cur, *next); err != nil {
		return err
	}
	queueReviews(rest, cur.ID, len(cur.Reviews), next.Reviews[len(cur.Reviews):])
	if err := queueEvents(rest, *next, events...); err != nil {
		return err
	}
	rest.Queue(commitSQL)
	return d.inBatches(ctx, func(ctx context.Context, c *pgx.Conn) error {
		var (
			request = &pgx.Batch{}
			stale   bool
		)
		request.Queue(beginSQL)
		request.Queue(`UPDATE requests SET version = $1, state = $2, dry_run = $3,
			escalated_at = $4, expired_at = $5, refusal = $6, finished_at = $7
			WHERE id = $8 AND version = $9
			RETURNING channel, message_ts`,
			next.Version, string(next.State()), next.DryRun,
			millis(next.EscalatedAt), millis(next.ExpiredAt), next.Refusal, millis(next.FinishedAt),
			cur.ID, cur.Version).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&next.Channel, &next.MessageTS)
			if errors.Is(err, pgx.ErrNoRows) {
				// Not an error of the batch's: pgx would forget its
				// statements, to prepare them again.
				stale = true
				return nil
			}
			return err
		})
		if err := send(ctx, c, request); err != nil {
			return err
		}
		if stale {
			return errStale
		}
		return send(ctx, c, rest)
	})
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
