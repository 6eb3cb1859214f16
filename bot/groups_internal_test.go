package bot

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack"
)

// TestGroupCacheFailureMemoryIsBrief: a failed users.info or
// usergroups.users.list is remembered for a few seconds only, a good answer
// for the cache's TTL.
func TestGroupCacheFailureMemoryIsBrief(t *testing.T) {
	t.Parallel()
	ws := bottest.New(t)
	ws.SetUser("UALICE", bottest.User{Name: "alice", Email: "alice@example.com"})
	ws.SetGroup("SOPS", "UALICE")
	g := NewGroupCache(slack.New(ws.BotToken(), slack.OptionAPIURL(ws.APIURL())), time.Hour)
	g.TeamID = bottest.DefaultTeamID
	var (
		mu  sync.Mutex
		now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	)
	g.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ctx := context.Background()

	ws.Fail("users.info", bottest.Failure{Error: "ratelimited"})
	ws.Fail("usergroups.users.list", bottest.Failure{Status: 500})
	if _, err := g.Person(ctx, "UALICE"); err == nil {
		t.Fatal("a failed users.info gave a person")
	}
	if _, err := g.GroupMembers(ctx, "SOPS"); err == nil {
		t.Fatal("a failed usergroups.users.list gave members")
	}
	advance(groupFailureMemory - time.Millisecond)
	if _, err := g.Person(ctx, "UALICE"); err == nil {
		t.Fatal("the failure was forgotten within its memory")
	}
	if _, err := g.GroupMembers(ctx, "SOPS"); err == nil {
		t.Fatal("the group's failure was forgotten within its memory")
	}
	advance(2 * time.Millisecond)
	if p, err := g.Person(ctx, "UALICE"); err != nil || p.Email != "alice@example.com" {
		t.Fatalf("after the failure's memory: %+v, %v", p, err)
	}
	if m, err := g.GroupMembers(ctx, "SOPS"); err != nil || len(m) != 1 {
		t.Fatalf("group after the failure's memory: %v, %v", m, err)
	}
	advance(59 * time.Minute)
	g.Person(ctx, "UALICE")
	if n := len(ws.Calls("users.info")); n != 2 {
		t.Fatalf("%d users.info calls; a good answer is kept for the TTL", n)
	}
	advance(2 * time.Minute)
	g.Person(ctx, "UALICE")
	if n := len(ws.Calls("users.info")); n != 3 {
		t.Fatalf("%d users.info calls; a good answer past the TTL is looked up again", n)
	}
}
