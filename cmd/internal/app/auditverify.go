package app

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
	"github.com/slack-go/slack"
)

const auditVerifyUsage = `Usage: revokebot audit verify [--since DATE]

Compares the audit channel (REVOKEBOT_AUDIT_CHANNEL) with the database
(REVOKEBOT_DATABASE), and prints one line per problem:

  CHAIN    the database's event log was altered at this record: its hash chain breaks
  MISSING  a record delivered to the channel is no longer there (deleted)
  EDITED   a record's text or metadata differs from the database's
  FORGED   a message looks like a record, but the database has no such record,
           or someone other than revokebot posted it

then a summary. It exits 0 only when everything matches. It only reads, so
it may run while revokebot runs, against a read-only replica of the database.
The bot token reads the channel's history with channels:history (a public
channel) or groups:history (a private one).

DATE is a day (2026-11-30, from midnight UTC) or an RFC 3339 time
(2026-11-30T09:00:00Z); without --since, the whole history is verified.
The database's hash chain is always checked from its first record.

`

// auditVerify is `revokebot audit verify`; args are those after "verify".
// It loads the configuration as Run does, reads the database and the audit
// channel, prints a line per finding and a summary to stdout, and returns
// an error unless everything matches. Its errors name what to fix.
func auditVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	flags.SetOutput(stderr)
	sinceFlag := flags.String("since", "", "verify the records from `DATE` on (2026-11-30, or RFC 3339)")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), auditVerifyUsage)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("audit verify: %w", err)
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("audit verify: unexpected argument %q: it takes --since DATE only", printable(clipArg(flags.Arg(0))))
	}
	since, err := parseSince(*sinceFlag)
	if err != nil {
		return err
	}

	cfg, db, err := openForAudit(ctx, "audit verify", getenv)
	if err != nil {
		return err
	}
	defer db.Close()

	api := slack.New(cfg.SlackBotToken, slack.OptionAPIURL(cfg.SlackAPIURL), slack.OptionHTTPClient(slackHTTPClient(slackCallTimeout)))
	auth, err := api.AuthTestContext(ctx)
	if err != nil {
		if bot.IsFatalAuthError(err) {
			return fmt.Errorf("slack auth.test: %w (check SLACK_BOT_TOKEN: the Bot User OAuth Token, xoxb-…, of the installed app)", err)
		}
		return fmt.Errorf("slack auth.test: %w (is Slack reachable from here? check SLACK_API_URL, proxies, firewall)", err)
	}

	period := "its whole history"
	if !since.IsZero() {
		period = "the records since " + since.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(stderr, "audit verify: comparing the audit channel %s with %s, %s\n", cfg.AuditChannel, databaseLabel(cfg.Database), period)
	report, err := bot.VerifyAudit(ctx, api, db, cfg.AuditChannel, auth.UserID, since)
	switch {
	case err != nil && ctx.Err() != nil:
		// Not context.Canceled, which Main takes for a clean stop: an
		// interrupted verification verified nothing.
		return errors.New("audit verify: interrupted before the verification ended: nothing was verified")
	case err != nil:
		return verifyError(cfg.AuditChannel, auth.User, err)
	}
	return printAuditReport(stdout, report)
}

// parseSince reads --since: empty (everything), a day, or an RFC 3339 time.
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("audit verify: --since %q is not a date: write a day, 2026-11-30 (from midnight UTC), or an RFC 3339 time, 2026-11-30T09:00:00Z", printable(clipArg(s)))
}

// clipArg shortens a command-line argument for an error message.
func clipArg(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// findingLabels are the findings' words in the output.
var findingLabels = map[bot.FindingKind]string{
	bot.FindingChain:   "CHAIN",
	bot.FindingMissing: "MISSING",
	bot.FindingEdited:  "EDITED",
	bot.FindingForged:  "FORGED",
}

// printAuditReport prints a line per finding and the summary, and returns
// an error unless everything matched.
func printAuditReport(w io.Writer, r bot.AuditReport) error {
	for _, f := range r.Findings {
		fmt.Fprintln(w, findingLine(f))
	}
	if r.Incomplete != "" {
		fmt.Fprintln(w, printable(fmt.Sprintf("INCOMPLETE %s: the channel was read back to %s only, so %d records before then were not looked for",
			r.Incomplete, r.ReadBackTo.UTC().Format(time.RFC3339), r.Unchecked)))
	}
	head := fmt.Sprintf("verified %d records against %d messages", r.Records, r.Messages)
	n := len(r.Findings)
	switch {
	case n == 0 && r.Incomplete == "":
		fmt.Fprintf(w, "%s: everything matches\n", head)
		return nil
	case n == 0:
		fmt.Fprintf(w, "%s: everything read matches, but the history was not read to its end\n", head)
		return errors.New("audit verify: the channel's history was not read to its end, so not every record was verified")
	}
	var kinds []string
	for _, k := range []bot.FindingKind{bot.FindingChain, bot.FindingMissing, bot.FindingEdited, bot.FindingForged} {
		if c := r.Count(k); c > 0 {
			kinds = append(kinds, fmt.Sprintf("%d %s", c, k))
		}
	}
	fmt.Fprintf(w, "%s: %s (%s)\n", head, countProblems(n), strings.Join(kinds, ", "))
	return fmt.Errorf("audit verify: %s: the audit channel and the database differ", countProblems(n))
}

func countProblems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}

// findingLine is one finding as printed:
//
//	MISSING record 12 request <id> at 2026-11-30T09:00:00Z: <explanation>
//
// with "record" and "request" left out when the finding names none.
func findingLine(f bot.Finding) string {
	var b strings.Builder
	b.WriteString(cmp.Or(findingLabels[f.Kind], strings.ToUpper(string(f.Kind))))
	if f.Seq != 0 {
		fmt.Fprintf(&b, " record %d", f.Seq)
	}
	if f.RequestID != "" {
		fmt.Fprintf(&b, " request %s", f.RequestID)
	}
	if !f.At.IsZero() {
		fmt.Fprintf(&b, " at %s", f.At.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, ": %s", f.Explanation)
	// A forged message's claims are anybody's text.
	return printable(b.String())
}

// verifyError words a failure to read the audit channel: what to fix.
func verifyError(channel, botName string, err error) error {
	invite := "/invite @" + cmp.Or(botName, "revokebot")
	switch slackCode(err) {
	case "not_in_channel":
		return fmt.Errorf("REVOKEBOT_AUDIT_CHANNEL %s: the bot is not a member of the channel, so it cannot read its history (not_in_channel): invite it by typing %s in the channel", channel, invite)
	case "channel_not_found":
		return fmt.Errorf("REVOKEBOT_AUDIT_CHANNEL %s: Slack finds no channel with this ID that the bot can see (channel_not_found): check the ID (channel details → About, at the bottom); if it is a private channel, invite the bot by typing %s in it", channel, invite)
	case "missing_scope":
		return fmt.Errorf("the bot token lacks the %s scope (missing_scope): audit verify reads the audit channel's history with channels:history (a public channel) or groups:history (a private one): add them as in slack-app-manifest.yaml and reinstall the app", cmp.Or(slackNeeded(err), "channels:history or groups:history"))
	}
	if bot.IsFatalAuthError(err) {
		return fmt.Errorf("audit verify: %w (check SLACK_BOT_TOKEN: the Bot User OAuth Token, xoxb-…, of the installed app)", err)
	}
	return fmt.Errorf("audit verify: %w", err)
}

// selfCheck is the periodic self-check of the audit trail
// (REVOKEBOT_AUDIT_VERIFY_EVERY): the verification of audit verify, whose
// result becomes one record, checked or tampered.
func selfCheck(api *slack.Client, db database, channel, botUserID string) func(context.Context) (bool, string, error) {
	return func(ctx context.Context) (bool, string, error) {
		// The records posted since the self-check was first enabled: older
		// ones may predate the chain and today's format (audit verify
		// --since checks them on demand). The chain itself is always
		// checked whole.
		since := time.Now()
		if audit, err := db.Get(ctx, approvals.AuditRequestID); err == nil {
			since = audit.CreatedAt
		} else if !errors.Is(err, approvals.ErrNotFound) {
			return false, "", err
		}
		r, err := bot.VerifyAudit(ctx, api, db, channel, botUserID, since)
		if err != nil {
			return false, "", err
		}
		var out strings.Builder
		fmt.Fprintf(&out, "%d records against %d messages, a chain of %d events", r.Records, r.Messages, r.Chained)
		switch {
		case r.Matches():
			fmt.Fprintf(&out, ": everything matches, from %s to %s", since.UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
			return true, out.String(), nil
		case len(r.Findings) == 0:
			// Not read to its end: nothing differs in what was read.
			fmt.Fprintf(&out, ": everything read matches, but the history was read back to %s only (%s)",
				r.ReadBackTo.UTC().Format(time.RFC3339), r.Incomplete)
			return true, out.String(), nil
		}
		fmt.Fprintf(&out, ": %s", countProblems(len(r.Findings)))
		for i, f := range r.Findings {
			if i == 5 {
				fmt.Fprintf(&out, "; and %d more (run revokebot audit verify)", len(r.Findings)-i)
				break
			}
			fmt.Fprintf(&out, "; %s", findingLine(f))
		}
		if r.Incomplete != "" {
			fmt.Fprintf(&out, "; the history was not read to its end: %s", r.Incomplete)
		}
		return false, out.String(), nil
	}
}
