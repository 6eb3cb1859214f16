package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

// deliverRefusals audits refused attempts, per person: the first at once,
// and those that come within RefusalWindow of a record folded into one
// record, with their count, when the window ends. Every attempt stays in the
// database; only the channel is spared. A person whose record fails does
// not hold up the others.
func (c *Courier) deliverRefusals(ctx context.Context) error {
	groups, err := c.store.PendingRefusals(ctx)
	if err != nil {
		c.log.Error("read refusal outbox", "err", err)
		return err
	}
	var errs []error
	for _, g := range groups {
		if ctx.Err() != nil {
			break
		}
		// The lane's lease is renewed before each person's record: a
		// Courier that stalled and lost it stops, and the one that took it
		// over goes on.
		if held, err := c.store.Renew(ctx, RefusalLease, c.owner(), c.claimTTL()); err != nil || !held {
			return errors.Join(append(errs, err)...)
		}
		if err := c.deliverRefusal(ctx, g); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deliverRefusal posts the audit record due now for one person's refused
// attempts, if any is.
func (c *Courier) deliverRefusal(ctx context.Context, g approvals.Refusals) error {
	now := time.Now()
	windowEnd := g.LastAudited.Add(c.RefusalWindow)
	var (
		last  = g.First
		count = 1
		text  string
	)
	switch {
	case g.LastAudited.IsZero() || !g.First.Event.At.Before(windowEnd):
		// No record within the window: this one is audited at once.
		text = auditText(g.First.Event, g.First.Seq)
	case now.Before(windowEnd) && !c.flushing.Load():
		return nil // folded into the record due when the window ends
	default:
		last, count = g.Last, g.Count
		text = foldedRefusalText(g, c.RefusalWindow)
	}
	log := c.log.With("request_id", last.Event.Request.ID, "event", string(approvals.EventRefused), "seq", last.Seq, "count", count)
	ctx = context.WithoutCancel(ctx)
	meta := auditMetadata(last.Event, g.First.Seq, last.Seq, count)
	err := c.postOnce(ctx, log, last.Seq, approvals.AuditRecord, c.channel, c.inHistory(c.channel, meta), func(ctx context.Context) error {
		_, _, err := c.api.PostMessageContext(ctx, c.channel, slack.MsgOptionText(text, false),
			slack.MsgOptionMetadata(meta), slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
		return err
	})
	if err != nil {
		log.Error("refusal record not delivered yet; will retry", "err", err, "hint", hint(err))
		return err
	}
	if err := c.store.MarkRefusalsDelivered(ctx, g.Actor, last.Seq, time.Now()); err != nil {
		log.Error("refusal record delivered but not marked; will retry the mark", "err", err)
		return err
	}
	log.Info("audited refusals", "actor", g.Actor)
	return nil
}

// foldedRefusalText is the audit record of a person's refused attempts that
// came within one window: the count, the range of record numbers and times,
// and the latest attempt in full.
func foldedRefusalText(g approvals.Refusals, window time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "refused count=%d actor=%s records=%d-%d first_at=%s last_at=%s window=%s latest: ",
		g.Count, mention(g.Actor), g.First.Seq, g.Last.Seq,
		g.First.Event.At.UTC().Format(time.RFC3339), g.Last.Event.At.UTC().Format(time.RFC3339),
		Escape(strconv.Quote(window.String())))
	b.WriteString(auditText(g.Last.Event, g.Last.Seq))
	return truncate(b.String(), maxAuditText)
}
