package bot_test

import (
	"context"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack"
)

// The people and channels of botFixture.
const (
	requester   = "UREQ"
	approver    = "UAPP"
	stranger    = "USTRANGER"
	secChannel  = "CSEC"
	botWait     = 10 * time.Second
	personAlice = "U0ALICE00"
)

// okRevoker revokes everything.
type okRevoker struct{}

func (okRevoker) Revoke(_ context.Context, r approvals.Revocation) (string, error) {
	return "revoked " + r.Email, nil
}

// botFixture is a Bot and a Courier running against the fake Slack, with a
// real approvals.Service on SQLite.
type botFixture struct {
	ws  *bottest.Workspace
	db  *sqlite.DB
	svc *approvals.Service
	bot *bot.Bot
}

// newBotFixture starts the fixture; each of configure, if any, changes the
// Bot's Config first.
func newBotFixture(t *testing.T, configure ...func(*bot.Config)) *botFixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ws := bottest.New(t)
	for _, u := range []string{requester, approver, stranger} {
		ws.SetUser(u, bottest.User{Name: strings.ToLower(u), Email: strings.ToLower(u) + "@corp.example"})
	}
	ws.SetUser(personAlice, bottest.User{Name: "alice", Email: "alice@corp.example"})
	ws.SetUser("U0BOT0000", bottest.User{Name: "somebot", IsBot: true})
	ws.SetUser("U0GONE000", bottest.User{Name: "gone", Email: "gone@corp.example", Deleted: true})
	ws.SetUser("U0NOMAIL0", bottest.User{Name: "nomail"})
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	api := slack.New(ws.BotToken(), slack.OptionAPIURL(ws.APIURL()), slack.OptionAppLevelToken(ws.AppToken()))
	dir := bot.NewGroupCache(api, time.Minute)
	dir.TeamID = bottest.DefaultTeamID
	courier := bot.NewCourier(api, db, auditChannel, bot.Unpaced, quiet)
	courier.MinBackoff, courier.MaxBackoff, courier.Poll = time.Millisecond, 20*time.Millisecond, 20*time.Millisecond
	courier.RefusalWindow = 0
	svc := &approvals.Service{Store: db, Revoker: okRevoker{}, Notifier: courier, Directory: dir, Logger: quiet,
		Policy: approvals.Policy{
			Requesters: approvals.Audience{Users: []string{requester}},
			Approvers:  approvals.Audience{Users: []string{approver}},
		}}
	u, err := url.Parse(ws.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg := bot.Config{TeamID: bottest.DefaultTeamID, ApprovalChannel: secChannel, People: dir,
		ResponseURLHosts: []string{u.Host}, Logger: quiet}
	for _, c := range configure {
		c(&cfg)
	}
	b := bot.New(api, svc, cfg)
	courier.Posted = b.MessagePosted
	courierDone, botDone := make(chan struct{}), make(chan error, 1)
	go func() { defer close(courierDone); courier.Run(ctx) }()
	go func() { botDone <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-courierDone
		if err := <-botDone; err != nil {
			t.Errorf("bot: %v", err)
		}
		db.Close()
	})
	ws.WaitConnected(1, botWait)
	return &botFixture{ws: ws, db: db, svc: svc, bot: b}
}

// request makes requester's /revoke text and returns its approval message.
func (f *botFixture) request(t *testing.T, text string) bottest.Message {
	t.Helper()
	before := len(f.ws.Messages(secChannel))
	f.ws.SlashCommand(requester, secChannel, text)
	f.ws.Eventually("the approval message", botWait, func() bool { return len(f.ws.Messages(secChannel)) > before })
	return f.ws.Messages(secChannel)[before]
}

// stored returns the request whose approval message is m.
func (f *botFixture) stored(t *testing.T, m bottest.Message) approvals.Request {
	t.Helper()
	var id string
	for _, b := range m.Buttons() {
		id = b.Value
	}
	r, err := f.db.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// current returns message m as it stands now.
func (f *botFixture) current(m bottest.Message) bottest.Message {
	for _, x := range f.ws.Messages(m.Channel) {
		if x.TS == m.TS {
			return x
		}
	}
	return m
}

// TestDenyAsksApproverForAReason: an approver's Deny opens a modal; a
// submission without a reason is refused in the modal, and the request
// stays pending; with one, the request is denied, the reason shown on its
// message and sent to the requester; the same submission redelivered
// changes nothing.
func TestDenyAsksApproverForAReason(t *testing.T) {
	t.Parallel()
	f := newBotFixture(t)
	m := f.request(t, `alice@corp.example --reason "phished"`)
	r := f.stored(t, m)

	// Anybody else is refused at once, without a modal.
	f.ws.Click(stranger, m, bot.ActionDeny)
	f.ws.WaitEphemeral(stranger, "You are not allowed to decide", botWait)

	f.ws.Click(approver, m, bot.ActionDeny)
	v := f.ws.WaitView(func(v bottest.View) bool { return v.CallbackID == bot.CallbackDenyReason && v.User == approver }, botWait)
	if n := len(f.ws.OpenedViews()); n != 1 {
		t.Fatalf("%d views opened, want only the approver's", n)
	}
	inputs := v.Inputs()
	if len(inputs) != 1 || inputs[0].Optional {
		t.Fatalf("modal inputs %+v", inputs)
	}
	in := inputs[0]
	if !strings.Contains(v.BlockText(), r.ID) || !strings.Contains(v.BlockText(), "alice@corp.example") {
		t.Errorf("the modal does not say which request:\n%s", v.BlockText())
	}

	for _, blank := range []string{"", "   "} {
		ack := f.ws.WaitAck(f.ws.SubmitView(approver, v, map[string]map[string]string{in.BlockID: {in.ActionID: blank}}), botWait)
		if errs := ack.ViewErrors(); errs[in.BlockID] == "" {
			t.Fatalf("a blank reason %q: ack %s, want errors at %s", blank, ack.Payload, in.BlockID)
		}
	}
	if got, _ := f.db.Get(context.Background(), r.ID); got.State() != approvals.StatePending {
		t.Fatalf("after blank reasons the request is %s", got.State())
	}

	values := map[string]map[string]string{in.BlockID: {in.ActionID: "not without a ticket <!channel>"}}
	if ack := f.ws.WaitAck(f.ws.SubmitView(approver, v, values), botWait); ack.ViewErrors() != nil || ack.ResponseAction() != "" {
		t.Fatalf("a good reason: ack %s", ack.Payload)
	}
	f.ws.Eventually("the request denied", botWait, func() bool {
		got, _ := f.db.Get(context.Background(), r.ID)
		return got.State() == approvals.StateDenied
	})
	dm := f.ws.WaitDirectMessage(requester, func(bottest.Message) bool { return true }, botWait)
	if !strings.Contains(dm.Text, "*denied* by <@"+approver+">") || !strings.Contains(dm.Text, "`not without a ticket &lt;!channel&gt;`") {
		t.Errorf("the requester is told %q", dm.Text)
	}
	f.ws.Eventually("the message redrawn", botWait, func() bool { return strings.Contains(f.current(m).BlockText(), "*Denied*") })
	if text := f.current(m).BlockText(); !strings.Contains(text, "not without a ticket &lt;!channel&gt;") || f.current(m).HasButton(bot.ActionApprove) {
		t.Errorf("denied message:\n%s", text)
	}

	// Slack redelivers the submission (the same view): nothing more.
	f.ws.WaitAck(f.ws.SubmitView(approver, v, values), botWait)
	time.Sleep(200 * time.Millisecond)
	f.ws.Eventually("audit delivered", botWait, func() bool { n, _ := f.db.Backlog(context.Background()); return n == 0 })
	var denied int
	for _, a := range f.ws.Messages(auditChannel) {
		if strings.HasPrefix(a.Text, "denied ") {
			denied++
		}
	}
	if denied != 1 || len(f.ws.DirectMessages(requester)) != 1 {
		t.Errorf("%d denied records and %d direct messages after a redelivered submission, want 1 each", denied, len(f.ws.DirectMessages(requester)))
	}
}

// TestRequesterDenyCancels: the requester's own Deny cancels the request at
// once, without a modal.
func TestRequesterDenyCancels(t *testing.T) {
	t.Parallel()
	f := newBotFixture(t)
	m := f.request(t, "alice@corp.example")
	r := f.stored(t, m)
	f.ws.Click(requester, m, bot.ActionDeny)
	f.ws.Eventually("the request cancelled", botWait, func() bool {
		got, _ := f.db.Get(context.Background(), r.ID)
		return got.State() == approvals.StateCancelled
	})
	if n := len(f.ws.OpenedViews()); n != 0 {
		t.Errorf("%d views opened for a cancel", n)
	}
}

// TestRequestNamesPeopleByMention: a mention is resolved to the person's
// email, shown on the message as the mention and the address; a mention
// that cannot be a target makes nothing, and the requester is told why,
// target by target.
func TestRequestNamesPeopleByMention(t *testing.T) {
	t.Parallel()
	f := newBotFixture(t)
	m := f.request(t, "<@"+personAlice+"|alice> bob@corp.example")
	r := f.stored(t, m)
	if len(r.Targets) != 2 || r.Targets[0] != (approvals.Target{Email: "alice@corp.example", Person: personAlice, State: approvals.TargetWaiting}) ||
		r.Targets[1].Email != "bob@corp.example" || r.Targets[1].Person != "" {
		t.Fatalf("targets %+v", r.Targets)
	}
	if text := m.BlockText(); !strings.Contains(text, "• <@"+personAlice+"> → `alice@corp.example`\n• `bob@corp.example`") {
		t.Errorf("message:\n%s", text)
	}
	f.ws.WaitEphemeral(requester, "to revoke <@"+personAlice+"> (`alice@corp.example`), `bob@corp.example` is waiting for an approver", botWait)

	before := len(f.ws.Messages(secChannel))
	f.ws.SlashCommand(requester, secChannel, "<@U0BOT0000> <@U0GONE000> <@U0NOMAIL0> <@U0NOBODY0> carol@corp.example")
	reply := f.ws.WaitEphemeral(requester, "Nothing was requested", botWait)
	for _, want := range []string{
		"• target 1, <@U0BOT0000>: this is a bot",
		"• target 2, <@U0GONE000>: this account is deactivated",
		"• target 3, <@U0NOMAIL0>: Slack shows no email",
		"• target 4, <@U0NOBODY0>: Slack knows no such user.",
	} {
		if !strings.Contains(reply.Text, want) {
			t.Errorf("reply lacks %q:\n%s", want, reply.Text)
		}
	}
	if strings.Contains(reply.Text, "carol") {
		t.Errorf("reply names a target that was fine:\n%s", reply.Text)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(f.ws.Messages(secChannel)); n != before {
		t.Errorf("a refused request posted %d messages", n-before)
	}
}

// TestStatusAndPendingCommands: /revoke status and pending answer
// privately, to requesters and approvers only.
func TestStatusAndPendingCommands(t *testing.T) {
	t.Parallel()
	f := newBotFixture(t)
	r := f.stored(t, f.request(t, "alice@corp.example"))
	// The request's message and its audit record; the record is posted
	// apart, after the message.
	f.ws.Eventually("the request's audit record", botWait, func() bool { return len(f.ws.Calls("chat.postMessage")) == 2 })

	f.ws.SlashCommand(approver, secChannel, "pending")
	reply := f.ws.WaitEphemeral(approver, "open request(s)", botWait)
	if !strings.HasPrefix(reply.Text, "*1 open request(s)*") || !strings.Contains(reply.Text, "`"+r.ID[:8]+"`") {
		t.Errorf("pending: %s", reply.Text)
	}
	f.ws.SlashCommand(requester, secChannel, "status "+r.ID[:8])
	reply = f.ws.WaitEphemeral(requester, "*Request*", botWait)
	if !strings.Contains(reply.Text, "`"+r.ID+"`") || !strings.Contains(reply.Text, "*pending*") || !strings.Contains(reply.Text, "`alice@corp.example`") {
		t.Errorf("status: %s", reply.Text)
	}
	f.ws.SlashCommand(stranger, secChannel, "status "+r.ID[:8])
	if reply := f.ws.WaitEphemeral(stranger, ":no_entry:", botWait); strings.Contains(reply.Text, r.ID) {
		t.Errorf("a stranger learnt of the request: %s", reply.Text)
	}
	f.ws.SlashCommand(approver, secChannel, "status ffffffff")
	f.ws.WaitEphemeral(approver, "There is no such request", botWait)
	if n := len(f.ws.Calls("chat.postMessage")); n != 2 {
		t.Errorf("%d posts; status and pending post nothing (want the request's message and its audit)", n)
	}
}

// TestRefusedRequesterLearnsNothingOfMentions: someone who may not ask is
// refused before anyone they mention is looked up, so they learn nothing of
// who is a bot, deactivated or without an email; the refusal is audited
// with the people as named.
func TestRefusedRequesterLearnsNothingOfMentions(t *testing.T) {
	t.Parallel()
	f := newBotFixture(t)
	f.ws.SlashCommand(stranger, secChannel, "<@U0BOT0000> <@"+personAlice+"|alice>")
	reply := f.ws.WaitEphemeral(stranger, "not allowed to request", botWait)
	if strings.Contains(reply.Text, "U0BOT0000") || strings.Contains(reply.Text, "a bot") || strings.Contains(reply.Text, "alice") {
		t.Errorf("the refusal says something of the people named:\n%s", reply.Text)
	}
	for _, c := range f.ws.Calls("users.info") {
		if c.Params["user"] == "U0BOT0000" || c.Params["user"] == personAlice {
			t.Errorf("users.info was called for %s, named by someone who may not ask", c.Params["user"])
		}
	}
	refused, err := f.db.ListByState(context.Background(), approvals.StateRefused)
	if err != nil || len(refused) != 1 || len(refused[0].Targets) != 2 || refused[0].Targets[1].Person != personAlice || refused[0].Targets[1].Email != "" {
		t.Fatalf("refused requests %+v, %v", refused, err)
	}
	f.ws.Eventually("the refusal's audit record", botWait, func() bool {
		for _, m := range f.ws.Messages(auditChannel) {
			if strings.HasPrefix(m.Text, "refused ") && strings.Contains(m.Text, "person=<@"+personAlice+">") {
				return true
			}
		}
		return false
	})
}

// TestDenyAfterTheRequestIsDecided: a Deny on a request already decided is
// answered at once, without a modal (which would ask for a reason that can
// no longer count).
func TestDenyAfterTheRequestIsDecided(t *testing.T) {
	t.Parallel()
	f := newBotFixture(t)
	m := f.request(t, `alice@corp.example`)
	f.ws.Click(approver, m, bot.ActionApprove)
	f.ws.Eventually("the request revoked", botWait, func() bool {
		return f.stored(t, m).State() == approvals.StateRevoked
	})
	f.ws.Click(approver, m, bot.ActionDeny)
	f.ws.WaitEphemeral(approver, "This request was already approved by <@"+approver+">", botWait)
	if n := len(f.ws.OpenedViews()); n != 0 {
		t.Errorf("%d modals opened for a decided request", n)
	}
}
