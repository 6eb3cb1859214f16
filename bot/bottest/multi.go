package bottest

import (
	"fmt"
	"slices"
	"time"
)

// MaxConnections is how many Socket Mode connections Slack keeps open for
// one app at once. In multi-connection mode the workspace refuses more.
const MaxConnections = 10

// MaxRetries is how many times Slack redelivers an envelope that is not
// acknowledged in time.
const MaxRetries = 3

// WithMultiConnection makes the workspace behave as Slack does with several
// Socket Mode connections to one app (several replicas of the bot):
//
//   - A new connection leaves the live ones open, up to MaxConnections; one
//     more is refused: closed at once (close code 1008,
//     "too_many_connections"), without a hello, and not counted.
//   - Each envelope (SendEnvelope and the helpers built on it: SlashCommand,
//     Click, SubmitView, …) and Disconnect's message go to one live
//     connection chosen at random.
//   - An envelope not acknowledged within redeliverAfter is sent again as a
//     new envelope (a new ID, retry_attempt one more, retry_reason
//     "timeout", the same payload) to another live connection when there is
//     one, at most MaxRetries times. While no connection is live, the
//     redelivery waits another redeliverAfter. An ack of any attempt, even
//     a late one, is recorded and ends the redeliveries. redeliverAfter <= 0
//     turns redelivery off.
//
// WaitAck(id) then also accepts an ack of one of id's redeliveries, and
// Redeliveries(id) lists them. Without this option a workspace keeps one
// connection: a new one closes the previous one.
func WithMultiConnection(redeliverAfter time.Duration) Option {
	return func(w *Workspace) {
		w.multi = true
		w.redeliverAfter = redeliverAfter
	}
}

// envelope is a Socket Mode envelope the workspace sent.
type envelope struct {
	id              string
	first           string // the ID of the envelope it redelivers, or id
	typ             string
	payload         any
	acceptsResponse bool
	retry           int
	conn            *wsConn     // where it was sent
	timer           *time.Timer // redelivers it, while in flight
}

// message is the envelope as sent on the websocket.
func (e *envelope) message() map[string]any {
	m := map[string]any{"envelope_id": e.id, "type": e.typ, "payload": e.payload,
		"accepts_response_payload": e.acceptsResponse}
	if e.retry > 0 {
		m["retry_attempt"] = e.retry
		m["retry_reason"] = "timeout"
	}
	return m
}

// trackLocked counts e as sent to c and, when redelivery is on, arms its
// redelivery.
func (w *Workspace) trackLocked(e *envelope, c *wsConn) {
	c.envelopes++
	e.conn = c
	if w.redeliverAfter <= 0 || w.closed {
		return
	}
	if old := w.inFlight[e.id]; old != nil {
		old.timer.Stop()
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	w.inFlight[e.id] = e
	e.timer = time.AfterFunc(w.redeliverAfter, func() { w.redeliver(e) })
}

// redeliver sends envelope e again, as a new envelope, if it is still in
// flight: its redeliverAfter has passed without an ack.
func (w *Workspace) redeliver(e *envelope) {
	w.mu.Lock()
	if w.closed || w.inFlight[e.id] != e {
		w.mu.Unlock()
		return
	}
	delete(w.inFlight, e.id)
	if e.retry >= MaxRetries {
		w.mu.Unlock()
		return
	}
	c := w.pickLocked(e.conn)
	if c == nil {
		w.inFlight[e.id] = e
		e.timer = time.AfterFunc(w.redeliverAfter, func() { w.redeliver(e) })
		w.mu.Unlock()
		return
	}
	w.nextID++
	r := &envelope{id: fmt.Sprintf("env-%04d", w.nextID), first: e.first, typ: e.typ, payload: e.payload,
		acceptsResponse: e.acceptsResponse, retry: e.retry + 1}
	w.retries[r.first] = append(w.retries[r.first], r.id)
	w.firsts[r.id] = r.first
	w.redelivered++
	w.trackLocked(r, c)
	w.notifyLocked()
	w.mu.Unlock()
	if err := c.writeJSON(r.message()); err != nil {
		// Lost with its connection, as with Slack: redelivered in time.
		c.close()
		w.mu.Lock()
		c.envelopes--
		w.mu.Unlock()
	}
}

// ackedLocked ends the redeliveries of the envelope whose ack (or its
// redelivery's) came: id.
func (w *Workspace) ackedLocked(id string) {
	first := id
	if f, ok := w.firsts[id]; ok {
		first = f
	}
	for _, x := range append([]string{first}, w.retries[first]...) {
		if e := w.inFlight[x]; e != nil {
			e.timer.Stop()
			delete(w.inFlight, x)
		}
	}
}

// redeliveriesLocked returns the IDs of the envelopes that redelivered id,
// oldest first. The slice is shared.
func (w *Workspace) redeliveriesLocked(id string) []string {
	first, ok := w.firsts[id]
	if !ok {
		return w.retries[id]
	}
	chain := w.retries[first]
	return chain[slices.Index(chain, id)+1:]
}

// ackLocked returns id's ack, or else the earliest of its redeliveries'.
func (w *Workspace) ackLocked(id string) (Ack, bool) {
	if a, ok := w.acks[id]; ok {
		return a, true
	}
	var first Ack
	found := false
	for _, r := range w.redeliveriesLocked(id) {
		if a, ok := w.acks[r]; ok && (!found || a.At.Before(first.At)) {
			first, found = a, true
		}
	}
	return first, found
}

// Redeliveries returns the IDs of the envelopes that redelivered envelope id
// because it (or an earlier redelivery) was not acknowledged in time, oldest
// first; their retry_attempt is 1, 2, … counted from id's. It returns nil
// when there were none, and always outside multi-connection mode.
func (w *Workspace) Redeliveries(id string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.redeliveriesLocked(id))
}

// Redelivered counts the redeliveries sent so far (multi-connection mode).
func (w *Workspace) Redelivered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.redelivered
}

// LiveConnections returns how many Socket Mode connections are open.
func (w *Workspace) LiveConnections() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.live)
}

// WaitLive waits until exactly n Socket Mode connections are open.
func (w *Workspace) WaitLive(n int, timeout time.Duration) {
	w.tb.Helper()
	w.waitFor(timeout, fmt.Sprintf("%d live socket mode connections", n), func() bool { return len(w.live) == n })
}

// EnvelopesPerConnection returns, for every connection opened so far, in the
// order they were opened (index 0 is the first, as in Ack.Connection and
// DropConnection), how many envelopes the workspace sent it, redeliveries
// included. Closed connections keep their place and count.
func (w *Workspace) EnvelopesPerConnection() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.envelopesPerConnectionLocked()
}

func (w *Workspace) envelopesPerConnectionLocked() []int {
	out := make([]int, len(w.all))
	for i, c := range w.all {
		out[i] = c.envelopes
	}
	return out
}
