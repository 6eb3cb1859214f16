package bottest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// inChannel reports whether m shows in its channel (Messages,
// conversations.history): a top-level message, or a thread reply also sent
// to the channel (reply_broadcast), and not deleted.
func (m Message) inChannel() bool {
	return !m.Deleted && (m.ThreadTS == "" || m.Broadcast)
}

// threadRootLocked returns the ts of the thread a post with thread_ts joins
// in channel: thread_ts, or, if thread_ts is itself a reply, its parent's
// (Slack keeps threads one level deep). w.mu is held.
func (w *Workspace) threadRootLocked(channel, threadTS string) string {
	for _, m := range w.messages {
		if m.Channel == channel && m.TS == threadTS && m.ThreadTS != "" {
			return m.ThreadTS
		}
	}
	return threadTS
}

// Replies returns the replies in the thread of the message ts in channel,
// oldest first (without the parent message, and not those deleted).
func (w *Workspace) Replies(channel, ts string) []Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Message
	for _, m := range w.messages {
		if m.Channel == channel && m.ThreadTS == ts && !m.Deleted {
			out = append(out, m)
		}
	}
	return out
}

// WaitReply waits for a reply in the thread of the message ts in channel
// that match accepts, and returns it.
func (w *Workspace) WaitReply(channel, ts string, match func(Message) bool, timeout time.Duration) Message {
	w.tb.Helper()
	var found Message
	w.waitFor(timeout, fmt.Sprintf("a matching reply to %s in %s", ts, channel), func() bool {
		for _, m := range w.messages {
			if m.Channel == channel && m.ThreadTS == ts && !m.Deleted && match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// messageJSONLocked is m as conversations.history and conversations.replies
// return it: a thread's parent carries thread_ts, reply_count, reply_users
// and latest_reply; a reply its thread_ts and parent_user_id. w.mu is held.
func (w *Workspace) messageJSONLocked(m Message, withMetadata bool) map[string]any {
	msg := map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "user": m.User, "team": DefaultTeamID}
	if m.User == BotUserID {
		msg["bot_id"] = "BREVOKEBOT"
		msg["app_id"] = DefaultAppID
	}
	if len(m.Blocks) > 0 {
		msg["blocks"] = m.Blocks
	}
	if withMetadata && len(m.Metadata) > 0 {
		msg["metadata"] = m.Metadata
	}
	if m.ThreadTS != "" {
		msg["thread_ts"] = m.ThreadTS
		for _, p := range w.messages {
			if p.Channel == m.Channel && p.TS == m.ThreadTS {
				msg["parent_user_id"] = p.User
			}
		}
		if m.Broadcast {
			msg["subtype"] = "thread_broadcast"
		}
		return msg
	}
	var users []string
	count, latest := 0, ""
	for _, r := range w.messages {
		if r.Channel == m.Channel && r.ThreadTS == m.TS && !r.Deleted {
			count++
			latest = r.TS
			if !slices.Contains(users, r.User) {
				users = append(users, r.User)
			}
		}
	}
	if count > 0 {
		msg["thread_ts"] = m.TS
		msg["reply_count"] = count
		msg["reply_users_count"] = len(users)
		msg["reply_users"] = users
		msg["latest_reply"] = latest
		msg["is_locked"] = false
		msg["subscribed"] = false
	}
	return msg
}

// serveConversationsReplies answers conversations.replies: the thread of
// the message ts (its parent, when ts is a reply) oldest first, the parent
// first; oldest/latest/inclusive select among the replies; paged with an
// opaque cursor (limit defaults to 1,000, as in Slack). A message without
// replies is a thread of one. w.mu is held.
func (w *Workspace) serveConversationsReplies(rw http.ResponseWriter, params map[string]string) {
	channel, ts := params["channel"], params["ts"]
	if channel == "" {
		slackError(rw, "channel_not_found")
		return
	}
	root := ts
	found := false
	for _, m := range w.messages {
		if m.Channel == channel && m.TS == ts && !m.Deleted {
			found = true
			if m.ThreadTS != "" {
				root = m.ThreadTS
			}
		}
	}
	if ts == "" || !found {
		slackError(rw, "thread_not_found")
		return
	}
	inclusive := params["inclusive"] == "1" || params["inclusive"] == "true"
	oldest, hasOldest := tsMicros(params["oldest"])
	latest, hasLatest := tsMicros(params["latest"])
	var thread []Message
	for _, m := range w.messages {
		if m.Channel != channel || m.Deleted {
			continue
		}
		if m.TS == root && m.ThreadTS == "" {
			thread = append([]Message{m}, thread...)
			continue
		}
		if m.ThreadTS != root {
			continue
		}
		us, _ := tsMicros(m.TS)
		switch {
		case hasOldest && (us < oldest || us == oldest && !inclusive):
			continue
		case hasLatest && (us > latest || us == latest && !inclusive):
			continue
		}
		thread = append(thread, m)
	}
	limit := 1000
	if n, err := strconv.Atoi(params["limit"]); err == nil && n > 0 {
		limit = min(n, 1000)
	}
	w.writePageLocked(rw, params, thread, limit)
}
