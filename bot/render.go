package bot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
	"golang.org/x/net/idna"
)

// Button action IDs. They are public interface: Slack sends them back on click.
const (
	ActionApprove = "revoke_approve"
	ActionDeny    = "revoke_deny"
	// decisionBlockID names the actions block holding both buttons (with
	// the request's state appended, as every block ID: see blockID).
	decisionBlockID = "revoke_decision"
)

// Slack's limits that our messages must respect.
const (
	maxSectionText = 3000
	maxFieldText   = 2000 // a section field
	maxConfirmText = 300  // a confirm dialog's text
	maxAuditText   = 3900 // well below chat.postMessage's 40,000, and readable
	maxDetail      = 1500 // Revoker answers quoted in messages
	maxCodeSpan    = maxDetail
)

// Escape makes s safe to put in Slack message text: it escapes the three
// characters Slack gives meaning to, so user text can neither ping (<!channel>)
// nor link nor mention.
func Escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate shortens s to at most n characters. It does not cut Slack markup
// in two: a cut inside an escape (&amp;), a <…> token or a code span drops
// the whole of it.
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
	if strings.Count(cut, "`")%2 == 1 {
		cut = cut[:strings.LastIndexByte(cut, '`')]
	}
	return cut + "…"
}

// mention renders a Slack user ID as a mention, and "" as revokebot itself.
// Anything that is not a user ID (only a forged payload carries one) is shown
// quoted in printable ASCII in a code span instead, so that it can neither
// ping, nor pass for a mention, nor format.
func mention(user string) string {
	switch {
	case user == "":
		return "revokebot"
	case isUserID(user):
		return "<@" + user + ">"
	}
	return "`" + Escape(asciiQuote(clip(user, 32))) + "`"
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

// mrkdwn makes a mrkdwn text object of at most Slack's section limit. It is
// verbatim: Slack makes no links or mentions of its own from the text, only
// the <…> constructs the bot writes.
func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, truncate(s, maxSectionText), false, true)
}

// field makes a section field: a mrkdwn text object of at most Slack's
// limit for fields.
func field(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, truncate(s, maxFieldText), false, true)
}

// plain makes a plain_text object of s, which must be escaped already.
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

// blockID names a block of r's approval message. The name carries r's state,
// so that each revision of the message (one per state) has block IDs of its
// own, as Slack asks.
func blockID(name string, r approvals.Request) string {
	return clip(name+"."+string(r.State), 255)
}

// code shows s (its first maxCodeSpan characters) in a code span, where Slack
// formats nothing: as it is if every character of s is printable, else
// Go-quoted, with escapes such as \u200b for the rest. A backtick, which
// would end the span, is never shown as it is (\x60).
func code(s string) string {
	return codeSpan(s, false)
}

// codeASCII is code for values that should be printable ASCII, such as email
// addresses: anything else in them shows as an escape.
func codeASCII(s string) string {
	return codeSpan(s, true)
}

func codeSpan(s string, asciiOnly bool) string {
	s = clip(s, maxCodeSpan)
	if s == "" || strings.ContainsFunc(s, func(r rune) bool {
		what, _ := hiddenRune(r)
		return r == '`' || what != "" || !unicode.IsPrint(r) || asciiOnly && r >= utf8.RuneSelf
	}) {
		if asciiOnly {
			s = asciiQuote(s)
		} else {
			s = strings.ReplaceAll(strconv.Quote(s), "`", `\x60`)
		}
	}
	return "`" + Escape(s) + "`"
}

// unicodeForm returns the address with its internationalised domain in
// Unicode, as people read it, or "" if the domain has no xn-- label (or does
// not decode to a valid, visible name, or the part before the @ is not
// printable ASCII: then only the escaped ASCII form is shown).
func unicodeForm(email string) string {
	i := strings.LastIndexByte(email, '@')
	if i < 0 || !strings.HasPrefix(email[i+1:], "xn--") && !strings.Contains(email[i+1:], ".xn--") ||
		strings.ContainsFunc(email[:i], func(r rune) bool { return r <= ' ' || r >= 0x7F || r == '`' }) {
		return ""
	}
	u, err := idna.Registration.ToUnicode(email[i+1:])
	if err != nil || strings.ContainsFunc(u, func(r rune) bool { what, _ := hiddenRune(r); return what != "" }) {
		return ""
	}
	return email[:i+1] + u
}

// targetText shows the target in mrkdwn: the address sent to Cloudflare in a
// code span, and for an internationalised domain also how people read it.
func targetText(email string) string {
	if u := unicodeForm(email); u != "" {
		return code(u) + " (internationalised domain), sent to Cloudflare as " + codeASCII(email)
	}
	return codeASCII(email)
}

// targetPlain is targetText as escaped plain text.
func targetPlain(email string) string {
	shown := email
	if strings.ContainsFunc(email, func(r rune) bool { return r <= ' ' || r >= 0x7F }) {
		shown = asciiQuote(email)
	}
	if u := unicodeForm(email); u != "" {
		shown += " (shown as " + u + ")"
	}
	return Escape(shown)
}

// renderRequest returns the approval message of r as it should look now:
// with the Approve/Deny buttons while pending, and its outcome afterwards.
// The second value is the message's plain-text fallback.
//
// Every value a person supplied is shown so that Slack cannot format it:
// the target and IDs in code spans, the reason as plain text in a block of
// its own, where it cannot pass for the bot's own fields.
func renderRequest(r approvals.Request) ([]slack.Block, string) {
	email := r.Revocation.Email
	title := dryRunPrefix(r) + ":rotating_light: *Request to revoke every Cloudflare Access session of* " + codeASCII(email)
	if u := unicodeForm(email); u != "" {
		title += "\n:warning: The domain is internationalised: people read it as " + code(u) +
			" but Cloudflare is sent " + codeASCII(email) + ". Check that this is the user you mean."
	}
	if r.DryRun {
		title += "\n_Dry run: revokebot will not call Cloudflare._"
	}
	uid := "—"
	if r.Revocation.UserUID != "" {
		uid = codeASCII(r.Revocation.UserUID)
	}
	fields := []*slack.TextBlockObject{
		field("*Target*\n" + targetText(email)),
		field("*Requested by*\n" + mention(r.Requester)),
		field("*Device sessions*\n" + yesNo(r.Revocation.Devices)),
		field("*WARP re-auth*\n" + yesNo(r.Revocation.WARPReauth)),
		field("*Access user ID*\n" + uid),
		field("*Expires*\n" + slackDate(r.ExpiresAt)),
	}
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(title), nil, nil, slack.SectionBlockOptionBlockID(blockID("revoke_title", r))),
		slack.NewSectionBlock(nil, fields, nil, slack.SectionBlockOptionBlockID(blockID("revoke_fields", r))),
	}
	if r.Reason == "" {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("*Reason*\n_none given_"), nil, nil,
			slack.SectionBlockOptionBlockID(blockID("revoke_reason", r))))
	} else {
		blocks = append(blocks,
			slack.NewSectionBlock(mrkdwn("*Reason*, as the requester gave it:"), nil, nil,
				slack.SectionBlockOptionBlockID(blockID("revoke_reason_label", r))),
			slack.NewSectionBlock(plain(truncate(Escape(plainReason(r.Reason)), maxSectionText)), nil, nil,
				slack.SectionBlockOptionBlockID(blockID("revoke_reason", r))))
	}
	idContext := slack.NewContextBlock(blockID("revoke_id", r), mrkdwn("Request ID "+codeASCII(r.ID)))
	blocks = append(blocks, idContext)
	if r.State == approvals.StatePending {
		blocks = append(blocks, decisionButtons(r))
	} else {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(statusLine(r)), nil, nil,
			slack.SectionBlockOptionBlockID(blockID("revoke_status", r))))
	}
	fallback := fmt.Sprintf("%sRevocation request for %s by %s: %s", dryRunPrefix(r), codeASCII(email), mention(r.Requester), Escape(stateWord(r)))
	return blocks, fallback
}

// plainReason shows a reason as plain text: as typed, but for the characters
// that would reorder or hide what follows them (bidi embeddings, overrides and
// isolates, and controls other than new lines and tabs; the parser refuses
// them, but a stored reason may predate that), shown as escapes like \u202e.
func plainReason(s string) string {
	var b strings.Builder
	for _, r := range s {
		if reorders(r) || unicode.IsControl(r) && r != '\n' && r != '\t' {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// stateWord says where r stands, in a word or two, for the message fallback.
func stateWord(r approvals.Request) string {
	switch {
	case r.DryRun && r.State == approvals.StateExecuting:
		return "approved (dry run)"
	case r.DryRun && r.State == approvals.StateRevoked:
		return "dry run, nothing revoked"
	}
	return string(r.State)
}

func decisionButtons(r approvals.Request) slack.Block {
	text := "This cannot be undone. "
	if r.Revocation.Devices {
		text += "All devices associated with the user will be revoked too. "
	}
	// The user-supplied email goes last, so that truncation can only shorten it.
	text += "Revoke every Cloudflare Access session of " + targetPlain(r.Revocation.Email)
	if r.DryRun {
		text = "Dry run: Cloudflare will not be called. " + text
	}
	confirm := slack.NewConfirmationBlockObject(
		plain("Revoke access?"),
		plain(truncate(text, maxConfirmText)),
		plain("Revoke now"),
		plain("Cancel"),
	).WithStyle(slack.StyleDanger)
	approve := slack.NewButtonBlockElement(ActionApprove, r.ID, plain("Approve")).
		WithStyle(slack.StylePrimary).WithConfirm(confirm)
	deny := slack.NewButtonBlockElement(ActionDeny, r.ID, plain("Deny")).WithStyle(slack.StyleDanger)
	return slack.NewActionBlock(blockID(decisionBlockID, r), approve, deny)
}

// statusLine says how a decided request stands, for its approval message.
// For a dry-run request it never says "Revoked": nothing was.
func statusLine(r approvals.Request) string {
	by := mention(r.DecidedBy)
	outcome := code(r.Outcome)
	switch r.State {
	case approvals.StateExecuting:
		if r.DryRun {
			return ":hourglass: Approved by " + by + " " + slackDate(r.DecidedAt) + ". Dry run: recording the outcome without calling Cloudflare…"
		}
		return ":hourglass: Approved by " + by + " " + slackDate(r.DecidedAt) + ". Revoking…"
	case approvals.StateRevoked:
		if r.DryRun {
			return ":test_tube: Approved by " + by + ". *Dry run: nothing was revoked* " + slackDate(r.FinishedAt) + ": " + outcome
		}
		return ":white_check_mark: Approved by " + by + ". *Revoked* " + slackDate(r.FinishedAt) + ": " + outcome
	case approvals.StateFailed:
		return ":x: Approved by " + by + ". *Revocation failed* " + slackDate(r.FinishedAt) + ": " + outcome +
			"\nThe revocation may not have happened: check the audit channel, then request again."
	case approvals.StateDenied:
		return ":no_entry: *Denied* by " + by + " " + slackDate(r.DecidedAt) + "."
	case approvals.StateCancelled:
		return ":leftwards_arrow_with_hook: *Cancelled* by the requester " + by + " " + slackDate(r.DecidedAt) + "."
	case approvals.StateExpired:
		return ":hourglass_flowing_sand: *Expired* " + slackDate(r.ExpiresAt) + " without a decision."
	default:
		return "State: " + code(string(r.State))
	}
}

// auditText is the audit record of e, the event numbered seq in revokebot's
// event log: one line of key=value pairs led by the event word, so the
// channel's history can be searched and parsed. The record number ties the
// line to the database, and tells a record posted twice (after a crash at
// the wrong moment) from two events.
//
// Values a person or Cloudflare supplied (target, uid, reason, detail) are Go
// quoted strings, and each key="value" pair is in a code span, so that Slack
// formats nothing in them: `target="alice@example.com"`. A request in dry run
// is marked [DRY RUN] at the start of the line.
func auditText(e approvals.Event, seq int64) string {
	r := e.Request
	var b strings.Builder
	b.WriteString(dryRunPrefix(r))
	b.WriteString(string(e.Kind))
	fmt.Fprintf(&b, " request=%s record=%d %s", Escape(r.ID), seq, auditValue("target", r.Revocation.Email, 300))
	if u := unicodeForm(r.Revocation.Email); u != "" {
		fmt.Fprintf(&b, " %s", auditValue("target_unicode", u, 300))
	}
	fmt.Fprintf(&b, " actor=%s requester=%s", mention(e.Actor), mention(r.Requester))
	fmt.Fprintf(&b, " devices=%t warp_reauth=%t", r.Revocation.Devices, r.Revocation.WARPReauth)
	if r.Revocation.UserUID != "" {
		fmt.Fprintf(&b, " %s", auditValue("uid", r.Revocation.UserUID, 80))
	}
	if e.Kind == approvals.EventRequested || e.Kind == approvals.EventRefused && r.State == approvals.StateRefused {
		fmt.Fprintf(&b, " %s", auditValue("reason", r.Reason, 1000))
	}
	if e.Kind == approvals.EventRequested {
		fmt.Fprintf(&b, " expires=%s", r.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " %s", auditValue("detail", e.Detail, 1300))
	}
	fmt.Fprintf(&b, " at=%s", e.At.UTC().Format(time.RFC3339))
	return truncate(b.String(), maxAuditText)
}

// auditValue renders key="value" in a code span: value Go-quoted (so that
// nothing in it hides or breaks the line), its backticks escaped as \x60 (so
// that it cannot end the span) and escaped for Slack; at most n characters of
// the quoted value (before Slack's escapes), cut between characters and
// marked with … after the closing quote.
func auditValue(key, value string, n int) string {
	var b strings.Builder
	b.WriteString("`" + key + `="`)
	left := n
	cut := false
	for _, r := range value {
		q := strconv.QuoteRune(r)
		q = q[1 : len(q)-1]
		switch q {
		case `\'`:
			q = "'"
		case `"`:
			q = `\"`
		case "`":
			q = `\x60`
		}
		if left -= utf8.RuneCountInString(q); left < 0 {
			cut = true
			break
		}
		b.WriteString(Escape(q))
	}
	b.WriteString(`"`)
	if cut {
		b.WriteString("…")
	}
	b.WriteString("`")
	return b.String()
}
