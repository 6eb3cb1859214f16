package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

// CourierStore is what the Courier needs of the store: the outbox, a place
// to record where a request's approval message was posted, and leases.
type CourierStore interface {
	approvals.Outbox
	approvals.Leases
	SetMessage(ctx context.Context, id, channel, ts string) error
}

// Courier delivers recorded events from the store's outbox to Slack: every
// event's audit record to the audit channel, and each request's approval
// message, posted after its first event and redrawn after every state
// change. Audit messages are records: it posts them and never edits or
// deletes one.
//
// The events wait in the database until Slack has taken them, so a Slack
// outage or rate limit delays the audit but loses nothing, and what is left
// at shutdown is delivered at the next start. Every post carries message
// metadata naming what it is; before posting anything a second time (after
// a crash, a timeout or a failed mark), the Courier looks for the first post
// in the channel's history and adopts it, so nothing is posted twice.
//
// It works in four lanes that never wait for each other. Audit records go
// one at a time in the order the events happened, so the records of a
// request keep their order. Refused attempts go in a lane of their own,
// folded per person (see RefusalWindow), so that a flood of them never
// delays the records of real requests. Approval messages go in a third
// lane, so that a message Slack will not take never holds up the audit.
// Notices (escalation in a request's thread, the outcome to its requester
// directly) go in the fourth.
//
// Several Couriers (one per replica) may share one store: each claims what
// it delivers (approvals.Outbox.Claim), so that no record is delivered by
// two, one request's deliveries stay in order, and the claims of a replica
// that dies end after ClaimTTL, when another takes them over. The refusal
// lane is worked by one Courier at a time, which holds RefusalLease.
//
// As an approvals.Notifier, the Courier only wakes up: the service tells it
// after each event it recorded.
type Courier struct {
	api     *slack.Client
	store   CourierStore
	channel string
	log     *slog.Logger
	pace    *pacer
	wake    map[lane]chan struct{}

	// Poll is how often the outbox is read when nothing wakes the Courier.
	Poll time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed delivery; it
	// doubles from one to the other, or is what Slack's rate limit asks.
	MinBackoff, MaxBackoff time.Duration
	// RefusalWindow folds refused attempts: a person's first refusal is
	// audited at once, and those that follow within the window are audited
	// together, as one record with their count, when it ends.
	RefusalWindow time.Duration
	// flushing makes refusals still folding go out at once (see Flush).
	flushing atomic.Bool

	// Mention are mentioned on every approval message while it waits.
	Mention approvals.Audience
	// EscalationApprovers are mentioned in the thread of a request that is
	// escalated.
	EscalationApprovers approvals.Audience

	// Replica names this Courier among those sharing the store, as the
	// owner of its claims. Empty means approvals.DefaultReplica.
	Replica string
	// ClaimTTL is how long a claim on a delivery lasts; the Courier renews
	// its claims every third of it while it works through them, and the
	// refusal lane's lease before each person's record. Zero means
	// DefaultClaimTTL.
	ClaimTTL time.Duration

	// BotUserID is revokebot's own bot user (auth.test's user_id): only its
	// messages are adopted as earlier posts. Empty means any bot's.
	BotUserID string

	// Posted, if set, is told the ID of each request whose approval
	// message this Courier posted (or adopted) and recorded. It must not
	// block. (Bot.MessagePosted is one.)
	Posted func(requestID string)
}

// RefusalLease is the lease held by the Courier that audits refused
// attempts.
const RefusalLease = "courier:refusals"

// DefaultClaimTTL is how long a Courier's claim on a delivery lasts unless
// renewed. Claims are renewed every third of it while a batch is delivered,
// so that a claim does not end while its post is under way, however long
// Slack takes; it ends only when the Courier stops (or stalls) for that long.
const DefaultClaimTTL = 45 * time.Second

// Courier defaults.
const (
	defaultPoll          = 5 * time.Second
	defaultMinBackoff    = 250 * time.Millisecond
	defaultMaxBackoff    = time.Minute
	defaultRefusalWindow = time.Minute
	deliveryBatch        = 50
	// slackCallTimeout bounds one Slack call. A call once sent is not cut
	// short by shutdown: cutting it would leave us unsure whether Slack
	// posted the record.
	slackCallTimeout = 20 * time.Second
)

// lane is one of the Courier's independent delivery queues.
type lane int

const (
	auditLane lane = iota + 1
	refusalLane
	messageLane
	noticeLane
)

func (l lane) String() string {
	switch l {
	case auditLane:
		return "audit records"
	case refusalLane:
		return "refusal records"
	case messageLane:
		return "approval messages"
	case noticeLane:
		return "notices"
	}
	return fmt.Sprintf("lane(%d)", int(l))
}

var lanes = []lane{auditLane, refusalLane, messageLane, noticeLane}

// NewCourier returns a Courier delivering store's events to Slack through
// api, with audit records going to auditChannel, paced as pacing says (the
// zero Pacing means DefaultPacing). Call Run to start it.
func NewCourier(api *slack.Client, store CourierStore, auditChannel string, pacing Pacing, log *slog.Logger) *Courier {
	if log == nil {
		log = slog.Default()
	}
	c := &Courier{
		api: api, store: store, channel: auditChannel, log: log,
		pace:          newPacer(pacing),
		wake:          map[lane]chan struct{}{},
		Poll:          defaultPoll,
		MinBackoff:    defaultMinBackoff,
		MaxBackoff:    defaultMaxBackoff,
		RefusalWindow: defaultRefusalWindow,
	}
	for _, l := range lanes {
		c.wake[l] = make(chan struct{}, 1)
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
// off, and tries the same delivery again: no audit record is skipped. When
// it stops, it releases its claims, so that other replicas take over what
// is left at once.
func (c *Courier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, l := range lanes {
		wg.Go(func() { c.runLane(ctx, l) })
	}
	wg.Wait()
	release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := c.store.ReleaseClaims(release, c.owner()); err != nil {
		c.log.Warn("release delivery claims; they end by themselves", "err", err)
	}
	if err := c.store.Release(release, RefusalLease, c.owner()); err != nil {
		c.log.Warn("release the refusal lane; its lease ends by itself", "err", err)
	}
}

func (c *Courier) owner() string {
	if c.Replica != "" {
		return c.Replica
	}
	return approvals.DefaultReplica
}

func (c *Courier) claimTTL() time.Duration {
	if c.ClaimTTL > 0 {
		return c.ClaimTTL
	}
	return DefaultClaimTTL
}

// claim claims up to deliveryBatch deliveries of part for this Courier,
// and keeps them claimed, renewing the claims every third of ClaimTTL while
// they are delivered, until release is called. lost reports whether a
// renewal failed: the claims may then end, and the batch should stop.
func (c *Courier) claim(ctx context.Context, part approvals.Part) (batch []approvals.Delivery, lost func() bool, release func(), err error) {
	batch, err = c.store.Claim(ctx, part, c.owner(), deliveryBatch, c.claimTTL())
	if err != nil {
		c.log.Error("claim from the outbox", "part", part.String(), "err", err)
		return nil, nil, nil, err
	}
	var failed atomic.Bool
	renewing, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(c.claimTTL() / 3)
		defer t.Stop()
		for {
			select {
			case <-renewing.Done():
				return
			case <-t.C:
			}
			// Claiming again renews this Courier's own claims: they are the
			// earliest deliveries due that no other Courier holds.
			if _, err := c.store.Claim(renewing, part, c.owner(), deliveryBatch, c.claimTTL()); err != nil && renewing.Err() == nil {
				c.log.Warn("renew claims on the outbox; stopping this batch", "part", part.String(), "err", err)
				failed.Store(true)
			}
		}
	}()
	return batch, failed.Load, func() { stop(); <-done }, nil
}

// runLane delivers one lane until ctx ends.
func (c *Courier) runLane(ctx context.Context, l lane) {
	backoff := c.MinBackoff
	for ctx.Err() == nil {
		more, err := c.deliverLane(ctx, l)
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
		if more {
			continue
		}
		t := time.NewTimer(c.Poll)
		select {
		case <-ctx.Done():
		case <-c.wake[l]:
		case <-t.C:
		}
		t.Stop()
	}
}

// deliverLane delivers what lane l has to deliver now, and reports whether
// there may be more right away.
func (c *Courier) deliverLane(ctx context.Context, l lane) (more bool, err error) {
	switch l {
	case auditLane:
		n, err := c.deliverAudits(ctx)
		return n == deliveryBatch, err
	case refusalLane:
		held, err := c.store.Lease(ctx, RefusalLease, c.owner(), c.claimTTL())
		if err != nil || !held {
			return false, err // another replica audits refusals
		}
		return false, c.deliverRefusals(ctx)
	case messageLane:
		n, err := c.deliverMessages(ctx)
		return n == deliveryBatch, err
	case noticeLane:
		n, err := c.deliverNotices(ctx)
		return n == deliveryBatch, err
	}
	return false, fmt.Errorf("unknown lane %d", int(l))
}

// Flush waits until the outbox is empty or ctx ends, while Run delivers. It
// returns an error saying how much is left if ctx ended first. Refused
// attempts still folding are audited at once, without waiting for their
// window to end.
func (c *Courier) Flush(ctx context.Context) error {
	c.flushing.Store(true)
	defer c.flushing.Store(false)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		n, err := c.store.Backlog(context.WithoutCancel(ctx))
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

// deliverAudits posts the audit records of up to deliveryBatch events in
// order, stopping at the first failure. It returns how many it read.
func (c *Courier) deliverAudits(ctx context.Context) (int, error) {
	return c.deliverInOrder(ctx, approvals.AuditRecord, c.deliverAudit)
}

// errClaimsLost stops a batch whose claims could not be renewed: another
// Courier may take them over once they end.
var errClaimsLost = errors.New("claims on the outbox not renewed")

// errNotYet is what a deliverer returns for a delivery that must wait for
// something else (such as the message it replies to) without holding up
// the ones after it.
var errNotYet = errors.New("not deliverable yet")

// deliverInOrder delivers part of up to deliveryBatch events claimed with
// deliver, in the order the events happened, stopping at the first failure
// but for errNotYet, which skips the delivery for now, or when its claims
// could not be renewed. It returns how many it delivered.
func (c *Courier) deliverInOrder(ctx context.Context, part approvals.Part, deliver func(context.Context, approvals.Delivery) error) (int, error) {
	batch, lost, release, err := c.claim(ctx, part)
	if err != nil {
		return 0, err
	}
	defer release()
	n := 0
	for _, d := range batch {
		if ctx.Err() != nil {
			return n, nil
		}
		if lost() {
			return n, errClaimsLost
		}
		err := deliver(ctx, d)
		switch {
		case errors.Is(err, errNotYet):
			continue
		case err != nil:
			return n, err
		}
		n++
	}
	return n, nil
}

// deliverAudit posts d's audit record, unless an earlier attempt already
// did, and marks it delivered.
func (c *Courier) deliverAudit(ctx context.Context, d approvals.Delivery) error {
	log := c.log.With("request_id", d.Event.Request.ID, "event", string(d.Event.Kind), "seq", d.Seq)
	// Once begun, a delivery is finished and marked, whatever happens to ctx.
	ctx = context.WithoutCancel(ctx)
	meta := auditMetadata(d.Event, d.Seq, d.Seq, 1)
	err := c.postOnce(ctx, log, d.Seq, approvals.AuditRecord, c.channel, c.inHistory(c.channel, meta), func(ctx context.Context) error {
		_, _, err := c.api.PostMessageContext(ctx, c.channel,
			slack.MsgOptionText(auditText(d.Event, d.Seq), false), slack.MsgOptionMetadata(meta),
			slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
		return err
	})
	if err != nil {
		log.Error("audit record not delivered yet; will retry", "err", err, "hint", hint(err))
		return err
	}
	if err := c.store.MarkDelivered(ctx, d.Seq, approvals.AuditRecord); err != nil {
		log.Error("delivered but not marked; will retry the mark (the record is found in the channel, not posted again)", "err", err)
		return err
	}
	log.Info("audited", "target", d.Event.Target, "actor", d.Event.Actor)
	return nil
}

// postOnce posts part of the event numbered seq with post, unless an
// earlier attempt may have posted it and find, given when the first attempt
// began, shows it did.
func (c *Courier) postOnce(ctx context.Context, log *slog.Logger, seq int64, part approvals.Part, channel string,
	find func(ctx context.Context, since time.Time) (string, error), post func(context.Context) error) error {
	since, err := c.store.BeginAttempt(ctx, seq, part)
	if err != nil {
		return err
	}
	if !since.IsZero() {
		ts, err := find(ctx, since)
		if err != nil {
			return fmt.Errorf("look for an earlier post of the %s of record %d: %w", part, seq, err)
		}
		if ts != "" {
			log.Info("adopting the post an earlier attempt made", "part", part.String(), "message_ts", ts)
			return nil
		}
	}
	if err := c.pace.post(ctx, channel); err != nil {
		return err
	}
	callCtx, cancel := context.WithTimeout(ctx, slackCallTimeout)
	defer cancel()
	return post(callCtx)
}

// inHistory returns a find for postOnce that looks for meta in channel's
// history.
func (c *Courier) inHistory(channel string, meta slack.SlackMetadata) func(context.Context, time.Time) (string, error) {
	return func(ctx context.Context, since time.Time) (string, error) {
		return c.findPosted(ctx, channel, since, meta)
	}
}

// deliverMessages posts or redraws the approval messages of up to
// deliveryBatch events, in order per request. A request whose message fails
// is left for the next round, after its other events; the others go on.
func (c *Courier) deliverMessages(ctx context.Context) (int, error) {
	batch, lost, release, err := c.claim(ctx, approvals.MessageUpdate)
	if err != nil {
		return 0, err
	}
	defer release()
	// A message shows its request's current state, so of several events of
	// one request in a batch, only the last needs drawing.
	last := map[string]int64{}
	for _, d := range batch {
		last[d.Current.ID] = d.Seq
	}
	failed := map[string]bool{}
	var errs []error
	for _, d := range batch {
		if ctx.Err() != nil {
			break
		}
		if lost() {
			return len(batch), errors.Join(append(errs, errClaimsLost)...)
		}
		id := d.Current.ID
		if failed[id] {
			continue
		}
		if err := c.deliverMessage(ctx, d, last[id] == d.Seq); err != nil {
			failed[id] = true
			errs = append(errs, err)
		}
	}
	return len(batch), errors.Join(errs...)
}

// deliverMessage draws d's request message as it stands now, if d is the
// last of its events in the batch, and marks d done.
func (c *Courier) deliverMessage(ctx context.Context, d approvals.Delivery, last bool) error {
	log := c.log.With("request_id", d.Current.ID, "event", string(d.Event.Kind), "seq", d.Seq)
	ctx = context.WithoutCancel(ctx)
	if last {
		if err := c.drawMessage(ctx, log, d.Current); err != nil {
			if retryable(err) || d.Current.MessageTS == "" && d.Current.State() == approvals.StatePending {
				// An approval message not yet posted is retried while the
				// request can still be decided: the bot may be invited.
				log.Warn("request message not drawn yet; will retry", "err", err, "hint", hint(err))
				return err
			}
			log.Error("request message cannot be drawn; giving up on it", "state", string(d.Current.State()), "err", err, "hint", hint(err))
		}
	}
	if err := c.store.MarkDelivered(ctx, d.Seq, approvals.MessageUpdate); err != nil {
		log.Error("message drawn but not marked; will retry", "err", err)
		return err
	}
	return nil
}

// drawMessage posts r's approval message if it has none yet (adopting the
// post of an earlier attempt if the channel shows one), or redraws it.
func (c *Courier) drawMessage(ctx context.Context, log *slog.Logger, r approvals.Request) error {
	if r.Channel == "" {
		return nil // refused, or from before approval messages were posted here
	}
	blocks, fallback := renderRequest(r, notify{users: c.Mention.Users, groups: c.Mention.Groups})
	redraw := func(ts string) error {
		if err := c.pace.read(ctx); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, slackCallTimeout)
		defer cancel()
		_, _, _, err := c.api.UpdateMessageContext(ctx, r.Channel, ts,
			slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		return err
	}
	if r.MessageTS != "" {
		return redraw(r.MessageTS)
	}
	meta := requestMetadata(r)
	since, err := c.store.BeginPost(ctx, r.ID)
	if err != nil {
		return err
	}
	var ts string
	if !since.IsZero() {
		if ts, err = c.findPosted(ctx, r.Channel, since, meta); err != nil {
			return fmt.Errorf("look for an earlier post of the approval message: %w", err)
		}
		if ts != "" {
			log.Info("adopting the approval message an earlier attempt posted", "message_ts", ts)
		}
	}
	adopted := ts != ""
	if ts == "" {
		if err := c.pace.post(ctx, r.Channel); err != nil {
			return err
		}
		callCtx, cancel := context.WithTimeout(ctx, slackCallTimeout)
		_, ts, err = c.api.PostMessageContext(callCtx, r.Channel, slack.MsgOptionText(fallback, false),
			slack.MsgOptionBlocks(blocks...), slack.MsgOptionMetadata(meta))
		cancel()
		if err != nil {
			return fmt.Errorf("post the approval message in %s: %w", r.Channel, err)
		}
		log.Info("approval message posted", "channel", r.Channel, "message_ts", ts)
	}
	if err := c.store.SetMessage(ctx, r.ID, r.Channel, ts); err != nil {
		// Retried: the next attempt adopts the post instead of posting again.
		return fmt.Errorf("record the approval message %s: %w", ts, err)
	}
	if c.Posted != nil {
		c.Posted(r.ID)
	}
	if adopted {
		return redraw(ts) // it shows the request as it stood then
	}
	return nil
}

// hint says how to fix a Slack error that retrying alone will not.
func hint(err error) string {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return ""
	}
	switch se.Err {
	case "not_in_channel", "channel_not_found":
		return "invite revokebot to the channel: /invite @revokebot"
	case "is_archived":
		return "the channel is archived: unarchive it or configure another"
	case "missing_scope":
		return "the app lacks a scope: compare its scopes with slack-app-manifest.yaml and reinstall it"
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
