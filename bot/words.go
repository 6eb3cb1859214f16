package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

// The private replies to work refused because revokebot is busy (its queue
// of commands and clicks is full): nothing was recorded, do it again.
const (
	busyCommand    = ":hourglass: revokebot is busy with many commands right now and did not take this one: nothing was requested. Send it again in a moment."
	busyClick      = ":hourglass: revokebot is busy with many commands right now and did not take your click: nothing was decided. Click again in a moment."
	busySubmission = "revokebot is busy with many commands right now and did not take this: submit again in a moment."
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

// statusText describes one request for /revoke status: its state, its
// reviews and, per target, its outcome and what the identity platform
// showed of it (the preview, the verification, the watch for a return).
func statusText(r approvals.Request) string {
	return statusTextAt(r, time.Now())
}

// statusTextAt is statusText at the time now, which tells a watch under
// way from one that ended.
func statusTextAt(r approvals.Request, now time.Time) string {
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
		b.WriteString(withObservations(line, observations(t, true, now), false))
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

// What the identity platform knows of a target (approvals.Look, Check,
// Watch), in words. Each is one short line, shown under the target's line
// in its approval message and in /revoke status, or "" when there is
// nothing to say. Values the platform supplies (a reason, an application,
// an address) are shown in code spans, where Slack formats nothing.

// Bounds on the platform's values quoted in these lines, as shown (quoted
// and escaped).
const (
	maxWhy = 160
	maxApp = 80
	maxIP  = 64
)

// lookText says what the identity platform knew of a target before
// approval. Nothing is said before the lookup (or without one): the
// feature may be off. A failed lookup's error stays in the log.
func lookText(l approvals.Look) string {
	switch l.State {
	case approvals.LookDone:
		if !l.Known {
			return ":warning: no Cloudflare Access user has this email — check for a typo"
		}
		last := "no login recorded"
		if !l.LastLogin.IsZero() {
			last = "last login " + slackDate(l.LastLogin)
		}
		return "Cloudflare Access user · " + last + " · " + howMany(l.Sessions, "active session", "active sessions") +
			" · " + howMany(l.Devices, "active device", "active devices")
	case approvals.LookUnavailable:
		return "preview unavailable: " + why(l.Why)
	case approvals.LookFailed:
		return "preview failed; the revocation is not affected"
	}
	return ""
}

// checkText says where a revoked target's verification stands.
func checkText(c approvals.Check) string {
	switch c.State {
	case approvals.CheckVerified:
		return ":white_check_mark: verified: no active session left"
	case approvals.CheckPending:
		if c.Remaining < 0 {
			return ":hourglass: verifying: sessions not readable yet"
		}
		return ":hourglass: verifying: " + howMany(c.Remaining, "active session", "active sessions") + " still listed"
	case approvals.CheckUnverified:
		if c.Remaining < 0 {
			return ":warning: unverified: the sessions could not be read before the timeout"
		}
		return ":warning: unverified: " + howMany(c.Remaining, "active session", "active sessions") + " still listed after the timeout"
	case approvals.CheckUnavailable:
		return "verification unavailable: " + why(c.Why)
	case approvals.CheckSkipped:
		return "not verified: " + why(c.Why)
	}
	return ""
}

// watchText says how the watch for a revoked target's return stands. With
// now zero (an approval message, drawn once per event) a watch under way is
// said as such up to its end; with now set (/revoke status) a watch that
// ended quietly says so.
func watchText(w approvals.Watch, now time.Time) string {
	switch {
	case w.Seen():
		at, app, ip := loginParts(w.Relogin)
		return ":rotating_light: logged in again at " + at + " to " + app + " from " + ip +
			" — suspend the account at the identity provider"
	case w.Why != "":
		return "return watch stopped: " + why(w.Why)
	case w.Until.IsZero():
		return ""
	case !now.IsZero() && !now.Before(w.Until):
		return "watched for a return until " + slackDate(w.Until) + ": none seen"
	}
	return "watching for a return until " + slackDate(w.Until)
}

// loginParts shows when a login was, to which application and from which
// address.
func loginParts(l approvals.Login) (at, app, ip string) {
	app, ip = "an unknown application", "an unknown address"
	if l.App != "" {
		app = codeWithin(l.App, maxApp, false)
	}
	if l.IP != "" {
		ip = codeWithin(l.IP, maxIP, true)
	}
	return slackDate(l.At), app, ip
}

// why shows the platform's reason for not answering in a code span.
func why(s string) string {
	if s == "" {
		return "no reason given"
	}
	return codeWithin(s, maxWhy, false)
}

// codeWithin is code (or, with ascii, codeASCII) of s shortened so that the
// span, quoted and escaped, is at most about n characters: however many
// escapes s needs, a line stays short.
func codeWithin(s string, n int, ascii bool) string {
	span := codeSpan(s, ascii)
	for m := utf8.RuneCountInString(s); utf8.RuneCountInString(span) > n && m > 1; m /= 2 {
		span = codeSpan(clip(s, m), ascii)
	}
	return span
}

// howMany says n things: "0 active sessions", "1 active session", and
// "not readable" for a negative n (unknown).
func howMany(n int, one, many string) string {
	switch {
	case n < 0:
		return many + " not readable"
	case n == 1:
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// An observation is one line said of a target under its line (see
// observations). An alert is one that must not be left out: a relogin, a
// verification that failed, an address the platform does not know.
type observation struct {
	text  string
	alert bool
}

// observations are the lines said of t under its line: before its
// revocation what the platform knew of it; once revoked, its verification
// and the watch for its return. With lookAfter (/revoke status) the preview
// is said after the revocation too.
func observations(t approvals.Target, lookAfter bool, now time.Time) []observation {
	var out []observation
	add := func(text string, alert bool) {
		if text != "" {
			out = append(out, observation{text, alert})
		}
	}
	if !t.Done() || lookAfter {
		add(lookText(t.Look), t.Look.State == approvals.LookDone && !t.Look.Known)
	}
	if t.State == approvals.TargetRevoked {
		add(checkText(t.Check), t.Check.State == approvals.CheckUnverified)
		add(watchText(t.Watch, now), t.Watch.Seen())
	}
	return out
}

// observationIndent starts each observation line, under its target's line.
const observationIndent = "      "

// withObservations appends the lines of obs to line; with alertsOnly only
// the alerts.
func withObservations(line string, obs []observation, alertsOnly bool) string {
	for _, o := range obs {
		if o.alert || !alertsOnly {
			line += "\n" + observationIndent + o.text
		}
	}
	return line
}
