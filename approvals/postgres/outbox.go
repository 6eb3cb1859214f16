package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/revokebot/revokebot/approvals"
)

var _ approvals.Outbox = (*DB)(nil)

// Conditions selecting the events with a part still to deliver; they match
// the partial indexes of migration 0001.
const (
	auditDue   = `e.audited_at = 0`
	messageDue = `(e.message_due AND e.message_updated_at = 0)`
	noticeDue  = `(e.notice_due AND e.notice_done_at = 0)`
)

// partColumns are the columns of events that track one part.
type partColumns struct {
	// due selects the events (e) whose part is still to deliver.
	due string
	// done marks the part delivered; attempted, when its first attempt
	// began (empty for message updates, which are redrawn in place).
	done, attempted string
	// owner and until are the part's claim.
	owner, until string
}

// columnsOf returns the columns of part.
func columnsOf(part approvals.Part) (partColumns, error) {
	switch part {
	case approvals.AuditRecord:
		return partColumns{auditDue + ` AND e.kind <> 'refused'`, "audited_at", "audit_attempted_at", "audit_claim_owner", "audit_claim_until"}, nil
	case approvals.MessageUpdate:
		return partColumns{messageDue, "message_updated_at", "", "message_claim_owner", "message_claim_until"}, nil
	case approvals.Notice:
		return partColumns{noticeDue, "notice_done_at", "notice_attempted_at", "notice_claim_owner", "notice_claim_until"}, nil
	}
	return partColumns{}, fmt.Errorf("unknown delivery part %d", int(part))
}

// Undelivered implements approvals.Outbox.
func (d *DB) Undelivered(ctx context.Context, part approvals.Part, n int) ([]approvals.Delivery, error) {
	cols, err := columnsOf(part)
	if err != nil {
		return nil, err
	}
	var out []approvals.Delivery
	err = d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		out, err = deliveries(ctx, c, cols.due+` ORDER BY e.seq LIMIT $1`, limit(n))
		return err
	})
	if err != nil {
		return nil, fail(err, "list undelivered %ss", part)
	}
	return out, nil
}

// Claim implements approvals.Outbox, in two round trips: the claim in one
// transaction, then the targets and reviews of the requests claimed. Claims
// are made one caller at a time: the transaction first takes an advisory
// lock for part. Times are the server's (statement_timestamp, which is
// after the lock was taken).
func (d *DB) Claim(ctx context.Context, part approvals.Part, owner string, n int, ttl time.Duration) ([]approvals.Delivery, error) {
	cols, err := columnsOf(part)
	if err != nil {
		return nil, err
	}
	if owner == "" {
		return nil, fmt.Errorf("claim %ss: no owner", part)
	}
	var out []approvals.Delivery
	err = d.inBatches(ctx, func(ctx context.Context, c *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue(beginSQL)
		b.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, claimLock, int32(part))
		// Due events, oldest first, but none of a request one of whose due
		// events another owner holds.
		// The due condition is repeated outside, so that an event marked
		// delivered meanwhile (the update waited for its row) is left.
		// The events claimed are read as they were before (the claim's
		// columns are not read).
		b.Queue(`WITH claimed AS (
				UPDATE events e SET `+cols.owner+` = $1, `+cols.until+` = statement_timestamp() + $2::interval
				WHERE `+cols.due+` AND e.seq IN (
					SELECT e.seq FROM events e
					WHERE `+cols.due+` AND e.request_id NOT IN (
						SELECT e.request_id FROM events e
						WHERE `+cols.due+` AND e.`+cols.owner+` NOT IN ('', $1) AND e.`+cols.until+` > statement_timestamp())
					ORDER BY e.seq LIMIT $3)
				RETURNING e.seq)
			`+deliveriesSQL+` WHERE e.seq IN (SELECT seq FROM claimed) ORDER BY e.seq`,
			owner, ttl, limit(n)).Query(func(rows pgx.Rows) error {
			var err error
			out, err = scanDeliveries(rows)
			return err
		})
		b.Queue(commitSQL)
		if err := send(ctx, c, b); err != nil {
			return err
		}
		// Once the claim is committed, and its lock released.
		return completeDeliveries(ctx, c, out)
	})
	if err != nil {
		return nil, fail(err, "claim %ss for %s", part, owner)
	}
	return out, nil
}

// ReleaseClaims implements approvals.Outbox.
func (d *DB) ReleaseClaims(ctx context.Context, owner string) error {
	b := &pgx.Batch{}
	b.Queue(beginSQL)
	for _, part := range []approvals.Part{approvals.AuditRecord, approvals.MessageUpdate, approvals.Notice} {
		cols, _ := columnsOf(part)
		// Claims on delivered parts end when they are marked: only due
		// events can be claimed still.
		b.Queue(`UPDATE events e SET `+cols.owner+` = '', `+cols.until+` = NULL
			WHERE `+cols.due+` AND e.`+cols.owner+` = $1`, owner)
	}
	b.Queue(commitSQL)
	if err := d.inBatches(ctx, func(ctx context.Context, c *pgx.Conn) error { return send(ctx, c, b) }); err != nil {
		return fail(err, "release the claims of %s", owner)
	}
	return nil
}

// deliveriesSQL selects events (e) with their requests (r), for
// scanDeliveries; a WHERE clause follows.
var deliveriesSQL = `SELECT ` + prefixed("r") + `, e.seq, e.kind, e.state, e.actor, e.detail, e.at, e.key, e.target, e.hash
	FROM events e JOIN requests r ON r.id = e.request_id`

// deliveries returns the events matching the condition (on events e) with
// their requests (r), as deliveries.
func deliveries(ctx context.Context, q querier, where string, args ...any) ([]approvals.Delivery, error) {
	rows, err := q.Query(ctx, deliveriesSQL+` WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, err
	}
	if err := completeDeliveries(ctx, q, out); err != nil {
		return nil, err
	}
	return out, nil
}

// scanDeliveries reads the rows of deliveriesSQL, without the targets and
// reviews of their requests (see completeDeliveries).
func scanDeliveries(rows pgx.Rows) ([]approvals.Delivery, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (approvals.Delivery, error) {
		var (
			dl          approvals.Delivery
			kind, state string
			at          int64
		)
		current, err := scan(row, &dl.Seq, &kind, &state, &dl.Event.Actor, &dl.Event.Detail, &at, &dl.Event.Key, &dl.Event.Target, &dl.Event.Hash)
		if err != nil {
			return dl, err
		}
		dl.Current = current
		dl.Event.Kind = approvals.EventKind(kind)
		dl.Event.State = approvals.State(state)
		dl.Event.At = fromMillis(at)
		return dl, nil
	})
}

// completeDeliveries reads the targets and reviews of the requests of out.
func completeDeliveries(ctx context.Context, q querier, out []approvals.Delivery) error {
	// Requests are read once each, however many of their events are due.
	read := map[string]*approvals.Request{}
	var rs []*approvals.Request
	for i := range out {
		if _, ok := read[out[i].Current.ID]; !ok {
			r := out[i].Current
			read[r.ID] = &r
			rs = append(rs, &r)
		}
	}
	if err := complete(ctx, q, rs); err != nil {
		return err
	}
	for i := range out {
		r := *read[out[i].Current.ID]
		out[i].Current, out[i].Event.Request = r, r
	}
	return nil
}

// BeginAttempt implements approvals.Outbox. Only audit records and notices
// are posted (message updates are redrawn in place, which is safe to repeat).
func (d *DB) BeginAttempt(ctx context.Context, seq int64, part approvals.Part) (time.Time, error) {
	cols, err := columnsOf(part)
	if err != nil || cols.attempted == "" {
		return time.Time{}, fmt.Errorf("begin attempt of event %d: only audit records and notices are tracked, not %s", seq, part)
	}
	prev, err := d.begin(ctx, `events`, cols.attempted, `seq`, seq)
	if err != nil {
		return time.Time{}, fail(err, "begin %s of event %d", part, seq)
	}
	return prev, nil
}

// BeginPost implements approvals.Outbox.
func (d *DB) BeginPost(ctx context.Context, id string) (time.Time, error) {
	prev, err := d.begin(ctx, `requests`, `message_posting_at`, `id`, id)
	if err != nil {
		return time.Time{}, fail(err, "begin posting the message of request %s", id)
	}
	return prev, nil
}

// begin sets column of the row of table whose key is arg to now if it is
// still 0, and returns its previous value. Of two racing, one sets it and
// the other (waiting for the row, then finding it set) reads what was set.
func (d *DB) begin(ctx context.Context, table, column, key string, arg any) (time.Time, error) {
	var prev int64
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `UPDATE `+table+` SET `+column+` = $1 WHERE `+key+` = $2 AND `+column+` = 0`,
			time.Now().UnixMilli(), arg)
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		// Set already (it is never unset), or no such row.
		err = c.QueryRow(ctx, `SELECT `+column+` FROM `+table+` WHERE `+key+` = $1`, arg).Scan(&prev)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no such row (%w)", err)
		}
		return err
	})
	return fromMillis(prev), err
}

// PendingRefusals implements approvals.Outbox.
func (d *DB) PendingRefusals(ctx context.Context) ([]approvals.Refusals, error) {
	type group struct {
		refusals    approvals.Refusals
		first, last int64
	}
	var out []approvals.Refusals
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `SELECT e.actor, COUNT(*), MIN(e.seq), MAX(e.seq),
				(SELECT COALESCE(MAX(a.audited_at), 0) FROM events a WHERE a.kind = 'refused' AND a.actor = e.actor AND a.audited_at <> 0)
			FROM events e WHERE e.audited_at = 0 AND e.kind = 'refused'
			GROUP BY e.actor ORDER BY MIN(e.seq)`)
		if err != nil {
			return err
		}
		groups, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (group, error) {
			var (
				g       group
				audited int64
			)
			err := row.Scan(&g.refusals.Actor, &g.refusals.Count, &g.first, &g.last, &audited)
			g.refusals.LastAudited = fromMillis(audited)
			return g, err
		})
		if err != nil {
			return err
		}
		out = make([]approvals.Refusals, 0, len(groups))
		for _, g := range groups {
			ds, err := deliveries(ctx, c, `e.seq IN ($1, $2) ORDER BY e.seq`, g.first, g.last)
			if err != nil {
				return fmt.Errorf("read refusals %d and %d: %w", g.first, g.last, err)
			}
			if len(ds) == 0 {
				return fmt.Errorf("read refusals %d and %d: not found", g.first, g.last)
			}
			g.refusals.First, g.refusals.Last = ds[0], ds[len(ds)-1]
			out = append(out, g.refusals)
		}
		return nil
	})
	if err != nil {
		return nil, fail(err, "list pending refusals")
	}
	return out, nil
}

// MarkRefusalsDelivered implements approvals.Outbox.
func (d *DB) MarkRefusalsDelivered(ctx context.Context, actor string, through int64, at time.Time) error {
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `UPDATE events SET audited_at = $1
			WHERE kind = 'refused' AND actor = $2 AND seq <= $3 AND audited_at = 0`, at.UnixMilli(), actor, through)
		return err
	})
	if err != nil {
		return fail(err, "mark refusals of %s through %d delivered", actor, through)
	}
	return nil
}

// MarkDelivered implements approvals.Outbox.
func (d *DB) MarkDelivered(ctx context.Context, seq int64, part approvals.Part) error {
	cols, err := columnsOf(part)
	if err != nil {
		return err
	}
	var n int64
	err = d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		tag, err := c.Exec(ctx, `UPDATE events SET `+cols.done+` = $1, `+cols.owner+` = '', `+cols.until+` = NULL
			WHERE seq = $2`, time.Now().UnixMilli(), seq)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fail(err, "mark %s of event %d delivered", part, seq)
	}
	if n != 1 {
		return fmt.Errorf("mark %s of event %d delivered: no such event", part, seq)
	}
	return nil
}

// Backlog implements approvals.Outbox.
func (d *DB) Backlog(ctx context.Context) (int, error) {
	// Three counts, each on its partial index, instead of one OR that scans
	// the whole (never pruned) log.
	var n int
	err := d.with(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT
			(SELECT COUNT(*) FROM events e WHERE `+auditDue+`) +
			(SELECT COUNT(*) FROM events e WHERE `+messageDue+` AND NOT `+auditDue+`) +
			(SELECT COUNT(*) FROM events e WHERE `+noticeDue+` AND NOT `+auditDue+` AND NOT `+messageDue+`)`).Scan(&n)
	})
	if err != nil {
		return 0, fail(err, "count undelivered events")
	}
	return n, nil
}
