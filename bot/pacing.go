package bot

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Pacing is how fast revokebot posts and edits Slack messages. Slack allows
// about one chat.postMessage per second per channel, with short bursts, and
// puts chat.update and conversations.history in Tier 3 (50+ a minute).
type Pacing struct {
	// PostEvery is the least time between two posts to one channel, on
	// average; PostBurst is how many may go at once after a quiet spell.
	PostEvery time.Duration
	PostBurst int
	// ReadEvery and ReadBurst pace chat.update and conversations.history
	// together, across all channels.
	ReadEvery time.Duration
	ReadBurst int
}

// DefaultPacing follows Slack's documented limits: one post a second per
// channel, and 50 Tier 3 calls a minute (bursts of 10).
var DefaultPacing = Pacing{PostEvery: time.Second, PostBurst: 1, ReadEvery: 1200 * time.Millisecond, ReadBurst: 10}

// pacer makes callers wait their turn for a Slack method under Pacing.
type pacer struct {
	cfg   Pacing
	tier3 *rate.Limiter

	mu    sync.Mutex
	posts map[string]*rate.Limiter
}

func newPacer(cfg Pacing) *pacer {
	if cfg.PostEvery <= 0 || cfg.PostBurst <= 0 {
		cfg.PostEvery, cfg.PostBurst = DefaultPacing.PostEvery, DefaultPacing.PostBurst
	}
	if cfg.ReadEvery <= 0 || cfg.ReadBurst <= 0 {
		cfg.ReadEvery, cfg.ReadBurst = DefaultPacing.ReadEvery, DefaultPacing.ReadBurst
	}
	return &pacer{cfg: cfg, tier3: rate.NewLimiter(rate.Every(cfg.ReadEvery), cfg.ReadBurst), posts: map[string]*rate.Limiter{}}
}

// post waits until a chat.postMessage to channel may go, or ctx ends.
func (p *pacer) post(ctx context.Context, channel string) error {
	p.mu.Lock()
	l := p.posts[channel]
	if l == nil {
		l = rate.NewLimiter(rate.Every(p.cfg.PostEvery), p.cfg.PostBurst)
		p.posts[channel] = l
	}
	p.mu.Unlock()
	return l.Wait(ctx)
}

// read waits until a Tier 3 call (chat.update, conversations.history) may
// go, or ctx ends.
func (p *pacer) read(ctx context.Context) error { return p.tier3.Wait(ctx) }

// Unpaced lifts all pacing, for tests against a fake Slack.
var Unpaced = Pacing{PostEvery: time.Nanosecond, PostBurst: 1 << 20, ReadEvery: time.Nanosecond, ReadBurst: 1 << 20}
