package bottest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn is one Socket Mode connection; writes are serialized by mu.
type wsConn struct {
	mu   sync.Mutex
	ws   *websocket.Conn
	done chan struct{}
}

func (c *wsConn) writeJSON(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

func (c *wsConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
	default:
		close(c.done)
		c.ws.Close()
	}
}

func (w *Workspace) serveConnectionsOpen(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.notifyLocked()
	w.record("apps.connections.open", map[string]string{})
	if r.Header.Get("Authorization") != "Bearer "+w.appToken {
		slackError(rw, "invalid_auth")
		return
	}
	if f := w.failures["apps.connections.open"]; len(f) > 0 {
		w.failures["apps.connections.open"] = f[1:]
		slackError(rw, f[0].Error)
		return
	}
	writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(w.srv.URL, "http") + "/socket"})
}

func (w *Workspace) serveSocket(rw http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(rw, r, nil)
	if err != nil {
		return
	}
	c := &wsConn{ws: ws, done: make(chan struct{})}
	w.mu.Lock()
	if w.conn != nil {
		w.conn.close()
	}
	w.conn = c
	w.conns++
	w.mu.Unlock()

	hello := map[string]any{"type": "hello", "num_connections": 1,
		"debug_info":      map[string]any{"host": "bottest", "approximate_connection_time": 3600},
		"connection_info": map[string]any{"app_id": DefaultAppID}}
	if err := c.writeJSON(hello); err != nil {
		c.close()
		return
	}
	w.mu.Lock()
	w.notifyLocked()
	w.mu.Unlock()

	go func() {
		t := time.NewTicker(w.pingInterval)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-t.C:
				c.mu.Lock()
				err := c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second))
				c.mu.Unlock()
				if err != nil {
					c.close()
					return
				}
			}
		}
	}()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			c.close()
			w.mu.Lock()
			if w.conn == c {
				w.conn = nil
			}
			w.notifyLocked()
			w.mu.Unlock()
			return
		}
		var ack Ack
		if json.Unmarshal(data, &ack) != nil || ack.EnvelopeID == "" {
			continue
		}
		ack.At = time.Now()
		w.mu.Lock()
		w.acks[ack.EnvelopeID] = ack
		w.notifyLocked()
		w.mu.Unlock()
	}
}

// Connections counts the websocket connections opened so far.
func (w *Workspace) Connections() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conns
}

// WaitConnected waits until at least n connections have been opened and one is live.
func (w *Workspace) WaitConnected(n int, timeout time.Duration) {
	w.tb.Helper()
	w.waitFor(timeout, fmt.Sprintf("socket mode connection #%d", n), func() bool { return w.conns >= n && w.conn != nil })
}

// DropConnection closes the websocket abruptly, as a network failure would.
func (w *Workspace) DropConnection() {
	w.mu.Lock()
	c := w.conn
	w.conn = nil
	w.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// Disconnect sends Slack's disconnect message with reason (e.g. "refresh_requested").
func (w *Workspace) Disconnect(reason string) {
	w.tb.Helper()
	w.send(map[string]any{"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "bottest"}})
}

func (w *Workspace) send(v any) {
	w.tb.Helper()
	w.mu.Lock()
	c := w.conn
	w.mu.Unlock()
	if c == nil {
		w.tb.Fatalf("bottest: no live socket mode connection")
	}
	if err := c.writeJSON(v); err != nil {
		w.tb.Fatalf("bottest: send envelope: %v", err)
	}
}

func (w *Workspace) envelopeID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nextID++
	return fmt.Sprintf("env-%04d", w.nextID)
}

// SlashCommand sends `/revoke text` typed by user in channel and returns the
// envelope ID. The envelope's response_url records replies for user.
func (w *Workspace) SlashCommand(user, channel, text string) string {
	w.tb.Helper()
	id := w.envelopeID()
	w.SendEnvelope(id, "slash_commands", w.SlashPayload(user, channel, text), 0)
	return id
}

// SlashPayload builds the slash_commands payload of `/revoke text` typed by
// user in channel, as Slack sends it, for tests that change or replay it.
// Its response_url records replies for user.
func (w *Workspace) SlashPayload(user, channel, text string) map[string]any {
	return map[string]any{
		"token": "deprecated", "team_id": DefaultTeamID, "team_domain": "test", "channel_id": channel,
		"channel_name": "security", "user_id": user, "user_name": strings.ToLower(user), "command": "/revoke",
		"text": text, "api_app_id": DefaultAppID, "is_enterprise_install": "false",
		"response_url": w.responseURL(user, channel), "trigger_id": fmt.Sprintf("%d.%s.trigger", triggers.Add(1), user),
	}
}

// Click sends a block_actions envelope: user clicking the button actionID on
// message m. It returns the envelope ID.
func (w *Workspace) Click(user string, m Message, actionID string) string {
	w.tb.Helper()
	var value string
	for _, b := range m.Buttons() {
		if b.ActionID == actionID {
			value = b.Value
		}
	}
	return w.ClickValue(user, m, actionID, value)
}

// ClickValue is Click with an explicit button value (to forge or replay one).
func (w *Workspace) ClickValue(user string, m Message, actionID, value string) string {
	w.tb.Helper()
	id := w.envelopeID()
	w.SendEnvelope(id, "interactive", ClickPayload(user, m, actionID, value, w.responseURL(user, m.Channel)), 0)
	return id
}

// ClickPayload builds a block_actions payload as Slack sends it.
func ClickPayload(user string, m Message, actionID, value, responseURL string) map[string]any {
	return map[string]any{
		"type":         "block_actions",
		"team":         map[string]any{"id": DefaultTeamID, "domain": "test"},
		"user":         map[string]any{"id": user, "username": strings.ToLower(user), "team_id": DefaultTeamID},
		"api_app_id":   DefaultAppID,
		"token":        "deprecated",
		"container":    map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": false},
		"trigger_id":   fmt.Sprintf("%d.%s.trigger", triggers.Add(1), user),
		"channel":      map[string]any{"id": m.Channel, "name": "security"},
		"message":      map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "blocks": m.Blocks},
		"response_url": responseURL,
		"actions": []any{map[string]any{"action_id": actionID, "block_id": "revoke_decision", "value": value,
			"type": "button", "action_ts": actionTS(),
			"text": map[string]any{"type": "plain_text", "text": actionID}}},
	}
}

// triggers numbers trigger IDs, which Slack makes unique per user action.
var triggers atomic.Int64

// lastActionTS is the last action_ts handed out, in microseconds.
var lastActionTS atomic.Int64

// actionTS returns a new action_ts like Slack's ("seconds.micros"), unique
// and increasing across the process.
func actionTS() string {
	for {
		last := lastActionTS.Load()
		us := max(time.Now().UnixMicro(), last+1)
		if lastActionTS.CompareAndSwap(last, us) {
			return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
		}
	}
}

// SendEnvelope sends any Socket Mode envelope; retry > 0 marks a redelivery.
// The workspace remembers the payload's trigger_id, if any, with the time it
// was first sent, for views.open.
func (w *Workspace) SendEnvelope(id, typ string, payload any, retry int) {
	w.tb.Helper()
	kind := w.noteEnvelope(payload)
	env := map[string]any{"envelope_id": id, "type": typ, "payload": payload,
		"accepts_response_payload": typ == "slash_commands" || typ == "interactive" && kind == "view_submission"}
	if retry > 0 {
		env["retry_attempt"] = retry
		env["retry_reason"] = "timeout"
	}
	w.send(env)
}

// WaitAck waits for the bot to acknowledge envelope id and returns the ack.
func (w *Workspace) WaitAck(id string, timeout time.Duration) Ack {
	w.tb.Helper()
	var ack Ack
	w.waitFor(timeout, "ack of "+id, func() bool {
		a, ok := w.acks[id]
		ack = a
		return ok
	})
	return ack
}

// AckText returns the text of an ack's payload ("" when it has none).
func (a Ack) AckText() string {
	var p struct {
		Text string `json:"text"`
	}
	json.Unmarshal(a.Payload, &p)
	return p.Text
}
