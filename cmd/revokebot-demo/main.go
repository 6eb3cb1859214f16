// Command revokebot-demo runs the real revokebot against the fake Slack
// workspace and the fake Cloudflare API of its tests, all in this process,
// and lets a person play the people in the terminal:
//
//	go run ./cmd/revokebot-demo
//	> /revoke alice@example.com --devices --reason "laptop stolen"
//	> approve 3f2b9c1e as UBOB
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
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
	"github.com/revokebot/revokebot/cmd/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills the process at once.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "revokebot-demo:", err)
		os.Exit(1)
	}
}

// The demo's workspace.
const (
	approvalChannel = "CSECURITY"
	auditChannel    = "CAUDIT"
	secopsGroup     = "SSECOPS"
	defaultUser     = "URIA"
)

// person is one of the cast the demo's user plays.
type person struct{ id, handle, role string }

var cast = []person{
	{"URIA", "@uria", "security engineer: may request revocations, and approve other people's"},
	{"UBOB", "@bob", "approver"},
	{"UCARL", "@carl", "approver through the user group @secops (" + secopsGroup + ")"},
	{"UMALLORY", "@mallory", "nobody: may neither request nor approve"},
}

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
  approve <id> as UBOB  click Approve, and "Revoke now" in its confirm dialog, on the message of
                        request <id> (the first characters of its Request ID are enough)
  deny <id> as UCARL    click Deny (the requester's own Deny cancels the request)
  who                   the cast and the channels
  help                  this list
  quit                  stop (or Ctrl-D)
`

const hint = `type "help" for the commands, e.g. /revoke alice@example.com --devices, then approve <id> as UBOB`

// run starts the fakes and revokebot, then reads commands from in until
// "quit", the end of in, or ctx ends. It returns revokebot's error, if it
// stopped with one.
func run(ctx context.Context, in io.Reader, out io.Writer) (err error) {
	con := &console{w: out, interactive: isTerminal(in)}
	tb := &demoTB{}
	defer tb.cleanup()

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
	ws.SetGroup(secopsGroup, "UCARL")
	ws.SetChannel(approvalChannel, bottest.ChannelInfo{Name: "security", IsMember: true})
	ws.SetChannel(auditChannel, bottest.ChannelInfo{Name: "revokebot-audit", IsMember: true})
	n := names{
		approvalChannel: "#security", auditChannel: "#revokebot-audit",
		secopsGroup: "@secops", bottest.BotUserID: "@revokebot",
	}
	for _, p := range cast {
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

	con.print(banner(logPath))
	d := &demo{ws: ws, con: con, watch: w, names: n}
	d.repl(ctx, in)

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

func banner(logPath string) string {
	return "revokebot demo: the real revokebot, against a fake Slack workspace and a fake Cloudflare API,\n" +
		"all in this process. Nothing leaves this machine.\n" +
		"revokebot's log (warnings and errors): " + logPath + " (deleted at exit)\n\n" +
		who() + "\n" + commands
}

func who() string {
	rows := [][]string{}
	for _, p := range cast {
		rows = append(rows, []string{p.handle, p.id, p.role})
	}
	return "Cast:\n" + pad(rows) +
		"Channels:\n" + pad([][]string{
		{"#security", approvalChannel, "approval messages with [Approve] [Deny]; /revoke is typed here"},
		{"#revokebot-audit", auditChannel, "the audit trail, one line per event"},
	})
}

// demo is the REPL: it plays the cast against the fake workspace.
type demo struct {
	ws    *bottest.Workspace
	con   *console
	watch *watcher
	names names
}

// repl reads and runs commands until quit, the end of in, or ctx ends.
func (d *demo) repl(ctx context.Context, in io.Reader) {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		d.con.prompt()
		var line string
		var ok bool
		select {
		case <-ctx.Done():
			d.con.closed()
			return
		case line, ok = <-lines:
		}
		if !ok {
			d.con.closed()
			return
		}
		d.con.typed(line)
		if !d.do(ctx, strings.TrimSpace(line)) {
			return
		}
	}
}

// do runs one command line; it returns false to quit.
func (d *demo) do(ctx context.Context, line string) (more bool) {
	// A fake that gives up (bottest's Fatalf) ends the command, not the demo.
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			first, _, _ := strings.Cut(string(f), "\n") // not the fake's dump
			d.con.printf("demo: %s", first)
			more = true
		}
	}()
	word, rest, _ := strings.Cut(line, " ")
	switch strings.ToLower(word) {
	case "":
	case "quit", "exit", "q":
		return false
	case "help", "?":
		d.con.print(commands)
	case "who":
		d.con.print(who())
	case "/revoke":
		d.revoke(ctx, rest)
	case "approve":
		d.decide(ctx, "revoke_approve", "Approve", rest)
	case "deny":
		d.decide(ctx, "revoke_deny", "Deny", rest)
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
	ack := d.ws.WaitAck(d.ws.SlashCommand(user, approvalChannel, text), ackTimeout)
	if t := ack.AckText(); t != "" {
		// Parse errors and help come back in the ack itself: nothing else happens.
		d.watch.poll()
		d.con.print(d.names.private(approvalChannel, user, t))
		return
	}
	d.settle(ctx, func() bool { return len(d.ws.Ephemerals(user)) > before })
}

// decide clicks a button of a request's approval message as a user.
func (d *demo) decide(ctx context.Context, action, label, args string) {
	prefix, user := d.splitAs(strings.TrimSpace(args))
	verb := strings.ToLower(label)
	if user == "" {
		d.con.printf("who clicks %s? e.g. %s %s as UBOB (see who)", label, verb, cmpOr(prefix, "<id>"))
		return
	}
	if strings.ContainsAny(prefix, " \t") {
		d.con.printf("%s takes one request ID: %s <id> as %s", verb, verb, user)
		return
	}
	m, err := d.find(prefix)
	if err != nil {
		d.con.printf("%s: %v", verb, err)
		return
	}
	if !m.HasButton(action) {
		d.con.printf("%s: request %s is already decided: its message has no buttons any more", verb, requestID(m))
		return
	}
	if action == "revoke_approve" {
		d.con.printf("(%s clicks [Approve], then [Revoke now] in the confirm dialog)", d.names.of(user))
	} else {
		d.con.printf("(%s clicks [%s])", d.names.of(user), label)
	}
	before := len(d.ws.Ephemerals(user))
	d.ws.WaitAck(d.ws.Click(user, m, action), ackTimeout)
	d.settle(ctx, func() bool { return len(d.ws.Ephemerals(user)) > before || d.finished(m) })
}

// finished reports whether m now shows a decided request's outcome.
func (d *demo) finished(m bottest.Message) bool {
	for _, cur := range d.ws.Messages(m.Channel) {
		if cur.TS == m.TS {
			return len(cur.Buttons()) == 0 && !strings.Contains(cur.BlockText(), "Revoking")
		}
	}
	return false
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

// find returns the approval message of the request whose ID starts with
// prefix; with no prefix, that of the only pending request.
func (d *demo) find(prefix string) (bottest.Message, error) {
	var matches, pending []bottest.Message
	for _, m := range d.ws.Messages(approvalChannel) {
		id := requestID(m)
		if id == "" {
			continue
		}
		if len(m.Buttons()) > 0 {
			pending = append(pending, m)
		}
		if prefix != "" && strings.HasPrefix(strings.ToLower(id), strings.ToLower(prefix)) {
			matches = append(matches, m)
		}
	}
	if prefix == "" {
		switch len(pending) {
		case 1:
			return pending[0], nil
		case 0:
			return bottest.Message{}, errors.New("no request is waiting for a decision")
		}
		return bottest.Message{}, fmt.Errorf("%d requests are waiting; say which: %s", len(pending), ids(pending))
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return bottest.Message{}, fmt.Errorf("no request message in #security has an ID starting with %q", prefix)
	}
	return bottest.Message{}, fmt.Errorf("%q fits %d requests; give more of the ID: %s", prefix, len(matches), ids(matches))
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

// isTerminal reports whether in is a terminal, where a prompt helps; piped
// input is echoed instead.
func isTerminal(in io.Reader) bool {
	f, ok := in.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// demoTB lets the test fakes run outside a test: Fatalf panics with a fatal,
// which ends the command at hand, and Cleanup functions run when the demo
// ends.
type demoTB struct {
	mu       sync.Mutex
	cleanups []func()
}

type fatal string

func (*demoTB) Helper() {}

func (*demoTB) Fatalf(format string, args ...any) { panic(fatal(fmt.Sprintf(format, args...))) }

func (t *demoTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// cleanup runs the Cleanup functions, last registered first.
func (t *demoTB) cleanup() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// try runs f, turning a fake's Fatalf into an error.
func try(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = errors.New(string(fe))
		}
	}()
	f()
	return nil
}
