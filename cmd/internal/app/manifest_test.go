package app

import (
	"context"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack"
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
	// Escaped, a mention arrives as <@U…|name>, the user ID the parser
	// reads; unescaped it arrives as the bare @name, which names nobody for
	// certain.
	if c.ShouldEscape == nil || !*c.ShouldEscape {
		t.Errorf("slash command should_escape is not true: mentions would arrive as plain @name instead of <@U…|name>")
	}
	// Interactivity carries the buttons' clicks and the trigger IDs
	// views.open needs to open a modal.
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
	"chat.postEphemeral":    {"chat:write"},
	"chat.update":           {"chat:write"},
	"usergroups.users.list": {"usergroups:read"},
	// users.info needs users:read, and users:read.email for the profile's
	// email, which revokebot reads (Slack grants that scope only together
	// with users:read).
	"users.info":          {"users:read", "users:read.email"},
	"users.lookupByEmail": {"users:read", "users:read.email"},
	// conversations.open needs the scope of the conversation's kind; the
	// bot opens only 1:1 direct messages.
	"conversations.open": {"im:write"},
	// Modals need no scope, only interactivity (TestManifestIsValid).
	"views.open":   nil,
	"views.push":   nil,
	"views.update": nil,
	// conversations.info needs the scope of the channel's kind.
	"conversations.info": {"channels:read", "groups:read"},
	// So does conversations.history (finding an earlier post after a
	// crash): in the audit and approval channels, public or private, and in
	// the direct message to a requester (a notice of their request's end).
	"conversations.history": {"channels:history", "groups:history", "im:history"},
	// conversations.replies finds an earlier escalation post in a request's
	// thread, in the approval channel.
	"conversations.replies": {"channels:history", "groups:history"},
	// The link to an approval message, for `revokebot audit export`: no scope.
	"chat.getPermalink": nil,
	// Called with the app-level token, whose scope (connections:write) is not a bot scope.
	"apps.connections.open": nil,
}

// clientMethods is the Web API method each slack-go *slack.Client method
// calls, by its Context form (the plain form calls the same method).
var clientMethods = map[string]string{
	"AuthTestContext":               "auth.test",
	"StartSocketModeContext":        "apps.connections.open",
	"PostMessageContext":            "chat.postMessage",
	"PostEphemeralContext":          "chat.postEphemeral",
	"UpdateMessageContext":          "chat.update",
	"GetPermalinkContext":           "chat.getPermalink",
	"GetConversationHistoryContext": "conversations.history",
	"GetConversationRepliesContext": "conversations.replies",
	"GetConversationInfoContext":    "conversations.info",
	"OpenConversationContext":       "conversations.open",
	"GetUserGroupMembersContext":    "usergroups.users.list",
	"GetUserInfoContext":            "users.info",
	"GetUsersInfoContext":           "users.info",
	"GetUserByEmailContext":         "users.lookupByEmail",
	"OpenViewContext":               "views.open",
	"PushViewContext":               "views.push",
	"UpdateViewContext":             "views.update",
}

// codeMethods returns the Web API methods that the code of the production
// binary (cmd/revokebot and every package of this module it imports, test
// files aside) calls through slack-go, found by reading it: the methods of
// paths that no test here takes, like a modal or a DM, count too.
func codeMethods(t *testing.T) []string {
	t.Helper()
	const module = "github.com/revokebot/revokebot"
	client := map[string]bool{}
	ct := reflect.TypeFor[*slack.Client]()
	for i := range ct.NumMethod() {
		client[ct.Method(i).Name] = true
	}
	var methods []string
	seen := map[string]bool{}
	var visit func(pkg string)
	visit = func(pkg string) {
		if seen[pkg] {
			return
		}
		seen[pkg] = true
		dir := filepath.Join("../../..", strings.TrimPrefix(pkg, module))
		bp, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("read package %s: %v", pkg, err)
		}
		for _, name := range bp.GoFiles {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatalf("parse %s: %v", name, err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				// A *slack.Client method that has a Context form: a call
				// to Slack (which excludes Debugf and the like).
				name, withContext := sel.Sel.Name, strings.TrimSuffix(sel.Sel.Name, "Context")+"Context"
				if !client[name] || !client[withContext] {
					return true
				}
				method, known := clientMethods[withContext]
				if !known {
					t.Errorf("%s calls slack-go's %s: add it to clientMethods, its Web API method to methodScopes, and its scopes to slack-app-manifest.yaml",
						fset.Position(call.Pos()), name)
					return true
				}
				if !slices.Contains(methods, method) {
					methods = append(methods, method)
				}
				return true
			})
		}
		for _, imp := range bp.Imports {
			if strings.HasPrefix(imp, module+"/") {
				visit(imp)
			}
		}
	}
	visit(module + "/cmd/revokebot")
	slices.Sort(methods)
	return methods
}

// TestManifestCodeMethodsFindsCalls checks codeMethods against what the
// code is known to call, so that it cannot silently find nothing.
func TestManifestCodeMethodsFindsCalls(t *testing.T) {
	t.Parallel()
	got := codeMethods(t)
	for _, want := range []string{"auth.test", "chat.postMessage", "chat.update", "conversations.info", "usergroups.users.list"} {
		if !slices.Contains(got, want) {
			t.Errorf("codeMethods found %v, without %s", got, want)
		}
	}
}

// TestManifestScopesMatchCalls runs the whole bot (a request, a decision by a
// group member) and `revokebot check` against the fake Slack, reads the
// code for the Slack methods it calls on paths that run does not take, and
// checks that the manifest asks for exactly the scopes of those methods: no
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
	for _, method := range append(h.slack.Methods(), codeMethods(t)...) {
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
