package bot

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

// Auditor is the approvals.Notifier that writes every event to the audit
// channel, and keeps each request's approval message in step with its state.
// Audit messages are records: it posts them and never edits or deletes one.
type Auditor struct {
	api     *slack.Client
	channel string
	log     *slog.Logger
	// retry bounds how hard it tries to deliver one message.
	attempts int
	maxWait  time.Duration
}

// NewAuditor returns an Auditor posting to the audit channel.
func NewAuditor(api *slack.Client, auditChannel string, log *slog.Logger) *Auditor {
	return &Auditor{api: api, channel: auditChannel, log: log, attempts: 5, maxWait: 30 * time.Second}
}

// Notify implements approvals.Notifier. Failures are retried a few times and
// then logged with the full audit text, so that no record vanishes silently.
func (a *Auditor) Notify(ctx context.Context, e approvals.Event) {
	log := a.log.With("request_id", e.Request.ID, "event", string(e.Kind))
	text := auditText(e)
	err := a.retry(ctx, func() error {
		_, _, err := a.api.PostMessageContext(ctx, a.channel,
			slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
		return err
	})
	if err != nil {
		log.ErrorContext(ctx, "audit message not delivered", "audit_text", text, "err", err)
	} else {
		log.InfoContext(ctx, "audited", "target", e.Request.Revocation.Email, "actor", e.Actor)
	}
	if e.ChangesState() {
		a.UpdateRequestMessage(ctx, e.Request)
	}
}

// UpdateRequestMessage redraws r's approval message, if it has one.
func (a *Auditor) UpdateRequestMessage(ctx context.Context, r approvals.Request) {
	if r.Channel == "" || r.MessageTS == "" {
		return
	}
	blocks, fallback := renderRequest(r)
	err := a.retry(ctx, func() error {
		_, _, _, err := a.api.UpdateMessageContext(ctx, r.Channel, r.MessageTS,
			slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
	if err != nil {
		a.log.ErrorContext(ctx, "request message not updated", "request_id", r.ID, "state", string(r.State), "err", err)
	}
}

// retry calls fn until it succeeds, fails for good, or the attempts run out,
// waiting as Slack asks on rate limits and backing off otherwise.
func (a *Auditor) retry(ctx context.Context, fn func() error) error {
	wait := 200 * time.Millisecond
	var err error
	for attempt := 1; attempt <= a.attempts; attempt++ {
		if err = fn(); err == nil || !retryable(err) || attempt == a.attempts {
			return err
		}
		d := wait
		if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
			d = rl.RetryAfter
		}
		d = min(d, a.maxWait)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(d):
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
