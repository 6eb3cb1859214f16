package app

import (
	"context"
	"github.com/revokebot/revokebot/bot/bottest"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// manifest is the part of Slack's app manifest that revokebot sets.
type manifest struct {
	DisplayInformation struct {
		Name        string `yaml:"name"`
		Description string `yaml:"description"`
	} `yaml:"display_information"`
	Features struct {
		BotUser struct {
			DisplayName string `yaml:"display_name"`
		} `yaml:"bot_user"`
		SlashCommands []struct {
			Command      string `yaml:"command"`
			Description  string `yaml:"description"`
			UsageHint    string `yaml:"usage_hint"`
			ShouldEscape *bool  `yaml:"should_escape"`
		} `yaml:"slash_commands"`
	} `yaml:"features"`
	OAuthConfig struct {
		Scopes struct {
			Bot  []string `yaml:"bot"`
			User []string `yaml:"user"`
		} `yaml:"scopes"`
	} `yaml:"oauth_config"`
	Settings struct {
		Interactivity struct {
			IsEnabled  bool   `yaml:"is_enabled"`
			RequestURL string `yaml:"request_url"`
		} `yaml:"interactivity"`
		SocketModeEnabled bool `yaml:"socket_mode_enabled"`
	} `yaml:"settings"`
}

func readManifest(t *testing.T) manifest {
	t.Helper()
	raw, err := os.ReadFile("../../../slack-app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("slack-app-manifest.yaml does not parse: %v", err)
	}
	return m
}

// TestManifestIsValid checks the fields Slack's manifest schema requires of
// what we use, with its length limits.
func TestManifestIsValid(t *testing.T) {
	t.Parallel()
	m := readManifest(t)
	runes := utf8.RuneCountInString
	if n := m.DisplayInformation.Name; n == "" || runes(n) > 35 {
		t.Errorf("display_information.name %q: required, at most 35 characters", n)
	}
	if d := m.DisplayInformation.Description; runes(d) > 140 {
		t.Errorf("display_information.description is %d characters, at most 140", runes(d))
	}
	if d := m.Features.BotUser.DisplayName; d == "" || runes(d) > 80 {
		t.Errorf("features.bot_user.display_name %q: required, at most 80 characters", d)
	}
	if len(m.Features.SlashCommands) != 1 {
		t.Fatalf("%d slash commands, want exactly /revoke", len(m.Features.SlashCommands))
	}
	c := m.Features.SlashCommands[0]
	if c.Command != "/revoke" || c.Description == "" || runes(c.Description) > 2000 || c.UsageHint == "" || runes(c.UsageHint) > 1000 {
		t.Errorf("slash command %+v: want /revoke with a description and a usage hint", c)
	}
	// The usage hint shows every option the parser takes.
	for _, flag := range []string{"--devices", "--warp-reauth", "--uid", "--reason"} {
		if !strings.Contains(c.UsageHint, flag) {
			t.Errorf("usage hint lacks %s", flag)
		}
	}
	if !m.Settings.SocketModeEnabled || !m.Settings.Interactivity.IsEnabled || m.Settings.Interactivity.RequestURL != "" {
		t.Errorf("settings %+v: want Socket Mode and interactivity on, with no request URL", m.Settings)
	}
	if len(m.OAuthConfig.Scopes.User) != 0 {
		t.Errorf("user scopes %v: revokebot acts as its bot only", m.OAuthConfig.Scopes.User)
	}
}

// methodScopes is the bot scope each Slack Web API method needs, from Slack's
// method reference. A method revokebot starts calling must be added here,
// and its scope to the manifest.
var methodScopes = map[string][]string{
	"auth.test":             nil,
	"chat.postMessage":      {"chat:write"},
	"chat.update":           {"chat:write"},
	"usergroups.users.list": {"usergroups:read"},
	// conversations.info needs the scope of the channel's kind.
	"conversations.info": {"channels:read", "groups:read"},
	// So does conversations.history (finding an earlier post after a crash).
	"conversations.history": {"channels:history", "groups:history"},
	// Called with the app-level token, whose scope (connections:write) is not a bot scope.
	"apps.connections.open": nil,
}

// TestManifestScopesMatchCalls runs the whole bot (a request, a decision by a
// group member) and `revokebot check` against the fake Slack, and checks that
// the manifest asks for exactly the scopes of the methods they called: no
// fewer, or a call fails in production; no more, or the app holds rights it
// does not use.
func TestManifestScopesMatchCalls(t *testing.T) {
	t.Parallel()
	h := start(t, map[string]string{"REVOKEBOT_REQUESTERS": requester + ",SREQUESTERS"})
	h.slack.SetGroup("SREQUESTERS", "UNOBODY")
	// A post that fails is looked for in the channel's history before it is
	// posted again: that is part of what the bot calls.
	h.slack.Fail("chat.postMessage", bottest.Failure{Status: 500})
	m := h.request("alice@example.com")
	h.click(groupie, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
	h.waitAudit(requestID(t, m), "requested", "approved", "revoked")
	h.stop()
	if err := Run(context.Background(), []string{"check"}, getter(h.env), io.Discard, io.Discard); err != nil {
		t.Fatalf("check: %v", err)
	}

	need := map[string]bool{"commands": true} // the /revoke slash command
	for _, method := range h.slack.Methods() {
		scopes, known := methodScopes[method]
		if !known {
			t.Errorf("revokebot calls %s: add its scope to methodScopes and to slack-app-manifest.yaml", method)
		}
		for _, s := range scopes {
			need[s] = true
		}
	}
	got := readManifest(t).OAuthConfig.Scopes.Bot
	want := slices.Sorted(maps.Keys(need))
	if slices.Sort(got); !slices.Equal(got, want) {
		t.Fatalf("manifest bot scopes %v, but the calls need %v", got, want)
	}
}
