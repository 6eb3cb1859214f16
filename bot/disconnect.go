package bot

import (
	"encoding/json"
	"log/slog"
	"strings"
)

// disconnectLog receives slack-go's Socket Mode debug log and passes on only
// what it alone shows: the reason of a disconnect message from Slack, which
// slack-go handles (by reconnecting) before the bot would see it. Everything
// else is dropped: it would repeat what the bot logs itself.
type disconnectLog struct{ log *slog.Logger }

// receivedPrefix starts slack-go's debug line for each websocket message
// (whose credentials slack-go has already redacted).
const receivedPrefix = "Received WebSocket message: "

// Output implements slack-go's logger.
func (d disconnectLog) Output(_ int, line string) error {
	raw, ok := strings.CutPrefix(line, receivedPrefix)
	if !ok || !strings.Contains(raw, `"disconnect"`) {
		return nil
	}
	var msg struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
		Info   struct {
			Host string `json:"host"`
		} `json:"debug_info"`
	}
	if json.Unmarshal([]byte(strings.TrimSpace(raw)), &msg) != nil || msg.Type != "disconnect" {
		return nil
	}
	switch msg.Reason {
	case "link_disabled":
		d.log.Error("slack disabled this Socket Mode connection (link_disabled): Socket Mode was turned off for the app, or the app was uninstalled; turn it on again in the app's settings",
			"reason", msg.Reason)
	case "too_many_websockets":
		d.log.Warn("slack closed a connection: too many Socket Mode connections for this app (at most 10)", "reason", msg.Reason)
	default:
		d.log.Info("slack asked to reconnect; reconnecting", "reason", msg.Reason, "host", msg.Info.Host)
	}
	return nil
}
