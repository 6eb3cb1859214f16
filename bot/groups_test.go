package bot_test

import (
	"context"
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
