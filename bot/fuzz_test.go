package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// The fuzz workspace's people and channels.
const (
	fuzzRequester = "UREQ"      // may request
	fuzzApprover  = "UAPPROVER" // may request and approve
	fuzzGroup     = "S0APPROVERS"
	fuzzGroupie   = "UGROUPIE" // approves through fuzzGroup
	fuzzChannel   = "CSECURITY"
	fuzzAudit     = "CAUDIT"
	// fuzzPerson is a person a /revoke may name by mention; fuzzGuest and
	// fuzzBotUser are ones it may not.
	fuzzPerson  = "UMENTIONED"
	fuzzGuest   = "UGUEST"
	fuzzBotUser = "USOMEBOT"
)

// Placeholders a seed may carry, replaced before each run: the fake's
// response_url base (append /<user>/<channel>), a pending request's ID
// (kept pending: a new one replaces it once decided), a denied one's, and
// the fake's host:port.
const (
	placeholderRespond = "{{respond}}"
	placeholderPending = "{{pending}}"
	placeholderDecided = "{{decided}}"
	placeholderHost    = "{{fakehost}}" // the fake's host:port
	// placeholderPendingTS is the ts of the pending request's message.
	placeholderPendingTS = "{{pending_ts}}"
)

// fuzzRevoker answers like Cloudflare would, with hostile text in its
// answers to check that outcomes are escaped: it fails for targets whose
// address starts with "fail".
type fuzzRevoker struct{}

func (fuzzRevoker) Revoke(_ context.Context, r approvals.Revocation) (string, error) {
	if strings.HasPrefix(r.Email, "fail") {
		return "", errors.New("cloudflare: 403: [10000] <!channel> & <@U999|boss> said no to " + r.Email)
	}
	return "revoked <!here> & <https://evil.example|more> for " + r.Email, nil
}

// guardTransport lets private replies reach only the fake workspace and
// records any attempt to go elsewhere.
type guardTransport struct {
	allowed string // host:port of the fake
	mu      sync.Mutex
	strays  []string
	sent    int
}

func (g *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	if req.URL.Host != g.allowed {
		g.strays = append(g.strays, req.URL.Scheme+"://"+req.URL.Host)
		g.mu.Unlock()
		return nil, errors.New("guardTransport: not the fake workspace")
	}
	g.sent++
	g.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// take returns and forgets the stray hosts and the count of sent requests.
func (g *guardTransport) take() (strays []string, sent int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	strays, sent = g.strays, g.sent
	g.strays, g.sent = nil, 0
	return strays, sent
}

// fuzzBot is one Bot, made once per fuzz target (per fuzzing process), on a
// fake Slack workspace and a real approvals.Service on SQLite.
type fuzzBot struct {
	b       *Bot
	ws      *bottest.Workspace
	db      *sqlite.DB
	svc     *approvals.Service
	courier *Courier
	guard   *guardTransport
	respond string // the fake's response_url base

	envelopes, submitted atomic.Int64
	// pending and decided are the IDs of the standing requests.
	pending, decided string
}

func newFuzzBot(f *testing.F) *fuzzBot {
	f.Helper()
	ctx := context.Background()
	ws := bottest.New(f)
	ws.SetGroup(fuzzGroup, fuzzGroupie)
	for _, u := range []string{fuzzRequester, fuzzApprover, fuzzGroupie} {
		ws.SetUser(u, bottest.User{Name: strings.ToLower(u), Email: strings.ToLower(u) + "@example.com"})
	}
	ws.SetUser(fuzzPerson, bottest.User{Name: "mentioned", Email: "mentioned&co@example.com"})
	ws.SetUser(fuzzGuest, bottest.User{Name: "guest", Email: "guest@example.com", IsRestricted: true})
	ws.SetUser(fuzzBotUser, bottest.User{Name: "somebot", IsBot: true})
	db, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	quiet := slog.New(slog.DiscardHandler)
	api := slack.New(bottest.DefaultBotToken, slack.OptionAPIURL(ws.APIURL()))
	directory := NewGroupCache(api, time.Hour)
	directory.TeamID = bottest.DefaultTeamID
	svc := &approvals.Service{
		Store:     db,
		Revoker:   fuzzRevoker{},
		Directory: directory,
		Policy: approvals.Policy{
			Requesters: approvals.Audience{Users: []string{fuzzRequester, fuzzApprover}},
			Approvers:  approvals.Audience{Users: []string{fuzzApprover}, Groups: []string{fuzzGroup}},
		},
		Logger: quiet,
	}
	apiURL, err := url.Parse(ws.APIURL())
	if err != nil {
		f.Fatal(err)
	}
	fb := &fuzzBot{
		ws: ws, db: db, svc: svc,
		courier: NewCourier(api, db, fuzzAudit, Unpaced, quiet),
		guard:   &guardTransport{allowed: apiURL.Host},
		respond: strings.TrimSuffix(ws.ResponseURL("x", "y"), "/x/y"),
	}
	fb.courier.RefusalWindow = 0
	fb.b = New(api, svc, Config{TeamID: bottest.DefaultTeamID, ResponseURLHosts: []string{apiURL.Host},
		WorkTimeout: 30 * time.Second, MessageWait: time.Millisecond, Logger: quiet, People: directory})
	fb.b.webhooks.Transport = fb.guard
	// Slack's hello tells the bot its app ID.
	fb.b.dispatch(ctx, socketmode.Event{Type: socketmode.EventTypeHello,
		Request: &socketmode.Request{Type: "hello", ConnectionInfo: socketmode.ConnectionInfo{AppID: bottest.DefaultAppID}}},
		func(*socketmode.Request, any) { f.Fatal("hello acked") })
	if fb.b.app() != bottest.DefaultAppID {
		f.Fatalf("app ID after hello: %q", fb.b.app())
	}
	if err := fb.standingRequests(ctx); err != nil {
		f.Fatal(err)
	}
	if err := fb.deliver(ctx); err != nil {
		f.Fatal(err)
	}
	fb.ws.Reset()
	fb.guard.take()
	return fb
}

// submit makes a pending request of fuzzRequester with its approval message.
func (fb *fuzzBot) submit(ctx context.Context) (approvals.Request, error) {
	// Every other one fails at the (fake) Cloudflare, once approved.
	target := "mallory&co@example.com"
	if fb.submitted.Add(1)%2 == 0 {
		target = "fail&co@example.com"
	}
	r, err := fb.svc.Submit(ctx, approvals.SubmitInput{Requester: fuzzRequester,
		Targets: []approvals.TargetInput{{Email: target}},
		Options: approvals.Options{Devices: true},
		Reason:  "<!channel> & <@U1|boss>, see <https://evil.example|INC-1>",
		Channel: fuzzChannel})
	if err != nil {
		return r, err
	}
	// The courier posts the approval message.
	if err := fb.deliver(ctx); err != nil {
		return r, err
	}
	return fb.db.Get(ctx, r.ID)
}

// standingRequests (re)creates the pending and the denied request.
func (fb *fuzzBot) standingRequests(ctx context.Context) error {
	if fb.decided == "" {
		r, err := fb.submit(ctx)
		if err != nil {
			return err
		}
		if _, err := fb.svc.Decide(ctx, r.ID, fuzzApprover, approvals.Deny); err != nil {
			return err
		}
		fb.decided = r.ID
	}
	if fb.pending != "" {
		r, err := fb.db.Get(ctx, fb.pending)
		if err != nil {
			return err
		}
		if r.State() == approvals.StatePending {
			return nil
		}
	}
	r, err := fb.submit(ctx)
	fb.pending = r.ID
	return err
}

// pendingTS returns the ts of the pending request's approval message.
func (fb *fuzzBot) pendingTS(t *testing.T) string {
	r, err := fb.db.Get(context.Background(), fb.pending)
	if err != nil {
		t.Fatal(err)
	}
	return r.MessageTS
}

// deliver delivers the outbox to the fake workspace, as the Courier's Run
// would.
func (fb *fuzzBot) deliver(ctx context.Context) error {
	for _, l := range lanes {
		for {
			more, err := fb.courier.deliverLane(ctx, l)
			if err != nil {
				return fmt.Errorf("deliver %s: %w", l, err)
			}
			if !more {
				break
			}
		}
	}
	return nil
}

// ackRecord is one ack the bot sent.
type ackRecord struct {
	envelope string
	payload  any
}

// outcome is what one envelope caused.
type outcome struct {
	acks       []ackRecord
	calls      []bottest.Call
	ephemerals []bottest.Ephemeral
	strays     []string
	replies    int // HTTP requests to the fake's response_url (redirects count)
	events     int // events recorded (before cancelOthers)
}

// run sends the envelope typ with payload through dispatch, decoded as
// slack-go's socketmode client decodes it off the websocket (a payload it
// cannot decode becomes an error_bad_message event, with no envelope to
// ack), waits for the work it started, delivers the events it recorded, and
// checks and returns what happened.
func (fb *fuzzBot) run(t *testing.T, typ string, payload []byte) (out outcome) {
	t.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("env-fuzz-%d", fb.envelopes.Add(1))
	defer func() {
		// Nothing changes without an event: only then can the standing
		// requests need renewing.
		if out.events > 0 {
			if err := fb.standingRequests(ctx); err != nil {
				t.Fatalf("recreate the standing requests: %v", err)
			}
			if err := fb.deliver(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// Keep a long run from growing: forget the envelope and the records.
		fb.b.envelopes.forget(id)
		fb.ws.Reset()
		fb.guard.take()
	}()

	// As socketmode's parseEvent: the envelope, then its payload.
	raw, err := json.Marshal(map[string]any{"envelope_id": id, "type": typ, "payload": json.RawMessage(payload),
		"accepts_response_payload": typ == socketmode.RequestTypeSlashCommands})
	if err != nil {
		t.Fatalf("encode envelope: %v", err)
	}
	req := &socketmode.Request{}
	if err := json.Unmarshal(raw, req); err != nil {
		t.Fatalf("decode envelope: %v", err)
	}
	var evt socketmode.Event
	switch typ {
	case socketmode.RequestTypeInteractive:
		var cb slack.InteractionCallback
		if err := json.Unmarshal(req.Payload, &cb); err != nil {
			evt = socketmode.Event{Type: socketmode.EventTypeErrorBadMessage,
				Data: &socketmode.ErrorBadMessage{Cause: err, Message: raw}}
		} else {
			evt = socketmode.Event{Type: socketmode.EventTypeInteractive, Data: cb, Request: req}
		}
	case socketmode.RequestTypeSlashCommands:
		var cmd slack.SlashCommand
		if err := json.Unmarshal(req.Payload, &cmd); err != nil {
			t.Fatalf("decode slash command: %v", err)
		}
		evt = socketmode.Event{Type: socketmode.EventTypeSlashCommand, Data: cmd, Request: req}
	}

	var mu sync.Mutex
	fb.b.dispatch(ctx, evt, func(req *socketmode.Request, payload any) {
		mu.Lock()
		defer mu.Unlock()
		out.acks = append(out.acks, ackRecord{req.EnvelopeID, payload})
	})
	fb.b.inflight.Wait()
	if out.events, err = fb.db.Backlog(ctx); err != nil {
		t.Fatal(err)
	}
	if out.events > 0 {
		fb.cancelOthers(t)
		if err := fb.deliver(ctx); err != nil {
			t.Fatal(err)
		}
	}
	out.calls, out.ephemerals = fb.ws.AllCalls(), fb.ws.AllEphemerals()
	out.strays, out.replies = fb.guard.take()
	t.Logf("%s: %d acks, %d Slack calls, %d private replies (%d sent), %d events", evt.Type, len(out.acks), len(out.calls), len(out.ephemerals), out.replies, out.events)
	for _, e := range out.ephemerals {
		t.Logf("reply: %s", e.Text)
	}

	if evt.Type == socketmode.EventTypeErrorBadMessage {
		if len(out.acks) != 0 {
			t.Errorf("a message slack-go cannot decode was acked: %+v", out.acks)
		}
	} else if len(out.acks) != 1 || out.acks[0].envelope != id {
		t.Errorf("acks of envelope %s: %+v, want exactly one", id, out.acks)
	}
	if len(out.strays) > 0 {
		t.Errorf("private replies went beyond the fake workspace, to %v", out.strays)
	}
	for _, c := range out.calls {
		if c.Method != "chat.postMessage" && c.Method != "chat.update" {
			continue
		}
		if err := checkMessage(c.Params["text"], c.Params["blocks"]); err != nil {
			t.Errorf("%s to %s: %v\ntext: %s\nblocks: %s", c.Method, c.Params["channel"], err, c.Params["text"], c.Params["blocks"])
		}
	}
	for _, e := range out.ephemerals {
		if err := checkSafeMrkdwn(e.Text); err != nil {
			t.Errorf("private reply: %v\ntext: %s", err, e.Text)
		}
		if e.ResponseType != "ephemeral" {
			t.Errorf("reply through the response_url is %q, not ephemeral: %s", e.ResponseType, e.Text)
		}
		if !hasAnyPrefix(e.Text, ":no_entry: ", ":hourglass: ", ":x: ", ":warning: ") && !isStatusOrPending(e.Text) {
			t.Errorf("private reply in an unexpected form: %s", e.Text)
		}
	}
	return out
}

// checkMessage checks a posted or updated message's text and blocks for
// unescaped user text and Slack's size limits.
func checkMessage(text, blocks string) error {
	if err := checkSafeMrkdwn(text); err != nil {
		return fmt.Errorf("text: %w", err)
	}
	if n := utf8.RuneCountInString(text); n > 40000 {
		return fmt.Errorf("text of %d characters", n)
	}
	if blocks == "" {
		return nil
	}
	var decoded []any
	if err := json.Unmarshal([]byte(blocks), &decoded); err != nil {
		return fmt.Errorf("blocks: %w", err)
	}
	if len(decoded) > 50 {
		return fmt.Errorf("%d blocks", len(decoded))
	}
	for _, s := range collectTexts(decoded) {
		if err := checkSafeMrkdwn(s); err != nil {
			return fmt.Errorf("blocks: %w", err)
		}
		if n := utf8.RuneCountInString(s); n > maxSectionText {
			return fmt.Errorf("block text of %d characters", n)
		}
	}
	return nil
}

// isStatusOrPending reports whether a private reply is an answer to
// /revoke status (statusText) or /revoke pending (pendingText).
func isStatusOrPending(s string) bool {
	return strings.HasPrefix(s, "*Request* `") || strings.HasPrefix(s, ":white_check_mark: No request is waiting") ||
		regexp.MustCompile(`^\*[0-9]+ open request\(s\)\*, oldest first:`).MatchString(s)
}

// isNotice reports whether a chat.postMessage call is a notice (a DM to a
// requester, or a thread reply): not a message in a channel.
func isNotice(c bottest.Call) bool {
	return strings.Contains(c.Params["metadata"], `"`+MetadataNotice+`"`)
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(s, p) })
}

// FuzzInteraction sends block_actions payloads (and anything else) through
// the bot as Slack's "interactive" envelopes. Whatever the payload: no panic,
// exactly one ack, no unescaped user text in any message or private reply,
// private replies only through the fake's response_url, and a payload of
// another team or app changes nothing and calls nobody. The seeds in
// testdata/fuzz/FuzzInteraction may use the placeholders above.
func FuzzInteraction(f *testing.F) {
	fb := newFuzzBot(f)
	// Deny modals submitted: by an approver with a reason, without one, with
	// one too long; and with private_metadata that is not revokebot's.
	views := 0
	submission := func(user, metadata, reason string) []byte {
		views++
		raw, err := json.Marshal(map[string]any{
			"type": "view_submission", "team": map[string]any{"id": bottest.DefaultTeamID}, "api_app_id": bottest.DefaultAppID,
			"user": map[string]any{"id": user}, "trigger_id": "trigger",
			"view": map[string]any{"id": fmt.Sprintf("VFUZZ%d", views), "type": "modal", "callback_id": CallbackDenyReason, "private_metadata": metadata,
				"state": map[string]any{"values": map[string]any{denyReasonBlock: map[string]any{denyReasonAction: map[string]any{
					"type": "plain_text_input", "value": reason}}}}},
		})
		if err != nil {
			f.Fatal(err)
		}
		return raw
	}
	meta := `{"request_id":"` + placeholderPending + `","channel":"` + fuzzChannel + `","ts":"` + placeholderPendingTS + `","response_url":"` +
		placeholderRespond + `/UAPPROVER/` + fuzzChannel + `"}`
	f.Add(submission(fuzzApprover, meta, "not without a ticket <!channel> & <@U1|boss>"))
	f.Add(submission(fuzzApprover, meta, "   "))
	f.Add(submission(fuzzApprover, meta, strings.Repeat("ü", approvals.MaxDenyReason+1)))
	f.Add(submission(fuzzApprover, meta, "see \u202e the ticket"))
	f.Add(submission(fuzzRequester, meta, "my own"))
	f.Add(submission("USTRANGER", meta, "not mine to deny"))
	f.Add(submission(fuzzApprover, `{"request_id":"`+placeholderDecided+`","response_url":"https://evil.example/x"}`, "too late"))
	f.Add(submission(fuzzApprover, "not json", "whatever"))
	// A submission without state (found by fuzzing: it crashed the bot).
	f.Add([]byte(`{"api_app_id":"A0TEST","team":{"id":"T0TEST"},"type":"view_submission","view":{"callback_id":"revoke_deny_reason","private_metadata":"{\"request_id\":\"0\"}"}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		if !json.Valid(payload) {
			return // not a payload Slack could send: the envelope would not decode
		}
		payload = bytes.ReplaceAll(payload, []byte(placeholderRespond), []byte(fb.respond))
		payload = bytes.ReplaceAll(payload, []byte(placeholderPending), []byte(fb.pending))
		payload = bytes.ReplaceAll(payload, []byte(placeholderDecided), []byte(fb.decided))
		payload = bytes.ReplaceAll(payload, []byte(placeholderHost), []byte(fb.guard.allowed))
		payload = bytes.ReplaceAll(payload, []byte(placeholderPendingTS), []byte(fb.pendingTS(t)))
		out := fb.run(t, socketmode.RequestTypeInteractive, payload)

		var cb slack.InteractionCallback
		if json.Unmarshal(payload, &cb) != nil {
			return
		}
		for _, a := range out.acks {
			if a.payload == nil {
				continue
			}
			// Only a deny modal's submission is answered, with the
			// errors to show in the modal's reason input.
			resp, ok := a.payload.(*slack.ViewSubmissionResponse)
			if !ok || cb.Type != slack.InteractionTypeViewSubmission || cb.View.CallbackID != CallbackDenyReason ||
				resp.ResponseAction != slack.RAErrors || len(resp.Errors) != 1 || resp.Errors[denyReasonBlock] == "" {
				t.Errorf("an interaction's ack carries a payload: %#v", a.payload)
			}
		}
		for _, c := range out.calls {
			// A click may end a request: its requester is told directly.
			if c.Method == "chat.postMessage" && c.Params["channel"] != fuzzAudit &&
				!(isNotice(c) && strings.HasPrefix(c.Params["channel"], "D")) {
				t.Errorf("a click made the bot post in %s: %s", c.Params["channel"], c.Params["text"])
			}
		}
		if cb.Team.ID != bottest.DefaultTeamID || cb.APIAppID != bottest.DefaultAppID {
			if len(out.calls) > 0 || out.replies > 0 || len(out.strays) > 0 || out.events > 0 {
				t.Errorf("payload of team %q app %q: %d Slack calls, %d private replies, %d events; want none",
					cb.Team.ID, cb.APIAppID, len(out.calls), out.replies+len(out.strays), out.events)
			}
		}
	})
}

// FuzzSlashCommand sends /revoke with any text, typed by any user, through
// the bot as Slack's "slash_commands" envelopes. Besides FuzzInteraction's
// checks: an error goes back privately (in the ack, as an ephemeral
// response, or through the response_url), never as a channel message, and
// every ack fits in what slack-go will send.
func FuzzSlashCommand(f *testing.F) {
	fb := newFuzzBot(f)
	// /revoke status and pending, and targets named by mention. The
	// text may carry placeholderPending, replaced by the standing pending
	// request's ID.
	f.Add("status "+placeholderPending, fuzzApprover)
	f.Add("status 0000", fuzzRequester)
	f.Add("status "+placeholderPending, "USTRANGER")
	f.Add("pending", fuzzRequester)
	f.Add("pending", fuzzGuest)
	f.Add("<@"+fuzzPerson+"> bob@example.com --reason <!here>", fuzzRequester)
	f.Add("<@"+fuzzPerson+"|mentioned> <@"+fuzzGuest+"> <@"+fuzzBotUser+"> <@UNOBODY>", fuzzRequester)
	f.Fuzz(func(t *testing.T, text, user string) {
		text = strings.ReplaceAll(text, placeholderPending, fb.pending)
		parsed, parseErr := ParseCommand(text)
		payload, err := json.Marshal(map[string]any{
			"token": "deprecated", "team_id": bottest.DefaultTeamID, "team_domain": "test",
			"channel_id": fuzzChannel, "channel_name": "security", "user_id": user, "user_name": "someone",
			"command": "/revoke", "text": text, "api_app_id": bottest.DefaultAppID,
			"response_url": fb.respond + "/requester/" + fuzzChannel, "trigger_id": "trigger",
		})
		if err != nil {
			t.Fatal(err)
		}
		out := fb.run(t, socketmode.RequestTypeSlashCommands, payload)

		var acked string
		for _, a := range out.acks {
			if a.payload == nil {
				continue
			}
			raw, err := json.Marshal(a.payload)
			if err != nil {
				t.Fatalf("ack payload: %v", err)
			}
			if len(raw) >= 20480 {
				t.Errorf("ack payload of %d bytes: slack-go refuses it", len(raw))
			}
			var reply struct {
				ResponseType string `json:"response_type"`
				Text         string `json:"text"`
			}
			json.Unmarshal(raw, &reply)
			if reply.ResponseType != "ephemeral" {
				t.Errorf("ack reply is %q, not ephemeral: %s", reply.ResponseType, raw)
			}
			if err := checkSafeMrkdwn(reply.Text); err != nil {
				t.Errorf("ack reply: %v\ntext: %s", err, reply.Text)
			}
			if reply.Text != Help && !(strings.HasPrefix(reply.Text, ":warning: ") && strings.HasSuffix(reply.Text, "\n"+Usage)) {
				t.Errorf("ack reply in an unexpected form: %s", reply.Text)
			}
			acked = reply.Text
		}
		var posted []bottest.Call
		for _, c := range out.calls {
			// cancelOthers cancels requests: their requesters are told
			// directly.
			if c.Method == "chat.postMessage" && c.Params["channel"] != fuzzAudit && !isNotice(c) {
				posted = append(posted, c)
			}
		}
		switch {
		case len(posted) > 1:
			t.Errorf("one command posted %d messages", len(posted))
		case len(posted) == 1:
			// The request's own message: it may already show the request
			// cancelled (cancelOthers runs before the courier).
			if acked != "" || posted[0].Params["channel"] != fuzzChannel || !strings.Contains(posted[0].Params["metadata"], `"`+MetadataRequest+`"`) {
				t.Errorf("a message other than an approval request went to %s: %s", posted[0].Params["channel"], posted[0].Params["text"])
			}
		}
		if acked != "" && (len(out.ephemerals) > 0 || out.events > 0) {
			t.Errorf("a command refused at parsing went on: %d replies, %d events", len(out.ephemerals), out.events)
		}
		// status and pending only read: they reply privately, with the
		// request or the list, or why not; they change and post nothing.
		if parseErr == nil && (parsed.Status != "" || parsed.Pending) {
			if out.events > 0 || len(posted) > 0 {
				t.Errorf("/revoke %s: %d events, %d posts", text, out.events, len(posted))
			}
			if len(out.ephemerals) != 1 {
				t.Errorf("/revoke %s: %d private replies, want 1", text, len(out.ephemerals))
			}
			for _, e := range out.ephemerals {
				if !isStatusOrPending(e.Text) && !strings.HasPrefix(e.Text, ":no_entry: ") {
					t.Errorf("/revoke %s: reply %s", text, e.Text)
				}
				if parsed.Status != "" && strings.HasPrefix(e.Text, "*Request* ") && !strings.Contains(e.Text, parsed.Status) {
					t.Errorf("/revoke %s: the status of another request: %s", text, e.Text)
				}
			}
		}
	})
}

// cancelOthers cancels every pending request but the standing one, as its
// requester would, so that no requester runs into the limit of pending
// requests.
func (fb *fuzzBot) cancelOthers(t *testing.T) {
	ctx := context.Background()
	pending, err := fb.db.ListByState(ctx, approvals.StatePending)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pending {
		if r.ID == fb.pending {
			continue
		}
		if _, err := fb.svc.Decide(ctx, r.ID, r.Requester, approvals.Deny); err != nil {
			t.Fatalf("cancel request %s: %v", r.ID, err)
		}
	}
}
