package bot_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
)

func TestParseCommand(t *testing.T) {
	t.Parallel()
	const (
		uid  = "7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b"
		want = "7f8e1c2a0b3d4e5f9a6b1c2d3e4f5a6b" // the one form stored and sent
	)
	for _, tt := range []struct {
		text string
		want bot.Command
	}{
		{"alice@example.com", bot.Command{Revocation: approvals.Revocation{Email: "alice@example.com"}}},
		{"  alice@example.com  ", bot.Command{Revocation: approvals.Revocation{Email: "alice@example.com"}}},
		{"<mailto:alice@example.com|alice@example.com>", bot.Command{Revocation: approvals.Revocation{Email: "alice@example.com"}}},
		{"<mailto:alice@example.com>", bot.Command{Revocation: approvals.Revocation{Email: "alice@example.com"}}},
		{`alice@example.com --devices --reason "laptop stolen"`,
			bot.Command{Revocation: approvals.Revocation{Email: "alice@example.com", Devices: true}, Reason: "laptop stolen"}},
		{`--reason=“phished, see INC-42” --warp-reauth bob@example.com --uid ` + strings.ToUpper(uid),
			bot.Command{Revocation: approvals.Revocation{Email: "bob@example.com", WARPReauth: true, UserUID: want}, Reason: "phished, see INC-42"}},
		{`alice@example.com --uid=` + uid + ` --reason 'one word'`,
			bot.Command{Revocation: approvals.Revocation{Email: "alice@example.com", UserUID: want}, Reason: "one word"}},
		{"alice@example.com --uid f174e90afafe4643bbbc4a0ed4fc8415", // Cloudflare's own form
			bot.Command{Revocation: approvals.Revocation{Email: "alice@example.com", UserUID: "f174e90afafe4643bbbc4a0ed4fc8415"}}},
		{"alice@example.com --uid F174E90A-FAFE-4643-BBBC-4A0ED4FC8415",
			bot.Command{Revocation: approvals.Revocation{Email: "alice@example.com", UserUID: "f174e90afafe4643bbbc4a0ed4fc8415"}}},
		{"alice@example.com --reason single", bot.Command{Revocation: approvals.Revocation{Email: "alice@example.com"}, Reason: "single"}},
		{`alice@example.com --reason "don't"`, bot.Command{Revocation: approvals.Revocation{Email: "alice@example.com"}, Reason: "don't"}},
		{"help", bot.Command{Help: true}},
		{"HELP", bot.Command{Help: true}},
	} {
		got, err := bot.ParseCommand(tt.text)
		if err != nil {
			t.Errorf("ParseCommand(%q): %v", tt.text, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseCommand(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

func TestParseCommandErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ text, want string }{
		{"", "say whose sessions"},
		{"   ", "say whose sessions"},
		{"--devices", "email address"},
		{"alice", "`\"alice\"` is not a single email address"},
		{"alice@", "nothing comes after the @"},
		{"@example.com", "nothing comes before the @"},
		{"Alice <alice@example.com>", "exactly one email"},
		{"<alice@example.com>", "is not a single email address like alice@example.com: it contains `<` at the start"},
		{"alice@example.com,bob@example.com", "not a single email address like alice@example.com: it contains `,` after `alice@example.com`"},
		{"alice@example.com bob@example.com", "exactly one email"},
		{"alice@example.com laptop stolen", "exactly one email"},
		{"<mailto:alice@example.com|bob@example.com>", "different address"},
		{strings.Repeat("a", 250) + "@example.com", "longer than 254"},
		{strings.Repeat("a", 65) + "@example.com", "the part before the @ is 65 characters long; the limit is 64"},
		{".alice@example.com", "starts or ends with a dot"},
		{"alice.@example.com", "starts or ends with a dot"},
		{"al..ice@example.com", "two dots in a row"},
		{"alice@example..com", "has two in a row"},
		{"alice@example.com.", "starts or ends with a dot"},
		{"alice@-example.com", "starts or ends with a hyphen"},
		{"alice@localhost", "has a single part"},
		{"alice@10.0.0.1", "ends in a number"},
		{"a@b@example.com", "a second @ after `a@b`"},
		{"alice@exa_mple.com", "it contains `_` after `alice@exa`, which a domain cannot have"},
		{"alice@example.com --devices --devices", "given twice"},
		{"alice@example.com --devices=true", "takes no value"},
		{"alice@example.com --uid", "--uid needs a value"},
		{"alice@example.com --uid --devices", "--uid needs a value"},
		{"alice@example.com --uid 1234", "not a UUID"},
		{"alice@example.com --uid urn:uuid:7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b", "not a UUID"},
		{"alice@example.com --uid {7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b}", "not a UUID"},
		{"alice@example.com --uid 7f8e1c2a0b3d4e5f9a6b1c2d3e4f5a6", "not a UUID"},
		{"alice@example.com --uid 7f8e1c2a0b3d4e5f9a6b1c2d3e4f5a6g", "not a UUID"},
		{"alice@example.com --reason", "--reason needs a value"},
		{`alice@example.com --reason ""`, "--reason is empty"},
		{"alice@example.com --reason " + strings.Repeat("é", 501), "limit is 500"},
		{"alice@example.com --reason \"bell\a\"", "control character"},
		{"alice@example.com --reason \"laptop \u202elen\"", "bidirectional control character U+202E after `laptop ` (RIGHT-TO-LEFT OVERRIDE)"},
		{`alice@example.com --reason "open`, "quote is not closed"},
		{"alice@example.com --force", "unknown option `\"--force\"`"},
		{"alice@example.com --f\u200borce", "unknown option `\"--f\\u200borce\"`"},
		{"alice@example.com -d", "exactly one email"},
		{strings.Repeat("x", 2001), "limit is 2000"},
		{"alice@example.com \xff", "not valid UTF-8"},
	} {
		_, err := bot.ParseCommand(tt.text)
		if err == nil {
			t.Errorf("ParseCommand(%q) succeeded, want an error containing %q", tt.text, tt.want)
			continue
		}
		if !errors.Is(err, bot.ErrCommand) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseCommand(%q) = %v, want an ErrCommand containing %q", clipped(tt.text), err, tt.want)
		}
	}
}

// TestParseTargetAttacks feeds the parser targets that look like one address
// and are another (invisible, bidirectional and look-alike characters), and
// targets Slack would format. Each is accepted only as an unambiguous
// address, exactly the one given here, or refused with a message that names
// the character by its code point and says where it is.
func TestParseTargetAttacks(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, text string
		accept     string // the address accepted; "" if refused
		refusal    string // part of the refusal
	}{
		{"zero width space at the end", "alice@example.com\u200b", "",
			"the address contains an invisible character U+200B after `alice@example.com` (ZERO WIDTH SPACE)"},
		{"zero width space inside", "ali\u200bce@example.com", "",
			"the address contains an invisible character U+200B after `ali` (ZERO WIDTH SPACE)"},
		{"word joiner", "alice\u2060@example.com", "",
			"the address contains an invisible character U+2060 after `alice` (WORD JOINER)"},
		{"soft hyphen", "alice@exam\u00adple.com", "",
			"the address contains an invisible character U+00AD after `alice@exam` (SOFT HYPHEN)"},
		{"right-to-left override", "\u202emoc.elpmaxe@ecila", "",
			"the address contains a bidirectional control character U+202E at the start (RIGHT-TO-LEFT OVERRIDE)"},
		{"left-to-right mark", "alice@example.com\u200e", "",
			"the address contains a bidirectional control character U+200E after `alice@example.com` (LEFT-TO-RIGHT MARK)"},
		{"right-to-left mark", "\u200falice@example.com", "",
			"the address contains a bidirectional control character U+200F at the start (RIGHT-TO-LEFT MARK)"},
		{"byte order mark", "alice@\ufeffexample.com", "",
			"the address contains an invisible character U+FEFF after `alice@` (ZERO WIDTH NO-BREAK SPACE)"},
		{"hangul filler", "alice\u3164@example.com", "",
			"the address contains an invisible character U+3164 after `alice` (HANGUL FILLER)"},
		{"invisible in a mailto link", "<mailto:alice@example.com\u200b|alice@example.com\u200b>", "",
			"the address contains an invisible character U+200B after `alice@example.com`"},
		{"Cyrillic a before the @", "\u0430lice@example.com", "",
			"the address contains a non-ASCII character U+0430 (Cyrillic) at the start: the part before the @ must be plain ASCII"},
		{"Latin letter with accent before the @", "jos\u00e9@example.com", "",
			"the address contains a non-ASCII character U+00E9 (Latin) after `jos`"},
		{"Cyrillic a in the domain", "alice@ex\u0430mple.com", "alice@xn--exmple-4nf.com", ""},
		{"domain typed in its xn-- form", "alice@XN--EXMPLE-4NF.com", "alice@xn--exmple-4nf.com", ""},
		{"internationalised domain", "alice@B\u00dcCHER.de", "alice@xn--bcher-kva.de", ""},
		{"full-width at sign", "alice\uff20example.com", "",
			"the address contains a full-width character U+FF20 (a look-alike of `@`) after `alice`"},
		{"full-width letter", "alice@ex\uff41mple.com", "",
			"the address contains a full-width character U+FF41 (a look-alike of `a`) after `alice@ex`"},
		{"mathematical letter in the domain", "alice@\U0001d41example.com", "",
			"the address contains the character U+1D41E after `alice@`, which an internationalised domain cannot have"},
		{"ideographic full stop", "alice@example\u3002com", "",
			"the address contains the character U+3002 after `alice@example`"},
		{"xn-- label that decodes to nothing valid", "alice@xn--abc.com", "", "is not a valid internationalised domain name"},
		{"Slack formatting characters", "*bob*_x_~y~@example.com", "*bob*_x_~y~@example.com", ""},
		{"backtick", "bob`x`@example.com", "",
			"the address contains a backtick (U+0060) after `bob`: revokebot does not accept backticks"},
		{"upper-case domain", "Alice.Smith@EXAMPLE.Com", "Alice.Smith@example.com", ""},
		{"every atext character", "a!#$%&'*+-/=?^_{|}~z@example.com", "a!#$%&'*+-/=?^_{|}~z@example.com", ""},
		{"mailto link of an address with a |", "<mailto:a|b@example.com|a|b@example.com>", "a|b@example.com", ""},
		{"ampersand as Slack sends it", "a&amp;b@example.com", "a&b@example.com", ""},
	} {
		got, err := bot.ParseCommand(tt.text)
		switch {
		case tt.accept != "" && err != nil:
			t.Errorf("%s: ParseCommand(%+q) = %v, want %s", tt.name, tt.text, err, tt.accept)
		case tt.accept != "" && got.Revocation.Email != tt.accept:
			t.Errorf("%s: ParseCommand(%+q) accepted %+q, want %+q", tt.name, tt.text, got.Revocation.Email, tt.accept)
		case tt.accept == "" && err == nil:
			t.Errorf("%s: ParseCommand(%+q) accepted %+q, want a refusal", tt.name, tt.text, got.Revocation.Email)
		case tt.accept == "" && (!errors.Is(err, bot.ErrCommand) || !strings.Contains(err.Error(), tt.refusal)):
			t.Errorf("%s: ParseCommand(%+q) = %v\nwant an ErrCommand containing %s", tt.name, tt.text, err, tt.refusal)
		}
		if err != nil {
			if bad := unsafeErrorText(err.Error()); bad != "" {
				t.Errorf("%s: the refusal shows %s: %+q", tt.name, bad, err.Error())
			}
		}
	}
}

// unsafeErrorText says what in an error's text could hide something from its
// reader: anything but printable ASCII and the ellipsis.
func unsafeErrorText(s string) string {
	for _, r := range s {
		if (r < ' ' || r > '~') && r != '…' {
			return fmt.Sprintf("the character %U", r)
		}
	}
	return ""
}

func TestHelpSaysWhatDevicesDoes(t *testing.T) {
	t.Parallel()
	// Cloudflare's API schema on devices=true, word for word.
	if want := "all devices associated with the user will be revoked"; !strings.Contains(bot.Help, want) {
		t.Errorf("Help does not say %q:\n%s", want, bot.Help)
	}
}

func clipped(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// FuzzParseCommand checks that no input panics, that every success is a
// well-formed command within the limits, and every failure is an ErrCommand
// whose text hides nothing. An accepted address is printable ASCII without
// backticks, and parses again to itself, as typed or as Slack's mailto link.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		"alice@example.com", "<mailto:a@b.c|a@b.c> --devices", `a@b.cd --reason "x y" --uid 7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b`,
		"help", "", `a@b.c --reason “smart”`, "<!channel>", "a@b.c --reason=<@U1>", `"`, "--uid=", "a@b.c --warp-reauth --reason 'x'",
		"alice@example.com\u200b", "\u202emoc.elpmaxe@ecila", "alice@ex\u0430mple.com", "alice\uff20example.com", "*bob*_x_~y~@example.com",
		"alice@xn--exmple-4nf.com --uid f174e90afafe4643bbbc4a0ed4fc8415", "'o'brien'@example.com", "a&amp;b@EXAMPLE.com",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cmd, err := bot.ParseCommand(text)
		if err != nil {
			if !errors.Is(err, bot.ErrCommand) {
				t.Fatalf("error %v is not an ErrCommand", err)
			}
			if strings.ContainsAny(bot.Escape(err.Error()), "<>") {
				t.Fatalf("escaped error still has < or >")
			}
			if utf8.ValidString(text) {
				if bad := unsafeErrorText(err.Error()); bad != "" {
					t.Fatalf("error text shows %s: %+q", bad, err.Error())
				}
			}
			return
		}
		if cmd.Help {
			return
		}
		email := cmd.Revocation.Email
		if email == "" || len(cmd.Reason) > 4*bot.MaxReasonLength {
			t.Fatalf("accepted a bad command %+v from %q", cmd, text)
		}
		for i := 0; i < len(email); i++ {
			if c := email[i]; c <= ' ' || c > '~' || c == '`' {
				t.Fatalf("accepted address %+q has the byte %#x", email, c)
			}
		}
		if strings.Count(email, "@") != 1 || email[strings.IndexByte(email, '@'):] != strings.ToLower(email[strings.IndexByte(email, '@'):]) {
			t.Fatalf("accepted address %q: want one @ and a lower-case domain", email)
		}
		if uid := cmd.Revocation.UserUID; uid != "" && (len(uid) != 32 || strings.Trim(uid, "0123456789abcdef") != "") {
			t.Fatalf("accepted --uid %q: want 32 lower-case hex digits", uid)
		}
		// Parsed again (escaped as Slack sends it), the address is itself.
		again := []string{"<mailto:" + bot.Escape(email) + "|" + bot.Escape(email) + ">"}
		if !strings.ContainsAny(email[:1], "\"'-") {
			again = append(again, bot.Escape(email))
		}
		for _, typed := range again {
			if cmd2, err := bot.ParseCommand(typed); err != nil || cmd2.Revocation.Email != email {
				t.Fatalf("address %q from %q does not parse again to itself from %q: %q, %v", email, text, typed, cmd2.Revocation.Email, err)
			}
		}
	})
}
