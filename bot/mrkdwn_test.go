package bot

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
)

// The <…> constructs the bot itself writes into Slack text, and nothing else:
// user and channel mentions by ID (mention, and handleCommand's <#channel>),
// and dates (slackDate). The bot makes no links, no mailto: links, no
// <!channel>/<!here>/<!subteam^…> pings and no labelled mentions.
var safeConstructs = []*regexp.Regexp{
	regexp.MustCompile(`^@[UW][A-Z0-9]+$`),
	regexp.MustCompile(`^#[CG][A-Z0-9]+$`),
	regexp.MustCompile(`^!date\^-?[0-9]+\^\{date_short_pretty\} \{time\}\|-?[0-9]{4,}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} UTC$`),
}

// checkSafeMrkdwn returns an error if text, meant as Slack mrkdwn, shows
// user text that went out unescaped: a <…> construct the bot does not make
// itself, a lone < or >, or an & that does not start &amp;, &lt; or &gt;; or
// user text that went out with characters that hide or reorder what follows
// (bidi embeddings, overrides and isolates, controls but new line and tab),
// which the bot shows as escapes such as \u202e instead.
func checkSafeMrkdwn(text string) error {
	for i, r := range text {
		if reorders(r) || unicode.IsControl(r) && r != '\n' && r != '\t' {
			return fmt.Errorf("character %U at byte %d: %+q", r, i, around(text, i))
		}
	}
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '<':
			end := strings.IndexAny(text[i+1:], "<>")
			if end < 0 || text[i+1+end] != '>' {
				return fmt.Errorf("unclosed < at byte %d: %q", i, around(text, i))
			}
			inner := text[i+1 : i+1+end]
			safe := false
			for _, re := range safeConstructs {
				safe = safe || re.MatchString(inner)
			}
			if !safe {
				return fmt.Errorf("<%s> at byte %d is not a construct the bot makes", clip(inner, 80), i)
			}
			i += 1 + end
		case '>':
			return fmt.Errorf("lone > at byte %d: %q", i, around(text, i))
		case '&':
			rest := text[i:]
			if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
				return fmt.Errorf("unescaped & at byte %d: %q", i, around(text, i))
			}
		}
	}
	return nil
}

// around quotes a little of s on either side of byte i, for error messages.
func around(s string, i int) string {
	return s[max(0, i-30):min(len(s), i+30)]
}

func TestCheckSafeMrkdwn(t *testing.T) {
	t.Parallel()
	date := slackDate(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	for _, good := range []string{
		"", "plain text", ":rotating_light: *bold* _it_ `code` ~strike~ • …",
		"<@U123ABC> asked", "<@W0ABC>", "by <@U1> in <#C0SEC> and <#G12>",
		date, "Expires " + date + ", asked by <@U1>.",
		slackDate(time.Time{}),
		"a &amp; b &lt;x&gt; &amp;amp;", Escape("<!channel> & <@U1|boss> <https://evil|x>"),
		Usage, Help, ":warning: " + Escape(`invalid command: "<mailto:a@b.c|x@y.z>" is not`) + "\n" + Usage,
		mention("U1") + mention("W2") + mention(""),
	} {
		if err := checkSafeMrkdwn(good); err != nil {
			t.Errorf("checkSafeMrkdwn(%q) = %v, want nil", good, err)
		}
	}
	for _, bad := range []string{
		"<!channel>", "<!here>", "<!everyone>", "hi <!subteam^S123>", "<!subteam^S123|@oncall>",
		"<@U123|boss>", "<@u123>", "<@U1 >", "<@U1&gt;>", "<@>", "<@U-1>", "<@B123>",
		"<#C1|general>", "<#c1>", "<#D123>",
		"<https://evil.example|click>", "<http://x>", "<mailto:a@b.c|a@b.c>", "<tel:123>",
		"<!date^1^{date}|x>", "<!date^abc^{date_short_pretty} {time}|2026-11-26 12:00 UTC>",
		"<!date^1700000000^{date_short_pretty} {time}^https://evil|2026-11-26 12:00 UTC>",
		"a & b", "&lt", "&quot;", "&#60;!channel&#62;", "&",
		"x > y", "> quoted", "<", "<@U1", "<<@U1>", "<@U1>>", date + "<!channel>",
		"\u202emoc.elpmaxe@ecila", "a\u2066b", "bell\a", "nul\x00",
	} {
		if err := checkSafeMrkdwn(bad); err == nil {
			t.Errorf("checkSafeMrkdwn(%q) = nil, want an error", bad)
		}
	}
}

func TestMentionShowsOnlyUserIDsAsMentions(t *testing.T) {
	t.Parallel()
	for user, want := range map[string]string{
		"":             "revokebot",
		"U0123ABC":     "<@U0123ABC>",
		"W0123ABC":     "<@W0123ABC>",
		"U1|boss":      "`\"U1|boss\"`",
		"<!here>":      "`\"&lt;!here&gt;\"`",
		"u123":         "`\"u123\"`",
		"B123":         "`\"B123\"`",
		"U1 & U2":      "`\"U1 &amp; U2\"`",
		"U" + "\u202e": "`\"U\\u202e\"`",
		"*boss*":       "`\"*boss*\"`",
		"U`*x*`":       "`\"U\\x60*x*\\x60\"`",
	} {
		got := mention(user)
		if got != want {
			t.Errorf("mention(%q) = %q, want %q", user, got, want)
		}
		if err := checkSafeMrkdwn(got); err != nil {
			t.Errorf("mention(%q) = %q: %v", user, got, err)
		}
	}
	if got := mention(strings.Repeat("X", 1000)); len(got) > 80 {
		t.Errorf("mention of a 1000-character ID is %d bytes long", len(got))
	}
}
