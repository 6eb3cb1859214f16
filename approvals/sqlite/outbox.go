package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

var _ approvals.Outbox = (*DB)(nil)

// Conditions selecting the events with a part still to deliver; they match
// the partial indexes of migration 0002.
const (
	auditDue   = `e.audited_at = 0`
	messageDue = `(e.message_due = 1 AND e.message_updated_at = 0)`
)

// due returns the condition for part, and the column that marks it done.
func due(part approvals.Part) (where, column string, err error) {
	switch part {
	case approvals.AuditRecord:
		return auditDue, "audited_at", nil
	case approvals.MessageUpdate:
		return messageDue, "message_updated_at", nil
	}
	return "", "", fmt.Errorf("unknown delivery part %d", int(part))
}

// Undelivered implements approvals.Outbox.
func (d *DB) Undelivered(ctx context.Context, part approvals.Part, limit int) ([]approvals.Delivery, error) {
	where, _, err := due(part)
	if err != nil {
		return nil, err
	}
	rows, err := d.db.QueryContext(ctx, `SELECT `+prefixed("r")+`, e.seq, e.kind, e.state, e.actor, e.detail, e.at
		FROM events e JOIN requests r ON r.id = e.request_id
		WHERE `+where+` ORDER BY e.seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("list undelivered %ss: %w", part, err)
	}
	defer rows.Close()
	var out []approvals.Delivery
	for rows.Next() {
		var (
			dl          approvals.Delivery
			kind, state string
			at          int64
		)
		current, err := scan(rows, &dl.Seq, &kind, &state, &dl.Event.Actor, &dl.Event.Detail, &at)
		if err != nil {
			return nil, fmt.Errorf("list undelivered %ss: %w", part, err)
		}
		dl.Current = current
		dl.Event.Kind = approvals.EventKind(kind)
		dl.Event.At = fromMillis(at)
		dl.Event.Request = current
		dl.Event.Request.State = approvals.State(state)
		out = append(out, dl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list undelivered %ss: %w", part, err)
	}
	return out, nil
}

// MarkDelivered implements approvals.Outbox.
func (d *DB) MarkDelivered(ctx context.Context, seq int64, part approvals.Part) error {
	_, column, err := due(part)
	if err != nil {
		return err
	}
	res, err := d.db.ExecContext(ctx, `UPDATE events SET `+column+` = ? WHERE seq = ?`, time.Now().UnixMilli(), seq)
	if err != nil {
		return fmt.Errorf("mark %s of event %d delivered: %w", part, seq, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("mark %s of event %d delivered: no such event (%v)", part, seq, err)
	}
	return nil
}

// Backlog implements approvals.Outbox.
func (d *DB) Backlog(ctx context.Context) (int, error) {
	// Two counts, each on its partial index, instead of one OR that scans
	// the whole (never pruned) log.
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM events e WHERE `+auditDue+`) +
		(SELECT COUNT(*) FROM events e WHERE `+messageDue+` AND NOT `+auditDue+`)`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count undelivered events: %w", err)
	}
	return n, nil
}
