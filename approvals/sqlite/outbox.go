package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

var _ approvals.Outbox = (*DB)(nil)

// Conditions selecting the events with a part still to deliver; they match
// the partial indexes of migration 0002.
const (
	auditDue   = `e.audited_at = 0`
	messageDue = `(e.message_due = 1 AND e.message_updated_at = 0)`
	noticeDue  = `(e.notice_due = 1 AND e.notice_done_at = 0)`
)

// due returns the condition for part, and the column that marks it done.
func due(part approvals.Part) (where, column string, err error) {
	switch part {
	case approvals.AuditRecord:
		return auditDue + ` AND e.kind != 'refused'`, "audited_at", nil
	case approvals.MessageUpdate:
		return messageDue, "message_updated_at", nil
	case approvals.Notice:
		return noticeDue, "notice_done_at", nil
	}
	return "", "", fmt.Errorf("unknown delivery part %d", int(part))
}

// claimColumns returns the columns holding the claim of part: its owner and
// until when.
func claimColumns(part approvals.Part) (owner, until string) {
	switch part {
	case approvals.AuditRecord:
		return "audit_claim_owner", "audit_claim_until"
	case approvals.MessageUpdate:
		return "message_claim_owner", "message_claim_until"
	}
	return "notice_claim_owner", "notice_claim_until"
}

// Claim implements approvals.Outbox. The candidates are chosen and claimed
// in one statement, an operation of the writer, which runs one at a time
// holding SQLite's write lock (BEGIN IMMEDIATE): claims are made one at a
// time.
func (d *DB) Claim(ctx context.Context, part approvals.Part, owner string, limit int, ttl time.Duration) ([]approvals.Delivery, error) {
	where, _, err := due(part)
	if err != nil {
		return nil, err
	}
	if owner == "" {
		return nil, fmt.Errorf("claim %ss: no owner", part)
	}
	ownerCol, untilCol := claimColumns(part)
	// The same condition, on the other events of the request.
	other := strings.ReplaceAll(where, "e.", "o.")
	var seqs []int64
	err = d.write(ctx, func(ctx context.Context, tx *wtx) error {
		now := time.Now().UnixMilli()
		// The candidates stay the same while they are claimed: claiming
		// one for owner changes neither what is due nor whether another
		// owner holds a claim.
		rows, err := tx.QueryContext(ctx, `UPDATE events SET `+ownerCol+` = ?, `+untilCol+` = ?
			WHERE seq IN (SELECT e.seq FROM events e WHERE `+where+`
				AND NOT EXISTS (SELECT 1 FROM events o WHERE o.request_id = e.request_id AND `+other+`
					AND o.`+ownerCol+` NOT IN ('', ?) AND o.`+untilCol+` > ?)
				ORDER BY e.seq LIMIT ?)
			RETURNING seq`, owner, now+ttl.Milliseconds(), owner, now, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				return err
			}
			seqs = append(seqs, seq)
		}
		return rows.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("claim %ss for %s: %w", part, owner, err)
	}
	if len(seqs) == 0 {
		return nil, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(seqs)), ", ")
	args := make([]any, len(seqs))
	for i, seq := range seqs {
		args[i] = seq
	}
	out, err := d.deliveries(ctx, `e.seq IN (`+marks+`) ORDER BY e.seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("read claimed %ss: %w", part, err)
	}
	return out, nil
}

// ReleaseClaims implements approvals.Outbox.
func (d *DB) ReleaseClaims(ctx context.Context, owner string) error {
	err := d.write(ctx, func(ctx context.Context, tx *wtx) error {
		for _, part := range []approvals.Part{approvals.AuditRecord, approvals.MessageUpdate, approvals.Notice} {
			where, _, _ := due(part)
			ownerCol, untilCol := claimColumns(part)
			if _, err := tx.ExecContext(ctx, `UPDATE events SET `+ownerCol+` = '', `+untilCol+` = 0
				WHERE `+strings.ReplaceAll(where, "e.", "")+` AND `+ownerCol+` = ?`, owner); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release the claims of %s: %w", owner, err)
	}
	return nil
}

// Undelivered implements approvals.Outbox.
func (d *DB) Undelivered(ctx context.Context, part approvals.Part, limit int) ([]approvals.Delivery, error) {
	where, _, err := due(part)
	if err != nil {
		return nil, err
	}
	out, err := d.deliveries(ctx, where+` ORDER BY e.seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list undelivered %ss: %w", part, err)
	}
	return out, nil
}

// deliveries returns the events matching the condition (on events e) with
// their requests (r), as deliveries, in one statement.
func (d *DB) deliveries(ctx context.Context, where string, args ...any) ([]approvals.Delivery, error) {
	rows, err := d.read.QueryContext(ctx, `SELECT `+requestColumns+`, e.seq, e.kind, e.state, e.actor, e.detail, e.at, e.key, e.target, e.hash
		FROM events e JOIN requests r ON r.id = e.request_id
		WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	var out []approvals.Delivery
	for rows.Next() {
		var (
			dl          approvals.Delivery
			kind, state string
			at          int64
		)
		current, err := scan(rows, &dl.Seq, &kind, &state, &dl.Event.Actor, &dl.Event.Detail, &at, &dl.Event.Key, &dl.Event.Target, &dl.Event.Hash)
		if err != nil {
			rows.Close()
			return nil, err
		}
		dl.Current, dl.Event.Request = current, current
		dl.Event.Kind = approvals.EventKind(kind)
		dl.Event.State = approvals.State(state)
		dl.Event.At = fromMillis(at)
		out = append(out, dl)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// BeginAttempt implements approvals.Outbox. Only audit records and notices
// are posted (message updates are redrawn in place, which is safe to repeat).
func (d *DB) BeginAttempt(ctx context.Context, seq int64, part approvals.Part) (time.Time, error) {
	column := ""
	switch part {
	case approvals.AuditRecord:
		column = `audit_attempted_at`
	case approvals.Notice:
		column = `notice_attempted_at`
	default:
		return time.Time{}, fmt.Errorf("begin attempt of event %d: only audit records and notices are tracked, not %s", seq, part)
	}
	prev, err := d.begin(ctx, `events`, column, `seq = ?`, seq)
	if err != nil {
		return time.Time{}, fmt.Errorf("begin %s of event %d: %w", part, seq, err)
	}
	return prev, nil
}

// BeginPost implements approvals.Outbox.
func (d *DB) BeginPost(ctx context.Context, id string) (time.Time, error) {
	prev, err := d.begin(ctx, `requests`, `message_posting_at`, `id = ?`, id)
	if err != nil {
		return time.Time{}, fmt.Errorf("begin posting the message of request %s: %w", id, err)
	}
	return prev, nil
}

// begin sets column of the row of table matching where to now if it is
// still 0, and returns its previous value: read only if it was not 0 (a
// later attempt), or the row is missing (sql.ErrNoRows).
func (d *DB) begin(ctx context.Context, table, column, where string, arg any) (time.Time, error) {
	var prev int64
	err := d.write(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE `+table+` SET `+column+` = ? WHERE `+where+` AND `+column+` = 0`, time.Now().UnixMilli(), arg)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT `+column+` FROM `+table+` WHERE `+where, arg).Scan(&prev)
	})
	return fromMillis(prev), err
}

// PendingRefusals implements approvals.Outbox.
func (d *DB) PendingRefusals(ctx context.Context) ([]approvals.Refusals, error) {
	rows, err := d.read.QueryContext(ctx, `SELECT e.actor, COUNT(*), MIN(e.seq), MAX(e.seq),
			(SELECT COALESCE(MAX(a.audited_at), 0) FROM events a WHERE a.kind = 'refused' AND a.actor = e.actor AND a.audited_at != 0)
		FROM events e WHERE e.audited_at = 0 AND e.kind = 'refused'
		GROUP BY e.actor ORDER BY MIN(e.seq)`)
	if err != nil {
		return nil, fmt.Errorf("list pending refusals: %w", err)
	}
	type group struct {
		refusals    approvals.Refusals
		first, last int64
	}
	var groups []group
	for rows.Next() {
		var (
			g       group
			audited int64
		)
		if err := rows.Scan(&g.refusals.Actor, &g.refusals.Count, &g.first, &g.last, &audited); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list pending refusals: %w", err)
		}
		g.refusals.LastAudited = fromMillis(audited)
		groups = append(groups, g)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list pending refusals: %w", err)
	}
	out := make([]approvals.Refusals, 0, len(groups))
	for _, g := range groups {
		ds, err := d.deliveries(ctx, `e.seq IN (?, ?) ORDER BY e.seq`, g.first, g.last)
		if err != nil || len(ds) == 0 {
			return nil, fmt.Errorf("read refusals %d and %d: %v", g.first, g.last, err)
		}
		g.refusals.First, g.refusals.Last = ds[0], ds[len(ds)-1]
		out = append(out, g.refusals)
	}
	return out, nil
}

// MarkRefusalsDelivered implements approvals.Outbox.
func (d *DB) MarkRefusalsDelivered(ctx context.Context, actor string, through int64, at time.Time) error {
	err := d.write(ctx, func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, `UPDATE events SET audited_at = ?
			WHERE kind = 'refused' AND actor = ? AND seq <= ? AND audited_at = 0`, at.UnixMilli(), actor, through)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark refusals of %s through %d delivered: %w", actor, through, err)
	}
	return nil
}

// MarkDelivered implements approvals.Outbox.
func (d *DB) MarkDelivered(ctx context.Context, seq int64, part approvals.Part) error {
	_, column, err := due(part)
	if err != nil {
		return err
	}
	ownerCol, untilCol := claimColumns(part)
	var n int64
	err = d.write(ctx, func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE events SET `+column+` = ?, `+ownerCol+` = '', `+untilCol+` = 0 WHERE seq = ?`, time.Now().UnixMilli(), seq)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("mark %s of event %d delivered: %w", part, seq, err)
	}
	if n != 1 {
		return fmt.Errorf("mark %s of event %d delivered: no such event", part, seq)
	}
	return nil
}

// Backlog implements approvals.Outbox.
func (d *DB) Backlog(ctx context.Context) (int, error) {
	// Two counts, each on its partial index, instead of one OR that scans
	// the whole (never pruned) log.
	var n int
	err := d.read.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM events e WHERE `+auditDue+`) +
		(SELECT COUNT(*) FROM events e WHERE `+messageDue+` AND NOT `+auditDue+`) +
		(SELECT COUNT(*) FROM events e WHERE `+noticeDue+` AND NOT `+auditDue+` AND NOT `+messageDue+`)`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count undelivered events: %w", err)
	}
	return n, nil
}
