package bot

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// GroupCache resolves Slack user groups to their members with
// usergroups.users.list, remembering each answer for a short time. It never
// serves a stale answer when Slack fails: an unresolvable group grants nothing.
type GroupCache struct {
	api *slack.Client
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]groupEntry
}

type groupEntry struct {
	members []string
	at      time.Time
}

// NewGroupCache returns a cache over api that keeps answers for ttl.
func NewGroupCache(api *slack.Client, ttl time.Duration) *GroupCache {
	return &GroupCache{api: api, ttl: ttl, now: time.Now, entries: map[string]groupEntry{}}
}

// GroupMembers implements approvals.GroupDirectory.
func (g *GroupCache) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	g.mu.Lock()
	e, ok := g.entries[groupID]
	g.mu.Unlock()
	if ok && g.now().Sub(e.at) < g.ttl {
		return e.members, nil
	}
	members, err := g.api.GetUserGroupMembersContext(ctx, groupID)
	if err != nil {
		return nil, fmt.Errorf("usergroups.users.list %s: %w", groupID, err)
	}
	g.mu.Lock()
	g.entries[groupID] = groupEntry{members: members, at: g.now()}
	g.mu.Unlock()
	return members, nil
}
