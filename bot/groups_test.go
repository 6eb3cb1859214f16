package bot_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack"
)

func TestGroupCache(t *testing.T) {
	t.Parallel()
	ws := bottest.New(t)
	ws.SetGroup("SOPS", "U1", "U2")
	api := slack.New(ws.BotToken(), slack.OptionAPIURL(ws.APIURL()))
	cache := bot.NewGroupCache(api, time.Hour)
	ctx := context.Background()

	for range 3 {
		members, err := cache.GroupMembers(ctx, "SOPS")
		if err != nil || len(members) != 2 || members[1] != "U2" {
			t.Fatalf("members = %v, %v", members, err)
		}
	}
	if n := len(ws.Calls("usergroups.users.list")); n != 1 {
		t.Fatalf("%d usergroups.users.list calls for 3 lookups within the TTL, want 1", n)
	}
	if _, err := cache.GroupMembers(ctx, "SMISSING"); err == nil {
		t.Fatal("unknown group resolved")
	}
}

func TestGroupCacheExpiresAndNeverServesStale(t *testing.T) {
	t.Parallel()
	ws := bottest.New(t)
	ws.SetGroup("SOPS", "U1")
	api := slack.New(ws.BotToken(), slack.OptionAPIURL(ws.APIURL()))
	cache := bot.NewGroupCache(api, time.Millisecond)
	ctx := context.Background()
	if _, err := cache.GroupMembers(ctx, "SOPS"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	ws.SetGroup("SOPS", "U9") // membership changed in Slack
	members, err := cache.GroupMembers(ctx, "SOPS")
	if err != nil || len(members) != 1 || members[0] != "U9" {
		t.Fatalf("after expiry: %v, %v", members, err)
	}
	time.Sleep(5 * time.Millisecond)
	ws.Fail("usergroups.users.list", bottest.Failure{Error: "internal_error"})
	if m, err := cache.GroupMembers(ctx, "SOPS"); err == nil {
		t.Fatalf("served %v while Slack failed; a failed lookup must grant nothing", m)
	}
}

// TestGroupCacheOneLookupInFlight: a flood of clicks needing one group makes
// one usergroups.users.list call, not one each, so outsiders cannot use up
// the method's rate limit and lock out the group's approvers.
func TestGroupCacheOneLookupInFlight(t *testing.T) {
	t.Parallel()
	ws := bottest.New(t)
	ws.SetGroup("SOPS", "U1")
	api := slack.New(ws.BotToken(), slack.OptionAPIURL(ws.APIURL()))
	cache := bot.NewGroupCache(api, time.Hour)
	release := ws.Hold("usergroups.users.list")
	results := make(chan error, 50)
	for range 50 {
		go func() {
			members, err := cache.GroupMembers(context.Background(), "SOPS")
			if err == nil && (len(members) != 1 || members[0] != "U1") {
				err = fmt.Errorf("members %v", members)
			}
			results <- err
		}()
	}
	ws.Eventually("the lookup held", 5*time.Second, func() bool { return ws.HeldCalls("usergroups.users.list") == 1 })
	release()
	for range 50 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(ws.Calls("usergroups.users.list")); n != 1 {
		t.Fatalf("%d usergroups.users.list calls for 50 concurrent lookups, want 1", n)
	}
}

// TestGroupCacheRemembersAFailureBriefly: while Slack fails, repeated
// lookups do not each call it; the failure still grants nothing.
func TestGroupCacheRemembersAFailureBriefly(t *testing.T) {
	t.Parallel()
	ws := bottest.New(t)
	ws.SetGroup("SOPS", "U1")
	api := slack.New(ws.BotToken(), slack.OptionAPIURL(ws.APIURL()))
	cache := bot.NewGroupCache(api, time.Hour)
	ws.Fail("usergroups.users.list", bottest.Failure{RetryAfter: 30})
	for range 20 {
		if _, err := cache.GroupMembers(context.Background(), "SOPS"); err == nil {
			t.Fatal("a failed lookup granted membership")
		}
	}
	if n := len(ws.Calls("usergroups.users.list")); n != 1 {
		t.Fatalf("%d calls while the failure is remembered, want 1", n)
	}
}

// newDirectory is a GroupCache of ws serving this workspace's team.
func newDirectory(ws *bottest.Workspace) *bot.GroupCache {
	api := slack.New(ws.BotToken(), slack.OptionAPIURL(ws.APIURL()))
	cache := bot.NewGroupCache(api, time.Hour)
	cache.TeamID = bottest.DefaultTeamID
	return cache
}

// TestGroupCachePerson: users.info says who a user is: a member, a guest
// of either kind, a user of another organisation, a bot, a deactivated
// account.
func TestGroupCachePerson(t *testing.T) {
	t.Parallel()
	ws := bottest.New(t)
	ws.SetUser("UALICE", bottest.User{Name: "alice", Email: "alice@example.com"})
	ws.SetUser("UGUEST", bottest.User{Name: "guest", Email: "guest@example.com", IsRestricted: true})
	ws.SetUser("USINGLE", bottest.User{Name: "single", Email: "single@example.com", IsUltraRestricted: true})
	ws.SetUser("WOTHER", bottest.User{Name: "other", Email: "other@partner.example", TeamID: "T0PARTNER"})
	ws.SetUser("UBOT", bottest.User{Name: "somebot", IsBot: true})
	ws.SetUser("UGONE", bottest.User{Name: "gone", Email: "gone@example.com", Deleted: true})
	cache := newDirectory(ws)
	ctx := context.Background()
	for _, tt := range []struct {
		user string
		want approvals.Person
	}{
		{"UALICE", approvals.Person{ID: "UALICE", Name: "alice", Email: "alice@example.com"}},
		{"UGUEST", approvals.Person{ID: "UGUEST", Name: "guest", Email: "guest@example.com", Guest: true}},
		{"USINGLE", approvals.Person{ID: "USINGLE", Name: "single", Email: "single@example.com", Guest: true}},
		{"WOTHER", approvals.Person{ID: "WOTHER", Name: "other", Email: "other@partner.example", External: true}},
		{"UBOT", approvals.Person{ID: "UBOT", Name: "somebot", Bot: true}},
		{"UGONE", approvals.Person{ID: "UGONE", Name: "gone", Email: "gone@example.com", Deleted: true}},
		{bottest.BotUserID, approvals.Person{ID: bottest.BotUserID, Name: "revokebot", Bot: true}},
	} {
		got, err := cache.Person(ctx, tt.user)
		if err != nil || got != tt.want {
			t.Errorf("Person(%s) = %+v, %v; want %+v", tt.user, got, err, tt.want)
		}
	}
	if _, err := cache.Person(ctx, "UNOBODY"); err == nil || !strings.Contains(err.Error(), "user_not_found") {
		t.Errorf("an unknown user: %v", err)
	}
	// Answers are remembered.
	before := len(ws.Calls("users.info"))
	for range 5 {
		if p, err := cache.Person(ctx, "UGUEST"); err != nil || !p.Guest {
			t.Fatalf("again: %+v, %v", p, err)
		}
	}
	if n := len(ws.Calls("users.info")) - before; n != 0 {
		t.Errorf("%d users.info calls for a person already looked up", n)
	}
}

// TestGroupCachePersonWithoutTeam: while the workspace's team ID is not
// known, nobody can be told from an outsider: every lookup fails, without
// asking Slack.
func TestGroupCachePersonWithoutTeam(t *testing.T) {
	t.Parallel()
	ws := bottest.New(t)
	ws.SetUser("UALICE", bottest.User{Name: "alice", Email: "alice@example.com"})
	api := slack.New(ws.BotToken(), slack.OptionAPIURL(ws.APIURL()))
	cache := bot.NewGroupCache(api, time.Hour)
	if p, err := cache.Person(context.Background(), "UALICE"); err == nil {
		t.Fatalf("Person without a team ID = %+v", p)
	}
	if n := len(ws.Calls("users.info")); n != 0 {
		t.Errorf("%d users.info calls without a team ID", n)
	}
}

// TestGroupCachePersonFailure: a users.info failure is an error, never a
// person (the policy then allows nothing); it is remembered, so a flood of
// clicks makes one call; and one lookup is in flight per user.
func TestGroupCachePersonFailure(t *testing.T) {
	t.Parallel()
	ws := bottest.New(t)
	ws.SetUser("UALICE", bottest.User{Name: "alice", Email: "alice@example.com"})
	cache := newDirectory(ws)
	ctx := context.Background()
	ws.Fail("users.info", bottest.Failure{Error: "internal_error"})
	for range 20 {
		if p, err := cache.Person(ctx, "UALICE"); err == nil {
			t.Fatalf("a failed lookup gave %+v", p)
		}
	}
	if n := len(ws.Calls("users.info")); n != 1 {
		t.Fatalf("%d users.info calls while the failure is remembered, want 1", n)
	}

	release := ws.Hold("users.info")
	results := make(chan error, 50)
	for range 50 {
		go func() {
			p, err := cache.Person(context.Background(), "UOTHER")
			if err == nil {
				err = fmt.Errorf("person %+v", p)
			}
			results <- err
		}()
	}
	ws.Eventually("the lookup held", 5*time.Second, func() bool { return ws.HeldCalls("users.info") == 1 })
	release()
	for range 50 {
		if err := <-results; err == nil || !strings.Contains(err.Error(), "user_not_found") {
			t.Fatalf("concurrent lookup of an unknown user: %v", err)
		}
	}
	if n := len(ws.Calls("users.info")); n != 2 {
		t.Fatalf("%d users.info calls for 50 concurrent lookups of one user (and the first failure), want 2", n)
	}

	// A lookup given up by its first caller is not cut short for the others.
	ws.SetUser("UNEW", bottest.User{Name: "new", Email: "new@example.com"})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	release = ws.Hold("users.info")
	if _, err := cache.Person(short, "UNEW"); err == nil {
		t.Fatal("a lookup past its caller's deadline succeeded")
	}
	got := make(chan error, 1)
	go func() {
		p, err := cache.Person(ctx, "UNEW")
		if err == nil && p.Email != "new@example.com" {
			err = fmt.Errorf("person %+v", p)
		}
		got <- err
	}()
	release()
	if err := <-got; err != nil {
		t.Fatalf("the second caller of a lookup its first caller gave up: %v", err)
	}
	if n := len(ws.Calls("users.info")); n != 3 {
		t.Fatalf("%d users.info calls, want 3", n)
	}
}
