package bot_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
