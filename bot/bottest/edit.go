package bottest

// EditText changes the text of message ts in channel behind the bot's back,
// as its author or a workspace admin editing it in Slack would: its
// metadata, its author and its place in the history stay. It reports
// whether there was such a message.
func (w *Workspace) EditText(channel, ts, text string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	found := false
	for i := range w.messages {
		if m := &w.messages[i]; m.Channel == channel && m.TS == ts {
			m.Text = text
			found = true
		}
	}
	w.notifyLocked()
	return found
}
