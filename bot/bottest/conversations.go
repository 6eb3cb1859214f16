package bottest

import "net/http"

// ChannelInfo is what conversations.info reports about a channel.
type ChannelInfo struct {
	// Name is the channel's name, without the #.
	Name string
	// Private marks a private channel.
	Private bool
	// IsMember reports whether the bot is a member.
	IsMember bool
}

// SetChannel makes conversations.info describe channel id as info. As in
// Slack, a private channel the bot is not in answers channel_not_found. A
// channel never set is a public channel named after its ID with the bot a
// member, in keeping with chat.postMessage, which posts anywhere; a DM
// channel never set (DMChannel) is described as Slack describes a DM.
// (Membership only affects conversations.info.) For other errors, use Fail.
func (w *Workspace) SetChannel(id string, info ChannelInfo) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.channels == nil {
		w.channels = map[string]ChannelInfo{}
	}
	w.channels[id] = info
}

// serveConversationsInfo answers conversations.info; w.mu is held.
func (w *Workspace) serveConversationsInfo(rw http.ResponseWriter, params map[string]string) {
	id := params["channel"]
	info, ok := w.channels[id]
	switch {
	case id == "":
		slackError(rw, "channel_not_found")
		return
	case !ok:
		if user, dm := dmUser(id); dm {
			writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "channel": w.imJSONLocked(id, user)})
			return
		}
		info = ChannelInfo{Name: id, IsMember: true}
	case info.Private && !info.IsMember:
		slackError(rw, "channel_not_found")
		return
	}
	writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "channel": map[string]any{
		"id": id, "name": info.Name, "is_channel": !info.Private, "is_group": false, "is_im": false,
		"is_mpim": false, "is_private": info.Private, "is_archived": false, "is_member": info.IsMember,
		"context_team_id": DefaultTeamID, "created": 1700000000,
	}})
}
