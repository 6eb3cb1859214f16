package bot_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
)

func TestParseCommand(t *testing.T) {
	t.Parallel()
	const uid = "7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b"
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
			bot.Command{Revocation: approvals.Revocation{Email: "bob@example.com", WARPReauth: true, UserUID: uid}, Reason: "phished, see INC-42"}},
		{`alice@example.com --uid=` + uid + ` --reason 'one word'`,
			bot.Command{Revocation: approvals.Revocation{Email: "alice@example.com", UserUID: uid}, Reason: "one word"}},
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
		{"alice", "not a single email address"},
		{"alice@", "not a single email address"},
		{"Alice <alice@example.com>", "exactly one email"},
		{"<alice@example.com>", "not a single email address"},
		{"alice@example.com,bob@example.com", "not a single email address"},
		{"alice@example.com bob@example.com", "exactly one email"},
		{"alice@example.com laptop stolen", "exactly one email"},
		{"<mailto:alice@example.com|bob@example.com>", "different address"},
		{strings.Repeat("a", 250) + "@example.com", "longer than 254"},
		{"alice@example.com --devices --devices", "given twice"},
		{"alice@example.com --devices=true", "takes no value"},
		{"alice@example.com --uid", "--uid needs a value"},
		{"alice@example.com --uid --devices", "--uid needs a value"},
		{"alice@example.com --uid 1234", "not a UUID"},
		{"alice@example.com --uid urn:uuid:7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b", "not a UUID"},
		{"alice@example.com --reason", "--reason needs a value"},
		{`alice@example.com --reason ""`, "--reason is empty"},
		{"alice@example.com --reason " + strings.Repeat("é", 501), "limit is 500"},
		{"alice@example.com --reason \"bell\a\"", "control character"},
		{`alice@example.com --reason "open`, "quote is not closed"},
		{"alice@example.com --force", "unknown option"},
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

func clipped(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// FuzzParseCommand checks that no input panics, that every success is a
// well-formed command within the limits, and every failure is an ErrCommand.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		"alice@example.com", "<mailto:a@b.c|a@b.c> --devices", `a@b.c --reason "x y" --uid 7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b`,
		"help", "", `a@b.c --reason “smart”`, "<!channel>", "a@b.c --reason=<@U1>", `"`, "--uid=", "a@b.c --warp-reauth --reason 'x'",
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
			return
		}
		if cmd.Help {
			return
		}
		if cmd.Revocation.Email == "" || strings.ContainsAny(cmd.Revocation.Email, " <>,\"") || len(cmd.Reason) > 4*bot.MaxReasonLength {
			t.Fatalf("accepted a bad command %+v from %q", cmd, text)
		}
	})
}
