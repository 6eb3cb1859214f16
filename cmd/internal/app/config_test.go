package app

import (
	"bytes"
	"context"
	"github.com/revokebot/revokebot/cloudflare"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		c.HTTPAddr != "" || c.MaxPending != 5 || c.Cloudflare.RateLimit != cloudflare.DefaultRateLimit {
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
	c, err := loadConfig(getter(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.SlackAPIURL != "http://127.0.0.1:9/api/" || c.Cloudflare.ZoneID != "zone1" || c.RequestTTL != 90*time.Minute ||
		!c.DryRun || c.ApprovalChannel != "G0PRIVATE" || c.HTTPAddr != ":8080" || c.MaxPending != 12 ||
		c.Cloudflare.RateLimit != (cloudflare.RateLimit{Requests: 600, Per: 5 * time.Minute}) {
		t.Fatalf("overrides: %+v", c)
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
