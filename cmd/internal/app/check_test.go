package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/revokebot/revokebot/approvals/postgres/pgtest"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// checkFakes are a fake Slack and a fake Cloudflare set up as a correct
// deployment would be, and the environment that points at them.
type checkFakes struct {
	slack *bottest.Workspace
	cf    *cftest.Server
	env   map[string]string
}

func newCheckFakes(t *testing.T, cfOpts ...cftest.Option) *checkFakes {
	t.Helper()
	ws := bottest.New(t)
	setPeople(ws)
	ws.SetGroup("SAPPROVERS", groupie, approver)
	ws.SetGroup("SREQUESTERS", requester)
	ws.SetChannel(auditChannel, bottest.ChannelInfo{Name: "revokebot-audit", Private: true, IsMember: true})
	ws.SetChannel(secChannel, bottest.ChannelInfo{Name: "security", IsMember: true})
	cf := cftest.NewServer(t, cfOpts...)
	env := baseEnv(ws, cf, filepath.Join(t.TempDir(), "revokebot.db"))
	env["REVOKEBOT_APPROVAL_CHANNEL"] = secChannel
	env["REVOKEBOT_REQUESTERS"] = requester + ",SREQUESTERS"
	if cf.ZoneID() != "" {
		env["CLOUDFLARE_ACCOUNT_ID"], env["CLOUDFLARE_ZONE_ID"] = "", cf.ZoneID()
	}
	return &checkFakes{slack: ws, cf: cf, env: env}
}

// checkResult is the outcome of one `revokebot check`.
type checkResult struct {
	out string
	err error
}

// run runs `revokebot check` through run, as main does, and checks
// that no secret shows in its output.
func (f *checkFakes) run(t *testing.T) checkResult {
	t.Helper()
	return f.runWith(t, func(stdout, stderr *bytes.Buffer) error {
		return Run(context.Background(), []string{"check"}, getter(f.env), stdout, stderr)
	})
}

// runWith runs check through call and checks its output for secrets.
func (f *checkFakes) runWith(t *testing.T, call func(stdout, stderr *bytes.Buffer) error) checkResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := call(&stdout, &stderr)
	t.Logf("revokebot check (err %v):\n%s", err, stdout.String())
	if stderr.Len() > 0 {
		t.Errorf("check wrote to stderr: %s", stderr.String())
	}
	secrets := []string{f.slack.BotToken(), f.slack.AppToken(), f.cf.APIToken(),
		f.env["SLACK_BOT_TOKEN"], f.env["SLACK_APP_TOKEN"], f.env["CLOUDFLARE_API_TOKEN"], f.env["CLOUDFLARE_API_KEY"]}
	for _, s := range secrets {
		if s != "" && (strings.Contains(stdout.String(), s) || strings.Contains(stderr.String(), s)) {
			t.Errorf("check printed a secret (%d characters)", len(s))
		}
	}
	return checkResult{out: stdout.String(), err: err}
}

// line returns the status label and the detail of the line about what.
func (r checkResult) line(t *testing.T, what string) (status, detail string) {
	t.Helper()
	status, detail, ok := r.find(what)
	if !ok {
		t.Fatalf("no line about %q in:\n%s", what, r.out)
	}
	return status, detail
}

// find returns the status label and the detail of the line about what, if any.
func (r checkResult) find(what string) (status, detail string, ok bool) {
	for _, l := range strings.Split(r.out, "\n") {
		status, rest, _ := strings.Cut(l, " ")
		if d, ok := strings.CutPrefix(strings.TrimLeft(rest, " "), what+": "); ok {
			return status, d, true
		}
	}
	return "", "", false
}

// wantNot checks that the line about what contains none of the substrings.
func (r checkResult) wantNot(t *testing.T, what string, substrings ...string) {
	t.Helper()
	_, detail := r.line(t, what)
	for _, s := range substrings {
		if strings.Contains(detail, s) {
			t.Errorf("%s: %q contains %q", what, detail, s)
		}
	}
}

// want checks that the line about what has status and contains every substring.
func (r checkResult) want(t *testing.T, what, status string, substrings ...string) {
	t.Helper()
	got, detail := r.line(t, what)
	if got != status {
		t.Errorf("%s: status %s, want %s (%s)", what, got, status, detail)
	}
	for _, s := range substrings {
		if !strings.Contains(detail, s) {
			t.Errorf("%s: %q does not contain %q", what, detail, s)
		}
	}
}

// statuses counts the result lines by status label.
func (r checkResult) statuses() map[string]int {
	n := map[string]int{}
	for _, l := range strings.Split(r.out, "\n") {
		if s, _, _ := strings.Cut(l, " "); s == "ok" || s == "WARN" || s == "FAIL" || s == "skip" {
			n[s]++
		}
	}
	return n
}

// allChecks are the ok lines of a passing check with newCheckFakes, in order;
// the line permissionNote, skipped, comes before "database".
var allChecks = []string{
	"configuration", "Slack bot token", "Slack app token", "audit channel " + auditChannel,
	"approval channel " + secChannel, "requesters", "approvers", "user group SREQUESTERS (requesters)",
	"user group SAPPROVERS (approvers)", "listed users", "users:read.email", "approval quorum", "Cloudflare token", "Cloudflare account " + cftest.DefaultAccountID,
	"Cloudflare preview and verification", "Cloudflare return watch", "database",
}

// permissionNote is the line that says the check cannot prove that the
// Cloudflare credentials may revoke.
const permissionNote = "Cloudflare revoke permission"

func TestCheckAllPass(t *testing.T) {
	t.Parallel()
	f := newCheckFakes(t)
	r := f.run(t)
	if r.err != nil {
		t.Fatalf("check failed: %v", r.err)
	}
	pos := -1
	for _, what := range allChecks {
		r.want(t, what, "ok")
		i := strings.Index(r.out, " "+what+": ")
		if i < pos {
			t.Errorf("%q is out of order", what)
		}
		pos = i
	}
	if n := r.statuses(); n["ok"] != len(allChecks) || n["skip"] != 1 || len(n) != 2 {
		t.Errorf("statuses %v, want %d ok and 1 skip", n, len(allChecks))
	}
	r.want(t, permissionNote, "skip", "proves read access only", `"Access: Organizations, Identity Providers, and Groups Write"`,
		"API Tokens", "dry run (REVOKEBOT_DRY_RUN) never calls Cloudflare")
	if strings.Index(r.out, permissionNote) > strings.Index(r.out, " database: ") {
		t.Errorf("%q comes after the database", permissionNote)
	}
	r.want(t, "Slack bot token", "ok", bottest.DefaultTeamID, bottest.BotUserID)
	r.want(t, "Slack app token", "ok", "hello", bottest.DefaultAppID)
	r.want(t, "audit channel "+auditChannel, "ok", "#revokebot-audit (private)")
	r.want(t, "user group SAPPROVERS (approvers)", "ok", "2 members")
	r.want(t, "Cloudflare token", "ok", cftest.TokenID, "active", "user token")
	r.want(t, "Cloudflare account "+cftest.DefaultAccountID, "ok", cftest.OrganizationName)
	r.want(t, "database", "ok", f.env["REVOKEBOT_DATABASE"], "created", "schema version ")
	if !strings.Contains(r.out, "Ready to run.") {
		t.Errorf("no success summary")
	}
	if f.slack.Connections() != 1 {
		t.Errorf("%d Socket Mode connections, want 1", f.slack.Connections())
	}

	// A second run finds the database in place.
	r = f.run(t)
	r.want(t, "database", "ok", "opened and migrated", "schema version ")
}

func TestCheckZone(t *testing.T) {
	t.Parallel()
	f := newCheckFakes(t, cftest.WithZoneID("zone-test"))
	r := f.run(t)
	if r.err != nil {
		t.Fatalf("check failed: %v", r.err)
	}
	r.want(t, "Cloudflare zone zone-test", "ok", cftest.OrganizationAuthDomain)
	// What Cloudflare's schema declares for the zone route, said up front.
	r.want(t, "Cloudflare zone route", "WARN", "only the email in its body", "declares only the legacy global API key (X-Auth-Email, X-Auth-Key)",
		"may refuse this API token", "--devices, --warp-reauth and --uid", "Prefer CLOUDFLARE_ACCOUNT_ID")
	r.want(t, permissionNote, "skip", "read access only", "for this zone")
}

func TestCheckZoneGlobalKey(t *testing.T) {
	t.Parallel()
	f := newCheckFakes(t, cftest.WithZoneID("zone-test"), cftest.WithGlobalKey("ops@example.com", "global-secret-key"))
	f.env["CLOUDFLARE_API_TOKEN"] = ""
	f.env["CLOUDFLARE_EMAIL"], f.env["CLOUDFLARE_API_KEY"] = "ops@example.com", "global-secret-key"
	r := f.run(t)
	if r.err != nil {
		t.Fatalf("check failed: %v", r.err)
	}
	r.want(t, "Cloudflare zone route", "ok", "only the email in its body", "--devices, --warp-reauth and --uid", "legacy global API key")
	r.want(t, permissionNote, "skip", "read access only", "CLOUDFLARE_EMAIL")
}

func TestCheckGlobalKey(t *testing.T) {
	t.Parallel()
	f := newCheckFakes(t, cftest.WithGlobalKey("ops@example.com", "global-secret-key"))
	f.env["CLOUDFLARE_API_TOKEN"] = ""
	f.env["CLOUDFLARE_EMAIL"], f.env["CLOUDFLARE_API_KEY"] = "ops@example.com", "global-secret-key"
	r := f.run(t)
	if r.err != nil {
		t.Fatalf("check failed: %v", r.err)
	}
	r.want(t, "Cloudflare token", "skip", "global API key")
	r.want(t, "Cloudflare account "+cftest.DefaultAccountID, "ok", cftest.OrganizationName)
	if _, _, ok := r.find("Cloudflare zone route"); ok {
		t.Errorf("a zone note for an account")
	}
}

func TestCheckWarnings(t *testing.T) {
	t.Parallel()
	f := newCheckFakes(t)
	f.slack.SetGroup("SREQUESTERS")
	f.slack.Fail("conversations.info", bottest.Failure{Error: "missing_scope"})
	r := f.run(t)
	if r.err != nil {
		t.Fatalf("warnings made check fail: %v", r.err)
	}
	r.want(t, "user group SREQUESTERS (requesters)", "WARN", "no members")
	r.want(t, "audit channel "+auditChannel, "WARN", "channels:read", "groups:read", "reinstall")
	r.want(t, "approval channel "+secChannel, "ok")
	if !strings.Contains(r.out, "read the WARN lines") {
		t.Errorf("summary does not point at the warnings")
	}
}

func TestCheckFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, f *checkFakes)
		// fail is the check that fails; skipped are those skipped because of it.
		fail, status string
		detail       []string
		skipped      []string
	}{
		{
			name:   "bad bot token",
			setup:  func(t *testing.T, f *checkFakes) { f.env["SLACK_BOT_TOKEN"] = "xoxb-wrong-secret" },
			fail:   "Slack bot token",
			detail: []string{"invalid_auth", "SLACK_BOT_TOKEN", "OAuth & Permissions"},
			skipped: []string{"audit channel " + auditChannel, "approval channel " + secChannel,
				"user group SREQUESTERS (requesters)", "user group SAPPROVERS (approvers)",
				"listed users", "users:read.email", "approval quorum"},
		},
		{
			name: "app token refused",
			setup: func(t *testing.T, f *checkFakes) {
				f.slack.Fail("apps.connections.open", bottest.Failure{Error: "invalid_auth"})
			},
			fail:   "Slack app token",
			detail: []string{"invalid_auth", "SLACK_APP_TOKEN", "connections:write"},
		},
		{
			name: "Socket Mode off",
			setup: func(t *testing.T, f *checkFakes) {
				f.slack.Fail("apps.connections.open", bottest.Failure{Error: "internal_error"})
			},
			fail:   "Slack app token",
			detail: []string{"internal_error", "Socket Mode is on"},
		},
		{
			name: "bot not in the audit channel",
			setup: func(t *testing.T, f *checkFakes) {
				f.slack.SetChannel(auditChannel, bottest.ChannelInfo{Name: "audit", IsMember: false})
			},
			fail:   "audit channel " + auditChannel,
			detail: []string{"not a member of #audit", "/invite @revokebot"},
		},
		{
			name: "bot not in a private approval channel",
			setup: func(t *testing.T, f *checkFakes) {
				f.slack.SetChannel(secChannel, bottest.ChannelInfo{Name: "sec", Private: true})
			},
			fail:   "approval channel " + secChannel,
			detail: []string{"channel_not_found", "/invite @revokebot"},
		},
		{
			name:   "unknown group",
			setup:  func(t *testing.T, f *checkFakes) { f.env["REVOKEBOT_APPROVERS"] = approver + ",SUNKNOWN" },
			fail:   "user group SUNKNOWN (approvers)",
			detail: []string{"no_such_subteam", "check the ID"},
		},
		{
			name: "no usergroups:read",
			setup: func(t *testing.T, f *checkFakes) {
				f.slack.Fail("usergroups.users.list", bottest.Failure{Error: "missing_scope"})
			},
			fail:   "user group SREQUESTERS (requesters)",
			detail: []string{"usergroups:read"},
		},
		{
			name: "no users:read",
			setup: func(t *testing.T, f *checkFakes) {
				f.slack.Fail("users.info", bottest.Failure{Error: "missing_scope"})
			},
			fail:    "listed users",
			detail:  []string{"missing_scope", "lacks users:read", "users:read.email", "refuses every requester and approver", "slack-app-manifest.yaml", "reinstall"},
			skipped: []string{"users:read.email", "approval quorum"},
		},
		{
			name:   "unknown user",
			setup:  func(t *testing.T, f *checkFakes) { f.env["REVOKEBOT_APPROVERS"] += ",UNOBODY" },
			fail:   "user UNOBODY (REVOKEBOT_APPROVERS)",
			detail: []string{"user_not_found", "check the ID in REVOKEBOT_APPROVERS"},
		},
		{
			name:    "Cloudflare token invalid",
			setup:   func(t *testing.T, f *checkFakes) { f.env["CLOUDFLARE_API_TOKEN"] = "cf-wrong-secret" },
			fail:    "Cloudflare token",
			detail:  []string{"does not accept CLOUDFLARE_API_TOKEN", "Invalid API Token", "as an account-owned token"},
			skipped: []string{"Cloudflare account " + cftest.DefaultAccountID},
		},
		{
			name: "account unreachable",
			setup: func(t *testing.T, f *checkFakes) {
				f.cf.ScriptOrganization(cftest.Fail(http.StatusForbidden, 10000, "Authentication error"))
			},
			fail:   "Cloudflare account " + cftest.DefaultAccountID,
			detail: []string{"403 Forbidden", "[10000] Authentication error", "Access: Organizations, Identity Providers, and Groups Write", "CLOUDFLARE_ACCOUNT_ID"},
		},
		{
			name:   "wrong account ID",
			setup:  func(t *testing.T, f *checkFakes) { f.env["CLOUDFLARE_ACCOUNT_ID"] = "acc-other" },
			fail:   "Cloudflare account acc-other",
			detail: []string{"404 Not Found", "check CLOUDFLARE_ACCOUNT_ID"},
		},
		{
			name: "Cloudflare down",
			setup: func(t *testing.T, f *checkFakes) {
				f.env["CLOUDFLARE_BASE_URL"] = "http://127.0.0.1:1/client/v4"
			},
			fail:    "Cloudflare token",
			detail:  []string{"cannot reach Cloudflare", "says nothing about the credentials"},
			skipped: []string{"Cloudflare account " + cftest.DefaultAccountID},
		},
		{
			name: "database path unwritable",
			setup: func(t *testing.T, f *checkFakes) {
				// A path under a regular file fails even for root.
				file := filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(file, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				f.env["REVOKEBOT_DATABASE"] = filepath.Join(file, "revokebot.db")
			},
			fail:   "database",
			detail: []string{"unable to open database file", "make sure its directory exists"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newCheckFakes(t)
			tc.setup(t, f)
			r := f.run(t)
			if r.err == nil || !strings.Contains(r.err.Error(), "1 of") {
				t.Errorf("check returned %v, want 1 failed check", r.err)
			}
			r.want(t, tc.fail, "FAIL", tc.detail...)
			for _, what := range tc.skipped {
				r.want(t, what, "skip")
			}
			skips := len(tc.skipped)
			if status, _, _ := r.find("Cloudflare account " + cftest.DefaultAccountID); status == "ok" {
				r.want(t, permissionNote, "skip")
				skips++
			}
			if n := r.statuses(); n["FAIL"] != 1 || n["skip"] != skips || n["WARN"] != 0 {
				t.Errorf("statuses %v, want exactly 1 FAIL and %d skip", n, skips)
			}
			if !strings.Contains(r.out, "Fix the FAIL lines") {
				t.Errorf("no failure summary")
			}
		})
	}
}

// TestCheckNoHello points check at a Slack whose websocket never says hello:
// apps.connections.open is answered by a stand-in, everything else by the fake.
func TestCheckNoHello(t *testing.T) {
	t.Parallel()
	f := newCheckFakes(t)
	f.env["SLACK_API_URL"] = silentSocketSlack(t, f.slack)
	r := f.runWith(t, func(stdout, _ *bytes.Buffer) error {
		return runCheck(context.Background(), getter(f.env), stdout, checkOptions{CallTimeout: 5 * time.Second, HelloTimeout: 200 * time.Millisecond})
	})
	if r.err == nil {
		t.Fatal("check passed without a hello")
	}
	r.want(t, "Slack app token", "FAIL", "Slack sent no hello within 200ms")
	r.want(t, "Slack bot token", "ok")
	if n := r.statuses(); n["FAIL"] != 1 {
		t.Errorf("statuses %v, want 1 FAIL", n)
	}
}

// silentSocketSlack serves apps.connections.open with a websocket that never
// speaks, and forwards every other Web API call to ws. It returns its API URL.
func silentSocketSlack(t *testing.T, ws *bottest.Workspace) string {
	t.Helper()
	fake, err := url.Parse(ws.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("POST /api/apps.connections.open", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": "ws://" + srv.Listener.Addr().String() + "/silent"})
	})
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux.HandleFunc("GET /silent", func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	})
	mux.Handle("/", httputil.NewSingleHostReverseProxy(&url.URL{Scheme: fake.Scheme, Host: fake.Host}))
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/api/"
}

func TestCheckInvalidConfig(t *testing.T) {
	t.Parallel()
	f := newCheckFakes(t)
	delete(f.env, "SLACK_APP_TOKEN")
	f.env["REVOKEBOT_AUDIT_CHANNEL"] = "#audit"
	r := f.run(t)
	if r.err == nil || !strings.Contains(r.err.Error(), "2 of 3 checks failed") {
		t.Errorf("check returned %v, want 2 of 3 failed", r.err)
	}
	for _, want := range []string{
		"FAIL configuration: SLACK_APP_TOKEN: is required",
		`FAIL configuration: REVOKEBOT_AUDIT_CHANNEL: "#audit" is not a channel ID`,
		"skip Slack, Cloudflare and database: not checked: fix the configuration first",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if calls := f.slack.Calls("auth.test"); len(calls) != 0 {
		t.Errorf("Slack was called with an invalid configuration")
	}
	if _, err := os.Stat(f.env["REVOKEBOT_DATABASE"]); err == nil {
		t.Errorf("the database was created with an invalid configuration")
	}
}

func TestCheckUsage(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"help"}, getter(nil), &out, &out); err != nil || !strings.Contains(out.String(), "revokebot check") {
		t.Fatalf("help does not mention check: %v\n%s", err, out.String())
	}
}

// TestCheckFinishesWhenSlackAndCloudflareHang runs check with its default
// waits against a Slack and a Cloudflare that never answer some calls: it
// must finish (30 s is a hang detector, not a measure), blame the network
// rather than the tokens, and not call a service again once it hung.
func TestCheckFinishesWhenSlackAndCloudflareHang(t *testing.T) {
	t.Parallel()
	hang := cftest.Response{Delay: time.Hour}
	for _, tc := range []struct {
		name  string
		setup func(f *checkFakes)
		check func(t *testing.T, r checkResult)
	}{
		{
			name: "every call",
			setup: func(f *checkFakes) {
				for _, m := range []string{"auth.test", "apps.connections.open", "conversations.info", "usergroups.users.list", "users.info"} {
					f.slack.Hold(m)
				}
				f.cf.ScriptVerify(hang, hang, hang)
				f.cf.ScriptOrganization(hang, hang)
			},
			check: func(t *testing.T, r checkResult) {
				r.want(t, "Slack bot token", "FAIL", "did not answer auth.test within 5s", "says nothing about the tokens")
				r.wantNot(t, "Slack bot token", "refuses", "invalid")
				r.want(t, "Slack app token", "skip", "did not answer auth.test", "not called again")
				r.want(t, "audit channel "+auditChannel, "skip")
				r.want(t, "Cloudflare token", "FAIL", "did not answer within 5s", "says nothing about the credentials")
				r.wantNot(t, "Cloudflare token", "does not accept", "wrong, expired or revoked")
				r.want(t, "Cloudflare account "+cftest.DefaultAccountID, "skip")
				r.want(t, "database", "ok")
			},
		},
		{
			name: "later calls",
			setup: func(f *checkFakes) {
				f.slack.Hold("conversations.info")
				f.slack.Hold("usergroups.users.list")
				f.cf.ScriptOrganization(hang, hang)
			},
			check: func(t *testing.T, r checkResult) {
				r.want(t, "Slack bot token", "ok")
				r.want(t, "Slack app token", "ok")
				r.want(t, "audit channel "+auditChannel, "FAIL", "did not answer conversations.info within 5s")
				for _, what := range []string{"approval channel " + secChannel, "user group SREQUESTERS (requesters)", "user group SAPPROVERS (approvers)"} {
					r.want(t, what, "skip", "did not answer conversations.info", "not called again")
				}
				r.want(t, "Cloudflare token", "ok")
				r.want(t, "Cloudflare account "+cftest.DefaultAccountID, "FAIL", "did not answer within 5s", "says nothing about the credentials")
				r.want(t, "database", "ok")
			},
		},
		{
			name:  "users.info",
			setup: func(f *checkFakes) { f.slack.Hold("users.info") },
			check: func(t *testing.T, r checkResult) {
				r.want(t, "user group SAPPROVERS (approvers)", "ok")
				r.want(t, "listed users", "FAIL", "did not answer users.info within 5s", "says nothing about the tokens")
				r.want(t, "users:read.email", "skip")
				r.want(t, "approval quorum", "skip", "could not be looked up")
				r.want(t, "Cloudflare token", "ok")
				r.want(t, "Cloudflare account "+cftest.DefaultAccountID, "ok")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newCheckFakes(t)
			tc.setup(f)
			done := make(chan checkResult, 1)
			go func() {
				var stdout, stderr bytes.Buffer
				err := Run(context.Background(), []string{"check"}, getter(f.env), &stdout, &stderr)
				done <- checkResult{out: stdout.String() + stderr.String(), err: err}
			}()
			select {
			case r := <-done:
				t.Logf("revokebot check (err %v):\n%s", r.err, r.out)
				if r.err == nil {
					t.Error("check passed")
				}
				tc.check(t, r)
			case <-time.After(30 * time.Second):
				t.Fatal("revokebot check still running after 30s: some step is not bounded")
			}
		})
	}
}

// notFoundURL starts a server that answers 404 to everything, and returns its URL.
func notFoundURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCheckHints checks that each failure gets the hint that fits it: a wrong
// URL is not a wrong token, nor is Cloudflare's own trouble.
func TestCheckHints(t *testing.T) {
	t.Parallel()
	headerFormat := cftest.Response{Status: http.StatusBadRequest, Body: `{"success":false,"errors":[{"code":6003,"message":"Invalid request headers","error_chain":[{"code":6111,"message":"Invalid format for Authorization header"}]}],"messages":[],"result":null}`}
	for _, tc := range []struct {
		name       string
		setup      func(t *testing.T, f *checkFakes)
		what       string
		status     string
		want, not  []string
		thenStatus map[string]string // other lines and their status
	}{
		{
			name:       "Slack API URL answers 404",
			setup:      func(t *testing.T, f *checkFakes) { f.env["SLACK_API_URL"] = notFoundURL(t) + "/api/" },
			what:       "Slack bot token",
			status:     "FAIL",
			want:       []string{"SLACK_API_URL looks wrong", "HTTP 404 to auth.test", "https://slack.com/api/", "says nothing about the tokens"},
			not:        []string{"refuses SLACK_BOT_TOKEN"},
			thenStatus: map[string]string{"Slack app token": "skip"},
		},
		{
			name: "Cloudflare base URL answers 404",
			setup: func(t *testing.T, f *checkFakes) {
				f.env["CLOUDFLARE_BASE_URL"] = strings.TrimSuffix(f.cf.URL(), "/client/v4")
			},
			what:       "Cloudflare token",
			status:     "FAIL",
			want:       []string{"CLOUDFLARE_BASE_URL looks wrong", "404", "https://api.cloudflare.com/client/v4", "nothing about the token"},
			not:        []string{"does not accept", "as an account-owned token"},
			thenStatus: map[string]string{"Cloudflare account " + cftest.DefaultAccountID: "skip"},
		},
		{
			name: "Cloudflare server error",
			setup: func(t *testing.T, f *checkFakes) {
				f.cf.ScriptVerify(cftest.Fail(503, 10001, "Service unavailable"), cftest.Fail(503, 10001, "Service unavailable"))
			},
			what:   "Cloudflare token",
			status: "FAIL",
			want:   []string{"server error", "503", "cloudflarestatus.com", "nothing about the credentials"},
			not:    []string{"does not accept"},
		},
		{
			name:   "Cloudflare rate limit",
			setup:  func(t *testing.T, f *checkFakes) { f.cf.ScriptVerify(cftest.RateLimited(60)) },
			what:   "Cloudflare token",
			status: "FAIL",
			want:   []string{"rate limiting", "429", "1,200 requests per 5 minutes"},
			not:    []string{"does not accept"},
		},
		{
			name:   "Cloudflare refuses the header",
			setup:  func(t *testing.T, f *checkFakes) { f.cf.ScriptVerify(headerFormat, headerFormat) },
			what:   "Cloudflare token",
			status: "FAIL",
			want:   []string{"does not accept CLOUDFLARE_API_TOKEN", "[6003] Invalid request headers", "as an account-owned token"},
		},
		{
			name: "organization route missing",
			setup: func(t *testing.T, f *checkFakes) {
				f.cf.ScriptOrganization(cftest.Fail(404, 7000, "No route for that URI"))
			},
			what:   "Cloudflare account " + cftest.DefaultAccountID,
			status: "FAIL",
			want:   []string{"404", "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_BASE_URL"},
			not:    []string{"permission"},
		},
		{
			name: "organization server error",
			setup: func(t *testing.T, f *checkFakes) {
				f.cf.ScriptOrganization(cftest.Fail(502, 10001, "Bad gateway"), cftest.Fail(502, 10001, "Bad gateway"))
			},
			what:   "Cloudflare account " + cftest.DefaultAccountID,
			status: "FAIL",
			want:   []string{"server error", "502"},
			not:    []string{"permission", "no such account"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newCheckFakes(t)
			tc.setup(t, f)
			r := f.run(t)
			r.want(t, tc.what, tc.status, tc.want...)
			r.wantNot(t, tc.what, tc.not...)
			for what, status := range tc.thenStatus {
				r.want(t, what, status)
			}
		})
	}
}

func TestCheckTokenDates(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	for _, tc := range []struct {
		name                 string
		expiresOn, notBefore time.Duration // from now; 0 for none
		status               string
		want                 []string
	}{
		{"expires in 3 days", 3*day + time.Hour, 0, "WARN", []string{"active", "expires on ", "in 3 days", "every revocation fails", "CLOUDFLARE_API_TOKEN"}},
		{"expires in 13 days", 13*day + time.Hour, -day, "WARN", []string{"in 13 days"}},
		{"expires in 60 days", 60 * day, -day, "ok", []string{"active", "expires on "}},
		{"never expires", 0, 0, "ok", []string{"does not expire"}},
		{"not yet valid", 60 * day, 2 * day, "FAIL", []string{"not valid before", "refuses it until then"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newCheckFakes(t)
			var expires, notBefore time.Time
			if tc.expiresOn != 0 {
				expires = time.Now().Add(tc.expiresOn)
			}
			if tc.notBefore != 0 {
				notBefore = time.Now().Add(tc.notBefore)
			}
			f.cf.ScriptVerify(cftest.VerifyResult("active", expires, notBefore))
			r := f.run(t)
			r.want(t, "Cloudflare token", tc.status, tc.want...)
			if failed := tc.status == "FAIL"; failed != (r.err != nil) {
				t.Errorf("check returned %v; want an error: %t", r.err, failed)
			}
		})
	}
}

// TestCheckPeople covers what users.info says of the people listed: whom the
// bot would refuse, whether it shows emails, and whether enough approvers are
// left for REVOKEBOT_REQUIRED_APPROVALS.
func TestCheckPeople(t *testing.T) {
	t.Parallel()
	const guest, external, gone = "UGUEST", "UEXTERNAL", "UGONE"
	for _, tc := range []struct {
		name  string
		setup func(f *checkFakes)
		// lines are the lines wanted: what, then status and substrings.
		lines map[string][]string
		warns int // how many WARN lines in all (nothing fails)
	}{
		{
			name: "all full members",
			lines: map[string][]string{
				"listed users":     {"ok", "3 people", "2 listed directly", "1 more"},
				"users:read.email": {"ok", "3 of the 3 full members"},
				"approval quorum":  {"ok", "3 approvers are confirmed eligible", "UREQUESTER) never approves their own request"},
			},
		},
		{
			name: "guest approver",
			setup: func(f *checkFakes) {
				f.slack.SetUser(guest, bottest.User{Name: "guest", Email: "guest@partner.example", IsRestricted: true})
				f.env["REVOKEBOT_APPROVERS"] += "," + guest
			},
			lines: map[string][]string{
				"user UGUEST (REVOKEBOT_APPROVERS)": {"WARN", "@guest is a multi-channel guest (is_restricted)", "refuses them although REVOKEBOT_APPROVERS lists them", "no setting changes that"},
				"listed users":                      {"ok", "refuses 1 of those listed directly"},
				"approval quorum":                   {"ok", "not counting 1 approver the bot refuses: UGUEST (guest)"},
			},
			warns: 1,
		},
		{
			name: "single-channel guest requester",
			setup: func(f *checkFakes) {
				f.slack.SetUser(guest, bottest.User{Name: "guest", Email: "guest@partner.example", IsUltraRestricted: true})
				f.env["REVOKEBOT_REQUESTERS"] += "," + guest
			},
			lines: map[string][]string{
				"user UGUEST (REVOKEBOT_REQUESTERS)": {"WARN", "single-channel guest (is_ultra_restricted)", "remove them from REVOKEBOT_REQUESTERS"},
			},
			warns: 1,
		},
		{
			name: "external approver and requester",
			setup: func(f *checkFakes) {
				f.slack.SetUser(external, bottest.User{Name: "extern", Email: "extern@other.example", TeamID: "TOTHERORG"})
				f.env["REVOKEBOT_REQUESTERS"] += "," + external
				f.env["REVOKEBOT_APPROVERS"] += "," + external
			},
			lines: map[string][]string{
				"user UEXTERNAL (REVOKEBOT_REQUESTERS, REVOKEBOT_APPROVERS)": {"WARN", "another organisation", "team_id TOTHERORG", bottest.DefaultTeamID, "Slack Connect",
					"REVOKEBOT_REQUESTERS and REVOKEBOT_APPROVERS list them", "account in this workspace"},
			},
			warns: 1,
		},
		{
			name: "deactivated approver",
			setup: func(f *checkFakes) {
				f.slack.SetUser(gone, bottest.User{Name: "gone", Email: "gone@corp.example", Deleted: true})
				f.env["REVOKEBOT_APPROVERS"] += "," + gone
			},
			lines: map[string][]string{
				"user UGONE (REVOKEBOT_APPROVERS)": {"WARN", "@gone is deactivated", "remove them from REVOKEBOT_APPROVERS"},
				"approval quorum":                  {"ok", "UGONE (deactivated)"},
			},
			warns: 1,
		},
		{
			name: "bot approver",
			setup: func(f *checkFakes) {
				f.env["REVOKEBOT_APPROVERS"] += "," + bottest.BotUserID
			},
			lines: map[string][]string{
				"user " + bottest.BotUserID + " (REVOKEBOT_APPROVERS)": {"WARN", "is a bot", "bots may neither request nor decide"},
			},
			warns: 1,
		},
		{
			name: "notify",
			setup: func(f *checkFakes) {
				f.slack.SetUser(guest, bottest.User{Name: "guest", IsRestricted: true})
				f.slack.SetUser(gone, bottest.User{Name: "gone", Deleted: true})
				f.env["REVOKEBOT_NOTIFY"] = strings.Join([]string{guest, gone, "UNOBODY", approver, "SAPPROVERS"}, ",")
			},
			lines: map[string][]string{
				"notify": {"ok", "4 users, 1 user group", "gives no permission"},
				"user group SAPPROVERS (approvers and notify)": {"ok"},
				"user UNOBODY (REVOKEBOT_NOTIFY)":              {"WARN", "user_not_found", "notifies nobody"},
				"user UGONE (REVOKEBOT_NOTIFY)":                {"WARN", "deactivated", "notifies nobody"},
				"listed users":                                 {"ok", "6 people", "5 listed directly"},
			},
			// A guest may be mentioned: no line about UGUEST.
			warns: 2,
		},
		{
			name: "no emails",
			setup: func(f *checkFakes) {
				for _, id := range []string{requester, approver, groupie} {
					f.slack.SetUser(id, bottest.User{Name: strings.ToLower(id)})
				}
			},
			lines: map[string][]string{
				"users:read.email": {"WARN", "no email address for any of the 3 full members", "users:read.email", "/revoke @user", "reinstall"},
			},
			warns: 1,
		},
		{
			name: "one without email",
			setup: func(f *checkFakes) {
				f.slack.SetUser(groupie, bottest.User{Name: "groupie"})
			},
			lines: map[string][]string{
				"users:read.email": {"ok", "2 of the 3 full members"},
			},
		},
		{
			name: "quorum unreachable",
			setup: func(f *checkFakes) {
				f.slack.SetUser(guest, bottest.User{Name: "guest", Email: "guest@partner.example", IsRestricted: true})
				f.slack.SetGroup("SAPPROVERS", guest)
				f.env["REVOKEBOT_APPROVERS"] = approver + ",SAPPROVERS"
				f.env["REVOKEBOT_REQUIRED_APPROVALS"] = "2"
			},
			lines: map[string][]string{
				"approvers":       {"ok", "2 approvals"},
				"approval quorum": {"WARN", "no request could ever be approved", "REVOKEBOT_REQUIRED_APPROVALS is 2", "1 approver is confirmed eligible (UAPPROVER)", "UGUEST (guest)", "lower REVOKEBOT_REQUIRED_APPROVALS"},
			},
			warns: 1,
		},
		{
			name: "quorum unreachable for a requester who approves",
			setup: func(f *checkFakes) {
				f.env["REVOKEBOT_REQUIRED_APPROVALS"] = "3"
			},
			lines: map[string][]string{
				"approval quorum": {"WARN", "requests by UREQUESTER could never be approved", "nobody approves their own request", "only 2 others", "3 approvers are confirmed eligible", "remove those requesters from REVOKEBOT_REQUESTERS"},
			},
			warns: 1,
		},
		{
			name: "quorum reached only by escalation",
			setup: func(f *checkFakes) {
				f.slack.SetUser("UESCALATOR", bottest.User{Name: "escalator", Email: "escalator@corp.example"})
				f.env["REVOKEBOT_APPROVERS"] = approver + ",SAPPROVERS"
				f.slack.SetGroup("SAPPROVERS")
				f.env["REVOKEBOT_REQUIRED_APPROVALS"] = "2"
				f.env["REVOKEBOT_ESCALATE_AFTER"] = "10m"
				f.env["REVOKEBOT_ESCALATION_APPROVERS"] = "UESCALATOR"
			},
			lines: map[string][]string{
				"escalation approvers": {"ok", "1 user", "10m0s"},
				"approval quorum":      {"WARN", "no request can be approved before it is escalated", "after REVOKEBOT_ESCALATE_AFTER, 10m0s"},
			},
			warns: 2, // and the empty group
		},
		{
			name: "capped",
			setup: func(f *checkFakes) {
				var ids []string
				for i := range maxUserLookups {
					id := fmt.Sprintf("UMANY%03d", i)
					f.slack.SetUser(id, bottest.User{Name: strings.ToLower(id), Email: id + "@corp.example"})
					ids = append(ids, id)
				}
				// The approvers come after the cap.
				f.env["REVOKEBOT_REQUESTERS"] = strings.Join(ids, ",")
				f.env["REVOKEBOT_APPROVERS"] = approver + ",SAPPROVERS"
			},
			lines: map[string][]string{
				"listed users":    {"ok", "looked up 50 people", "at most 50 people, so 2 more (1 of them listed directly) are not checked"},
				"approval quorum": {"skip", "not proven", "no approver is confirmed eligible", "2 approvers could not be looked up"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newCheckFakes(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			r := f.run(t)
			if r.err != nil {
				t.Errorf("check failed: %v", r.err)
			}
			for what, want := range tc.lines {
				r.want(t, what, want[0], want[1:]...)
			}
			if n := r.statuses(); n["WARN"] != tc.warns || n["FAIL"] != 0 {
				t.Errorf("statuses %v, want %d WARN and no FAIL", n, tc.warns)
			}
			if strings.Contains(r.out, "user "+guest+" (REVOKEBOT_NOTIFY)") {
				t.Errorf("a guest who is only mentioned is reported")
			}
		})
	}
}

// check tests a PostgreSQL database: reachable and migrated, with its
// schema version; an unreachable one fails, naming the server and never
// the password.
func TestCheckPostgres(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t)
	f := newCheckFakes(t)
	f.env["REVOKEBOT_DATABASE"] = schema
	r := f.run(t)
	if r.err != nil {
		t.Fatalf("check failed: %v\n%s", r.err, r.out)
	}
	r.want(t, "database", "ok", databaseLabel(schema), "PostgreSQL reachable and migrated (schema version 3)")

	addr := freeAddr(t)
	f.env["REVOKEBOT_DATABASE"] = "postgres://revokebot:s3cret-pw@" + addr + "/revokebot?sslmode=disable"
	r = f.run(t)
	if r.err == nil {
		t.Fatal("check passed without its database")
	}
	r.want(t, "database", "FAIL", addr, "the database cannot be reached", "REVOKEBOT_DATABASE")
	if strings.Contains(r.out, "s3cret-pw") {
		t.Errorf("the password shows:\n%s", r.out)
	}
}

// check says, per feature that reads what Cloudflare knows of a person,
// whether the token may: a token without "Access: Audit Logs Read" gets a
// warning per feature, naming the permission, and the check still passes;
// in zone mode the features are off, and check says so.
func TestCheckContainmentPermissions(t *testing.T) {
	t.Parallel()
	f := newCheckFakes(t)
	f.cf.DenyRead()
	r := f.run(t)
	if r.err != nil {
		t.Fatalf("check failed: %v\n%s", r.err, r.out)
	}
	r.want(t, "Cloudflare preview and verification", "WARN", "missing permission", "the token cannot read Access users", `"Access: Audit Logs Read"`)
	r.want(t, "Cloudflare return watch", "WARN", "missing permission", "the token cannot read Access logs")

	z := newCheckFakes(t, cftest.WithZoneID("zone-test"))
	r = z.run(t)
	r.want(t, "Cloudflare preview and verification", "skip", "off in zone mode")
	r.want(t, "Cloudflare return watch", "skip", "off in zone mode")
}
