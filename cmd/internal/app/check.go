package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/gorilla/websocket"
	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/cloudflare"
	"github.com/slack-go/slack"
)

// checkOptions bounds the waits of `revokebot check`.
type checkOptions struct {
	// CallTimeout bounds each Slack and Cloudflare API call, and opening the
	// database.
	CallTimeout time.Duration
	// HelloTimeout bounds the wait for Slack's hello on the Socket Mode websocket.
	HelloTimeout time.Duration
	// Budget bounds all the Slack and Cloudflare calls together; the checks
	// left when it runs out are skipped. (The database is checked anyway,
	// within CallTimeout.)
	Budget time.Duration
}

// defaultCheckOptions keep the whole check under half a minute however the
// network fails: a service that does not answer a call within CallTimeout is
// not called again (see checker.slackDown), and all calls share Budget.
var defaultCheckOptions = checkOptions{CallTimeout: 5 * time.Second, HelloTimeout: 5 * time.Second, Budget: 20 * time.Second}

// tokenExpiryWarning is how soon before its expiry a Cloudflare token is
// reported.
const tokenExpiryWarning = 14 * 24 * time.Hour

// check is `revokebot check`: it loads the configuration as the bot would
// (environment, then ./.env) and tries everything the bot depends on, printing
// one line per check to stdout. It returns an error if any check failed.
func check(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	return runCheck(ctx, getenv, stdout, defaultCheckOptions)
}

// runCheck is check with explicit waits, for tests; zero fields of opts
// take those of defaultCheckOptions.
func runCheck(ctx context.Context, getenv func(string) string, stdout io.Writer, opts checkOptions) error {
	opts.CallTimeout = cmp.Or(opts.CallTimeout, defaultCheckOptions.CallTimeout)
	opts.HelloTimeout = cmp.Or(opts.HelloTimeout, defaultCheckOptions.HelloTimeout)
	opts.Budget = cmp.Or(opts.Budget, defaultCheckOptions.Budget)
	r := &checkReport{w: stdout}
	fmt.Fprintf(stdout, "revokebot %s: checking the configuration, Slack, Cloudflare and the database\n", versionString())

	getenv, err := withDotEnv(getenv, ".env")
	if err == nil {
		var cfg config
		if cfg, err = loadConfig(getenv); err == nil {
			c := &checker{cfg: cfg, opts: opts, r: r}
			c.run(ctx)
			return r.finish()
		}
	}
	for _, e := range splitErrors(err) {
		r.fail("configuration", "%v", e)
	}
	r.skip("Slack, Cloudflare and database", "not checked: fix the configuration first (see README.md, \"Configuration reference\")")
	return r.finish()
}

// splitErrors undoes errors.Join, so each problem gets its own line.
func splitErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// checkStatus is the outcome of one check.
type checkStatus int

const (
	checkOK checkStatus = iota
	checkWarn
	checkFail
	checkSkip
)

var checkLabels = [...]string{checkOK: "ok", checkWarn: "WARN", checkFail: "FAIL", checkSkip: "skip"}

// checkReport prints check results, one line each, and counts them. Every
// line passes through redact, so no secret is printed even if an error quotes one.
type checkReport struct {
	w       io.Writer
	secrets []string
	counts  [len(checkLabels)]int
}

// ok, warn, fail and skip print a line about what with that status.
func (r *checkReport) ok(what, format string, args ...any) {
	r.line(checkOK, what, format, args...)
}

func (r *checkReport) warn(what, format string, args ...any) {
	r.line(checkWarn, what, format, args...)
}

func (r *checkReport) fail(what, format string, args ...any) {
	r.line(checkFail, what, format, args...)
}

func (r *checkReport) skip(what, format string, args ...any) {
	r.line(checkSkip, what, format, args...)
}

// line prints "<status> <what>: <detail>", with the status padded to 4 columns.
func (r *checkReport) line(s checkStatus, what, format string, args ...any) {
	r.counts[s]++
	text := r.redact(fmt.Sprintf(format, args...))
	fmt.Fprintf(r.w, "%-4s %s: %s\n", checkLabels[s], what, text)
}

// redact replaces every configured secret in s, and makes s one printable line.
func (r *checkReport) redact(s string) string {
	for _, secret := range r.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "REDACTED")
		}
	}
	return printable(s)
}

// finish prints the summary and returns an error if any check failed.
func (r *checkReport) finish() error {
	total := 0
	for _, n := range r.counts {
		total += n
	}
	failed := r.counts[checkFail]
	summary := fmt.Sprintf("%d checks: %d ok, %d failed, %d warnings, %d skipped", total,
		r.counts[checkOK], failed, r.counts[checkWarn], r.counts[checkSkip])
	if failed > 0 {
		fmt.Fprintf(r.w, "%s. Fix the FAIL lines, then run revokebot check again.\n", summary)
		return fmt.Errorf("check: %d of %d checks failed", failed, total)
	}
	if r.counts[checkWarn] > 0 {
		fmt.Fprintf(r.w, "%s. Nothing failed; read the WARN lines.\n", summary)
		return nil
	}
	fmt.Fprintf(r.w, "%s. Ready to run.\n", summary)
	return nil
}

// printable keeps text from Slack, Cloudflare or errors on one printable line.
func printable(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
}

// checker runs the checks of one valid configuration, in a fixed order.
type checker struct {
	cfg  config
	opts checkOptions
	r    *checkReport

	api     *slack.Client
	botName string // the bot's user name, for "/invite @…"
	teamID  string // the workspace's (auth.test); a user of another team is external

	// parent is the context run was called with; budget ends with it or when
	// opts.Budget is spent.
	parent, budget context.Context
	// slackDown, once set, says why Slack's Web API is not called again: an
	// earlier call did not reach Slack's API (a timeout, a network failure, an
	// HTTP error), so later ones would fail, or hang, alike.
	slackDown string
}

// run runs every check in order. A check that needs another one to pass (the
// channels and groups need the bot token; the account needs the Cloudflare
// token) is skipped when that one fails. Every call is bounded (see
// checkOptions), so run ends within opts.Budget plus one opts.CallTimeout
// (for the database), whatever hangs.
func (c *checker) run(ctx context.Context) {
	c.r.secrets = []string{c.cfg.SlackAppToken, c.cfg.SlackBotToken, c.cfg.Cloudflare.APIToken, c.cfg.Cloudflare.APIKey}
	c.r.ok("configuration", "valid: %s", c.describeConfig())

	budget, cancel := context.WithTimeout(ctx, c.opts.Budget)
	defer cancel()
	c.parent, c.budget = ctx, budget

	c.api = slack.New(c.cfg.SlackBotToken,
		slack.OptionAppLevelToken(c.cfg.SlackAppToken),
		slack.OptionAPIURL(c.cfg.SlackAPIURL),
		slack.OptionHTTPClient(&http.Client{Timeout: c.opts.CallTimeout}))
	botOK := c.checkBotToken(budget)
	c.checkSocketMode(budget)
	c.checkChannel(budget, botOK, "audit channel", c.cfg.AuditChannel)
	if c.cfg.ApprovalChannel != "" {
		c.checkChannel(budget, botOK, "approval channel", c.cfg.ApprovalChannel)
	} else {
		c.r.ok("approval channel", "not set: approval messages go to the channel where /revoke is typed, so invite the bot to each such channel")
	}
	c.checkAudiences(budget, botOK)

	// One retry at most, within one call's time: a check should answer quickly.
	cfOpts := c.cfg.Cloudflare
	cfOpts.Retry = cloudflare.RetryPolicy{MaxAttempts: 2, MaxElapsed: c.opts.CallTimeout, CallTimeout: c.opts.CallTimeout}
	cf, err := cloudflare.New(cfOpts)
	switch {
	case err != nil:
		c.r.fail("Cloudflare", "%v", err)
		c.r.skip(c.scopeName(), "not checked: fix the Cloudflare configuration first")
	case c.checkCloudflareToken(budget, cf) && c.checkCloudflareScope(budget, cf):
		c.noteRevokePermission()
		c.checkContainment(budget, cf)
	}
	if c.cfg.Cloudflare.ZoneID != "" {
		c.noteZoneRoute()
	}
	c.checkDatabase(ctx)
}

// outOfTime reports whether the check may not call Slack or Cloudflare any
// more, and if so prints a skip line for what.
func (c *checker) outOfTime(what string) bool {
	switch {
	case c.parent.Err() != nil:
		c.r.skip(what, "not checked: interrupted")
	case c.budget.Err() != nil:
		c.r.skip(what, "not checked: revokebot check stops calling Slack and Cloudflare after %s, and the calls above took it all", c.opts.Budget)
	default:
		return false
	}
	return true
}

// slackSkipped reports whether what, a check that calls Slack's Web API,
// must be skipped, and if so prints why.
func (c *checker) slackSkipped(what string) bool {
	if c.outOfTime(what) {
		return true
	}
	if c.slackDown != "" {
		c.r.skip(what, "not checked: %s", c.slackDown)
		return true
	}
	return false
}

// slackFailed describes a failed call of a Slack Web API method for a FAIL
// line. If the call did not get an answer from Slack's API itself, later
// calls are skipped (see slackDown).
func (c *checker) slackFailed(method string, err error) string {
	if !slackAnswered(err) {
		c.slackDown = fmt.Sprintf("Slack's Web API did not answer %s (see above), so it is not called again", method)
	}
	return c.slackProblem(method, err)
}

// describeConfig summarizes the configuration, without secrets.
func (c *checker) describeConfig() string {
	scope := "Cloudflare account " + c.cfg.Cloudflare.AccountID
	if c.cfg.Cloudflare.ZoneID != "" {
		scope = "Cloudflare zone " + c.cfg.Cloudflare.ZoneID
	}
	dry := "dry run off"
	if c.cfg.DryRun {
		dry = "DRY RUN on: Cloudflare is never called"
	}
	return fmt.Sprintf("%s, requests expire after %s, %s", scope, c.cfg.RequestTTL, dry)
}

// callCtx bounds one API call.
func (c *checker) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.CallTimeout)
}

// checkBotToken calls auth.test with the bot token and reports whether it works.
func (c *checker) checkBotToken(ctx context.Context) bool {
	const what = "Slack bot token"
	if c.slackSkipped(what) {
		return false
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	resp, err := c.api.AuthTestContext(ctx)
	switch {
	case err == nil:
		c.botName, c.teamID = resp.User, resp.TeamID
		c.r.ok(what, "auth.test: team %q (%s), bot user @%s (%s)", resp.Team, resp.TeamID, resp.User, resp.UserID)
		return true
	case bot.IsFatalAuthError(err):
		c.r.fail(what, "Slack refuses SLACK_BOT_TOKEN (auth.test: %v): use the Bot User OAuth Token (xoxb-…) from your Slack app's OAuth & Permissions page, and reinstall the app if it was removed", err)
	default:
		c.r.fail(what, "auth.test failed: %s", c.slackFailed("auth.test", err))
	}
	return false
}

// checkSocketMode opens a Socket Mode connection with the app token, as the
// bot does, waits for Slack's hello, and closes it again.
func (c *checker) checkSocketMode(ctx context.Context) {
	const what = "Slack app token"
	if c.slackSkipped(what) {
		return
	}
	octx, cancel := c.callCtx(ctx)
	defer cancel()
	_, wsURL, err := c.api.StartSocketModeContext(octx)
	switch {
	case err == nil:
	case bot.IsFatalAuthError(err):
		c.r.fail(what, "Slack refuses SLACK_APP_TOKEN (apps.connections.open: %v): use an app-level token (xapp-…) with the connections:write scope, from your Slack app's Basic Information page", err)
		return
	case !slackAnswered(err):
		c.r.fail(what, "apps.connections.open failed: %s", c.slackFailed("apps.connections.open", err))
		return
	default:
		c.r.fail(what, "apps.connections.open failed: %s: check that Socket Mode is on (Settings → Socket Mode) and that SLACK_APP_TOKEN is this app's app-level token with connections:write", c.slackFailed("apps.connections.open", err))
		return
	}
	// The URL carries a connection ticket: keep it, and the ticket alone
	// (an error may quote it escaped or in part), out of the output.
	c.r.secrets = append(c.r.secrets, wsURL)
	if u, err := url.Parse(wsURL); err == nil {
		for _, values := range u.Query() {
			for _, v := range values {
				if len(v) >= 8 {
					c.r.secrets = append(c.r.secrets, v, url.QueryEscape(v))
				}
			}
		}
	}
	hello, err := awaitHello(ctx, wsURL, c.opts.HelloTimeout)
	if err != nil {
		c.r.fail(what, "Socket Mode: %v: check that this machine may open outbound websockets (wss://) to Slack, through any proxy; the token itself was accepted", err)
		return
	}
	others := ""
	if hello.NumConnections > 1 {
		others = fmt.Sprintf("; %d connections were open, so another one (a running revokebot?) shares the app", hello.NumConnections)
	}
	c.r.ok(what, "Socket Mode connected and Slack said hello (app %s%s)", hello.ConnectionInfo.AppID, others)
}

// socketHello is the first message Slack sends on a Socket Mode websocket.
type socketHello struct {
	Type           string `json:"type"`
	Reason         string `json:"reason"` // of a "disconnect"
	NumConnections int    `json:"num_connections"`
	ConnectionInfo struct {
		AppID string `json:"app_id"`
	} `json:"connection_info"`
}

// errNoHello reports a websocket on which Slack said nothing in time.
var errNoHello = errors.New("the websocket opened, but Slack sent no hello")

// awaitHello dials the Socket Mode websocket at wsURL, waits up to timeout
// for Slack's hello, and closes the connection. The connection is closed at
// once: any envelope Slack sent to it instead of to a running bot would not
// be answered.
func awaitHello(ctx context.Context, wsURL string, timeout time.Duration) (*socketHello, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dialer := websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: timeout}
	conn, resp, err := dialer.DialContext(ctx, wsURL, http.Header{"Origin": {"https://api.slack.com"}})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open the websocket: %w", err)
	}
	defer conn.Close()
	defer conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	// An interrupt ends the wait at once.
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(deadline)
	}
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if cerr := context.Cause(ctx); cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
					return nil, cerr
				}
				return nil, fmt.Errorf("%w within %s", errNoHello, timeout)
			}
			return nil, fmt.Errorf("the websocket closed before Slack said hello: %w", err)
		}
		var m socketHello
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch m.Type {
		case "hello":
			return &m, nil
		case "disconnect":
			return nil, fmt.Errorf("Slack sent disconnect (%s) instead of hello", m.Reason)
		}
	}
}

// checkChannel checks with conversations.info that channel exists and the bot
// is a member.
func (c *checker) checkChannel(ctx context.Context, botOK bool, role, channel string) {
	what := role + " " + channel
	if !botOK {
		c.r.skip(what, "not checked: needs a working SLACK_BOT_TOKEN")
		return
	}
	if c.slackSkipped(what) {
		return
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	ch, err := c.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: channel})
	invite := fmt.Sprintf("/invite @%s", cmp.Or(c.botName, "revokebot"))
	switch {
	case err == nil && ch.IsArchived:
		c.r.fail(what, "#%s is archived: unarchive it, or use another channel", ch.Name)
	case err == nil && !ch.IsMember:
		c.r.fail(what, "the bot is not a member of #%s: invite it by typing %s in #%s", ch.Name, invite, ch.Name)
	case err == nil:
		kind := "public"
		if ch.IsPrivate {
			kind = "private"
		}
		c.r.ok(what, "#%s (%s), the bot is a member", ch.Name, kind)
	case slackCode(err) == "channel_not_found":
		c.r.fail(what, "Slack finds no channel %s that the bot can see (channel_not_found): check the ID (channel details → About, at the bottom); if it is a private channel, invite the bot by typing %s in it", channel, invite)
	case slackCode(err) == "missing_scope":
		c.r.warn(what, "not checked: the bot token lacks the %s scope (missing_scope). Only revokebot check uses channels:read (public channels) and groups:read (private ones): add them as in slack-app-manifest.yaml and reinstall the app, or make sure yourself that the bot is in the channel", cmp.Or(slackNeeded(err), "channels:read or groups:read"))
	default:
		c.r.fail(what, "conversations.info failed: %s", c.slackFailed("conversations.info", err))
	}
}

// The variables that list who may do what.
const (
	varRequesters = "REVOKEBOT_REQUESTERS"
	varApprovers  = "REVOKEBOT_APPROVERS"
	varEscalation = "REVOKEBOT_ESCALATION_APPROVERS"
	varNotify     = "REVOKEBOT_NOTIFY"
)

// maxUserLookups caps how many people revokebot check looks up with
// users.info: those listed directly first, then the members of the approver
// and escalation user groups.
const maxUserLookups = 50

// userLookupWorkers is how many users.info calls run at once, so that 50
// lookups take a few round trips rather than fifty.
const userLookupWorkers = 4

// audience is one configured audience, as checkAudiences reports it.
type audience struct {
	role     string // "requesters", "approvers", "escalation approvers", "notify"
	variable string
	a        approvals.Audience
}

// audiences are the configured audiences, in the order they are reported;
// the optional ones only when set.
func (c *checker) audiences() []audience {
	list := []audience{
		{"requesters", varRequesters, c.cfg.Policy.Requesters},
		{"approvers", varApprovers, c.cfg.Policy.Approvers},
	}
	if !c.cfg.EscalationApprovers.Empty() {
		list = append(list, audience{"escalation approvers", varEscalation, c.cfg.EscalationApprovers})
	}
	if !c.cfg.Notify.Empty() {
		list = append(list, audience{"notify", varNotify, c.cfg.Notify})
	}
	return list
}

// checkAudiences reports who may request, approve and be notified,
// resolves each configured user group once, then looks the people up
// (checkPeople).
func (c *checker) checkAudiences(ctx context.Context, botOK bool) {
	list := c.audiences()
	var groups []string
	roles := map[string][]string{}
	for _, a := range list {
		detail := fmt.Sprintf("%s, %s", plural(len(a.a.Users), "user"), plural(len(a.a.Groups), "user group"))
		switch a.variable {
		case varApprovers:
			detail += fmt.Sprintf("; a request needs %s (REVOKEBOT_REQUIRED_APPROVALS), never the requester's", plural(c.cfg.RequiredApprovals, "approval"))
		case varEscalation:
			detail += fmt.Sprintf("; they may approve a request that has waited %s (REVOKEBOT_ESCALATE_AFTER)", c.cfg.EscalateAfter)
		case varNotify:
			detail += "; mentioned on every approval message, which gives no permission"
		}
		c.r.ok(a.role, "%s", detail)
		for _, g := range a.a.Groups {
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
			if !slices.Contains(roles[g], a.role) {
				roles[g] = append(roles[g], a.role)
			}
		}
	}
	members := map[string][]string{} // of the groups resolved
	for _, g := range groups {
		if m, ok := c.checkGroup(ctx, botOK, g, roles[g]); ok {
			members[g] = m
		}
	}
	c.checkPeople(ctx, botOK, list, members)
}

// checkGroup resolves one user group with usergroups.users.list, as the bot
// does, and returns its members if that worked. A group that is only
// mentioned (REVOKEBOT_NOTIFY) gives nobody any permission, so its
// problems are warnings.
func (c *checker) checkGroup(ctx context.Context, botOK bool, group string, roles []string) ([]string, bool) {
	what := fmt.Sprintf("user group %s (%s)", group, strings.Join(roles, " and "))
	if !botOK {
		c.r.skip(what, "not checked: needs a working SLACK_BOT_TOKEN")
		return nil, false
	}
	if c.slackSkipped(what) {
		return nil, false
	}
	acting := slices.DeleteFunc(slices.Clone(roles), func(r string) bool { return r == "notify" })
	bad, unused := c.r.fail, "the bot refuses every member of the group"
	if len(acting) == 0 {
		bad, unused = c.r.warn, "the mention of the group (REVOKEBOT_NOTIFY) notifies nobody"
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	members, err := c.api.GetUserGroupMembersContext(ctx, group)
	switch {
	case err == nil && len(members) == 0 && len(acting) == 0:
		c.r.warn(what, "has no members: mentioning it notifies nobody")
		return members, true
	case err == nil && len(members) == 0:
		c.r.warn(what, "has no members: nobody is one of the %s through it", strings.Join(acting, " and "))
		return members, true
	case err == nil:
		c.r.ok(what, "%s", plural(len(members), "member"))
		return members, true
	case slackCode(err) == "no_such_subteam":
		bad(what, "Slack has no user group %s (no_such_subteam): check the ID (README.md, \"Slack app setup\", user group ID)", group)
	case slackCode(err) == "missing_scope":
		bad(what, "the bot token lacks the usergroups:read scope (missing_scope): add it and reinstall the app; without it %s", unused)
	case slackCode(err) == "plan_upgrade_required":
		bad(what, "your Slack plan has no user groups (plan_upgrade_required): list user IDs instead")
	default:
		c.r.fail(what, "usergroups.users.list failed: %s", c.slackFailed("usergroups.users.list", err))
	}
	return nil, false
}

// person is someone revokebot check looks up with users.info.
type person struct {
	id     string
	vars   []string // the variables that list them directly
	groups []string // the approver and escalation user groups they are a member of

	// What users.info said, once done.
	user *slack.User
	err  error
	done bool
}

// acting are the variables, of p.vars, that let p request or approve.
func (p *person) acting() []string {
	return slices.DeleteFunc(slices.Clone(p.vars), func(v string) bool { return v == varNotify })
}

// notFound reports whether Slack knows no such user.
func (p *person) notFound() bool { return p.done && slackCode(p.err) == "user_not_found" }

// refusal says why the bot refuses u as a requester or approver, as
// approvals.Policy does (bot.GroupCache.Person): short is a word or two,
// long the full reason; both "" if it does not.
func (c *checker) refusal(u *slack.User) (short, long string) {
	switch {
	case u.TeamID != c.teamID:
		return "another organisation", fmt.Sprintf("is from another organisation (team_id %s, not this workspace's %s, as with Slack Connect)", u.TeamID, c.teamID)
	case u.IsUltraRestricted:
		return "guest", "is a single-channel guest (is_ultra_restricted)"
	case u.IsRestricted:
		return "guest", "is a multi-channel guest (is_restricted)"
	case u.IsBot:
		return "bot", "is a bot"
	case u.Deleted:
		return "deactivated", "is deactivated"
	}
	return "", ""
}

// eligible reports whether p was looked up and may act, if listed.
func (c *checker) eligible(p *person) bool {
	if p == nil || !p.done || p.err != nil {
		return false
	}
	short, _ := c.refusal(p.user)
	return short == ""
}

// checkPeople looks up, with users.info, the people listed directly in the
// audiences, then the members of the approver and escalation user groups
// (maxUserLookups in all), as the bot looks up everyone who requests or
// decides. It reports each listed person the bot would refuse, whether
// users.info shows emails (users:read.email), and whether enough approvers
// are eligible for REVOKEBOT_REQUIRED_APPROVALS.
func (c *checker) checkPeople(ctx context.Context, botOK bool, list []audience, members map[string][]string) {
	const what, emailWhat, quorumWhat = "listed users", "users:read.email", "approval quorum"
	if !botOK {
		for _, w := range []string{what, emailWhat, quorumWhat} {
			c.r.skip(w, "not checked: needs a working SLACK_BOT_TOKEN")
		}
		return
	}
	var people []*person
	byID := map[string]*person{}
	add := func(id string) *person {
		if p := byID[id]; p != nil {
			return p
		}
		p := &person{id: id}
		byID[id] = p
		people = append(people, p)
		return p
	}
	for _, a := range list {
		for _, id := range a.a.Users {
			if p := add(id); !slices.Contains(p.vars, a.variable) {
				p.vars = append(p.vars, a.variable)
			}
		}
	}
	direct := len(people)
	for _, a := range list {
		if a.variable != varApprovers && a.variable != varEscalation {
			continue
		}
		for _, g := range a.a.Groups {
			for _, id := range members[g] {
				if p := add(id); !slices.Contains(p.groups, g) {
					p.groups = append(p.groups, g)
				}
			}
		}
	}
	if c.slackSkipped(what) {
		c.r.skip(emailWhat, "not checked: needs users.info")
		c.r.skip(quorumWhat, "not checked: needs users.info")
		return
	}
	lookup := people[:min(len(people), maxUserLookups)]
	cutShort := c.lookUpPeople(c.budget, lookup)

	// One line per person listed directly whom the bot would refuse, or
	// whom Slack does not know.
	var stopErr error // the first failure that stopped the lookups
	refused := 0
	for _, p := range lookup {
		switch {
		case !p.done:
		case p.notFound():
			if len(p.vars) > 0 {
				c.reportNotFound(p)
			}
		case p.err != nil:
			if stopErr == nil {
				stopErr = p.err
			}
		case len(p.vars) > 0:
			if c.reportPerson(p) {
				refused++
			}
		}
	}
	looked, lookedDirect := 0, 0
	for i, p := range lookup {
		if p.done && (p.err == nil || p.notFound()) {
			looked++
			if i < direct {
				lookedDirect++
			}
		}
	}

	switch {
	case slackCode(stopErr) == "missing_scope":
		c.r.fail(what, "users.info answers missing_scope: the bot token lacks %s (and users:read.email, which comes with it). The bot looks up everyone who requests or decides, so without users:read it refuses every requester and approver (\"Your permission could not be checked right now\"). Add users:read and users:read.email as in slack-app-manifest.yaml (or paste that manifest), then reinstall the app (OAuth & Permissions → Reinstall to Workspace)",
			cmp.Or(slackNeeded(stopErr), "users:read"))
		c.r.skip(emailWhat, "not checked: needs users:read (see above)")
		c.r.skip(quorumWhat, "not checked: needs users:read (see above); without it the bot refuses every approver")
		return
	case stopErr != nil:
		c.r.fail(what, "users.info failed: %s", c.slackFailed("users.info", stopErr))
	default:
		status := checkOK
		whom := fmt.Sprintf("%d people", looked)
		if looked == 1 {
			whom = "1 person"
		}
		detail := fmt.Sprintf("looked up %s with users.info: %d listed directly", whom, lookedDirect)
		if n := looked - lookedDirect; n > 0 {
			detail += fmt.Sprintf(", and %d more who are in approver (or escalation approver) user groups only", n)
		}
		if refused > 0 {
			detail += fmt.Sprintf("; the bot refuses %d of those listed directly (see above)", refused)
		}
		if len(people) > len(lookup) {
			detail += fmt.Sprintf("; revokebot check looks up at most %d people, so %d more (%d of them listed directly) are not checked",
				maxUserLookups, len(people)-len(lookup), max(0, direct-len(lookup)))
		}
		if cutShort > 0 {
			status = checkWarn
			detail += fmt.Sprintf("; %d more not looked up: %s", cutShort, c.lookupCutShort())
		}
		c.r.line(status, what, "%s", detail)
	}

	c.checkEmails(emailWhat, lookup, stopErr)
	c.checkQuorum(quorumWhat, list, members, byID)
}

// lookUpPeople calls users.info for each person, a few at a time, within a
// third of the check's budget (so that the checks after it keep their
// time), and returns how many were not looked up in that time. The lookups
// stop at the first failure other than user_not_found: the others would
// fail alike.
func (c *checker) lookUpPeople(ctx context.Context, people []*person) (cutShort int) {
	window, cancel := context.WithTimeout(ctx, max(c.opts.Budget/3, c.opts.CallTimeout+time.Second))
	defer cancel()
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range min(userLookupWorkers, len(people)) {
		wg.Go(func() {
			for !stop.Load() && window.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(people) {
					return
				}
				p := people[i]
				call, cancel := c.callCtx(window)
				u, err := c.api.GetUserInfoContext(call, p.id)
				cancel()
				if err != nil && !slackAnswered(err) && window.Err() != nil {
					return // cut short by the window, not by Slack
				}
				p.user, p.err, p.done = u, err, true
				if err != nil && slackCode(err) != "user_not_found" {
					stop.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if window.Err() == nil {
		return 0
	}
	for _, p := range people {
		if !p.done {
			cutShort++
		}
	}
	return cutShort
}

// lookupCutShort says why lookUpPeople stopped early.
func (c *checker) lookupCutShort() string {
	if c.parent.Err() != nil {
		return "interrupted"
	}
	return fmt.Sprintf("revokebot check gives users.info at most a third of its %s, and Slack was slow; run it again", c.opts.Budget)
}

// reportNotFound reports a person listed directly whom Slack does not know.
func (c *checker) reportNotFound(p *person) {
	what := fmt.Sprintf("user %s (%s)", p.id, strings.Join(p.vars, ", "))
	if acting := p.acting(); len(acting) > 0 {
		c.r.fail(what, "Slack finds no such user (user_not_found): check the ID in %s (in Slack: their profile → ⋯ → Copy member ID); as it is, that entry lets nobody in",
			strings.Join(acting, " and "))
		return
	}
	c.r.warn(what, "Slack finds no such user (user_not_found): check the ID in REVOKEBOT_NOTIFY (in Slack: their profile → ⋯ → Copy member ID); as it is, that mention notifies nobody")
}

// reportPerson reports a person listed directly, looked up, if the bot
// would refuse them (it reports whether it does), or if mentioning them
// (REVOKEBOT_NOTIFY) notifies nobody.
func (c *checker) reportPerson(p *person) (refused bool) {
	what := fmt.Sprintf("user %s (%s)", p.id, strings.Join(p.vars, ", "))
	short, long := c.refusal(p.user)
	acting := p.acting()
	name := "@" + p.user.Name
	switch {
	case short == "":
		return false
	case len(acting) == 0 && (short == "bot" || short == "deactivated"):
		c.r.warn(what, "%s %s: mentioning them notifies nobody; remove them from REVOKEBOT_NOTIFY", name, long)
		return false
	case len(acting) == 0:
		// A guest or someone of another organisation may be mentioned;
		// it gives them no permission.
		return false
	}
	vars, verb := strings.Join(acting, " and "), "lists"
	if len(acting) > 1 {
		verb = "list"
	}
	var fix string
	switch short {
	case "guest":
		fix = fmt.Sprintf("the bot refuses guests even when listed, and no setting changes that: remove them from %s, or make them a full member of this workspace", vars)
	case "another organisation":
		fix = fmt.Sprintf("the bot refuses people of other organisations even when listed, and no setting changes that: remove them from %s, or list their account in this workspace if they have one", vars)
	case "bot":
		fix = fmt.Sprintf("bots may neither request nor decide: remove it from %s", vars)
	default:
		fix = fmt.Sprintf("remove them from %s", vars)
	}
	c.r.warn(what, "%s %s, so the bot refuses them although %s %s them: %s", name, long, vars, verb, fix)
	return true
}

// checkEmails tells, from the people looked up, whether users.info shows
// emails: without users:read.email it shows none, and a mention
// (/revoke @user) cannot be resolved to an address. One full member without
// an email is fine (Slack may have none for them); all of them is not.
func (c *checker) checkEmails(what string, looked []*person, stopErr error) {
	members, withEmail := 0, 0
	for _, p := range looked {
		if c.eligible(p) {
			members++
			if p.user.Profile.Email != "" {
				withEmail++
			}
		}
	}
	switch {
	case members == 0 && stopErr != nil:
		c.r.skip(what, "not checked: users.info failed (see above)")
	case members == 0:
		c.r.skip(what, "not checked: nobody looked up is a full member of this workspace, and only their profiles show whether users.info gives emails")
	case withEmail == 0:
		c.r.warn(what, "users.info shows no email address for any of the %s looked up: the bot token most likely lacks users:read.email, and without it a mention (/revoke @user) cannot be resolved to an address (people must type it). Add users:read.email as in slack-app-manifest.yaml and reinstall the app",
			plural(members, "full member"))
	default:
		c.r.ok(what, "users.info shows an email address for %d of the %s looked up, so a mention (/revoke @user) can be resolved", withEmail, plural(members, "full member"))
	}
}

// checkQuorum counts the approvers the check confirmed eligible (listed
// directly or through a user group, looked up, and not refused), and warns
// if some requests could never be approved. Nobody approves their own
// request, so a requester who is an approver too needs
// REVOKEBOT_REQUIRED_APPROVALS approvers besides themselves: with exactly
// that many eligible approvers, their own requests could never be approved,
// though everyone else's could. Escalation approvers count for a request
// once it is escalated.
func (c *checker) checkQuorum(what string, list []audience, members map[string][]string, byID map[string]*person) {
	need := c.cfg.RequiredApprovals
	var requesters []string
	pool, escPool := map[string]bool{}, map[string]bool{}
	unknown := map[string]bool{}
	var unresolved, refused []string
	for _, a := range list {
		ids := slices.Clone(a.a.Users)
		for _, g := range a.a.Groups {
			m, ok := members[g]
			if !ok && a.variable != varNotify && !slices.Contains(unresolved, g) {
				unresolved = append(unresolved, g)
			}
			ids = append(ids, m...)
		}
		for _, id := range ids {
			switch a.variable {
			case varRequesters:
				requesters = append(requesters, id)
				continue
			case varNotify:
				continue
			}
			p := byID[id]
			switch {
			case c.eligible(p):
				escPool[id] = true
				if a.variable == varApprovers {
					pool[id] = true
				}
			case p == nil || !p.done || (p.err != nil && !p.notFound()):
				unknown[id] = true
			case !slices.Contains(refused, id):
				refused = append(refused, id)
			}
		}
	}
	escalation := !c.cfg.EscalationApprovers.Empty()
	for id := range pool {
		escPool[id] = true
	}

	notCounted := ""
	if len(refused) > 0 {
		var whys []string
		for _, id := range refused {
			why := "not found"
			if p := byID[id]; p.err == nil {
				why, _ = c.refusal(p.user)
			}
			whys = append(whys, fmt.Sprintf("%s (%s)", id, why))
		}
		notCounted = fmt.Sprintf("; not counting %s the bot refuses: %s", plural(len(refused), "approver"), listIDs(whys))
	}
	var poolText string
	switch len(pool) {
	case 0:
		poolText = "no approver is confirmed eligible"
	case 1:
		poolText = fmt.Sprintf("1 approver is confirmed eligible (%s)", listIDs(sortedKeys(pool)))
	default:
		poolText = fmt.Sprintf("%d approvers are confirmed eligible (%s)", len(pool), listIDs(sortedKeys(pool)))
	}
	required := fmt.Sprintf("REVOKEBOT_REQUIRED_APPROVALS is %d", need)

	allBlocked, own := quorumShort(pool, requesters, need)
	escAllBlocked, escOwn := quorumShort(escPool, requesters, need)
	if !escalation {
		escAllBlocked, escOwn = allBlocked, own
	}
	if !allBlocked && len(own) == 0 {
		detail := fmt.Sprintf("%s and %s", required, poolText)
		if o := overlap(pool, requesters); len(o) > 0 {
			detail += fmt.Sprintf("; a requester who is an approver too (%s) never approves their own request, and enough others are left", listIDs(o))
		}
		c.r.ok(what, "%s%s", detail, notCounted)
		return
	}
	if len(unknown) > 0 || len(unresolved) > 0 {
		var why []string
		if len(unknown) > 0 {
			why = append(why, fmt.Sprintf("%s could not be looked up", plural(len(unknown), "approver")))
		}
		if len(unresolved) > 0 {
			why = append(why, fmt.Sprintf("user group %s could not be resolved (see above)", strings.Join(unresolved, ", ")))
		}
		c.r.skip(what, "not proven: %s and %s, but %s%s", required, poolText, strings.Join(why, " and "), notCounted)
		return
	}
	fix := "add approvers who are full members of this workspace to REVOKEBOT_APPROVERS (or to its user groups), or lower REVOKEBOT_REQUIRED_APPROVALS"
	if !allBlocked {
		fix += ", or remove those requesters from REVOKEBOT_REQUESTERS (and its user groups)"
	}
	escAfter := fmt.Sprintf("once it is escalated (after REVOKEBOT_ESCALATE_AFTER, %s) and REVOKEBOT_ESCALATION_APPROVERS may approve too", c.cfg.EscalateAfter)
	var detail string
	switch {
	case allBlocked && escAllBlocked:
		detail = fmt.Sprintf("no request could ever be approved: %s, but %s", required, poolText)
		if escalation {
			detail += ", not enough even with the escalation approvers"
		}
	case allBlocked:
		detail = fmt.Sprintf("no request can be approved before it is escalated: %s, but %s; a request can be approved only %s", required, poolText, escAfter)
		if len(escOwn) > 0 {
			detail += fmt.Sprintf("; requests by %s (requesters who are approvers too, and nobody approves their own request) could not be approved even then", listIDs(escOwn))
		}
	case len(escOwn) > 0:
		detail = fmt.Sprintf("requests by %s could never be approved: %s and %s, but they are among them, and nobody approves their own request, so their requests have only %d others",
			listIDs(escOwn), required, poolText, need-1)
	default:
		detail = fmt.Sprintf("requests by %s can be approved only %s: %s and %s, but they are among them, and nobody approves their own request, so before that their requests have only %d others",
			listIDs(own), escAfter, required, poolText, need-1)
	}
	c.r.warn(what, "%s%s. Fix: %s", detail, notCounted, fix)
}

// quorumShort says, for a pool of eligible approvers and need approvals,
// whether no request could be approved (all), and otherwise which
// requesters' own requests could not be, since they may not approve them.
func quorumShort(pool map[string]bool, requesters []string, need int) (all bool, own []string) {
	switch {
	case len(pool) < need:
		return true, nil
	case len(pool) == need:
		return false, overlap(pool, requesters)
	}
	return false, nil
}

// overlap are the requesters in pool, sorted, once each.
func overlap(pool map[string]bool, requesters []string) []string {
	var o []string
	for _, r := range requesters {
		if pool[r] && !slices.Contains(o, r) {
			o = append(o, r)
		}
	}
	slices.Sort(o)
	return o
}

// sortedKeys are the keys of m, sorted.
func sortedKeys(m map[string]bool) []string {
	return slices.Sorted(maps.Keys(m))
}

// listIDs joins up to 5 items, and says how many more there are.
func listIDs(items []string) string {
	const most = 5
	if len(items) <= most {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:most], ", "), len(items)-most)
}

// checkCloudflareToken verifies the API token as serve's checkCloudflare does,
// and reports whether the scope check may go on.
func (c *checker) checkCloudflareToken(ctx context.Context, cf *cloudflare.Client) bool {
	const what = "Cloudflare token"
	if c.cfg.Cloudflare.APIToken == "" {
		c.r.skip(what, "not checked: the legacy global API key (CLOUDFLARE_EMAIL, CLOUDFLARE_API_KEY) cannot be verified on its own; the next check uses it")
		return true
	}
	if c.outOfTime(what) {
		c.r.skip(c.scopeName(), "not checked: needs a working Cloudflare token")
		return false
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	status, err := cf.VerifyToken(ctx)
	kind := "a user token (GET /user/tokens/verify)"
	var userErr error
	if classifyCloudflare(err) == cfAuth && c.cfg.Cloudflare.AccountID != "" {
		// Account-owned tokens verify under the account instead. (Not when
		// the user route failed otherwise: that is no sign of an account
		// token, and the account route would fail alike.)
		userErr = err
		status, err = cf.VerifyAccountToken(ctx)
		kind = "an account-owned token (GET /accounts/{account_id}/tokens/verify)"
	}
	now := time.Now()
	switch {
	case err == nil && status.Status == "active" && status.NotBefore.After(now):
		c.r.fail(what, "token %s is active but not valid before %s: Cloudflare refuses it until then; create a token without that start date, with \"Access: Organizations, Identity Providers, and Groups Write\"", status.ID, status.NotBefore.UTC().Format(time.RFC3339))
	case err == nil && status.Status == "active" && !status.ExpiresOn.IsZero() && status.ExpiresOn.Sub(now) < tokenExpiryWarning:
		c.r.warn(what, "token %s is active but expires on %s, %s: from then on every revocation fails; roll the token or create a new one (\"Access: Organizations, Identity Providers, and Groups Write\") and update CLOUDFLARE_API_TOKEN before then",
			status.ID, status.ExpiresOn.UTC().Format(time.RFC3339), untilText(status.ExpiresOn.Sub(now)))
		return true
	case err == nil && status.Status == "active":
		expiry := "; it does not expire"
		if !status.ExpiresOn.IsZero() {
			expiry = "; it expires on " + status.ExpiresOn.UTC().Format(time.RFC3339)
		}
		c.r.ok(what, "token %s is active: %s%s", status.ID, kind, expiry)
		return true
	case err == nil:
		c.r.fail(what, "token %s is %s, not active: create a new token with \"Access: Organizations, Identity Providers, and Groups Write\" and put it in CLOUDFLARE_API_TOKEN", status.ID, status.Status)
	case classifyCloudflare(err) == cfAuth:
		detail := cfProblem(err)
		if userErr != nil {
			detail = fmt.Sprintf("as a user token: %s; as an account-owned token: %s", cfProblem(userErr), detail)
		}
		c.r.fail(what, "Cloudflare does not accept CLOUDFLARE_API_TOKEN (%s): it is wrong, expired or revoked; create a token with \"Access: Organizations, Identity Providers, and Groups Write\"", detail)
	case classifyCloudflare(err) == cfNotFound:
		c.r.fail(what, "CLOUDFLARE_BASE_URL looks wrong: %s answered HTTP 404 to the token check, a route that Cloudflare's API has for every token (%s); unset CLOUDFLARE_BASE_URL for %s, or give the API root ending in /client/v4. This says nothing about the token yet",
			c.cfBaseURL(), cfProblem(err), cloudflare.DefaultBaseURL)
	default:
		c.r.fail(what, "%s", c.cloudflareProblem(err))
	}
	c.r.skip(c.scopeName(), "not checked: needs a working Cloudflare token")
	return false
}

// cfBaseURL is the Cloudflare API root that revokebot calls.
func (c *checker) cfBaseURL() string {
	return cmp.Or(c.cfg.Cloudflare.BaseURL, cloudflare.DefaultBaseURL)
}

// untilText is "in 3 days", "in 5 hours" or "already past".
func untilText(d time.Duration) string {
	switch {
	case d <= 0:
		return "already past"
	case d >= 48*time.Hour:
		return fmt.Sprintf("in %d days", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("in %d hours", int(d/time.Hour))
	default:
		return "in " + d.Round(time.Minute).String()
	}
}

// scopeName names the account or zone that revocations go to.
func (c *checker) scopeName() string {
	if c.cfg.Cloudflare.ZoneID != "" {
		return "Cloudflare zone " + c.cfg.Cloudflare.ZoneID
	}
	return "Cloudflare account " + c.cfg.Cloudflare.AccountID
}

// scopeKind is "account" or "zone", and the variable that selects it.
func (c *checker) scopeKind() (kind, variable string) {
	if c.cfg.Cloudflare.ZoneID != "" {
		return "zone", "CLOUDFLARE_ZONE_ID"
	}
	return "account", "CLOUDFLARE_ACCOUNT_ID"
}

// checkCloudflareScope reads the account's (or zone's) Zero Trust
// organization: the same Access API as revoke_user, though a read-only token
// may read it (see noteRevokePermission). It reports whether that worked.
func (c *checker) checkCloudflareScope(ctx context.Context, cf *cloudflare.Client) bool {
	what := c.scopeName()
	kind, variable := c.scopeKind()
	if c.outOfTime(what) {
		return false
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	org, err := cf.AccessOrganization(ctx)
	var apiErr *cloudflare.APIError
	switch classifyCloudflare(err) {
	case cfOK:
		c.r.ok(what, "Access API reachable: Zero Trust organization %q (%s)", org.Name, org.AuthDomain)
		return true
	case cfAuth:
		c.r.fail(what, "Cloudflare refuses GET …/access/organizations (%s): give the token the permission \"Access: Organizations, Identity Providers, and Groups Write\" for this %s, and check that %s is right", cfProblem(err), kind, variable)
	case cfNotFound:
		if errors.As(err, &apiErr) && slices.Contains(apiErr.Codes(), 7003) {
			// "Could not route to …, perhaps your object identifier is invalid?"
			c.r.fail(what, "Cloudflare finds no such %s (%s): check %s (the ID in your dashboard's URL), and that Zero Trust is set up for it", kind, cfProblem(err), variable)
		} else {
			c.r.fail(what, "GET …/access/organizations answered HTTP 404 (%s): check %s (the ID in your dashboard's URL) and CLOUDFLARE_BASE_URL (unset it for %s), and that Zero Trust is set up for this %s", cfProblem(err), variable, cloudflare.DefaultBaseURL, kind)
		}
	default:
		c.r.fail(what, "%s", c.cloudflareProblem(err))
	}
	return false
}

// noteRevokePermission says what the checks above cannot show: that the
// credentials may revoke.
func (c *checker) noteRevokePermission() {
	kind, _ := c.scopeKind()
	const what = "Cloudflare revoke permission"
	const dry = "A dry run (REVOKEBOT_DRY_RUN) never calls Cloudflare, so it proves nothing either"
	if c.cfg.Cloudflare.APIToken == "" {
		c.r.skip(what, "not checked: reading the organization above proves read access only, and no call shows that revoking works without revoking someone. The legacy global API key acts with all the rights of the user CLOUDFLARE_EMAIL: make sure that user may edit Access (Zero Trust) in this %s. %s", kind, dry)
		return
	}
	c.r.skip(what, "not checked: reading the organization above (GET …/access/organizations) proves read access only, and no call shows that the token may revoke without revoking someone. In the Cloudflare dashboard (My Profile → API Tokens, or Manage Account → Account API Tokens for an account-owned token), check that the token has \"Access: Organizations, Identity Providers, and Groups Write\" for this %s. %s", kind, dry)
}

// checkContainment says, for each feature that reads what Cloudflare knows
// of a person (the preview and the verification; the return watch), whether
// the credentials may: ok, or the permission to add. Without it the
// feature says "unavailable" in Slack, and everything else works. In zone
// mode the features are off: Cloudflare has no user endpoints there.
func (c *checker) checkContainment(ctx context.Context, cf *cloudflare.Client) {
	const probe = "revokebot-check@example.invalid" // nobody: the answer is empty
	features := []struct {
		what, does string
		try        func(context.Context) error
	}{
		{"Cloudflare preview and verification", "shows each person's Access user and sessions before approval, and verifies that the sessions are gone after",
			func(ctx context.Context) error { _, err := cf.Preview(ctx, probe); return err }},
		{"Cloudflare return watch", "reads the Access login log for a revoked person's return",
			func(ctx context.Context) error {
				_, err := cf.Logins(ctx, probe, time.Now().Add(-time.Minute))
				return err
			}},
	}
	for _, f := range features {
		if c.cfg.Cloudflare.ZoneID != "" {
			c.r.skip(f.what, "off in zone mode: %s; the messages say so. Use CLOUDFLARE_ACCOUNT_ID instead of CLOUDFLARE_ZONE_ID to have it", cloudflare.WhyZoneMode)
			continue
		}
		if c.outOfTime(f.what) {
			continue
		}
		callCtx, cancel := c.callCtx(ctx)
		err := f.try(callCtx)
		cancel()
		switch why := approvals.UnavailableWhy(err); {
		case err == nil:
			c.r.ok(f.what, "ok: it %s (the token has \"Access: Audit Logs Read\")", f.does)
		case why != "":
			c.r.warn(f.what, "missing permission: %s. Without it this feature says \"unavailable\" in Slack and everything else works", why)
		default:
			c.r.warn(f.what, "not known: %s", cfProblem(err))
		}
	}
}

// noteZoneRoute says, in zone mode, what Cloudflare's API schema declares for
// the zone route of revoke_user.
func (c *checker) noteZoneRoute() {
	const what = "Cloudflare zone route"
	const route = "Cloudflare's API schema gives the zone route of revoke_user (POST /zones/{zone_id}/access/organizations/revoke_user) only the email in its body"
	if c.cfg.Cloudflare.APIToken == "" {
		c.r.ok(what, "%s, so /revoke refuses --devices, --warp-reauth and --uid (they need CLOUDFLARE_ACCOUNT_ID instead of CLOUDFLARE_ZONE_ID); it declares the legacy global API key (X-Auth-Email, X-Auth-Key) as the route's security, which is what this configuration uses", route)
		return
	}
	c.r.warn(what, "%s, and declares only the legacy global API key (X-Auth-Email, X-Auth-Key) as its security: Cloudflare may refuse this API token there even if the checks above pass (that route cannot be tried without revoking someone), and /revoke refuses --devices, --warp-reauth and --uid. Prefer CLOUDFLARE_ACCOUNT_ID instead of CLOUDFLARE_ZONE_ID: the account route takes API tokens and every option", route)
}

// cfClass is what a failed Cloudflare call says about the configuration.
type cfClass int

const (
	cfOK          cfClass = iota // no error
	cfUnreachable                // no answer: network failure or timeout; nothing known about the credentials
	cfAuth                       // 401, 403 or an authentication error code: the credentials
	cfNotFound                   // 404: a wrong base URL or ID
	cfRateLimited                // 429
	cfServer                     // 5xx: Cloudflare's side
	cfOther                      // any other answer
)

// cloudflareAuthCodes are the error codes with which Cloudflare refuses
// credentials: 1000 "Invalid API Token", 6003 "Invalid request headers" (and
// its chain: 6102 X-Auth-Email, 6103 X-Auth-Key, 6111 Authorization header
// format), 9103 "Unknown X-Auth-Key or X-Auth-Email", 9106 "Missing
// X-Auth-Key, X-Auth-Email or Authorization headers", 9109 "Unauthorized to
// access requested resource", 10000 "Authentication error".
var cloudflareAuthCodes = []int{1000, 6003, 6102, 6103, 6111, 9103, 9106, 9109, 10000}

// classifyCloudflare sorts err, the error of a Cloudflare call.
func classifyCloudflare(err error) cfClass {
	var apiErr *cloudflare.APIError
	switch {
	case err == nil:
		return cfOK
	case !errors.As(err, &apiErr):
		return cfUnreachable
	case apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden:
		return cfAuth
	case apiErr.StatusCode == http.StatusTooManyRequests:
		return cfRateLimited
	case apiErr.StatusCode >= 500:
		return cfServer
	}
	var codes []int
	var walk func([]cloudflare.ResponseInfo)
	walk = func(infos []cloudflare.ResponseInfo) {
		for _, i := range infos {
			codes = append(codes, i.Code)
			walk(i.ErrorChain)
		}
	}
	walk(apiErr.Errors)
	for _, code := range codes {
		if slices.Contains(cloudflareAuthCodes, code) {
			return cfAuth
		}
	}
	if apiErr.StatusCode == http.StatusNotFound {
		return cfNotFound
	}
	return cfOther
}

// cloudflareProblem describes a failed Cloudflare call that is not about the
// credentials or a 404, with what to do about it.
func (c *checker) cloudflareProblem(err error) string {
	switch classifyCloudflare(err) {
	case cfUnreachable:
		if isTimeout(err) {
			return fmt.Sprintf("Cloudflare at %s did not answer within %s: check that this machine can reach it (network, proxy, firewall, CLOUDFLARE_BASE_URL). This says nothing about the credentials", c.cfBaseURL(), c.opts.CallTimeout)
		}
		return fmt.Sprintf("cannot reach Cloudflare at %s (%v): check the network, proxy, firewall and CLOUDFLARE_BASE_URL. This says nothing about the credentials", c.cfBaseURL(), err)
	case cfRateLimited:
		return fmt.Sprintf("Cloudflare is rate limiting these credentials (%s): Cloudflare counts all their traffic together (1,200 requests per 5 minutes), so another tool may be using them up; wait, then run revokebot check again", cfProblem(err))
	case cfServer:
		return fmt.Sprintf("Cloudflare answered with a server error (%s): a problem on Cloudflare's side (https://www.cloudflarestatus.com) or a proxy's; try again later. This says nothing about the credentials", cfProblem(err))
	default:
		return fmt.Sprintf("Cloudflare answered unexpectedly (%s)", cfProblem(err))
	}
}

// checkDatabase opens the database as the bot does, which creates the file
// (SQLite) and applies the migrations if needed, within opts.CallTimeout,
// and reports its schema version.
func (c *checker) checkDatabase(ctx context.Context) {
	const what = "database"
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	where := c.cfg.Database
	label := databaseLabel(where)
	created := false
	if !isPostgres(where) {
		_, statErr := os.Stat(where)
		created = errors.Is(statErr, fs.ErrNotExist)
	}
	db, _, err := openDatabase(ctx, where)
	switch {
	case err != nil && isPostgres(where):
		// The store's error names host, port and database, never the password.
		c.r.fail(what, "%v: check that the server is up and reachable from here, and the user, database and sslmode in REVOKEBOT_DATABASE", err)
		return
	case err != nil:
		// sqlite's error names the path already.
		c.r.fail(what, "%v: make sure its directory exists and this user may write there (REVOKEBOT_DATABASE; the Docker image runs as UID 65532)", err)
		return
	}
	defer db.Close()
	v, err := db.SchemaVersion(ctx)
	switch {
	case err != nil:
		c.r.fail(what, "%s: opened, but %v", label, err)
	case isPostgres(where):
		c.r.ok(what, "%s: PostgreSQL reachable and migrated (schema version %d); replicas may share it", label, v)
	case created:
		c.r.ok(what, "%s did not exist: created it and applied the migrations (schema version %d)", label, v)
	default:
		c.r.ok(what, "%s: opened and migrated (schema version %d); one replica only (use PostgreSQL for several)", label, v)
	}
}

// slackCode is Slack's error code in err, or "".
func slackCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

// slackNeeded is the scope Slack says a missing_scope error needs, or "".
func slackNeeded(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Needed
	}
	return ""
}

// slackAnswered reports whether err is an answer from Slack's Web API
// itself (an error code, a rate limit), rather than a timeout, a network
// failure, or an HTTP error from whatever SLACK_API_URL points at.
func slackAnswered(err error) bool {
	var se slack.SlackErrorResponse
	var rl *slack.RateLimitedError
	return errors.As(err, &se) || errors.As(err, &rl) || bot.IsFatalAuthError(err)
}

// isTimeout reports whether err is a call that ran out of time.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// slackProblem describes a failed Slack call and what to do about it.
func (c *checker) slackProblem(method string, err error) string {
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	const reach = "check that this machine can reach Slack (SLACK_API_URL, proxies, firewall). This says nothing about the tokens"
	switch {
	case errors.As(err, &rl):
		return fmt.Sprintf("Slack is rate limiting: try again in %s", rl.RetryAfter)
	case slackCode(err) != "":
		return fmt.Sprintf("Slack says %s (see the method's page on api.slack.com)", slackCode(err))
	case isTimeout(err):
		return fmt.Sprintf("Slack did not answer %s within %s: %s", method, c.opts.CallTimeout, reach)
	case errors.As(err, &sc) && sc.Code == http.StatusNotFound:
		return fmt.Sprintf("SLACK_API_URL looks wrong: %s answered HTTP 404 to %s, a method Slack's Web API has; unset SLACK_API_URL for https://slack.com/api/, or give the API root ending in /api/. This says nothing about the tokens", c.cfg.SlackAPIURL, method)
	case errors.As(err, &sc) && sc.Code >= 500:
		return fmt.Sprintf("Slack answered HTTP %d: a problem on Slack's side (https://slack-status.com) or a proxy's; try again later. This says nothing about the tokens", sc.Code)
	case errors.As(err, &sc):
		return fmt.Sprintf("HTTP %d instead of a Slack answer: check SLACK_API_URL and any proxy. This says nothing about the tokens", sc.Code)
	default:
		return fmt.Sprintf("%v: %s", err, reach)
	}
}

// cfProblem is the Cloudflare answer inside err, without the call's wrapping.
func cfProblem(err error) string {
	var apiErr *cloudflare.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Error()
	}
	return err.Error()
}

// plural is "1 user" or "2 users".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
