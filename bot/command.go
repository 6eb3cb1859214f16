package bot

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/revokebot/revokebot/approvals"
	"golang.org/x/net/idna"
)

// Limits on what a person may type.
const (
	// MaxCommandLength bounds the whole command text, in characters.
	MaxCommandLength = 2000
	// MaxReasonLength bounds the --reason text, in characters.
	MaxReasonLength = 500
)

// Usage is the one-line syntax of the command, shown with every parse error.
// Like Help, it is Slack mrkdwn, already escaped.
const Usage = "Usage: `/revoke &lt;email or @person&gt; [more people…] [--devices] [--warp-reauth] [--uid &lt;uuid&gt;] [--reason \"text\"]`, " +
	"`/revoke status &lt;request ID&gt;`, `/revoke pending` or `/revoke help`"

// Help is the reply to `/revoke help`.
const Help = Usage + `
• Name one or more people, separated by spaces: by email address, or as an @-mention picked from Slack's autocomplete (so that the command carries their user ID). A person named twice counts once. One request covers them all, up to a limit set by whoever runs revokebot (50 unless changed), and the options below apply to every one of them; they may come before, between or after the people.
• ` + "`--devices`" + `: all devices associated with the user will be revoked.
• ` + "`--warp-reauth`" + ` forces the user to re-authenticate WARP.
• ` + "`--uid &lt;uuid&gt;`" + ` targets one Cloudflare Access user ID: 32 hex digits, with or without the dashes of a UUID. It goes with exactly one person.
• ` + "`--reason \"text\"`" + ` says why (up to 500 characters); approvers and the audit log see it.
• ` + "`/revoke status &lt;request ID&gt;`" + ` shows where a request stands: give its ID, or its first characters (at least 4).
• ` + "`/revoke pending`" + ` lists the requests still waiting for an approver.
An address must be plain: ASCII before the @, and no invisible or look-alike characters. An internationalised domain is sent to Cloudflare in its xn-- form, and approvers see both forms.
An approver other than you must approve before anything is revoked.`

// Command is a parsed /revoke. Exactly one of Help, Status, Pending and
// Targets is set; Options and Reason only go with Targets.
type Command struct {
	// Help is set by "/revoke help"; nothing else is then filled in.
	Help bool
	// Status is set by "/revoke status <request ID or a unique prefix>": the ID or prefix typed (lower-cased, validated as hex digits and hyphens, at least 4 characters, at most 36).
	Status string
	// Pending is set by "/revoke pending".
	Pending bool
	// Targets are the people whose sessions to revoke, in the order typed, duplicates removed after normalising (the same email twice, or the same user ID twice, counts once; an email and a mention are not compared here).
	Targets []Target
	// Options apply to every target.
	Options approvals.Options
	// Reason is the --reason text, trimmed; "" if none was given.
	Reason string
}

// Target is one person named in a /revoke: either an email address or a Slack user mention.
type Target struct {
	// Email is the normalised address typed, empty for a mention.
	Email string
	// User is the Slack user ID of a mention, empty for an email.
	User string
}

// ErrCommand marks every parse error. The error's text is plain (it may quote
// what the user typed), so escape it before showing it in Slack.
var ErrCommand = errors.New("invalid command")

func commandErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCommand}, args...)...)
}

// ParseCommand parses the text after `/revoke`, as Slack sends it with
// should_escape on: the &, < and > a person typed arrive as &amp;, &lt; and
// &gt;, and a raw <…> is something Slack made.
//
// The first word may be a subcommand: `help`, `pending`, or `status` and a
// request ID (or its first characters); each takes nothing else. Otherwise
// the words are targets and options. A target is an email address (plain, or
// as Slack's <mailto:a@b.c|a@b.c> whose label is the address it points to) or
// a user mention Slack made, <@U…|name> or <@U…>. Options may come before,
// between or after the targets, as `--flag value` or `--flag=value`; values
// with spaces are quoted with "…", '…' or Slack's curly quotes. ParseCommand
// sets no limit on the number of targets (only MaxCommandLength bounds the
// text); --uid goes with exactly one.
//
// An error about a target names it by its position and quotes it in
// printable ASCII.
func ParseCommand(text string) (Command, error) {
	if !utf8.ValidString(text) {
		return Command{}, commandErrorf("the command is not valid UTF-8 text")
	}
	if n := utf8.RuneCountInString(text); n > MaxCommandLength {
		return Command{}, commandErrorf("the command is %d characters long; the limit is %d", n, MaxCommandLength)
	}
	// The words are kept as Slack sent them: a raw <…> is Slack's own.
	// Everything else is decoded where it is used, and escaped again when
	// it is shown.
	words, err := splitWords(text)
	if err != nil {
		return Command{}, err
	}
	if len(words) == 0 {
		return Command{}, commandErrorf("say whose sessions to revoke")
	}
	switch first := slackUnescaper.Replace(words[0]); {
	case strings.EqualFold(first, "help"):
		if len(words) > 1 {
			return Command{}, commandErrorf("help takes nothing else: `/revoke help`")
		}
		return Command{Help: true}, nil
	case strings.EqualFold(first, "pending"):
		if len(words) > 1 {
			return Command{}, commandErrorf("pending takes nothing else: `/revoke pending`")
		}
		return Command{Pending: true}, nil
	case strings.EqualFold(first, "status"):
		id, err := parseStatus(words[1:])
		if err != nil {
			return Command{}, err
		}
		return Command{Status: id}, nil
	}

	var (
		cmd     Command
		seen    = map[string]bool{}
		targets []string // as Slack sent them
	)
	for i := 0; i < len(words); i++ {
		w := slackUnescaper.Replace(words[i])
		if !strings.HasPrefix(w, "--") {
			targets = append(targets, words[i])
			continue
		}
		name, value, hasValue := strings.Cut(w, "=")
		if seen[name] {
			return Command{}, commandErrorf("%s is given twice", quoteInput(clip(name, 40)))
		}
		seen[name] = true
		switch name {
		case "--devices", "--warp-reauth":
			if hasValue {
				return Command{}, commandErrorf("%s takes no value", name)
			}
			if name == "--devices" {
				cmd.Options.Devices = true
			} else {
				cmd.Options.WARPReauth = true
			}
		case "--uid", "--reason":
			if !hasValue {
				if i+1 >= len(words) || strings.HasPrefix(slackUnescaper.Replace(words[i+1]), "--") {
					return Command{}, commandErrorf("%s needs a value", name)
				}
				i++
				value = slackUnescaper.Replace(words[i])
			}
			if name == "--uid" {
				uid, err := parseUID(value)
				if err != nil {
					return Command{}, err
				}
				cmd.Options.UserUID = uid
			} else {
				reason, err := checkReason(value)
				if err != nil {
					return Command{}, err
				}
				cmd.Reason = reason
			}
		default:
			return Command{}, commandErrorf("unknown option %s", quoteInput(clip(name, 40)))
		}
	}
	if len(targets) == 0 {
		return Command{}, commandErrorf("say whose sessions to revoke: give an email address, or pick a person from Slack's autocomplete")
	}
	have := make(map[Target]bool, len(targets))
	for i, raw := range targets {
		t, err := parseTarget(raw)
		if err != nil {
			shown := raw // Slack's own <…> as it came; typed text as typed
			if !strings.HasPrefix(raw, "<") {
				shown = slackUnescaper.Replace(raw)
			}
			return Command{}, commandErrorf("target %d %s: %v", i+1, quoteInput(clip(shown, 80)), err)
		}
		if !have[t] {
			have[t] = true
			cmd.Targets = append(cmd.Targets, t)
		}
	}
	if cmd.Options.UserUID != "" && len(cmd.Targets) > 1 {
		return Command{}, commandErrorf("--uid pins one Cloudflare Access user, so it goes with exactly one person; this command names %d", len(cmd.Targets))
	}
	return cmd, nil
}

// parseStatus checks the words after `status`: one request ID, or its first
// characters, which it returns lower-cased.
func parseStatus(args []string) (string, error) {
	const use = "`/revoke status <request ID>`, with the whole ID or its first 4 or more characters"
	switch len(args) {
	case 0:
		return "", commandErrorf("status needs a request ID: %s", use)
	case 1:
	default:
		return "", commandErrorf("status takes one request ID and nothing else: %s", use)
	}
	typed := slackUnescaper.Replace(args[0])
	id := strings.ToLower(typed)
	for i, r := range id {
		if r != '-' && (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return "", commandErrorf("the request ID %s contains %s %s: a request ID is hex digits and hyphens, like 7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b",
				quoteInput(clip(typed, 60)), codeChar(r), position(typed[:i]))
		}
	}
	if n := len(id); n < 4 || n > 36 {
		return "", commandErrorf("the request ID %s is %d characters long: give the whole ID (36 characters) or at least its first 4", quoteInput(clip(typed, 60)), n)
	}
	return id, nil
}

// parseTarget parses one target word, as Slack sent it. Its errors are plain
// (not ErrCommand): ParseCommand says which target they are about.
func parseTarget(raw string) (Target, error) {
	if strings.HasPrefix(raw, "<") {
		return parseSlackMarkup(raw)
	}
	s := slackUnescaper.Replace(raw)
	switch {
	case strings.HasPrefix(s, "@") && strings.Count(s, "@") == 1, strings.HasPrefix(s, "<@"):
		return Target{}, errors.New("a typed @name is not a mention: pick the person from Slack's autocomplete so the command carries their user ID, or give their email address")
	case strings.HasPrefix(s, "—"), strings.HasPrefix(s, "–"):
		return Target{}, errors.New("options start with two hyphens, like --devices (your keyboard may have turned them into a dash)")
	case strings.HasPrefix(s, "-") && !strings.Contains(s, "@"):
		return Target{}, errors.New("it is not an email address, and options start with two hyphens, like --devices")
	}
	email, err := parseAddress(s)
	if err != nil {
		if !strings.Contains(s, "@") {
			err = fmt.Errorf("%w (a reason with spaces in it goes in quotes: --reason \"…\")", err)
		}
		return Target{}, err
	}
	return Target{Email: email}, nil
}

// parseSlackMarkup parses a <…> that Slack made: a user mention, or a mailto
// link to an address. Anything else (channels, @here and the like, user
// groups, other links) names no one person, and is refused.
func parseSlackMarkup(raw string) (Target, error) {
	end := strings.IndexByte(raw, '>')
	if end < 0 {
		return Target{}, errors.New("the Slack link or mention is not closed with >")
	}
	if end != len(raw)-1 {
		return Target{}, fmt.Errorf("put a space between a mention or link and what follows it (%s)", quoteInput(clip(raw[end+1:], 20)))
	}
	inner := raw[1:end]
	// What Slack shows in place of the markup, for the reader's sake; the
	// part before it decides.
	head, _, _ := strings.Cut(inner, "|")
	switch {
	case strings.HasPrefix(inner, "@"):
		id := head[1:]
		if !isMentionID(id) {
			return Target{}, errors.New("the mention does not carry a Slack user ID (U or W, then 7 to 20 capital letters and digits): pick the person from Slack's autocomplete")
		}
		return Target{User: id}, nil
	case strings.HasPrefix(inner, "mailto:"):
		email, err := parseMailto(strings.TrimPrefix(inner, "mailto:"))
		if err != nil {
			return Target{}, err
		}
		return Target{Email: email}, nil
	case strings.HasPrefix(inner, "#"):
		return Target{}, errors.New("a channel is not a person: name each person, by email address or as an @-mention")
	case head == "!here" || head == "!channel" || head == "!everyone" || head == "!group":
		return Target{}, fmt.Errorf("@%s is not a person: name each person, by email address or as an @-mention", head[1:])
	case strings.HasPrefix(inner, "!subteam^"):
		return Target{}, errors.New("a user group is not a person: revokebot does not expand groups; name each member, by email address or as an @-mention")
	case strings.HasPrefix(inner, "!"):
		return Target{}, errors.New("a special Slack word is not a person: name each person, by email address or as an @-mention")
	}
	return Target{}, errors.New("a link is not a person: give an email address, or pick the person from Slack's autocomplete")
}

// isMentionID reports whether id is a Slack user ID as a mention carries it:
// U or W (Enterprise Grid), then 7 to 20 capital letters and digits.
func isMentionID(id string) bool {
	if len(id) < 8 || len(id) > 21 || (id[0] != 'U' && id[0] != 'W') {
		return false
	}
	for i := 1; i < len(id); i++ {
		if c := id[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// parseMailto parses what follows "mailto:" in Slack's link to an address
// typed in the text, "a@b.c|a@b.c" (or "a@b.c"), still escaped. The label is
// what Slack shows; it must be the address the link points to, else the
// link shows one person and names another.
func parseMailto(inner string) (string, error) {
	addr, label, _ := strings.Cut(inner, "|")
	// An address may itself hold a |: then the link is "addr|addr".
	if n := len(inner); n%2 == 1 && inner[n/2] == '|' && inner[:n/2] == inner[n/2+1:] {
		addr, label = inner[:n/2], inner[:n/2]
	}
	addr, label = slackUnescaper.Replace(addr), slackUnescaper.Replace(label)
	if label != "" && label != addr {
		return "", errors.New("the email link shows a different address than it points to: type the address as plain text")
	}
	return parseAddress(addr)
}

// parseAddress accepts one plain address (decoded) and returns it as it will
// be sent to Cloudflare: see checkAddress.
func parseAddress(s string) (string, error) {
	if n := utf8.RuneCountInString(s); n > 254 {
		return "", errors.New("the email address is longer than 254 characters")
	}
	return checkAddress(s)
}

// checkAddress accepts an address only in a form a person reads
// unambiguously, and returns it as it will be sent:
//
//   - the part before the @ is an RFC 5321 dot-atom of ASCII letters, digits
//     and ! # $ % & ' * + - / = ? ^ _ { | } ~, kept as typed. A backtick is
//     refused: messages show the target in a code span, which Slack cannot
//     escape a backtick in. (* _ ~ are accepted: in a code span they cannot
//     format.)
//   - the domain is lower-cased; made of letters, digits and hyphens in at
//     least two labels; an internationalised domain is converted to its
//     xn-- form (IDNA2008, as registries check it), and messages show both.
//
// Anything else is refused with a message that names the first offending
// character by its code point and where it is: invisible, format, bidi and
// control characters, full-width look-alikes (never folded into another
// address), and non-ASCII letters before the @. The errors of checkAddress and
// checkDomain are plain (not ErrCommand): ParseCommand says which target they
// are about.
func checkAddress(s string) (string, error) {
	at := -1
	for i, r := range s {
		where := position(s[:i])
		if what, name := hiddenRune(r); what != "" {
			return "", fmt.Errorf("the address contains %s %U %s%s: type the address again without it", what, r, where, name)
		}
		if r >= 0xFF01 && r <= 0xFF5E {
			return "", fmt.Errorf("the address contains a full-width character %U (a look-alike of %s) %s: type the address in plain (half-width) characters",
				r, codeChar(r-0xFEE0), where)
		}
		if at < 0 {
			switch {
			case r == '@':
				at = i
			case r == '`':
				return "", fmt.Errorf("the address contains a backtick (U+0060) %s: revokebot does not accept backticks in addresses", where)
			case r >= utf8.RuneSelf:
				return "", fmt.Errorf("the address contains a non-ASCII character %U%s %s: the part before the @ must be plain ASCII (letters, digits and . ! # $ %% & ' * + - / = ? ^ _ { | } ~)",
					r, scriptOf(r), where)
			case r != '.' && !isAtext(r):
				return "", fmt.Errorf("it is not a single email address like alice@example.com: it contains %s %s", codeChar(r), where)
			}
			continue
		}
		switch {
		case r == '@':
			return "", fmt.Errorf("the address contains a second @ %s: give exactly one email address", where)
		case r < utf8.RuneSelf && !isLDH(byte(r)) && r != '.':
			return "", fmt.Errorf("it is not a single email address like alice@example.com: it contains %s %s, which a domain cannot have (only letters, digits, hyphens and dots)",
				codeChar(r), where)
		case r >= utf8.RuneSelf:
			if _, err := idna.Registration.ToASCII(strings.ToLower(string(r))); err != nil && strings.HasPrefix(err.Error(), "idna: disallowed rune") {
				return "", fmt.Errorf("the address contains the character %U%s %s, which an internationalised domain cannot have", r, scriptOf(r), where)
			}
		}
	}
	if at < 0 {
		return "", errors.New("it is not a single email address like alice@example.com")
	}
	local, domain := s[:at], s[at+1:]
	switch {
	case local == "":
		return "", errors.New("it is not a single email address like alice@example.com: nothing comes before the @")
	case len(local) > 64:
		return "", fmt.Errorf("the part before the @ is %d characters long; the limit is 64", len(local))
	case local[0] == '.' || local[len(local)-1] == '.':
		return "", fmt.Errorf("the part before the @ starts or ends with a dot")
	case strings.Contains(local, ".."):
		return "", fmt.Errorf("the part before the @ has two dots in a row")
	case domain == "":
		return "", errors.New("it is not a single email address like alice@example.com: nothing comes after the @")
	}
	domain, err := checkDomain(domain)
	if err != nil {
		return "", err
	}
	return local + "@" + domain, nil
}

// checkDomain lower-cases d (whose characters checkAddress has checked),
// converts an internationalised domain to its xn-- form, and checks that the
// result is a host name of at least two labels.
func checkDomain(d string) (string, error) {
	d = strings.ToLower(d)
	ace := d
	if !isASCII(d) || strings.HasPrefix(d, "xn--") || strings.Contains(d, ".xn--") {
		var err error
		if ace, err = idna.Registration.ToASCII(d); err != nil {
			return "", fmt.Errorf("the domain %s is not a valid internationalised domain name", quoteInput(clip(d, 80)))
		}
		// A label typed in its xn-- form decodes to what an approver sees.
		u, _ := idna.Registration.ToUnicode(ace)
		for i, r := range u {
			if what, name := hiddenRune(r); what != "" {
				return "", fmt.Errorf("the domain %s decodes to text with %s %U %s%s", quoteInput(clip(d, 80)), what, r, position(u[:i]), name)
			}
		}
	}
	labels := strings.Split(ace, ".")
	if len(ace) > 253 {
		return "", fmt.Errorf("the domain is longer than 253 characters")
	}
	for _, l := range labels {
		switch {
		case l == "":
			return "", fmt.Errorf("the domain %s starts or ends with a dot, or has two in a row", quoteInput(clip(d, 80)))
		case len(l) > 63:
			return "", fmt.Errorf("a part of the domain is %d characters long; the limit is 63", len(l))
		case l[0] == '-' || l[len(l)-1] == '-':
			return "", fmt.Errorf("the domain part %s starts or ends with a hyphen", quoteInput(clip(l, 80)))
		}
	}
	switch {
	case len(labels) < 2:
		return "", fmt.Errorf("the domain %s has a single part: give a full domain like example.com", quoteInput(clip(d, 80)))
	case strings.Trim(labels[len(labels)-1], "0123456789") == "":
		return "", fmt.Errorf("the domain %s ends in a number, not a name", quoteInput(clip(d, 80)))
	}
	return ace, nil
}

// hiddenRune says what r is if a reader cannot see it or it rearranges what
// they see: a control, bidirectional, invisible (format, space, filler,
// variation selector) or unassigned character, with its name if known.
func hiddenRune(r rune) (what, name string) {
	if n, ok := runeNames[r]; ok {
		name = " (" + n + ")"
	}
	switch {
	case r >= ' ' && r < 0x7F:
		return "", ""
	case unicode.Is(unicode.Cc, r):
		return "a control character", name
	case unicode.Is(unicode.Bidi_Control, r):
		return "a bidirectional control character", name
	case unicode.Is(unicode.Cf, r), unicode.IsSpace(r), unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp),
		unicode.Is(unicode.Variation_Selector, r), unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r),
		r == 0x2800: // BRAILLE PATTERN BLANK
		return "an invisible character", name
	case !unicode.IsGraphic(r):
		return "an unassigned or private-use character", name
	}
	return "", ""
}

// runeNames names the characters most used to hide something in text.
var runeNames = map[rune]string{
	0x00A0: "NO-BREAK SPACE", 0x00AD: "SOFT HYPHEN", 0x034F: "COMBINING GRAPHEME JOINER",
	0x061C: "ARABIC LETTER MARK", 0x115F: "HANGUL CHOSEONG FILLER", 0x1160: "HANGUL JUNGSEONG FILLER",
	0x180E: "MONGOLIAN VOWEL SEPARATOR", 0x200B: "ZERO WIDTH SPACE", 0x200C: "ZERO WIDTH NON-JOINER",
	0x200D: "ZERO WIDTH JOINER", 0x200E: "LEFT-TO-RIGHT MARK", 0x200F: "RIGHT-TO-LEFT MARK",
	0x202A: "LEFT-TO-RIGHT EMBEDDING", 0x202B: "RIGHT-TO-LEFT EMBEDDING", 0x202C: "POP DIRECTIONAL FORMATTING",
	0x202D: "LEFT-TO-RIGHT OVERRIDE", 0x202E: "RIGHT-TO-LEFT OVERRIDE", 0x2060: "WORD JOINER",
	0x2061: "FUNCTION APPLICATION", 0x2062: "INVISIBLE TIMES", 0x2063: "INVISIBLE SEPARATOR", 0x2064: "INVISIBLE PLUS",
	0x2066: "LEFT-TO-RIGHT ISOLATE", 0x2067: "RIGHT-TO-LEFT ISOLATE", 0x2068: "FIRST STRONG ISOLATE",
	0x2069: "POP DIRECTIONAL ISOLATE", 0x2800: "BRAILLE PATTERN BLANK", 0x3164: "HANGUL FILLER",
	0xFEFF: "ZERO WIDTH NO-BREAK SPACE", 0xFFA0: "HALFWIDTH HANGUL FILLER",
}

// position says where in the address a character is: "at the start" or
// "after `…`", quoting what comes before it in printable ASCII.
func position(before string) string {
	if before == "" {
		return "at the start"
	}
	if r := []rune(before); len(r) > 40 {
		before = "…" + string(r[len(r)-39:])
	}
	q := asciiQuote(before)
	return "after `" + q[1:len(q)-1] + "`"
}

// reorders reports whether r is a bidi embedding, override or isolate, which
// reorder the text after them. (The bidi marks LRM, RLM and ALM only steer
// the neutral characters next to them, and right-to-left text needs them.)
func reorders(r rune) bool {
	return unicode.Is(unicode.Bidi_Control, r) && r != 0x200E && r != 0x200F && r != 0x061C
}

// reasonPosition is position for the reason, quoting at most its last 20
// characters.
func reasonPosition(before string) string {
	if r := []rune(before); len(r) > 20 {
		before = string(r[len(r)-20:])
	}
	return position(before)
}

// scriptOf names r's script, as " (Cyrillic)", or returns "".
func scriptOf(r rune) string {
	for name, table := range unicode.Scripts {
		if name != "Common" && name != "Inherited" && unicode.Is(table, r) {
			return " (" + name + ")"
		}
	}
	return ""
}

// codeChar shows an ASCII character in a code span, or names it.
func codeChar(r rune) string {
	switch {
	case r == '`':
		return "a backtick (U+0060)"
	case r == ' ':
		return "a space"
	case r > ' ' && r < 0x7F:
		return "`" + string(r) + "`"
	}
	return fmt.Sprintf("%U", r)
}

// quoteInput quotes what the user typed for an error message: in a code span
// (so nothing in it formats), as a Go string of printable ASCII (so nothing
// in it hides: every other character shows as its \u escape).
func quoteInput(s string) string {
	return "`" + asciiQuote(s) + "`"
}

// asciiQuote is strconv.QuoteToASCII that also escapes backticks, so that its
// result fits in a code span.
func asciiQuote(s string) string {
	return strings.ReplaceAll(strconv.QuoteToASCII(s), "`", `\x60`)
}

// isAtext reports whether r is an RFC 5322 atext character.
func isAtext(r rune) bool {
	return r < utf8.RuneSelf && (isAlnum(byte(r)) || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r))
}

func isLDH(c byte) bool { return isAlnum(c) || c == '-' }

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// parseUID accepts a Cloudflare Access user ID as 32 hex digits (the form of
// Cloudflare's API schema) or as a UUID with dashes, and returns it as 32
// lower-case hex digits: the one form revokebot stores, shows and sends.
func parseUID(v string) (string, error) {
	hex := v
	if len(v) == 36 && v[8] == '-' && v[13] == '-' && v[18] == '-' && v[23] == '-' {
		hex = v[:8] + v[9:13] + v[14:18] + v[19:23] + v[24:]
	}
	ok := len(hex) == 32
	for i := 0; ok && i < len(hex); i++ {
		c := hex[i]
		ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
	}
	if !ok {
		return "", commandErrorf("--uid %s is not a UUID: give the Access user ID as 32 hex digits like f174e90afafe4643bbbc4a0ed4fc8415, or with dashes like f174e90a-fafe-4643-bbbc-4a0ed4fc8415",
			quoteInput(clip(v, 60)))
	}
	return strings.ToLower(hex), nil
}

func checkReason(r string) (string, error) {
	r = strings.TrimSpace(r)
	if r == "" {
		return "", commandErrorf("--reason is empty")
	}
	if n := utf8.RuneCountInString(r); n > MaxReasonLength {
		return "", commandErrorf("the reason is %d characters long; the limit is %d", n, MaxReasonLength)
	}
	for i, c := range r {
		switch {
		case unicode.IsControl(c) && c != '\n' && c != '\t':
			return "", commandErrorf("the reason contains a control character (%U)", c)
		case reorders(c):
			_, name := hiddenRune(c)
			return "", commandErrorf("the reason contains a bidirectional control character %U %s%s", c, reasonPosition(r[:i]), name)
		}
	}
	return r, nil
}

var slackUnescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

var closingQuote = map[rune]rune{'"': '"', '\'': '\'', '“': '”', '”': '”', '‘': '’', '’': '’', '„': '“'}

// splitWords splits s at white space, keeping quoted stretches together.
// A quote opens only at the start of a word or right after `=`. A < at the
// start of a word (outside quotes) is Slack's own markup, since Slack sends a
// typed < as &lt;: it runs to the next >, white space and quotes included.
func splitWords(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		closing rune
		quoted  bool
		markup  bool
	)
	for _, c := range s {
		switch {
		case markup:
			cur.WriteRune(c)
			markup = c != '>'
		case quoted:
			if c == closing || (closing == '”' && c == '"') || (closing == '"' && c == '”') {
				quoted = false
				continue
			}
			cur.WriteRune(c)
		case unicode.IsSpace(c):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '<' && !inWord:
			cur.WriteRune(c)
			markup, inWord = true, true
		default:
			if q, ok := closingQuote[c]; ok && (!inWord || strings.HasSuffix(cur.String(), "=")) {
				quoted, closing, inWord = true, q, true
				continue
			}
			cur.WriteRune(c)
			inWord = true
		}
	}
	switch {
	case quoted:
		return nil, commandErrorf("a quote is not closed")
	case markup:
		return nil, commandErrorf("a < is not closed with >")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// clip shortens s to at most n characters for quoting it back in an error.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
