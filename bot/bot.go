// Package bot is revokebot's Slack adapter: it holds the Socket Mode
// connection, parses /revoke commands and button clicks, hands them to the
// approvals service, and renders requests and audit records as Slack messages.
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// Config holds the Bot's settings.
type Config struct {
	// ApprovalChannel, if set, receives every approval request; otherwise the
	// request goes to the channel where the command was typed.
	ApprovalChannel string
	// WorkTimeout bounds the handling of one command or click, including the
	// revocation; the work is not cut short by shutdown. Zero means 2 minutes.
	WorkTimeout time.Duration
	// MaxConcurrent bounds how many commands and clicks are handled at once.
	// Zero means 16.
	MaxConcurrent int
	// Logger receives the bot's logs; nil means slog.Default().
	Logger *slog.Logger
	// SocketOptions are passed to socketmode.New (tests shorten ping intervals).
	SocketOptions []socketmode.Option
}

// Bot serves /revoke and the Approve/Deny buttons over Socket Mode.
type Bot struct {
	api      *slack.Client
	svc      *approvals.Service
	cfg      Config
	log      *slog.Logger
	webhooks *http.Client

	inflight sync.WaitGroup
	slots    chan struct{}

	// posting holds, per request ID, a channel closed once the request's
	// approval message is recorded, so that a click arriving in between
	// (Slack may show the message before chat.postMessage returns) waits for
	// it and the message can be updated.
	postingMu sync.Mutex
	posting   map[string]chan struct{}

	// envelopes remembers recently handled envelope IDs, so that Slack's
	// redelivery of one (retry_attempt > 0) is acked but not handled again.
	envelopesMu sync.Mutex
	envelopes   map[string]time.Time
}

// envelopeMemory is how long an envelope ID is remembered; Slack redelivers
// within a few minutes.
const envelopeMemory = 15 * time.Minute

// New returns a Bot that talks to Slack through api (which must carry the
// app-level token for Socket Mode) and decides through svc.
func New(api *slack.Client, svc *approvals.Service, cfg Config) *Bot {
	if cfg.WorkTimeout <= 0 {
		cfg.WorkTimeout = 2 * time.Minute
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 16
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Bot{
		api:       api,
		svc:       svc,
		cfg:       cfg,
		log:       log,
		webhooks:  &http.Client{Timeout: 10 * time.Second},
		slots:     make(chan struct{}, cfg.MaxConcurrent),
		posting:   map[string]chan struct{}{},
		envelopes: map[string]time.Time{},
	}
}

// Run connects to Slack and serves until ctx ends, then waits for the work in
// flight to finish and returns nil. It returns an error if the connection
// fails for good (for example a revoked or invalid token).
func (b *Bot) Run(ctx context.Context) error {
	client := socketmode.New(b.api, b.cfg.SocketOptions...)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- client.RunContext(runCtx) }()

	// Work outlives ctx (a revocation in flight must finish), bounded per item.
	work := context.WithoutCancel(ctx)
	defer b.inflight.Wait()
	for {
		select {
		case <-ctx.Done():
			stop()
			<-done
			b.log.Info("shutting down: no new commands; finishing work in flight")
			return nil
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack socket mode: %w", explainSocketError(err))
		case evt := <-client.Events:
			b.dispatch(work, client, evt)
		}
	}
}

func explainSocketError(err error) error {
	if IsFatalAuthError(err) {
		return fmt.Errorf("%w (check SLACK_APP_TOKEN: it must be a valid app-level token, xapp-…, with the connections:write scope)", err)
	}
	return err
}

// IsFatalAuthError reports whether err is Slack refusing a token itself, which
// no retry can fix.
func IsFatalAuthError(err error) bool {
	if err == nil {
		return false
	}
	var se slack.SlackErrorResponse
	msg := err.Error()
	if errors.As(err, &se) {
		msg = se.Err
	}
	switch msg {
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive":
		return true
	}
	return false
}

// dispatch acks the envelope at once, then hands the work to a goroutine.
func (b *Bot) dispatch(ctx context.Context, client *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		b.log.Debug("connecting to slack")
	case socketmode.EventTypeConnected:
		b.log.Info("connected to slack")
	case socketmode.EventTypeHello:
		b.log.Debug("slack said hello")
	case socketmode.EventTypeConnectionError:
		if e, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			b.log.Warn("slack connection failed; retrying", "attempt", e.Attempt, "backoff", e.Backoff.String(), "err", e.ErrorObj)
		}
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
		b.log.Warn("slack socket trouble", "type", string(evt.Type), "data", fmt.Sprint(evt.Data))
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok || evt.Request == nil || b.redelivered(client, evt.Request) {
			return
		}
		parsed, err := ParseCommand(cmd.Text)
		// Parse errors and help need no Slack call: they go back in the ack.
		switch {
		case err != nil:
			b.ack(client, evt.Request, ephemeral(":warning: "+Escape(err.Error())+"\n"+Usage))
			return
		case parsed.Help:
			b.ack(client, evt.Request, ephemeral(Help))
			return
		}
		b.ack(client, evt.Request, nil)
		b.spawn(ctx, func(ctx context.Context) { b.handleCommand(ctx, cmd, parsed) })
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok || evt.Request == nil || b.redelivered(client, evt.Request) {
			return
		}
		b.ack(client, evt.Request, nil)
		if cb.Type != slack.InteractionTypeBlockActions {
			return
		}
		for _, action := range cb.ActionCallback.BlockActions {
			var d approvals.Decision
			switch action.ActionID {
			case ActionApprove:
				d = approvals.Approve
			case ActionDeny:
				d = approvals.Deny
			default:
				continue
			}
			id := action.Value
			b.spawn(ctx, func(ctx context.Context) { b.handleDecision(ctx, cb, id, d) })
		}
	case socketmode.EventTypeEventsAPI:
		if evt.Request != nil {
			b.ack(client, evt.Request, nil)
		}
	}
}

// redelivered acks and reports true for an envelope already handled.
func (b *Bot) redelivered(client *socketmode.Client, req *socketmode.Request) bool {
	now := time.Now()
	b.envelopesMu.Lock()
	_, seen := b.envelopes[req.EnvelopeID]
	if !seen {
		b.envelopes[req.EnvelopeID] = now
		for id, at := range b.envelopes {
			if now.Sub(at) > envelopeMemory {
				delete(b.envelopes, id)
			}
		}
	}
	b.envelopesMu.Unlock()
	if seen {
		b.log.Info("ignoring redelivered envelope", "envelope_id", req.EnvelopeID,
			"retry_attempt", req.RetryAttempt, "retry_reason", req.RetryReason)
		b.ack(client, req, nil)
	}
	return seen
}

func ephemeral(text string) map[string]any {
	return map[string]any{"response_type": "ephemeral", "text": text}
}

func (b *Bot) ack(client *socketmode.Client, req *socketmode.Request, payload any) {
	// Slack waits 3 seconds for an ack; past that, holding the loop is useless.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.AckCtx(ctx, req.EnvelopeID, payload); err != nil {
		b.log.Error("ack failed", "envelope_id", req.EnvelopeID, "err", err)
	}
}

// spawn runs fn in its own goroutine, bounded in number and time.
func (b *Bot) spawn(ctx context.Context, fn func(context.Context)) {
	b.inflight.Add(1)
	go func() {
		defer b.inflight.Done()
		b.slots <- struct{}{}
		defer func() { <-b.slots }()
		ctx, cancel := context.WithTimeout(ctx, b.cfg.WorkTimeout)
		defer cancel()
		fn(ctx)
	}()
}

func (b *Bot) handleCommand(ctx context.Context, cmd slack.SlashCommand, parsed Command) {
	req, err := b.svc.Submit(ctx, approvals.SubmitInput{
		Requester:  cmd.UserID,
		Revocation: parsed.Revocation,
		Reason:     parsed.Reason,
	})
	if err != nil {
		b.log.Info("request not accepted", "request_id", req.ID, "user", cmd.UserID, "code", approvals.ErrorCode(err), "err", err)
		b.reply(ctx, cmd.ResponseURL, ":no_entry: "+userMessage(err))
		return
	}
	log := b.log.With("request_id", req.ID)
	defer b.holdDecisions(req.ID)()
	channel := b.cfg.ApprovalChannel
	if channel == "" {
		channel = cmd.ChannelID
	}
	blocks, fallback := renderRequest(req)
	var ts string
	err = withRetry(ctx, func() error {
		var err error
		_, ts, err = b.api.PostMessageContext(ctx, channel, slack.MsgOptionText(fallback, false), slack.MsgOptionBlocks(blocks...))
		return err
	})
	if err != nil {
		log.Error("post approval request", "channel", channel, "err", err)
		b.reply(ctx, cmd.ResponseURL, fmt.Sprintf(":x: Request `%s` was recorded but its approval message could not be posted in <#%s> (%s). Invite revokebot to that channel, then ask again; this request will expire unused.",
			req.ID, Escape(channel), Escape(err.Error())))
		return
	}
	if err := b.svc.AttachMessage(ctx, req.ID, channel, ts); err != nil {
		log.Error("attach approval message", "err", err)
	}
	log.Info("approval requested", "channel", channel, "target", req.Revocation.Email)
	b.reply(ctx, cmd.ResponseURL, fmt.Sprintf(":hourglass: Request `%s` to revoke %s is waiting for an approver in <#%s>. It expires %s.",
		req.ID, Escape(req.Revocation.Email), Escape(channel), slackDate(req.ExpiresAt)))
}

// holdDecisions makes decisions on request id wait until the returned
// function is called.
func (b *Bot) holdDecisions(id string) (release func()) {
	ch := make(chan struct{})
	b.postingMu.Lock()
	b.posting[id] = ch
	b.postingMu.Unlock()
	return func() {
		b.postingMu.Lock()
		delete(b.posting, id)
		b.postingMu.Unlock()
		close(ch)
	}
}

func (b *Bot) handleDecision(ctx context.Context, cb slack.InteractionCallback, id string, d approvals.Decision) {
	b.postingMu.Lock()
	held := b.posting[id]
	b.postingMu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-ctx.Done():
		}
	}
	req, err := b.svc.Decide(ctx, id, cb.User.ID, d)
	if err != nil {
		b.log.Info("decision not applied", "request_id", id, "user", cb.User.ID, "code", approvals.ErrorCode(err), "err", err)
		b.reply(ctx, cb.ResponseURL, ":no_entry: "+userMessage(err))
		return
	}
	b.log.Info("decision applied", "request_id", req.ID, "user", cb.User.ID, "state", string(req.State))
}

// userMessage turns an error from the approvals service into Slack text for
// the person who caused it. It is the only place that does so.
func userMessage(err error) string {
	var e *approvals.Error
	if !errors.As(err, &e) {
		return approvals.ErrorMessage(err)
	}
	if e.Code == approvals.ECONFLICT && e.Request != nil {
		r := e.Request
		switch r.State {
		case approvals.StateExecuting, approvals.StateRevoked, approvals.StateFailed:
			return "This request was already approved by " + mention(r.DecidedBy) + " (now " + string(r.State) + ")."
		case approvals.StateDenied:
			return "This request was already denied by " + mention(r.DecidedBy) + "."
		case approvals.StateCancelled:
			return "This request was already cancelled by its requester " + mention(r.DecidedBy) + "."
		case approvals.StateExpired:
			return "This request already expired " + slackDate(r.ExpiresAt) + " without a decision. Ask for a new one if it is still needed."
		}
	}
	return Escape(e.Message)
}

// reply sends a private (ephemeral) message through a response_url.
func (b *Bot) reply(ctx context.Context, responseURL, text string) {
	u, err := url.Parse(responseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		b.log.Warn("no usable response_url; private reply dropped", "text", text)
		return
	}
	msg := &slack.WebhookMessage{ResponseType: slack.ResponseTypeEphemeral, Text: text, ReplaceOriginal: false}
	if err := slack.PostWebhookCustomHTTPContext(ctx, responseURL, b.webhooks, msg); err != nil {
		// A response_url is a credential: keep it out of the log.
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			err = fmt.Errorf("%s response_url: %w", uerr.Op, uerr.Err)
		}
		b.log.Error("private reply failed", "err", strings.ReplaceAll(err.Error(), responseURL, "<response_url>"), "text", text)
	}
}
