package app

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/joho/godotenv"
	"github.com/revokebot/revokebot/cloudflare"
	"github.com/slack-go/slack"
)

func validEnv() map[string]string {
	return map[string]string{
		"SLACK_APP_TOKEN":         "xapp-1-secret-app",
		"SLACK_BOT_TOKEN":         "xoxb-secret-bot",
		"CLOUDFLARE_API_TOKEN":    "cf-secret-token",
		"CLOUDFLARE_ACCOUNT_ID":   "0123456789abcdef0123456789abcdef",
		"REVOKEBOT_AUDIT_CHANNEL": "CAUDIT1",
		"REVOKEBOT_REQUESTERS":    "U01REQ, W02ENT,S03GROUP",
		"REVOKEBOT_APPROVERS":     "U04APP",
	}
}

func getter(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(getter(validEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if c.SlackAPIURL != "https://slack.com/api/" || c.Cloudflare.BaseURL != "https://api.cloudflare.com/client/v4" ||
		c.RequestTTL != 30*time.Minute || c.Database != "revokebot.db" || c.DryRun || c.LogFormat != "json" ||
		c.HTTPAddr != "" || c.MaxPending != 5 || c.Cloudflare.RateLimit != cloudflare.DefaultRateLimit ||
		c.MaxTargets != 50 || c.RequiredApprovals != 1 || !c.Notify.Empty() || c.EscalateAfter != 0 || !c.EscalationApprovers.Empty() {
		t.Fatalf("defaults: %+v", c)
	}
	if got := c.Policy.Requesters; len(got.Users) != 2 || got.Users[1] != "W02ENT" || len(got.Groups) != 1 || got.Groups[0] != "S03GROUP" {
		t.Fatalf("requesters %+v", got)
	}
}

func TestLoadConfigOverrides(t *testing.T) {
	t.Parallel()
	env := validEnv()
	env["SLACK_API_URL"] = "http://127.0.0.1:9/api"
	env["CLOUDFLARE_ACCOUNT_ID"] = ""
	env["CLOUDFLARE_ZONE_ID"] = "zone1"
	env["REVOKEBOT_REQUEST_TTL"] = "1h30m"
	env["REVOKEBOT_DRY_RUN"] = "true"
	env["REVOKEBOT_APPROVAL_CHANNEL"] = "G0PRIVATE"
	env["REVOKEBOT_HTTP_ADDR"] = " :8080 "
	env["REVOKEBOT_MAX_PENDING_PER_REQUESTER"] = "12"
	env["CLOUDFLARE_RATE_LIMIT"] = "600 / 5m"
	env["REVOKEBOT_MAX_TARGETS"] = "500"
	env["REVOKEBOT_APPROVERS"] = "U04APP,W05APP"
	env["REVOKEBOT_REQUIRED_APPROVALS"] = "2"
	env["REVOKEBOT_NOTIFY"] = "U06ONCALL, S07SECOPS"
	env["REVOKEBOT_ESCALATE_AFTER"] = "1h"
	env["REVOKEBOT_ESCALATION_APPROVERS"] = "S08LEADS,U09CISO"
	c, err := loadConfig(getter(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.SlackAPIURL != "http://127.0.0.1:9/api/" || c.Cloudflare.ZoneID != "zone1" || c.RequestTTL != 90*time.Minute ||
		!c.DryRun || c.ApprovalChannel != "G0PRIVATE" || c.HTTPAddr != ":8080" || c.MaxPending != 12 ||
		c.Cloudflare.RateLimit != (cloudflare.RateLimit{Requests: 600, Per: 5 * time.Minute}) ||
		c.MaxTargets != 500 || c.RequiredApprovals != 2 || c.EscalateAfter != time.Hour {
		t.Fatalf("overrides: %+v", c)
	}
	if !slices.Equal(c.Notify.Users, []string{"U06ONCALL"}) || !slices.Equal(c.Notify.Groups, []string{"S07SECOPS"}) {
		t.Errorf("notify %+v", c.Notify)
	}
	if !slices.Equal(c.EscalationApprovers.Users, []string{"U09CISO"}) || !slices.Equal(c.EscalationApprovers.Groups, []string{"S08LEADS"}) {
		t.Errorf("escalation approvers %+v", c.EscalationApprovers)
	}
	env["CLOUDFLARE_API_TOKEN"] = ""
	env["CLOUDFLARE_EMAIL"], env["CLOUDFLARE_API_KEY"] = "ops@example.com", "legacy-key"
	if c, err := loadConfig(getter(env)); err != nil || c.Cloudflare.APIKey != "legacy-key" {
		t.Fatalf("legacy key: %v", err)
	}
}

func TestLoadConfigReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(getter(map[string]string{}))
	if err == nil {
		t.Fatal("empty environment accepted")
	}
	for _, name := range []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID",
		"REVOKEBOT_AUDIT_CHANNEL", "REVOKEBOT_REQUESTERS", "REVOKEBOT_APPROVERS"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

func TestLoadConfigBadValues(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, value, want string }{
		{"SLACK_APP_TOKEN", "xoxb-wrong-kind-secret", "SLACK_APP_TOKEN: does not start with \"xapp-\""},
		{"SLACK_BOT_TOKEN", "xapp-wrong-kind-secret", "SLACK_BOT_TOKEN: does not start with \"xoxb-\""},
		{"SLACK_API_URL", "slack.com/api", "SLACK_API_URL:"},
		{"CLOUDFLARE_BASE_URL", "ftp://x", "CLOUDFLARE_BASE_URL:"},
		{"CLOUDFLARE_ZONE_ID", "zone1", "not both"},
		{"CLOUDFLARE_EMAIL", "ops@example.com", "not both"},
		{"CLOUDFLARE_ACCOUNT_ID", "a/b", "CLOUDFLARE_ACCOUNT_ID:"},
		{"REVOKEBOT_AUDIT_CHANNEL", "#audit", "REVOKEBOT_AUDIT_CHANNEL: \"#audit\" is not a channel ID"},
		{"REVOKEBOT_APPROVAL_CHANNEL", "approvals", "REVOKEBOT_APPROVAL_CHANNEL:"},
		{"REVOKEBOT_REQUESTERS", "U01REQ,@alice", "REVOKEBOT_REQUESTERS: \"@alice\""},
		{"REVOKEBOT_APPROVERS", " , ", "REVOKEBOT_APPROVERS:"},
		{"REVOKEBOT_REQUEST_TTL", "30", "REVOKEBOT_REQUEST_TTL:"},
		{"REVOKEBOT_REQUEST_TTL", "500ms", "out of range"},
		{"REVOKEBOT_REQUEST_TTL", "200h", "out of range"},
		{"REVOKEBOT_DRY_RUN", "maybe", "REVOKEBOT_DRY_RUN:"},
		{"REVOKEBOT_LOG_LEVEL", "loud", "REVOKEBOT_LOG_LEVEL:"},
		{"REVOKEBOT_LOG_FORMAT", "xml", "REVOKEBOT_LOG_FORMAT:"},
		{"REVOKEBOT_HTTP_ADDR", "8080", "REVOKEBOT_HTTP_ADDR: \"8080\" is not host:port"},
		{"REVOKEBOT_HTTP_ADDR", "http://127.0.0.1:8080", "REVOKEBOT_HTTP_ADDR:"},
		{"REVOKEBOT_HTTP_ADDR", ":http", "REVOKEBOT_HTTP_ADDR: \":http\": the port must be a number"},
		{"REVOKEBOT_HTTP_ADDR", ":0", "REVOKEBOT_HTTP_ADDR:"},
		{"REVOKEBOT_HTTP_ADDR", "127.0.0.1:65536", "REVOKEBOT_HTTP_ADDR:"},
		{"REVOKEBOT_MAX_PENDING_PER_REQUESTER", "0", "REVOKEBOT_MAX_PENDING_PER_REQUESTER: \"0\" is not a number from 1 to 1000"},
		{"REVOKEBOT_MAX_PENDING_PER_REQUESTER", "many", "REVOKEBOT_MAX_PENDING_PER_REQUESTER:"},
		{"CLOUDFLARE_RATE_LIMIT", "1200", "CLOUDFLARE_RATE_LIMIT: \"1200\" is not requests/period"},
		{"CLOUDFLARE_RATE_LIMIT", "0/5m", "CLOUDFLARE_RATE_LIMIT:"},
		{"CLOUDFLARE_RATE_LIMIT", "1200/5", "CLOUDFLARE_RATE_LIMIT: \"1200/5\" has a period"},
		{"CLOUDFLARE_RATE_LIMIT", "1200/2h", "CLOUDFLARE_RATE_LIMIT:"},
		{"REVOKEBOT_MAX_TARGETS", "0", "REVOKEBOT_MAX_TARGETS: \"0\" is not a number from 1 to 500"},
		{"REVOKEBOT_MAX_TARGETS", "501", "REVOKEBOT_MAX_TARGETS: \"501\" is not a number from 1 to 500"},
		{"REVOKEBOT_MAX_TARGETS", "-1", "REVOKEBOT_MAX_TARGETS:"},
		{"REVOKEBOT_MAX_TARGETS", "fifty", "REVOKEBOT_MAX_TARGETS: \"fifty\" is not a number"},
		{"REVOKEBOT_REQUIRED_APPROVALS", "0", "REVOKEBOT_REQUIRED_APPROVALS: \"0\" is not a number from 1 to 5"},
		{"REVOKEBOT_REQUIRED_APPROVALS", "6", "REVOKEBOT_REQUIRED_APPROVALS: \"6\" is not a number from 1 to 5"},
		{"REVOKEBOT_REQUIRED_APPROVALS", "two", "REVOKEBOT_REQUIRED_APPROVALS:"},
		{"REVOKEBOT_NOTIFY", "U01ONCALL,#secops", "REVOKEBOT_NOTIFY: \"#secops\" is neither a Slack user ID"},
		{"REVOKEBOT_NOTIFY", "C0CHANNEL", "REVOKEBOT_NOTIFY: \"C0CHANNEL\""},
		{"REVOKEBOT_ESCALATE_AFTER", "soon", "REVOKEBOT_ESCALATE_AFTER: \"soon\" is not a duration"},
		{"REVOKEBOT_ESCALATE_AFTER", "600", "REVOKEBOT_ESCALATE_AFTER: \"600\" is not a duration"},
		{"REVOKEBOT_ESCALATE_AFTER", "0", "REVOKEBOT_ESCALATE_AFTER: 0s is out of range"},
		{"REVOKEBOT_ESCALATE_AFTER", "-5m", "REVOKEBOT_ESCALATE_AFTER: -5m0s is out of range"},
		{"REVOKEBOT_ESCALATE_AFTER", "10m", "REVOKEBOT_ESCALATION_APPROVERS: is required when REVOKEBOT_ESCALATE_AFTER is set"},
		{"REVOKEBOT_ESCALATION_APPROVERS", "U09CISO", "REVOKEBOT_ESCALATION_APPROVERS: is set, but REVOKEBOT_ESCALATE_AFTER is not"},
		{"REVOKEBOT_ESCALATION_APPROVERS", "ciso@example.com", "REVOKEBOT_ESCALATION_APPROVERS: \"ciso@example.com\" is neither"},
		{"REVOKEBOT_DATABASE", "mysql://revokebot:secret@db/revokebot", "REVOKEBOT_DATABASE: a mysql:// URL: a URL must start with postgres://"},
		{"REVOKEBOT_DATABASE", "postgres://revokebot:secret%zz@db/revokebot", "REVOKEBOT_DATABASE: the PostgreSQL URL does not parse"},
		{"REVOKEBOT_DATABASE", "host=db user=revokebot password=secret dbname=revokebot", "REVOKEBOT_DATABASE: looks like a libpq keyword/value string"},
		{"REVOKEBOT_DATABASE", "postgres://revokebot:p@ss/wo@rd-secret@db/revokebot", "REVOKEBOT_DATABASE: the PostgreSQL URL does not parse"},
		{"REVOKEBOT_LEASE_TTL", "soon", "REVOKEBOT_LEASE_TTL: \"soon\" is not a duration"},
		{"REVOKEBOT_LEASE_TTL", "500ms", "REVOKEBOT_LEASE_TTL: 500ms is out of range"},
		{"REVOKEBOT_LEASE_TTL", "10m", "REVOKEBOT_LEASE_TTL: 10m0s is out of range"},
		{"REVOKEBOT_REPLICA", "pod one", "REVOKEBOT_REPLICA: \"pod one\" is not a name"},
		{"REVOKEBOT_AUDIT_VERIFY_EVERY", "daily", "REVOKEBOT_AUDIT_VERIFY_EVERY: \"daily\" is not a duration"},
		{"REVOKEBOT_AUDIT_VERIFY_EVERY", "500ms", "REVOKEBOT_AUDIT_VERIFY_EVERY: 500ms is out of range"},
	} {
		env := validEnv()
		env[tt.name] = tt.value
		_, err := loadConfig(getter(env))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s=%q: err = %v, want it to contain %q", tt.name, tt.value, err, tt.want)
			continue
		}
		for _, secret := range []string{"secret", "legacy-key"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s=%q: error shows a secret: %v", tt.name, tt.value, err)
			}
		}
	}
}

// The settings checked against one another: enough approvers for the
// approvals required, and escalation before a request expires, with someone
// to escalate to.
func TestLoadConfigApprovalsAndEscalation(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  map[string]string
		want string // in the error; empty: accepted
	}{
		{map[string]string{"REVOKEBOT_REQUIRED_APPROVALS": "2", "REVOKEBOT_APPROVERS": "U01A,W02B"}, ""},
		{map[string]string{"REVOKEBOT_REQUIRED_APPROVALS": "5", "REVOKEBOT_APPROVERS": "U01A,S02GROUP"}, ""}, // a group's size is known only later
		{map[string]string{"REVOKEBOT_REQUIRED_APPROVALS": "3", "REVOKEBOT_APPROVERS": "U01A,U02B"},
			"REVOKEBOT_REQUIRED_APPROVALS: is 3, but REVOKEBOT_APPROVERS lists only 2 distinct user(s) and no user group"},
		{map[string]string{"REVOKEBOT_REQUIRED_APPROVALS": "2", "REVOKEBOT_APPROVERS": "U01A, U01A"},
			"REVOKEBOT_REQUIRED_APPROVALS: is 2, but REVOKEBOT_APPROVERS lists only 1 distinct user(s)"},
		{map[string]string{"REVOKEBOT_REQUIRED_APPROVALS": "2"}, "lower REVOKEBOT_REQUIRED_APPROVALS"}, // validEnv's one approver
		// A bad approvers list is reported as such, not also as too short.
		{map[string]string{"REVOKEBOT_REQUIRED_APPROVALS": "2", "REVOKEBOT_APPROVERS": "U01A,@bob"}, "REVOKEBOT_APPROVERS: \"@bob\""},

		{map[string]string{"REVOKEBOT_ESCALATE_AFTER": "10m", "REVOKEBOT_ESCALATION_APPROVERS": "S08LEADS"}, ""},
		{map[string]string{"REVOKEBOT_ESCALATE_AFTER": "59m", "REVOKEBOT_REQUEST_TTL": "1h", "REVOKEBOT_ESCALATION_APPROVERS": "U09CISO"}, ""},
		{map[string]string{"REVOKEBOT_ESCALATE_AFTER": "30m", "REVOKEBOT_ESCALATION_APPROVERS": "U09CISO"},
			"REVOKEBOT_ESCALATE_AFTER: 30m0s is not shorter than REVOKEBOT_REQUEST_TTL (30m0s)"}, // the default TTL
		{map[string]string{"REVOKEBOT_ESCALATE_AFTER": "2h", "REVOKEBOT_REQUEST_TTL": "1h", "REVOKEBOT_ESCALATION_APPROVERS": "U09CISO"},
			"REVOKEBOT_ESCALATE_AFTER: 2h0m0s is not shorter than REVOKEBOT_REQUEST_TTL (1h0m0s)"},
		{map[string]string{"REVOKEBOT_ESCALATE_AFTER": "0s", "REVOKEBOT_ESCALATION_APPROVERS": "U09CISO"},
			"REVOKEBOT_ESCALATE_AFTER: 0s is out of range: more than 0 and shorter than REVOKEBOT_REQUEST_TTL"},
		{map[string]string{"REVOKEBOT_ESCALATE_AFTER": "10m", "REVOKEBOT_ESCALATION_APPROVERS": " , "},
			"REVOKEBOT_ESCALATION_APPROVERS: is required when REVOKEBOT_ESCALATE_AFTER is set"},
		{map[string]string{"REVOKEBOT_ESCALATION_APPROVERS": "S08LEADS", "REVOKEBOT_ESCALATE_AFTER": " "},
			"REVOKEBOT_ESCALATION_APPROVERS: is set, but REVOKEBOT_ESCALATE_AFTER is not"},
	} {
		env := validEnv()
		maps.Copy(env, tt.env)
		c, err := loadConfig(getter(env))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v: %v", tt.env, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: err = %v, want it to contain %q", tt.env, err, tt.want)
		case tt.want != "" && strings.Count(err.Error(), "\n") > 0:
			t.Errorf("%v: more than one problem reported:\n%v", tt.env, err)
		case tt.want == "" && tt.env["REVOKEBOT_ESCALATE_AFTER"] != "" && (c.EscalateAfter == 0 || c.EscalationApprovers.Empty()):
			t.Errorf("%v: escalation not set: %+v", tt.env, c)
		}
	}

	// A bad REVOKEBOT_REQUEST_TTL is reported alone: it says nothing of
	// REVOKEBOT_ESCALATE_AFTER.
	env := validEnv()
	maps.Copy(env, map[string]string{"REVOKEBOT_REQUEST_TTL": "forever", "REVOKEBOT_ESCALATE_AFTER": "2h", "REVOKEBOT_ESCALATION_APPROVERS": "U09CISO"})
	_, err := loadConfig(getter(env))
	if err == nil || !strings.Contains(err.Error(), "REVOKEBOT_REQUEST_TTL:") || strings.Contains(err.Error(), "REVOKEBOT_ESCALATE_AFTER:") {
		t.Errorf("bad TTL with escalation: %v", err)
	}
}

func TestRunCommands(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"help"}, getter(nil), &out, &out); err != nil || !strings.Contains(out.String(), "Usage:") {
		t.Fatalf("help: %v, %q", err, out.String())
	}
	out.Reset()
	if err := Run(context.Background(), []string{"version"}, getter(nil), &out, &out); err != nil || !strings.HasPrefix(out.String(), "revokebot ") {
		t.Fatalf("version: %v, %q", err, out.String())
	}
	if err := Run(context.Background(), []string{"frobnicate"}, getter(nil), &out, &out); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestRunWithoutConfigNamesMissingVariables(t *testing.T) {
	t.Parallel()
	env := validEnv()
	delete(env, "SLACK_BOT_TOKEN")
	delete(env, "REVOKEBOT_APPROVERS")
	var out bytes.Buffer
	err := Run(context.Background(), nil, getter(env), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "SLACK_BOT_TOKEN") || !strings.Contains(err.Error(), "REVOKEBOT_APPROVERS") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(out.String(), "secret") {
		t.Fatal("a secret was printed")
	}
}

func TestDotEnv(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(path, []byte("SLACK_BOT_TOKEN=xoxb-from-file\nREVOKEBOT_DRY_RUN=true\n"), 0o600)
	get, err := withDotEnv(getter(map[string]string{"REVOKEBOT_DRY_RUN": "false"}), path)
	if err != nil {
		t.Fatal(err)
	}
	if get("SLACK_BOT_TOKEN") != "xoxb-from-file" || get("REVOKEBOT_DRY_RUN") != "false" {
		t.Fatalf("file value %q, environment value %q (the environment must win)", get("SLACK_BOT_TOKEN"), get("REVOKEBOT_DRY_RUN"))
	}
	if _, err := withDotEnv(getter(nil), filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Fatalf("missing .env: %v", err)
	}
	for _, content := range []string{
		"SLACK_BOT_TOKEN=\"xoxb-very-secret\n",                  // unterminated quote
		"NOT VALID LINE\nCLOUDFLARE_API_TOKEN=cf-very-secret\n", // a bad line before a secret
	} {
		bad := filepath.Join(t.TempDir(), ".env")
		os.WriteFile(bad, []byte(content), 0o600)
		_, err := withDotEnv(getter(nil), bad)
		if err == nil {
			t.Fatalf("malformed .env %q accepted", content)
		}
		if strings.Contains(err.Error(), "very-secret") {
			t.Fatalf("error shows the file's secrets: %v", err)
		}
	}
}

func TestFatalSlackAuthExits(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.stop()
	h.env["SLACK_APP_TOKEN"] = "xapp-revoked"
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), nil, getter(h.env), &bytes.Buffer{}, &bytes.Buffer{}) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "invalid_auth") || !strings.Contains(err.Error(), "SLACK_APP_TOKEN") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "xapp-revoked") {
			t.Fatal("error shows the token")
		}
	case <-time.After(wait):
		t.Fatal("revokebot kept running with a rejected app token")
	}
}

func TestLoadConfigRejectsPlaceholdersAndOddValues(t *testing.T) {
	t.Parallel()
	env := validEnv()
	env["SLACK_APP_TOKEN"] = "xapp-REPLACE-ME"
	env["CLOUDFLARE_ACCOUNT_ID"] = "REPLACE-ME"
	env["CLOUDFLARE_BASE_URL"] = "https://api.example.com/client/v4?x=1"
	env["SLACK_API_URL"] = "https://user:pw@slack.com/api/"
	env["REVOKEBOT_AUDIT_CHANNEL"] = "D0DIRECT"
	env["REVOKEBOT_DATABASE"] = "data?.db"
	_, err := loadConfig(getter(env))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"SLACK_APP_TOKEN: still holds the placeholder",
		"CLOUDFLARE_ACCOUNT_ID: still holds the placeholder",
		"CLOUDFLARE_BASE_URL:", "SLACK_API_URL:", "REVOKEBOT_AUDIT_CHANNEL:", "REVOKEBOT_DATABASE:",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "SLACK_APP_TOKEN:"); n != 1 {
		t.Errorf("SLACK_APP_TOKEN reported %d times:\n%s", n, msg)
	}
	if strings.Contains(msg, "pw@") {
		t.Errorf("error shows URL credentials:\n%s", msg)
	}
}

func TestRejectedBotTokenExits(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.stop()
	h.env["SLACK_BOT_TOKEN"] = "xoxb-revoked"
	err := Run(context.Background(), nil, getter(h.env), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "invalid_auth") || !strings.Contains(err.Error(), "SLACK_BOT_TOKEN") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "xoxb-revoked") {
		t.Fatal("error shows the token")
	}
}

func TestLoadConfigRefusesPlainHTTPToAnotherHost(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value string
		ok    bool
	}{
		{"https://slack.example.com/api/", true},
		{"http://127.0.0.1:9/api/", true},
		{"http://127.9.8.7:9/api/", true},
		{"http://[::1]:9/api/", true},
		{"http://localhost:9/api/", true},
		{"HTTP://LocalHost/api/", true},
		{"http://slack.com/api/", false},
		{"http://10.0.0.5:8080/api/", false},
		{"http://0.0.0.0:8080/api/", false},
		{"http://[::2]:8080/api/", false},
		{"http://localhost.example.com/api/", false},
		{"http://127.0.0.1.example.com/api/", false},
	} {
		for _, name := range []string{"SLACK_API_URL", "CLOUDFLARE_BASE_URL"} {
			env := validEnv()
			env[name] = tt.value
			_, err := loadConfig(getter(env))
			switch {
			case tt.ok && err != nil:
				t.Errorf("%s=%s: %v", name, tt.value, err)
			case !tt.ok && err == nil:
				t.Errorf("%s=%s accepted", name, tt.value)
			case !tt.ok:
				// The error names the variable and says how to fix it.
				msg := err.Error()
				for _, want := range []string{name + ": uses plain http:// to ", "use https://", "127.0.0.1, ::1 or localhost"} {
					if !strings.Contains(msg, want) {
						t.Errorf("%s=%s: error lacks %q: %s", name, tt.value, want, msg)
					}
				}
			}
		}
	}
}

// redirector is a Slack API that answers every call with a 307 to another
// server, which records whatever reaches it.
type redirector struct {
	first, second *httptest.Server
	mu            sync.Mutex
	reached       []string // what reached the second server: method and path
}

func newRedirector(t *testing.T) *redirector {
	t.Helper()
	r := &redirector{}
	r.second = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		what := req.Method + " " + req.URL.Path
		if strings.Contains(string(body), "token=") || req.Header.Get("Authorization") != "" {
			what += ", carrying the token"
		}
		r.mu.Lock()
		r.reached = append(r.reached, what)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"team_id":"TSTOLEN","user_id":"USTOLEN","channel":"C1","ts":"1.2"}`)
	}))
	t.Cleanup(r.second.Close)
	r.first = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, r.second.URL+req.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(r.first.Close)
	return r
}

func (r *redirector) checkNothingReached(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reached) > 0 {
		t.Errorf("a redirect was followed; the other server got:\n%s", strings.Join(r.reached, "\n"))
	}
}

// slack-go posts the token in the form body; a followed 307 would post it
// again to the server the redirect names.
func TestSlackHTTPClientFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	r := newRedirector(t)
	api := slack.New("xoxb-secret-bot", slack.OptionAPIURL(r.first.URL+"/api/"), slack.OptionHTTPClient(slackHTTPClient(wait)))
	_, _, err := api.PostMessageContext(context.Background(), "C1", slack.MsgOptionText("hello", false))
	if err == nil || !strings.Contains(err.Error(), "redirect") || !strings.Contains(err.Error(), "SLACK_API_URL") {
		t.Errorf("chat.postMessage: err = %v, want a refused redirect naming SLACK_API_URL", err)
	}
	if err != nil && strings.Contains(err.Error(), "secret") {
		t.Errorf("the error shows the token: %v", err)
	}
	r.checkNothingReached(t)
}

// The bot's own Slack client (serve's auth.test, its first call) follows no
// redirect either.
func TestServeFollowsNoSlackRedirect(t *testing.T) {
	t.Parallel()
	r := newRedirector(t)
	env := validEnv()
	env["SLACK_API_URL"] = r.first.URL + "/api/"
	env["CLOUDFLARE_BASE_URL"] = r.first.URL + "/client/v4" // never reached: auth.test fails first
	env["REVOKEBOT_DATABASE"] = filepath.Join(t.TempDir(), "revokebot.db")
	err := Run(context.Background(), nil, getter(env), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "slack auth.test") || !strings.Contains(err.Error(), "redirect") {
		t.Fatalf("Run = %v, want auth.test to fail on the redirect", err)
	}
	r.checkNothingReached(t)
}

// identities are the variables whose value names something of the operator's:
// a secret, an account, a channel, people. In .env.example each holds a
// placeholder, commented out or not, so that no example can pass for a real
// value.
var identities = map[string]bool{
	"SLACK_APP_TOKEN": true, "SLACK_BOT_TOKEN": true,
	"CLOUDFLARE_API_TOKEN": true, "CLOUDFLARE_EMAIL": true, "CLOUDFLARE_API_KEY": true,
	"CLOUDFLARE_ACCOUNT_ID": true, "CLOUDFLARE_ZONE_ID": true,
	"REVOKEBOT_AUDIT_CHANNEL": true, "REVOKEBOT_APPROVAL_CHANNEL": true,
	"REVOKEBOT_REQUESTERS": true, "REVOKEBOT_APPROVERS": true,
	"REVOKEBOT_NOTIFY": true, "REVOKEBOT_ESCALATION_APPROVERS": true,
}

// exampleNeeds is what a commented-out example needs set with it to be
// valid: the variables that are set both or neither.
var exampleNeeds = map[string]map[string]string{
	"REVOKEBOT_ESCALATE_AFTER": {"REVOKEBOT_ESCALATION_APPROVERS": "U09CISO"},
}

func TestEnvExampleFailsUntilEdited(t *testing.T) {
	t.Parallel()
	const path = "../../../.env.example"
	values, err := godotenv.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(values) < 5 {
		t.Fatalf(".env.example sets only %v", values)
	}
	// Copied as is, the file fails, naming every variable it sets.
	_, err = loadConfig(getter(values))
	if err == nil {
		t.Fatal(".env.example passes validation unedited")
	}
	for name := range values {
		if want := name + ": still holds the placeholder from .env.example"; !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	// The commented-out examples: an identity fails the same way when
	// uncommented; any other is a valid setting (mostly the default).
	read := map[string]bool{}
	loadConfig(func(name string) string { read[name] = true; return "" })
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	assignment := regexp.MustCompile(`^#\s*([A-Z][A-Z0-9_]*)=(\S*)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var name, value string
		if m := assignment.FindStringSubmatch(sc.Text()); m != nil {
			name, value = m[1], m[2]
		} else if n, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(sc.Text(), "#") {
			name, value = n, v
		} else {
			continue
		}
		if !read[name] {
			t.Errorf(".env.example sets %s, which revokebot does not read", name)
			continue
		}
		env := validEnv()
		maps.Copy(env, exampleNeeds[name])
		env[name] = value
		_, err := loadConfig(getter(env))
		switch {
		case identities[name] && (err == nil || !strings.Contains(err.Error(), name+": still holds the placeholder")):
			t.Errorf("example %s=%s: err = %v, want a placeholder that fails until edited", name, value, err)
		case !identities[name] && err != nil:
			t.Errorf("example %s=%s is not valid: %v", name, value, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// The image's licence label names the licence in LICENSE. (It belongs with
// TestDeployDockerfile in deploy_test.go.)
func TestDockerfileLicenseLabelMatchesLicense(t *testing.T) {
	t.Parallel()
	license, err := os.ReadFile("../../../LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(license)), " ")
	for _, want := range []string{
		"Apache License Version 2.0, January 2004 http://www.apache.org/licenses/",
		"TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
		"9. Accepting Warranty or Additional Liability.",
		"END OF TERMS AND CONDITIONS",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("LICENSE is not the full Apache-2.0 text: it lacks %q", want)
		}
	}
	dockerfile, err := os.ReadFile("../../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	labels := regexp.MustCompile(`org\.opencontainers\.image\.licenses="([^"]*)"`).FindAllStringSubmatch(string(dockerfile), -1)
	if len(labels) != 1 || labels[0][1] != "Apache-2.0" {
		t.Errorf("Dockerfile licence labels %v, want one: org.opencontainers.image.licenses=\"Apache-2.0\"", labels)
	}
}

// The README's contents list every section, in order, with working links.
// (It sits here, with the .env.example test, as the README's other checks.)
func TestReadmeContents(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var sections []string
	inCode := false
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if h, ok := strings.CutPrefix(line, "## "); ok && !inCode && h != "Contents" {
			sections = append(sections, h)
		}
	}
	_, contents, ok := strings.Cut(string(readme), "\n## Contents\n")
	if !ok {
		t.Fatal(`README.md has no "## Contents"`)
	}
	contents, _, _ = strings.Cut(contents, "\n## ")
	var want strings.Builder
	for _, h := range sections {
		anchor := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				return unicode.ToLower(r)
			}
			return -1
		}, h)
		fmt.Fprintf(&want, "- [%s](#%s)\n", h, anchor)
	}
	if got := strings.TrimSpace(contents); got != strings.TrimSpace(want.String()) {
		t.Errorf("README.md's contents:\n%s\nwant, from its sections:\n%s", got, want.String())
	}
}

// A PostgreSQL URL is taken as it is (libpq parameters and all), and shown
// in logs and reports without its password.
func TestLoadConfigPostgres(t *testing.T) {
	t.Parallel()
	env := validEnv()
	env["REVOKEBOT_DATABASE"] = "postgresql://revokebot:s3cret@db.internal:5432/revokebot?sslmode=verify-full&pool_max_conns=4"
	env["REVOKEBOT_LEASE_TTL"] = "20s"
	env["REVOKEBOT_REPLICA"] = "revokebot-7d9f-abcde"
	c, err := loadConfig(getter(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.Database != env["REVOKEBOT_DATABASE"] || c.LeaseTTL != 20*time.Second || c.Replica != "revokebot-7d9f-abcde" {
		t.Errorf("config %q, %s, %q", c.Database, c.LeaseTTL, c.Replica)
	}
	if got, want := databaseLabel(c.Database), "postgresql://revokebot@db.internal:5432/revokebot"; got != want {
		t.Errorf("label %q, want %q", got, want)
	}
	if d, _ := loadConfig(getter(validEnv())); d.LeaseTTL != 15*time.Second || d.Replica != "" || isPostgres(d.Database) {
		t.Errorf("defaults: lease %s, replica %q, database %q", d.LeaseTTL, d.Replica, d.Database)
	}
}
