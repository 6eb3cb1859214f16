package bot

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

func TestEscape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"<!channel>":        "&lt;!channel&gt;",
		"a & b":             "a &amp; b",
		"&lt;":              "&amp;lt;",
		"<@U123|boss>":      "&lt;@U123|boss&gt;",
		"plain *bold* text": "plain *bold* text",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func hostileRequest(state approvals.State) approvals.Request {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	return approvals.Request{
		ID:         "6c5a0ea8-0874-4bd8-b76b-385eb2a8907b",
		Revocation: approvals.Revocation{Email: strings.Repeat("a&b", 80) + "@example.com", Devices: true},
		Reason:     "<!channel> <!here> <@U999> <https://evil.example|click> " + strings.Repeat("ü", 400),
		Requester:  "U1",
		State:      state,
		CreatedAt:  now,
		ExpiresAt:  now.Add(30 * time.Minute),
		DecidedBy:  "U2",
		DecidedAt:  now.Add(time.Minute),
		Outcome:    "cloudflare: 403 Forbidden: [10000] <!everyone> " + strings.Repeat("x", 5000),
		FinishedAt: now.Add(2 * time.Minute),
	}
}

// userTextLeaks reports whether any of the hostile strings appear unescaped.
func userTextLeaks(s string) bool {
	for _, bad := range []string{"<!channel>", "<!here>", "<@U999>", "<https://evil", "<!everyone>", "a&b"} {
		if strings.Contains(s, bad) {
			return true
		}
	}
	return false
}

func TestRenderRequestWithinLimitsAndEscaped(t *testing.T) {
	t.Parallel()
	for _, state := range []approvals.State{approvals.StatePending, approvals.StateExecuting, approvals.StateRevoked,
		approvals.StateFailed, approvals.StateDenied, approvals.StateCancelled, approvals.StateExpired} {
		blocks, fallback := renderRequest(hostileRequest(state))
		raw, err := json.Marshal(slack.Blocks{BlockSet: blocks})
		if err != nil {
			t.Fatal(err)
		}
		var decoded any
		json.Unmarshal(raw, &decoded)
		texts := collectTexts(decoded)
		for _, s := range append(texts, fallback) {
			if userTextLeaks(s) {
				t.Errorf("%s: unescaped user text in %q", state, truncate(s, 200))
			}
			if utf8.RuneCountInString(s) > maxSectionText {
				t.Errorf("%s: text of %d characters exceeds Slack's section limit", state, utf8.RuneCountInString(s))
			}
		}
		if len(blocks) > 50 {
			t.Errorf("%s: %d blocks", state, len(blocks))
		}
		hasButtons := strings.Contains(string(raw), ActionApprove)
		if hasButtons != (state == approvals.StatePending) {
			t.Errorf("%s: buttons present = %v", state, hasButtons)
		}
	}
}

func TestConfirmDialogLimits(t *testing.T) {
	t.Parallel()
	raw, _ := json.Marshal(decisionButtons(hostileRequest(approvals.StatePending)))
	var block struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Confirm  *struct {
				Title, Text, Confirm, Deny struct{ Text string }
			} `json:"confirm"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(raw, &block); err != nil {
		t.Fatal(err)
	}
	c := block.Elements[0].Confirm
	if block.Elements[0].ActionID != ActionApprove || c == nil {
		t.Fatalf("approve button has no confirm dialog: %s", raw)
	}
	if utf8.RuneCountInString(c.Title.Text) > 100 || utf8.RuneCountInString(c.Text.Text) > 300 ||
		utf8.RuneCountInString(c.Confirm.Text) > 30 || utf8.RuneCountInString(c.Deny.Text) > 30 {
		t.Fatalf("confirm dialog over Slack's limits: %+v", c)
	}
	if !strings.Contains(c.Text.Text, "device") || userTextLeaks(c.Text.Text) {
		t.Fatalf("confirm text %q", c.Text.Text)
	}
}

func TestAuditText(t *testing.T) {
	t.Parallel()
	r := hostileRequest(approvals.StateFailed)
	r.DryRun = true
	text := auditText(approvals.Event{Kind: approvals.EventFailed, Request: r, Detail: r.Outcome, At: r.FinishedAt}, 7)
	for _, want := range []string{"[DRY RUN] failed ", "request=" + r.ID + " record=7 ", "actor=revokebot", "requester=<@U1>", "devices=true", "10000"} {
		if !strings.Contains(text, want) {
			t.Errorf("audit text lacks %q: %s", want, truncate(text, 300))
		}
	}
	if userTextLeaks(text) || utf8.RuneCountInString(text) > maxAuditText {
		t.Errorf("audit text unescaped or too long (%d)", utf8.RuneCountInString(text))
	}
	req := auditText(approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: "U1", At: r.CreatedAt}, 7)
	if !strings.Contains(req, `reason="&lt;!channel&gt;`) || !strings.HasPrefix(req, "[DRY RUN] requested ") {
		t.Errorf("requested audit text %s", truncate(req, 300))
	}
}

func collectTexts(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "text" {
				out = append(out, s)
			} else {
				out = append(out, collectTexts(x)...)
			}
		}
	case []any:
		for _, x := range v {
			out = append(out, collectTexts(x)...)
		}
	}
	return out
}

func TestTruncateKeepsMarkupWhole(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdefghij", 5, "abcd…"},
		{"ab &amp; cd", 6, "ab …"},
		{"ab <!date^1^{time}|x> cd", 10, "ab …"},
		{"ab &amp; cd", 10, "ab &amp; …"},
	} {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestDryRunStatusSaysNothingRevoked(t *testing.T) {
	t.Parallel()
	r := hostileRequest(approvals.StateRevoked)
	r.DryRun = true
	if s := statusLine(r); !strings.Contains(s, "Dry run: nothing was revoked") || strings.Contains(s, "*Revoked*") {
		t.Fatalf("dry-run status %q", truncate(s, 200))
	}
}
