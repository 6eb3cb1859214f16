package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

// Courier delivers recorded events from the store's outbox to Slack: every
// event's audit record to the audit channel, and for an event that changes a
// request's state, the redrawn approval message. Audit messages are records:
// it posts them and never edits or deletes one.
//
// The events wait in the database until Slack has taken them, so a Slack
// outage or rate limit delays the audit but loses nothing, and what is left
// at shutdown is delivered at the next start. Audit records go one at a time
// in the order the events happened, so the records of a request keep their
// order; message updates go in a lane of their own, so that a message Slack
// will not update never holds up the audit trail.
//
// As an approvals.Notifier, the Courier only wakes up: the service tells it
// after each event it recorded.
type Courier struct {
	api     *slack.Client
	outbox  approvals.Outbox
	channel string
	log     *slog.Logger
	wake    map[approvals.Part]chan struct{}

	// posted holds the audit records posted but not yet marked delivered.
	postedMu sync.Mutex
	posted   map[int64]bool

	// Poll is how often the outbox is read when nothing wakes the Courier.
	Poll time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed delivery; it
	// doubles from one to the other, or is what Slack's rate limit asks.
	MinBackoff, MaxBackoff time.Duration
}

// Courier defaults.
const (
	defaultPoll       = 5 * time.Second
	defaultMinBackoff = 250 * time.Millisecond
	defaultMaxBackoff = time.Minute
	deliveryBatch     = 50
	// slackCallTimeout bounds one Slack call. A call once sent is not cut
	// short by shutdown: cutting it would leave us unsure whether Slack
	// posted the record.
	slackCallTimeout = 20 * time.Second
)

var parts = []approvals.Part{approvals.AuditRecord, approvals.MessageUpdate}

// NewCourier returns a Courier delivering outbox's events to Slack through
// api, with audit records going to auditChannel. Call Run to start it.
func NewCourier(api *slack.Client, outbox approvals.Outbox, auditChannel string, log *slog.Logger) *Courier {
	if log == nil {
		log = slog.Default()
	}
	c := &Courier{
		api: api, outbox: outbox, channel: auditChannel, log: log,
		wake:       map[approvals.Part]chan struct{}{},
		posted:     map[int64]bool{},
		Poll:       defaultPoll,
		MinBackoff: defaultMinBackoff,
		MaxBackoff: defaultMaxBackoff,
	}
	for _, p := range parts {
		c.wake[p] = make(chan struct{}, 1)
	}
	return c
}

// Notify implements approvals.Notifier: it wakes the Courier, never blocking.
func (c *Courier) Notify(context.Context, approvals.Event) {
	for _, ch := range c.wake {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run delivers the outbox until ctx ends. After a failure it waits, backing
// off, and tries the same delivery again: no audit record is skipped.
func (c *Courier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Go(func() { c.runLane(ctx, p) })
	}
	wg.Wait()
}

// runLane delivers one part of the events, in order, until ctx ends.
func (c *Courier) runLane(ctx context.Context, part approvals.Part) {
	backoff := c.MinBackoff
	for ctx.Err() == nil {
		n, err := c.deliverBatch(ctx, part)
		if err != nil {
			wait := backoff
			if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
				wait = max(wait, rl.RetryAfter)
			}
			backoff = min(backoff*2, c.MaxBackoff)
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		backoff = c.MinBackoff
		if n == deliveryBatch {
			continue // there may be more
		}
		t := time.NewTimer(c.Poll)
		select {
		case <-ctx.Done():
		case <-c.wake[part]:
		case <-t.C:
		}
		t.Stop()
	}
}

// Flush waits until the outbox is empty or ctx ends, while Run delivers. It
// returns an error saying how much is left if ctx ended first.
func (c *Courier) Flush(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		n, err := c.outbox.Backlog(context.WithoutCancel(ctx))
		if err != nil {
			return fmt.Errorf("flush audit outbox: %w", err)
		}
		if n == 0 {
			return nil
		}
		c.Notify(ctx, approvals.Event{})
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush audit outbox: %d events not yet delivered; they stay in the database and are delivered at the next start: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}

// deliverBatch delivers one part of up to deliveryBatch events in order,
// stopping at the first failure. It returns how many it read.
func (c *Courier) deliverBatch(ctx context.Context, part approvals.Part) (int, error) {
	batch, err := c.outbox.Undelivered(ctx, part, deliveryBatch)
	if err != nil {
		c.log.Error("read audit outbox", "part", part.String(), "err", err)
		return 0, err
	}
	// A message shows its request's current state, so of several redraws of
	// one message in a batch, only the last is needed.
	lastRedraw := map[string]int64{}
	for _, d := range batch {
		lastRedraw[d.Current.ID] = d.Seq
	}
	for _, d := range batch {
		if ctx.Err() != nil {
			return len(batch), nil
		}
		if err := c.deliver(ctx, part, d, lastRedraw[d.Current.ID] == d.Seq); err != nil {
			return len(batch), err
		}
	}
	return len(batch), nil
}

// deliver delivers part of d and marks it done. For a message update, last
// says whether it is the last redraw of its message in the batch; earlier
// ones are only marked.
func (c *Courier) deliver(ctx context.Context, part approvals.Part, d approvals.Delivery, last bool) error {
	log := c.log.With("request_id", d.Event.Request.ID, "event", string(d.Event.Kind), "seq", d.Seq)
	// Once begun, a delivery is finished and marked, whatever happens to ctx.
	ctx = context.WithoutCancel(ctx)
	switch part {
	case approvals.AuditRecord:
		if c.postedUnmarked(d.Seq, false) {
			break // posted before; only the mark failed
		}
		if err := c.postAudit(ctx, d.Event, d.Seq); err != nil {
			log.Error("audit record not delivered yet; will retry", "err", err, "hint", hint(err))
			return err
		}
		c.postedUnmarked(d.Seq, true)
		log.Info("audited", "target", d.Event.Request.Revocation.Email, "actor", d.Event.Actor)
	case approvals.MessageUpdate:
		if !last {
			break
		}
		if err := c.updateMessage(ctx, d.Current); err != nil {
			if retryable(err) {
				log.Warn("request message not updated yet; will retry", "err", err)
				return err
			}
			log.Error("request message cannot be updated; giving up on it", "state", string(d.Current.State), "err", err)
		}
	}
	if err := c.outbox.MarkDelivered(ctx, d.Seq, part); err != nil {
		log.Error("delivered but not marked; will retry the mark (a restart meanwhile would deliver it again)", "part", part.String(), "err", err)
		return err
	}
	if part == approvals.AuditRecord {
		c.forgetPosted(d.Seq)
	}
	return nil
}

// postedUnmarked reports whether audit record seq was posted but not yet
// marked delivered; with remember, it notes that it now was. A mark that
// fails is retried without posting the record again.
func (c *Courier) postedUnmarked(seq int64, remember bool) bool {
	c.postedMu.Lock()
	defer c.postedMu.Unlock()
	if remember {
		c.posted[seq] = true
	}
	return c.posted[seq]
}

func (c *Courier) forgetPosted(seq int64) {
	c.postedMu.Lock()
	defer c.postedMu.Unlock()
	delete(c.posted, seq)
}

func (c *Courier) postAudit(ctx context.Context, e approvals.Event, seq int64) error {
	ctx, cancel := context.WithTimeout(ctx, slackCallTimeout)
	defer cancel()
	_, _, err := c.api.PostMessageContext(ctx, c.channel,
		slack.MsgOptionText(auditText(e, seq), false), slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
	return err
}

// updateMessage redraws r's approval message, if it has one.
func (c *Courier) updateMessage(ctx context.Context, r approvals.Request) error {
	if r.Channel == "" || r.MessageTS == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, slackCallTimeout)
	defer cancel()
	blocks, fallback := renderRequest(r)
	_, _, _, err := c.api.UpdateMessageContext(ctx, r.Channel, r.MessageTS,
		slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
	return err
}

// hint says how to fix a Slack error that retrying alone will not.
func hint(err error) string {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return ""
	}
	switch se.Err {
	case "not_in_channel", "channel_not_found":
		return "invite revokebot to the audit channel (REVOKEBOT_AUDIT_CHANNEL): /invite @revokebot"
	case "is_archived":
		return "the audit channel is archived: unarchive it or set REVOKEBOT_AUDIT_CHANNEL to another"
	case "invalid_auth", "not_authed", "token_revoked", "account_inactive":
		return "SLACK_BOT_TOKEN is no longer valid: reinstall the app and set the new token"
	}
	return ""
}

// sleep waits for d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Retry budget for one Slack call made while a user waits.
const (
	slackAttempts = 5
	slackMaxWait  = 30 * time.Second
)

// withRetry calls fn until it succeeds, fails for good, or the attempts run
// out, waiting as Slack asks on rate limits and backing off otherwise.
func withRetry(ctx context.Context, fn func() error) error {
	wait := 200 * time.Millisecond
	var err error
	for attempt := 1; attempt <= slackAttempts; attempt++ {
		if err = fn(); err == nil || !retryable(err) || attempt == slackAttempts {
			return err
		}
		d := wait
		if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
			d = rl.RetryAfter
		}
		if !sleep(ctx, min(d, slackMaxWait)) {
			return errors.Join(err, ctx.Err())
		}
		wait *= 2
	}
	return err
}

// retryable tells passing Slack failures from ones that retrying cannot fix.
func retryable(err error) bool {
	var slackErr slack.SlackErrorResponse
	if errors.As(err, &slackErr) {
		switch slackErr.Err {
		case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return true
		}
		return false
	}
	return true // rate limits, 5xx, network errors
}
