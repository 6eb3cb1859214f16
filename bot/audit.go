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

// Auditor is the approvals.Notifier that writes every event to the audit
// channel, and keeps each request's approval message in step with its state.
// Audit messages are records: it posts them and never edits or deletes one.
//
// Notify only queues the event; one goroutine delivers the queue in order, so
// a slow or rate-limited Slack never holds up a revocation, and the events of
// a request reach the channel in the order they happened.
type Auditor struct {
	api     *slack.Client
	channel string
	log     *slog.Logger

	mu      sync.Mutex
	wake    *sync.Cond
	queue   []approvals.Event
	closed  bool
	abort   context.Context // ends when Close gives up waiting
	cancel  context.CancelFunc
	drained chan struct{}
}

// NewAuditor returns an Auditor posting to the audit channel, and starts its
// delivery goroutine. Call Close to drain and stop it.
func NewAuditor(api *slack.Client, auditChannel string, log *slog.Logger) *Auditor {
	a := &Auditor{api: api, channel: auditChannel, log: log, drained: make(chan struct{})}
	a.wake = sync.NewCond(&a.mu)
	a.abort, a.cancel = context.WithCancel(context.Background())
	go a.deliverAll()
	return a
}

// Notify implements approvals.Notifier. It never blocks on Slack.
func (a *Auditor) Notify(_ context.Context, e approvals.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		a.log.Error("audit message not delivered: auditor closed", "request_id", e.Request.ID,
			"event", string(e.Kind), "audit_text", auditText(e))
		return
	}
	a.queue = append(a.queue, e)
	a.wake.Signal()
}

// Close stops taking events and waits until the queue is delivered or ctx
// ends. Events still queued then are logged, with their full audit text.
func (a *Auditor) Close(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	a.wake.Signal()
	a.mu.Unlock()
	select {
	case <-a.drained:
		a.cancel()
		return nil
	case <-ctx.Done():
		a.cancel()
		<-a.drained
		return fmt.Errorf("audit queue not drained: %w", ctx.Err())
	}
}

func (a *Auditor) deliverAll() {
	defer close(a.drained)
	for {
		a.mu.Lock()
		for len(a.queue) == 0 && !a.closed {
			a.wake.Wait()
		}
		if len(a.queue) == 0 {
			a.mu.Unlock()
			return
		}
		e := a.queue[0]
		a.queue = a.queue[1:]
		a.mu.Unlock()
		a.deliver(a.abort, e)
	}
}

// deliver posts e's audit record and redraws its request's message.
// Failures are retried a few times, then logged with the full audit text, so
// that no record vanishes silently.
func (a *Auditor) deliver(ctx context.Context, e approvals.Event) {
	log := a.log.With("request_id", e.Request.ID, "event", string(e.Kind))
	text := auditText(e)
	err := withRetry(ctx, func() error {
		_, _, err := a.api.PostMessageContext(ctx, a.channel,
			slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
		return err
	})
	if err != nil {
		log.Error("audit message not delivered", "audit_text", text, "err", err)
	} else {
		log.Info("audited", "target", e.Request.Revocation.Email, "actor", e.Actor)
	}
	if e.ChangesState() {
		a.updateRequestMessage(ctx, log, e.Request)
	}
}

// updateRequestMessage redraws r's approval message, if it has one.
func (a *Auditor) updateRequestMessage(ctx context.Context, log *slog.Logger, r approvals.Request) {
	if r.Channel == "" || r.MessageTS == "" {
		return
	}
	blocks, fallback := renderRequest(r)
	err := withRetry(ctx, func() error {
		_, _, _, err := a.api.UpdateMessageContext(ctx, r.Channel, r.MessageTS,
			slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
	if err != nil {
		log.Error("request message not updated", "state", string(r.State), "err", err)
	}
}

// Retry budget for one Slack call.
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
		t := time.NewTimer(min(d, slackMaxWait))
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
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
