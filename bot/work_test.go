package bot_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/bot/bottest"
)

// TestBusyPastTheQueueLimit: with its one worker busy and its queue full, the
// bot refuses a command in its ack and a click in a private reply, saying it
// is busy and to try again, and records neither; what it took is handled
// once the worker is free, and the refused click, made again, counts.
func TestBusyPastTheQueueLimit(t *testing.T) {
	t.Parallel()
	f := newBotFixture(t, func(c *bot.Config) { c.MaxConcurrent, c.QueueLimit = 1, 2 })
	m := f.request(t, "alice@corp.example")
	before := len(f.ws.Messages(secChannel))

	// Each command names a person Slack is asked about: the one worker
	// waits on users.info, held.
	for i := range 4 {
		f.ws.SetUser(fmt.Sprintf("U0PERS%03d", i), bottest.User{Name: fmt.Sprintf("p%d", i), Email: fmt.Sprintf("p%d@corp.example", i)})
	}
	release := f.ws.Hold("users.info")
	first := f.ws.SlashCommand(requester, secChannel, "<@U0PERS000>")
	f.ws.WaitAck(first, botWait)
	f.ws.Eventually("the worker waiting on users.info", botWait, func() bool { return f.ws.HeldCalls("users.info") == 1 })
	for i := 1; i <= 2; i++ { // the queue's two places
		if text := f.ws.WaitAck(f.ws.SlashCommand(requester, secChannel, fmt.Sprintf("<@U0PERS%03d>", i)), botWait).AckText(); text != "" {
			t.Fatalf("command %d, with a place in the queue, acked with %q", i, text)
		}
	}
	refused := f.ws.WaitAck(f.ws.SlashCommand(requester, secChannel, "<@U0PERS003>"), botWait).AckText()
	if !strings.Contains(refused, "busy") || !strings.Contains(refused, "nothing was requested") {
		t.Fatalf("command past the limit acked with %q, want the busy reply", refused)
	}
	f.ws.WaitAck(f.ws.Click(approver, m, bot.ActionApprove), botWait)
	f.ws.WaitEphemeral(approver, "did not take your click: nothing was decided", botWait)
	if n, q := f.bot.BusyRefusals(), f.bot.Queued(); n != 2 || q != 2 {
		t.Errorf("BusyRefusals %d, Queued %d; want the command and the click refused, two commands waiting", n, q)
	}

	release()
	f.ws.Eventually("the three approval messages", botWait, func() bool { return len(f.ws.Messages(secChannel)) == before+3 })
	pending, err := f.db.ListByState(context.Background(), approvals.StatePending)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 4 { // alice's, still pending, and the three taken
		t.Fatalf("pending requests = %d, want 4 (the refused command is not one, the refused click decided nothing)", len(pending))
	}
	for _, r := range pending {
		if r.Targets[0].Email == "p3@corp.example" {
			t.Fatalf("the refused command was recorded: %+v", r)
		}
	}
	f.ws.Click(approver, m, bot.ActionApprove)
	f.ws.Eventually("the request approved on the second click", botWait, func() bool {
		return f.stored(t, m).State() == approvals.StateRevoked
	})
}
