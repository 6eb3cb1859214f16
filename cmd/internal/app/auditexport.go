package app

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
	"github.com/slack-go/slack"
)

const auditExportUsage = `Usage: revokebot audit export --since DATE [--until DATE] [--format json|csv]

Writes to stdout, for an auditor, every request created from --since
(inclusive) to --until (exclusive), oldest first: its decisions, the outcome
of each revocation, a link to its approval message, and its place in the
event log's hash chain. It reads the requests and the event log from
REVOKEBOT_DATABASE, opened read-only (a read-only replica or a copy will do;
its schema must be this revokebot's), and asks Slack for the links
(chat.getPermalink, with SLACK_BOT_TOKEN).

  --since DATE    required; DATE is YYYY-MM-DD (midnight UTC at its start)
                  or RFC 3339 (2026-11-01T00:00:00Z, 2026-11-01T09:00:00+01:00)
  --until DATE    default: now; so --since 2026-11-01 --until 2026-12-01 is November
  --format F      json (default: JSON Lines, one object per request) or
                  csv (a header row, then one row per target)

The formats are described in README.md ("Audit and evidence").
`

// exportRequest is one request as `revokebot audit export` writes it. The
// format is stable across versions.
//
// JSON Lines (--format json): one object per request, oldest first, each on
// one line, UTF-8, without HTML escaping, with exactly these keys in this
// order:
//
//	request_id  the request's ID
//	state       refused, pending, executing, denied, cancelled, expired, revoked or failed
//	requester   the Slack user ID of who asked
//	reason      the requester's reason ("" if none)
//	created_at  when it was asked
//	targets     one object per person, in the order named:
//	  email     the address revoked at Cloudflare
//	  outcome   waiting, revoked or failed
//	  detail    the revocation's summary or error text ("" while waiting)
//	  cf_ray    Cloudflare's ray ID, if detail quotes one (see cfRayPattern), else ""
//	  verified  the verification of a revoked target: verified, pending,
//	            unverified, unavailable, skipped, or "" (not verified)
//	reviews     the decisions, oldest first ([] if none):
//	  approver  the Slack user ID of who decided (the requester's own deny is a cancellation)
//	  decision  approve or deny
//	  reason    the decider's reason ("" if none)
//	  at        when
//	permalink   the link to the request's approval message (chat.getPermalink),
//	            or "" if it has none or Slack gave none
//	chain       the hash (64 lower-case hex digits) of the request's last
//	            event in the event log's hash chain (see approvals/chain.go)
//
// Times are RFC 3339 in UTC to the second (2026-11-02T09:00:00Z; the store
// keeps milliseconds, which are cut), or "" for none. All values are strings
// or arrays; no key is ever left out. Keys may be added at the end in a
// later version; none is renamed, removed or reordered.
//
// CSV (--format csv, RFC 4180 as encoding/csv writes it): the header row
// auditExportColumns, then one row per target, in the JSON order, with the
// request's fields repeated on each of its rows. approvers flattens the
// reviews (see flattenReviews). A value that starts with =, +, -, @, a tab
// or a carriage return is written after a ' (see spreadsheetText), so that a
// spreadsheet shows it rather than run it as a formula; the JSON has the
// text as it is.
//
// The order of the fields below is the JSON's key order.
type exportRequest struct {
	RequestID string         `json:"request_id"`
	State     string         `json:"state"`
	Requester string         `json:"requester"`
	Reason    string         `json:"reason"`
	CreatedAt string         `json:"created_at"`
	Targets   []exportTarget `json:"targets"`
	Reviews   []exportReview `json:"reviews"`
	Permalink string         `json:"permalink"`
	Chain     string         `json:"chain"`
}

// exportTarget is one target of an exportRequest.
type exportTarget struct {
	Email    string `json:"email"`
	Outcome  string `json:"outcome"`
	Detail   string `json:"detail"`
	CFRay    string `json:"cf_ray"`
	Verified string `json:"verified"`
}

// exportReview is one review of an exportRequest.
type exportReview struct {
	Approver string `json:"approver"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	At       string `json:"at"`
}

// auditExportColumns is the CSV export's header row.
var auditExportColumns = []string{"request_id", "state", "requester", "reason", "created_at",
	"email", "outcome", "detail", "cf_ray", "verified", "approvers", "permalink", "chain"}

// exportOptions are the arguments of `revokebot audit export`.
type exportOptions struct {
	// Since and Until bound the requests' creation times: [Since, Until).
	Since, Until time.Time
	// Format is "json" or "csv".
	Format string
}

// chainPage is how many links of the event log one read takes.
const chainPage = 5000

// auditExport is `revokebot audit export`; args are the arguments after
// "audit export". It loads the configuration as the bot does (environment,
// then ./.env), opens the database, and writes the requests created in the
// period to stdout (see auditExportUsage; the format is described above
// exportRequest), and notes to stderr (a link Slack did not give, and a
// summary). It records nothing: it opens the database read-only. A link
// Slack does not give is left empty, never an error.
func auditExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := parseExportArgs(args, time.Now())
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, auditExportUsage)
		return nil
	}
	if err != nil {
		fmt.Fprint(stderr, auditExportUsage)
		return fmt.Errorf("audit export: %w", err)
	}

	cfg, db, err := openForAudit(ctx, "audit export", getenv)
	if err != nil {
		return err
	}
	defer db.Close()

	requests, err := db.FindByPrefix(ctx, "", -1)
	if err != nil {
		return fmt.Errorf("REVOKEBOT_DATABASE: %w", err)
	}
	requests = inPeriod(requests, opts.Since, opts.Until)
	// The log is read after the requests: a request changed meanwhile
	// (revokebot may be running) shows the hash of an event at least as
	// recent as the state exported.
	chains, err := lastLinks(ctx, db)
	if err != nil {
		return fmt.Errorf("REVOKEBOT_DATABASE: %w", err)
	}

	links := &permalinks{
		api: slack.New(cfg.SlackBotToken,
			slack.OptionAPIURL(cfg.SlackAPIURL),
			slack.OptionHTTPClient(slackHTTPClient(slackCallTimeout))),
		stderr: stderr,
	}
	out := make([]exportRequest, 0, len(requests))
	targets := 0
	for _, r := range requests {
		link, err := links.get(ctx, r)
		if err != nil {
			return err
		}
		out = append(out, exportOf(r, link, chains[r.ID]))
		targets += len(r.Targets)
	}

	switch opts.Format {
	case "csv":
		err = writeExportCSV(stdout, out)
	default:
		err = writeExportJSON(stdout, out)
	}
	if err != nil {
		return fmt.Errorf("audit export: write the export: %w", err)
	}
	summary := fmt.Sprintf("revokebot audit export: %s (%s) created from %s to %s", plural(len(out), "request"),
		plural(targets, "target"), exportTime(opts.Since), exportTime(opts.Until))
	if links.missing > 0 {
		summary += fmt.Sprintf("; %d without the link to their approval message (see above)", links.missing)
	}
	fmt.Fprintln(stderr, summary)
	return nil
}

// parseExportArgs reads the arguments of `revokebot audit export`; now is
// --until's default. It returns flag.ErrHelp for -h or --help.
func parseExportArgs(args []string, now time.Time) (exportOptions, error) {
	flags := flag.NewFlagSet("audit export", flag.ContinueOnError)
	flags.SetOutput(io.Discard) // auditExport prints the usage
	since := flags.String("since", "", "")
	until := flags.String("until", "", "")
	format := flags.String("format", "json", "")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exportOptions{}, err
		}
		return exportOptions{}, fmt.Errorf("%v: the options are --since DATE, --until DATE and --format json|csv", err)
	}
	if flags.NArg() > 0 {
		return exportOptions{}, fmt.Errorf("unexpected argument %q: the options are --since DATE, --until DATE and --format json|csv", flags.Arg(0))
	}
	var opts exportOptions
	var err error
	if *since == "" {
		return opts, errors.New("--since is required: the first day of the period, such as --since 2026-11-01 (YYYY-MM-DD, midnight UTC) or --since 2026-11-01T09:00:00Z (RFC 3339)")
	}
	if opts.Since, err = parseExportTime("--since", *since); err != nil {
		return opts, err
	}
	opts.Until = now.UTC()
	if *until != "" {
		if opts.Until, err = parseExportTime("--until", *until); err != nil {
			return opts, err
		}
	}
	if !opts.Since.Before(opts.Until) {
		return opts, fmt.Errorf("--since %s is not before --until %s: the period is empty (--until is exclusive, and defaults to now)",
			exportTime(opts.Since), exportTime(opts.Until))
	}
	switch opts.Format = strings.ToLower(*format); opts.Format {
	case "json", "csv":
	default:
		return opts, fmt.Errorf("--format %q: unknown format: use json (JSON Lines, the default) or csv", *format)
	}
	return opts, nil
}

// parseExportTime reads a date (YYYY-MM-DD: midnight UTC at its start) or
// an RFC 3339 time, given as the value of the option name.
func parseExportTime(name, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q: not a date: write YYYY-MM-DD (midnight UTC), such as 2026-11-01, or an RFC 3339 time with its offset, such as 2026-11-01T09:00:00Z", name, v)
}

// inPeriod returns the requests created in [since, until), in their order.
func inPeriod(rs []approvals.Request, since, until time.Time) []approvals.Request {
	var out []approvals.Request
	for _, r := range rs {
		if r.ID != approvals.AuditRequestID && !r.CreatedAt.Before(since) && r.CreatedAt.Before(until) {
			out = append(out, r)
		}
	}
	return out
}

// lastLinks returns, per request ID, the hash of the request's last event
// in the event log, which it reads a page at a time.
func lastLinks(ctx context.Context, db approvals.Store) (map[string]string, error) {
	last := map[string]string{}
	var from int64
	for {
		links, err := db.Chain(ctx, from, chainPage)
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			if id := l.Event.Request.ID; id != "" {
				last[id] = l.Hash
			}
			from = l.Seq + 1
		}
		if len(links) < chainPage {
			return last, nil
		}
	}
}

// exportOf is request r as exported, with the link to its approval message
// and its chain hash.
func exportOf(r approvals.Request, permalink, chain string) exportRequest {
	e := exportRequest{
		RequestID: r.ID,
		State:     string(r.State()),
		Requester: r.Requester,
		Reason:    r.Reason,
		CreatedAt: exportTime(r.CreatedAt),
		Targets:   make([]exportTarget, 0, len(r.Targets)),
		Reviews:   make([]exportReview, 0, len(r.Reviews)),
		Permalink: permalink,
		Chain:     chain,
	}
	for _, t := range r.Targets {
		e.Targets = append(e.Targets, exportTarget{
			Email:    t.Email,
			Outcome:  string(t.State),
			Detail:   t.Outcome,
			CFRay:    cfRay(t.Outcome),
			Verified: string(t.Check.State),
		})
	}
	for _, rv := range r.Reviews {
		e.Reviews = append(e.Reviews, exportReview{
			Approver: rv.By,
			Decision: rv.Decision.String(),
			Reason:   rv.Reason,
			At:       exportTime(rv.At),
		})
	}
	return e
}

// exportTime is t in RFC 3339, UTC, to the second; "" for the zero time.
func exportTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// cfRayPattern finds a Cloudflare ray ID (16 hex digits, and the data
// centre's code when the CF-Ray header gives it: 8e2f4c1a9b3d7e60-AMS) in a
// revocation's text, after "cf-ray", "ray_id" or "Ray ID" (any case, then
// an optional quote and colon or equals sign), as an error quoting Cloudflare's
// header, its JSON error body, or its error page would carry it.
//
// revokebot's Cloudflare client does not record the CF-Ray header today: its
// summaries carry none, and its errors only when Cloudflare's answer quotes one
// in the part of the body the error keeps.
var cfRayPattern = regexp.MustCompile(`(?i)\b(?:cf-ray|ray[ _]id)"?\s*[:=]?\s*"?([0-9a-f]{16}(?:-[a-z]{3})?)\b`)

// cfRay returns the first ray ID in text, or "".
func cfRay(text string) string {
	if m := cfRayPattern.FindStringSubmatch(text); m != nil {
		return m[1]
	}
	return ""
}

// writeExportJSON writes the export as JSON Lines.
func writeExportJSON(w io.Writer, rs []exportRequest) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// writeExportCSV writes the export as CSV: the header, then one row per target.
func writeExportCSV(w io.Writer, rs []exportRequest) error {
	cw := csv.NewWriter(w)
	cw.Write(auditExportColumns)
	for _, r := range rs {
		approvers := flattenReviews(r.Reviews)
		for _, t := range r.Targets {
			row := []string{r.RequestID, r.State, r.Requester, r.Reason, r.CreatedAt,
				t.Email, t.Outcome, t.Detail, t.CFRay, t.Verified, approvers, r.Permalink, r.Chain}
			for i := range row {
				row[i] = spreadsheetText(row[i])
			}
			cw.Write(row)
		}
	}
	cw.Flush()
	return cw.Error()
}

// spreadsheetText is s, after a ' if a spreadsheet would read s as a
// formula (a requester's reason such as =HYPERLINK(…)): OWASP's advice
// against CSV injection.
func spreadsheetText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// flattenReviews is the CSV export's approvers column: the reviews, oldest
// first, separated by ";", each written approver:decision:at, then, if it
// has a reason, ":" and the reason, in which "\" and ";" are escaped with a
// "\":
//
//	U04APP:approve:2026-11-02T09:03:00Z;U05APP:deny:2026-11-02T09:06:00Z:not her laptop\; ask IT
//
// To read it back: split at each ";" not escaped; in each part, the
// approver and the decision end at the first and the second ":", the time
// is the 20 characters that follow, and the reason, if any, follows the
// next ":".
func flattenReviews(rvs []exportReview) string {
	parts := make([]string, 0, len(rvs))
	escape := strings.NewReplacer(`\`, `\\`, `;`, `\;`)
	for _, rv := range rvs {
		p := rv.Approver + ":" + rv.Decision + ":" + rv.At
		if rv.Reason != "" {
			p += ":" + escape.Replace(rv.Reason)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ";")
}

// permalinks asks Slack for the links to approval messages, one request at
// a time (nothing is cached: a message deleted since shows as such).
type permalinks struct {
	api    *slack.Client
	stderr io.Writer
	// down, once set, says why Slack is not asked again: an answer that
	// every later call would get too (no answer at all, a refused token).
	down string
	// missing counts the requests with a message but no link.
	missing int
}

// permalinkAttempts bounds the calls for one link when Slack rate limits
// them; permalinkMaxWait bounds one wait.
const (
	permalinkAttempts = 3
	permalinkMaxWait  = time.Minute
)

// get returns the link to r's approval message, or "" if it has none or
// Slack gave none (then it says why on stderr). It returns an error only
// when ctx ends.
func (p *permalinks) get(ctx context.Context, r approvals.Request) (string, error) {
	if r.Channel == "" || r.MessageTS == "" {
		return "", nil
	}
	if p.down != "" {
		p.missing++
		return "", nil
	}
	for attempt := 1; ; attempt++ {
		link, err := p.api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: r.Channel, Ts: r.MessageTS})
		if err == nil && link != "" {
			return link, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		rl, limited := errors.AsType[*slack.RateLimitedError](err)
		if limited && attempt < permalinkAttempts {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(min(max(rl.RetryAfter, time.Second), permalinkMaxWait)):
			}
			continue
		}
		p.missing++
		problem := permalinkProblem(err)
		if err != nil && (!slackAnswered(err) || bot.IsFatalAuthError(err)) {
			p.down = problem
			fmt.Fprintf(p.stderr, "revokebot audit export: request %s: no link to its approval message (%s); Slack is not asked again, so the later links are empty too\n", r.ID, problem)
			return "", nil
		}
		fmt.Fprintf(p.stderr, "revokebot audit export: request %s: no link to its approval message %s in %s (%s)\n", r.ID, r.MessageTS, r.Channel, problem)
		return "", nil
	}
}

// permalinkProblem says in a few words why chat.getPermalink gave no link.
func permalinkProblem(err error) string {
	var rl *slack.RateLimitedError
	switch {
	case err == nil:
		return "chat.getPermalink answered without a link"
	case bot.IsFatalAuthError(err):
		return fmt.Sprintf("Slack refuses SLACK_BOT_TOKEN: %s", printable(err.Error()))
	case errors.As(err, &rl):
		return fmt.Sprintf("Slack kept rate limiting chat.getPermalink after %d attempts", permalinkAttempts)
	case slackCode(err) != "":
		return "Slack says " + slackCode(err)
	case isTimeout(err):
		return fmt.Sprintf("Slack did not answer chat.getPermalink within %s (check SLACK_API_URL and the network)", slackCallTimeout)
	default:
		return fmt.Sprintf("chat.getPermalink failed: %s (check SLACK_API_URL and the network)", printable(err.Error()))
	}
}
