package app

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// Fault injection end to end: Slack and its socket misbehaving.

func TestWebsocketDroppedMidFlow(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	m := h.request("alice@example.com")
	id := requestID(t, m)
	// The server closes the socket between the request and its approval.
	h.slack.DropConnection()
	h.slack.WaitConnected(2, wait)
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
	h.waitAudit(id, "requested", "approved", "revoked")
	// And the next command is handled on the new connection.
	h.request("bob@example.com")
}

func TestFatalAuthErrorOnReconnectStops(t *testing.T) {
	t.Parallel()
	// slack-go stops by itself on token_revoked, but would retry
	// token_expired for ever: the bot must stop on both.
	for _, code := range []string{"token_revoked", "token_expired", "invalid_auth", "user_removed_from_team", "team_disabled"} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			h := start(t, nil)
			// The app token stops working while the bot runs: its next connection fails for good.
			h.slack.Fail("apps.connections.open", bottest.Failure{Error: code})
			h.slack.DropConnection()
			select {
			case err := <-h.done:
				h.cancel = nil
				if err == nil || !strings.Contains(err.Error(), code) || !strings.Contains(err.Error(), "SLACK_APP_TOKEN") {
					t.Fatalf("run returned %v, want %s naming SLACK_APP_TOKEN", err, code)
				}
				if strings.Contains(err.Error(), h.env["SLACK_APP_TOKEN"]) {
					t.Fatal("the error shows the token")
				}
			case <-time.After(wait):
				t.Fatal("revokebot kept running with a refused app token")
			}
		})
	}
}

func TestPassingConnectErrorIsRetried(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.slack.Fail("apps.connections.open", bottest.Failure{Error: "internal_error"})
	h.slack.DropConnection()
	h.slack.WaitConnected(2, wait)
	h.request("alice@example.com")
}

func TestRedeliveredCommandAfterRestart(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	payload := h.slack.SlashPayload(requester, secChannel, "alice@example.com")
	h.slack.SendEnvelope("env-restart-cmd", "slash_commands", payload, 0)
	h.slack.WaitAck("env-restart-cmd", wait)
	h.slack.WaitMessage(secChannel, func(m bottest.Message) bool { return m.HasButton("revoke_approve") }, wait)
	h.stop()
	// Slack did not see the ack and redelivers to the new process.
	h.boot()
	h.slack.SendEnvelope("env-restart-cmd", "slash_commands", payload, 1)
	h.slack.WaitAck("env-restart-cmd", wait)
	h.slack.Eventually("the redelivered command recognised", wait, func() bool {
		return strings.Contains(h.logs.String(), "ignoring redelivered command: already submitted")
	})
	h.request("bob@example.com")
	if n := len(h.slack.Messages(secChannel)); n != 2 {
		t.Fatalf("%d approval messages, want 2 (alice once, bob)", n)
	}
}

func TestForeignPayloadsRefused(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	for i, forge := range []map[string]any{
		{"team_id": "TOTHER"},
		{"api_app_id": "AOTHER"},
		{"api_app_id": nil},
	} {
		p := h.slack.SlashPayload(requester, secChannel, "alice@example.com")
		for k, v := range forge {
			if v == nil {
				delete(p, k)
			} else {
				p[k] = v
			}
		}
		id := "env-foreign-" + string(rune('a'+i))
		h.slack.SendEnvelope(id, "slash_commands", p, 0)
		if ack := h.slack.WaitAck(id, wait); ack.AckText() != "" {
			t.Fatalf("payload %d: ack says %q", i, ack.AckText())
		}
	}
	m := h.request("bob@example.com") // a payload of ours still works
	// A click from another workspace on a real request does nothing either.
	click := bottest.ClickPayload(approver, m, "revoke_approve", requestID(t, m), h.slack.APIURL()+"../respond/"+approver+"/"+secChannel)
	click["team"] = map[string]any{"id": "TOTHER"}
	h.slack.SendEnvelope("env-foreign-click", "interactive", click, 0)
	h.slack.WaitAck("env-foreign-click", wait) // refused before its ack: nothing is under way
	if n := len(h.slack.Messages(secChannel)); n != 1 {
		t.Fatalf("%d approval messages, want 1", n)
	}
	if n := len(h.cf.Calls()); n != 0 {
		t.Fatalf("%d Cloudflare calls after a foreign click", n)
	}
	if !strings.Contains(h.logs.String(), "refusing a payload for another workspace or app") {
		t.Fatal("refusals not logged")
	}
}

func TestPendingCapRefusesPastIt(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_MAX_PENDING_PER_REQUESTER": "2"})
	h.request("a@example.com")
	h.request("b@example.com")
	h.command(requester, "c@example.com")
	e := h.slack.WaitEphemeral(requester, "You already have 2 requests waiting", wait)
	if !strings.Contains(e.Text, "Deny on your own request") {
		t.Fatalf("refusal says %q", e.Text)
	}
	h.slack.WaitMessage(auditChannel, func(m bottest.Message) bool {
		return strings.HasPrefix(m.Text, "refused ") && strings.Contains(m.Text, "already has 2 pending requests (the limit)")
	}, wait)
}

// TestBurstStaysUnderCloudflareLimit starts revokebot with 500 approved
// requests waiting (as a burst of approvals, or a crash in the middle of
// one, leaves them) against a Cloudflare that locks out any client going over
// its limit. The limiter makes the burst queue instead: no 429, every request
// revoked and audited. The limits are scaled down from 1,200 per 5 minutes
// to 100 per second, to keep the test short.
func TestBurstStaysUnderCloudflareLimit(t *testing.T) {
	t.Parallel()
	const burst = 500
	ws := bottest.New(t)
	setPeople(ws)
	cf := cftest.NewServer(t, cftest.WithRateLimit(100, time.Second))
	env := baseEnv(ws, cf, filepath.Join(t.TempDir(), "revokebot.db"))
	env["CLOUDFLARE_RATE_LIMIT"] = "100/1s"
	env["REVOKEBOT_LOG_LEVEL"] = "warn"

	db, err := sqlite.Open(context.Background(), env["REVOKEBOT_DATABASE"])
	if err != nil {
		t.Fatal(err)
	}
	for i := range burst {
		now := time.Now().UTC()
		r := approvals.Request{ID: uuid.NewString(), Version: 1,
			Targets:   []approvals.Target{{Email: fmt.Sprintf("user%d@example.com", i), State: approvals.TargetWaiting}},
			Requester: requester, Required: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := db.Create(context.Background(), r, approvals.Event{Kind: approvals.EventRequested, Request: r,
			State: approvals.StatePending, Actor: requester, At: now}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Update(context.Background(), r.ID, approveAll(approver, now)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	h := &harness{t: t, slack: ws, cf: cf, env: env}
	h.boot()
	cf.WaitCalls(t, burst, time.Minute)
	ws.Eventually("every event audited", 2*time.Minute, func() bool { return len(ws.Messages(auditChannel)) >= 3*burst })
	h.stop()
	h.withDB(func(db *sqlite.DB) {
		if n, err := db.CountByState(context.Background(), approvals.StateRevoked); err != nil || n != burst {
			t.Errorf("%d requests revoked, %v; want %d", n, err, burst)
		}
		if n, err := db.Backlog(context.Background()); err != nil || n != 0 {
			t.Errorf("backlog %d, %v; want 0", n, err)
		}
	})
	if n := cf.RateLimitedCount(); n != 0 {
		t.Fatalf("Cloudflare answered 429 %d times", n)
	}
	if n := len(cf.Calls()); n != burst {
		t.Fatalf("%d Cloudflare calls, want %d", n, burst)
	}
	if n := len(ws.Messages(auditChannel)); n != 3*burst {
		t.Fatalf("%d audit records, want %d", n, 3*burst)
	}
}

func TestClickWithManyActionsDecidesOnce(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	first := h.request("alice@example.com")
	second := h.request("bob@example.com")
	// A forged click that carries two approvals: only the first counts.
	click := bottest.ClickPayload(approver, first, "revoke_approve", requestID(t, first), h.slack.APIURL()+"../respond/"+approver+"/"+secChannel)
	extra := bottest.ClickPayload(approver, second, "revoke_approve", requestID(t, second), "")["actions"].([]any)
	click["actions"] = append(click["actions"].([]any), extra...)
	h.slack.SendEnvelope("env-two-actions", "interactive", click, 0)
	h.slack.WaitAck("env-two-actions", wait)
	h.waitMessageState(first, "Revoked")
	time.Sleep(300 * time.Millisecond) // a wrongly handled second action would show by now
	if got := h.auditEvents(requestID(t, second)); strings.Join(got, " ") != "requested" {
		t.Fatalf("second request: %v", got)
	}
	if n := len(h.cf.Calls()); n != 1 {
		t.Fatalf("%d Cloudflare calls, want 1", n)
	}
}
