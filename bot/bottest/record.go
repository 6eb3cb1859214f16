package bottest

// ResponseURL returns the response_url Slack would send with a command or
// click of user in channel: a POST to it records a private reply to user.
func (w *Workspace) ResponseURL(user, channel string) string { return w.responseURL(user, channel) }

// AllCalls returns every Web API call recorded so far, oldest first.
func (w *Workspace) AllCalls() []Call {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Call(nil), w.calls...)
}

// AllEphemerals returns every private reply recorded so far, to anyone,
// oldest first.
func (w *Workspace) AllEphemerals() []Ephemeral {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Ephemeral(nil), w.ephemerals...)
}

// Reset forgets every call, ack, private reply, message, opened view and
// sent trigger_id recorded so far, so that a long run (a fuzz test) does not
// grow without bound. A later chat.update of a forgotten message answers
// message_not_found, and views.open with a forgotten trigger_id
// invalid_trigger_id. Envelopes not acknowledged yet are no longer
// redelivered (multi-connection mode), and Redeliveries forgets them.
// Scripted failures, holds, groups, channels, users and connections stay.
func (w *Workspace) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls, w.ephemerals, w.messages, w.views = nil, nil, nil, nil
	clear(w.acks)
	for _, e := range w.inFlight {
		e.timer.Stop()
	}
	clear(w.inFlight)
	clear(w.retries)
	clear(w.firsts)
	clear(w.triggers)
	clear(w.opened)
	w.notifyLocked()
}
