package bottest

import "slices"

// Methods returns the names of the Web API methods called so far, each once,
// sorted: what the code under test needs of Slack.
func (w *Workspace) Methods() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.calls {
		if !slices.Contains(out, c.Method) {
			out = append(out, c.Method)
		}
	}
	slices.Sort(out)
	return out
}
