package bot_test

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
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
	email := func(addrs ...string) []bot.Target {
		var ts []bot.Target
		for _, a := range addrs {
			ts = append(ts, bot.Target{Email: a})
		}
		return ts
	}
	for _, tt := range []struct {
		text string
		want bot.Command
	}{
		{"alice@example.com", bot.Command{Targets: email("alice@example.com")}},
		{"  alice@example.com  ", bot.Command{Targets: email("alice@example.com")}},
		{"<mailto:alice@example.com|alice@example.com>", bot.Command{Targets: email("alice@example.com")}},
		{"<mailto:alice@example.com>", bot.Command{Targets: email("alice@example.com")}},
		{`alice@example.com --devices --reason "laptop stolen"`,
			bot.Command{Targets: email("alice@example.com"), Options: approvals.Options{Devices: true}, Reason: "laptop stolen"}},
		{`--reason=“phished, see INC-42” --warp-reauth bob@example.com --uid ` + strings.ToUpper(uid),
			bot.Command{Targets: email("bob@example.com"), Options: approvals.Options{WARPReauth: true, UserUID: want}, Reason: "phished, see INC-42"}},
		{`alice@example.com --uid=` + uid + ` --reason 'one word'`,
			bot.Command{Targets: email("alice@example.com"), Options: approvals.Options{UserUID: want}, Reason: "one word"}},
		{"alice@example.com --uid f174e90afafe4643bbbc4a0ed4fc8415", // Cloudflare's own form
			bot.Command{Targets: email("alice@example.com"), Options: approvals.Options{UserUID: "f174e90afafe4643bbbc4a0ed4fc8415"}}},
		{"alice@example.com --uid F174E90A-FAFE-4643-BBBC-4A0ED4FC8415",
			bot.Command{Targets: email("alice@example.com"), Options: approvals.Options{UserUID: "f174e90afafe4643bbbc4a0ed4fc8415"}}},
		{"alice@example.com --reason single", bot.Command{Targets: email("alice@example.com"), Reason: "single"}},
		{`alice@example.com --reason "don't"`, bot.Command{Targets: email("alice@example.com"), Reason: "don't"}},

		// Bulk: in the order typed, each person once.
		{`a@example.com b@example.com c@example.com --devices --reason "shared laptop stolen"`,
			bot.Command{Targets: email("a@example.com", "b@example.com", "c@example.com"), Options: approvals.Options{Devices: true}, Reason: "shared laptop stolen"}},
		{"c@example.com a@example.com b@example.com", bot.Command{Targets: email("c@example.com", "a@example.com", "b@example.com")}},
		{"alice@EXAMPLE.com bob@example.com alice@example.com <mailto:alice@Example.Com|alice@Example.Com> bob@example.com",
			bot.Command{Targets: email("alice@example.com", "bob@example.com")}},
		{"alice@b\u00fccher.de alice@XN--BCHER-KVA.de", bot.Command{Targets: email("alice@xn--bcher-kva.de")}},
		// The part before the @ is kept as typed, so these are two addresses.
		{"Alice@example.com alice@example.com", bot.Command{Targets: email("Alice@example.com", "alice@example.com")}},
		// Options before, between and after the targets.
		{`--devices a@example.com --reason "see INC-7" b@example.com --warp-reauth c@example.com`,
			bot.Command{Targets: email("a@example.com", "b@example.com", "c@example.com"), Options: approvals.Options{Devices: true, WARPReauth: true}, Reason: "see INC-7"}},
		{"a@example.com --devices b@example.com", bot.Command{Targets: email("a@example.com", "b@example.com"), Options: approvals.Options{Devices: true}}},

		// Mentions, as Slack sends them with should_escape on.
		{"<@U0123ABC|alice>", bot.Command{Targets: []bot.Target{{User: "U0123ABC"}}}},
		{"<@U0123ABC>", bot.Command{Targets: []bot.Target{{User: "U0123ABC"}}}},
		{"<@W0123ABC|bob>", bot.Command{Targets: []bot.Target{{User: "W0123ABC"}}}},
		{"<@U0123ABCDEF|alice smith> --devices", bot.Command{Targets: []bot.Target{{User: "U0123ABCDEF"}}, Options: approvals.Options{Devices: true}}},
		{"<@U0123ABC|alice> <@U0123ABC> <@U0123ABC|alice.renamed>", bot.Command{Targets: []bot.Target{{User: "U0123ABC"}}}},
		// An email and a mention are not compared: that needs Slack.
		{"<@U0123ABC|alice> alice@example.com <@W0456DEF|bob>",
			bot.Command{Targets: []bot.Target{{User: "U0123ABC"}, {Email: "alice@example.com"}, {User: "W0456DEF"}}}},
		{"--uid " + uid + " <@U0123ABC|alice>", bot.Command{Targets: []bot.Target{{User: "U0123ABC"}}, Options: approvals.Options{UserUID: want}}},
		// --uid with one person named twice is still one person.
		{"alice@example.com --uid " + uid + " alice@EXAMPLE.COM", bot.Command{Targets: email("alice@example.com"), Options: approvals.Options{UserUID: want}}},
		// A mention in the reason is only text.
		{`alice@example.com --reason "asked by <@U0123ABC|boss>"`, bot.Command{Targets: email("alice@example.com"), Reason: "asked by <@U0123ABC|boss>"}},

		{"help", bot.Command{Help: true}},
		{"HELP", bot.Command{Help: true}},
		{"pending", bot.Command{Pending: true}},
		{" Pending ", bot.Command{Pending: true}},
		{"status " + uid, bot.Command{Status: uid}},
		{"status " + strings.ToUpper(uid), bot.Command{Status: uid}},
		{"STATUS 7F8E", bot.Command{Status: "7f8e"}},
		{"status 7f8e1c2a-0b3d", bot.Command{Status: "7f8e1c2a-0b3d"}},
	} {
		got, err := bot.ParseCommand(tt.text)
		if err != nil {
			t.Errorf("ParseCommand(%q): %v", tt.text, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCommand(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

func TestParseCommandErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ text, want string }{
		{"", "say whose sessions"},
		{"   ", "say whose sessions"},
		{"--devices", "say whose sessions to revoke: give an email address"},
		{`--devices --reason "x y"`, "say whose sessions to revoke"},
		{"alice", "target 1 `\"alice\"`: it is not a single email address like alice@example.com"},
		{"alice@", "target 1 `\"alice@\"`: it is not a single email address like alice@example.com: nothing comes after the @"},
		{"Alice <alice@example.com>", "target 1 `\"Alice\"`: it is not a single email address"},
		{"<alice@example.com>", "target 1 `\"<alice@example.com>\"`: a link is not a person"},
		{"alice@example.com,bob@example.com", "target 1 `\"alice@example.com,bob@example.com\"`: it is not a single email address like alice@example.com: it contains `,` after `alice@example.com`"},
		{"alice@example.com laptop stolen", "target 2 `\"laptop\"`: it is not a single email address like alice@example.com (a reason with spaces in it goes in quotes"},
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
		{"alice@example.com -d", "target 2 `\"-d\"`: it is not an email address, and options start with two hyphens"},
		{"alice@example.com \u2014devices", "target 2 `\"\\u2014devices\"`: options start with two hyphens, like --devices (your keyboard may have turned them into a dash)"},
		{strings.Repeat("x", 2001), "limit is 2000"},
		{strings.Repeat("a@example.com ", 150), "limit is 2000"}, // no limit on targets, but on the text
		{"alice@example.com \xff", "not valid UTF-8"},

		// --uid pins one Cloudflare user.
		{"alice@example.com bob@example.com --uid 7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b",
			"--uid pins one Cloudflare Access user, so it goes with exactly one person; this command names 2"},
		{"--uid 7f8e1c2a0b3d4e5f9a6b1c2d3e4f5a6b <@U0123ABC|alice> <@W0456DEF|bob>", "--uid pins one Cloudflare Access user"},

		// Subcommands take what they take and nothing else.
		{"help me", "help takes nothing else"},
		{"help --devices", "help takes nothing else"},
		{"pending now", "pending takes nothing else: `/revoke pending`"},
		{"pending --devices", "pending takes nothing else"},
		{"status", "status needs a request ID: `/revoke status <request ID>`"},
		{"status   ", "status needs a request ID"},
		{"status 7f8e1c2a extra", "status takes one request ID and nothing else"},
		{"status 7f8e1c2a --devices", "status takes one request ID and nothing else"},
		{"status abc", "the request ID `\"abc\"` is 3 characters long: give the whole ID (36 characters) or at least its first 4"},
		{"status 7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b0", "is 37 characters long"},
		{"status 7f8e1c2g", "the request ID `\"7f8e1c2g\"` contains `g` after `7f8e1c2`: a request ID is hex digits and hyphens"},
		{"status {7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b}", "contains `{` at the start"},
		{"status 7f8e\u200b1c2a", "contains U+200B after `7f8e`"},
		{"status alice@example.com", "contains `l` after `a`"},
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

// TestParseTargetRefusals checks that every refused target is named by its
// position among the targets and quoted as sent, whatever comes around it:
// Slack markup that names no one person, a mention without a valid user ID,
// a mailto link that shows another address than it points to, a typed
// @name, and an address that fails the checks.
func TestParseTargetRefusals(t *testing.T) {
	t.Parallel()
	const autocomplete = "pick the person from Slack's autocomplete so the command carries their user ID"
	for _, tt := range []struct {
		name, target, refusal string
	}{
		// Slack markup that is not a person.
		{"channel", "<#C0123ABC|general>", "a channel is not a person"},
		{"channel without a name", "<#C0123ABC>", "a channel is not a person"},
		{"@here", "<!here>", "@here is not a person"},
		{"@here with a label", "<!here|here>", "@here is not a person"},
		{"@channel", "<!channel>", "@channel is not a person"},
		{"@everyone", "<!everyone>", "@everyone is not a person"},
		{"user group", "<!subteam^S0123ABC|@oncall>", "a user group is not a person: revokebot does not expand groups"},
		{"user group without a label", "<!subteam^S0123ABC>", "a user group is not a person"},
		{"date", "<!date^1700000000^{date}|Nov 14>", "a special Slack word is not a person"},
		{"web link labelled as an address", "<https://evil.example|alice@example.com>", "a link is not a person"},
		{"tel link", "<tel:+15555550100|555 0100>", "a link is not a person"},
		{"mention with trailing text", "<@U0123ABC|alice>,", "put a space between a mention or link and what follows it (`\",\"`)"},

		// Mentions without a valid user ID.
		{"lower-case ID", "<@u0123abc|alice>", "the mention does not carry a Slack user ID"},
		{"bot ID", "<@B0123ABC|robot>", "the mention does not carry a Slack user ID"},
		{"team ID", "<@T0123ABC>", "the mention does not carry a Slack user ID"},
		{"short ID", "<@U012>", "the mention does not carry a Slack user ID"},
		{"long ID", "<@U" + strings.Repeat("A", 21) + ">", "the mention does not carry a Slack user ID"},
		{"ID with a hyphen", "<@U0123-ABC>", "the mention does not carry a Slack user ID"},
		{"ID with an invisible character", "<@U0123ABC\u200b|alice>", "the mention does not carry a Slack user ID"},
		{"ID with a full-width letter", "<@U0123AB\uff23>", "the mention does not carry a Slack user ID"},
		{"empty mention", "<@>", "the mention does not carry a Slack user ID"},
		{"empty mention with a label", "<@|alice>", "the mention does not carry a Slack user ID"},

		// Typed, not made by Slack.
		{"bare @name", "@alice", autocomplete},
		{"bare @name with a dot", "@alice.smith", autocomplete},
		{"typed mention markup", "&lt;@U0123ABC&gt;", autocomplete},
		{"typed mailto markup", "&lt;mailto:alice@example.com|alice@example.com&gt;", "it contains `<` at the start"},

		// mailto links.
		{"mailto to another address", "<mailto:mallory@example.com|alice@example.com>", "the email link shows a different address than it points to"},
		{"mailto labelled in another case", "<mailto:alice@EXAMPLE.com|alice@example.com>", "the email link shows a different address"},
		{"mailto labelled with a name", "<mailto:alice@example.com|Alice>", "the email link shows a different address"},
		{"mailto to no address", "<mailto:|alice@example.com>", "the email link shows a different address"},
		{"mailto with an invisible character", "<mailto:alice@example.com\u200b|alice@example.com\u200b>",
			"the address contains an invisible character U+200B after `alice@example.com`"},

		// Addresses.
		{"invisible character", "ali\u200bce@example.com", "the address contains an invisible character U+200B after `ali` (ZERO WIDTH SPACE)"},
		{"domain character", "bob@exa_mple.com", "it contains `_` after `bob@exa`, which a domain cannot have"},
		{"no @", "bob", "not a single email address like alice@example.com"},
	} {
		for _, around := range []struct {
			before, after string
			position      int
		}{
			{"", "", 1},
			{"a@example.com --devices ", " c@example.com", 2},
			{`--reason "see INC-7" <@U0AAAAAAA|x> a@example.com b@example.com `, " --warp-reauth", 4},
		} {
			text := around.before + tt.target + around.after
			_, err := bot.ParseCommand(text)
			shown := strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(tt.target, "&lt;", "<"), "&gt;", ">"), "&amp;", "&")
			if strings.HasPrefix(tt.target, "<") {
				shown = tt.target // Slack's markup, as Slack sent it
			}
			want := fmt.Sprintf("target %d `%s`: ", around.position, strings.ReplaceAll(strconv.QuoteToASCII(shown), "`", `\x60`))
			switch {
			case err == nil:
				t.Errorf("%s: ParseCommand(%+q) succeeded, want a refusal", tt.name, text)
			case !errors.Is(err, bot.ErrCommand) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.refusal):
				t.Errorf("%s: ParseCommand(%+q) = %v\nwant an ErrCommand containing %s and %s", tt.name, text, err, want, tt.refusal)
			default:
				if bad := unsafeErrorText(err.Error()); bad != "" {
					t.Errorf("%s: the refusal shows %s: %+q", tt.name, bad, err.Error())
				}
			}
		}
	}
}

func TestParseUnclosedMarkup(t *testing.T) {
	t.Parallel()
	// Slack sends a typed < as &lt;, so a raw < always closes; one that
	// does not is refused before anything else.
	for _, text := range []string{"<@U0123ABC", "a@example.com <@U0123ABC --devices", "<mailto:a@example.com|a@example.com"} {
		if _, err := bot.ParseCommand(text); err == nil || !strings.Contains(err.Error(), "a < is not closed with >") {
			t.Errorf("ParseCommand(%q) = %v, want an unclosed <", text, err)
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
		var accepted string
		if len(got.Targets) == 1 {
			accepted = got.Targets[0].Email
		}
		switch {
		case tt.accept != "" && err != nil:
			t.Errorf("%s: ParseCommand(%+q) = %v, want %s", tt.name, tt.text, err, tt.accept)
		case tt.accept != "" && (len(got.Targets) != 1 || accepted != tt.accept):
			t.Errorf("%s: ParseCommand(%+q) accepted %+v, want %+q", tt.name, tt.text, got.Targets, tt.accept)
		case tt.accept == "" && err == nil:
			t.Errorf("%s: ParseCommand(%+q) accepted %+v, want a refusal", tt.name, tt.text, got.Targets)
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

func TestHelpDocumentsEveryForm(t *testing.T) {
	t.Parallel()
	for _, want := range []string{"`/revoke status &lt;request ID&gt;`", "`/revoke pending`", "`/revoke help`", "&lt;email or @person&gt;", "more people"} {
		if !strings.Contains(bot.Usage, want) {
			t.Errorf("Usage does not show %q:\n%s", want, bot.Usage)
		}
	}
	for _, want := range []string{"one or more people", "autocomplete", "named twice counts once", "before, between or after", "exactly one person", "at least 4"} {
		if !strings.Contains(bot.Help, want) {
			t.Errorf("Help does not say %q:\n%s", want, bot.Help)
		}
	}
}

func clipped(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// mentionID is what an accepted mention's user ID must look like.
var mentionID = regexp.MustCompile(`^[UW][A-Z0-9]{7,20}$`)

// FuzzParseCommand checks that no input panics, that every success is a
// well-formed command within the limits, and every failure is an ErrCommand
// whose text hides nothing. A command is one of help, status, pending, or
// targets with options; it has no more targets than the text has words, and
// none twice. An accepted address is printable ASCII without backticks, and
// parses again to itself, as typed or as Slack's mailto link; an accepted
// user ID is U or W and 7 to 20 capital letters and digits, and parses again
// to itself as a mention.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		"alice@example.com", "<mailto:a@b.c|a@b.c> --devices", `a@b.cd --reason "x y" --uid 7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b`,
		"help", "", `a@b.c --reason “smart”`, "<!channel>", "a@b.c --reason=<@U1>", `"`, "--uid=", "a@b.c --warp-reauth --reason 'x'",
		"alice@example.com\u200b", "\u202emoc.elpmaxe@ecila", "alice@ex\u0430mple.com", "alice\uff20example.com", "*bob*_x_~y~@example.com",
		"alice@xn--exmple-4nf.com --uid f174e90afafe4643bbbc4a0ed4fc8415", "'o'brien'@example.com", "a&amp;b@EXAMPLE.com",
		"a@b.cd B@b.cd a@B.CD --devices c@b.cd", "<@U0123ABC|alice> <@W0123ABC> alice@example.com <@U0123ABC>", "<@U0123ABC|alice smith>",
		"<#C0123ABC|general>", "<!subteam^S0123ABC|@oncall>", "<mailto:a@b.cd|b@b.cd>", "@alice", "&lt;@U0123ABC&gt;", "<@U0123ABC",
		"status 7f8e1c2a", "STATUS 7F8E1C2A-0B3D-4E5F-9A6B-1C2D3E4F5A6B", "status", "status 7f8e 1c2a", "pending", "pending x",
		"<@U0123ABC> b@b.cd --uid f174e90afafe4643bbbc4a0ed4fc8415",
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
		kinds := 0
		for _, set := range []bool{cmd.Help, cmd.Status != "", cmd.Pending, len(cmd.Targets) > 0} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			t.Fatalf("accepted %+v from %q: want exactly one of help, status, pending and targets", cmd, text)
		}
		if cmd.Status != "" && !regexp.MustCompile(`^[0-9a-f-]{4,36}$`).MatchString(cmd.Status) {
			t.Fatalf("accepted status %q from %q", cmd.Status, text)
		}
		if len(cmd.Targets) == 0 {
			if cmd.Options != (approvals.Options{}) || cmd.Reason != "" {
				t.Fatalf("accepted options without targets: %+v from %q", cmd, text)
			}
			return
		}
		if n := len(strings.Fields(text)); len(cmd.Targets) > n {
			t.Fatalf("%d targets from %d words: %q", len(cmd.Targets), n, text)
		}
		if len(cmd.Reason) > 4*bot.MaxReasonLength {
			t.Fatalf("accepted a reason of %d bytes", len(cmd.Reason))
		}
		if uid := cmd.Options.UserUID; uid != "" && (len(uid) != 32 || strings.Trim(uid, "0123456789abcdef") != "" || len(cmd.Targets) != 1) {
			t.Fatalf("accepted --uid %q with %d targets: want 32 lower-case hex digits and one target", uid, len(cmd.Targets))
		}
		seen := map[bot.Target]bool{}
		for _, target := range cmd.Targets {
			if seen[target] {
				t.Fatalf("target %+v twice from %q", target, text)
			}
			seen[target] = true
			if (target.Email == "") == (target.User == "") {
				t.Fatalf("target %+v from %q: want an email or a user", target, text)
			}
			if user := target.User; user != "" {
				if !mentionID.MatchString(user) {
					t.Fatalf("accepted user ID %q from %q", user, text)
				}
				if cmd2, err := bot.ParseCommand("<@" + user + ">"); err != nil || len(cmd2.Targets) != 1 || cmd2.Targets[0].User != user {
					t.Fatalf("user %q from %q does not parse again to itself: %+v, %v", user, text, cmd2.Targets, err)
				}
				continue
			}
			email := target.Email
			for i := 0; i < len(email); i++ {
				if c := email[i]; c <= ' ' || c > '~' || c == '`' {
					t.Fatalf("accepted address %+q has the byte %#x", email, c)
				}
			}
			if strings.Count(email, "@") != 1 || email[strings.IndexByte(email, '@'):] != strings.ToLower(email[strings.IndexByte(email, '@'):]) {
				t.Fatalf("accepted address %q: want one @ and a lower-case domain", email)
			}
			// Parsed again (escaped as Slack sends it), the address is itself.
			again := []string{"<mailto:" + bot.Escape(email) + "|" + bot.Escape(email) + ">"}
			if !strings.ContainsAny(email[:1], "\"'-") {
				again = append(again, bot.Escape(email))
			}
			for _, typed := range again {
				if cmd2, err := bot.ParseCommand(typed); err != nil || len(cmd2.Targets) != 1 || cmd2.Targets[0].Email != email {
					t.Fatalf("address %q from %q does not parse again to itself from %q: %+v, %v", email, text, typed, cmd2.Targets, err)
				}
			}
		}
	})
}
