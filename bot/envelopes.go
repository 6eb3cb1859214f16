package bot

import (
	"sync"
	"time"
)

// envelopeTTL is how long an envelope ID is remembered at least; Slack
// redelivers within a few minutes.
const envelopeTTL = 15 * time.Minute

// envelopeMemory remembers the envelope IDs seen for at least envelopeTTL, in
// two generations: at the first envelope after the current generation is
// envelopeTTL old, it becomes the previous one, and the previous one is
// dropped whole. Each envelope costs one map lookup or two, never a sweep,
// and the memory holds the envelopes of two generations at most.
type envelopeMemory struct {
	mu        sync.Mutex
	cur, prev map[string]struct{}
	since     time.Time // when cur was started
}

// seen reports whether id was seen before, and remembers it.
func (m *envelopeMemory) seen(id string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur == nil || now.Sub(m.since) >= envelopeTTL {
		m.prev, m.cur, m.since = m.cur, map[string]struct{}{}, now
	}
	if _, ok := m.cur[id]; ok {
		return true
	}
	if _, ok := m.prev[id]; ok {
		return true
	}
	m.cur[id] = struct{}{}
	return false
}

// forget drops id from the memory (the fuzz test keeps a long run from
// growing with it).
func (m *envelopeMemory) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cur, id)
	delete(m.prev, id)
}
