package bot

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

// MetadataNotice marks a notice: a post in a request's thread (escalation,
// a relogin) or a direct message to its requester (its outcome; a relogin
// when the request has no message to reply to). Its payload holds
// request_id, seq (the record number of the event) and event. It is public
// interface, like the other metadata types.
const MetadataNotice = "revokebot_notice"

func noticeMetadata(e approvals.Event, seq int64) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: MetadataNotice,
		EventPayload: map[string]any{"request_id": e.Request.ID, "seq": seq, "event": string(e.Kind)}}
}

// deliverNotices sends the notices of up to deliveryBatch events, in order,
// stopping at the first failure. It returns how many it read.
func (c *Courier) deliverNotices(ctx context.Context) (int, error) {
	return c.deliverInOrder(ctx, approvals.Notice, c.deliverNotice)
}

// deliverNotice sends d's notice, unless an earlier attempt already did, and
// marks it done. Escalation goes in the request's thread, mentioning the
// escalation approvers; a relogin in the request's thread, mentioning its
// requester; a request's end goes to its requester directly.
func (c *Courier) deliverNotice(ctx context.Context, d approvals.Delivery) error {
	log := c.log.With("request_id", d.Current.ID, "event", string(d.Event.Kind), "seq", d.Seq)
	ctx = context.WithoutCancel(ctx)
	r := d.Current
	meta := noticeMetadata(d.Event, d.Seq)
	var err error
	relogin := d.Event.Kind == approvals.EventRelogin
	if relogin && r.MessageTS == "" {
		// The reply waits for the approval message, unless the message
		// lane is done with this event and still posted none (it gave up
		// on the channel): then the requester is told directly.
		posted, due, err := c.messageState(ctx, d.Seq)
		if err != nil {
			log.Warn("relogin notice: cannot tell whether the request's message is posted; will retry", "err", err)
			return err
		}
		if due || posted {
			log.Debug("relogin notice waits for the request's message to be posted")
			return errNotYet
		}
		log.Warn("relogin notice: the request has no message to reply to; telling its requester directly")
	}
	switch {
	case d.Event.Kind == approvals.EventEscalated && r.MessageTS == "":
		if r.State().Final() {
			break // never posted, and over: nothing to escalate in
		}
		log.Debug("escalation waits for the request's message to be posted")
		return errNotYet
	case d.Event.Kind == approvals.EventEscalated:
		err = c.replyOnce(ctx, log, d.Seq, r, meta,
			escalationText(r, notify{users: c.EscalationApprovers.Users, groups: c.EscalationApprovers.Groups}))
	case relogin && r.MessageTS != "":
		err = c.replyOnce(ctx, log, d.Seq, r, meta, reloginText(d.Event, true))
		if err != nil && !retryable(err) {
			// The thread is gone, or the channel closed to the bot: the
			// warning must still reach someone.
			log.Warn("relogin notice cannot go in the request's thread; telling its requester directly", "err", err, "hint", hint(err))
			err = c.directNotice(ctx, log, d.Seq, r.Requester, meta, reloginText(d.Event, false))
		}
	case relogin:
		err = c.directNotice(ctx, log, d.Seq, r.Requester, meta, reloginText(d.Event, false))
	default:
		err = c.directNotice(ctx, log, d.Seq, r.Requester, meta, outcomeText(d.Event))
	}
	if err != nil {
		if !retryable(err) {
			// A requester who cannot be written to (deactivated, or the app
			// may not open DMs) must not hold up the notices of others.
			log.Error("notice cannot be sent; giving up on it", "err", err, "hint", hint(err))
		} else {
			log.Warn("notice not sent yet; will retry", "err", err, "hint", hint(err))
			return err
		}
	}
	if err := c.store.MarkDelivered(ctx, d.Seq, approvals.Notice); err != nil {
		log.Error("notice sent but not marked; will retry the mark (the notice is found, not sent again)", "err", err)
		return err
	}
	return nil
}

// replyOnce posts text, the notice of the event numbered seq, in the
// thread of r's approval message, unless an earlier attempt did (a reply
// with the same metadata is in the thread).
func (c *Courier) replyOnce(ctx context.Context, log *slog.Logger, seq int64, r approvals.Request, meta slack.SlackMetadata, text string) error {
	inThread := func(ctx context.Context, _ time.Time) (string, error) {
		return c.findReply(ctx, r.Channel, r.MessageTS, meta)
	}
	return c.postOnce(ctx, log, seq, approvals.Notice, r.Channel, inThread, func(ctx context.Context) error {
		_, _, err := c.api.PostMessageContext(ctx, r.Channel, slack.MsgOptionTS(r.MessageTS),
			slack.MsgOptionText(text, false), slack.MsgOptionMetadata(meta),
			slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
		return err
	})
}

// directNotice sends text, the notice of the event numbered seq, to user
// directly, unless an earlier attempt did.
func (c *Courier) directNotice(ctx context.Context, log *slog.Logger, seq int64, user string, meta slack.SlackMetadata, text string) error {
	channel, err := c.directChannel(ctx, user)
	if err != nil {
		return err
	}
	return c.postOnce(ctx, log, seq, approvals.Notice, channel, c.inHistory(channel, meta), func(ctx context.Context) error {
		_, _, err := c.api.PostMessageContext(ctx, channel, slack.MsgOptionText(text, false), slack.MsgOptionMetadata(meta),
			slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
		return err
	})
}

// messageState reports, for the event numbered seq whose notice is still to
// deliver and whose request had no approval message when it was read,
// whether the message is posted now, and whether the message lane has yet
// to draw it for this event. It reads the outbox, in that order: a message
// lane done with the event has recorded any message it posted.
func (c *Courier) messageState(ctx context.Context, seq int64) (posted, due bool, err error) {
	draws, err := c.store.Undelivered(ctx, approvals.MessageUpdate, -1)
	if err != nil {
		return false, false, fmt.Errorf("list the approval messages still to draw: %w", err)
	}
	for _, d := range draws {
		if d.Seq == seq {
			return false, true, nil
		}
	}
	notices, err := c.store.Undelivered(ctx, approvals.Notice, -1)
	if err != nil {
		return false, false, fmt.Errorf("list the notices still to deliver: %w", err)
	}
	for _, d := range notices {
		if d.Seq == seq {
			return d.Current.MessageTS != "", false, nil
		}
	}
	return false, false, nil
}

// directChannel opens (or finds) the direct-message channel with user.
func (c *Courier) directChannel(ctx context.Context, user string) (string, error) {
	if err := c.pace.read(ctx); err != nil {
		return "", err
	}
	callCtx, cancel := context.WithTimeout(ctx, slackCallTimeout)
	defer cancel()
	ch, _, _, err := c.api.OpenConversationContext(callCtx, &slack.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
	if err != nil {
		return "", fmt.Errorf("conversations.open with %s: %w", user, err)
	}
	if ch == nil || ch.ID == "" {
		// slack-go returns no error for {"ok":false} without an error.
		return "", fmt.Errorf("conversations.open with %s: no channel in Slack's answer", user)
	}
	return ch.ID, nil
}

// findReply looks in the thread of channel's message ts for a reply the bot
// posted with metadata matching want, and returns its ts, or "".
func (c *Courier) findReply(ctx context.Context, channel, ts string, want slack.SlackMetadata) (string, error) {
	params := &slack.GetConversationRepliesParameters{ChannelID: channel, Timestamp: ts, Limit: 200, IncludeAllMetadata: true}
	for page := 0; page < historyPages; page++ {
		if err := c.pace.read(ctx); err != nil {
			return "", err
		}
		callCtx, cancel := context.WithTimeout(ctx, slackCallTimeout)
		msgs, hasMore, next, err := c.api.GetConversationRepliesContext(callCtx, params)
		cancel()
		if err != nil {
			return "", fmt.Errorf("conversations.replies %s %s: %w", channel, ts, err)
		}
		for _, m := range msgs {
			if m.Timestamp != ts && c.postedByUs(m) && sameMetadata(m.Metadata, want) {
				return m.Timestamp, nil
			}
		}
		if !hasMore || next == "" {
			return "", nil
		}
		params.Cursor = next
	}
	return "", nil
}

// escalationText is the thread post that escalates r to n.
func escalationText(r approvals.Request, n notify) string {
	who := n.mentions()
	if who == "" {
		who = "Escalation approvers"
	}
	waited := time.Since(r.CreatedAt)
	if !r.EscalatedAt.IsZero() {
		waited = r.EscalatedAt.Sub(r.CreatedAt)
	}
	if waited >= time.Minute {
		waited = waited.Round(time.Minute)
	} else {
		waited = waited.Round(time.Second)
	}
	return fmt.Sprintf(":rotating_light: *Escalated:* %s, this request has waited %s with %s. You may approve or deny it now, on the message above. It expires %s.",
		who, Escape(waited.String()), approvalsCount(r), slackDate(r.ExpiresAt))
}

// outcomeText tells a requester how their request ended.
func outcomeText(e approvals.Event) string {
	r := e.Request
	head := fmt.Sprintf("Your request `%s` to revoke %s", Escape(r.ID), targetsSummary(r))
	switch e.State {
	case approvals.StateRevoked:
		if r.DryRun {
			return ":test_tube: " + head + " was approved by " + approvers(r) + ". *Dry run: nothing was revoked.*"
		}
		return ":white_check_mark: " + head + " was approved by " + approvers(r) + ". *" + Escape(r.Summary()) + ".*"
	case approvals.StateFailed:
		return ":x: " + head + " was approved by " + approvers(r) + ", but *" + Escape(r.Summary()) +
			"*. The failed ones may not have been revoked: see the request's message and the audit channel, then request them again."
	case approvals.StateDenied:
		d, _ := r.Denial()
		text := ":no_entry: " + head + " was *denied* by " + mention(d.By) + "."
		if d.Reason != "" {
			text += " Their reason: " + code(truncate(d.Reason, 500))
		}
		return text
	case approvals.StateCancelled:
		return ":leftwards_arrow_with_hook: " + head + " was cancelled."
	case approvals.StateExpired:
		return ":hourglass_flowing_sand: " + head + " *expired* " + slackDate(r.ExpiresAt) + " with " + approvalsCount(r) + ". Ask again if it is still needed."
	}
	return head + " is now " + Escape(strconv.Quote(string(e.State))) + "."
}

// reloginText tells that the target of e, a relogin, logged in again after
// its revocation: in the request's thread (inThread), mentioning its
// requester, or to the requester directly. The target is named by its
// address, never mentioned: the person who logged in is not to be alerted.
func reloginText(e approvals.Event, inThread bool) string {
	r := e.Request
	head := ":rotating_light: " + mention(r.Requester) + ": "
	if !inThread {
		head = fmt.Sprintf(":rotating_light: Your request `%s`: ", Escape(r.ID))
	}
	when := ""
	for _, t := range r.Targets {
		if t.Email == e.Target && t.Watch.Seen() {
			at, app, ip := loginParts(t.Watch.Relogin)
			when = " (at " + at + ", to " + app + ", from " + ip + ")"
			break
		}
	}
	return head + targetText(e.Target) + " logged in again after the revocation" + when +
		": their identity-provider account is still active. Suspend it there, then revoke again."
}
