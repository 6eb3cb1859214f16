package bot

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/revokebot/revokebot/approvals"
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
• ` + "`--devices`" + ` also revokes the user's device (WARP) sessions.
• ` + "`--warp-reauth`" + ` forces the user to re-authenticate WARP.
• ` + "`--uid &lt;uuid&gt;`" + ` targets one Cloudflare Access user ID.
• ` + "`--reason \"text\"`" + ` says why (up to 500 characters); approvers and the audit log see it.
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
			return Command{}, commandErrorf("%s is given twice", name)
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
				u, err := uuid.Parse(value)
				if err != nil || len(value) != 36 {
					return Command{}, commandErrorf("--uid %q is not a UUID like 7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b", clip(value, 60))
				}
				cmd.Revocation.UserUID = u.String()
			} else {
				reason, err := checkReason(value)
				if err != nil {
					return Command{}, err
				}
				cmd.Reason = reason
			}
		default:
			return Command{}, commandErrorf("unknown option %q", clip(name, 40))
		}
	}
	switch len(args) {
	case 0:
		return Command{}, commandErrorf("say whose sessions to revoke: the user's email address")
	case 1:
	default:
		return Command{}, commandErrorf("give exactly one email address (got %d words: %q); quote a reason with spaces in it", len(args), clip(strings.Join(args, " "), 80))
	}
	email, err := parseEmail(args[0])
	if err != nil {
		return Command{}, err
	}
	cmd.Revocation.Email = email
	return cmd, nil
}

// parseEmail accepts one plain address, or Slack's <mailto:a@b.c|a@b.c>.
func parseEmail(s string) (string, error) {
	raw := s
	if strings.HasPrefix(s, "<mailto:") && strings.HasSuffix(s, ">") {
		inner := strings.TrimSuffix(strings.TrimPrefix(s, "<mailto:"), ">")
		addr, label, _ := strings.Cut(inner, "|")
		if label != "" && label != addr {
			return "", commandErrorf("the email link %q shows a different address than it points to", clip(raw, 80))
		}
		s = addr
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s || strings.ContainsAny(s, "<>,;\"") || !strings.Contains(s, "@") {
		return "", commandErrorf("%q is not a single email address like alice@example.com", clip(raw, 80))
	}
	if len(s) > 254 {
		return "", commandErrorf("the email address is longer than 254 characters")
	}
	return s, nil
}

func checkReason(r string) (string, error) {
	r = strings.TrimSpace(r)
	if r == "" {
		return "", commandErrorf("--reason is empty")
	}
	if n := utf8.RuneCountInString(r); n > MaxReasonLength {
		return "", commandErrorf("the reason is %d characters long; the limit is %d", n, MaxReasonLength)
	}
	for _, c := range r {
		if unicode.IsControl(c) && c != '\n' && c != '\t' {
			return "", commandErrorf("the reason contains a control character (%U)", c)
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
