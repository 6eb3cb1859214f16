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
const Usage = "Usage: `/revoke &lt;email&gt; [--devices] [--warp-reauth] [--uid &lt;uuid&gt;] [--reason \"text\"]` or `/revoke help`"

// Help is the reply to `/revoke help`.
const Help = Usage + `
• ` + "`--devices`" + `: all devices associated with the user will be revoked.
• ` + "`--warp-reauth`" + ` forces the user to re-authenticate WARP.
• ` + "`--uid &lt;uuid&gt;`" + ` targets one Cloudflare Access user ID: 32 hex digits, with or without the dashes of a UUID.
• ` + "`--reason \"text\"`" + ` says why (up to 500 characters); approvers and the audit log see it.
The address must be plain: ASCII before the @, and no invisible or look-alike characters. An internationalised domain is sent to Cloudflare in its xn-- form, and approvers see both forms.
An approver other than you must approve before anything is revoked.`

// Command is a parsed /revoke command.
type Command struct {
	// Help is set for `/revoke help`; nothing else is then filled in.
	Help       bool
	Revocation approvals.Revocation
	Reason     string
}

// ErrCommand marks every parse error. The error's text is plain (it may quote
// what the user typed), so escape it before showing it in Slack.
var ErrCommand = errors.New("invalid command")

func commandErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCommand}, args...)...)
}

// ParseCommand parses the text after `/revoke`. The target email may be plain
// or in Slack's escaped form `<mailto:a@b.c|a@b.c>`. Flags may come in any
// order, as `--flag value` or `--flag=value`; values with spaces are quoted
// with "…", '…' or Slack's curly quotes.
func ParseCommand(text string) (Command, error) {
	if !utf8.ValidString(text) {
		return Command{}, commandErrorf("the command is not valid UTF-8 text")
	}
	if n := utf8.RuneCountInString(text); n > MaxCommandLength {
		return Command{}, commandErrorf("the command is %d characters long; the limit is %d", n, MaxCommandLength)
	}
	words, err := splitWords(text)
	if err != nil {
		return Command{}, err
	}
	// Slack may send &, < and > typed by the user as &amp;, &lt; and &gt;.
	// Decode them: everything is escaped again when it is shown.
	for i, w := range words {
		words[i] = slackUnescaper.Replace(w)
	}
	if len(words) == 0 {
		return Command{}, commandErrorf("say whose sessions to revoke")
	}
	if len(words) == 1 && strings.EqualFold(words[0], "help") {
		return Command{Help: true}, nil
	}

	var (
		cmd  Command
		seen = map[string]bool{}
		args []string
	)
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "--") {
			args = append(args, w)
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
				cmd.Revocation.Devices = true
			} else {
				cmd.Revocation.WARPReauth = true
			}
		case "--uid", "--reason":
			if !hasValue {
				if i+1 >= len(words) || strings.HasPrefix(words[i+1], "--") {
					return Command{}, commandErrorf("%s needs a value", name)
				}
				i++
				value = words[i]
			}
			if name == "--uid" {
				uid, err := parseUID(value)
				if err != nil {
					return Command{}, err
				}
				cmd.Revocation.UserUID = uid
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
	switch len(args) {
	case 0:
		return Command{}, commandErrorf("say whose sessions to revoke: the user's email address")
	case 1:
	default:
		return Command{}, commandErrorf("give exactly one email address (got %d words: %s); quote a reason with spaces in it", len(args), quoteInput(clip(strings.Join(args, " "), 80)))
	}
	email, err := parseEmail(args[0])
	if err != nil {
		return Command{}, err
	}
	cmd.Revocation.Email = email
	return cmd, nil
}

// parseEmail accepts one plain address, or Slack's <mailto:a@b.c|a@b.c>, and
// returns it as it will be sent to Cloudflare: see checkAddress.
func parseEmail(s string) (string, error) {
	raw := s
	if strings.HasPrefix(s, "<mailto:") && strings.HasSuffix(s, ">") {
		inner := strings.TrimSuffix(strings.TrimPrefix(s, "<mailto:"), ">")
		addr, label, _ := strings.Cut(inner, "|")
		// An address may itself hold a |: then the link is "addr|addr".
		if n := len(inner); n%2 == 1 && inner[n/2] == '|' && inner[:n/2] == inner[n/2+1:] {
			addr, label = inner[:n/2], inner[:n/2]
		}
		if label != "" && label != addr {
			return "", commandErrorf("the email link %s shows a different address than it points to", quoteInput(clip(raw, 80)))
		}
		s = addr
	}
	if n := utf8.RuneCountInString(s); n > 254 {
		return "", commandErrorf("the email address is longer than 254 characters")
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
// address), and non-ASCII letters before the @.
func checkAddress(s string) (string, error) {
	at := -1
	for i, r := range s {
		where := position(s[:i])
		if what, name := hiddenRune(r); what != "" {
			return "", commandErrorf("the address contains %s %U %s%s: type the address again without it", what, r, where, name)
		}
		if r >= 0xFF01 && r <= 0xFF5E {
			return "", commandErrorf("the address contains a full-width character %U (a look-alike of %s) %s: type the address in plain (half-width) characters",
				r, codeChar(r-0xFEE0), where)
		}
		if at < 0 {
			switch {
			case r == '@':
				at = i
			case r == '`':
				return "", commandErrorf("the address contains a backtick (U+0060) %s: revokebot does not accept backticks in addresses", where)
			case r >= utf8.RuneSelf:
				return "", commandErrorf("the address contains a non-ASCII character %U%s %s: the part before the @ must be plain ASCII (letters, digits and . ! # $ %% & ' * + - / = ? ^ _ { | } ~)",
					r, scriptOf(r), where)
			case r != '.' && !isAtext(r):
				return "", commandErrorf("%s is not a single email address like alice@example.com: it contains %s %s", quoteInput(clip(s, 80)), codeChar(r), where)
			}
			continue
		}
		switch {
		case r == '@':
			return "", commandErrorf("the address contains a second @ %s: give exactly one email address", where)
		case r < utf8.RuneSelf && !isLDH(byte(r)) && r != '.':
			return "", commandErrorf("%s is not a single email address like alice@example.com: it contains %s %s, which a domain cannot have (only letters, digits, hyphens and dots)",
				quoteInput(clip(s, 80)), codeChar(r), where)
		case r >= utf8.RuneSelf:
			if _, err := idna.Registration.ToASCII(strings.ToLower(string(r))); err != nil && strings.HasPrefix(err.Error(), "idna: disallowed rune") {
				return "", commandErrorf("the address contains the character %U%s %s, which an internationalised domain cannot have", r, scriptOf(r), where)
			}
		}
	}
	if at < 0 {
		return "", commandErrorf("%s is not a single email address like alice@example.com", quoteInput(clip(s, 80)))
	}
	local, domain := s[:at], s[at+1:]
	switch {
	case local == "":
		return "", commandErrorf("%s is not a single email address like alice@example.com: nothing comes before the @", quoteInput(clip(s, 80)))
	case len(local) > 64:
		return "", commandErrorf("the part before the @ is %d characters long; the limit is 64", len(local))
	case local[0] == '.' || local[len(local)-1] == '.':
		return "", commandErrorf("the part before the @ starts or ends with a dot")
	case strings.Contains(local, ".."):
		return "", commandErrorf("the part before the @ has two dots in a row")
	case domain == "":
		return "", commandErrorf("%s is not a single email address like alice@example.com: nothing comes after the @", quoteInput(clip(s, 80)))
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
			return "", commandErrorf("the domain %s is not a valid internationalised domain name", quoteInput(clip(d, 80)))
		}
		// A label typed in its xn-- form decodes to what an approver sees.
		u, _ := idna.Registration.ToUnicode(ace)
		for i, r := range u {
			if what, name := hiddenRune(r); what != "" {
				return "", commandErrorf("the domain %s decodes to text with %s %U %s%s", quoteInput(clip(d, 80)), what, r, position(u[:i]), name)
			}
		}
	}
	labels := strings.Split(ace, ".")
	if len(ace) > 253 {
		return "", commandErrorf("the domain is longer than 253 characters")
	}
	for _, l := range labels {
		switch {
		case l == "":
			return "", commandErrorf("the domain %s starts or ends with a dot, or has two in a row", quoteInput(clip(d, 80)))
		case len(l) > 63:
			return "", commandErrorf("a part of the domain is %d characters long; the limit is 63", len(l))
		case l[0] == '-' || l[len(l)-1] == '-':
			return "", commandErrorf("the domain part %s starts or ends with a hyphen", quoteInput(clip(l, 80)))
		}
	}
	switch {
	case len(labels) < 2:
		return "", commandErrorf("the domain %s has a single part: give a full domain like example.com", quoteInput(clip(d, 80)))
	case strings.Trim(labels[len(labels)-1], "0123456789") == "":
		return "", commandErrorf("the domain %s ends in a number, not a name", quoteInput(clip(d, 80)))
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
// A quote opens only at the start of a word or right after `=`.
func splitWords(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		closing rune
		quoted  bool
	)
	for _, c := range s {
		switch {
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
		default:
			if q, ok := closingQuote[c]; ok && (!inWord || strings.HasSuffix(cur.String(), "=")) {
				quoted, closing, inWord = true, q, true
				continue
			}
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quoted {
		return nil, commandErrorf("a quote is not closed")
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
