// Package bot is revokebot's Slack adapter: it holds the Socket Mode
// connection, parses /revoke commands and button clicks, hands them to the
// approvals service, and renders requests and audit records as Slack messages.
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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
	// WorkTimeout bounds the handling of one command or click; the work is
	// not cut short by shutdown. A revocation, once approved, runs under the
	// service's own ExecTimeout instead. Zero means 2 minutes.
	WorkTimeout time.Duration
	// MessageWait bounds how long a requester's confirmation waits for the
	// approval message to be posted, so that it can say where the message
	// is, or that it is not there yet. Zero means 3 seconds.
	MessageWait time.Duration
	// MaxConcurrent is how many workers handle commands and clicks: the
	// number handled at once. Zero means DefaultWorkers.
	MaxConcurrent int
	// QueueLimit bounds how many commands and clicks may wait for a worker.
	// Past it, one is refused at once, and the person told privately that
	// revokebot is busy and to try again. Zero means DefaultQueueLimit.
	QueueLimit int
	// TeamID is the workspace the bot serves (auth.test's team_id). Payloads
	// from any other team are refused; so are all payloads while it is empty.
	TeamID string
	// Logger receives the bot's logs; nil means slog.Default().
	Logger *slog.Logger
	// SocketOptions are passed to socketmode.New (tests shorten ping intervals).
	SocketOptions []socketmode.Option
	// MaxTargets bounds how many people one /revoke may name. Zero means
	// approvals.DefaultMaxTargets.
	MaxTargets int
	// People resolves a mentioned person to their email (users.info). Nil
	// refuses every mention.
	People People
	// ResponseURLHosts are the hosts a response_url may point at: the bot
	// sends private replies to no other, since a response_url arrives in a
	// payload and the reply (which may name the target) goes wherever it
	// points. An entry without a port, such as "hooks.slack.com", matches
	// that host name, in any case, over https on the default port (443)
	// only. An entry with a port, such as "127.0.0.1:8080" or "[::1]:8080",
	// matches that host and port exactly, over https or plain http (for a
	// local fake Slack). Empty (nil) means []string{"hooks.slack.com"}.
	ResponseURLHosts []string
}

// Requests is what the Bot needs of the approvals service.
type Requests interface {
	CheckRequester(ctx context.Context, user string) error
	Submit(ctx context.Context, in approvals.SubmitInput) (approvals.Request, error)
	DecideFrom(ctx context.Context, in approvals.DecideInput) (approvals.Request, error)
	CheckDecider(ctx context.Context, in approvals.DecideInput) (approvals.Request, error)
	Get(ctx context.Context, id string) (approvals.Request, error)
	Status(ctx context.Context, user, idOrPrefix string) (approvals.Request, error)
	Pending(ctx context.Context, user string) ([]approvals.Request, error)
}

// People says who a chat user is.
type People interface {
	Person(ctx context.Context, user string) (approvals.Person, error)
}

var _ Requests = (*approvals.Service)(nil)

// DefaultResponseURLHost is where Slack's response_urls point.
const DefaultResponseURLHost = "hooks.slack.com"

// Bot serves /revoke and the Approve/Deny buttons over Socket Mode.
type Bot struct {
	api      *slack.Client
	svc      Requests
	cfg      Config
	log      *slog.Logger
	webhooks *http.Client

	// inflight counts the work accepted and not yet done: the jobs queued
	// or running, and the follow-ups still to come.
	inflight sync.WaitGroup
	work     *workQueue
	// refused counts the commands and clicks refused for a full queue;
	// refusalLogged is when one was last logged (unix nanoseconds), and
	// refusedLogged how many had been refused then.
	refused, refusedLogged atomic.Uint64
	refusalLogged          atomic.Int64

	// confirm runs the requesters' confirmations (see whenPosted).
	confirm confirmer

	// envelopes remembers recently handled envelope IDs, so that Slack's
	// redelivery of one (retry_attempt > 0) is acked but not handled again.
	// It only saves work: the store de-duplicates commands and clicks by
	// what identifies them (trigger_id, action_ts), durably.
	envelopes envelopeMemory

	// appID is this app's ID, from Slack's hello on the socket; payloads
	// for another app are refused.
	appID atomic.Pointer[string]
	// connected is true from Slack's hello until the connection is lost.
	connected atomic.Bool
}

// Connected reports whether the Socket Mode connection is up: Slack said
// hello on it and it has not been lost since.
func (b *Bot) Connected() bool { return b.connected.Load() }

// Defaults of Config.MaxConcurrent and Config.QueueLimit.
const (
	// DefaultWorkers handle commands and clicks. The work is mostly waiting
	// (on Slack, the database, Cloudflare), so they are many for the cores.
	DefaultWorkers = 64
	// DefaultQueueLimit is the commands and clicks that may wait: a burst
	// of a thousand is taken whole, in about a megabyte.
	DefaultQueueLimit = 1024
)

// New returns a Bot that talks to Slack through api (which must carry the
// app-level token for Socket Mode) and decides through svc.
func New(api *slack.Client, svc Requests, cfg Config) *Bot {
	if cfg.WorkTimeout <= 0 {
		cfg.WorkTimeout = 2 * time.Minute
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultWorkers
	}
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = DefaultQueueLimit
	}
	if cfg.MaxTargets <= 0 {
		cfg.MaxTargets = approvals.DefaultMaxTargets
	}
	if cfg.MessageWait <= 0 {
		cfg.MessageWait = defaultMessageWait
	}
	if len(cfg.ResponseURLHosts) == 0 {
		cfg.ResponseURLHosts = []string{DefaultResponseURLHost}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Bot{
		api: api,
		svc: svc,
		cfg: cfg,
		log: log,
		// Work outlives the connection (a revocation in flight must
		// finish), bounded per item.
		work: newWorkQueue(context.Background(), cfg.MaxConcurrent, cfg.QueueLimit, cfg.WorkTimeout),
	}
	b.confirm = newConfirmer(b, lookEvery)
	b.webhooks = &http.Client{
		Timeout: 10 * time.Second,
		// A redirect must stay within the allowed hosts too.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if err := b.checkResponseURL(req.URL); err != nil {
				return fmt.Errorf("redirected: %w", err)
			}
			return nil
		},
	}
	return b
}

// Run connects to Slack and serves until ctx ends, then waits for the work in
// flight to finish and returns nil. It returns an error if the connection
// fails for good (for example a revoked or invalid token). A Bot runs once:
// Run stops its workers when it returns.
func (b *Bot) Run(ctx context.Context) error {
	// slack-go handles Slack's disconnect messages itself; its debug log is
	// the only place that shows their reason.
	// That debug log costs a decoding and an encoding of every envelope
	// and every ack (to redact it), on the one goroutine that reads them:
	// under a burst, acks came 35-40% later with it. It is on only when
	// the bot's own log shows debug.
	debug := b.log.Enabled(ctx, slog.LevelDebug)
	opts := append([]socketmode.Option{socketmode.OptionDebug(debug), socketmode.OptionLog(disconnectLog{b.log})}, b.cfg.SocketOptions...)
	client := socketmode.New(b.api, opts...)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- client.RunContext(runCtx) }()

	// Work outlives ctx (a revocation in flight must finish), bounded per
	// item: the work queue's jobs run under a context of their own. When
	// ctx ends, what was accepted (and acked) is done, then the workers stop.
	work := context.WithoutCancel(ctx)
	defer b.stop()
	defer b.inflight.Wait()
	defer b.connected.Store(false)
	ack := func(req *socketmode.Request, payload any) { b.ack(client, req, payload) }
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
			// slack-go gives up by itself on some refused tokens, not all
			// (token_expired, for one): stop on any of them.
			if e, ok := evt.Data.(*slack.ConnectionErrorEvent); ok && evt.Type == socketmode.EventTypeConnectionError && IsFatalAuthError(e.ErrorObj) {
				stop()
				<-done
				return fmt.Errorf("slack socket mode: %w", explainSocketError(e.ErrorObj))
			}
			b.dispatch(work, evt, ack)
		}
	}
}

func explainSocketError(err error) error {
	statusErr, isStatus := errors.AsType[slack.StatusCodeError](err)
	if IsFatalAuthError(err) || isStatus && statusErr.Code == http.StatusNotFound {
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
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
		"user_removed_from_team", "team_disabled":
		return true
	}
	return false
}

// acker acks a Socket Mode envelope, with an optional response payload.
type acker func(req *socketmode.Request, payload any)

// dispatch acks an envelope at once, then queues its work for a worker.
func (b *Bot) dispatch(ctx context.Context, evt socketmode.Event, ack acker) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		b.connected.Store(false)
		b.log.Debug("connecting to slack")
	case socketmode.EventTypeConnected:
		b.log.Info("connected to slack")
	case socketmode.EventTypeHello:
		if evt.Request != nil && evt.Request.ConnectionInfo.AppID != "" {
			id := evt.Request.ConnectionInfo.AppID
			b.appID.Store(&id)
		}
		b.connected.Store(true)
		b.log.Debug("slack said hello", "app_id", b.app())
	case socketmode.EventTypeDisconnect:
		b.connected.Store(false)
		b.log.Info("slack asked to reconnect")
	case socketmode.EventTypeConnectionError:
		b.connected.Store(false)
		if e, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			b.log.Warn("slack connection failed; retrying", "attempt", e.Attempt, "backoff", e.Backoff.String(), "err", e.ErrorObj)
		}
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
		b.log.Warn("slack socket trouble", "type", string(evt.Type), "err", socketTrouble(evt.Data))
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok || evt.Request == nil || b.redelivered(evt.Request, ack) || !b.ours(evt.Request, cmd.TeamID, cmd.APIAppID, ack) {
			return
		}
		parsed, err := ParseCommand(cmd.Text)
		// Parse errors and help need no Slack call: they go back in the ack.
		switch {
		case err != nil:
			ack(evt.Request, ephemeral(":warning: "+Escape(err.Error())+"\n"+Usage))
			return
		case parsed.Help:
			ack(evt.Request, ephemeral(Help))
			return
		}
		if !b.work.reserve() {
			b.refuseBusy("a command", "user", cmd.UserID)
			ack(evt.Request, ephemeral(busyCommand))
			return
		}
		ack(evt.Request, nil)
		key := commandKey(cmd, evt.Request.EnvelopeID)
		b.fill(func(ctx context.Context) { b.handleCommand(ctx, key, cmd, parsed) })
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok || evt.Request == nil || b.redelivered(evt.Request, ack) || !b.ours(evt.Request, cb.Team.ID, cb.APIAppID, ack) {
			return
		}
		if cb.Type == slack.InteractionTypeViewSubmission && cb.View.CallbackID == CallbackDenyReason {
			b.submitDeny(ctx, evt.Request, cb, ack)
			return
		}
		ack(evt.Request, nil)
		if cb.Type != slack.InteractionTypeBlockActions {
			return
		}
		// A click carries one action; of a payload with more, only the
		// first decision counts, so one payload starts at most one decision.
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
			in := approvals.DecideInput{
				ID: action.Value, Actor: cb.User.ID, Decision: d,
				Key: clickKey(cb, action, evt.Request.EnvelopeID),
				On:  clickedMessage(cb),
			}
			// The job keeps what it needs of the payload, not all of it.
			from := clickFrom{responseURL: cb.ResponseURL, triggerID: cb.TriggerID}
			if !b.work.reserve() {
				b.refuseBusy("a click", "request_id", in.ID, "user", in.Actor)
				b.tellBusy(from.responseURL, in.ID)
				break
			}
			if d == approvals.Deny {
				b.fill(func(ctx context.Context) { b.handleDeny(ctx, from, in) })
			} else {
				b.fill(func(ctx context.Context) { b.handleDecision(ctx, from, in) })
			}
			break
		}
	case socketmode.EventTypeEventsAPI:
		if evt.Request != nil {
			ack(evt.Request, nil)
		}
	}
}

// submitDeny answers a submitted deny modal: a reason that will not do is
// refused in the modal (it stays open); otherwise the modal closes and the
// denial is decided like a click.
func (b *Bot) submitDeny(ctx context.Context, req *socketmode.Request, cb slack.InteractionCallback, ack acker) {
	in, responseURL, problems, err := denySubmission(cb)
	if err != nil {
		b.log.Warn("refusing a deny submission", "user", cb.User.ID, "err", err)
		ack(req, nil)
		return
	}
	if problems == nil && !b.work.reserve() {
		// The modal stays open, with what was typed: submitting again works.
		b.refuseBusy("a deny submission", "request_id", in.ID, "user", in.Actor)
		problems = map[string]string{denyReasonBlock: busySubmission}
	}
	if problems != nil {
		ack(req, slack.NewErrorsViewSubmissionResponse(problems))
		return
	}
	ack(req, nil)
	from := clickFrom{responseURL: responseURL}
	b.fill(func(ctx context.Context) { b.handleDecision(ctx, from, in) })
}

// socketTrouble returns the cause of a socket error event, without the
// message that caused it: a raw envelope may hold a response_url, which is a
// credential.
func socketTrouble(data any) error {
	switch d := data.(type) {
	case *socketmode.ErrorBadMessage:
		return fmt.Errorf("unreadable message of %d bytes: %w", len(d.Message), d.Cause)
	case *socketmode.ErrorWriteFailed:
		return fmt.Errorf("write failed: %w", d.Cause)
	case *slack.IncomingEventError:
		return d.ErrorObj
	case error:
		return d
	}
	return fmt.Errorf("%T", data)
}

// app returns the app ID Slack gave in its hello, or "".
func (b *Bot) app() string {
	if p := b.appID.Load(); p != nil {
		return *p
	}
	return ""
}

// ours reports whether a payload comes from this workspace, for this app.
// Anything else is acked, so that Slack does not redeliver it, and dropped.
// While either ID is unknown, nothing is ours: deny by default.
func (b *Bot) ours(req *socketmode.Request, teamID, appID string, ack acker) bool {
	if b.cfg.TeamID != "" && teamID == b.cfg.TeamID && b.app() != "" && appID == b.app() {
		return true
	}
	b.log.Warn("refusing a payload for another workspace or app", "envelope_id", req.EnvelopeID,
		"team_id", teamID, "api_app_id", appID, "want_team_id", b.cfg.TeamID, "want_app_id", b.app())
	ack(req, nil)
	return false
}

// redelivered acks and reports true for an envelope already handled.
func (b *Bot) redelivered(req *socketmode.Request, ack acker) bool {
	seen := b.envelopes.seen(req.EnvelopeID, time.Now())
	if seen {
		b.log.Info("ignoring redelivered envelope", "envelope_id", req.EnvelopeID,
			"retry_attempt", req.RetryAttempt, "retry_reason", req.RetryReason)
		ack(req, nil)
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

// fill queues fn in the place taken with b.work.reserve.
func (b *Bot) fill(fn func(context.Context)) {
	b.inflight.Add(1)
	b.work.fill(func(ctx context.Context) {
		defer b.inflight.Done()
		fn(ctx)
	})
}

// clickFrom is what a click's handling needs of its payload: where to
// reply privately, and the trigger to open a modal with.
type clickFrom struct {
	responseURL string
	triggerID   string
}

// commandKey identifies a /revoke as the person typed it: Slack keeps its
// trigger_id when it redelivers the command, even in a new envelope.
func commandKey(cmd slack.SlashCommand, envelope string) string {
	if cmd.TriggerID != "" {
		return "slack-command:" + cmd.TriggerID
	}
	return "slack-envelope:" + envelope
}

// clickKey identifies a click as the person made it: its action_ts (with
// the user and the request), which a redelivery keeps.
func clickKey(cb slack.InteractionCallback, action *slack.BlockAction, envelope string) string {
	if action.ActionTs != "" {
		return "slack-click:" + cb.User.ID + ":" + action.ActionTs + ":" + action.Value
	}
	return "slack-envelope:" + envelope
}

// clickedMessage is the message a click was made on, as the payload says.
// The service honours the click only if it is the request's own message.
func clickedMessage(cb slack.InteractionCallback) *approvals.MessageRef {
	ref := &approvals.MessageRef{Channel: cb.Container.ChannelID, TS: cb.Container.MessageTs}
	if ref.Channel == "" {
		ref.Channel = cb.Channel.ID
	}
	if ref.TS == "" {
		ref.TS = cb.Message.Timestamp
	}
	return ref
}

// defaultMessageWait is Config.MessageWait's default.
const defaultMessageWait = 3 * time.Second

// handleCommand submits a parsed /revoke; the courier posts its approval
// message. key identifies the command: a redelivery of it, even after a
// restart, makes no second request.
func (b *Bot) handleCommand(ctx context.Context, key string, cmd slack.SlashCommand, parsed Command) {
	switch {
	case parsed.Status != "":
		b.handleStatus(ctx, cmd, parsed.Status)
		return
	case parsed.Pending:
		b.handlePending(ctx, cmd)
		return
	}
	log := b.log.With("user", cmd.UserID)
	if len(parsed.Targets) > b.cfg.MaxTargets {
		b.reply(ctx, log, cmd.ResponseURL, ":no_entry: "+userMessage(&approvals.Error{Code: approvals.EINVALID, Why: approvals.WhyTooManyTargets, Limit: b.cfg.MaxTargets}))
		return
	}
	var (
		targets  []approvals.TargetInput
		problems []string
	)
	if err := b.svc.CheckRequester(ctx, cmd.UserID); approvals.ErrorCode(err) == approvals.EFORBIDDEN {
		// Nobody is looked up for someone who may not ask: Submit records
		// the refusal with the people as they were named.
		targets = unresolvedTargets(parsed.Targets)
	} else {
		targets, problems = b.resolveTargets(ctx, parsed.Targets)
	}
	if len(problems) > 0 {
		log.Info("request not accepted: targets not resolved", "problems", len(problems))
		b.reply(ctx, log, cmd.ResponseURL, ":no_entry: Nothing was requested:\n"+strings.Join(problems, "\n"))
		return
	}
	channel := b.cfg.ApprovalChannel
	if channel == "" {
		channel = cmd.ChannelID
	}
	req, err := b.svc.Submit(ctx, approvals.SubmitInput{
		Requester: cmd.UserID,
		Targets:   targets,
		Options:   parsed.Options,
		Reason:    parsed.Reason,
		Key:       key,
		Channel:   channel,
	})
	if errors.Is(err, approvals.ErrDuplicate) {
		b.log.Info("ignoring redelivered command: already submitted", "key", key, "user", cmd.UserID)
		return
	}
	if err != nil {
		b.log.Info("request not accepted", "request_id", req.ID, "user", cmd.UserID, "code", approvals.ErrorCode(err), "err", err)
		b.reply(ctx, b.log.With("request_id", req.ID), cmd.ResponseURL, ":no_entry: "+userMessage(err))
		return
	}
	log = b.log.With("request_id", req.ID)
	log.Info("approval requested", "channel", channel, "targets", len(req.Targets))
	what := targetsSummary(req)
	b.whenPosted(ctx, req.ID, b.cfg.MessageWait, func(ctx context.Context, posted bool) {
		if posted {
			b.reply(ctx, log, cmd.ResponseURL, fmt.Sprintf(":hourglass: Request `%s` to revoke %s is waiting for %s in <#%s>. It expires %s.",
				req.ID, what, approversWanted(req), Escape(channel), slackDate(req.ExpiresAt)))
			return
		}
		b.reply(ctx, log, cmd.ResponseURL, fmt.Sprintf(":warning: Request `%s` to revoke %s is recorded, but its approval message is not in <#%s> yet. "+
			"If revokebot is not a member of that channel, invite it (`/invite @revokebot`): the message is posted as soon as Slack takes it, until the request expires %s.",
			req.ID, what, Escape(channel), slackDate(req.ExpiresAt)))
	})
}

// refuseBusy counts a refusal for a full queue, and logs it, at most one
// line a second (with how many were refused since the last line): a flood
// must not turn into a log line per envelope on the goroutine that acks.
// revokebot_busy_refusals_total counts them all.
func (b *Bot) refuseBusy(what string, attrs ...any) {
	n := b.refused.Add(1)
	now, last := time.Now().UnixNano(), b.refusalLogged.Load()
	if now-last < int64(time.Second) || !b.refusalLogged.CompareAndSwap(last, now) {
		return
	}
	since := n - b.refusedLogged.Swap(n)
	b.log.Warn("busy: refusing "+what+"; the person is told to try again", append(attrs, "queued", b.work.queued(), "refused_since_last_line", since)...)
}

// Queued returns how many commands and clicks wait for a worker.
func (b *Bot) Queued() int { return b.work.queued() }

// BusyRefusals returns how many commands and clicks were refused because
// too many were waiting (Config.QueueLimit).
func (b *Bot) BusyRefusals() uint64 { return b.refused.Load() }

// approversWanted says how many approvers a request waits for.
func approversWanted(r approvals.Request) string {
	if n := r.RequiredApprovals(); n > 1 {
		return fmt.Sprintf("%d approvers", n)
	}
	return "an approver"
}

// targetsSummary names a request's targets for a reply: each one's address,
// up to a few, else their number.
func targetsSummary(r approvals.Request) string {
	const shown = 5
	var parts []string
	for i, t := range r.Targets {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more", len(r.Targets)-shown))
			break
		}
		if t.Person != "" {
			parts = append(parts, mention(t.Person)+" ("+codeASCII(t.Email)+")")
		} else {
			parts = append(parts, codeASCII(t.Email))
		}
	}
	return strings.Join(parts, ", ")
}

// unresolvedTargets are the parsed targets as named: a mention without
// its email.
func unresolvedTargets(parsed []Target) []approvals.TargetInput {
	out := make([]approvals.TargetInput, len(parsed))
	for i, t := range parsed {
		out[i] = approvals.TargetInput{Email: t.Email, Person: t.User}
	}
	return out
}

// resolveTargets turns the parsed targets into the service's, looking up
// each mentioned person's email. It returns what it could not resolve, a
// line per problem, worded for the requester.
func (b *Bot) resolveTargets(ctx context.Context, parsed []Target) ([]approvals.TargetInput, []string) {
	var (
		out      []approvals.TargetInput
		problems []string
	)
	for i, t := range parsed {
		if t.User == "" {
			out = append(out, approvals.TargetInput{Email: t.Email})
			continue
		}
		email, problem := b.resolvePerson(ctx, t.User)
		if problem != "" {
			problems = append(problems, fmt.Sprintf("• target %d, %s: %s", i+1, mention(t.User), problem))
			continue
		}
		out = append(out, approvals.TargetInput{Email: email, Person: t.User})
	}
	return out, problems
}

// resolvePerson returns the email Slack has for user, or why it cannot be
// a target. The email must pass the same checks as a typed address.
func (b *Bot) resolvePerson(ctx context.Context, user string) (email, problem string) {
	if b.cfg.People == nil {
		return "", "revokebot cannot look people up here; type their email address instead."
	}
	p, err := b.cfg.People.Person(ctx, user)
	if err != nil {
		b.log.Warn("resolve mention", "user", user, "err", err)
		if strings.Contains(err.Error(), "user_not_found") {
			return "", "Slack knows no such user."
		}
		return "", "Slack could not tell who this is right now; try again, or type their email address."
	}
	switch {
	case p.Bot:
		return "", "this is a bot, not a person with Access sessions."
	case p.Deleted:
		return "", "this account is deactivated in Slack; type the email address to revoke if you still need to."
	case p.Email == "":
		return "", "Slack shows no email for this person (revokebot needs the users:read.email scope, or they have none); type their email address."
	}
	addr, err := parseAddress(p.Email)
	if err != nil {
		return "", "Slack's email for this person cannot be used as it is (" + Escape(err.Error()) + "); type the address instead."
	}
	return addr, ""
}

// awaitMessage waits up to wait for request id's approval message to be
// posted, and reports whether it was.
func (b *Bot) awaitMessage(ctx context.Context, id string, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		if r, err := b.svc.Get(ctx, id); err == nil && r.MessageTS != "" {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func (b *Bot) handleDecision(ctx context.Context, from clickFrom, in approvals.DecideInput) {
	req, err := b.svc.DecideFrom(ctx, in)
	if approvals.ErrorCode(err) == approvals.EUNAVAILABLE && b.awaitMessage(ctx, in.ID, b.cfg.MessageWait) {
		// Slack showed the message before chat.postMessage returned and
		// its place was recorded: now it is, the click can be checked.
		req, err = b.svc.DecideFrom(ctx, in)
	}
	if errors.Is(err, approvals.ErrDuplicate) {
		b.log.Info("ignoring redelivered click: already handled", "request_id", in.ID, "user", in.Actor, "key", in.Key)
		return
	}
	if err != nil {
		b.log.Info("decision not applied", "request_id", in.ID, "user", in.Actor, "code", approvals.ErrorCode(err), "err", err)
		b.reply(ctx, b.log.With("request_id", in.ID), from.responseURL, ":no_entry: "+userMessage(err))
		return
	}
	b.log.Info("decision applied", "request_id", req.ID, "user", in.Actor, "state", string(req.State()))
}

// reply sends a private (ephemeral) message through a response_url. It
// refuses a response_url that does not point at Config.ResponseURLHosts.
// log is the logger of the request the reply is about.
func (b *Bot) reply(ctx context.Context, log *slog.Logger, responseURL, text string) {
	// A response_url is a credential: neither it nor url.Parse's error
	// (which quotes it) goes in the log; its host does.
	if responseURL == "" {
		log.Warn("no response_url; private reply dropped", "text", text)
		return
	}
	u, err := url.Parse(responseURL)
	if err != nil {
		log.Warn("unparsable response_url; private reply dropped", "text", text)
		return
	}
	if err := b.checkResponseURL(u); err != nil {
		log.Warn("refusing a response_url; private reply dropped", "reason", err.Error(), "host", u.Host, "text", text)
		return
	}
	msg := &slack.WebhookMessage{ResponseType: slack.ResponseTypeEphemeral, Text: text, ReplaceOriginal: false}
	if err := slack.PostWebhookCustomHTTPContext(ctx, responseURL, b.webhooks, msg); err != nil {
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			err = fmt.Errorf("%s response_url: %w", uerr.Op, uerr.Err)
		}
		log.Error("private reply failed", "host", u.Host, "err", strings.ReplaceAll(err.Error(), responseURL, "<response_url>"), "text", text)
	}
}

// checkResponseURL says why u is not a response_url the bot may post to,
// or returns nil if it is (see Config.ResponseURLHosts). Its errors do not
// quote u.
func (b *Bot) checkResponseURL(u *url.URL) error {
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("not an http(s) URL")
	case u.Opaque != "" || u.Host == "":
		return errors.New("no host")
	case u.User != nil:
		return errors.New("carries a user name or password")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	for _, entry := range b.cfg.ResponseURLHosts {
		wantHost, wantPort, err := net.SplitHostPort(entry)
		if err != nil { // no port: https on its default port only
			wantHost = strings.TrimSuffix(strings.TrimPrefix(entry, "["), "]")
			if u.Scheme == "https" && (port == "" || port == "443") && host == strings.ToLower(wantHost) {
				return nil
			}
			continue
		}
		if port == wantPort && host == strings.ToLower(wantHost) {
			return nil
		}
	}
	if u.Scheme == "http" {
		return errors.New("plain http to a host not listed with its port")
	}
	return errors.New("host not allowed")
}
