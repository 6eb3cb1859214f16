package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
	inR, inW := io.Pipe()
	s := &session{t: t, in: inW, out: &transcript{changed: make(chan struct{})}, done: make(chan error, 1)}
	go func() { s.done <- run(context.Background(), inR, s.out) }()
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
	s.expect("quit                  stop (or Ctrl-D)\n")
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
	deadline := time.After(wait)
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
			s.t.Fatalf("no %q in the output after %s; the rest of the output:\n%s", substr, wait, all[s.mark:])
		}
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
	s.expect("#security  revokebot, only visible to @uria: ⌛ Request `" + id + "` to revoke alice@example.com is waiting for an approver in #security.")
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
	s.expect("#security  revokebot, only visible to @uria:\n    ⚠️ invalid command: `\"not-an-email\"` is not a single email address")
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
	s.send("deny as carl") // an approver through the user group
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
