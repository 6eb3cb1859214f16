package bot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

// Button action IDs. They are public interface: Slack sends them back on click.
const (
	ActionApprove = "revoke_approve"
	ActionDeny    = "revoke_deny"
	// decisionBlockID names the actions block holding both buttons.
	decisionBlockID = "revoke_decision"
)

// Slack's limits that our messages must respect.
const (
	maxSectionText = 3000
	maxAuditText   = 3900 // well below chat.postMessage's 40,000, and readable
	maxDetail      = 1500 // Revoker answers quoted in messages
)

// Escape makes s safe to put in Slack message text: it escapes the three
// characters Slack gives meaning to, so user text can neither ping (<!channel>)
// nor link nor mention.
func Escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate shortens s to at most n characters. It does not cut Slack markup
// in two: a cut inside an escape (&amp;) or a <…> token drops the whole of it.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut := string([]rune(s)[:n-1])
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && !strings.Contains(cut[i:], ";") {
		cut = cut[:i]
	}
	if i := strings.LastIndexByte(cut, '<'); i >= 0 && !strings.Contains(cut[i:], ">") {
		cut = cut[:i]
	}
	return cut + "…"
}

// mention renders a Slack user ID as a mention, and "" as revokebot itself.
// Anything that is not a user ID (only a forged payload carries one) is shown
// quoted and escaped instead, so that it can neither ping nor pass for a
// mention.
func mention(user string) string {
	switch {
	case user == "":
		return "revokebot"
	case isUserID(user):
		return "<@" + user + ">"
	}
	return Escape(strconv.Quote(clip(user, 64)))
}

// isUserID reports whether s looks like a Slack user ID: U or W, then
// capital letters and digits.
func isUserID(s string) bool {
	if len(s) < 2 || len(s) > 32 || (s[0] != 'U' && s[0] != 'W') {
		return false
	}
	for _, c := range s[1:] {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// slackDate renders t in each reader's own time zone, with a UTC fallback.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, truncate(s, maxSectionText), false, false)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dryRunPrefix(r approvals.Request) string {
	if r.DryRun {
		return "[DRY RUN] "
	}
	return ""
}

// renderRequest returns the approval message of r as it should look now:
// with the Approve/Deny buttons while pending, and its outcome afterwards.
// The second value is the message's plain-text fallback.
func renderRequest(r approvals.Request) ([]slack.Block, string) {
	email := Escape(r.Revocation.Email)
	title := dryRunPrefix(r) + ":rotating_light: *Request to revoke every Cloudflare Access session of " + email + "*"
	if r.DryRun {
		title += "\n_Dry run: revokebot will not call Cloudflare._"
	}
	uid := "—"
	if r.Revocation.UserUID != "" {
		uid = "`" + Escape(r.Revocation.UserUID) + "`"
	}
	fields := []*slack.TextBlockObject{
		mrkdwn("*Target*\n" + email),
		mrkdwn("*Requested by*\n" + mention(r.Requester)),
		mrkdwn("*Device sessions*\n" + yesNo(r.Revocation.Devices)),
		mrkdwn("*WARP re-auth*\n" + yesNo(r.Revocation.WARPReauth)),
		mrkdwn("*Access user ID*\n" + uid),
		mrkdwn("*Expires*\n" + slackDate(r.ExpiresAt)),
	}
	reason := "_none given_"
	if r.Reason != "" {
		reason = Escape(r.Reason)
	}
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(title), nil, nil),
		slack.NewSectionBlock(nil, fields, nil),
		slack.NewSectionBlock(mrkdwn("*Reason*\n"+reason), nil, nil),
		slack.NewContextBlock("", mrkdwn("Request ID `"+Escape(r.ID)+"`")),
	}
	if r.State == approvals.StatePending {
		blocks = append(blocks, decisionButtons(r))
	} else {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(statusLine(r)), nil, nil))
	}
	fallback := fmt.Sprintf("%sRevocation request for %s by %s: %s", dryRunPrefix(r), email, mention(r.Requester), r.State)
	return blocks, fallback
}

func decisionButtons(r approvals.Request) slack.Block {
	what := "every Cloudflare Access session"
	if r.Revocation.Devices {
		what += " and device session"
	}
	// The user-supplied email goes last, so that truncation can only shorten it.
	text := "This cannot be undone. Revoke " + what + " of " + Escape(r.Revocation.Email)
	if r.DryRun {
		text = "Dry run: Cloudflare will not be called. " + text
	}
	confirm := slack.NewConfirmationBlockObject(
		plain("Revoke access?"),
		slack.NewTextBlockObject(slack.MarkdownType, truncate(text, 300), false, false),
		plain("Revoke now"),
		plain("Cancel"),
	).WithStyle(slack.StyleDanger)
	approve := slack.NewButtonBlockElement(ActionApprove, r.ID, plain("Approve")).
		WithStyle(slack.StylePrimary).WithConfirm(confirm)
	deny := slack.NewButtonBlockElement(ActionDeny, r.ID, plain("Deny")).WithStyle(slack.StyleDanger)
	return slack.NewActionBlock(decisionBlockID, approve, deny)
}

// statusLine says how a decided request stands, for its approval message.
func statusLine(r approvals.Request) string {
	by := mention(r.DecidedBy)
	switch r.State {
	case approvals.StateExecuting:
		return ":hourglass: Approved by " + by + " " + slackDate(r.DecidedAt) + ". Revoking…"
	case approvals.StateRevoked:
		if r.DryRun {
			return ":test_tube: Approved by " + by + ". *Dry run: nothing was revoked* " + slackDate(r.FinishedAt) + ": " + Escape(truncate(r.Outcome, maxDetail))
		}
		return ":white_check_mark: Approved by " + by + ". *Revoked* " + slackDate(r.FinishedAt) + ": " + Escape(truncate(r.Outcome, maxDetail))
	case approvals.StateFailed:
		return ":x: Approved by " + by + ". *Revocation failed* " + slackDate(r.FinishedAt) + ": " + Escape(truncate(r.Outcome, maxDetail)) +
			"\nThe revocation may not have happened: check the audit channel, then request again."
	case approvals.StateDenied:
		return ":no_entry: *Denied* by " + by + " " + slackDate(r.DecidedAt) + "."
	case approvals.StateCancelled:
		return ":leftwards_arrow_with_hook: *Cancelled* by the requester " + by + " " + slackDate(r.DecidedAt) + "."
	case approvals.StateExpired:
		return ":hourglass_flowing_sand: *Expired* " + slackDate(r.ExpiresAt) + " without a decision."
	default:
		return "State: " + string(r.State)
	}
}

// auditText is the audit record of e, the event numbered seq in revokebot's
// event log: one line of key=value pairs led by the event word, so the
// channel's history can be searched and parsed. The record number ties the
// line to the database, and tells a record posted twice (after a crash at
// the wrong moment) from two events.
func auditText(e approvals.Event, seq int64) string {
	r := e.Request
	var b strings.Builder
	b.WriteString(dryRunPrefix(r))
	b.WriteString(string(e.Kind))
	fmt.Fprintf(&b, " request=%s record=%d target=%s actor=%s requester=%s",
		Escape(r.ID), seq, Escape(r.Revocation.Email), mention(e.Actor), mention(r.Requester))
	fmt.Fprintf(&b, " devices=%t warp_reauth=%t", r.Revocation.Devices, r.Revocation.WARPReauth)
	if r.Revocation.UserUID != "" {
		fmt.Fprintf(&b, " uid=%s", Escape(r.Revocation.UserUID))
	}
	if e.Kind == approvals.EventRequested || e.Kind == approvals.EventRefused && r.State == approvals.StateRefused {
		fmt.Fprintf(&b, " reason=%s", Escape(strconv.Quote(r.Reason)))
	}
	if e.Kind == approvals.EventRequested {
		fmt.Fprintf(&b, " expires=%s", r.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " detail=%s", Escape(strconv.Quote(truncate(e.Detail, maxDetail))))
	}
	fmt.Fprintf(&b, " at=%s", e.At.UTC().Format(time.RFC3339))
	return truncate(b.String(), maxAuditText)
}
