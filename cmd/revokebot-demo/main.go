// Command revokebot-demo runs the real revokebot against the fake Slack
// workspace and the fake Cloudflare API of its tests, all in this process,
// and lets a person play the people in the terminal:
//
//	go run ./cmd/revokebot-demo [-ttl 30s] [-approvals 2] [-escalate-after 20s] [-color auto|always|never]
//	> /revoke @alice dave@example.com --devices --reason "laptop stolen"
//	> approve 3f2b9c1e as UBOB
//	> deny 3f2b9c1e as UCARL
//	> reason "wrong person" as UCARL
//
// It prints each Slack message as a person would read it, each private
// reply with the person who sees it, and each call to Cloudflare. Nothing
// leaves the machine. The production binary, cmd/revokebot, carries none of
// the fakes.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
	"github.com/revokebot/revokebot/cmd/internal/app"
	"github.com/revokebot/revokebot/cmd/internal/faketb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills the process at once.
	context.AfterFunc(ctx, stop)
	opts, err := parseFlags(os.Args[1:], os.Stderr, os.Getenv("NO_COLOR") != "", isTerminal(os.Stdout))
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "revokebot-demo:", err)
		os.Exit(2)
	}
	// Line editing and history where a person types; plain lines from a pipe.
	opts.editor = isTerminal(os.Stdin) && isTerminal(os.Stdout)
	if err := run(ctx, os.Stdin, os.Stdout, opts); err != nil {
		fmt.Fprintln(os.Stderr, "revokebot-demo:", err)
		os.Exit(1)
	}
}

// options are the demo's settings, from its flags and its terminal.
type options struct {
	// ttl is REVOKEBOT_REQUEST_TTL: how long a request waits for a decision;
	// zero means revokebot's default.
	ttl time.Duration
	// approvals is REVOKEBOT_REQUIRED_APPROVALS: how many distinct
	// approvers a request needs; zero means 1.
	approvals int
	// escalateAfter is REVOKEBOT_ESCALATE_AFTER, with @dana as the
	// escalation approver; zero means no escalation.
	escalateAfter time.Duration
	// color shows Slack's *bold*, _italic_, ~strike~ and `code` as terminal
	// styles (ANSI escapes) instead of as their markers.
	color bool
	// editor reads lines with golang.org/x/term's line editor (arrow keys,
	// history), which also draws the prompt; otherwise lines are read as
	// they come (from a pipe, say). If in is a terminal, run puts it in raw
	// mode while it reads.
	editor bool
}

// parseFlags reads the command line. noColor is whether NO_COLOR is set, and
// stdoutTTY whether stdout is a terminal: they decide -color=auto.
func parseFlags(args []string, stderr io.Writer, noColor, stdoutTTY bool) (options, error) {
	fs := flag.NewFlagSet("revokebot-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: revokebot-demo [-ttl duration] [-approvals n] [-escalate-after duration] [-color auto|always|never]\n\n"+
			"Runs the real revokebot against a fake Slack workspace and a fake Cloudflare API, in this\n"+
			"process, and lets you play the people in the terminal. Type \"help\" there for the commands.\n\n")
		fs.PrintDefaults()
	}
	ttl := fs.Duration("ttl", approvals.DefaultTTL, "how long a request waits for a decision before it expires (REVOKEBOT_REQUEST_TTL), from 1s to 168h; try 30s to see requests expire")
	quorum := fs.Int("approvals", 1, "how many distinct approvers, never the requester, must approve each request (REVOKEBOT_REQUIRED_APPROVALS): 1, 2, or 3 with -escalate-after")
	escalate := fs.Duration("escalate-after", 0, "escalate a request still undecided after this long to @dana (REVOKEBOT_ESCALATE_AFTER with REVOKEBOT_ESCALATION_APPROVERS), shorter than -ttl; 0: never")
	color := fs.String("color", "auto", "show Slack's bold, italic, strikethrough and code as terminal styles: auto (when stdout is a terminal and NO_COLOR is unset), always or never")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return options{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	opts := options{ttl: *ttl, approvals: *quorum, escalateAfter: *escalate}
	if opts.ttl < time.Second || opts.ttl > 168*time.Hour {
		return options{}, fmt.Errorf("-ttl %s: give a duration from 1s to 168h, like 30s or 30m", opts.ttl)
	}
	switch {
	case opts.escalateAfter < 0 || opts.escalateAfter >= opts.ttl && opts.escalateAfter != 0:
		return options{}, fmt.Errorf("-escalate-after %s: give a duration shorter than -ttl (%s), like 20s, or 0 for no escalation", opts.escalateAfter, opts.ttl)
	case opts.approvals < 1 || opts.approvals > 3:
		return options{}, fmt.Errorf("-approvals %d: give 1, 2 or 3", opts.approvals)
	case opts.approvals == 3 && opts.escalateAfter == 0:
		return options{}, errors.New("-approvals 3: only @bob and @carl may approve @uria's requests, and @dana once a request is escalated: add -escalate-after (like 20s), or give -approvals 2")
	}
	switch *color {
	case "auto":
		opts.color = stdoutTTY && !noColor
	case "always":
		opts.color = true
	case "never":
	default:
		return options{}, fmt.Errorf("-color %q: give auto, always or never", *color)
	}
	return opts, nil
}

// The demo's workspace.
const (
	approvalChannel = "CSECURITY"
	auditChannel    = "CAUDIT"
	secopsGroup     = "SSECOPS"
	defaultUser     = "URIA"
)

// person is one of the cast the demo's user plays, or someone to revoke.
type person struct {
	id, handle, role string
	// user is what users.info says of them (the email is handle@example.com).
	user bottest.User
}

// The escalation approver, who approves only with -escalate-after.
const escalationApprover = "UDANA"

var cast = []person{
	{id: "URIA", handle: "@uria", role: "security engineer: may request revocations, and approve other people's"},
	{id: "UBOB", handle: "@bob", role: "approver"},
	{id: "UCARL", handle: "@carl", role: "approver through the user group @secops (" + secopsGroup + ")"},
	{id: "UGUS", handle: "@gus", role: "a guest of the workspace, in @secops: refused all the same", user: bottest.User{IsRestricted: true}},
	{id: escalationApprover, handle: "@dana", role: "escalation approver (with -escalate-after): may approve a request once it is escalated"},
	{id: "UMALLORY", handle: "@mallory", role: "nobody: may neither request nor approve"},
}

// targets are people to name in /revoke by mention. Their IDs are as long
// as Slack's (a mention's ID has 8 characters or more; the cast's short IDs,
// easier to type after "as", would not pass for one).
var targets = []person{
	{id: "UALICE01", handle: "@alice", role: "alice@example.com"},
	{id: "UDAVE001", handle: "@dave", role: "dave@example.com"},
	{id: "UDEPLOYBOT", handle: "@deploybot", role: "a bot: refused as a target", user: bottest.User{IsBot: true}},
}

// everyone is the cast and the targets.
func everyone() []person { return append(slices.Clone(cast), targets...) }

// Timing of the REPL: how long to wait for the bot, and how long the fakes
// must stay quiet before a command's effects count as all shown.
const (
	startTimeout  = 15 * time.Second
	ackTimeout    = 5 * time.Second
	settleTimeout = 5 * time.Second
	quietFor      = 200 * time.Millisecond
	pollInterval  = 50 * time.Millisecond
	stopTimeout   = 20 * time.Second
)

const commands = `Commands (as in Slack; "as <user>" says who types or clicks: an ID like UBOB, or @bob):
  /revoke alice@example.com --devices --reason "laptop stolen" [as URIA]
                        type /revoke (default: as URIA); "/revoke help" shows its options
  /revoke @alice @dave bob@example.com
                        several people in one request; @alice, @dave and @deploybot become
                        mentions, as Slack's autocomplete makes them (see who)
  /revoke status <id>   where a request stands (private reply)
  /revoke pending       the requests still open (private reply)
  approve <id> as UBOB  click Approve, and "Revoke now" in its confirm dialog, on the message of
                        request <id> (the first characters of its Request ID are enough)
  deny <id> as UCARL    click Deny: an approver's Deny opens a form asking why; the requester's own
                        Deny cancels the request at once
  reason <text> as UCARL
                        type the reason in that form and press its Deny
  close as UCARL        press Cancel in that form: nothing is decided
  late approve <id> as UCARL
  late deny <id> as UCARL
                        click a button of a request that is already decided or expired, as
                        someone whose Slack still shows the buttons would
  fail-cloudflare [n] [status]
                        the fake Cloudflare answers the next n revoke_user calls (default 1) with an
                        error status (default 500; 403, 429, 503, …), then succeeds again
  wait [<id>]           wait until request <id> (default: every waiting request) is decided or
                        expires; start the demo with -ttl 30s to see requests expire soon
  wait 20s              let 20 seconds pass, showing what revokebot does meanwhile
  who                   the cast and the channels
  help                  this list
  quit                  stop (or Ctrl-D; Ctrl-C also stops a wait)
The arrow keys edit the line and go through the history.
`

const hint = `type "help" for the commands, e.g. /revoke @alice --devices, then approve <id> as UBOB`

// run starts the fakes and revokebot, then reads commands from in until
// "quit", the end of in, or ctx ends. It returns revokebot's error, if it
// stopped with one.
func run(ctx context.Context, in io.Reader, out io.Writer, opts options) (err error) {
	con := &console{w: out, interactive: !opts.editor && isTerminal(in), color: opts.color}
	tb := &faketb.TB{}
	defer tb.RunCleanups()
	ttl := opts.ttl
	if ttl == 0 {
		ttl = approvals.DefaultTTL
	}

	dir, err := os.MkdirTemp("", "revokebot-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// revokebot also reads ./.env, where a checkout may hold a real
	// deployment's settings: start it in the empty directory instead.
	if wd, err := os.Getwd(); err == nil {
		if err := os.Chdir(dir); err != nil {
			return err
		}
		defer os.Chdir(wd)
	}
	logPath := filepath.Join(dir, "revokebot.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	var ws *bottest.Workspace
	var cf *cftest.Server
	if err := try(func() {
		ws = bottest.New(tb)
		cf = cftest.NewServer(tb)
	}); err != nil {
		return err
	}
	ws.SetGroup(secopsGroup, "UCARL", "UGUS")
	for _, p := range everyone() {
		u := p.user
		u.Name = strings.TrimPrefix(p.handle, "@")
		if !u.IsBot {
			u.Email = u.Name + "@example.com"
		}
		ws.SetUser(p.id, u)
	}
	ws.SetChannel(approvalChannel, bottest.ChannelInfo{Name: "security", IsMember: true})
	ws.SetChannel(auditChannel, bottest.ChannelInfo{Name: "revokebot-audit", IsMember: true})
	n := names{
		approvalChannel: "#security", auditChannel: "#revokebot-audit",
		secopsGroup: "@secops", bottest.BotUserID: "@revokebot",
	}
	for _, p := range everyone() {
		n[p.id] = p.handle
	}
	env := map[string]string{
		"SLACK_APP_TOKEN":            ws.AppToken(),
		"SLACK_BOT_TOKEN":            ws.BotToken(),
		"SLACK_API_URL":              ws.APIURL(),
		"CLOUDFLARE_API_TOKEN":       cf.APIToken(),
		"CLOUDFLARE_ACCOUNT_ID":      cf.AccountID(),
		"CLOUDFLARE_BASE_URL":        cf.URL(),
		"REVOKEBOT_APPROVAL_CHANNEL": approvalChannel,
		"REVOKEBOT_AUDIT_CHANNEL":    auditChannel,
		"REVOKEBOT_REQUESTERS":       "URIA",
		"REVOKEBOT_APPROVERS":        "URIA,UBOB," + secopsGroup,
		"REVOKEBOT_DATABASE":         filepath.Join(dir, "revokebot.db"),
		"REVOKEBOT_LOG_LEVEL":        "warn",
		"REVOKEBOT_LOG_FORMAT":       "text",
		"REVOKEBOT_REQUEST_TTL":      ttl.String(),
		"REVOKEBOT_NOTIFY":           secopsGroup,
	}
	if opts.approvals > 0 {
		env["REVOKEBOT_REQUIRED_APPROVALS"] = strconv.Itoa(opts.approvals)
	}
	if opts.escalateAfter > 0 {
		env["REVOKEBOT_ESCALATE_AFTER"] = opts.escalateAfter.String()
		env["REVOKEBOT_ESCALATION_APPROVERS"] = escalationApprover
	}

	// The real program, unchanged, until the demo ends.
	botCtx, stopBot := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBot()
	done := make(chan error, 1)
	go func() {
		done <- app.Run(botCtx, nil, func(k string) string { return env[k] }, io.Discard, logFile)
	}()
	connected := make(chan error, 1)
	go func() { connected <- try(func() { ws.WaitConnected(1, startTimeout) }) }()
	select {
	case err := <-connected:
		if err != nil {
			stopBot()
			<-done
			return fmt.Errorf("revokebot did not connect to the fake Slack: %v\n%s", err, tail(logPath))
		}
	case err := <-done:
		return fmt.Errorf("revokebot stopped at start: %v\n%s", err, tail(logPath))
	case <-ctx.Done():
		stopBot()
		<-done
		return nil
	}

	w := &watcher{ws: ws, cf: cf, names: n, con: con}
	stopWatch := make(chan struct{})
	var watching sync.WaitGroup
	watching.Go(func() { w.run(stopWatch, pollInterval) })

	opts.ttl = ttl
	con.print(banner(logPath, opts))
	d := &demo{ws: ws, cf: cf, con: con, watch: w, names: n, ttl: ttl, opts: opts, closedForms: map[string]bool{}}
	src, interruptible, restore := con.lines(in, out, opts.editor)
	d.repl(ctx, src, interruptible)
	restore()

	// Stop as SIGTERM would: revokebot finishes its work and delivers the
	// audit records still queued, which are then shown.
	stopBot()
	select {
	case err = <-done:
	case <-time.After(stopTimeout):
		err = fmt.Errorf("revokebot did not stop within %s", stopTimeout)
	}
	close(stopWatch)
	watching.Wait()
	w.poll()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, tail(logPath))
	}
	con.print("bye")
	return nil
}

func banner(logPath string, opts options) string {
	return "revokebot demo: the real revokebot, against a fake Slack workspace and a fake Cloudflare API,\n" +
		"all in this process. Nothing leaves this machine.\n" +
		"revokebot's log (warnings and errors): " + logPath + " (deleted at exit)\n" +
		settings(opts) + "\n\n" + who(opts) + "\n" + commands
}

// settings says how the demo's revokebot is configured, in a few lines.
func settings(opts options) string {
	s := "Requests expire after " + opts.ttl.String() + " without a decision (-ttl)."
	if n := max(opts.approvals, 1); n > 1 {
		s += fmt.Sprintf("\nEach request needs %d approvals from distinct approvers other than the requester (-approvals).", n)
	} else {
		s += "\nEach request needs one approval from an approver other than the requester (-approvals 2 for a quorum)."
	}
	if opts.escalateAfter > 0 {
		s += "\nA request still undecided after " + opts.escalateAfter.String() + " is escalated to @dana (-escalate-after)."
	} else {
		s += "\nNo escalation (-escalate-after 20s escalates a request to @dana after 20 seconds)."
	}
	return s + "\nEvery approval message mentions @secops (REVOKEBOT_NOTIFY)."
}

func who(opts options) string {
	rows := [][]string{}
	for _, p := range cast {
		role := p.role
		if p.id == escalationApprover && opts.escalateAfter == 0 {
			role = "nobody, unless the demo runs with -escalate-after: then the escalation approver"
		}
		rows = append(rows, []string{p.handle, p.id, role})
	}
	var people [][]string
	for _, p := range targets {
		people = append(people, []string{p.handle, p.id, p.role})
	}
	return "Cast:\n" + pad(rows) +
		"People to revoke, by email or as @alice (a mention, as Slack's autocomplete makes it):\n" + pad(people) +
		"Channels:\n" + pad([][]string{
		{"#security", approvalChannel, "approval messages with [Approve] [Deny]; /revoke is typed here"},
		{"#revokebot-audit", auditChannel, "the audit trail, one line per event"},
		{"direct messages", "D…", "revokebot tells the requester how their request ended"},
	})
}

// demo is the REPL: it plays the cast against the fake workspace.
type demo struct {
	ws    *bottest.Workspace
	cf    *cftest.Server
	con   *console
	watch *watcher
	names names
	// ttl is how long a request waits for a decision.
	ttl  time.Duration
	opts options
	// closedForms are the deny forms (view IDs) submitted or cancelled.
	closedForms map[string]bool
}

// lineSource gives the lines a person types; io.EOF ends them.
type lineSource interface {
	ReadLine() (string, error)
}

// scanLines reads lines as they come, from a pipe or a terminal left as is.
type scanLines struct{ sc *bufio.Scanner }

func newScanLines(in io.Reader) scanLines {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	return scanLines{sc}
}

func (s scanLines) ReadLine() (string, error) {
	if s.sc.Scan() {
		return s.sc.Text(), nil
	}
	if err := s.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

// repl reads and runs commands until quit, the end of src, or ctx ends.
// Interruptible means the end of src (Ctrl-C or Ctrl-D in the line editor)
// also stops the command at hand; otherwise the commands already read run
// first (piped input).
func (d *demo) repl(ctx context.Context, src lineSource, interruptible bool) {
	lines := make(chan string)
	next := make(chan bool)      // read another line?
	ended := make(chan struct{}) // closed when src ends
	go func() {
		defer close(ended)
		for {
			line, err := src.ReadLine()
			if err != nil {
				return
			}
			select {
			case lines <- line:
			case <-ctx.Done():
				return
			}
			// The next line is read while this one runs, so that the
			// line editor sees a Ctrl-C.
			select {
			case more := <-next:
				if !more {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		d.con.prompt()
		var line string
		select {
		case <-ctx.Done():
			d.con.closed()
			return
		case <-ended:
			d.con.closed()
			return
		case line = <-lines:
		}
		d.con.typed(line)
		quit := isQuit(line)
		select {
		case next <- !quit:
		case <-ctx.Done():
		}
		if quit {
			return
		}
		cmdCtx, cancel := context.WithCancel(ctx)
		if interruptible {
			go func() {
				select {
				case <-ended:
					cancel()
				case <-cmdCtx.Done():
				}
			}()
		}
		more := d.do(cmdCtx, strings.TrimSpace(line))
		cancel()
		if !more {
			return
		}
	}
}

// isQuit reports whether line is a command to stop the demo.
func isQuit(line string) bool {
	word, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch strings.ToLower(word) {
	case "quit", "exit", "q":
		return true
	}
	return false
}

// do runs one command line; it returns false to quit.
func (d *demo) do(ctx context.Context, line string) (more bool) {
	// A fake that gives up (bottest's Fatalf) ends the command, not the demo.
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(faketb.Failure)
			if !ok {
				panic(r)
			}
			first, _, _ := strings.Cut(string(f), "\n") // not the fake's dump
			d.con.printf("demo: %s", first)
			more = true
		}
	}()
	if isQuit(line) {
		return false
	}
	word, rest, _ := strings.Cut(line, " ")
	switch strings.ToLower(word) {
	case "":
	case "help", "?":
		d.con.print(commands)
	case "who":
		d.con.print(who(d.opts))
	case "/revoke":
		d.revoke(ctx, rest)
	case "approve":
		d.decide(ctx, "revoke_approve", "Approve", rest, false)
	case "deny":
		d.decide(ctx, "revoke_deny", "Deny", rest, false)
	case "late":
		d.late(ctx, rest)
	case "reason":
		d.reason(ctx, rest)
	case "close":
		d.closeForm(rest)
	case "fail-cloudflare":
		d.failCloudflare(rest)
	case "wait":
		d.wait(ctx, rest)
	default:
		d.con.printf("unknown command %q: %s", truncate(line, 40), hint)
	}
	return true
}

var asUser = regexp.MustCompile(`(?:^|\s+)as\s+(\S+)\s*$`)

// splitAs removes a trailing "as <user>" from s, if the user is a Slack user
// ID or a handle of the cast; user is "" without one.
func (d *demo) splitAs(s string) (rest, user string) {
	m := asUser.FindStringSubmatchIndex(s)
	if m == nil {
		return s, ""
	}
	id, ok := d.userID(s[m[2]:m[3]])
	if !ok {
		return s, ""
	}
	return strings.TrimSpace(s[:m[0]]), id
}

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{1,31}$`)

// userID resolves UBOB, @bob or bob to a user ID; any U…/W… ID is taken as is.
func (d *demo) userID(s string) (string, bool) {
	for _, p := range cast {
		if strings.EqualFold(s, p.id) || strings.EqualFold(s, p.handle) || strings.EqualFold("@"+s, p.handle) {
			return p.id, true
		}
	}
	if slackUserID.MatchString(s) {
		return s, true
	}
	return "", false
}

// revoke types "/revoke text" in #security, shows the private answer, and
// waits until the bot has done what the command caused.
func (d *demo) revoke(ctx context.Context, text string) {
	text, user := d.splitAs(strings.TrimSpace(text))
	if user == "" {
		user = defaultUser
	}
	before := len(d.ws.Ephemerals(user))
	ack := d.ws.WaitAck(d.ws.SlashCommand(user, approvalChannel, d.slackText(text)), ackTimeout)
	if t := ack.AckText(); t != "" {
		// Parse errors and help come back in the ack itself: nothing else happens.
		d.watch.poll()
		d.con.slack(d.names.private(approvalChannel, user, t))
		return
	}
	d.settle(ctx, func() bool { return len(d.ws.Ephemerals(user)) > before })
}

// slackText is what Slack sends for text typed in a slash command with
// should_escape on: &, < and > escaped, and each @handle of someone in the
// targets as the mention that Slack's autocomplete makes of it,
// <@UALICE01|alice>. Other @words stay as typed.
func (d *demo) slackText(typed string) string {
	s := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(typed)
	var b strings.Builder
	last := 0
	for _, m := range handleWord.FindAllStringSubmatchIndex(s, -1) {
		at, end := m[2], m[3]
		id, ok := d.handleID(s[at:end])
		if !ok {
			continue
		}
		b.WriteString(s[last:at])
		fmt.Fprintf(&b, "<@%s|%s>", id, s[at+1:end])
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

// handleWord is an @handle at the start of the text or after white space.
var handleWord = regexp.MustCompile(`(?:^|\s)(@[A-Za-z0-9._-]+)`)

// handleID returns the user ID of @handle, one of the targets.
func (d *demo) handleID(handle string) (string, bool) {
	for _, p := range targets {
		if strings.EqualFold(handle, p.handle) {
			return p.id, true
		}
	}
	return "", false
}

// decide clicks a button of a request's approval message as a user. Late,
// it clicks even if the request is decided: as someone whose Slack still
// shows the message as it was first posted.
func (d *demo) decide(ctx context.Context, action, label, args string, late bool) {
	prefix, user := d.splitAs(strings.TrimSpace(args))
	verb := strings.ToLower(label)
	if late {
		verb = "late " + verb
	}
	if user == "" {
		d.con.printf("who clicks %s? e.g. %s %s as UBOB (see who)", label, verb, cmpOr(prefix, "<id>"))
		return
	}
	if strings.ContainsAny(prefix, " \t") {
		d.con.printf("%s takes one request ID: %s <id> as %s", verb, verb, user)
		return
	}
	var m bottest.Message
	var err error
	if late {
		m, err = d.findDecided(prefix)
	} else {
		m, err = d.find(prefix)
	}
	if err != nil {
		d.con.printf("%s: %v", verb, err)
		return
	}
	id := requestID(m)
	if !late && !m.HasButton(action) {
		d.con.printf("%s: request %s is already decided: its message has no buttons any more "+
			"(to click anyway, as someone whose Slack has not caught up: late %s %s as %s)", verb, id, strings.ToLower(label), shortID(id), user)
		return
	}
	stale := ""
	if late {
		stale = " on the message as it was first posted"
	}
	if action == "revoke_approve" {
		d.con.printf("(%s clicks [Approve]%s, then [Revoke now] in the confirm dialog)", d.names.of(user), stale)
	} else {
		d.con.printf("(%s clicks [%s]%s)", d.names.of(user), label, stale)
	}
	before, forms := len(d.ws.Ephemerals(user)), len(d.openForms(user))
	d.ws.WaitAck(d.ws.ClickValue(user, m, action, id), ackTimeout)
	d.settle(ctx, func() bool {
		return len(d.ws.Ephemerals(user)) > before || len(d.openForms(user)) > forms ||
			!late && d.changed(m) && (d.hasButtons(m) || d.finished(m))
	})
	if open := d.openForms(user); len(open) > forms {
		d.con.printf("(the form is open for %s: reason <text> as %s fills it in and presses [Deny]; close as %s presses [Cancel])",
			d.names.of(user), user, user)
	}
}

// openForms returns the deny forms (modals) opened for user, or for anyone
// if user is "", that were neither submitted nor cancelled, oldest first.
func (d *demo) openForms(user string) []bottest.View {
	var out []bottest.View
	for _, v := range d.ws.OpenedViews() {
		if v.CallbackID == bot.CallbackDenyReason && !d.closedForms[v.ID] && (user == "" || v.User == user) {
			out = append(out, v)
		}
	}
	return out
}

// form returns the open deny form of user (of anyone if user is ""), or
// says why there is none to act on. Slack shows one at a time: the last.
func (d *demo) form(verb, user string) (bottest.View, bool) {
	open := d.openForms(user)
	switch {
	case len(open) == 0 && user == "":
		d.con.printf("%s: no deny form is open: an approver's Deny opens one (deny <id> as UCARL)", verb)
		return bottest.View{}, false
	case len(open) == 0:
		d.con.printf("%s: no deny form is open for %s: click Deny first (deny <id> as %s)", verb, d.names.of(user), user)
		return bottest.View{}, false
	case user == "" && len(d.formUsers(open)) > 1:
		d.con.printf("%s: forms are open for %s; say whose: %s … as %s", verb, strings.Join(d.formUsers(open), " and "), verb, open[0].User)
		return bottest.View{}, false
	}
	return open[len(open)-1], true
}

// formUsers names the people the forms are open for.
func (d *demo) formUsers(views []bottest.View) []string {
	var out []string
	for _, v := range views {
		if n := d.names.of(v.User); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// reason fills in the open deny form and presses its Deny:
// "reason <text> as UCARL".
func (d *demo) reason(ctx context.Context, args string) {
	text, user := d.splitAs(strings.TrimSpace(args))
	v, ok := d.form("reason", user)
	if !ok {
		return
	}
	text = unquote(text)
	if text == "" {
		d.con.printf("reason: Slack's form does not send an empty reason: type one, e.g. reason \"wrong person\" as %s", v.User)
		return
	}
	inputs := v.Inputs()
	if len(inputs) == 0 {
		d.con.print("reason: the form has no field to type in")
		return
	}
	d.con.printf("(%s types the reason and presses [Deny] in the form)", d.names.of(v.User))
	before, updates := len(d.ws.Ephemerals(v.User)), d.updates()
	ack := d.ws.WaitAck(d.ws.SubmitView(v.User, v, map[string]map[string]string{inputs[0].BlockID: {inputs[0].ActionID: text}}), ackTimeout)
	if errs := ack.ViewErrors(); len(errs) > 0 {
		msg := errs[inputs[0].BlockID]
		if msg == "" {
			for _, e := range errs {
				msg = e
			}
		}
		d.con.slack(d.names.layoutForm(v.User, []string{"The form stays open and says, under " + inputs[0].Label + ":", "⚠️ " + d.names.text(msg)}))
		return
	}
	d.closedForms[v.ID] = true
	d.settle(ctx, func() bool { return len(d.ws.Ephemerals(v.User)) > before || d.updates() > updates })
}

// closeForm presses Cancel in the open deny form: "close as UCARL". The
// form does not ask Slack to tell revokebot (notify_on_close), so nothing
// is sent.
func (d *demo) closeForm(args string) {
	_, user := d.splitAs(strings.TrimSpace(args))
	v, ok := d.form("close", user)
	if !ok {
		return
	}
	d.closedForms[v.ID] = true
	if id := d.ws.CloseView(v.User, v); id != "" {
		d.ws.WaitAck(id, ackTimeout)
	}
	d.con.printf("(%s presses [Cancel]: the form closes, nothing is decided, and the request still waits)", d.names.of(v.User))
}

// unquote removes one pair of quotes around s, as typed: "…" or '…'.
func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// updates counts the edits of every approval message so far.
func (d *demo) updates() int {
	n := 0
	for _, m := range d.ws.Messages(approvalChannel) {
		n += m.Updates
	}
	return n
}

// current returns m as it stands now.
func (d *demo) current(m bottest.Message) (bottest.Message, bool) {
	for _, cur := range d.ws.Messages(m.Channel) {
		if cur.TS == m.TS {
			return cur, true
		}
	}
	return bottest.Message{}, false
}

// changed reports whether m was edited since it was read.
func (d *demo) changed(m bottest.Message) bool {
	cur, ok := d.current(m)
	return ok && cur.Updates > m.Updates
}

// hasButtons reports whether m still shows its buttons (the request waits
// for more approvals).
func (d *demo) hasButtons(m bottest.Message) bool {
	cur, ok := d.current(m)
	return ok && len(cur.Buttons()) > 0
}

// late clicks a button of a request already decided or expired:
// "late approve <id> as UCARL" or "late deny <id> as UCARL".
func (d *demo) late(ctx context.Context, args string) {
	word, rest, _ := strings.Cut(strings.TrimSpace(args), " ")
	switch strings.ToLower(word) {
	case "approve":
		d.decide(ctx, "revoke_approve", "Approve", rest, true)
	case "deny":
		d.decide(ctx, "revoke_deny", "Deny", rest, true)
	default:
		d.con.print("late approve <id> as UCARL, or late deny <id> as UCARL: click a button of a request that is already decided or expired")
	}
}

// failCloudflare scripts the fake Cloudflare to answer the next n
// revoke_user calls with an error status: "fail-cloudflare [n] [status]".
func (d *demo) failCloudflare(args string) {
	const usage = "fail-cloudflare [n] [status]: n from 1 to 20 (default 1), status from 400 to 599 (default 500), e.g. fail-cloudflare 1 403"
	fields := strings.Fields(args)
	n, status := 1, http.StatusInternalServerError
	var err error
	if len(fields) > 2 {
		d.con.print(usage)
		return
	}
	if len(fields) > 0 {
		if n, err = strconv.Atoi(fields[0]); err != nil || n < 1 || n > 20 {
			d.con.print(usage)
			return
		}
	}
	if len(fields) > 1 {
		if status, err = strconv.Atoi(fields[1]); err != nil || status < 400 || status > 599 {
			d.con.print(usage)
			return
		}
	}
	resp := cftest.Response{Status: status} // with Cloudflare's error envelope for that status
	if status == http.StatusTooManyRequests {
		resp = cftest.RateLimited(1)
	}
	d.cf.Script(slices.Repeat([]cftest.Response{resp}, n)...)
	calls := "call"
	if n > 1 {
		calls = fmt.Sprintf("%d calls", n)
	}
	d.con.printf("(the fake Cloudflare will answer the next revoke_user %s with %d %s, then succeed again; "+
		"revokebot retries 429 and 5xx a few times, and fails at once on other errors)", calls, status, http.StatusText(status))
}

// maxWait bounds a wait, so that a typo cannot hold the demo for hours.
const maxWait = 10 * time.Minute

// wait lets time pass while the watcher shows what revokebot does: a
// duration ("wait 20s"), or until a request ("wait <id>"), or every waiting
// one ("wait"), is decided or expires.
func (d *demo) wait(ctx context.Context, arg string) {
	arg = strings.TrimSpace(arg)
	if dur, err := time.ParseDuration(arg); err == nil {
		if dur <= 0 || dur > maxWait {
			d.con.printf("wait: give a duration up to %s, like 20s", maxWait)
			return
		}
		d.con.printf("(waiting %s…)", dur)
		d.sleep(ctx, dur, func() bool { return false })
		d.watch.poll()
		return
	}
	var msgs []bottest.Message
	if arg == "" {
		msgs = d.pending()
		if len(msgs) == 0 {
			d.con.print("wait: no request is waiting for a decision (wait 20s lets time pass anyway)")
			return
		}
	} else {
		m, err := d.find(arg)
		if err != nil {
			d.con.printf("wait: %v", err)
			return
		}
		if len(m.Buttons()) == 0 {
			d.con.printf("wait: request %s is already decided", requestID(m))
			return
		}
		msgs = []bottest.Message{m}
	}
	// A request expires ttl after it was made (just before its message was
	// posted); revokebot notices within a tenth of ttl (at most 30s).
	var last time.Time
	for _, m := range msgs {
		if at := m.At.Add(d.ttl); at.After(last) {
			last = at
		}
	}
	deadline := last.Add(min(max(d.ttl/10, 100*time.Millisecond), 30*time.Second) + 5*time.Second)
	left := time.Until(deadline).Round(time.Second)
	if left > maxWait {
		d.con.printf("wait: %s expires in about %s: too long to wait here. Run the demo with -ttl 30s to see requests expire soon, or wait <duration>.",
			plural(len(msgs), "that request", "the last of those requests"), time.Until(last).Round(time.Second))
		return
	}
	d.con.printf("(waiting up to %s until %s %s…)", left, ids(msgs), plural(len(msgs), "is decided or expires", "are decided or expire"))
	d.sleep(ctx, time.Until(deadline), func() bool {
		for _, m := range msgs {
			if !d.finished(m) {
				return false
			}
		}
		return true
	})
	d.settle(ctx, func() bool { return true })
}

// sleep waits for d, until done reports true, or until ctx ends.
func (d *demo) sleep(ctx context.Context, dur time.Duration, done func() bool) {
	t := time.NewTimer(dur)
	defer t.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-tick.C:
		}
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// finished reports whether m now shows a decided request's outcome.
func (d *demo) finished(m bottest.Message) bool {
	cur, ok := d.current(m)
	return ok && len(cur.Buttons()) == 0 && !strings.Contains(cur.BlockText(), "Revoking")
}

var requestIDText = regexp.MustCompile("Request ID `([^`]+)`")

// requestID is the ID of the request whose approval message m is.
func requestID(m bottest.Message) string {
	for _, b := range m.Buttons() {
		if b.Value != "" {
			return b.Value
		}
	}
	if s := requestIDText.FindStringSubmatch(m.BlockText()); s != nil {
		return s[1]
	}
	return ""
}

// pending returns the approval messages that still have their buttons.
func (d *demo) pending() []bottest.Message {
	var out []bottest.Message
	for _, m := range d.ws.Messages(approvalChannel) {
		if requestID(m) != "" && len(m.Buttons()) > 0 {
			out = append(out, m)
		}
	}
	return out
}

// find returns the approval message of the request whose ID starts with
// prefix; with no prefix, that of the only pending request.
func (d *demo) find(prefix string) (bottest.Message, error) {
	return d.findAmong(prefix, func(m bottest.Message) bool { return len(m.Buttons()) > 0 }, "waiting for a decision")
}

// findDecided is find for a late click: with no prefix, it returns the
// message of the only request already decided or expired.
func (d *demo) findDecided(prefix string) (bottest.Message, error) {
	return d.findAmong(prefix, func(m bottest.Message) bool { return len(m.Buttons()) == 0 }, "decided or expired")
}

// findAmong returns the approval message of the request whose ID starts
// with prefix; with no prefix, the only one that fits (described by what).
func (d *demo) findAmong(prefix string, fits func(bottest.Message) bool, what string) (bottest.Message, error) {
	var matches, fitting []bottest.Message
	for _, m := range d.ws.Messages(approvalChannel) {
		id := requestID(m)
		if id == "" {
			continue
		}
		if fits(m) {
			fitting = append(fitting, m)
		}
		if prefix != "" && strings.HasPrefix(strings.ToLower(id), strings.ToLower(prefix)) {
			matches = append(matches, m)
		}
	}
	if prefix == "" {
		switch len(fitting) {
		case 1:
			return fitting[0], nil
		case 0:
			return bottest.Message{}, fmt.Errorf("no request is %s", what)
		}
		return bottest.Message{}, fmt.Errorf("%d requests are %s; say which: %s", len(fitting), what, ids(fitting))
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return bottest.Message{}, fmt.Errorf("no request message in #security has an ID starting with %q", prefix)
	}
	return bottest.Message{}, fmt.Errorf("%q fits %d requests; give more of the ID: %s", prefix, len(matches), ids(matches))
}

// shortID is the first part of a request ID, enough to name it in the demo.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func ids(msgs []bottest.Message) string {
	var out []string
	for _, m := range msgs {
		out = append(out, requestID(m))
	}
	return strings.Join(out, ", ")
}

// settle waits until done reports true (or settleTimeout passes) and the
// fakes have stayed quiet for quietFor, then shows what happened.
func (d *demo) settle(ctx context.Context, done func() bool) {
	activity := func() int {
		return len(d.ws.AllCalls()) + len(d.ws.AllEphemerals()) + len(d.watch.cf.Calls())
	}
	deadline := time.Now().Add(settleTimeout)
	last, quietSince := activity(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if n := activity(); n != last {
			last, quietSince = n, time.Now()
		}
		if time.Since(quietSince) >= quietFor && done() {
			break
		}
	}
	d.watch.poll()
}

func cmpOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// tail returns the end of revokebot's log, to explain a failed start.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return "(revokebot logged nothing)"
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return "revokebot's log:\n" + string(b)
}

// isTerminal reports whether f is a terminal (stdin: where a prompt and line
// editing help; stdout: where styles show).
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// try runs f, turning a fake's Fatalf into an error.
func try(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(faketb.Failure)
			if !ok {
				panic(r)
			}
			err = errors.New(string(fe))
		}
	}()
	f()
	return nil
}
