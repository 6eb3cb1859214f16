package app

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/bot/bottest"
)

// runAuditVerify runs `revokebot audit verify args…` with env.
func runAuditVerify(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := auditVerify(context.Background(), args, getter(env), &stdout, &stderr)
	t.Logf("audit verify %v (err %v):\n%s%s", args, err, stderr.String(), stdout.String())
	for _, secret := range []string{env["SLACK_BOT_TOKEN"], env["SLACK_APP_TOKEN"], env["CLOUDFLARE_API_TOKEN"]} {
		if strings.Contains(stdout.String()+stderr.String(), secret) {
			t.Errorf("audit verify printed a secret")
		}
	}
	return stdout.String(), err
}

// revokedAndStopped runs revokebot through one approved revocation, then
// stops it, and returns its environment and the request's ID.
func revokedAndStopped(t *testing.T) (*harness, string) {
	t.Helper()
	h := start(t, nil)
	m := h.request(`alice@example.com --reason "laptop stolen"`)
	id := requestID(t, m)
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
	h.waitAudit(id, "requested", "approved", "revoked")
	h.stop()
	return h, id
}

var summaryLine = regexp.MustCompile(`(?m)^verified (\d+) records against (\d+) messages: (.*)$`)

func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	h, id := revokedAndStopped(t)

	out, err := runAuditVerify(t, h.env)
	sm := summaryLine.FindStringSubmatch(out)
	if err != nil || sm == nil || sm[3] != "everything matches" || sm[1] == "0" || strings.Count(out, "\n") != 1 {
		t.Fatalf("clean history: err %v, output:\n%s\nwant one line, everything matching", err, out)
	}
	if out, err := runAuditVerify(t, h.env, "--since", time.Now().UTC().Format(time.DateOnly)); err != nil || !strings.HasSuffix(out, ": everything matches\n") {
		t.Fatalf("--since today: err %v, output:\n%s", err, out)
	}

	// Someone deletes the approved record and posts a look-alike of it.
	var approved bottest.Message
	for _, m := range h.slack.Messages(auditChannel) {
		if strings.HasPrefix(m.Text, "approved request="+id+" ") {
			approved = m
		}
	}
	h.slack.DeleteMessage(auditChannel, approved.TS)
	h.slack.Forge(auditChannel, outsider, strings.Replace(approved.Text, approver, outsider, 1), approved.Metadata)
	record := regexp.MustCompile(`record=(\d+)`).FindStringSubmatch(approved.Text)[1]

	out, err = runAuditVerify(t, h.env)
	if err == nil || !strings.Contains(err.Error(), "2 problems") {
		t.Fatalf("err %v, want 2 problems", err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	at := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`
	want := []*regexp.Regexp{
		regexp.MustCompile(fmt.Sprintf(`^MISSING record %s request %s at %s: the approved record is not in the channel`, record, id, at)),
		regexp.MustCompile(fmt.Sprintf(`^FORGED record %s request %s at %s: a message posted by %s looks like an audit record`, record, id, at, outsider)),
		regexp.MustCompile(`^verified \d+ records against \d+ messages: 2 problems \(1 missing, 1 forged\)$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s\nwant %d lines", out, len(want))
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d: %q, want %s", i+1, lines[i], re)
		}
	}
}

func TestAuditVerifyStoreAltered(t *testing.T) {
	t.Parallel()
	h, id := revokedAndStopped(t)
	alterRevokedDetail(t, h.env["REVOKEBOT_DATABASE"], id)
	out, err := runAuditVerify(t, h.env)
	if err == nil || !regexp.MustCompile(`(?m)^CHAIN record \d+ request `+id+` at .*: the database's event log was altered here`).MatchString(out) ||
		!strings.Contains(out, "1 problem (1 chain)") {
		t.Fatalf("err %v, output:\n%s\nwant one CHAIN line", err, out)
	}
}

// alterRevokedDetail changes the detail of request id's revoked event in
// the database file at path, behind revokebot's back.
func alterRevokedDetail(t *testing.T, path, id string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE events SET detail = 'nothing was revoked' WHERE request_id = ? AND kind = 'revoked'`, id)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%d events changed, want 1", n)
	}
}

func TestAuditVerifyErrors(t *testing.T) {
	t.Parallel()
	h, _ := revokedAndStopped(t)
	for _, tc := range []struct {
		args []string
		env  map[string]string
		fail bottest.Failure
		want string
	}{
		{args: []string{"--since", "yesterday"}, want: `--since "yesterday" is not a date`},
		{args: []string{"now"}, want: `unexpected argument "now"`},
		{env: map[string]string{"REVOKEBOT_DATABASE": filepath.Join(t.TempDir(), "none.db")}, want: "does not exist (audit verify never creates one)"},
		{fail: bottest.Failure{Error: "not_in_channel"}, want: "REVOKEBOT_AUDIT_CHANNEL CAUDIT: the bot is not a member of the channel"},
		{fail: bottest.Failure{Error: "missing_scope"}, want: "channels:history (a public channel) or groups:history (a private one)"},
	} {
		env := map[string]string{}
		for k, v := range h.env {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		if tc.fail.Error != "" {
			h.slack.Fail("conversations.history", tc.fail)
		}
		if _, err := runAuditVerify(t, env, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("audit verify %v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}
