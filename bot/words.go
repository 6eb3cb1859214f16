package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

// userMessage turns an error from the approvals service into Slack text for
// the person who caused it. It is the only place that words the domain's
// facts (approvals.Why) for people.
func userMessage(err error) string {
	if errors.Is(err, approvals.ErrUnavailable) {
		// A connection lost while a change was committed leaves it unknown
		// whether the change was made: say so, and where to look.
		return "revokebot cannot reach its database right now, so this was most likely not recorded. " +
			"Try again shortly, after a look at `/revoke pending` (it lists what was recorded); if it persists, tell your revokebot admin."
	}
	e, ok := errors.AsType[*approvals.Error](err)
	if !ok {
		return "Something went wrong on our side; the details are in revokebot's log."
	}
	switch e.Why {
	case approvals.WhyInvalid:
		return Escape(e.Message)
	case approvals.WhyNotRequester:
		return "You are not allowed to request revocations. Ask your security team to add you to revokebot's requesters."
	case approvals.WhyNotApprover:
		return "You are not allowed to decide revocation requests."
	case approvals.WhyOwnRequest:
		return "You cannot approve your own request: another approver has to."
	case approvals.WhyGuest:
		return "Guests of this workspace may not request or decide revocations, even when listed: ask a full member of your security team."
	case approvals.WhyExternal:
		return "People from another organisation (Slack Connect) may not request or decide revocations here, even when listed."
	case approvals.WhyUnverified:
		return "Your permission could not be checked right now, so nothing was done. Try again in a minute; if it persists, tell your revokebot admin."
	case approvals.WhyPendingLimit:
		return fmt.Sprintf("You already have %d requests waiting for a decision, the most revokebot allows per person. "+
			"Cancel one you no longer need (press Deny on your own request), or wait until they are decided or expire.", e.Limit)
	case approvals.WhyTooManyTargets:
		return fmt.Sprintf("One request may name at most %d people (REVOKEBOT_MAX_TARGETS). Split the list into several requests.", e.Limit)
	case approvals.WhyOtherMessage:
		return "This button is not on the request's own message, so it was ignored. Decide on the request's message in its channel."
	case approvals.WhyMessageNotRecorded:
		return "This request's message is still being recorded. Click again in a moment."
	case approvals.WhyReviewed:
		return "You already decided on this request; each approver counts once. " + progress(e.Request)
	case approvals.WhyReasonRequired:
		return "A denial needs a reason: press Deny again and say why."
	case approvals.WhyExpired:
		if e.Request != nil {
			return "This request expired " + slackDate(e.Request.ExpiresAt) + " before enough approvers decided. Ask for a new one if it is still needed."
		}
		return "This request expired before enough approvers decided."
	case approvals.WhyNoRequest:
		return "There is no such request. Check the request ID (`/revoke pending` lists the open ones)."
	case approvals.WhyAmbiguous:
		return fmt.Sprintf("That prefix matches %d or more requests: type more of the request ID.", e.Limit)
	case approvals.WhyDecided:
		if e.Request != nil {
			return decidedMessage(*e.Request)
		}
		return "This request was already decided."
	}
	if e.Message != "" {
		return Escape(e.Message)
	}
	return "That cannot be done (" + Escape(string(e.Why)) + ")."
}

// progress says how far a pending request's approvals are, or "".
func progress(r *approvals.Request) string {
	if r == nil || r.State() != approvals.StatePending {
		return ""
	}
	return fmt.Sprintf("It has %d of the %d approvals it needs.", len(r.Approvals()), r.RequiredApprovals())
}

// decidedMessage tells someone who decided too late how the request ended.
func decidedMessage(r approvals.Request) string {
	switch st := r.State(); st {
	case approvals.StateExecuting, approvals.StateRevoked, approvals.StateFailed:
		return "This request was already approved by " + approvers(r) + " (now " + string(st) + ")."
	case approvals.StateDenied:
		d, _ := r.Denial()
		return "This request was already denied by " + mention(d.By) + "."
	case approvals.StateCancelled:
		d, _ := r.Denial()
		return "This request was already cancelled by its requester " + mention(d.By) + "."
	case approvals.StateExpired:
		return "This request already expired " + slackDate(r.ExpiresAt) + " without enough approvals. Ask for a new one if it is still needed."
	default:
		return "This request is already " + string(st) + "."
	}
}

// statusText describes one request for /revoke status.
func statusText(r approvals.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*Request* %s, requested by %s %s: *%s*", codeASCII(r.ID), mention(r.Requester), slackDate(r.CreatedAt), Escape(stateWord(r)))
	if r.DryRun {
		b.WriteString(" (dry run)")
	}
	fmt.Fprintf(&b, "\nApprovals: %s", approvalsText(r))
	if d, ok := r.Denial(); ok {
		fmt.Fprintf(&b, "\nDecided by %s %s", mention(d.By), slackDate(d.At))
		if d.Reason != "" && d.By != r.Requester {
			fmt.Fprintf(&b, ", reason: %s", code(truncate(d.Reason, 300)))
		}
	}
	if r.State() == approvals.StatePending {
		fmt.Fprintf(&b, "\nExpires %s", slackDate(r.ExpiresAt))
		if !r.EscalatedAt.IsZero() {
			fmt.Fprintf(&b, "; escalated %s", slackDate(r.EscalatedAt))
		}
	}
	if r.Channel != "" && r.MessageTS != "" {
		fmt.Fprintf(&b, "\nMessage in <#%s>", Escape(r.Channel))
	}
	approved := len(r.Approvals()) >= r.RequiredApprovals() && r.State() != approvals.StatePending
	for _, t := range r.Targets {
		line := "\n• " + targetText(t.Email)
		if t.Person != "" {
			line = "\n• " + mention(t.Person) + " → " + targetText(t.Email)
		}
		if approved {
			line += " " + targetStatus(r, t)
		}
		b.WriteString(line)
	}
	return truncate(b.String(), maxReplyText)
}

// maxReplyText bounds a private reply: a response_url message is not a
// section, but Slack shows long texts cut, and asks to keep them under 4000
// characters.
const maxReplyText = 3900

// pendingText lists the open requests for /revoke pending.
func pendingText(rs []approvals.Request) string {
	if len(rs) == 0 {
		return ":white_check_mark: No request is waiting for a decision or being carried out."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d open request(s)*, oldest first:", len(rs))
	for i, r := range rs {
		line := fmt.Sprintf("\n• %s %s by %s: %s, %s, expires %s", codeASCII(r.ID[:8]), targetsSummary(r), mention(r.Requester),
			Escape(stateWord(r)), approvalsText(r), slackDate(r.ExpiresAt))
		// Whole lines only, and room left to say how many are not shown.
		if i == 20 || utf8.RuneCountInString(b.String())+utf8.RuneCountInString(line) > maxReplyText-100 {
			fmt.Fprintf(&b, "\n…and %d more (`/revoke status` with an ID shows one).", len(rs)-i)
			break
		}
		b.WriteString(line)
	}
	return b.String()
}

// handleStatus answers /revoke status privately.
func (b *Bot) handleStatus(ctx context.Context, cmd slack.SlashCommand, prefix string) {
	log := b.log.With("user", cmd.UserID)
	r, err := b.svc.Status(ctx, cmd.UserID, prefix)
	if err != nil {
		log.Info("status not given", "code", approvals.ErrorCode(err), "err", err)
		b.reply(ctx, log, cmd.ResponseURL, ":no_entry: "+userMessage(err))
		return
	}
	b.reply(ctx, log.With("request_id", r.ID), cmd.ResponseURL, statusText(r))
}

// handlePending answers /revoke pending privately.
func (b *Bot) handlePending(ctx context.Context, cmd slack.SlashCommand) {
	log := b.log.With("user", cmd.UserID)
	rs, err := b.svc.Pending(ctx, cmd.UserID)
	if err != nil {
		log.Info("pending not given", "code", approvals.ErrorCode(err), "err", err)
		b.reply(ctx, log, cmd.ResponseURL, ":no_entry: "+userMessage(err))
		return
	}
	b.reply(ctx, log, cmd.ResponseURL, pendingText(rs))
}
