package bottest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

const wait = 5 * time.Second

// client is slack-go's Web API client pointed at ws.
func client(ws *bottest.Workspace) *slack.Client {
	return slack.New(ws.BotToken(), slack.OptionAPIURL(ws.APIURL()), slack.OptionAppLevelToken(ws.AppToken()))
}

// socket connects slack-go's Socket Mode client to ws.
func socket(t *testing.T, ws *bottest.Workspace) (*slack.Client, *socketmode.Client) {
	t.Helper()
	api := client(ws)
	sm := socketmode.New(api)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go sm.RunContext(ctx)
	ws.WaitConnected(1, wait)
	return api, sm
}

// next returns the next event of type typ the Socket Mode client receives.
func next(t *testing.T, sm *socketmode.Client, typ socketmode.EventType) socketmode.Event {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case evt := <-sm.Events:
			if evt.Type == typ {
				return evt
			}
		case <-deadline:
			t.Fatalf("no %s event", typ)
		}
	}
}

// call posts a Web API call with a JSON body, as slack-go posts views.*,
// and returns the decoded answer.
func call(t *testing.T, ws *bottest.Workspace, method string, body any) map[string]any {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, ws.APIURL()+method, strings.NewReader(string(data)))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+ws.BotToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func slackErr(err error) string {
	var e slack.SlackErrorResponse
	if errors.As(err, &e) {
		return e.Err
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestUsersInfo(t *testing.T) {
	ws := bottest.New(t)
	api := client(ws)
	ws.SetUser("UALICE", bottest.User{Name: "alice", Email: "alice@example.com", IsRestricted: true})
	ws.SetUser("WEXT", bottest.User{Name: "ext", TeamID: "TOTHER", Deleted: true, IsUltraRestricted: true})
	ws.SetUser("UBOT", bottest.User{Name: "otherbot", IsBot: true})

	u, err := api.GetUserInfo("UALICE")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "UALICE" || u.Name != "alice" || u.TeamID != bottest.DefaultTeamID || u.Profile.Email != "alice@example.com" ||
		u.Profile.RealName != "alice" || u.Profile.DisplayName != "alice" || !u.IsRestricted || u.IsUltraRestricted || u.IsBot || u.Deleted {
		t.Errorf("UALICE = %+v", u)
	}
	u, err = api.GetUserInfo("WEXT")
	if err != nil {
		t.Fatal(err)
	}
	if u.TeamID != "TOTHER" || !u.Deleted || !u.IsUltraRestricted || u.Profile.Email != "" {
		t.Errorf("WEXT = %+v", u)
	}
	if u, err := api.GetUserInfo("UBOT"); err != nil || !u.IsBot {
		t.Errorf("UBOT = %+v, %v", u, err)
	}
	if u, err := api.GetUserInfo(bottest.BotUserID); err != nil || !u.IsBot || u.Profile.BotID == "" {
		t.Errorf("the bot = %+v, %v", u, err)
	}
	if _, err := api.GetUserInfo("UNOBODY"); slackErr(err) != "user_not_found" {
		t.Errorf("unknown user: %v, want user_not_found", err)
	}
	us, err := api.GetUsersInfo("UALICE", "UBOT")
	if err != nil || len(*us) != 2 || (*us)[1].Name != "otherbot" {
		t.Errorf("GetUsersInfo = %+v, %v", us, err)
	}

	ws.Fail("users.info", bottest.Failure{Error: "fatal_error"})
	if _, err := api.GetUserInfo("UALICE"); slackErr(err) != "fatal_error" {
		t.Errorf("scripted failure: %v", err)
	}
	calls := ws.Calls("users.info")
	if len(calls) != 7 || calls[0].Params["user"] != "UALICE" {
		t.Errorf("calls = %+v", calls)
	}
	if _, ok := calls[0].Params["token"]; ok {
		t.Error("the token was recorded")
	}

	// The raw answer has the fields the brief of users.info names.
	resp := call(t, ws, "users.info", map[string]string{"user": "UALICE"})
	user := resp["user"].(map[string]any)
	for _, k := range []string{"id", "team_id", "name", "deleted", "is_bot", "is_restricted", "is_ultra_restricted", "profile"} {
		if _, ok := user[k]; !ok {
			t.Errorf("users.info's user has no %q: %v", k, user)
		}
	}
}

func TestDirectMessages(t *testing.T) {
	ws := bottest.New(t)
	api := client(ws)
	ch, noOp, already, err := api.OpenConversation(&slack.OpenConversationParameters{Users: []string{"UALICE"}})
	if err != nil || ch.ID != "DUALICE" || ch.ID != ws.DMChannel("UALICE") || noOp || already {
		t.Fatalf("OpenConversation = %+v, %v, %v, %v", ch, noOp, already, err)
	}
	ch2, _, already, err := api.OpenConversation(&slack.OpenConversationParameters{Users: []string{"UALICE"}, ReturnIM: true})
	if err != nil || ch2.ID != ch.ID || !already || !ch2.IsIM || ch2.User != "UALICE" {
		t.Errorf("second OpenConversation = %+v, %v, %v", ch2, already, err)
	}
	if other, _, _, _ := api.OpenConversation(&slack.OpenConversationParameters{Users: []string{"UBOB"}}); other.ID == ch.ID {
		t.Errorf("UBOB's DM is UALICE's: %s", other.ID)
	}

	c1, ts1, err := api.PostMessage(ch.ID, slack.MsgOptionText("hello", false))
	if err != nil || c1 != ch.ID {
		t.Fatalf("post to DM = %s, %v", c1, err)
	}
	c2, ts2, err := api.PostMessage("UALICE", slack.MsgOptionText("by user ID", false))
	if err != nil || c2 != ch.ID {
		t.Fatalf("post to user ID = %s, %v (want the DM channel)", c2, err)
	}
	api.PostMessage("CSECURITY", slack.MsgOptionText("in a channel", false))
	dms := ws.DirectMessages("UALICE")
	if len(dms) != 2 || dms[0].TS != ts1 || dms[1].TS != ts2 || dms[1].Text != "by user ID" || dms[0].Channel != ch.ID {
		t.Errorf("DirectMessages = %+v", dms)
	}
	if n := len(ws.DirectMessages("UBOB")); n != 0 {
		t.Errorf("UBOB has %d DMs", n)
	}
	if m := ws.WaitDirectMessage("UALICE", func(m bottest.Message) bool { return m.Text == "hello" }, wait); m.TS != ts1 {
		t.Errorf("WaitDirectMessage = %+v", m)
	}
	// The DM's history and description.
	h, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: ch.ID})
	if err != nil || len(h.Messages) != 2 {
		t.Errorf("DM history = %+v, %v", h, err)
	}
	info, err := api.GetConversationInfo(&slack.GetConversationInfoInput{ChannelID: ch.ID})
	if err != nil || !info.IsIM || info.User != "UALICE" {
		t.Errorf("DM info = %+v, %v", info, err)
	}

	ws.SetUser("UGONE", bottest.User{Name: "gone", Deleted: true})
	if _, _, _, err := api.OpenConversation(&slack.OpenConversationParameters{Users: []string{"UGONE"}}); slackErr(err) != "user_disabled" {
		t.Errorf("DM with a deactivated user: %v", err)
	}
	if _, _, _, err := api.OpenConversation(&slack.OpenConversationParameters{}); slackErr(err) != "users_list_not_supplied" {
		t.Errorf("no users: %v", err)
	}
	group, _, _, err := api.OpenConversation(&slack.OpenConversationParameters{Users: []string{"UALICE", "UBOB"}})
	again, _, _, _ := api.OpenConversation(&slack.OpenConversationParameters{Users: []string{"UBOB", "UALICE"}})
	if err != nil || !strings.HasPrefix(group.ID, "G") || again.ID != group.ID {
		t.Errorf("group DM = %+v, %+v, %v", group, again, err)
	}
	if n := len(ws.Calls("conversations.open")); n != 7 {
		t.Errorf("%d conversations.open calls recorded", n)
	}
}

func TestThreads(t *testing.T) {
	ws := bottest.New(t)
	api := client(ws)
	const ch = "CSECURITY"
	_, parent, _ := api.PostMessage(ch, slack.MsgOptionText("parent", false))
	_, r1, err := api.PostMessage(ch, slack.MsgOptionText("reply 1", false), slack.MsgOptionTS(parent))
	if err != nil {
		t.Fatal(err)
	}
	_, r2, _ := api.PostMessage(ch, slack.MsgOptionText("reply 2, broadcast", false), slack.MsgOptionTS(parent), slack.MsgOptionBroadcast())
	// A reply to a reply joins the thread of the parent, as in Slack.
	_, r3, _ := api.PostMessage(ch, slack.MsgOptionText("reply 3", false), slack.MsgOptionTS(r1))
	_, later, _ := api.PostMessage(ch, slack.MsgOptionText("later", false))

	replies := ws.Replies(ch, parent)
	if len(replies) != 3 || replies[0].TS != r1 || replies[1].TS != r2 || replies[2].TS != r3 {
		t.Fatalf("Replies = %+v", replies)
	}
	for _, r := range replies {
		if r.ThreadTS != parent {
			t.Errorf("reply %s has ThreadTS %q, want %s", r.TS, r.ThreadTS, parent)
		}
	}
	if !replies[1].Broadcast || replies[0].Broadcast {
		t.Errorf("Broadcast flags: %+v", replies)
	}
	var top []string
	for _, m := range ws.Messages(ch) {
		top = append(top, m.TS)
	}
	if want := []string{parent, r2, later}; fmt.Sprint(top) != fmt.Sprint(want) {
		t.Errorf("Messages = %v, want %v (the parent, the broadcast reply, the later message)", top, want)
	}
	if m := ws.WaitReply(ch, parent, func(m bottest.Message) bool { return m.Text == "reply 3" }, wait); m.TS != r3 {
		t.Errorf("WaitReply = %+v", m)
	}

	// conversations.history: top-level messages only, the parent with its replies counted.
	h, err := api.GetConversationHistory(&slack.GetConversationHistoryParameters{ChannelID: ch})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, m := range h.Messages {
		seen = append(seen, m.Timestamp)
		if m.Timestamp == parent && (m.ReplyCount != 3 || m.ThreadTimestamp != parent || m.LatestReply != r3) {
			t.Errorf("parent in history = %+v", m.Msg)
		}
		if m.Timestamp == r2 && (m.SubType != "thread_broadcast" || m.ThreadTimestamp != parent) {
			t.Errorf("broadcast reply in history = %+v", m.Msg)
		}
	}
	if want := []string{later, r2, parent}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("history = %v, want %v", seen, want)
	}

	// conversations.replies: the parent first, then the replies, paged.
	msgs, hasMore, cursor, err := api.GetConversationReplies(&slack.GetConversationRepliesParameters{ChannelID: ch, Timestamp: parent, Limit: 2})
	if err != nil || len(msgs) != 2 || !hasMore || msgs[0].Timestamp != parent || msgs[1].Timestamp != r1 {
		t.Fatalf("replies page 1 = %+v, %v, %q, %v", msgs, hasMore, cursor, err)
	}
	msgs, hasMore, _, err = api.GetConversationReplies(&slack.GetConversationRepliesParameters{ChannelID: ch, Timestamp: r3, Cursor: cursor})
	if err != nil || len(msgs) != 2 || hasMore || msgs[1].Timestamp != r3 || msgs[1].ThreadTimestamp != parent {
		t.Errorf("replies page 2 = %+v, %v, %v", msgs, hasMore, err)
	}
	if msgs, _, _, err := api.GetConversationReplies(&slack.GetConversationRepliesParameters{ChannelID: ch, Timestamp: later}); err != nil || len(msgs) != 1 {
		t.Errorf("a message without replies: %+v, %v", msgs, err)
	}
	if _, _, _, err := api.GetConversationReplies(&slack.GetConversationRepliesParameters{ChannelID: ch, Timestamp: "1.000001"}); slackErr(err) != "thread_not_found" {
		t.Errorf("no such message: %v", err)
	}
}

// modal is a view like the one revokebot means to open: a reason to type.
func modal() slack.ModalViewRequest {
	reason := slack.NewInputBlock("reason", slack.NewTextBlockObject("plain_text", "Reason", false, false), nil,
		slack.NewPlainTextInputBlockElement(nil, "text"))
	note := slack.NewPlainTextInputBlockElement(nil, "note")
	note.InitialValue = "none"
	noteBlock := slack.NewInputBlock("note", slack.NewTextBlockObject("plain_text", "Note", false, false), nil, note)
	noteBlock.Optional = true
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           slack.NewTextBlockObject("plain_text", "Revoke access", false, false),
		Submit:          slack.NewTextBlockObject("plain_text", "Revoke", false, false),
		CallbackID:      "revoke_modal",
		PrivateMetadata: `{"target":"alice@example.com"}`,
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "Revoke *alice*?", false, false), nil, nil),
			reason, noteBlock,
		}},
	}
}

// command sends /revoke as user and returns the trigger_id the client got.
func command(t *testing.T, ws *bottest.Workspace, sm *socketmode.Client, user string) string {
	t.Helper()
	ws.SlashCommand(user, "CSECURITY", "alice@example.com")
	evt := next(t, sm, socketmode.EventTypeSlashCommand)
	sm.Ack(*evt.Request)
	return evt.Data.(slack.SlashCommand).TriggerID
}

func TestViewsOpenAndSubmit(t *testing.T) {
	ws := bottest.New(t)
	api, sm := socket(t, ws)
	trigger := command(t, ws, sm, "UREQ")

	resp, err := api.OpenView(trigger, modal())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.ID, "V") || resp.Hash == "" || resp.CallbackID != "revoke_modal" || resp.TeamID != bottest.DefaultTeamID ||
		resp.State == nil || resp.State.Values == nil || resp.RootViewID != resp.ID || resp.AppID != bottest.DefaultAppID {
		t.Errorf("views.open answered %+v", resp.View)
	}
	views := ws.OpenedViews()
	if len(views) != 1 {
		t.Fatalf("%d views opened", len(views))
	}
	v := views[0]
	if v.ID != resp.ID || v.User != "UREQ" || v.TriggerID != trigger || v.CallbackID != "revoke_modal" ||
		v.PrivateMetadata != `{"target":"alice@example.com"}` || v.Title != "Revoke access" || v.Hash != resp.Hash {
		t.Errorf("OpenedViews()[0] = %+v", v)
	}
	if !strings.Contains(v.BlockText(), "Revoke *alice*?") {
		t.Errorf("BlockText = %q", v.BlockText())
	}
	inputs := v.Inputs()
	if len(inputs) != 2 || inputs[0] != (bottest.Input{BlockID: "reason", ActionID: "text", Type: "plain_text_input", Label: "Reason"}) || !inputs[1].Optional {
		t.Errorf("Inputs = %+v", inputs)
	}
	if got := ws.WaitView(func(v bottest.View) bool { return v.CallbackID == "revoke_modal" }, wait); got.ID != v.ID {
		t.Errorf("WaitView = %+v", got)
	}

	// An empty reason: the bot refuses it in the modal.
	env := ws.SubmitView("UREQ", v, map[string]map[string]string{"reason": {"text": ""}})
	evt := next(t, sm, socketmode.EventTypeInteractive)
	cb := evt.Data.(slack.InteractionCallback)
	if evt.Request.EnvelopeID != env || !evt.Request.AcceptsResponsePayload {
		t.Errorf("envelope = %+v", evt.Request)
	}
	if cb.Type != slack.InteractionTypeViewSubmission || cb.User.ID != "UREQ" || cb.Team.ID != bottest.DefaultTeamID ||
		cb.APIAppID != bottest.DefaultAppID || cb.TriggerID == "" || cb.View.ID != v.ID || cb.View.CallbackID != "revoke_modal" ||
		cb.View.PrivateMetadata != v.PrivateMetadata || cb.View.Hash != v.Hash {
		t.Errorf("view_submission = %+v", cb)
	}
	if st := cb.View.State.Values["reason"]["text"]; st.Type != "plain_text_input" || st.Value != "" {
		t.Errorf("reason state = %+v", st)
	}
	if st := cb.View.State.Values["note"]["note"]; st.Value != "none" {
		t.Errorf("untouched note = %+v, want its initial value", st)
	}
	var raw struct {
		View struct {
			State struct {
				Values map[string]map[string]map[string]any `json:"values"`
			} `json:"state"`
		} `json:"view"`
	}
	json.Unmarshal(evt.Request.Payload, &raw)
	if st, ok := raw.View.State.Values["reason"]["text"]; !ok || st["value"] != nil || st["type"] != "plain_text_input" {
		t.Errorf("raw reason state = %v, want value null, as Slack sends an empty input", st)
	}
	sm.Ack(*evt.Request, slack.NewErrorsViewSubmissionResponse(map[string]string{"reason": "Say why."}))
	ack := ws.WaitAck(env, wait)
	if errs := ack.ViewErrors(); errs["reason"] != "Say why." || ack.ResponseAction() != "errors" {
		t.Errorf("ack = %s: ViewErrors %v", ack.Payload, errs)
	}

	// A reason: the bot closes the modal.
	env = ws.SubmitView("UREQ", v, map[string]map[string]string{"reason": {"text": "laptop stolen"}, "note": {"note": "urgent"}})
	evt = next(t, sm, socketmode.EventTypeInteractive)
	cb = evt.Data.(slack.InteractionCallback)
	if cb.View.State.Values["reason"]["text"].Value != "laptop stolen" || cb.View.State.Values["note"]["note"].Value != "urgent" {
		t.Errorf("state = %+v", cb.View.State.Values)
	}
	sm.Ack(*evt.Request)
	if ack := ws.WaitAck(env, wait); ack.ViewErrors() != nil || ack.ResponseAction() != "" {
		t.Errorf("plain ack: %s", ack.Payload)
	}
}

func TestViewsOpenTriggers(t *testing.T) {
	ws := bottest.New(t, bottest.WithTriggerExpiry(300*time.Millisecond))
	api, sm := socket(t, ws)

	if _, err := api.OpenView("1.2.nonsense", modal()); slackErr(err) != "invalid_trigger_id" {
		t.Errorf("unknown trigger: %v", err)
	}
	trigger := command(t, ws, sm, "UREQ")
	if _, err := api.OpenView(trigger, modal()); err != nil {
		t.Fatal(err)
	}
	if _, err := api.OpenView(trigger, modal()); slackErr(err) != "exchanged_trigger_id" {
		t.Errorf("second use: %v", err)
	}

	trigger = command(t, ws, sm, "UREQ")
	time.Sleep(400 * time.Millisecond)
	if _, err := api.OpenView(trigger, modal()); slackErr(err) != "expired_trigger_id" {
		t.Errorf("late: %v", err)
	}

	// A call held (a slow Slack) counts from when it arrived.
	trigger = command(t, ws, sm, "UREQ")
	release := ws.Hold("views.open")
	done := make(chan error)
	go func() {
		_, err := api.OpenView(trigger, modal())
		done <- err
	}()
	ws.Eventually("the held call", wait, func() bool { return ws.HeldCalls("views.open") == 1 })
	time.Sleep(400 * time.Millisecond)
	release()
	if err := <-done; err != nil {
		t.Errorf("held call: %v", err)
	}

	// A click's trigger, and one of a payload sent with SendEnvelope.
	m := bottest.Message{Channel: "CSECURITY", TS: ws.Forge("CSECURITY", bottest.BotUserID, "card", nil)}
	ws.Click("UAPPROVER", m, "revoke_approve")
	evt := next(t, sm, socketmode.EventTypeInteractive)
	sm.Ack(*evt.Request)
	if _, err := api.OpenView(evt.Data.(slack.InteractionCallback).TriggerID, modal()); err != nil {
		t.Errorf("click's trigger: %v", err)
	}
	p := ws.SlashPayload("UOTHER", "CSECURITY", "x")
	ws.SendEnvelope("env-custom", "slash_commands", p, 0)
	sm.Ack(*next(t, sm, socketmode.EventTypeSlashCommand).Request)
	if _, err := api.OpenView(p["trigger_id"].(string), modal()); err != nil {
		t.Errorf("SendEnvelope's trigger: %v", err)
	}
	views := ws.OpenedViews()
	if len(views) != 4 || views[2].User != "UAPPROVER" || views[3].User != "UOTHER" {
		t.Errorf("views = %+v", views)
	}

	ws.Reset()
	if len(ws.OpenedViews()) != 0 {
		t.Error("Reset kept the views")
	}
}

func TestViewsOpenValidation(t *testing.T) {
	ws := bottest.New(t)
	_, sm := socket(t, ws)

	good := func() map[string]any {
		var v map[string]any
		data, _ := json.Marshal(modal())
		json.Unmarshal(data, &v)
		return v
	}
	section := func(id string) map[string]any {
		return map[string]any{"type": "section", "block_id": id, "text": map[string]any{"type": "mrkdwn", "text": "x"}}
	}
	plain := func(s string) map[string]any { return map[string]any{"type": "plain_text", "text": s} }
	cases := []struct {
		name   string
		change func(v map[string]any)
		want   string // in a message, or the error itself
	}{
		{"home tab", func(v map[string]any) { v["type"] = "home" }, "/view/type"},
		{"no title", func(v map[string]any) { delete(v, "title") }, "title"},
		{"mrkdwn title", func(v map[string]any) { v["title"] = map[string]any{"type": "mrkdwn", "text": "x"} }, "/view/title/type"},
		{"long title", func(v map[string]any) { v["title"] = plain(strings.Repeat("é", 25)) }, "less than 25 characters [json-pointer:/view/title/text]"},
		{"long submit", func(v map[string]any) { v["submit"] = plain(strings.Repeat("x", 25)) }, "/view/submit/text"},
		{"inputs without submit", func(v map[string]any) { delete(v, "submit") }, "submit"},
		{"no blocks", func(v map[string]any) { delete(v, "blocks") }, "blocks"},
		{"101 blocks", func(v map[string]any) {
			var blocks []any
			for i := range 101 {
				blocks = append(blocks, section(fmt.Sprint("b", i)))
			}
			v["blocks"] = blocks
		}, "no more than 100 items"},
		{"duplicate block_id", func(v map[string]any) { v["blocks"] = []any{section("x"), section("x")} }, "duplicate block_id"},
		{"unknown block", func(v map[string]any) { v["blocks"] = []any{map[string]any{"type": "inputs"}} }, "/view/blocks/0/type"},
		{"input without label", func(v map[string]any) { delete(v["blocks"].([]any)[1].(map[string]any), "label") }, "/view/blocks/1/label"},
		{"input without element", func(v map[string]any) { delete(v["blocks"].([]any)[1].(map[string]any), "element") }, "element"},
		{"long private_metadata", func(v map[string]any) { v["private_metadata"] = strings.Repeat("x", 3001) }, "/view/private_metadata"},
		{"long callback_id", func(v map[string]any) { v["callback_id"] = strings.Repeat("x", 256) }, "/view/callback_id"},
		{"section without text", func(v map[string]any) { v["blocks"] = []any{map[string]any{"type": "section"}} }, "text or fields"},
		{"too large", func(v map[string]any) {
			var blocks []any
			for i := range 100 {
				b := section(fmt.Sprint("b", i))
				b["text"] = map[string]any{"type": "mrkdwn", "text": strings.Repeat("x", 3000)}
				blocks = append(blocks, b)
			}
			v["blocks"] = blocks
		}, "view_too_large"},
	}
	for _, c := range cases {
		trigger := command(t, ws, sm, "UREQ")
		v := good()
		c.change(v)
		resp := call(t, ws, "views.open", map[string]any{"trigger_id": trigger, "view": v})
		if resp["ok"] != false {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		got, _ := json.Marshal(resp)
		if !strings.Contains(string(got), c.want) {
			t.Errorf("%s: answered %s, want %q", c.name, got, c.want)
		}
		// A refused view does not use up the trigger.
		if resp := call(t, ws, "views.open", map[string]any{"trigger_id": trigger, "view": good()}); resp["ok"] != true {
			t.Errorf("%s: then a good view: %v", c.name, resp)
		}
	}

	// Form-encoded, as Slack also takes it, with block and action IDs generated.
	trigger := command(t, ws, sm, "UREQ")
	view := `{"type":"modal","title":{"type":"plain_text","text":"T"},"submit":{"type":"plain_text","text":"Go"},` +
		`"blocks":[{"type":"input","label":{"type":"plain_text","text":"L"},"element":{"type":"plain_text_input"}}]}`
	resp, err := http.PostForm(ws.APIURL()+"views.open", url.Values{"token": {ws.BotToken()}, "trigger_id": {trigger}, "view": {view}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	views := ws.OpenedViews()
	in := views[len(views)-1].Inputs()
	if len(in) != 1 || in[0].BlockID == "" || in[0].ActionID == "" {
		t.Errorf("generated IDs: %+v", in)
	}
	if v := views[len(views)-1]; v.CallbackID != "" || v.NotifyOnClose {
		t.Errorf("view = %+v", v)
	}
}

// fatalTB is a TB whose Fatalf panics with the message, to test that a
// helper fails the test.
type fatalTB struct{ *testing.T }

func (f fatalTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func TestSubmitViewUnknownInput(t *testing.T) {
	ws := bottest.New(fatalTB{t})
	api, sm := socket(t, ws)
	if _, err := api.OpenView(command(t, ws, sm, "UREQ"), modal()); err != nil {
		t.Fatal(err)
	}
	v := ws.OpenedViews()[0]
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), `"reasn"`) {
			t.Errorf("SubmitView with a misspelt block: %v", r)
		}
	}()
	ws.SubmitView("UREQ", v, map[string]map[string]string{"reasn": {"text": "x"}})
}

func TestCloseView(t *testing.T) {
	ws := bottest.New(t)
	api, sm := socket(t, ws)
	m := modal()
	if _, err := api.OpenView(command(t, ws, sm, "UREQ"), m); err != nil {
		t.Fatal(err)
	}
	m.NotifyOnClose = true
	if _, err := api.OpenView(command(t, ws, sm, "UREQ"), m); err != nil {
		t.Fatal(err)
	}
	views := ws.OpenedViews()
	if id := ws.CloseView("UREQ", views[0]); id != "" {
		t.Errorf("closing a view without notify_on_close sent %s", id)
	}
	id := ws.CloseView("UREQ", views[1])
	evt := next(t, sm, socketmode.EventTypeInteractive)
	cb := evt.Data.(slack.InteractionCallback)
	if evt.Request.EnvelopeID != id || cb.Type != slack.InteractionTypeViewClosed || cb.View.ID != views[1].ID || cb.User.ID != "UREQ" {
		t.Errorf("view_closed = %+v", cb)
	}
	sm.Ack(*evt.Request)
	ws.WaitAck(id, wait)
}
