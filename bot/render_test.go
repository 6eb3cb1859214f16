package bot

import (
	"encoding/json"
	"fmt"
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

var hostileNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// Hostile values a person, a stored request or Cloudflare may carry.
var (
	hostileOutcome = "cloudflare: 403 Forbidden: [10000] <!everyone> " + strings.Repeat("x", 5000)
	// hostileDenyReason is an approver's reason for a denial: pings, a
	// link, a mention, mrkdwn lines that look like the bot's own fields.
	hostileDenyReason = "<!channel> no & <https://evil.example|see> <@U999>\n*Target*\nbob@example.com"
)

// hostileTargets are the targets of hostileRequest: an address of Slack's
// escapes, one with a ping in it resolved from a person, one resolved from a
// "person" whose ID is no user ID (only a forged payload carries one).
func hostileTargets() []approvals.Target {
	return []approvals.Target{
		{Email: strings.Repeat("a&b", 80) + "@example.com", State: approvals.TargetWaiting},
		{Email: "<!here>&c@example.com", Person: "U3", State: approvals.TargetWaiting},
		{Email: "mallory@<!channel>.example", Person: "U4|<@U999>", State: approvals.TargetWaiting},
	}
}

// hostileRequest is a request with hostile values everywhere a person or
// Cloudflare supplies one, in the given state: approved by U2 unless
// pending, denied, cancelled or expired; a failed request's first target
// failed, the others revoked; a denied one denied by U2 with
// hostileDenyReason.
func hostileRequest(state approvals.State) approvals.Request {
	now := hostileNow
	r := approvals.Request{
		ID:        "6c5a0ea8-0874-4bd8-b76b-385eb2a8907b",
		Version:   3,
		Targets:   hostileTargets(),
		Options:   approvals.Options{Devices: true},
		Reason:    "<!channel> <!here> <@U999> <https://evil.example|click> " + strings.Repeat("ü", 400),
		Requester: "U1",
		Required:  1,
		CreatedAt: now,
		ExpiresAt: now.Add(30 * time.Minute),
	}
	approve := approvals.Review{By: "U2", Decision: approvals.Approve, At: now.Add(time.Minute)}
	done := func(i int, s approvals.TargetState) {
		r.Targets[i].State, r.Targets[i].Outcome, r.Targets[i].FinishedAt = s, hostileOutcome, now.Add(2*time.Minute)
	}
	switch state {
	case approvals.StatePending:
	case approvals.StateExecuting:
		r.Reviews = []approvals.Review{approve}
		done(0, approvals.TargetRevoked)
	case approvals.StateRevoked:
		r.Reviews = []approvals.Review{approve}
		for i := range r.Targets {
			done(i, approvals.TargetRevoked)
		}
		r.FinishedAt = now.Add(2 * time.Minute)
	case approvals.StateFailed:
		r.Reviews = []approvals.Review{approve}
		done(0, approvals.TargetFailed)
		done(1, approvals.TargetRevoked)
		done(2, approvals.TargetRevoked)
		r.FinishedAt = now.Add(2 * time.Minute)
	case approvals.StateDenied:
		r.Reviews = []approvals.Review{{By: "U2", Decision: approvals.Deny, Reason: hostileDenyReason, At: now.Add(time.Minute)}}
		r.FinishedAt = now.Add(time.Minute)
	case approvals.StateCancelled:
		r.Reviews = []approvals.Review{{By: "U1", Decision: approvals.Deny, At: now.Add(time.Minute)}}
		r.FinishedAt = now.Add(time.Minute)
	case approvals.StateExpired:
		r.ExpiredAt = r.ExpiresAt
		r.FinishedAt = r.ExpiresAt
	}
	if got := r.State(); got != state {
		panic(fmt.Sprintf("hostileRequest(%s) is %s", state, got))
	}
	return r
}

// oneTarget makes r a request for email alone.
func oneTarget(r approvals.Request, email string) approvals.Request {
	t := r.Targets[0]
	t.Email = email
	r.Targets = []approvals.Target{t}
	return r
}

// allStates are the states a request with an approval message can be in.
var allStates = []approvals.State{approvals.StatePending, approvals.StateExecuting, approvals.StateRevoked,
	approvals.StateFailed, approvals.StateDenied, approvals.StateCancelled, approvals.StateExpired}

// userTextLeaks reports whether any of the hostile strings appear unescaped.
func userTextLeaks(s string) bool {
	for _, bad := range []string{"<!channel>", "<!here>", "<@U999>", "<https://evil", "<!everyone>", "a&b", ">&c@"} {
		if strings.Contains(s, bad) {
			return true
		}
	}
	return false
}

// hostileNotify is a notify list as configuration could hold it: a user,
// and a value that is no user ID (dropped).
var hostileNotify = notify{users: []string{"U7", "<!channel>", "U8|boss"}}

func TestRenderRequestWithinLimitsAndEscaped(t *testing.T) {
	t.Parallel()
	for _, state := range allStates {
		r := hostileRequest(state)
		blocks, fallback := renderRequest(r, hostileNotify)
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
		if err := checkSafeMrkdwn(fallback); err != nil {
			t.Errorf("%s: fallback: %v", state, err)
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

		// Every target is shown, in a code span, with the person it was
		// resolved from; and each text the bot writes as mrkdwn is safe.
		byType, _, _ := messageTexts(t, r, hostileNotify)
		md := strings.Join(byType["mrkdwn"], "\n")
		for _, s := range byType["mrkdwn"] {
			if err := checkSafeMrkdwn(s); err != nil {
				t.Errorf("%s: mrkdwn text: %v\n%s", state, err, truncate(s, 300))
			}
		}
		for _, tg := range r.Targets {
			if !strings.Contains(md, codeASCII(tg.Email)) {
				t.Errorf("%s: target %q is not shown in a code span", state, truncate(tg.Email, 40))
			}
			if tg.Person != "" && !strings.Contains(md, mention(tg.Person)+" → "+codeASCII(tg.Email)) {
				t.Errorf("%s: target %q is not shown with its person %s", state, truncate(tg.Email, 40), mention(tg.Person))
			}
		}
		// Only a denial by an approver shows its reason: as plain text, in
		// a block of its own.
		reason := truncate(Escape(plainReason(hostileDenyReason)), maxSectionText)
		shown := slices.Contains(byType["plain_text"], reason)
		if shown != (state == approvals.StateDenied) {
			t.Errorf("%s: deny reason shown as plain_text = %v", state, shown)
		}
		if strings.Contains(md, "bob@example.com") || strings.Contains(md, "evil.example") {
			t.Errorf("%s: the deny reason made mrkdwn: %s", state, truncate(md, 500))
		}
	}
}

func TestConfirmDialogLimits(t *testing.T) {
	t.Parallel()
	c := confirmOf(t, hostileRequest(approvals.StatePending))
	if utf8.RuneCountInString(c.Title.Text) > 100 || utf8.RuneCountInString(c.Text.Text) > maxConfirmText ||
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

// confirm is a confirm dialog as rendered.
type confirm struct {
	Title, Text, Confirm, Deny struct{ Type, Text string }
}

// confirmOf returns the confirm dialog of r's Approve button.
func confirmOf(t *testing.T, r approvals.Request) confirm {
	t.Helper()
	raw, _ := json.Marshal(decisionButtons(r))
	var block struct {
		Elements []struct {
			ActionID string   `json:"action_id"`
			Confirm  *confirm `json:"confirm"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(raw, &block); err != nil {
		t.Fatal(err)
	}
	if len(block.Elements) == 0 || block.Elements[0].ActionID != ActionApprove || block.Elements[0].Confirm == nil {
		t.Fatalf("approve button has no confirm dialog: %s", raw)
	}
	return *block.Elements[0].Confirm
}

func TestAuditText(t *testing.T) {
	t.Parallel()
	r := hostileRequest(approvals.StateFailed)
	r.DryRun = true
	text := auditText(approvals.Event{Kind: approvals.EventFailed, Request: r, State: r.State(), Target: r.Targets[0].Email,
		Detail: r.Targets[0].Outcome, At: r.FinishedAt}, 7)
	for _, want := range []string{"[DRY RUN] failed ", "request=" + r.ID + " record=7 ", "`target=\"" + strings.Repeat("a&amp;b", 80) + "@example.com\"`",
		"actor=revokebot", "requester=<@U1>", "devices=true", "10000"} {
		if !strings.Contains(text, want) {
			t.Errorf("audit text lacks %q: %s", want, truncate(text, 300))
		}
	}
	if userTextLeaks(text) || utf8.RuneCountInString(text) > maxAuditText {
		t.Errorf("audit text unescaped or too long (%d)", utf8.RuneCountInString(text))
	}
	if err := checkSafeMrkdwn(text); err != nil {
		t.Errorf("audit text: %v", err)
	}
	req := auditText(approvals.Event{Kind: approvals.EventRequested, Request: r, State: approvals.StatePending, Actor: "U1", At: r.CreatedAt}, 7)
	if !strings.Contains(req, "`reason=\"&lt;!channel&gt;") || !strings.HasPrefix(req, "[DRY RUN] requested ") {
		t.Errorf("requested audit text %s", truncate(req, 300))
	}
	if err := checkSafeMrkdwn(req); err != nil {
		t.Errorf("requested audit text: %v", err)
	}
	denied := hostileRequest(approvals.StateDenied)
	d := auditText(approvals.Event{Kind: approvals.EventDenied, Request: denied, State: denied.State(), Actor: "U2",
		Detail: hostileDenyReason, At: denied.FinishedAt}, 8)
	if userTextLeaks(d) || strings.Contains(d, "\n") || !strings.Contains(d, "`detail=\"&lt;!channel&gt; no &amp; ") {
		t.Errorf("denied audit text: %s", truncate(d, 500))
	}
	if err := checkSafeMrkdwn(d); err != nil {
		t.Errorf("denied audit text: %v", err)
	}
}

// auditTargets returns the target="…" values of an audit line, in order.
func auditTargets(line string) []string {
	var out []string
	for _, part := range strings.Split(line, "`") {
		if v, ok := strings.CutPrefix(part, `target="`); ok {
			out = append(out, strings.TrimSuffix(v, `"`))
		}
	}
	return out
}

// TestAuditTextNamesTheEventsTargets: an event about one target (revoked,
// failed) names that target, with its person; every other event names
// every target of the request, and how many there are.
func TestAuditTextNamesTheEventsTargets(t *testing.T) {
	t.Parallel()
	r := threeTargets(approvals.StateFailed)
	all := []string{"alice@example.com", "bob@example.com", "carol@example.com"}
	for _, tt := range []struct {
		kind   approvals.EventKind
		target string
		want   []string
		person string
	}{
		{approvals.EventRevoked, "alice@example.com", []string{"alice@example.com"}, ""},
		{approvals.EventFailed, "bob@example.com", []string{"bob@example.com"}, "UBOB"},
		{approvals.EventRequested, "", all, ""},
		{approvals.EventApproved, "", all, ""},
		{approvals.EventDenied, "", all, ""},
		{approvals.EventCancelled, "", all, ""},
		{approvals.EventExpired, "", all, ""},
		{approvals.EventEscalated, "", all, ""},
		{approvals.EventRefused, "", all, ""},
	} {
		line := auditText(approvals.Event{Kind: tt.kind, Request: r, State: r.State(), Target: tt.target, Actor: "U2", At: hostileNow}, 3)
		if got := auditTargets(line); !slices.Equal(got, tt.want) {
			t.Errorf("%s: targets %q, want %q\n%s", tt.kind, got, tt.want, line)
		}
		if many := strings.Contains(line, " targets=3 "); many != (tt.target == "") {
			t.Errorf("%s: says targets=3: %v\n%s", tt.kind, many, line)
		}
		if tt.person != "" && !strings.Contains(line, "`target=\""+tt.target+"\"` person=<@"+tt.person+">") {
			t.Errorf("%s: the target's person is not named: %s", tt.kind, line)
		}
		if tt.target == "" && !strings.Contains(line, "`target=\"bob@example.com\"` person=<@UBOB>") {
			t.Errorf("%s: bob's person is not named: %s", tt.kind, line)
		}
		if err := checkSafeMrkdwn(line); err != nil {
			t.Errorf("%s: %v", tt.kind, err)
		}
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
		for _, n := range []int{1, 3} {
			r := hostileRequest(state)
			r.Targets = r.Targets[:n]
			if state == approvals.StateExecuting && n == 1 {
				r.Targets[0] = hostileTargets()[0] // waiting
			}
			r.DryRun = true
			for i := range r.Targets {
				if r.Targets[i].Done() {
					r.Targets[i].Outcome = "dry run: Cloudflare was not called"
				}
			}
			s := statusLine(r)
			if strings.Contains(s, "Revoked") || strings.Contains(s, "Revoking") {
				t.Errorf("%s, %d targets: dry-run status %q", state, n, truncate(s, 200))
			}
			if state == approvals.StateRevoked && !strings.Contains(s, "Dry run: nothing was revoked") {
				t.Errorf("%s, %d targets: dry-run status %q does not say nothing was revoked", state, n, truncate(s, 200))
			}
			blocks, fallback := renderRequest(r, notify{})
			raw, _ := json.Marshal(slack.Blocks{BlockSet: blocks})
			if strings.Contains(string(raw), "Revoked") || strings.Contains(string(raw), ":white_check_mark: revoked") ||
				!strings.HasPrefix(fallback, "[DRY RUN] ") || strings.HasSuffix(fallback, ": revoked") {
				t.Errorf("%s, %d targets: dry-run message says Revoked: %s\n%s", state, n, fallback, raw)
			}
			kind := approvals.EventApproved
			if state == approvals.StateRevoked {
				kind = approvals.EventRevoked
			}
			if a := auditText(approvals.Event{Kind: kind, Request: r, State: state, Target: r.Targets[0].Email,
				Detail: r.Targets[0].Outcome, At: r.FinishedAt}, 9); !strings.HasPrefix(a, "[DRY RUN] ") {
				t.Errorf("%s: dry-run audit line %q", state, truncate(a, 200))
			}
		}
	}
}

// messageTexts renders r and returns the texts of its blocks by type
// ("mrkdwn", "plain_text"), its block IDs, and its fallback text.
func messageTexts(t *testing.T, r approvals.Request, n notify) (texts map[string][]string, blockIDs []string, fallback string) {
	t.Helper()
	blocks, fallback := renderRequest(r, n)
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
	r := oneTarget(hostileRequest(approvals.StatePending), email)
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
	texts, _, fallback := messageTexts(t, r, notify{})
	title, fields := texts["mrkdwn"][0], strings.Join(texts["mrkdwn"], "\n")
	for what, s := range map[string]string{"title": title, "fields": fields, "fallback": fallback} {
		if !strings.Contains(s, "`"+target+"`") {
			t.Errorf("%s does not show the target in a code span: %s", what, s)
		}
		if strings.Count(strings.ReplaceAll(s, "`"+target+"`", ""), target) != 0 {
			t.Errorf("%s shows the target outside a code span: %s", what, s)
		}
	}
	if !strings.Contains(fields, "*Target*\n• `"+target+"`") {
		t.Errorf("the Target list is not the target in a code span: %s", fields)
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
// that looks like the bot's own fields. So does a denial's reason.
func TestRenderReasonCannotForgeFields(t *testing.T) {
	t.Parallel()
	const forged = "x\n*Target*\nbob@example.com\n*Requested by*\n<@U2>"
	r := plainRequest("alice@example.com")
	r.Reason = forged
	denied := r
	denied.Reason = "laptop stolen"
	denied.Reviews = []approvals.Review{{By: "U2", Decision: approvals.Deny, Reason: forged, At: hostileNow}}
	for _, r := range []approvals.Request{r, denied} {
		texts, _, fallback := messageTexts(t, r, notify{})
		targets := 0
		for _, s := range append(texts["mrkdwn"], fallback) {
			for _, line := range strings.Split(s, "\n") {
				if line == "*Target*" {
					targets++
				}
				if strings.Contains(line, "bob@example.com") || line == "*Requested by*" && strings.Contains(s, "U2") {
					t.Errorf("%s: the reason made a mrkdwn line of its own: %q in %q", r.State(), line, s)
				}
			}
		}
		if targets != 1 {
			t.Errorf("%s: %d mrkdwn lines *Target*, want only the bot's own", r.State(), targets)
		}
		want := "x\n*Target*\nbob@example.com\n*Requested by*\n&lt;@U2&gt;"
		if !slices.Contains(texts["plain_text"], want) {
			t.Errorf("%s: the reason is not a plain_text block of its own: %q", r.State(), texts["plain_text"])
		}
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
	texts, _, _ := messageTexts(t, r, notify{})
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
	texts, _, _ = messageTexts(t, plainRequest("alice@example.com"), notify{})
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
	texts, _, fallback := messageTexts(t, r, notify{})
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
	texts, _, _ = messageTexts(t, plainRequest("\u0430lice@xn--exmple-4nf.com"), notify{})
	if s := strings.Join(append(texts["mrkdwn"], texts["plain_text"]...), "\n"); strings.ContainsRune(s, 0x430) ||
		!strings.Contains(s, "`\"\\u0430lice@xn--exmple-4nf.com\"`") {
		t.Errorf("a stored target with a Cyrillic letter before the @: %s", s)
	}
	// A denial's reason with a bidi override shows it as its escape.
	d := plainRequest("alice@example.com")
	d.Reviews = []approvals.Review{{By: "U2", Decision: approvals.Deny, Reason: "no \u202eINC-2", At: hostileNow}}
	texts, _, _ = messageTexts(t, d, notify{})
	if !slices.Contains(texts["plain_text"], "no \\u202eINC-2") {
		t.Errorf("deny reason with a bidi override: %q", texts["plain_text"])
	}
}

func TestRenderUserUID(t *testing.T) {
	t.Parallel()
	r := plainRequest("alice@example.com")
	r.Options.UserUID = "f174e90afafe4643bbbc4a0ed4fc8415"
	texts, _, _ := messageTexts(t, r, notify{})
	if s := strings.Join(texts["mrkdwn"], "\n"); !strings.Contains(s, "*Access user ID*\n`f174e90afafe4643bbbc4a0ed4fc8415`") {
		t.Errorf("message does not show the user ID exactly: %s", s)
	}
	audit := auditText(approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: "U1", At: r.CreatedAt}, 1)
	if !strings.Contains(audit, "`uid=\"f174e90afafe4643bbbc4a0ed4fc8415\"`") {
		t.Errorf("audit line: %s", audit)
	}
}

// TestBlockIDsPerRevision checks that every block has an ID unique in its
// message, and that a redraw after any change (of state, or a new approval
// or target outcome within one state) uses new ones.
func TestBlockIDsPerRevision(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	executing := hostileRequest(approvals.StateExecuting)
	executing.Version++
	executing.Targets[1].State = approvals.TargetRevoked
	revisions := map[string]approvals.Request{"executing, two done": executing}
	for _, state := range allStates {
		revisions[string(state)] = hostileRequest(state)
	}
	for what, r := range revisions {
		_, ids, _ := messageTexts(t, r, hostileNotify)
		inMessage := map[string]bool{}
		for _, id := range ids {
			if id == "" || len(id) > 255 || inMessage[id] {
				t.Errorf("%s: block ID %q empty, too long or not unique in %v", what, id, ids)
			}
			inMessage[id] = true
			if was, ok := seen[id]; ok {
				t.Errorf("block ID %q is used both in %s and in %s", id, was, what)
			}
			seen[id] = what
		}
	}
}

// threeTargets is a request for alice (by email), bob (by mention, UBOB) and
// carol, approved by U2 unless pending. Failed: bob failed; executing:
// alice revoked.
func threeTargets(state approvals.State) approvals.Request {
	now := hostileNow
	r := approvals.Request{
		ID: "0b7c3a52-79a4-4d0e-9f0c-4f6f3b1f9c11", Version: 2,
		Targets: []approvals.Target{
			{Email: "alice@example.com", State: approvals.TargetWaiting},
			{Email: "bob@example.com", Person: "UBOB", State: approvals.TargetWaiting},
			{Email: "carol@example.com", State: approvals.TargetWaiting},
		},
		Reason: "phished", Requester: "U1", Required: 1, CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute),
	}
	if state == approvals.StatePending {
		return r
	}
	r.Reviews = []approvals.Review{{By: "U2", Decision: approvals.Approve, At: now.Add(time.Minute)}}
	finish := func(i int, s approvals.TargetState, outcome string) {
		r.Targets[i].State, r.Targets[i].Outcome, r.Targets[i].FinishedAt = s, outcome, now.Add(2*time.Minute)
	}
	switch state {
	case approvals.StateExecuting:
		finish(0, approvals.TargetRevoked, "revoked alice's sessions")
	case approvals.StateRevoked:
		finish(0, approvals.TargetRevoked, "revoked alice's sessions")
		finish(1, approvals.TargetRevoked, "revoked bob's sessions")
		finish(2, approvals.TargetRevoked, "revoked carol's sessions")
		r.FinishedAt = now.Add(2 * time.Minute)
	case approvals.StateFailed:
		finish(0, approvals.TargetRevoked, "revoked alice's sessions")
		finish(1, approvals.TargetFailed, "cloudflare: 403 Forbidden: [10000] no such user")
		finish(2, approvals.TargetRevoked, "revoked carol's sessions")
		r.FinishedAt = now.Add(2 * time.Minute)
	}
	if got := r.State(); got != state {
		panic(fmt.Sprintf("threeTargets(%s) is %s", state, got))
	}
	return r
}

// TestRenderThreeTargets: one request for three people, one of them named
// by a mention, shows each person and, once approved, each one's outcome;
// a partial failure is said as such, never as "Revoked".
func TestRenderThreeTargets(t *testing.T) {
	t.Parallel()
	lines := func(r approvals.Request) string {
		texts, _, _ := messageTexts(t, r, notify{})
		return strings.Join(texts["mrkdwn"], "\n")
	}

	pending := threeTargets(approvals.StatePending)
	md := lines(pending)
	for _, want := range []string{
		"*Request to revoke every Cloudflare Access session of 3 people*",
		"*Targets*\n• `alice@example.com`\n• <@UBOB> → `bob@example.com`\n• `carol@example.com`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("pending message lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "waiting") {
		t.Errorf("a pending request shows target statuses:\n%s", md)
	}
	if c := confirmOf(t, pending); !strings.HasSuffix(c.Text.Text, "of 3 people: alice@example.com, bob@example.com, carol@example.com") {
		t.Errorf("confirm text %q does not name the three", c.Text.Text)
	}

	executing := threeTargets(approvals.StateExecuting)
	md = lines(executing)
	for _, want := range []string{
		"• `alice@example.com` :white_check_mark: revoked: `revoked alice's sessions`",
		"• <@UBOB> → `bob@example.com` :hourglass: waiting",
		"• `carol@example.com` :hourglass: waiting",
		"Revoking… 1 of 3 revoked, 2 to go.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("executing message lacks %q:\n%s", want, md)
		}
	}

	failed := threeTargets(approvals.StateFailed)
	texts, _, fallback := messageTexts(t, failed, notify{})
	md = strings.Join(texts["mrkdwn"], "\n")
	for _, want := range []string{
		"• `alice@example.com` :white_check_mark: revoked: `revoked alice's sessions`",
		"• <@UBOB> → `bob@example.com` :x: *failed*: `cloudflare: 403 Forbidden: [10000] no such user`",
		"• `carol@example.com` :white_check_mark: revoked: `revoked carol's sessions`",
		"*Partly failed: 2 of 3 revoked, 1 failed*",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("partly failed message lacks %q:\n%s", want, md)
		}
	}
	all := md + "\n" + strings.Join(texts["plain_text"], "\n") + "\n" + fallback
	if strings.Contains(all, "Revoked") || strings.Contains(all, ":white_check_mark: Approved") {
		t.Errorf("a partial failure is shown as a success:\n%s", all)
	}
	if !strings.HasSuffix(fallback, ": failed: 2 of 3 revoked, 1 failed") {
		t.Errorf("fallback %q", fallback)
	}
	if s := statusText(failed); !strings.Contains(s, "*failed: 2 of 3 revoked, 1 failed*") || strings.Contains(s, "Revoked") ||
		!strings.Contains(s, "<@UBOB> → `bob@example.com` :x: *failed*") {
		t.Errorf("/revoke status of a partial failure: %s", s)
	}

	revoked := threeTargets(approvals.StateRevoked)
	texts, _, fallback = messageTexts(t, revoked, notify{})
	md = strings.Join(texts["mrkdwn"], "\n")
	if !strings.Contains(md, "*3 of 3 revoked*") || strings.Contains(md, "failed") || !strings.HasSuffix(fallback, ": revoked") {
		t.Errorf("all revoked:\n%s\n%s", md, fallback)
	}
}

// TestRenderFiftyTargets: a request for as many people as allowed stays
// within Slack's limits (50 blocks, 3000 characters a section, 300 for the
// confirm text) with long addresses and long outcomes, and still shows
// every target.
func TestRenderFiftyTargets(t *testing.T) {
	t.Parallel()
	for _, state := range allStates {
		r := hostileRequest(state)
		r.Targets = nil
		for i := range approvals.DefaultMaxTargets {
			tg := approvals.Target{
				Email: fmt.Sprintf("%s%02d@%s.example.com", strings.Repeat("p", 62), i, strings.Repeat("d", 60)),
				State: approvals.TargetWaiting,
			}
			if i%2 == 0 {
				tg.Person = fmt.Sprintf("UPERSON%02d", i)
			}
			r.Targets = append(r.Targets, tg)
		}
		if len(r.Reviews) > 0 && r.Reviews[0].Decision == approvals.Approve {
			for i := range r.Targets {
				tg := &r.Targets[i]
				switch {
				case state == approvals.StateExecuting && i >= 10:
				case state == approvals.StateFailed && i%3 == 0 || state == approvals.StateExecuting && i%3 == 0:
					tg.State, tg.Outcome = approvals.TargetFailed, hostileOutcome
				default:
					tg.State, tg.Outcome = approvals.TargetRevoked, strings.Repeat("revoked <!here> ", 100)
				}
			}
		}
		if r.State() != state {
			t.Fatalf("%s: built a request in state %s", state, r.State())
		}
		n := notify{users: []string{"U7"}, groups: []string{"S1"}}
		blocks, fallback := renderRequest(r, n)
		if len(blocks) > 50 {
			t.Errorf("%s: %d blocks", state, len(blocks))
		}
		texts, _, _ := messageTexts(t, r, n)
		for typ, list := range texts {
			for _, s := range list {
				if c := utf8.RuneCountInString(s); c > maxSectionText {
					t.Errorf("%s: %s text of %d characters", state, typ, c)
				}
				if userTextLeaks(s) {
					t.Errorf("%s: unescaped user text in %q", state, truncate(s, 200))
				}
			}
		}
		if utf8.RuneCountInString(fallback) > maxSectionText || userTextLeaks(fallback) {
			t.Errorf("%s: fallback %q", state, truncate(fallback, 300))
		}
		md := strings.Join(texts["mrkdwn"], "\n")
		for i, tg := range r.Targets {
			line := codeASCII(tg.Email)
			if tg.Person != "" {
				line = mention(tg.Person) + " → " + line
			}
			if r.State() != approvals.StatePending && len(r.Approvals()) > 0 {
				line += " " + strings.SplitN(targetStatus(r, tg), " ", 2)[0]
			}
			if !strings.Contains(md, "• "+line) {
				t.Errorf("%s: target %d is not shown as %q", state, i, line)
			}
		}
		if state == approvals.StatePending {
			c := confirmOf(t, r)
			if n := utf8.RuneCountInString(c.Text.Text); n > maxConfirmText {
				t.Errorf("confirm text of %d characters", n)
			}
			if !strings.Contains(c.Text.Text, "50 people") {
				t.Errorf("the confirm text does not say how many: %q", c.Text.Text)
			}
		}
	}
}

// TestRenderQuorum: a request that needs two approvals shows how many it
// has, and from whom; the confirm dialog says how many more are needed.
func TestRenderQuorum(t *testing.T) {
	t.Parallel()
	r := threeTargets(approvals.StatePending)
	r.Required = 3
	texts, _, fallback := messageTexts(t, r, notify{})
	if md := strings.Join(texts["mrkdwn"], "\n"); !strings.Contains(md, "*Approvals*\n0 of 3") {
		t.Errorf("no approvals yet:\n%s", md)
	}
	if c := confirmOf(t, r); !strings.Contains(c.Text.Text, "2 more approvals are needed after yours.") {
		t.Errorf("confirm text %q", c.Text.Text)
	}
	if !strings.HasSuffix(fallback, ": pending") {
		t.Errorf("fallback %q", fallback)
	}

	r.Required = 2
	r.Reviews = []approvals.Review{{By: "U2", Decision: approvals.Approve, At: hostileNow.Add(time.Minute)}}
	if r.State() != approvals.StatePending {
		t.Fatalf("one approval of two: %s", r.State())
	}
	texts, _, fallback = messageTexts(t, r, notify{})
	md := strings.Join(texts["mrkdwn"], "\n")
	if !strings.Contains(md, "*Approvals*\n1 of 2: <@U2>") {
		t.Errorf("one approval of two:\n%s", md)
	}
	if !strings.HasSuffix(fallback, ": pending, 1 of 2 approvals") {
		t.Errorf("fallback %q", fallback)
	}
	if c := confirmOf(t, r); strings.Contains(c.Text.Text, "more approval") {
		t.Errorf("the last approval needed is said to need more: %q", c.Text.Text)
	}
	if s := statusText(r); !strings.Contains(s, "Approvals: 1 of 2: <@U2>") {
		t.Errorf("/revoke status: %s", s)
	}

	r.Reviews = append(r.Reviews, approvals.Review{By: "U5", Decision: approvals.Approve, At: hostileNow.Add(2 * time.Minute)})
	texts, _, _ = messageTexts(t, r, notify{})
	md = strings.Join(texts["mrkdwn"], "\n")
	if !strings.Contains(md, "*Approvals*\n2 of 2: <@U2>, <@U5>") || !strings.Contains(md, "Approved by <@U2>, <@U5>") {
		t.Errorf("two approvals of two:\n%s", md)
	}
}

// TestRenderNotifyOnlyWhilePending: the configured people and groups are
// mentioned on the message (and in its notification text) while it waits
// for approvers, and no longer once it is decided, so that a redraw pings
// nobody.
func TestRenderNotifyOnlyWhilePending(t *testing.T) {
	t.Parallel()
	n := notify{users: []string{"U7", "<!channel>"}, groups: []string{"S1", "S1|oncall", "U9"}}
	if got := n.mentions(); got != "<@U7> <!subteam^S1>" {
		t.Errorf("mentions %q", got)
	}
	for _, state := range allStates {
		r := hostileRequest(state)
		blocks, fallback := renderRequest(r, n)
		raw, _ := json.Marshal(slack.Blocks{BlockSet: blocks})
		pinged := strings.Contains(string(raw), "<@U7>") || strings.Contains(string(raw), "subteam")
		if pinged != (state == approvals.StatePending) {
			t.Errorf("%s: message mentions the notify list: %v", state, pinged)
		}
		pinged = strings.Contains(fallback, "<@U7> <!subteam^S1>")
		if pinged != (state == approvals.StatePending) {
			t.Errorf("%s: fallback %q mentions the notify list: %v", state, truncate(fallback, 200), pinged)
		}
		if strings.Contains(string(raw)+fallback, "<!channel>") || strings.Contains(string(raw)+fallback, "oncall") {
			t.Errorf("%s: a notify entry that is no ID went out", state)
		}
	}
	// No one to notify: no block.
	texts, _, fallback := messageTexts(t, hostileRequest(approvals.StatePending), notify{})
	if strings.Contains(strings.Join(texts["mrkdwn"], "\n"), ":bell:") || strings.HasSuffix(fallback, " ") {
		t.Errorf("an empty notify list shows: %q", fallback)
	}
}

// TestRenderEscalatedWhilePending: an escalated request says so while it
// waits, and no longer once it is decided.
func TestRenderEscalatedWhilePending(t *testing.T) {
	t.Parallel()
	for _, state := range allStates {
		r := hostileRequest(state)
		r.EscalatedAt = hostileNow.Add(10 * time.Minute)
		texts, _, _ := messageTexts(t, r, notify{})
		shown := strings.Contains(strings.Join(texts["mrkdwn"], "\n"), "*Escalated*")
		if shown != (state == approvals.StatePending) {
			t.Errorf("%s: escalation shown: %v", state, shown)
		}
	}
}

// TestRenderDenyReason: an approver's reason is shown under its own label,
// as plain text; a cancellation by the requester shows no reason block.
func TestRenderDenyReason(t *testing.T) {
	t.Parallel()
	r := threeTargets(approvals.StatePending)
	r.Reviews = []approvals.Review{{By: "U2", Decision: approvals.Deny, Reason: "not without a ticket <!here> & *now*", At: hostileNow}}
	texts, ids, _ := messageTexts(t, r, notify{})
	if !slices.Contains(texts["plain_text"], "not without a ticket &lt;!here&gt; &amp; *now*") {
		t.Errorf("deny reason as plain text: %q", texts["plain_text"])
	}
	md := strings.Join(texts["mrkdwn"], "\n")
	if !strings.Contains(md, "*Reason for the denial*, as the approver gave it:") || !strings.Contains(md, ":no_entry: *Denied* by <@U2>") ||
		strings.Contains(md, "ticket") {
		t.Errorf("denied message:\n%s", md)
	}
	if !slices.ContainsFunc(ids, func(id string) bool { return strings.HasPrefix(id, "revoke_deny_reason.") }) {
		t.Errorf("no deny reason block: %v", ids)
	}
	if s := statusText(r); !strings.Contains(s, "reason: `not without a ticket &lt;!here&gt; &amp; *now*`") {
		t.Errorf("/revoke status of a denial: %s", s)
	}

	r.Reviews = []approvals.Review{{By: "U1", Decision: approvals.Deny, Reason: "oops", At: hostileNow}}
	texts, _, _ = messageTexts(t, r, notify{})
	if slices.Contains(texts["plain_text"], "oops") || strings.Contains(strings.Join(texts["mrkdwn"], "\n"), "denial") {
		t.Errorf("a cancellation shows a deny reason: %q", texts)
	}
}

// TestRenderLongInternationalisedTargetsAllShown: eight long addresses with
// internationalised domains (each shown twice, as read and as sent) must all
// be in the message whole, with the form Cloudflare is sent.
func TestRenderLongInternationalisedTargetsAllShown(t *testing.T) {
	t.Parallel()
	r := hostileRequest(approvals.StatePending)
	r.Targets = nil
	domain := strings.Repeat("xn--bcher-kva.", 12) + "example" // bücher.bücher.….example
	for i := range 8 {
		r.Targets = append(r.Targets, approvals.Target{
			Email: fmt.Sprintf("%s%d@%s", strings.Repeat("l", 60), i, domain),
			State: approvals.TargetWaiting,
		})
	}
	texts, _, _ := messageTexts(t, r, notify{})
	all := strings.Join(texts["mrkdwn"], "\n")
	for _, tg := range r.Targets {
		if unicodeForm(tg.Email) == "" {
			t.Fatalf("%s is not an internationalised address; fix the test", tg.Email)
		}
		if !strings.Contains(all, "sent to Cloudflare as "+codeASCII(tg.Email)) {
			t.Errorf("target %s is not shown whole with the address Cloudflare is sent", tg.Email)
		}
	}
	for _, s := range texts["mrkdwn"] {
		if n := utf8.RuneCountInString(s); n > maxSectionText || strings.HasSuffix(s, "…") {
			t.Errorf("a section of %d characters was cut: %q…", n, clip(s, 80))
		}
	}
}

// TestAuditTextManyTargetsKeepsItsFields: a request of 50 people named by
// mention with long addresses still records who acted, the reason and the
// detail; targets that do not fit are counted, never cut in half.
func TestAuditTextManyTargetsKeepsItsFields(t *testing.T) {
	t.Parallel()
	r := hostileRequest(approvals.StatePending)
	r.Targets = nil
	for i := range 50 {
		r.Targets = append(r.Targets, approvals.Target{
			Email:  fmt.Sprintf("someone.with.a.long.name%02d@example.com", i),
			Person: fmt.Sprintf("UPERSON%04d", i),
			State:  approvals.TargetWaiting,
		})
	}
	for _, kind := range []approvals.EventKind{approvals.EventRequested, approvals.EventApproved, approvals.EventDenied} {
		e := approvals.Event{Kind: kind, Request: r, State: approvals.StatePending, Actor: "UAPPROVER1", Detail: "1 of 2: wrong person", At: r.CreatedAt}
		text := auditText(e, 42)
		for _, want := range []string{"actor=<@UAPPROVER1>", "requester=", "`detail=\"1 of 2: wrong person\"`", "targets=50", "at="} {
			if !strings.Contains(text, want) {
				t.Errorf("%s record lacks %q:\n%s", kind, want, text)
			}
		}
		if kind == approvals.EventRequested && !strings.Contains(text, "`reason=") {
			t.Errorf("requested record lacks its reason")
		}
		shown := strings.Count(text, "`target=")
		if shown == 50 {
			continue
		}
		if !strings.Contains(text, fmt.Sprintf("more_targets=%d", 50-shown)) || utf8.RuneCountInString(text) > maxAuditText {
			t.Errorf("%s record shows %d of 50 targets without counting the rest (%d characters)", kind, shown, utf8.RuneCountInString(text))
		}
	}
}
