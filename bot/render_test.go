package bot

import (
	"encoding/json"
	"slices"
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
		var parsed []struct {
			BlockID string `json:"block_id"`
			Fields  []struct{ Type, Text string }
		}
		if err := json.Unmarshal(raw, &parsed); err != nil {
			t.Fatal(err)
		}
		for _, b := range parsed {
			if len(b.Fields) > 10 {
				t.Errorf("%s: block %s has %d fields", state, b.BlockID, len(b.Fields))
			}
			for _, f := range b.Fields {
				if n := utf8.RuneCountInString(f.Text); n > 2000 {
					t.Errorf("%s: a field of %d characters exceeds Slack's limit of 2,000", state, n)
				}
			}
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
				Title, Text, Confirm, Deny struct{ Type, Text string }
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
	// Slack's Block Kit reference: a confirm dialog's text is plain_text.
	for _, o := range []struct{ Type, Text string }{c.Title, c.Text, c.Confirm, c.Deny} {
		if o.Type != "plain_text" {
			t.Errorf("confirm dialog text %q is %s, want plain_text", o.Text, o.Type)
		}
	}
}

func TestAuditText(t *testing.T) {
	t.Parallel()
	r := hostileRequest(approvals.StateFailed)
	r.DryRun = true
	text := auditText(approvals.Event{Kind: approvals.EventFailed, Request: r, Detail: r.Outcome, At: r.FinishedAt}, 7)
	for _, want := range []string{"[DRY RUN] failed ", "request=" + r.ID + " record=7 ", "`target=\"" + strings.Repeat("a&amp;b", 80) + "@example.com\"`",
		"actor=revokebot", "requester=<@U1>", "devices=true", "10000"} {
		if !strings.Contains(text, want) {
			t.Errorf("audit text lacks %q: %s", want, truncate(text, 300))
		}
	}
	if userTextLeaks(text) || utf8.RuneCountInString(text) > maxAuditText {
		t.Errorf("audit text unescaped or too long (%d)", utf8.RuneCountInString(text))
	}
	req := auditText(approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: "U1", At: r.CreatedAt}, 7)
	if !strings.Contains(req, "`reason=\"&lt;!channel&gt;") || !strings.HasPrefix(req, "[DRY RUN] requested ") {
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
		{"ab `*bold*` cd", 8, "ab …"},
		{"ab `x` cd", 8, "ab `x` …"},
	} {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestDryRunStatusSaysNothingRevoked(t *testing.T) {
	t.Parallel()
	for _, state := range []approvals.State{approvals.StateExecuting, approvals.StateRevoked} {
		r := hostileRequest(state)
		r.DryRun = true
		r.Outcome = "dry run: Cloudflare was not called"
		s := statusLine(r)
		if strings.Contains(s, "Revoked") || strings.Contains(s, "Revoking") {
			t.Errorf("%s: dry-run status %q", state, truncate(s, 200))
		}
		if state == approvals.StateRevoked && !strings.Contains(s, "Dry run: nothing was revoked") {
			t.Errorf("%s: dry-run status %q does not say nothing was revoked", state, truncate(s, 200))
		}
		blocks, fallback := renderRequest(r)
		raw, _ := json.Marshal(slack.Blocks{BlockSet: blocks})
		if strings.Contains(string(raw), "Revoked") || !strings.HasPrefix(fallback, "[DRY RUN] ") || strings.HasSuffix(fallback, ": revoked") {
			t.Errorf("%s: dry-run message says Revoked: %s\n%s", state, fallback, raw)
		}
		kind := approvals.EventApproved
		if state == approvals.StateRevoked {
			kind = approvals.EventRevoked
		}
		if a := auditText(approvals.Event{Kind: kind, Request: r, Detail: r.Outcome, At: r.FinishedAt}, 9); !strings.HasPrefix(a, "[DRY RUN] ") {
			t.Errorf("%s: dry-run audit line %q", state, truncate(a, 200))
		}
	}
}

// messageTexts renders r and returns the texts of its blocks by type
// ("mrkdwn", "plain_text"), its block IDs, and its fallback text.
func messageTexts(t *testing.T, r approvals.Request) (texts map[string][]string, blockIDs []string, fallback string) {
	t.Helper()
	blocks, fallback := renderRequest(r)
	raw, err := json.Marshal(slack.Blocks{BlockSet: blocks})
	if err != nil {
		t.Fatal(err)
	}
	var decoded []any
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	texts = map[string][]string{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if typ, ok := v["type"].(string); ok {
				if s, ok := v["text"].(string); ok {
					texts[typ] = append(texts[typ], s)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(decoded)
	for _, b := range decoded {
		if id, ok := b.(map[string]any)["block_id"].(string); ok {
			blockIDs = append(blockIDs, id)
		}
	}
	if len(blockIDs) != len(blocks) {
		t.Errorf("%d blocks, %d block IDs: %v", len(blocks), len(blockIDs), blockIDs)
	}
	return texts, blockIDs, fallback
}

func plainRequest(email string) approvals.Request {
	r := hostileRequest(approvals.StatePending)
	r.Revocation.Email = email
	r.Reason = "laptop stolen"
	return r
}

// TestRenderTargetInCodeSpan checks that the target shows in code spans,
// where Slack cannot format it: an address made of Slack's formatting
// characters shows as typed.
func TestRenderTargetInCodeSpan(t *testing.T) {
	t.Parallel()
	const target = "*bob*_x_~y~@example.com"
	r := plainRequest(target)
	texts, _, fallback := messageTexts(t, r)
	title, fields := texts["mrkdwn"][0], strings.Join(texts["mrkdwn"], "\n")
	for what, s := range map[string]string{"title": title, "fields": fields, "fallback": fallback} {
		if !strings.Contains(s, "`"+target+"`") {
			t.Errorf("%s does not show the target in a code span: %s", what, s)
		}
		if strings.Count(strings.ReplaceAll(s, "`"+target+"`", ""), target) != 0 {
			t.Errorf("%s shows the target outside a code span: %s", what, s)
		}
	}
	if !strings.Contains(fields, "*Target*\n`"+target+"`") {
		t.Errorf("the Target field is not the target in a code span: %s", fields)
	}
	// The confirm dialog is plain text: nothing in it formats.
	if !slicesContainsSuffix(texts["plain_text"], "Revoke every Cloudflare Access session of "+target) {
		t.Errorf("confirm dialog text: %q", texts["plain_text"])
	}
	audit := auditText(approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: "U1", At: r.CreatedAt}, 1)
	if !strings.Contains(audit, " `target=\""+target+"\"` ") {
		t.Errorf("audit line does not quote the target in a code span: %s", audit)
	}
}

func slicesContainsSuffix(list []string, suffix string) bool {
	for _, s := range list {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}

// TestRenderReasonCannotForgeFields checks that a reason with new lines and
// mrkdwn stays plain text in a block of its own: it makes no mrkdwn line
// that looks like the bot's own fields.
func TestRenderReasonCannotForgeFields(t *testing.T) {
	t.Parallel()
	r := plainRequest("alice@example.com")
	r.Reason = "x\n*Target*\nbob@example.com\n*Requested by*\n<@U2>"
	texts, _, fallback := messageTexts(t, r)
	targets := 0
	for _, s := range append(texts["mrkdwn"], fallback) {
		for _, line := range strings.Split(s, "\n") {
			if line == "*Target*" {
				targets++
			}
			if strings.Contains(line, "bob@example.com") || line == "*Requested by*" && strings.Contains(s, "U2") {
				t.Errorf("the reason made a mrkdwn line of its own: %q in %q", line, s)
			}
		}
	}
	if targets != 1 {
		t.Errorf("%d mrkdwn lines *Target*, want only the bot's own", targets)
	}
	want := "x\n*Target*\nbob@example.com\n*Requested by*\n&lt;@U2&gt;"
	if !slices.Contains(texts["plain_text"], want) {
		t.Errorf("the reason is not a plain_text block of its own: %q", texts["plain_text"])
	}
	audit := auditText(approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: "U1", At: r.CreatedAt}, 1)
	if strings.Contains(audit, "\n") || !strings.Contains(audit, "`reason=\"x\\n*Target*\\nbob@example.com\\n*Requested by*\\n&lt;@U2&gt;\"`") {
		t.Errorf("audit line: %s", audit)
	}
}

// TestRenderInternationalisedDomain checks that the approver sees both forms
// of an internationalised domain: as people read it, and the xn-- form sent.
func TestRenderInternationalisedDomain(t *testing.T) {
	t.Parallel()
	const (
		sent  = "alice@xn--exmple-4nf.com"
		shown = "alice@ex\u0430mple.com" // with a Cyrillic а
	)
	r := plainRequest(sent)
	texts, _, _ := messageTexts(t, r)
	mrkdwnText := strings.Join(texts["mrkdwn"], "\n")
	for _, want := range []string{"`" + sent + "`", "`" + shown + "`", "internationalised"} {
		if !strings.Contains(texts["mrkdwn"][0], want) {
			t.Errorf("title lacks %q: %s", want, texts["mrkdwn"][0])
		}
		if !strings.Contains(mrkdwnText, "*Target*\n") || !strings.Contains(mrkdwnText, want) {
			t.Errorf("message lacks %q: %s", want, mrkdwnText)
		}
	}
	if !slicesContainsSuffix(texts["plain_text"], sent+" (shown as "+shown+")") {
		t.Errorf("confirm dialog does not show both forms: %q", texts["plain_text"])
	}
	audit := auditText(approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: "U1", At: r.CreatedAt}, 1)
	if !strings.Contains(audit, "`target=\""+sent+"\"` `target_unicode=\""+shown+"\"`") {
		t.Errorf("audit line: %s", audit)
	}
	// An ASCII domain has one form only.
	texts, _, _ = messageTexts(t, plainRequest("alice@example.com"))
	if s := strings.Join(texts["mrkdwn"], "\n"); strings.Contains(s, "internationalised") {
		t.Errorf("an ASCII domain is said to be internationalised: %s", s)
	}
}

// TestRenderStoredHiddenCharacters checks what a request stored before the
// parser refused hidden characters looks like: every hidden character shows
// as its escape, in a code span, and a backtick cannot end the span.
func TestRenderStoredHiddenCharacters(t *testing.T) {
	t.Parallel()
	r := plainRequest("alice@example.com\u200b`*x*`")
	r.Reason = "see \u202eINC-1"
	texts, _, fallback := messageTexts(t, r)
	want := "`\"alice@example.com\\u200b\\x60*x*\\x60\"`"
	if !strings.Contains(texts["mrkdwn"][0], want) || !strings.Contains(fallback, want) {
		t.Errorf("title %q, fallback %q: want the target as %s", texts["mrkdwn"][0], fallback, want)
	}
	if !slices.Contains(texts["plain_text"], "see \\u202eINC-1") {
		t.Errorf("reason with a bidi override: %q", texts["plain_text"])
	}
	audit := auditText(approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: "U1", At: r.CreatedAt}, 1)
	if !strings.Contains(audit, "`target=\"alice@example.com\\u200b\\x60*x*\\x60\"`") || strings.ContainsRune(audit, 0x202e) {
		t.Errorf("audit line: %+q", audit)
	}
	// A non-ASCII letter before the @ shows as its escape, even with an
	// internationalised domain, whose Unicode form is then not shown.
	texts, _, _ = messageTexts(t, plainRequest("\u0430lice@xn--exmple-4nf.com"))
	if s := strings.Join(append(texts["mrkdwn"], texts["plain_text"]...), "\n"); strings.ContainsRune(s, 0x430) ||
		!strings.Contains(s, "`\"\\u0430lice@xn--exmple-4nf.com\"`") {
		t.Errorf("a stored target with a Cyrillic letter before the @: %s", s)
	}
}

func TestRenderUserUID(t *testing.T) {
	t.Parallel()
	r := plainRequest("alice@example.com")
	r.Revocation.UserUID = "f174e90afafe4643bbbc4a0ed4fc8415"
	texts, _, _ := messageTexts(t, r)
	if s := strings.Join(texts["mrkdwn"], "\n"); !strings.Contains(s, "*Access user ID*\n`f174e90afafe4643bbbc4a0ed4fc8415`") {
		t.Errorf("message does not show the user ID exactly: %s", s)
	}
	audit := auditText(approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: "U1", At: r.CreatedAt}, 1)
	if !strings.Contains(audit, "`uid=\"f174e90afafe4643bbbc4a0ed4fc8415\"`") {
		t.Errorf("audit line: %s", audit)
	}
}

// TestBlockIDsPerRevision checks that every block has an ID unique in its
// message, and that a redraw after a change of state uses new ones.
func TestBlockIDsPerRevision(t *testing.T) {
	t.Parallel()
	seen := map[string]approvals.State{}
	for _, state := range []approvals.State{approvals.StatePending, approvals.StateExecuting, approvals.StateRevoked} {
		_, ids, _ := messageTexts(t, hostileRequest(state))
		inMessage := map[string]bool{}
		for _, id := range ids {
			if id == "" || len(id) > 255 || inMessage[id] {
				t.Errorf("%s: block ID %q empty, too long or not unique in %v", state, id, ids)
			}
			inMessage[id] = true
			if was, ok := seen[id]; ok {
				t.Errorf("block ID %q is used both when %s and when %s", id, was, state)
			}
			seen[id] = state
		}
	}
}
