package bottest

import (
	"net/http"
	"net/url"
	"strings"
)

// PermalinkHost is the workspace's host in the permalinks chat.getPermalink
// returns: fixed, whatever port the fake listens on, so that a test can
// compare them with a golden file.
const PermalinkHost = "revokebot-test.slack.com"

// Permalink returns the permalink of the message ts in channel as Slack
// writes it: https://<workspace>.slack.com/archives/<channel>/p<ts without
// its dot>, and, for a thread reply the workspace holds, its thread's ts
// and channel as the query, in Slack's order (?thread_ts=…&cid=…).
func (w *Workspace) Permalink(channel, ts string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.permalinkLocked(channel, ts)
}

// permalinkLocked is Permalink; w.mu is held.
func (w *Workspace) permalinkLocked(channel, ts string) string {
	link := "https://" + PermalinkHost + "/archives/" + channel + "/p" + strings.Replace(ts, ".", "", 1)
	for _, m := range w.messages {
		if m.Channel == channel && m.TS == ts && m.ThreadTS != "" {
			link += "?thread_ts=" + url.QueryEscape(m.ThreadTS) + "&cid=" + url.QueryEscape(channel)
			break
		}
	}
	return link
}

// servePermalink answers chat.getPermalink (which slack-go reads with GET):
// {"ok":true,"channel":"C…","permalink":"https://…/archives/C…/p…"}. As in
// Slack, a call without a channel is channel_not_found, and one without a
// message ts, with one that is not a Slack ts, or naming a message deleted
// with DeleteMessage is message_not_found. A well-formed ts the workspace
// never saw is answered too: tests record approval messages in a store
// without posting them. For other errors, use Fail. w.mu is held.
func (w *Workspace) servePermalink(rw http.ResponseWriter, params map[string]string) {
	channel, ts := params["channel"], params["message_ts"]
	if channel == "" {
		slackError(rw, "channel_not_found")
		return
	}
	if _, ok := tsMicros(ts); !ok || !strings.Contains(ts, ".") {
		slackError(rw, "message_not_found")
		return
	}
	for _, m := range w.messages {
		if m.Channel == channel && m.TS == ts && m.Deleted {
			slackError(rw, "message_not_found")
			return
		}
	}
	writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "channel": channel, "permalink": w.permalinkLocked(channel, ts)})
}
