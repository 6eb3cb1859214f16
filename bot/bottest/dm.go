package bottest

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
	"time"
)

// isUserID reports whether id looks like a Slack user ID (U… or W…).
func isUserID(id string) bool {
	return len(id) > 1 && (id[0] == 'U' || id[0] == 'W')
}

// DMChannel returns the ID of the direct-message channel between the bot
// and user: what conversations.open answers for user, and where
// chat.postMessage to user's ID posts. It is "D" followed by the user ID.
func (w *Workspace) DMChannel(user string) string { return "D" + user }

// dmUser returns the user of a DM channel ID made by DMChannel.
func dmUser(channel string) (string, bool) {
	if len(channel) > 1 && channel[0] == 'D' && isUserID(channel[1:]) {
		return channel[1:], true
	}
	return "", false
}

// mpimChannel returns a stable ID for the group DM of users.
func mpimChannel(users []string) string {
	sorted := slices.Sorted(slices.Values(users))
	h := fnv.New32a()
	h.Write([]byte(strings.Join(sorted, ",")))
	return fmt.Sprintf("GMPIM%08X", h.Sum32())
}

// postChannelLocked is where chat.postMessage to channel posts: a user ID
// means the bot's DM with that user, as in Slack. w.mu is held.
func (w *Workspace) postChannelLocked(channel string) string {
	if isUserID(channel) {
		return w.DMChannel(channel)
	}
	return channel
}

// DirectMessages returns the messages the bot sent user in their direct
// message channel (through conversations.open or straight to the user's
// ID), oldest first; like Messages, not thread replies.
func (w *Workspace) DirectMessages(user string) []Message {
	return w.Messages(w.DMChannel(user))
}

// WaitDirectMessage waits for a direct message to user that match accepts,
// and returns it.
func (w *Workspace) WaitDirectMessage(user string, match func(Message) bool, timeout time.Duration) Message {
	w.tb.Helper()
	return w.WaitMessage(w.DMChannel(user), match, timeout)
}

// serveConversationsOpen answers conversations.open. One user gives the DM
// channel (DMChannel), two to eight a group DM; channel resumes a DM or group
// DM by ID. A user never set with SetUser is taken to exist, in keeping with
// chat.postMessage, which posts anywhere (use Fail for user_not_found); one
// set as Deleted answers user_disabled. w.mu is held.
func (w *Workspace) serveConversationsOpen(rw http.ResponseWriter, params map[string]string) {
	var id, user string
	switch {
	case params["users"] != "":
		var users []string
		for u := range strings.SplitSeq(params["users"], ",") {
			if u = strings.TrimSpace(u); u != "" && !slices.Contains(users, u) {
				users = append(users, u)
			}
		}
		if len(users) > 8 {
			slackError(rw, "too_many_users")
			return
		}
		for _, u := range users {
			if !isUserID(u) {
				slackError(rw, "user_not_found")
				return
			}
			if info, ok := w.users[u]; ok && info.Deleted {
				slackError(rw, "user_disabled")
				return
			}
		}
		if len(users) == 1 {
			user, id = users[0], w.DMChannel(users[0])
		} else {
			id = mpimChannel(users)
		}
	case params["channel"] != "":
		id = params["channel"]
		var ok bool
		if user, ok = dmUser(id); !ok && !strings.HasPrefix(id, "GMPIM") {
			slackError(rw, "channel_not_found")
			return
		}
	default:
		slackError(rw, "users_list_not_supplied")
		return
	}
	if w.opened == nil {
		w.opened = map[string]bool{}
	}
	already := w.opened[id]
	w.opened[id] = true
	channel := map[string]any{"id": id}
	if user != "" && (params["return_im"] == "true" || params["return_im"] == "1") {
		channel = w.imJSONLocked(id, user)
	}
	resp := map[string]any{"ok": true, "channel": channel}
	if already {
		resp["no_op"], resp["already_open"] = true, true
	}
	writeJSON(rw, http.StatusOK, resp)
}

// imJSONLocked is the DM channel id with user as Slack describes it
// (conversations.open with return_im, conversations.info); w.mu is held.
func (w *Workspace) imJSONLocked(id, user string) map[string]any {
	return map[string]any{
		"id": id, "created": 1700000000, "is_im": true, "is_org_shared": false,
		"context_team_id": DefaultTeamID, "user": user, "is_user_deleted": w.users[user].Deleted, "priority": 0,
	}
}
