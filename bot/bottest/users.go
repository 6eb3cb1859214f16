package bottest

import (
	"net/http"
	"strings"
)

// User is a member of the workspace as users.info describes them (SetUser).
type User struct {
	// Name is the user's handle (users.info's name); the fake also reports
	// it as the profile's real_name and display_name.
	Name string
	// Email is profile.email; users.info leaves it out when empty, as Slack
	// does for bots and for tokens without users:read.email.
	Email string
	// TeamID is the user's home workspace; empty means this workspace
	// (DefaultTeamID). Another ID makes an external (Slack Connect) user.
	TeamID string
	// IsBot marks a bot user.
	IsBot bool
	// Deleted marks a deactivated account: users.info still answers, with
	// deleted true, and conversations.open answers user_disabled.
	Deleted bool
	// IsRestricted marks a multi-channel guest.
	IsRestricted bool
	// IsUltraRestricted marks a single-channel guest.
	IsUltraRestricted bool
}

// SetUser makes users.info describe user id as u (replacing any earlier
// SetUser of id). users.info answers user_not_found for a user never set,
// except the bot itself (BotUserID), which it describes as a bot.
func (w *Workspace) SetUser(id string, u User) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.users == nil {
		w.users = map[string]User{}
	}
	w.users[id] = u
}

// userLocked returns the user id as users.info knows them; w.mu is held.
func (w *Workspace) userLocked(id string) (User, bool) {
	if u, ok := w.users[id]; ok {
		return u, true
	}
	if id == BotUserID {
		return User{Name: "revokebot", IsBot: true}, true
	}
	return User{}, false
}

// userJSON is u as Slack's user object.
func userJSON(id string, u User) map[string]any {
	team := u.TeamID
	if team == "" {
		team = DefaultTeamID
	}
	profile := map[string]any{
		"real_name": u.Name, "real_name_normalized": u.Name,
		"display_name": u.Name, "display_name_normalized": u.Name,
		"avatar_hash": "", "status_text": "", "status_emoji": "", "team": team,
	}
	if u.Email != "" {
		profile["email"] = u.Email
	}
	if id == BotUserID {
		profile["bot_id"] = "BREVOKEBOT"
		profile["api_app_id"] = DefaultAppID
	}
	return map[string]any{
		"id": id, "team_id": team, "name": u.Name, "deleted": u.Deleted, "color": "9f69e7",
		"real_name": u.Name, "tz": "Etc/UTC", "tz_label": "Coordinated Universal Time", "tz_offset": 0,
		"profile":  profile,
		"is_admin": false, "is_owner": false, "is_primary_owner": false,
		"is_restricted": u.IsRestricted, "is_ultra_restricted": u.IsUltraRestricted,
		"is_bot": u.IsBot, "is_app_user": false, "updated": 1700000000,
	}
}

// serveUsersInfo answers users.info: one user (param user), or several
// (param users, comma-separated, as slack-go's GetUsersInfo sends). w.mu is
// held.
func (w *Workspace) serveUsersInfo(rw http.ResponseWriter, params map[string]string) {
	if id := params["user"]; id != "" || params["users"] == "" {
		u, ok := w.userLocked(id)
		if !ok {
			slackError(rw, "user_not_found")
			return
		}
		writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "user": userJSON(id, u)})
		return
	}
	var out []map[string]any
	for id := range strings.SplitSeq(params["users"], ",") {
		id = strings.TrimSpace(id)
		u, ok := w.userLocked(id)
		if !ok {
			slackError(rw, "user_not_found")
			return
		}
		out = append(out, userJSON(id, u))
	}
	writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "users": out})
}
