package bottest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack/socketmode"
)

// received is an envelope as a replica received it.
type received struct {
	EnvelopeID   string          `json:"envelope_id"`
	Type         string          `json:"type"`
	RetryAttempt int             `json:"retry_attempt"`
	RetryReason  string          `json:"retry_reason"`
	Payload      json.RawMessage `json:"payload"`
}

// replica is a plain Socket Mode client, as one process of the bot holds.
type replica struct {
	conn  *websocket.Conn
	hello int           // num_connections in its hello
	gone  chan struct{} // closed when the connection is
	ack   atomic.Bool   // acknowledge every envelope on arrival

	mu  sync.Mutex // serializes writes, guards got
	got []received
}

// dial opens a Socket Mode connection to ws the way a bot does
// (apps.connections.open, then the websocket) and reads its hello.
func dial(t *testing.T, ws *bottest.Workspace, ack bool) *replica {
	t.Helper()
	_, url, err := client(ws).StartSocketModeContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var hello struct {
		Type           string `json:"type"`
		NumConnections int    `json:"num_connections"`
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	if err := conn.ReadJSON(&hello); err != nil || hello.Type != "hello" {
		t.Fatalf("hello = %+v, %v", hello, err)
	}
	conn.SetReadDeadline(time.Time{})
	r := &replica{conn: conn, hello: hello.NumConnections, gone: make(chan struct{})}
	r.ack.Store(ack)
	go r.read()
	return r
}

func (r *replica) read() {
	defer close(r.gone)
	for {
		var e received
		if err := r.conn.ReadJSON(&e); err != nil {
			return
		}
		if e.EnvelopeID == "" {
			continue
		}
		r.mu.Lock()
		r.got = append(r.got, e)
		r.mu.Unlock()
		if r.ack.Load() {
			r.acknowledge(e.EnvelopeID)
		}
	}
}

func (r *replica) acknowledge(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conn.WriteJSON(map[string]string{"envelope_id": id})
}

// received returns the envelopes the replica received, oldest first.
func (r *replica) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// find returns the envelope id if the replica received it.
func (r *replica) find(id string) (received, bool) {
	for _, e := range r.received() {
		if e.EnvelopeID == id {
			return e, true
		}
	}
	return received{}, false
}

// replicas dials n replicas one after the other, so that replica i is
// connection i.
func replicas(t *testing.T, ws *bottest.Workspace, n int, ack bool) []*replica {
	t.Helper()
	var rs []*replica
	for i := range n {
		r := dial(t, ws, ack)
		ws.WaitLive(i+1, wait)
		if r.hello != i+1 {
			t.Errorf("replica %d's hello says %d connections", i, r.hello)
		}
		rs = append(rs, r)
	}
	return rs
}

func sum(s []int) int {
	n := 0
	for _, x := range s {
		n += x
	}
	return n
}

func TestMultiConnectionSpreadsEnvelopes(t *testing.T) {
	ws := bottest.New(t, bottest.WithMultiConnection(2*time.Second))
	rs := replicas(t, ws, 3, true)
	for i := range 60 {
		ws.WaitAck(ws.SlashCommand("UREQ", "CSECURITY", fmt.Sprint("command ", i)), wait)
	}
	counts := ws.EnvelopesPerConnection()
	if len(counts) != 3 || sum(counts) != 60 {
		t.Fatalf("EnvelopesPerConnection = %v, want 3 connections and 60 envelopes", counts)
	}
	for i, r := range rs {
		if counts[i] == 0 || len(r.received()) != counts[i] {
			t.Errorf("connection %d: %d envelopes counted, %d received", i, counts[i], len(r.received()))
		}
	}
	if n := ws.Redelivered(); n != 0 {
		t.Errorf("%d redeliveries of envelopes acked at once", n)
	}
	if n := ws.LiveConnections(); n != 3 {
		t.Errorf("LiveConnections = %d", n)
	}
}

// mutedEnvelope sends slash commands until one lands on connection mute
// (which never acks), and returns its ID; the others are acked by the other
// connections.
func mutedEnvelope(t *testing.T, ws *bottest.Workspace, mute *replica) string {
	t.Helper()
	for i := range 100 {
		id := ws.SlashCommand("UREQ", "CSECURITY", fmt.Sprint("command ", i))
		ws.WaitAck(id, wait)
		if _, ok := mute.find(id); ok {
			return id
		}
	}
	t.Fatal("100 envelopes, none sent to the muted connection")
	return ""
}

func TestMultiConnectionRedeliversToAnother(t *testing.T) {
	const after = 200 * time.Millisecond
	ws := bottest.New(t, bottest.WithMultiConnection(after))
	rs := replicas(t, ws, 3, true)
	mute := rs[0]
	mute.ack.Store(false)

	id := mutedEnvelope(t, ws, mute)
	ack := ws.WaitAck(id, wait)
	if ack.EnvelopeID == id || ack.Connection == 0 {
		t.Fatalf("WaitAck(%s) = %+v, want the ack of a redelivery on another connection", id, ack)
	}
	if got := ws.Redeliveries(id); len(got) != 1 || got[0] != ack.EnvelopeID {
		t.Errorf("Redeliveries(%s) = %v, want [%s]", id, got, ack.EnvelopeID)
	}
	orig, _ := mute.find(id)
	retry, ok := rs[ack.Connection].find(ack.EnvelopeID)
	if !ok {
		t.Fatalf("connection %d acked %s but did not receive it", ack.Connection, ack.EnvelopeID)
	}
	if orig.RetryAttempt != 0 || orig.RetryReason != "" || retry.RetryAttempt != 1 || retry.RetryReason != "timeout" ||
		retry.Type != "slash_commands" || !bytes.Equal(retry.Payload, orig.Payload) {
		t.Errorf("original %+v, redelivery %+v", orig, retry)
	}
	if _, ok := mute.find(ack.EnvelopeID); ok {
		t.Error("the redelivery went to the connection that did not ack")
	}

	// No more redeliveries once acked; the original's late ack is recorded.
	time.Sleep(3 * after)
	if n := ws.Redelivered(); n != 1 {
		t.Errorf("Redelivered = %d, want 1", n)
	}
	mute.acknowledge(id)
	ws.Eventually("the late ack", wait, func() bool { return ws.WaitAck(id, wait).EnvelopeID == id })
	if ack := ws.WaitAck(id, wait); ack.Connection != 0 {
		t.Errorf("late ack = %+v, want it from connection 0", ack)
	}
	if got := ws.Redeliveries(ack.EnvelopeID); len(got) != 0 {
		t.Errorf("Redeliveries of the redelivery = %v", got)
	}
}

func TestMultiConnectionRetriesAtMostThreeTimes(t *testing.T) {
	const after = 50 * time.Millisecond
	ws := bottest.New(t, bottest.WithMultiConnection(after))
	mute := replicas(t, ws, 1, false)[0]
	id := ws.SlashCommand("UREQ", "CSECURITY", "alice@example.com")
	ws.Eventually("three redeliveries", wait, func() bool { return len(mute.received()) == 4 })
	time.Sleep(4 * after)
	got := mute.received()
	if len(got) != 4 || ws.Redelivered() != 3 {
		t.Fatalf("received %d envelopes, Redelivered %d; want 4 and 3", len(got), ws.Redelivered())
	}
	var ids []string
	for i, e := range got {
		ids = append(ids, e.EnvelopeID)
		if e.RetryAttempt != i || (i > 0) != (e.RetryReason == "timeout") || !bytes.Equal(e.Payload, got[0].Payload) {
			t.Errorf("envelope %d = %+v", i, e)
		}
	}
	if ids[0] != id || len(slices.Compact(slices.Clone(ids))) != 4 {
		t.Errorf("envelope IDs %v", ids)
	}
	if r := ws.Redeliveries(id); !slices.Equal(r, ids[1:]) {
		t.Errorf("Redeliveries = %v, want %v", r, ids[1:])
	}
	if r := ws.Redeliveries(ids[1]); !slices.Equal(r, ids[2:]) {
		t.Errorf("Redeliveries of the first redelivery = %v, want %v", r, ids[2:])
	}
	// The last attempt's ack answers WaitAck of the first.
	mute.acknowledge(ids[3])
	if ack := ws.WaitAck(id, wait); ack.EnvelopeID != ids[3] {
		t.Errorf("WaitAck = %+v", ack)
	}
}

func TestMultiConnectionRedeliversWhatALostConnectionHad(t *testing.T) {
	const after = 200 * time.Millisecond
	ws := bottest.New(t, bottest.WithMultiConnection(after))
	rs := replicas(t, ws, 2, true)
	rs[0].ack.Store(false)
	id := mutedEnvelope(t, ws, rs[0])
	rs[0].conn.Close() // the replica dies before acking
	ws.WaitLive(1, wait)
	if ack := ws.WaitAck(id, wait); ack.Connection != 1 {
		t.Errorf("ack = %+v, want connection 1's", ack)
	}
}

func TestMultiConnectionDrop(t *testing.T) {
	ws := bottest.New(t, bottest.WithMultiConnection(time.Second))
	rs := replicas(t, ws, 3, true)
	dropped := ws.DropConnection()
	if dropped < 0 || dropped > 2 || ws.LiveConnections() != 2 {
		t.Fatalf("DropConnection = %d, %d live", dropped, ws.LiveConnections())
	}
	select {
	case <-rs[dropped].gone:
	case <-time.After(wait):
		t.Fatal("the dropped connection is still open")
	}
	before := ws.EnvelopesPerConnection()
	for i := range 30 {
		ws.WaitAck(ws.SlashCommand("UREQ", "CSECURITY", fmt.Sprint("command ", i)), wait)
	}
	after := ws.EnvelopesPerConnection()
	if after[dropped] != before[dropped] || sum(after) != sum(before)+30 {
		t.Errorf("envelopes per connection %v, then %v after dropping %d", before, after, dropped)
	}

	// A new connection takes the next index and its share.
	r := dial(t, ws, true)
	ws.WaitLive(3, wait)
	if r.hello != 3 || ws.Connections() != 4 {
		t.Errorf("hello says %d connections; %d opened", r.hello, ws.Connections())
	}
	for i := range 60 {
		ws.WaitAck(ws.SlashCommand("UREQ", "CSECURITY", fmt.Sprint("more ", i)), wait)
	}
	if counts := ws.EnvelopesPerConnection(); len(counts) != 4 || counts[3] == 0 || counts[3] != len(r.received()) || counts[dropped] != before[dropped] {
		t.Errorf("EnvelopesPerConnection = %v", counts)
	}
}

func TestMultiConnectionLimit(t *testing.T) {
	ws := bottest.New(t, bottest.WithMultiConnection(time.Second))
	rs := replicas(t, ws, bottest.MaxConnections, true)
	_, url, err := client(ws).StartSocketModeContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(wait))
	if _, msg, err := conn.ReadMessage(); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Errorf("11th connection: read %q, %v; want it closed", msg, err)
	}
	if ws.LiveConnections() != bottest.MaxConnections || ws.Connections() != bottest.MaxConnections {
		t.Errorf("%d live, %d opened", ws.LiveConnections(), ws.Connections())
	}
	rs[4].conn.Close()
	ws.WaitLive(bottest.MaxConnections-1, wait)
	if r := dial(t, ws, true); r.hello != bottest.MaxConnections {
		t.Errorf("a connection in the freed place: hello says %d", r.hello)
	}
}

func TestSingleConnectionReplacesTheLast(t *testing.T) {
	ws := bottest.New(t)
	first := dial(t, ws, true)
	second := dial(t, ws, true)
	select {
	case <-first.gone:
	case <-time.After(wait):
		t.Fatal("the first connection is still open")
	}
	if second.hello != 1 || ws.LiveConnections() != 1 || ws.Connections() != 2 {
		t.Errorf("hello %d, %d live, %d opened", second.hello, ws.LiveConnections(), ws.Connections())
	}
	ws.WaitAck(ws.SlashCommand("UREQ", "CSECURITY", "x"), wait)
	if got := ws.EnvelopesPerConnection(); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("EnvelopesPerConnection = %v", got)
	}
	if i := ws.DropConnection(); i != 1 || ws.LiveConnections() != 0 {
		t.Errorf("DropConnection = %d, %d live", i, ws.LiveConnections())
	}
	if i := ws.DropConnection(); i != -1 {
		t.Errorf("DropConnection without a connection = %d", i)
	}
}

// slack-go's Socket Mode clients share the work as replicas of the bot would.
func TestMultiConnectionSlackGoClients(t *testing.T) {
	ws := bottest.New(t, bottest.WithMultiConnection(2*time.Second))
	handled := make([]int, 2)
	var mu sync.Mutex
	for i := range 2 {
		sm := socketmode.New(client(ws))
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go sm.RunContext(ctx)
		go func() {
			for evt := range sm.Events {
				if evt.Type == socketmode.EventTypeSlashCommand {
					mu.Lock()
					handled[i]++
					mu.Unlock()
					sm.Ack(*evt.Request)
				}
			}
		}()
		ws.WaitLive(i+1, wait)
	}
	for i := range 40 {
		ws.WaitAck(ws.SlashCommand("UREQ", "CSECURITY", fmt.Sprint("command ", i)), wait)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := ws.EnvelopesPerConnection(); !slices.Equal(got, handled) || handled[0] == 0 || handled[1] == 0 {
		t.Errorf("EnvelopesPerConnection = %v, handled %v", got, handled)
	}
}
