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
	return slackEscaper.Replace(s)
}

// slackEscaper is built once: auditValue escapes rune by rune, and building
// a Replacer costs far more than using one (it is safe for concurrent use).
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

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

// blockID names a block of r's approval message. The name carries r's state
// and version, so that each revision of the message has block IDs of its own,
// as Slack asks.
func blockID(name string, r approvals.Request) string {
	return clip(fmt.Sprintf("%s.%s.%d", name, r.State(), r.Version), 255)
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

// Audience mentions: who an approval message calls on.
type notify struct {
	users, groups []string
}

// mentions renders the audience as Slack mentions (users and user groups).
func (n notify) mentions() string {
	var parts []string
	for _, u := range n.users {
		if isUserID(u) {
			parts = append(parts, "<@"+u+">")
		}
	}
	for _, g := range n.groups {
		if isGroupID(g) {
			parts = append(parts, "<!subteam^"+g+">")
		}
	}
	return strings.Join(parts, " ")
}

// isGroupID reports whether s looks like a Slack user group ID: S, then
// capital letters and digits.
func isGroupID(s string) bool {
	return len(s) >= 2 && s[0] == 'S' && isUserID("U"+s[1:])
}

// targetLinesPerBlock is how many target entries a section holds at most;
// fewer when they are long (see packTargets).
const targetLinesPerBlock = 8

// renderRequest returns the approval message of r as it should look now:
// with the Approve/Deny buttons while pending, each target's outcome as it
// comes, and the request's outcome at the end. The second value is the
// message's plain-text fallback. n are mentioned on the message.
//
// Every value a person supplied is shown so that Slack cannot format it:
// the targets and IDs in code spans, the reasons as plain text in blocks of
// their own, where they cannot pass for the bot's own fields.
func renderRequest(r approvals.Request, n notify) ([]slack.Block, string) {
	var title string
	if len(r.Targets) == 1 {
		title = dryRunPrefix(r) + ":rotating_light: *Request to revoke every Cloudflare Access session of* " + codeASCII(r.Targets[0].Email)
	} else {
		title = dryRunPrefix(r) + fmt.Sprintf(":rotating_light: *Request to revoke every Cloudflare Access session of %d people*", len(r.Targets))
	}
	idn := 0
	for _, t := range r.Targets {
		if u := unicodeForm(t.Email); u != "" {
			idn++
			if len(r.Targets) == 1 {
				title += "\n:warning: The domain is internationalised: people read it as " + code(u) +
					" but Cloudflare is sent " + codeASCII(t.Email) + ". Check that this is the user you mean."
			}
		}
	}
	if idn > 0 && len(r.Targets) > 1 {
		title += fmt.Sprintf("\n:warning: %d of these addresses have an internationalised domain: each is shown below as people read it "+
			"and as Cloudflare is sent it. Check that these are the users you mean.", idn)
	}
	if r.DryRun {
		title += "\n_Dry run: revokebot will not call Cloudflare._"
	}
	uid := "—"
	if r.Options.UserUID != "" {
		uid = codeASCII(r.Options.UserUID)
	}
	fields := []*slack.TextBlockObject{
		field("*Requested by*\n" + mention(r.Requester)),
		field("*Expires*\n" + slackDate(r.ExpiresAt)),
		field("*Device sessions*\n" + yesNo(r.Options.Devices)),
		field("*WARP re-auth*\n" + yesNo(r.Options.WARPReauth)),
		field("*Access user ID*\n" + uid),
		field("*Approvals*\n" + approvalsText(r)),
	}
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(title), nil, nil, slack.SectionBlockOptionBlockID(blockID("revoke_title", r))),
	}
	blocks = append(blocks, targetBlocks(r)...)
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil, slack.SectionBlockOptionBlockID(blockID("revoke_fields", r))))
	blocks = append(blocks, reasonBlocks("revoke_reason", "*Reason*, as the requester gave it:", r.Reason, r)...)
	idContext := slack.NewContextBlock(blockID("revoke_id", r), mrkdwn("Request ID "+codeASCII(r.ID)))
	blocks = append(blocks, idContext)
	if m := n.mentions(); m != "" && r.State() == approvals.StatePending {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(":bell: "+m+": a revocation is waiting for approval."), nil, nil,
			slack.SectionBlockOptionBlockID(blockID("revoke_notify", r))))
	}
	if !r.EscalatedAt.IsZero() && r.State() == approvals.StatePending {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(":rotating_light: *Escalated* "+slackDate(r.EscalatedAt)+
			": the escalation approvers may approve this request too."), nil, nil, slack.SectionBlockOptionBlockID(blockID("revoke_escalated", r))))
	}
	if r.State() == approvals.StatePending {
		blocks = append(blocks, decisionButtons(r))
	} else {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(statusLine(r)), nil, nil,
			slack.SectionBlockOptionBlockID(blockID("revoke_status", r))))
		if d, ok := r.Denial(); ok && d.Reason != "" && d.By != r.Requester {
			blocks = append(blocks, reasonBlocks("revoke_deny_reason", "*Reason for the denial*, as the approver gave it:", d.Reason, r)...)
		}
	}
	fallback := fmt.Sprintf("%sRevocation request for %s by %s: %s", dryRunPrefix(r), fallbackTargets(r), mention(r.Requester), Escape(stateWord(r)))
	if m := n.mentions(); m != "" && r.State() == approvals.StatePending {
		fallback += " " + m
	}
	return blocks, fallback
}

// fallbackTargets names the targets for a message's plain-text fallback.
func fallbackTargets(r approvals.Request) string {
	if len(r.Targets) == 1 {
		return codeASCII(r.Targets[0].Email)
	}
	return fmt.Sprintf("%d people", len(r.Targets))
}

// reasonBlocks shows a person's free text under a label: the label in
// mrkdwn, the text in a plain_text block of its own.
func reasonBlocks(name, label, reason string, r approvals.Request) []slack.Block {
	if reason == "" {
		return []slack.Block{slack.NewSectionBlock(mrkdwn(strings.SplitN(label, ",", 2)[0]+"\n_none given_"), nil, nil,
			slack.SectionBlockOptionBlockID(blockID(name, r)))}
	}
	return []slack.Block{
		slack.NewSectionBlock(mrkdwn(label), nil, nil, slack.SectionBlockOptionBlockID(blockID(name+"_label", r))),
		slack.NewSectionBlock(plain(truncate(Escape(plainReason(reason)), maxSectionText)), nil, nil,
			slack.SectionBlockOptionBlockID(blockID(name, r))),
	}
}

// targetBlocks lists the targets, an entry each: the address sent to
// Cloudflare (and the person it was resolved from), once approved how its
// revocation stands, and under it what the identity platform showed of it.
// A request of so many people that their entries would take more than
// maxTargetSections sections shows only the alerts among those lines, or
// none of them, rather than go over Slack's 50 blocks.
func targetBlocks(r approvals.Request) []slack.Block {
	var blocks []slack.Block
	for _, detail := range []observationDetail{allObservations, onlyAlerts, noObservations} {
		if blocks = packTargets(r, detail); len(blocks) <= maxTargetSections {
			break
		}
	}
	return blocks
}

// maxTargetSections bounds the sections of the target list: Slack takes 50
// blocks in a message, and the other parts of an approval message take up
// to 10.
const maxTargetSections = 40

// observationDetail says which observation lines go under the targets.
type observationDetail int

const (
	allObservations observationDetail = iota
	onlyAlerts
	noObservations
)

// packTargets packs the targets' entries into sections.
func packTargets(r approvals.Request, detail observationDetail) []slack.Block {
	approved := r.State() != approvals.StatePending && len(r.Approvals()) >= r.RequiredApprovals()
	heading := "*Targets*"
	if len(r.Targets) == 1 {
		heading = "*Target*"
	}
	var (
		blocks []slack.Block
		lines  = []string{heading}
		size   = utf8.RuneCountInString(heading)
	)
	flush := func() {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(strings.Join(lines, "\n")), nil, nil,
			slack.SectionBlockOptionBlockID(blockID(fmt.Sprintf("revoke_targets_%d", len(blocks)), r))))
		lines, size = nil, 0
	}
	// Entries are packed into sections whole: a section never reaches
	// Slack's limit, which would cut a target off.
	for _, t := range r.Targets {
		line := targetLine(r, t, approved)
		if detail != noObservations {
			line = withObservations(line, observations(t, false, time.Time{}), detail == onlyAlerts)
		}
		n := utf8.RuneCountInString(line)
		if len(lines) > 0 && (size+1+n > maxSectionText || len(lines) >= targetLinesPerBlock) {
			flush()
		}
		if len(lines) > 0 {
			size++
		}
		lines = append(lines, line)
		size += n
	}
	flush()
	return blocks
}

// maxTargetLine bounds one line of the target list, outcome included, so
// that several targets share a section.
const maxTargetLine = (maxSectionText - len("*Targets*\n")) / targetLinesPerBlock

// targetLine is the line of t in the target list: the address (and the
// person it was resolved from), and, once approved, how its revocation
// stands, its outcome shortened to keep the line within maxTargetLine. The
// address is never shortened.
func targetLine(r approvals.Request, t approvals.Target, approved bool) string {
	line := "• " + targetText(t.Email)
	if t.Person != "" {
		line = "• " + mention(t.Person) + " → " + targetText(t.Email)
	}
	if !approved {
		return line
	}
	status := targetStatus(r, t)
	for n := utf8.RuneCountInString(t.Outcome); utf8.RuneCountInString(line)+1+utf8.RuneCountInString(status) > maxTargetLine && n > 1; n /= 2 {
		short := t
		short.Outcome = clip(t.Outcome, n)
		status = targetStatus(r, short)
	}
	return line + " " + status
}

// targetStatus says how one target's revocation stands.
func targetStatus(r approvals.Request, t approvals.Target) string {
	switch {
	case t.State == approvals.TargetRevoked && r.DryRun:
		return ":test_tube: dry run, not revoked"
	case t.State == approvals.TargetRevoked:
		return ":white_check_mark: revoked: " + code(truncate(t.Outcome, 200))
	case t.State == approvals.TargetFailed:
		return ":x: *failed*: " + code(truncate(t.Outcome, 300))
	}
	return ":hourglass: waiting"
}

// approvalsText says how many approvals a request has of how many it
// needs, and from whom.
func approvalsText(r approvals.Request) string {
	got := r.Approvals()
	s := fmt.Sprintf("%d of %d", len(got), r.RequiredApprovals())
	for i, rv := range got {
		if i == 0 {
			s += ": "
		} else {
			s += ", "
		}
		s += mention(rv.By)
	}
	return s
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
	switch st := r.State(); {
	case r.DryRun && st == approvals.StateExecuting:
		return "approved (dry run)"
	case r.DryRun && st == approvals.StateRevoked:
		return "dry run, nothing revoked"
	case st == approvals.StatePending && len(r.Approvals()) > 0:
		return "pending, " + approvalsCount(r)
	case st == approvals.StateFailed && len(r.Targets) > 1:
		return "failed: " + r.Summary()
	default:
		return string(st)
	}
}

func approvalsCount(r approvals.Request) string {
	return fmt.Sprintf("%d of %d approvals", len(r.Approvals()), r.RequiredApprovals())
}

func decisionButtons(r approvals.Request) slack.Block {
	text := "This cannot be undone. "
	if r.Options.Devices {
		text += "All devices associated with the user will be revoked too. "
	}
	if left := r.RequiredApprovals() - len(r.Approvals()); left > 1 {
		text += fmt.Sprintf("%d more approvals are needed after yours. ", left-1)
	}
	// The user-supplied emails go last, so that truncation can only shorten them.
	if len(r.Targets) == 1 {
		text += "Revoke every Cloudflare Access session of " + targetPlain(r.Targets[0].Email)
	} else {
		emails := make([]string, len(r.Targets))
		for i, t := range r.Targets {
			emails[i] = targetPlain(t.Email)
		}
		text += fmt.Sprintf("Revoke every Cloudflare Access session of %d people: %s", len(r.Targets), strings.Join(emails, ", "))
	}
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

// approvers lists who approved r, as mentions.
func approvers(r approvals.Request) string {
	var names []string
	for _, rv := range r.Approvals() {
		names = append(names, mention(rv.By))
	}
	if len(names) == 0 {
		return "nobody"
	}
	return strings.Join(names, ", ")
}

// statusLine says how a decided request stands, for its approval message.
// For a dry-run request it never says "Revoked": nothing was. A partial
// failure is said as such, never as success.
func statusLine(r approvals.Request) string {
	by := approvers(r)
	var approvedAt time.Time
	if a := r.Approvals(); len(a) > 0 {
		approvedAt = a[len(a)-1].At
	}
	one := len(r.Targets) == 1
	switch r.State() {
	case approvals.StateExecuting:
		if r.DryRun {
			return ":hourglass: Approved by " + by + " " + slackDate(approvedAt) + ". Dry run: recording the outcome without calling Cloudflare…"
		}
		if one {
			return ":hourglass: Approved by " + by + " " + slackDate(approvedAt) + ". Revoking…"
		}
		return ":hourglass: Approved by " + by + " " + slackDate(approvedAt) + ". Revoking… " + Escape(r.Summary()) + "."
	case approvals.StateRevoked:
		if r.DryRun {
			return ":test_tube: Approved by " + by + ". *Dry run: nothing was revoked* " + slackDate(r.FinishedAt) + "."
		}
		if one {
			return ":white_check_mark: Approved by " + by + ". *Revoked* " + slackDate(r.FinishedAt) + ": " + code(r.Targets[0].Outcome)
		}
		return ":white_check_mark: Approved by " + by + ". *" + Escape(r.Summary()) + "* " + slackDate(r.FinishedAt) + "."
	case approvals.StateFailed:
		if one {
			return ":x: Approved by " + by + ". *Revocation failed* " + slackDate(r.FinishedAt) + ": " + code(r.Targets[0].Outcome) +
				"\nThe revocation may not have happened: check the audit channel, then request again."
		}
		return ":x: Approved by " + by + ". *Partly failed: " + Escape(r.Summary()) + "* " + slackDate(r.FinishedAt) +
			".\nThe failed ones may not have been revoked: check the audit channel, then request them again."
	case approvals.StateDenied:
		d, _ := r.Denial()
		return ":no_entry: *Denied* by " + mention(d.By) + " " + slackDate(d.At) + "."
	case approvals.StateCancelled:
		d, _ := r.Denial()
		return ":leftwards_arrow_with_hook: *Cancelled* by the requester " + mention(d.By) + " " + slackDate(d.At) + "."
	case approvals.StateExpired:
		if n := len(r.Approvals()); n > 0 {
			return ":hourglass_flowing_sand: *Expired* " + slackDate(r.ExpiresAt) + " with " + approvalsCount(r) + "."
		}
		return ":hourglass_flowing_sand: *Expired* " + slackDate(r.ExpiresAt) + " without a decision."
	default:
		return "State: " + code(string(r.State()))
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
// formats nothing in them: `target="alice@example.com"`. An event about one
// target (revoked, failed, and what was seen of a revoked target after its
// record: verified, unverified, relogin) names that target; the others name
// every target of the request, each as a target="…" pair. What was seen is
// in the detail, as approvals words it (a revoked record's detail ends with
// its verification). A request in dry run is marked [DRY RUN] at the start
// of the line. An observed event has no record (approvals.Event.Audited);
// given one, auditText still makes a safe line of it.
// selfCheckText is the record of a self-check of the audit trail: about
// no request of anyone's.
func selfCheckText(e approvals.Event, seq int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s record=%d actor=revokebot %s at=%s", e.Kind, seq, auditValue("detail", e.Detail, 2500), e.At.UTC().Format(time.RFC3339))
	if e.Hash != "" {
		fmt.Fprintf(&b, " chain=%s", chainPrefix(e.Hash))
	}
	return truncate(b.String(), maxAuditText)
}

// ChainPrefixLen is how many hex digits of a record's chain hash its audit
// line shows (chain=…).
const ChainPrefixLen = 12

// chainPrefix is the start of hash shown on an audit line: hex digits only.
func chainPrefix(hash string) string {
	if len(hash) > ChainPrefixLen {
		hash = hash[:ChainPrefixLen]
	}
	for _, c := range hash {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "invalid"
		}
	}
	return hash
}

func auditText(e approvals.Event, seq int64) string {
	if e.Kind == approvals.EventChecked || e.Kind == approvals.EventTampered {
		return selfCheckText(e, seq)
	}
	r := e.Request
	var b strings.Builder
	b.WriteString(dryRunPrefix(r))
	b.WriteString(string(e.Kind))
	fmt.Fprintf(&b, " request=%s record=%d", Escape(r.ID), seq)
	// One target (the event's, or the request's only one) goes here; the
	// targets of a larger request go last, so that however many there are,
	// they never push the other fields out of the record.
	targets := r.Targets
	if e.Target != "" {
		targets = []approvals.Target{{Email: e.Target}}
		for _, t := range r.Targets {
			if t.Email == e.Target {
				targets[0].Person = t.Person
			}
		}
	}
	if len(targets) == 1 {
		b.WriteString(auditTarget(targets[0]))
		targets = nil
	} else {
		fmt.Fprintf(&b, " targets=%d", len(targets))
	}
	fmt.Fprintf(&b, " actor=%s requester=%s", mention(e.Actor), mention(r.Requester))
	fmt.Fprintf(&b, " devices=%t warp_reauth=%t", r.Options.Devices, r.Options.WARPReauth)
	if r.Options.UserUID != "" {
		fmt.Fprintf(&b, " %s", auditValue("uid", r.Options.UserUID, 80))
	}
	if e.Kind == approvals.EventRequested || e.Kind == approvals.EventRefused && e.State == approvals.StateRefused {
		fmt.Fprintf(&b, " %s", auditValue("reason", r.Reason, 1000))
	}
	if e.Kind == approvals.EventRequested {
		fmt.Fprintf(&b, " approvals_required=%d expires=%s", r.RequiredApprovals(), r.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " %s", auditValue("detail", e.Detail, 1300))
	}
	fmt.Fprintf(&b, " at=%s", e.At.UTC().Format(time.RFC3339))
	if e.Hash != "" {
		// The start of the record's link in the log's hash chain; the
		// message metadata carries all of it.
		fmt.Fprintf(&b, " chain=%s", chainPrefix(e.Hash))
	}
	for i, t := range targets {
		pair := auditTarget(t)
		rest := fmt.Sprintf(" more_targets=%d", len(targets)-i)
		if utf8.RuneCountInString(b.String())+utf8.RuneCountInString(pair)+len(rest) > maxAuditText {
			// Each target's own revoked or failed record names it.
			b.WriteString(rest)
			break
		}
		b.WriteString(pair)
	}
	return truncate(b.String(), maxAuditText)
}

// auditTarget is one target's pairs in an audit record: its address, the
// Unicode form of an internationalised domain, and the person it was
// resolved from.
func auditTarget(t approvals.Target) string {
	s := " " + auditValue("target", t.Email, 300)
	if u := unicodeForm(t.Email); u != "" {
		s += " " + auditValue("target_unicode", u, 300)
	}
	if t.Person != "" {
		s += " person=" + mention(t.Person)
	}
	return s
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
