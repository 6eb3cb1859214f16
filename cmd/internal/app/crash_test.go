package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// childEnv marks a child process started by spawn: it runs revokebot's Main.
const childEnv = "REVOKEBOT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Args = os.Args[:1] // drop the test flags: revokebot serves
		os.Exit(Main("test"))
	}
	os.Exit(m.Run())
}

// startProcess is start, with revokebot in a child process that a test can
// kill -9 (see kill).
func startProcess(t *testing.T, overrides map[string]string) *harness {
	t.Helper()
	h := start(t, overrides)
	h.stop()
	h.spawn()
	return h
}

// child returns the command that runs revokebot as a child process with
// h.env (and nothing of the test's own environment), its output in h.logs.
func (h *harness) child() *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = h.t.TempDir() // no .env there
	cmd.Env = []string{childEnv + "=1", "PATH=" + os.Getenv("PATH"), "TMPDIR=" + os.TempDir()}
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	h.logs = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = h.logs, h.logs
	return cmd
}

// spawn starts revokebot as a child process (see child), and waits for its
// Socket Mode connection.
func (h *harness) spawn() {
	h.t.Helper()
	connected := h.slack.Connections()
	h.launch()
	done := h.done
	for deadline := time.Now().Add(wait); h.slack.Connections() <= connected; {
		select {
		case err := <-done:
			h.cancel = nil
			h.t.Fatalf("revokebot exited at start: %v\n%s", err, h.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("revokebot did not connect within %s\n%s", wait, h.logs.String())
		}
	}
}

// launch starts revokebot as a child process (see child), without waiting
// for anything.
func (h *harness) launch() {
	h.t.Helper()
	cmd := h.child()
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("start revokebot: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	h.proc, h.done = cmd, done
	h.cancel = func() { cmd.Process.Signal(syscall.SIGTERM) }
	h.t.Cleanup(h.stop)
}

// kill kills the child process at once (SIGKILL: no cleanup of any kind).
func (h *harness) kill() {
	h.t.Helper()
	if h.proc == nil || h.cancel == nil {
		h.t.Fatal("kill: no child process running")
	}
	h.proc.Process.Kill()
	err := <-h.done
	if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		h.t.Fatalf("child did not die of SIGKILL: %v\n%s", err, h.logs.String())
	}
	h.cancel = nil
}

// withDB calls fn with the bot's database, opened beside the bot.
func (h *harness) withDB(fn func(*sqlite.DB)) {
	h.t.Helper()
	db, err := sqlite.Open(context.Background(), h.env["REVOKEBOT_DATABASE"])
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	fn(db)
}

// storedState reads request id's state from the database, as the bot left it.
func (h *harness) storedState(id string) approvals.State {
	h.t.Helper()
	var r approvals.Request
	var err error
	h.withDB(func(db *sqlite.DB) { r, err = db.Get(context.Background(), id) })
	if err != nil {
		h.t.Fatal(err)
	}
	return r.State()
}

// undelivered returns how many events still wait for part to be delivered.
func (h *harness) undelivered(part approvals.Part) int {
	h.t.Helper()
	var ds []approvals.Delivery
	var err error
	h.withDB(func(db *sqlite.DB) { ds, err = db.Undelivered(context.Background(), part, 1000) })
	if err != nil {
		h.t.Fatal(err)
	}
	return len(ds)
}

// auditRecordNumbers returns, per event word, the distinct record numbers of
// request id's audit records.
func (h *harness) auditRecordNumbers(id string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, m := range h.slack.Messages(auditChannel) {
		if !strings.Contains(m.Text, "request="+id+" ") {
			continue
		}
		word, rest, _ := strings.Cut(m.Text, " ")
		_, num, _ := strings.Cut(rest, " record=")
		num, _, _ = strings.Cut(num, " ")
		if out[word] == nil {
			out[word] = map[string]bool{}
		}
		out[word][num] = true
	}
	return out
}

// assertSettled checks that request id ended revoked exactly once: one audit
// record per event, the message showing it, and nothing more arriving.
func (h *harness) assertSettled(m bottest.Message, id string) {
	h.t.Helper()
	h.waitMessageState(m, "Revoked")
	h.waitAudit(id, "requested", "approved", "revoked")
	time.Sleep(200 * time.Millisecond) // a wrong second record would show by now
	if got := h.auditEvents(id); strings.Join(got, " ") != "requested approved revoked" {
		h.t.Fatalf("audit records %v", got)
	}
}

func TestKillDuringCloudflareCall(t *testing.T) {
	t.Parallel()
	h := startProcess(t, nil)
	m := h.request("alice@example.com --devices")
	id := requestID(t, m)
	h.cf.Script(cftest.Response{Delay: time.Minute}) // Cloudflare takes its time
	h.click(approver, m, "revoke_approve")
	h.cf.WaitCalls(t, 1, wait)
	// The approved record is marked delivered (a kill while Slack takes a
	// record is TestKillAtRandomMoments' business).
	h.slack.Eventually("the records marked delivered", wait, func() bool { return h.undelivered(approvals.AuditRecord) == 0 })
	h.kill() // between the approval and Cloudflare's answer

	h.spawn()
	calls := h.cf.WaitCalls(t, 2, wait) // resumed: revoking again is idempotent
	h.assertSettled(m, id)
	if rec := h.auditRecord(id, "revoked"); !strings.Contains(rec, "resumed after a restart") {
		t.Fatalf("revoked record: %s", rec)
	}
	if calls[1].Body.Email != "alice@example.com" || calls[1].Query.Get("devices") != "true" {
		t.Fatalf("resumed call %+v", calls[1].Body)
	}
	h.stop()
	if n := len(h.cf.Calls()); n != 2 {
		t.Fatalf("%d Cloudflare calls, want 2", n)
	}
}

func TestKillBeforeAuditDelivered(t *testing.T) {
	t.Parallel()
	h := startProcess(t, nil)
	m := h.request("alice@example.com")
	id := requestID(t, m)
	h.slack.WaitMessage(auditChannel, func(m bottest.Message) bool { return strings.HasPrefix(m.Text, "requested ") }, wait)
	// Slack hangs: the approved record is stuck on its way, and so is what follows.
	release := h.slack.Hold("chat.postMessage")
	h.click(approver, m, "revoke_approve")
	h.cf.WaitCalls(t, 1, wait)
	h.slack.Eventually("the revocation recorded", wait, func() bool { return h.storedState(id) == approvals.StateRevoked })
	h.kill()
	release()

	h.spawn()
	h.assertSettled(m, id) // delivered from the database, once each
	if n := len(h.cf.Calls()); n != 1 {
		t.Fatalf("%d Cloudflare calls, want 1: the outcome was already recorded", n)
	}
}

func TestKillWhileMessageUpdateHeld(t *testing.T) {
	t.Parallel()
	h := startProcess(t, nil)
	m := h.request("alice@example.com")
	id := requestID(t, m)
	release := h.slack.Hold("chat.update")
	h.click(approver, m, "revoke_approve")
	h.slack.Eventually("a message update on its way", wait, func() bool { return h.slack.HeldCalls("chat.update") > 0 })
	h.slack.Eventually("the revocation recorded", wait, func() bool { return h.storedState(id) == approvals.StateRevoked })
	// A hung message update holds up no audit record.
	h.waitAudit(id, "requested", "approved", "revoked")
	h.slack.Eventually("the records marked delivered", wait, func() bool { return h.undelivered(approvals.AuditRecord) == 0 })
	h.kill()
	release()

	h.spawn()
	h.assertSettled(m, id) // the message is redrawn, no record posted twice
}

// TestKillAtRandomMoments kills revokebot at a random moment after the
// approval, several times, and checks that each request still ends revoked
// with one record per event. A kill that lands between Slack taking a record
// and revokebot marking it delivered (about a millisecond) may post that
// record again; such a copy carries the same record number, so the test
// counts distinct records.
func TestKillAtRandomMoments(t *testing.T) {
	t.Parallel()
	h := startProcess(t, nil)
	for i := range 5 {
		{
			h.cf.Script(cftest.Response{Delay: 30 * time.Millisecond})
			m := h.request(fmt.Sprintf("user%d@example.com", i))
			id := requestID(t, m)
			h.click(approver, m, "revoke_approve")
			time.Sleep(time.Duration(rand.IntN(120)) * time.Millisecond)
			h.kill()
			h.spawn()
			if h.storedState(id) == approvals.StatePending {
				// Killed before the click was handled: Slack would not
				// redeliver an acked click, so the approver clicks again.
				h.click(approver, h.messageNow(m), "revoke_approve")
			}
			h.waitMessageState(m, "Revoked")
			h.slack.Eventually("one record of each event", wait, func() bool {
				nums := h.auditRecordNumbers(id)
				return len(nums) == 3 && len(nums["requested"]) == 1 && len(nums["approved"]) == 1 && len(nums["revoked"]) == 1
			})
		}
	}
}

func TestSignalDuringStartExitsCleanly(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.stop()
	release := h.slack.Hold("auth.test") // revokebot is still starting
	defer release()
	cmd := h.child()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.slack.Eventually("revokebot asking auth.test", wait, func() bool { return h.slack.HeldCalls("auth.test") > 0 })
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("SIGTERM while starting: %v, want exit 0\n%s", err, h.logs.String())
	}
}

// TestKillAfterSlackTookThePosts: Slack takes the approval message and the
// audit records, but revokebot is killed before their answers come back.
// After the restart it finds them in the channels' history, by their
// metadata, and posts none of them again.
func TestKillAfterSlackTookThePosts(t *testing.T) {
	t.Parallel()
	h := startProcess(t, nil)
	release := h.slack.HoldAfter("chat.postMessage")
	if ack := h.command(requester, "alice@example.com"); ack.AckText() != "" {
		t.Fatalf("command refused: %s", ack.AckText())
	}
	// Both the approval message and the requested record are in Slack; their
	// answers are held.
	h.slack.Eventually("both posts taken", wait, func() bool {
		return len(h.slack.Messages(secChannel)) == 1 && len(h.slack.Messages(auditChannel)) == 1
	})
	h.kill()
	release()

	h.spawn()
	m := h.slack.Messages(secChannel)[0]
	id := requestID(t, h.messageNow(m))
	h.slack.Eventually("the approval message adopted", wait, func() bool {
		var r approvals.Request
		h.withDB(func(db *sqlite.DB) { r, _ = db.Get(context.Background(), id) })
		return r.MessageTS == m.TS
	})
	h.click(approver, m, "revoke_approve")
	h.assertSettled(m, id)
	if n := len(h.slack.Messages(secChannel)); n != 1 {
		t.Fatalf("%d approval messages, want 1: the first was adopted", n)
	}
	if got := h.auditEvents(id); strings.Join(got, " ") != "requested approved revoked" {
		t.Fatalf("audit records %v: each exactly once", got)
	}
}
