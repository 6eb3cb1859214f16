package bot

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
	"golang.org/x/sync/singleflight"
)

// GroupCache is revokebot's Slack directory: it resolves user groups to their
// members with usergroups.users.list, and users to what Slack says of them
// with users.info, remembering each answer for a short time. It never
// serves a stale answer when Slack fails: an unresolvable group grants
// nothing. Each group has at most one lookup in flight, whoever asks, and a
// failure is remembered for a few seconds too, so that a flood of clicks
// from outsiders cannot exhaust Slack's rate limit for the method and lock
// out the group's real members.
type GroupCache struct {
	api     *slack.Client
	ttl     time.Duration
	failTTL time.Duration
	now     func() time.Time
	flight  singleflight.Group

	// TeamID is the workspace revokebot serves: a user of another team
	// (Slack Connect) is External. While it is empty, Person fails: deny
	// by default.
	TeamID string

	mu      sync.Mutex
	entries map[string]groupEntry
}

type groupEntry struct {
	members []string
	person  approvals.Person
	err     error
	at      time.Time
}

var _ approvals.Directory = (*GroupCache)(nil)

// groupFailureMemory is how long a failed lookup is remembered: long enough
// to absorb a flood, short enough that a passing failure soon clears.
const groupFailureMemory = 5 * time.Second

// NewGroupCache returns a cache over api that keeps answers for ttl, and
// failures for a few seconds (at most ttl).
func NewGroupCache(api *slack.Client, ttl time.Duration) *GroupCache {
	return &GroupCache{api: api, ttl: ttl, failTTL: min(ttl, groupFailureMemory), now: time.Now, entries: map[string]groupEntry{}}
}

// GroupMembers implements approvals.GroupDirectory.
func (g *GroupCache) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	if e, ok := g.cached(groupID); ok {
		return e.members, e.err
	}
	// The lookup is shared by everyone asking at the moment: it is not cut
	// short when the first of them gives up.
	ch := g.flight.DoChan(groupID, func() (any, error) {
		lookup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		members, err := g.api.GetUserGroupMembersContext(lookup, groupID)
		if err != nil {
			err = fmt.Errorf("usergroups.users.list %s: %w", groupID, err)
		}
		g.mu.Lock()
		g.entries[groupID] = groupEntry{members: members, err: err, at: g.now()}
		g.mu.Unlock()
		return members, err
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("usergroups.users.list %s: %w", groupID, ctx.Err())
	case res := <-ch:
		members, _ := res.Val.([]string)
		return members, res.Err
	}
}

// Person implements approvals.Directory with users.info. A user whose
// team_id is not the workspace's is External; a single- or multi-channel
// guest (is_restricted, is_ultra_restricted) is a Guest.
func (g *GroupCache) Person(ctx context.Context, user string) (approvals.Person, error) {
	if g.TeamID == "" {
		return approvals.Person{}, fmt.Errorf("users.info %s: the workspace's team ID is not known yet", user)
	}
	key := "user:" + user
	if e, ok := g.cached(key); ok {
		return e.person, e.err
	}
	ch := g.flight.DoChan(key, func() (any, error) {
		lookup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var p approvals.Person
		u, err := g.api.GetUserInfoContext(lookup, user)
		if err != nil {
			err = fmt.Errorf("users.info %s: %w", user, err)
		} else {
			p = approvals.Person{
				ID: u.ID, Name: u.Name, Email: u.Profile.Email,
				Bot: u.IsBot, Deleted: u.Deleted,
				Guest:    u.IsRestricted || u.IsUltraRestricted,
				External: u.TeamID != g.TeamID,
			}
		}
		g.mu.Lock()
		g.entries[key] = groupEntry{person: p, err: err, at: g.now()}
		g.mu.Unlock()
		return p, err
	})
	select {
	case <-ctx.Done():
		return approvals.Person{}, fmt.Errorf("users.info %s: %w", user, ctx.Err())
	case res := <-ch:
		p, _ := res.Val.(approvals.Person)
		return p, res.Err
	}
}

// cached returns the remembered answer for a key, if it is fresh.
func (g *GroupCache) cached(groupID string) (groupEntry, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.entries[groupID]
	if !ok {
		return e, false
	}
	ttl := g.ttl
	if e.err != nil {
		ttl = g.failTTL
	}
	return e, g.now().Sub(e.at) < ttl
}
