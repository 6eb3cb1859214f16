// Package bottest is a fake Slack workspace for tests: an httptest server that
// answers the Web API methods revokebot uses, a real Socket Mode websocket
// (apps.connections.open → ws:// URL, hello, envelopes in, acks recorded,
// websocket pings), and response_url endpoints that record private replies.
package bottest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults of a new Workspace.
const (
	DefaultBotToken = "xoxb-test-bot-token"
	DefaultAppToken = "xapp-test-app-token"
	DefaultTeamID   = "T0TEST"
	DefaultAppID    = "A0TEST"
	BotUserID       = "UREVOKEBOT"
)

// Workspace is a fake Slack workspace. All methods are safe for concurrent use.
type Workspace struct {
	tb           TB
	srv          *httptest.Server
	botToken     string
	appToken     string
	pingInterval time.Duration

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every recorded change
	// live holds the open Socket Mode connections (at most one unless
	// multi), oldest first; all holds every connection opened, in order.
	live       []*wsConn
	all        []*wsConn
	acks       map[string]Ack
	messages   []Message
	ephemerals []Ephemeral
	calls      []Call
	groups     map[string][]string
	failures   map[string][]Failure
	holds      map[string]chan struct{}
	held       map[string]int
	lastTS     int64 // microseconds of the last message ts
	nextID     int
	// postsPerSecond, if set, limits chat.postMessage per channel like Slack
	// does (answering 429 past it); posts holds their times per channel.
	postsPerSecond int
	posts          map[string][]time.Time
	rateLimited    int
	// holdsAfter holds a method's answer after the call has taken effect.
	holdsAfter map[string]chan struct{}

	// channels holds what conversations.info reports (SetChannel).
	channels map[string]ChannelInfo
	// users holds what users.info reports (SetUser).
	users map[string]User
	// opened holds the DM and group DM channels conversations.open opened.
	opened map[string]bool
	// triggers holds the trigger IDs sent in envelopes, for views.open;
	// triggerTTL is how long one stays valid (3 seconds, as in Slack).
	triggers   map[string]*trigger
	triggerTTL time.Duration
	// views holds the modals opened with views.open, oldest first.
	views    []View
	nextView int

	// multi is the multi-connection mode (WithMultiConnection), in which
	// envelopes not acknowledged within redeliverAfter are redelivered.
	multi          bool
	redeliverAfter time.Duration
	// inFlight holds the envelopes awaiting an ack that will be redelivered
	// if it does not come; retries maps an envelope's ID to the IDs of its
	// redeliveries, oldest first, and firsts a redelivery's ID to the ID of
	// the envelope first sent.
	inFlight    map[string]*envelope
	retries     map[string][]string
	firsts      map[string]string
	redelivered int
	closed      bool
}

// Option configures a Workspace.
type Option func(*Workspace)

// WithPingInterval sets how often the websocket sends PINGs (default 100ms).
func WithPingInterval(d time.Duration) Option { return func(w *Workspace) { w.pingInterval = d } }

// WithTriggerExpiry sets how long after its envelope was sent a trigger_id
// can open a view (default 3 seconds, as in Slack): a test of a slow path
// can shorten it rather than wait.
func WithTriggerExpiry(d time.Duration) Option { return func(w *Workspace) { w.triggerTTL = d } }

// Message is a message the bot posted with chat.postMessage, as it stands
// after any chat.update.
type Message struct {
	// Channel is the channel's ID; a post to a user's ID is in their DM
	// channel (DMChannel).
	Channel string
	TS      string
	// ThreadTS is, for a thread reply, the ts of the thread's parent
	// message; it is empty for a top-level message (even one with replies).
	ThreadTS string
	// Broadcast marks a thread reply also sent to the channel
	// (reply_broadcast): it shows in Messages and conversations.history.
	Broadcast bool
	Text      string
	Blocks    json.RawMessage
	// Metadata is the message's metadata, as the bot sent it (null if none).
	Metadata json.RawMessage
	// User is who posted it: the bot, unless Forge put it there.
	User string
	// Deleted marks a message removed from the channel (DeleteMessage).
	Deleted bool
	// Updates counts the chat.update calls applied to the message.
	Updates int
	// At is when the message was posted.
	At time.Time
}

// Ephemeral is a private reply the bot sent through a response_url.
// (Replies sent as a slash command's ack payload are in the Ack.)
type Ephemeral struct {
	User         string
	Channel      string
	Text         string
	ResponseType string
}

// Ack is a Socket Mode acknowledgement the bot sent.
type Ack struct {
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload"`
	At         time.Time       `json:"-"`
	// Connection is the connection the ack came on: its index in
	// EnvelopesPerConnection (0 for the first connection opened).
	Connection int `json:"-"`
}

// Call is one Web API call the bot made (the token is not recorded).
type Call struct {
	Method string
	Params map[string]string
	At     time.Time
}

// Failure scripts a Web API method's answer: a Slack error, or a rate limit.
type Failure struct {
	Error      string // e.g. "channel_not_found"; ignored when RetryAfter is set
	RetryAfter int    // seconds; answers HTTP 429 with Retry-After
	Status     int    // an HTTP status such as 500, instead of a Slack error
}

// New starts a fake workspace and stops it when the test ends.
func New(tb TB, opts ...Option) *Workspace {
	tb.Helper()
	w := &Workspace{
		tb: tb, botToken: DefaultBotToken, appToken: DefaultAppToken, pingInterval: 100 * time.Millisecond,
		changed: make(chan struct{}), acks: map[string]Ack{}, groups: map[string][]string{}, failures: map[string][]Failure{}, holds: map[string]chan struct{}{}, held: map[string]int{},
		posts: map[string][]time.Time{}, holdsAfter: map[string]chan struct{}{},
		triggers: map[string]*trigger{}, triggerTTL: 3 * time.Second,
		inFlight: map[string]*envelope{}, retries: map[string][]string{}, firsts: map[string]string{},
	}
	for _, o := range opts {
		o(w)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/{method}", w.serveAPI)
	// slack-go reads some methods (chat.getPermalink) with GET and a query.
	mux.HandleFunc("GET /api/{method}", w.serveAPI)
	mux.HandleFunc("GET /socket", w.serveSocket)
	mux.HandleFunc("POST /respond/{user}/{channel}", w.serveResponseURL)
	w.srv = httptest.NewServer(mux)
	tb.Cleanup(w.Close)
	return w
}

// Close stops the server and drops the websockets; no envelope is
// redelivered after it.
func (w *Workspace) Close() {
	w.mu.Lock()
	w.closed = true
	for _, e := range w.inFlight {
		e.timer.Stop()
	}
	clear(w.inFlight)
	live := w.live
	w.live = nil
	w.mu.Unlock()
	for _, c := range live {
		c.close()
	}
	w.srv.Close()
}

// APIURL is the Web API base URL, with the trailing slash slack-go needs.
func (w *Workspace) APIURL() string { return w.srv.URL + "/api/" }

// BotToken and AppToken are the tokens the workspace accepts.
func (w *Workspace) BotToken() string { return w.botToken }

// AppToken is the app-level token apps.connections.open accepts.
func (w *Workspace) AppToken() string { return w.appToken }

// SetGroup makes a user group with the given members.
func (w *Workspace) SetGroup(id string, members ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.groups[id] = members
}

// Hold makes calls of a Web API method wait, unanswered, until release is
// called (or the workspace closes), as a slow Slack would. A held call whose
// client goes away meanwhile (a killed process) is dropped unanswered and
// unrecorded, as if it never reached Slack. HeldCalls counts the waiting calls.
func (w *Workspace) Hold(method string) (release func()) {
	ch := make(chan struct{})
	w.mu.Lock()
	w.holds[method] = ch
	w.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			w.mu.Lock()
			delete(w.holds, method)
			w.mu.Unlock()
			close(ch)
		})
	}
	w.tb.Cleanup(release)
	return release
}

// HeldCalls returns how many calls of method are waiting on a Hold.
func (w *Workspace) HeldCalls(method string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.held[method]
}

// Fail makes the next calls of a Web API method answer with the failures, in order.
func (w *Workspace) Fail(method string, failures ...Failure) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failures[method] = append(w.failures[method], failures...)
}

func (w *Workspace) notifyLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// waitFor is Eventually with cond run under the workspace's lock.
func (w *Workspace) waitFor(timeout time.Duration, what string, cond func() bool) {
	w.tb.Helper()
	w.Eventually(what, timeout, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return cond()
	})
}

// Eventually waits until cond returns true, re-checking whenever the workspace
// records something (and every 20 ms, for conditions on other state), and
// fails the test after timeout. Unlike the other Wait methods, cond runs
// without the workspace's lock, so it may call Messages, Ephemerals and Calls.
func (w *Workspace) Eventually(what string, timeout time.Duration, cond func() bool) {
	w.tb.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		w.mu.Lock()
		ch := w.changed
		w.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline:
			w.tb.Fatalf("bottest: timed out after %s waiting for %s\n%s", timeout, what, w.dump())
		}
	}
}

func (w *Workspace) dump() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "connections: %d\n", len(w.all))
	if w.multi {
		fmt.Fprintf(&b, "live connections: %d, envelopes per connection: %v, redelivered: %d\n",
			len(w.live), w.envelopesPerConnectionLocked(), w.redelivered)
	}
	for _, m := range w.messages {
		thread := ""
		if m.ThreadTS != "" {
			thread = " in thread " + m.ThreadTS
		}
		fmt.Fprintf(&b, "message %s %s%s (updates %d): %s\n", m.Channel, m.TS, thread, m.Updates, m.Text)
	}
	for _, v := range w.views {
		fmt.Fprintf(&b, "view %s for %s: callback_id %q\n", v.ID, v.User, v.CallbackID)
	}
	for _, e := range w.ephemerals {
		fmt.Fprintf(&b, "ephemeral to %s: %s\n", e.User, e.Text)
	}
	return b.String()
}

// Messages returns the messages in channel, oldest first, as the channel
// shows them: not thread replies (see Replies) unless also sent to the
// channel, and not those deleted with DeleteMessage.
func (w *Workspace) Messages(channel string) []Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Message
	for _, m := range w.messages {
		if m.Channel == channel && m.inChannel() {
			out = append(out, m)
		}
	}
	return out
}

// WaitMessage waits for a message in channel that match accepts, and
// returns it. Like Messages, it looks at top-level messages only (WaitReply
// waits for a thread reply); unlike Messages, it also sees deleted ones.
func (w *Workspace) WaitMessage(channel string, match func(Message) bool, timeout time.Duration) Message {
	w.tb.Helper()
	var found Message
	w.waitFor(timeout, "a matching message in "+channel, func() bool {
		for _, m := range w.messages {
			if m.Channel == channel && (m.ThreadTS == "" || m.Broadcast) && match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// Ephemerals returns the private replies sent to user, oldest first.
func (w *Workspace) Ephemerals(user string) []Ephemeral {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Ephemeral
	for _, e := range w.ephemerals {
		if e.User == user {
			out = append(out, e)
		}
	}
	return out
}

// WaitEphemeral waits for a private reply to user whose text contains substr.
func (w *Workspace) WaitEphemeral(user, substr string, timeout time.Duration) Ephemeral {
	w.tb.Helper()
	var found Ephemeral
	w.waitFor(timeout, fmt.Sprintf("a private reply to %s containing %q", user, substr), func() bool {
		for _, e := range w.ephemerals {
			if e.User == user && strings.Contains(e.Text, substr) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// Calls returns the Web API calls of method made so far.
func (w *Workspace) Calls(method string) []Call {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Call
	for _, c := range w.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

func (w *Workspace) record(method string, params map[string]string) {
	delete(params, "token")
	w.calls = append(w.calls, Call{Method: method, Params: params, At: time.Now()})
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	json.NewEncoder(rw).Encode(v)
}

func slackError(rw http.ResponseWriter, code string) {
	writeJSON(rw, http.StatusOK, map[string]any{"ok": false, "error": code})
}

func (w *Workspace) serveAPI(rw http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	arrived := time.Now()
	w.mu.Lock()
	hold := w.holds[method]
	if hold != nil {
		w.held[method]++
		w.notifyLocked()
	}
	w.mu.Unlock()
	if hold != nil {
		// Read the request first, so that a client going away is noticed.
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		select {
		case <-hold:
		case <-r.Context().Done():
		}
		w.mu.Lock()
		w.held[method]--
		w.mu.Unlock()
		if r.Context().Err() != nil {
			return
		}
	}
	if method == "apps.connections.open" {
		w.serveConnectionsOpen(rw, r)
		return
	}
	params, code := requestParams(r)
	if code != "" {
		slackError(rw, code)
		return
	}
	token := params["token"]
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		token = strings.TrimPrefix(h, "Bearer ")
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.notifyLocked()
	if after := w.holdsAfter[method]; after != nil {
		// The call takes effect now; its answer waits for the release.
		defer func() {
			w.held[method]++
			w.notifyLocked()
			w.mu.Unlock()
			select {
			case <-after:
			case <-r.Context().Done():
			}
			w.mu.Lock()
			w.held[method]--
		}()
	}
	w.record(method, params)
	if token != w.botToken {
		slackError(rw, "invalid_auth")
		return
	}
	if f := w.failures[method]; len(f) > 0 {
		w.failures[method] = f[1:]
		switch {
		case f[0].RetryAfter > 0:
			rw.Header().Set("Retry-After", strconv.Itoa(f[0].RetryAfter))
			writeJSON(rw, http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited"})
		case f[0].Status != 0:
			rw.WriteHeader(f[0].Status)
		default:
			slackError(rw, f[0].Error)
		}
		return
	}

	switch method {
	case "auth.test":
		writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "url": "https://test.slack.invalid/", "team": "Test",
			"user": "revokebot", "team_id": DefaultTeamID, "user_id": BotUserID, "bot_id": "BREVOKEBOT"})
	case "chat.postMessage":
		if params["channel"] == "" {
			slackError(rw, "channel_not_found")
			return
		}
		channel := w.postChannelLocked(params["channel"])
		if w.overPostLimitLocked(channel) {
			w.rateLimited++
			rw.Header().Set("Retry-After", "1")
			writeJSON(rw, http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited"})
			return
		}
		m := Message{Channel: channel, TS: w.newTSLocked(), Text: params["text"], At: time.Now(), User: BotUserID}
		if ts := params["thread_ts"]; ts != "" {
			m.ThreadTS = w.threadRootLocked(channel, ts)
			m.Broadcast = params["reply_broadcast"] == "true" || params["reply_broadcast"] == "1"
		}
		if b := params["blocks"]; b != "" {
			m.Blocks = json.RawMessage(b)
		}
		if md := params["metadata"]; md != "" {
			m.Metadata = json.RawMessage(md)
		}
		w.messages = append(w.messages, m)
		writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
	case "conversations.history":
		w.serveConversationsHistory(rw, params)
	case "conversations.replies":
		w.serveConversationsReplies(rw, params)
	case "conversations.open":
		w.serveConversationsOpen(rw, params)
	case "users.info":
		w.serveUsersInfo(rw, params)
	case "views.open":
		w.serveViewsOpen(rw, params, arrived)
	case "chat.update":
		for i := range w.messages {
			m := &w.messages[i]
			if m.Channel == params["channel"] && m.TS == params["ts"] {
				m.Text = params["text"]
				if b := params["blocks"]; b != "" {
					m.Blocks = json.RawMessage(b)
				}
				if md := params["metadata"]; md != "" {
					m.Metadata = json.RawMessage(md)
				}
				m.Updates++
				writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS, "text": m.Text})
				return
			}
		}
		slackError(rw, "message_not_found")
	case "conversations.info":
		w.serveConversationsInfo(rw, params)
	case "chat.getPermalink":
		w.servePermalink(rw, params)
	case "usergroups.users.list":
		members, ok := w.groups[params["usergroup"]]
		if !ok {
			slackError(rw, "no_such_subteam")
			return
		}
		writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "users": members})
	default:
		slackError(rw, "unknown_method")
	}
}

// requestParams returns a Web API call's arguments: form-encoded (in the body
// or the query), or a JSON object (as slack-go sends views.*), whose
// non-string values (a view) are kept as JSON text, as a form would carry
// them. code is Slack's error for a body it cannot read.
func requestParams(r *http.Request) (params map[string]string, code string) {
	params = map[string]string{}
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		var body map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return nil, "invalid_json"
		}
		for k, v := range body {
			var s string
			if json.Unmarshal(v, &s) == nil {
				params[k] = s
			} else {
				params[k] = string(v)
			}
		}
		return params, ""
	}
	if err := r.ParseForm(); err != nil {
		return nil, "invalid_form_data"
	}
	// Form holds the query's arguments too (a GET carries nothing else).
	for k := range r.Form {
		params[k] = r.Form.Get(k)
	}
	return params, ""
}

func (w *Workspace) serveResponseURL(rw http.ResponseWriter, r *http.Request) {
	var body struct {
		Text         string `json:"text"`
		ResponseType string `json:"response_type"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(rw, "bad json", http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ephemerals = append(w.ephemerals, Ephemeral{User: r.PathValue("user"), Channel: r.PathValue("channel"),
		Text: body.Text, ResponseType: body.ResponseType})
	w.notifyLocked()
	rw.Write([]byte("ok"))
}

func (w *Workspace) responseURL(user, channel string) string {
	return w.srv.URL + "/respond/" + user + "/" + channel
}

// Buttons lists the buttons in a message's blocks.
func (m Message) Buttons() []Button {
	var blocks []struct {
		Type     string   `json:"type"`
		Elements []Button `json:"elements"`
	}
	json.Unmarshal(m.Blocks, &blocks)
	var out []Button
	for _, b := range blocks {
		if b.Type == "actions" {
			out = append(out, b.Elements...)
		}
	}
	return out
}

// BlockText returns every text in the message's blocks, one per line, decoded
// from JSON (so Slack escapes such as &lt; are as the bot sent them).
func (m Message) BlockText() string {
	var v any
	json.Unmarshal(m.Blocks, &v)
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if t, ok := v["text"].(string); ok {
				b.WriteString(t)
				b.WriteByte('\n')
			}
			for k, x := range v {
				if k != "text" {
					walk(x)
				} else if _, ok := x.(string); !ok {
					walk(x)
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return b.String()
}

// Button is a Block Kit button as the bot rendered it.
type Button struct {
	Type     string          `json:"type"`
	ActionID string          `json:"action_id"`
	Value    string          `json:"value"`
	Style    string          `json:"style"`
	Confirm  json.RawMessage `json:"confirm"`
	Text     struct {
		Text string `json:"text"`
	} `json:"text"`
}

// HasButton reports whether the message has a button with that action ID.
func (m Message) HasButton(actionID string) bool {
	return slices.ContainsFunc(m.Buttons(), func(b Button) bool { return b.ActionID == actionID })
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
