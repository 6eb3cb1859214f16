package bottest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
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
	// index is the connection's place in the order they were opened (0 for
	// the first); envelopes counts the envelopes sent to it. Both are
	// guarded by the workspace's lock.
	index     int
	envelopes int
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
	if w.multi && len(w.live) >= MaxConnections {
		w.mu.Unlock()
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "too_many_connections"),
			time.Now().Add(time.Second))
		ws.Close()
		return
	}
	if !w.multi {
		for _, old := range w.live {
			old.close()
		}
		w.live = w.live[:0]
	}
	c.index = len(w.all)
	w.all = append(w.all, c)
	w.live = append(w.live, c)
	live := len(w.live)
	w.mu.Unlock()

	hello := map[string]any{"type": "hello", "num_connections": live,
		"debug_info":      map[string]any{"host": "bottest", "approximate_connection_time": 3600},
		"connection_info": map[string]any{"app_id": DefaultAppID}}
	if err := c.writeJSON(hello); err != nil {
		c.close()
		w.mu.Lock()
		w.live = slices.DeleteFunc(w.live, func(l *wsConn) bool { return l == c })
		w.notifyLocked()
		w.mu.Unlock()
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
			w.live = slices.DeleteFunc(w.live, func(l *wsConn) bool { return l == c })
			w.notifyLocked()
			w.mu.Unlock()
			return
		}
		var ack Ack
		if json.Unmarshal(data, &ack) != nil || ack.EnvelopeID == "" {
			continue
		}
		ack.At = time.Now()
		ack.Connection = c.index
		w.mu.Lock()
		w.acks[ack.EnvelopeID] = ack
		w.ackedLocked(ack.EnvelopeID)
		w.notifyLocked()
		w.mu.Unlock()
	}
}

// Connections counts the websocket connections opened so far (in
// multi-connection mode, the refused ones are not counted).
func (w *Workspace) Connections() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.all)
}

// WaitConnected waits until at least n connections have been opened and one is live.
func (w *Workspace) WaitConnected(n int, timeout time.Duration) {
	w.tb.Helper()
	w.waitFor(timeout, fmt.Sprintf("socket mode connection #%d", n), func() bool { return len(w.all) >= n && len(w.live) > 0 })
}

// DropConnection closes the websocket abruptly, as a network failure would.
// In multi-connection mode it drops one live connection chosen at random.
// It returns the index of the connection dropped (see EnvelopesPerConnection),
// or -1 when none was live.
func (w *Workspace) DropConnection() int {
	w.mu.Lock()
	var c *wsConn
	if len(w.live) > 0 {
		i := 0
		if w.multi {
			i = rand.IntN(len(w.live))
		}
		c = w.live[i]
		w.live = slices.Delete(w.live, i, i+1)
		w.notifyLocked()
	}
	w.mu.Unlock()
	if c == nil {
		return -1
	}
	c.close()
	return c.index
}

// Disconnect sends Slack's disconnect message with reason (e.g.
// "refresh_requested"); in multi-connection mode, to one live connection
// chosen at random.
func (w *Workspace) Disconnect(reason string) {
	w.tb.Helper()
	w.send(map[string]any{"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "bottest"}})
}

// pickLocked returns the connection a message goes to, or nil when none is
// live: the live one, or in multi-connection mode one chosen at random among
// the live ones still open, other than avoid when there is another.
func (w *Workspace) pickLocked(avoid *wsConn) *wsConn {
	if !w.multi {
		if len(w.live) == 0 {
			return nil
		}
		return w.live[0]
	}
	var open, others []*wsConn
	for _, c := range w.live {
		select {
		case <-c.done:
			continue // closed; its read loop is about to forget it
		default:
		}
		open = append(open, c)
		if c != avoid {
			others = append(others, c)
		}
	}
	if len(others) > 0 {
		return others[rand.IntN(len(others))]
	}
	if len(open) > 0 {
		return open[rand.IntN(len(open))]
	}
	return nil
}

func (w *Workspace) send(v any) {
	w.tb.Helper()
	w.mu.Lock()
	c := w.pickLocked(nil)
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
// was first sent, for views.open. In multi-connection mode the envelope goes
// to a live connection chosen at random, and is redelivered if not
// acknowledged in time (see WithMultiConnection).
func (w *Workspace) SendEnvelope(id, typ string, payload any, retry int) {
	w.tb.Helper()
	kind := w.noteEnvelope(payload)
	env := &envelope{id: id, first: id, typ: typ, payload: payload, retry: retry,
		acceptsResponse: typ == "slash_commands" || typ == "interactive" && kind == "view_submission"}
	if !w.multi {
		w.mu.Lock()
		c := w.pickLocked(nil)
		if c != nil {
			c.envelopes++
		}
		w.mu.Unlock()
		if c == nil {
			w.tb.Fatalf("bottest: no live socket mode connection")
		}
		if err := c.writeJSON(env.message()); err != nil {
			w.tb.Fatalf("bottest: send envelope: %v", err)
		}
		return
	}
	// Redeliveries send the payload as it is now, whatever the caller does
	// with it later.
	if data, err := json.Marshal(payload); err == nil {
		env.payload = json.RawMessage(data)
	}
	for {
		w.mu.Lock()
		c := w.pickLocked(nil)
		if c == nil {
			w.mu.Unlock()
			w.tb.Fatalf("bottest: no live socket mode connection")
		}
		w.trackLocked(env, c)
		w.mu.Unlock()
		err := c.writeJSON(env.message())
		if err == nil {
			return
		}
		// The connection broke: another one gets the envelope now.
		c.close()
		w.mu.Lock()
		c.envelopes--
		w.mu.Unlock()
	}
}

// WaitAck waits for the bot to acknowledge envelope id and returns the ack.
// In multi-connection mode an ack of one of id's redeliveries counts too
// (some connection handled the envelope): WaitAck returns id's own ack if it
// has one, and otherwise the earliest ack of a redelivery (its EnvelopeID
// says which).
func (w *Workspace) WaitAck(id string, timeout time.Duration) Ack {
	w.tb.Helper()
	var ack Ack
	w.waitFor(timeout, "ack of "+id, func() bool {
		a, ok := w.ackLocked(id)
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
