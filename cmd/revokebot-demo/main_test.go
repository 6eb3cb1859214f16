package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests in this package must not run in parallel: run changes the
// working directory while it runs.

const wait = 10 * time.Second

// transcript is the demo's output, safe to read while run writes it.
type transcript struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func (tr *transcript) Write(p []byte) (int, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	close(tr.changed)
	tr.changed = make(chan struct{})
	return tr.b.Write(p)
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.b.String()
}

// session is a demo run driven line by line, as a person at the terminal.
type session struct {
	t    *testing.T
	in   *io.PipeWriter
	out  *transcript
	done chan error
	mark int // expect looks at the output after this offset
}

func start(t *testing.T) *session {
	t.Helper()
	return startWith(t, options{})
}

// startWith starts a session with the given options; the banner has been
// shown when it returns.
func startWith(t *testing.T, opts options) *session {
	t.Helper()
	inR, inW := io.Pipe()
	s := &session{t: t, in: inW, out: &transcript{changed: make(chan struct{})}, done: make(chan error, 1)}
	go func() { s.done <- run(context.Background(), inR, s.out, opts) }()
	t.Cleanup(func() {
		inW.Close()
		select {
		case <-s.done:
		case <-time.After(2 * wait):
			t.Errorf("run did not return after its input ended")
		}
		if t.Failed() {
			t.Logf("transcript:\n%s", s.out.String())
		}
	})
	s.expect("line and go through the history.")
	return s
}

// send types a line.
func (s *session) send(line string) {
	s.t.Helper()
	if _, err := fmt.Fprintln(s.in, line); err != nil {
		s.t.Fatalf("send %q: %v", line, err)
	}
}

// expect waits for substr in the output after the last match, and returns
// the output from there through substr.
func (s *session) expect(substr string) string {
	s.t.Helper()
	return s.expectWithin(substr, wait)
}

// expectWithin is expect with its own patience, for what takes time by design
// (a request's expiry).
func (s *session) expectWithin(substr string, d time.Duration) string {
	s.t.Helper()
	deadline := time.After(d)
	for {
		s.out.mu.Lock()
		all, changed := s.out.b.String(), s.out.changed
		s.out.mu.Unlock()
		if i := strings.Index(all[s.mark:], substr); i >= 0 {
			seen := all[s.mark : s.mark+i+len(substr)]
			s.mark += i + len(substr)
			return seen
		}
		select {
		case <-changed:
		case <-deadline:
			s.t.Fatalf("no %q in the output after %s; the rest of the output:\n%s", substr, d, all[s.mark:])
		}
	}
}

// typeRaw sends keys as a terminal would (no newline added).
func (s *session) typeRaw(keys string) {
	s.t.Helper()
	if _, err := io.WriteString(s.in, keys); err != nil {
		s.t.Fatalf("type %q: %v", keys, err)
	}
}

// ended waits for run to return and checks that it returned nil.
func (s *session) ended(what string) {
	s.t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			s.t.Fatalf("run returned %v after %s, want nil", err, what)
		}
	case <-time.After(2 * wait):
		s.t.Fatalf("run did not return after %s", what)
	}
}

// eventually waits for substr anywhere in the output.
func (s *session) eventually(substr string) {
	s.t.Helper()
	deadline := time.After(wait)
	for {
		s.out.mu.Lock()
		all, changed := s.out.b.String(), s.out.changed
		s.out.mu.Unlock()
		if strings.Contains(all, substr) {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			s.t.Fatalf("no %q in the output after %s", substr, wait)
		}
	}
}

// quit types quit and checks that run returns nil.
func (s *session) quit() {
	s.t.Helper()
	s.send("quit")
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			s.t.Fatalf("run returned %v, want nil", err)
		}
	case <-time.After(2 * wait):
		s.t.Fatalf("run did not return after quit")
	}
	if !strings.HasSuffix(s.out.String(), "bye\n") {
		s.t.Errorf("output does not end with bye")
	}
}

var requestIDRE = regexp.MustCompile("Request ID `([0-9a-f-]{36})`")

func TestRevokeApproveFlow(t *testing.T) {
	s := start(t)
	s.send(`/revoke alice@example.com --devices --reason "laptop stolen"`)
	msg := s.expect("[Approve] [Deny]")
	for _, want := range []string{
		"#security  revokebot:",
		"Request to revoke every Cloudflare Access session of",
		"alice@example.com",
		"Requested by: @uria",
		"Device sessions: yes",
		"laptop stolen",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("approval message lacks %q:\n%s", want, msg)
		}
	}
	m := requestIDRE.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no request ID in the approval message:\n%s", msg)
	}
	id, short := m[1], m[1][:8]
	s.expect("#security  revokebot, only visible to @uria: ⌛ Request `" + id + "` to revoke ")
	s.expect(" is waiting for an approver in #security.")
	s.eventually("#revokebot-audit  revokebot: requested request=" + id + " ")

	// The requester may not approve their own request: only they are told.
	s.send("approve " + short + " as URIA")
	s.expect("#security  revokebot, only visible to @uria: ⛔ You cannot approve your own request")

	s.send("make me a sandwich")
	s.expect(`unknown command "make me a sandwich": type "help"`)

	s.send("approve " + short + " as UBOB")
	s.expect("(@bob clicks [Approve], then [Revoke now] in the confirm dialog)")
	call := s.expect("→ 200 OK")
	if !strings.Contains(call, "cloudflare  POST /client/v4/accounts/acc-test/access/organizations/revoke_user?devices=true ") ||
		!strings.Contains(call, `"email":"alice@example.com"`) || !strings.Contains(call, `"devices":true`) {
		t.Errorf("Cloudflare call printed as:\n%s", call)
	}
	s.expect("✅ Approved by @bob. *Revoked*")
	s.eventually("#revokebot-audit  revokebot: approved request=" + id + " ")
	s.eventually("#revokebot-audit  revokebot: revoked request=" + id + " ")
	out := s.out.String()
	if !strings.Contains(out, "refused request="+id+" ") || !strings.Contains(out, "actor=@bob requester=@uria devices=true") {
		t.Errorf("audit trail incomplete:\n%s", out)
	}
	if n := strings.Count(out, "cloudflare  POST"); n != 1 {
		t.Errorf("%d Cloudflare calls printed, want 1", n)
	}

	// The buttons are gone: nobody can click again.
	s.send("deny " + short + " as UCARL")
	s.expect("deny: request " + id + " is already decided")
	s.quit()
}

func TestDenyRefusalsAndMistakes(t *testing.T) {
	s := start(t)
	s.send("/revoke bob@example.com as @mallory")
	s.expect("only visible to @mallory: ⛔ You are not allowed to request revocations.")
	s.send("/revoke not-an-email")
	s.expect("#security  revokebot, only visible to @uria:\n    ⚠️ invalid command: ")
	s.expect("not-an-email")
	s.expect(" is not a single email address")
	s.send("approve as UBOB")
	s.expect("approve: no request is waiting for a decision")
	s.send("/revoke carol@example.com")
	s.expect("[Approve] [Deny]")
	s.send("approve")
	s.expect("who clicks Approve? e.g. approve <id> as UBOB")
	s.send("approve zzz as UBOB")
	s.expect(`no request message in #security has an ID starting with "zzz"`)
	s.send("approve as @mallory")
	s.expect("only visible to @mallory: ⛔ You are not allowed to decide revocation requests.")
	s.send("deny as carl") // an approver through the user group: a form asks why
	s.expect("form  revokebot, only visible to @carl:")
	s.expect("(the form is open for @carl: reason <text> as UCARL fills it in")
	s.send(`reason "not this one"`)
	s.expect("⛔ *Denied* by @carl")
	s.send("who")
	s.expect("@carl     UCARL     approver through the user group @secops (SSECOPS)")
	// The end of the input ends the demo, as Ctrl-D does.
	s.in.Close()
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Fatalf("run returned %v at the end of input, want nil", err)
		}
	case <-time.After(2 * wait):
		t.Fatalf("run did not return at the end of its input")
	}
	s.expect("bye")
}

func TestRenderText(t *testing.T) {
	n := names{"UBOB": "@bob", "CSECURITY": "#security", "SSECOPS": "@secops"}
	for in, want := range map[string]string{
		"<@UBOB> and <@UNKNOWN>":          "@bob and @UNKNOWN",
		"in <#CSECURITY> or <#CX|random>": "in #security or #random",
		"at <!date^1700000000^{date_short_pretty} {time}|2023-11-14 22:13 UTC>.": "at 2023-11-14 22:13 UTC.",
		"&lt;!channel&gt; &amp;amp; <!here>":                                     "<!channel> &amp; @here",
		"<!subteam^SSECOPS> <mailto:a@b.c|a@b.c> <https://x.y|site>":             "@secops a@b.c site",
		":white_check_mark: done :unknown_emoji:":                                "✅ done :unknown_emoji:",
	} {
		if got := n.text(in); got != want {
			t.Errorf("text(%q) = %q, want %q", in, got, want)
		}
	}
}

// The production binary must carry none of the fakes, nor the testing package.
func TestProductionBinaryCarriesNoFakes(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/revokebot/revokebot/cmd/revokebot").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list listed only %v", deps)
	}
	for _, dep := range deps {
		switch dep {
		case "testing", "net/http/httptest",
			"github.com/revokebot/revokebot/bot/bottest",
			"github.com/revokebot/revokebot/cloudflare/cftest":
			t.Errorf("cmd/revokebot depends on %s", dep)
		}
	}
}

// submit types a /revoke and returns the new request's ID.
func (s *session) submit(args string) string {
	s.t.Helper()
	s.send("/revoke " + args)
	msg := s.expect("[Approve] [Deny]")
	m := requestIDRE.FindStringSubmatch(msg)
	if m == nil {
		s.t.Fatalf("no request ID in the approval message:\n%s", msg)
	}
	s.expect(" is waiting for an approver in #security.")
	return m[1]
}

func TestFailCloudflareAndLateClick(t *testing.T) {
	s := start(t)
	s.send("fail-cloudflare 0")
	s.expect("fail-cloudflare [n] [status]: n from 1 to 20")
	s.send("fail-cloudflare 1 99")
	s.expect("fail-cloudflare [n] [status]: n from 1 to 20")

	// A 4xx is not retried: the request fails.
	s.send("fail-cloudflare 1 403")
	s.expect("(the fake Cloudflare will answer the next revoke_user call with 403 Forbidden, then succeed again;")
	id := s.submit("alice@example.com")
	s.send("approve " + id[:8] + " as UBOB")
	s.expect("→ 403 Forbidden")
	s.expect("*Revocation failed*")
	s.eventually("#revokebot-audit  revokebot: failed request=" + id + " ")

	// A late click on the decided request: only the clicker is told.
	s.send("deny " + id[:8] + " as UCARL")
	s.expect("deny: request " + id + " is already decided: its message has no buttons any more (to click anyway, as someone whose Slack has not caught up: late deny " + id[:8] + " as UCARL)")
	s.send("late deny " + id[:8] + " as UCARL")
	s.expect("(@carl clicks [Deny] on the message as it was first posted)")
	s.expect("only visible to @carl: ")
	s.expect("already approved by @bob (now failed)")
	s.send("late frobnicate")
	s.expect("late approve <id> as UCARL, or late deny <id> as UCARL")

	// A 5xx is retried: the second attempt succeeds.
	s.send("fail-cloudflare 1")
	s.expect("with 500 Internal Server Error, then succeed again;")
	id2 := s.submit("bob@example.com")
	s.send("approve " + id2[:8] + " as UBOB")
	s.expect("→ 500 Internal Server Error")
	s.expect("→ 200 OK")
	s.expect("*Revoked*")
	s.quit()
}

func TestWaitShowsExpiryAndLateClick(t *testing.T) {
	const ttl = 5 * time.Second
	s := startWith(t, options{ttl: ttl})
	s.expect("") // the banner
	if !strings.Contains(s.out.String(), "Requests expire after 5s without a decision (-ttl).") {
		t.Errorf("the banner does not give the TTL")
	}
	s.send("wait")
	s.expect("wait: no request is waiting for a decision")
	s.send("wait 0s")
	s.expect("wait: give a duration up to 10m0s")
	s.send("wait 100ms")
	s.expect("(waiting 100ms…)")

	// Typed ahead, so that the request is still waiting when wait runs.
	s.send("/revoke alice@example.com\nwait")
	msg := s.expect("[Approve] [Deny]")
	m := requestIDRE.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no request ID in the approval message:\n%s", msg)
	}
	id := m[1]
	s.expect("(waiting up to ")
	s.expect(" until " + id + " is decided or expires…)")
	s.expectWithin("*Expired*", 2*wait+ttl)
	s.eventually("#revokebot-audit  revokebot: expired request=" + id + " ")

	s.send("wait " + id[:8])
	s.expect("wait: request " + id + " is already decided")
	s.send("approve " + id[:8] + " as UBOB")
	s.expect("is already decided")
	s.send("late approve as UBOB") // the only decided request
	s.expect("(@bob clicks [Approve] on the message as it was first posted, then [Revoke now] in the confirm dialog)")
	s.expect("only visible to @bob: ")
	s.expect("This request already expired ")
	s.quit()
}

func TestWaitRefusesLongWaits(t *testing.T) {
	s := start(t) // the default TTL, 30m
	s.submit("alice@example.com")
	s.send("wait")
	s.expect("wait: that request expires in about ")
	s.expect("too long to wait here. Run the demo with -ttl 30s")
	s.quit()
}

func TestLineEditingAndHistory(t *testing.T) {
	s := startWith(t, options{editor: true})
	s.typeRaw("/revoke alice@example.com\r")
	s.expect("[Approve] [Deny]")
	s.expect(" is waiting for an approver in #security.")
	// Up arrow, Enter: the same command again, from the history.
	s.typeRaw("\x1b[A\r")
	s.expect("[Approve] [Deny]")
	s.expect(" is waiting for an approver in #security.")
	if n := len(requestIDRE.FindAllString(s.out.String(), -1)); n < 2 {
		t.Fatalf("%d approval messages, want 2", n)
	}
	// Editing: a typo taken back (Backspace), and a letter put in front
	// (Left arrow twice).
	s.typeRaw("whx\x7fo\r")
	s.expect("Cast:")
	s.typeRaw("ho\x1b[D\x1b[Dw\r")
	s.expect("Cast:")
	// Output printed while a line waits goes above the prompt, with the
	// terminal's line endings.
	if !strings.Contains(s.out.String(), "Cast:\r\n") {
		t.Errorf("the line editor's output lacks CRLF line endings")
	}
	// Ctrl-C ends the demo, as Ctrl-D does.
	s.typeRaw("\x03")
	s.ended("Ctrl-C")
	s.expect("bye")
}

func TestColorShowsSlackStyles(t *testing.T) {
	s := startWith(t, options{color: true})
	s.send("/revoke alice@example.com")
	msg := s.expect("[Approve] [Deny]")
	if want := "🚨 \x1b[1mRequest to revoke every Cloudflare Access session of"; !strings.Contains(msg, want) || strings.Contains(msg, "*Request") {
		t.Errorf("bold title not styled:\n%q", msg)
	}
	if !strings.Contains(msg, "Request ID \x1b[36m") || strings.Contains(msg, "Request ID `") {
		t.Errorf("code not styled:\n%q", msg)
	}
	s.send("help") // the demo's own text is never styled
	s.expect("/revoke alice@example.com --devices --reason \"laptop stolen\" [as URIA]")
	s.quit()
}

func TestStyled(t *testing.T) {
	const (
		b, eb = "\x1b[1m", "\x1b[22m"
		i, ei = "\x1b[3m", "\x1b[23m"
		x, ex = "\x1b[9m", "\x1b[29m"
		c, ec = "\x1b[36m", "\x1b[39m"
	)
	for in, want := range map[string]string{
		"*Revoked* at noon":                  b + "Revoked" + eb + " at noon",
		"_none given_":                       i + "none given" + ei,
		"~gone~, *bold _both_*.":             x + "gone" + ex + ", " + b + "bold " + i + "both" + ei + eb + ".",
		"Request ID `3f2b-*x*_y_`":           "Request ID " + c + "3f2b-*x*_y_" + ec,
		"```a *b*\nc```":                     c + "a *b*\nc" + ec,
		"first_last@example.com and a*b*c":   "first_last@example.com and a*b*c",
		"* not bold * and *open":             "* not bold * and *open",
		"*two\nlines*":                       "*two\nlines*",
		"**":                                 "**",
		"(*x*) \"_y_\"":                      "(" + b + "x" + eb + ") \"" + i + "y" + ei + "\"",
		"⛔ *Denied* by @carl":                "⛔ " + b + "Denied" + eb + " by @carl",
		"an `unclosed code span":             "an `unclosed code span",
		"snake_case_name and 2*3*4":          "snake_case_name and 2*3*4",
		"*Revocation failed*: 403 Forbidden": b + "Revocation failed" + eb + ": 403 Forbidden",
	} {
		if got := styled(in); got != want {
			t.Errorf("styled(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for _, tt := range []struct {
		args         []string
		noColor, tty bool
		want         options
		wantErr      string
	}{
		{args: nil, want: options{ttl: 30 * time.Minute, approvals: 1}},
		{args: nil, tty: true, want: options{ttl: 30 * time.Minute, approvals: 1, color: true}},
		{args: nil, tty: true, noColor: true, want: options{ttl: 30 * time.Minute, approvals: 1}},
		{args: []string{"-color=always"}, noColor: true, want: options{ttl: 30 * time.Minute, approvals: 1, color: true}},
		{args: []string{"-color", "never", "-ttl", "20s"}, tty: true, want: options{ttl: 20 * time.Second, approvals: 1}},
		{args: []string{"-ttl", "500ms"}, wantErr: "-ttl 500ms: give a duration from 1s to 168h"},
		{args: []string{"-approvals", "2"}, want: options{ttl: 30 * time.Minute, approvals: 2}},
		{args: []string{"-approvals", "3", "-escalate-after", "1m"}, want: options{ttl: 30 * time.Minute, approvals: 3, escalateAfter: time.Minute}},
		{args: []string{"-approvals", "3"}, wantErr: "-approvals 3: only @bob and @carl may approve @uria's requests"},
		{args: []string{"-approvals", "0"}, wantErr: "-approvals 0: give 1, 2 or 3"},
		{args: []string{"-approvals", "6", "-escalate-after", "1m"}, wantErr: "-approvals 6: give 1, 2 or 3"},
		{args: []string{"-ttl", "30s", "-escalate-after", "30s"}, wantErr: "-escalate-after 30s: give a duration shorter than -ttl (30s)"},
		{args: []string{"-escalate-after", "-1s"}, wantErr: "-escalate-after -1s: give a duration shorter than -ttl"},
		{args: []string{"-color", "rainbow"}, wantErr: `-color "rainbow": give auto, always or never`},
		{args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	} {
		got, err := parseFlags(tt.args, io.Discard, tt.noColor, tt.tty)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parseFlags(%q) = %v, want error %q", tt.args, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("parseFlags(%q, NO_COLOR %v, tty %v) = %+v, %v; want %+v", tt.args, tt.noColor, tt.tty, got, err, tt.want)
		}
	}
	var help bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &help, false, false); !errors.Is(err, flag.ErrHelp) || !strings.Contains(help.String(), "-ttl") {
		t.Errorf("-h: %v\n%s", err, help.String())
	}
}

// The README's demo section and the demo's help name every command and flag.
func TestReadmeAndHelpListEveryCommand(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Try it without a workspace\n")
	if !ok {
		t.Fatal(`README.md has no "## Try it without a workspace"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var usage bytes.Buffer
	parseFlags([]string{"-h"}, &usage, false, false)
	for _, word := range []string{"/revoke", "approve", "deny", "reason", "close", "late approve", "late deny", "fail-cloudflare", "wait", "who", "help", "quit", "Ctrl-D",
		"/revoke status", "/revoke pending", "@alice"} {
		if !strings.Contains(section, word) {
			t.Errorf("the README's demo section does not mention %q", word)
		}
		if !strings.Contains(commands, word) {
			t.Errorf("the demo's help does not mention %q", word)
		}
	}
	for _, flag := range []string{"-ttl", "-approvals", "-escalate-after", "-color"} {
		if !strings.Contains(section, flag) {
			t.Errorf("the README's demo section does not mention %s", flag)
		}
		if !strings.Contains(usage.String(), flag) {
			t.Errorf("the demo's usage does not mention %s", flag)
		}
	}
}

// A request naming several people, by mention and by email: the message
// shows who each mention resolved to, one target fails at Cloudflare, and
// the request is reported as partly failed, to the channel, the audit (one
// record per target) and the requester by DM.
func TestBulkMentionsAndPartialFailure(t *testing.T) {
	s := start(t)
	s.send("/revoke @alice @zed")
	s.expect("invalid command: target 2 `\"@zed\"`: a typed @name is not a mention")
	s.send("/revoke @alice @deploybot")
	s.expect("only visible to @uria:\n    ⛔ Nothing was requested:\n    • target 2, @deploybot: this is a bot")

	s.send("fail-cloudflare 1 403")
	s.expect("with 403 Forbidden, then succeed again;")
	s.send(`/revoke @alice dave@example.com @alice --reason "phished"`)
	msg := s.expect("[Approve] [Deny]")
	for _, want := range []string{
		"Request to revoke every Cloudflare Access session of 2 people",
		"• @alice → `alice@example.com`",
		"• `dave@example.com`",
		"Approvals: 0 of 1",
		"🔔 @secops: a revocation is waiting for approval.",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("approval message lacks %q:\n%s", want, msg)
		}
	}
	m := requestIDRE.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no request ID in the approval message:\n%s", msg)
	}
	id := m[1]
	s.expect("to revoke @alice (`alice@example.com`), `dave@example.com` is waiting for an approver in #security.")

	s.send("approve " + id[:8] + " as UBOB")
	s.expect(`{"email":"alice@example.com",`)
	s.expect("→ 403 Forbidden")
	s.expect(`{"email":"dave@example.com",`)
	s.expect("→ 200 OK")
	s.eventually("*Partly failed: 1 of 2 revoked, 1 failed*")
	s.eventually("direct message to @uria  revokebot: ❌ Your request `" + id + "` to revoke @alice (`alice@example.com`), `dave@example.com` was approved by @bob, but *1 of 2 revoked, 1 failed*.")
	s.eventually("#revokebot-audit  revokebot: failed request=" + id + " record=")
	s.eventually("#revokebot-audit  revokebot: revoked request=" + id + " record=")
	out := s.out.String()
	for _, re := range []string{
		"failed request=" + id + " record=\\d+ `target=\"alice@example.com\"` person=@alice actor=revokebot",
		"revoked request=" + id + " record=\\d+ `target=\"dave@example.com\"` actor=revokebot .*request done: 1 of 2 revoked, 1 failed",
		"approved request=" + id + " record=\\d+ targets=2 .*`detail=\"1 of 1\"`",
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no audit record matching %s", re)
		}
	}
	s.quit()
}

// A quorum of two: the requester cannot be one of them, an approver counts
// once, a guest listed through a group is refused; then a denial through
// the form, which refuses a blank reason and keeps the one given.
func TestQuorumGuestAndDenyReason(t *testing.T) {
	s := startWith(t, options{approvals: 2})
	if !strings.Contains(s.out.String(), "Each request needs 2 approvals from distinct approvers") {
		t.Errorf("the banner does not give the quorum")
	}
	s.send("/revoke @dave")
	msg := s.expect("[Approve] [Deny]")
	id := requestIDRE.FindStringSubmatch(msg)[1]
	s.expect("is waiting for 2 approvers in #security.")

	s.send("approve " + id[:8] + " as UBOB")
	s.expect("Approvals: 1 of 2: @bob")
	s.expect("[Approve] [Deny]")
	s.send("approve " + id[:8] + " as UBOB")
	s.expect("only visible to @bob: ⛔ You already decided on this request; each approver counts once. It has 1 of the 2 approvals it needs.")
	s.send("approve " + id[:8] + " as URIA")
	s.expect("only visible to @uria: ⛔ You cannot approve your own request")
	s.send("approve " + id[:8] + " as @gus")
	s.expect("only visible to @gus: ⛔ Guests of this workspace may not request or decide revocations")
	s.eventually("approved request=" + id + " ")
	if out := s.out.String(); !strings.Contains(out, "`detail=\"1 of 2\"`") || strings.Contains(out, "cloudflare  POST") {
		t.Errorf("want one approval audited as 1 of 2, and no Cloudflare call yet:\n%s", out)
	}

	s.send("reason too early")
	s.expect("reason: no deny form is open: an approver's Deny opens one")
	s.send("deny " + id[:8] + " as UCARL")
	form := s.expect("[Cancel] [Deny]")
	for _, want := range []string{"form  revokebot, only visible to @carl:", "┃ Deny revocation", "┃ Reason for the denial: ▁"} {
		if !strings.Contains(form, want) {
			t.Errorf("form lacks %q:\n%s", want, form)
		}
	}
	s.expect("(the form is open for @carl: reason <text> as UCARL fills it in and presses [Deny]; close as UCARL presses [Cancel])")
	s.send("reason as UCARL")
	s.expect(`reason: Slack's form does not send an empty reason`)
	s.send(`reason "   " as UCARL`)
	s.expect("The form stays open and says, under Reason for the denial:\n    ⚠️ Say why you deny this revocation")
	s.send("close as UCARL")
	s.expect("(@carl presses [Cancel]: the form closes, nothing is decided, and the request still waits)")
	s.send("reason x as UCARL")
	s.expect("reason: no deny form is open for @carl: click Deny first")

	s.send("deny " + id[:8] + " as UCARL")
	s.expect("(the form is open for @carl")
	s.send(`reason "wrong person, see SEC-12" as UCARL`)
	s.expect("(@carl types the reason and presses [Deny] in the form)")
	s.eventually("⛔ *Denied* by @carl")
	s.eventually("*Reason for the denial*, as the approver gave it:\n    wrong person, see SEC-12")
	s.eventually("direct message to @uria  revokebot: ⛔ Your request `" + id + "` to revoke @dave (`dave@example.com`) was *denied* by @carl. Their reason: `wrong person, see SEC-12`")
	s.eventually("denied request=" + id + " ")
	if !strings.Contains(s.out.String(), "actor=@carl requester=@uria devices=false warp_reauth=false `detail=\"wrong person, see SEC-12\"`") {
		t.Errorf("the denied record lacks the reason")
	}
	s.quit()
}

// /revoke status and /revoke pending answer privately, and only
// requesters and approvers.
func TestStatusAndPending(t *testing.T) {
	s := start(t)
	s.send("/revoke pending")
	s.expect("only visible to @uria: ✅ No request is waiting for a decision or being carried out.")
	id := s.submit("@alice")
	s.send("/revoke pending as UBOB")
	s.expect("only visible to @bob:\n    *1 open request(s)*, oldest first:\n    • `" + id[:8] + "` @alice (`alice@example.com`) by @uria: pending, 0 of 1, expires ")
	s.send("/revoke status " + id[:6])
	st := s.expect("Message in #security")
	if !strings.Contains(st, "*Request* `"+id+"`, requested by @uria") || !strings.Contains(st, "*pending*") || !strings.Contains(st, "Approvals: 0 of 1") {
		t.Errorf("status reply:\n%s", st)
	}
	s.expect("• @alice → `alice@example.com`")
	s.send("/revoke status " + id[:8] + " as @mallory")
	s.expect("only visible to @mallory: ⛔ You are not allowed to request revocations.")
	s.send("/revoke status zz")
	s.expect("the request ID `\"zz\"` contains `z` at the start")
	s.quit()
}

// With -escalate-after, a request still undecided is escalated to @dana in
// its thread, and from then on she may approve it.
func TestEscalation(t *testing.T) {
	// revokebot looks for requests to escalate every tenth of the TTL.
	s := startWith(t, options{ttl: 10 * time.Second, escalateAfter: time.Second})
	if !strings.Contains(s.out.String(), "A request still undecided after 1s is escalated to @dana (-escalate-after).") {
		t.Errorf("the banner does not give the escalation")
	}
	id := s.submit("dave@example.com")
	s.expectWithin("#security  revokebot, in the thread of request "+id[:8]+": 🚨 *Escalated:* @dana, this request has waited ", 2*wait)
	s.eventually("the escalation approvers may approve this request too.")
	s.eventually("escalated request=" + id + " ")
	s.send("approve " + id[:8] + " as dana")
	s.expect("✅ Approved by @dana. *Revoked*")
	s.quit()
}

func TestSlackText(t *testing.T) {
	d := &demo{}
	for in, want := range map[string]string{
		"@alice dave@example.com":           "<@UALICE01|alice> dave@example.com",
		"@Alice,@dave @deploybot":           "<@UALICE01|Alice>,@dave <@UDEPLOYBOT|deploybot>",
		"@zed bob@alice.example @bob":       "@zed bob@alice.example @bob",
		`x --reason "a<b & c>d, ask @dave"`: `x --reason "a&lt;b &amp; c&gt;d, ask <@UDAVE001|dave>"`,
		"<@UALICE01|alice>":                 "&lt;@UALICE01|alice&gt;",
	} {
		if got := d.slackText(in); got != want {
			t.Errorf("slackText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRenderWhere(t *testing.T) {
	n := names{"URIA": "@uria", "CSECURITY": "#security"}
	for in, want := range map[string]string{
		"CSECURITY": "#security",
		"DURIA":     "direct message to @uria",
		"URIA":      "direct message to @uria",
		"DUNKNOWN":  "direct message to @UNKNOWN",
		"D0":        "@D0",
	} {
		if got := n.where(in); got != want {
			t.Errorf("where(%q) = %q, want %q", in, got, want)
		}
	}
}
