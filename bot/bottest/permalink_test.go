package bottest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack"
)

func TestPermalink(t *testing.T) {
	t.Parallel()
	ws := bottest.New(t)
	api := client(ws)
	ctx := context.Background()

	// A message posted, and one the workspace never saw: both answered as Slack does.
	_, ts, err := api.PostMessageContext(ctx, "CAPPROVE", slack.MsgOptionText("approve?", false))
	if err != nil {
		t.Fatal(err)
	}
	link, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: "CAPPROVE", Ts: ts})
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://revokebot-test.slack.com/archives/CAPPROVE/p" + ts[:10] + ts[11:]; link != want || link != ws.Permalink("CAPPROVE", ts) {
		t.Errorf("permalink %q, want %q", link, want)
	}
	link, err = api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: "C0OTHER", Ts: "1793610000.000100"})
	if got, want := link, "https://revokebot-test.slack.com/archives/C0OTHER/p1793610000000100"; err != nil || got != want {
		t.Errorf("permalink of a message never posted: %q, %v; want %q", got, err, want)
	}
	if calls := ws.Calls("chat.getPermalink"); len(calls) != 2 || calls[1].Params["channel"] != "C0OTHER" || calls[1].Params["message_ts"] != "1793610000.000100" {
		t.Errorf("calls recorded: %+v", calls)
	}

	// A thread reply carries its thread, as in Slack.
	_, reply, err := api.PostMessageContext(ctx, "CAPPROVE", slack.MsgOptionText("done", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatal(err)
	}
	link, err = api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: "CAPPROVE", Ts: reply})
	if want := "https://revokebot-test.slack.com/archives/CAPPROVE/p" + reply[:10] + reply[11:] + "?thread_ts=" + ts + "&cid=CAPPROVE"; err != nil || link != want {
		t.Errorf("permalink of a reply: %q, %v; want %q", link, err, want)
	}

	// Refusals: a deleted message, a missing channel or ts, a scripted failure, a wrong token.
	ws.DeleteMessage("CAPPROVE", ts)
	for _, tt := range []struct {
		name, channel, ts, want string
	}{
		{"deleted", "CAPPROVE", ts, "message_not_found"},
		{"no channel", "", ts, "channel_not_found"},
		{"no ts", "CAPPROVE", "", "message_not_found"},
		{"not a ts", "CAPPROVE", "yesterday", "message_not_found"},
	} {
		_, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: tt.channel, Ts: tt.ts})
		if se, ok := errors.AsType[slack.SlackErrorResponse](err); !ok || se.Err != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	ws.Fail("chat.getPermalink", bottest.Failure{Error: "ratelimited"})
	if _, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: "C0OTHER", Ts: "1793610000.000100"}); err == nil {
		t.Error("a scripted failure answered ok")
	}
	wrong := slack.New("xoxb-wrong", slack.OptionAPIURL(ws.APIURL()))
	if _, err := wrong.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: "C0OTHER", Ts: "1793610000.000100"}); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("wrong token: %v, want invalid_auth", err)
	}
}
