package bottest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// newTSLocked returns a new message timestamp, "seconds.micros" of the
// current time like Slack's, strictly increasing; w.mu is held.
func (w *Workspace) newTSLocked() string {
	us := max(time.Now().UnixMicro(), w.lastTS+1)
	w.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

// tsMicros parses a Slack timestamp into microseconds; ok is false if it is
// not one.
func tsMicros(ts string) (int64, bool) {
	secs, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return 0, false
	}
	frac = (frac + "000000")[:6]
	us, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, false
	}
	return s*1e6 + us, true
}

// LimitPosts makes chat.postMessage answer 429 (Retry-After: 1) to a post
// beyond n in any second in one channel, as Slack does to a bot posting
// faster than about one message per second per channel.
func (w *Workspace) LimitPosts(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.postsPerSecond = n
}

// RateLimited returns how many posts LimitPosts refused.
func (w *Workspace) RateLimited() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rateLimited
}

// overPostLimitLocked records a post to channel and reports whether it is
// beyond the limit; w.mu is held.
func (w *Workspace) overPostLimitLocked(channel string) bool {
	if w.postsPerSecond <= 0 {
		return false
	}
	now := time.Now()
	recent := slices.DeleteFunc(w.posts[channel], func(t time.Time) bool { return now.Sub(t) >= time.Second })
	if len(recent) >= w.postsPerSecond {
		w.posts[channel] = recent
		return true
	}
	w.posts[channel] = append(recent, now)
	return false
}

// HoldAfter makes calls of method take effect (a post is stored, and shows
// in the channel's history) but holds their answer until release is called:
// like Slack taking a message whose answer is lost on the way back.
func (w *Workspace) HoldAfter(method string) (release func()) {
	ch := make(chan struct{})
	w.mu.Lock()
	w.holdsAfter[method] = ch
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		if w.holdsAfter[method] == ch {
			delete(w.holdsAfter, method)
			close(ch)
		}
		w.mu.Unlock()
	}
}

// Forge adds a message to channel as if user (not the bot) had posted it,
// with optional metadata, and returns its ts.
func (w *Workspace) Forge(channel, user, text string, metadata json.RawMessage) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := Message{Channel: channel, TS: w.newTSLocked(), Text: text, Metadata: metadata, User: user, At: time.Now()}
	w.messages = append(w.messages, m)
	w.notifyLocked()
	return m.TS
}

// historyPage is how many messages conversations.history returns at most
// when the caller gives no limit (Slack's default is 100).
const historyPage = 100

// serveConversationsHistory answers conversations.history: the channel's
// messages newest first (as in Slack, a thread's parent but not its replies,
// unless sent to the channel too), between oldest and latest (exclusive unless
// inclusive=1), paged with an opaque cursor. Metadata is included only with
// include_all_metadata. w.mu is held.
func (w *Workspace) serveConversationsHistory(rw http.ResponseWriter, params map[string]string) {
	channel := params["channel"]
	if channel == "" {
		slackError(rw, "channel_not_found")
		return
	}
	limit := historyPage
	if n, err := strconv.Atoi(params["limit"]); err == nil && n > 0 {
		limit = min(n, 999)
	}
	inclusive := params["inclusive"] == "1" || params["inclusive"] == "true"
	oldest, hasOldest := tsMicros(params["oldest"])
	latest, hasLatest := tsMicros(params["latest"])
	var matching []Message
	for _, m := range slices.Backward(w.messages) {
		us, _ := tsMicros(m.TS)
		switch {
		case m.Channel != channel || !m.inChannel():
			continue
		case hasOldest && (us < oldest || us == oldest && !inclusive):
			continue
		case hasLatest && (us > latest || us == latest && !inclusive):
			continue
		}
		matching = append(matching, m)
	}
	w.writePageLocked(rw, params, matching, limit)
}

// writePageLocked answers a history or replies call with the page of msgs
// its cursor asks for (a cursor is "page:<offset>"), at most limit of them,
// with their metadata if the call asked for it. w.mu is held.
func (w *Workspace) writePageLocked(rw http.ResponseWriter, params map[string]string, msgs []Message, limit int) {
	start := 0
	if c := params["cursor"]; c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "page:"))
		if err != nil || n < 0 || n > len(msgs) {
			slackError(rw, "invalid_cursor")
			return
		}
		start = n
	}
	end := min(start+limit, len(msgs))
	withMetadata := params["include_all_metadata"] == "1" || params["include_all_metadata"] == "true"
	out := []map[string]any{}
	for _, m := range msgs[start:end] {
		out = append(out, w.messageJSONLocked(m, withMetadata))
	}
	resp := map[string]any{"ok": true, "messages": out, "has_more": end < len(msgs)}
	if end < len(msgs) {
		resp["response_metadata"] = map[string]any{"next_cursor": fmt.Sprintf("page:%d", end)}
	}
	writeJSON(rw, http.StatusOK, resp)
}

// DeleteMessage removes a message from its channel's history, as a person
// with the right role can.
func (w *Workspace) DeleteMessage(channel, ts string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.messages {
		if w.messages[i].Channel == channel && w.messages[i].TS == ts {
			w.messages[i].Deleted = true
		}
	}
	w.notifyLocked()
}
