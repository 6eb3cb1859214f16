package bot

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/revokebot/revokebot/approvals"
)

// Times of the observations in these tests.
var (
	lastLogin  = time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC)
	reloginAt  = hostileNow.Add(20 * time.Minute)
	watchUntil = hostileNow.Add(24 * time.Hour)
)

// hostileValues are values the identity platform may send back as an
// application, an address or a reason: Slack's escapes and pings, mrkdwn,
// a backtick that would end a code span, an invisible character, a bidi
// override, a look-alike letter, and a new line.
var hostileValues = []string{
	"<!channel> & <@U999> <https://evil.example|x>",
	"*bold* _it_ ~strike~ `code` @here <!here>",
	"app\u200b.example.com",
	"\u202emoc.elpmaxe",
	"g\u043e\u043egle.com", // Cyrillic о
	"line one\n*Target*",
	strings.Repeat("<!everyone>&", 300),
}

// targetSection returns the mrkdwn text of r's target list.
func targetSection(t *testing.T, r approvals.Request) string {
	t.Helper()
	texts, _, _ := messageTexts(t, r, notify{})
	var out []string
	for _, s := range texts["mrkdwn"] {
		if strings.HasPrefix(s, "*Target") || strings.HasPrefix(s, "• ") {
			out = append(out, s)
		}
	}
	return strings.Join(out, "\n")
}

// checkSafe fails the test if s, mrkdwn, shows user text unescaped, or a
// hidden character as it is.
func checkSafe(t *testing.T, what, s string) {
	t.Helper()
	if err := checkSafeMrkdwn(s); err != nil {
		t.Errorf("%s: %v\n%s", what, err, truncate(s, 600))
	}
	if userTextLeaks(s) || strings.ContainsAny(s, "\u200b\u202e") {
		t.Errorf("%s: unescaped: %+q", what, truncate(s, 600))
	}
}

// TestRenderLook: while a request waits, each target's preview is a line
// under it; an unknown address is a warning that leaves approving possible;
// a failed lookup says so without its error; no lookup (yet, or the
// feature off) says nothing.
func TestRenderLook(t *testing.T) {
	t.Parallel()
	const indent = "\n" + observationIndent
	for _, tt := range []struct {
		name string
		look approvals.Look
		want string // the line under the target; "" for none
	}{
		{"none", approvals.Look{}, ""},
		{"known", approvals.Look{State: approvals.LookDone, Preview: approvals.Preview{Known: true, UserID: "u1", LastLogin: lastLogin, Sessions: 2, Devices: 3}},
			"Cloudflare Access user · last login " + slackDate(lastLogin) + " · 2 active sessions · 3 active devices"},
		{"known, one each", approvals.Look{State: approvals.LookDone, Preview: approvals.Preview{Known: true, LastLogin: lastLogin, Sessions: 1, Devices: 1}},
			"Cloudflare Access user · last login " + slackDate(lastLogin) + " · 1 active session · 1 active device"},
		{"known, none, never logged in", approvals.Look{State: approvals.LookDone, Preview: approvals.Preview{Known: true}},
			"Cloudflare Access user · no login recorded · 0 active sessions · 0 active devices"},
		{"unknown", approvals.Look{State: approvals.LookDone},
			":warning: no Cloudflare Access user has this email — check for a typo"},
		{"unavailable", approvals.Look{State: approvals.LookUnavailable, Why: "the token cannot read Access users"},
			"preview unavailable: `the token cannot read Access users`"},
		{"failed", approvals.Look{State: approvals.LookFailed, Why: "GET https://api.cloudflare.com/…: dial tcp 10.0.0.1:443: i/o timeout"},
			"preview failed; the revocation is not affected"},
	} {
		r := plainRequest("alice@example.com")
		r.Targets[0].Look = tt.look
		got := targetSection(t, r)
		want := "*Target*\n• `alice@example.com`"
		if tt.want != "" {
			want += indent + tt.want
		}
		if got != want {
			t.Errorf("%s: target list\n%q\nwant\n%q", tt.name, got, want)
		}
		checkSafe(t, tt.name, got)
		if strings.Contains(got, "10.0.0.1") {
			t.Errorf("%s: the lookup's error shows in the channel", tt.name)
		}
		// Approving stays possible, whatever the preview says.
		if c := confirmOf(t, r); c.Confirm.Text != "Revoke now" {
			t.Errorf("%s: confirm dialog %+v", tt.name, c)
		}
		// Once the request is decided but the target not revoked (denied),
		// the preview still shows; once revoked, it gives way to the
		// verification.
		denied := r
		denied.Reviews = []approvals.Review{{By: "U2", Decision: approvals.Deny, At: hostileNow}}
		if got := targetSection(t, denied); got != want {
			t.Errorf("%s, denied: target list %q", tt.name, got)
		}
	}
	revoked := threeTargets(approvals.StateRevoked)
	revoked.Targets[0].Look = approvals.Look{State: approvals.LookDone, Preview: approvals.Preview{Known: true, Sessions: 4}}
	if got := targetSection(t, revoked); strings.Contains(got, "4 active sessions") {
		t.Errorf("a revoked target shows its preview's sessions:\n%s", got)
	}
}

// revokedWith is a request for alice, revoked, whose target carries check
// and watch.
func revokedWith(check approvals.Check, watch approvals.Watch) approvals.Request {
	r := oneTarget(threeTargets(approvals.StateRevoked), "alice@example.com")
	r.Targets[0].Check, r.Targets[0].Watch = check, watch
	return r
}

// TestRenderCheckAndWatch: a revoked target says, under its line, where its
// verification stands and how the watch for its return does.
func TestRenderCheckAndWatch(t *testing.T) {
	t.Parallel()
	const head = "*Target*\n• `alice@example.com` :white_check_mark: revoked: `revoked alice's sessions`"
	const indent = "\n" + observationIndent
	watching := approvals.Watch{Until: watchUntil, Checked: hostileNow}
	for _, tt := range []struct {
		name  string
		check approvals.Check
		watch approvals.Watch
		want  []string
	}{
		{"nothing", approvals.Check{}, approvals.Watch{}, nil},
		{"verified", approvals.Check{State: approvals.CheckVerified}, approvals.Watch{},
			[]string{":white_check_mark: verified: no active session left"}},
		{"pending", approvals.Check{State: approvals.CheckPending, Remaining: 2, Until: hostileNow}, watching,
			[]string{":hourglass: verifying: 2 active sessions still listed", "watching for a return until " + slackDate(watchUntil)}},
		{"pending, one", approvals.Check{State: approvals.CheckPending, Remaining: 1}, approvals.Watch{},
			[]string{":hourglass: verifying: 1 active session still listed"}},
		{"pending, unknown", approvals.Check{State: approvals.CheckPending, Remaining: -1}, approvals.Watch{},
			[]string{":hourglass: verifying: sessions not readable yet"}},
		{"unverified", approvals.Check{State: approvals.CheckUnverified, Remaining: 3}, watching,
			[]string{":warning: unverified: 3 active sessions still listed after the timeout", "watching for a return until " + slackDate(watchUntil)}},
		{"unverified, unknown", approvals.Check{State: approvals.CheckUnverified, Remaining: -1}, approvals.Watch{},
			[]string{":warning: unverified: the sessions could not be read before the timeout"}},
		{"unavailable", approvals.Check{State: approvals.CheckUnavailable, Why: "the token cannot read Access users"}, approvals.Watch{},
			[]string{"verification unavailable: `the token cannot read Access users`"}},
		{"skipped", approvals.Check{State: approvals.CheckSkipped, Why: "no Cloudflare Access user has this email"}, approvals.Watch{},
			[]string{"not verified: `no Cloudflare Access user has this email`"}},
		{"relogin", approvals.Check{State: approvals.CheckVerified},
			approvals.Watch{Until: watchUntil, Relogin: approvals.Login{At: reloginAt, App: "grafana.example.com", IP: "203.0.113.7"}},
			[]string{":white_check_mark: verified: no active session left",
				":rotating_light: logged in again at " + slackDate(reloginAt) + " to `grafana.example.com` from `203.0.113.7` — suspend the account at the identity provider"}},
		{"relogin, nothing known", approvals.Check{}, approvals.Watch{Relogin: approvals.Login{At: reloginAt}},
			[]string{":rotating_light: logged in again at " + slackDate(reloginAt) + " to an unknown application from an unknown address — suspend the account at the identity provider"}},
		{"watch stopped", approvals.Check{State: approvals.CheckVerified},
			approvals.Watch{Until: hostileNow, Why: "the login log cannot be read: the token cannot read Access audit logs"},
			[]string{":white_check_mark: verified: no active session left",
				"return watch stopped: `the login log cannot be read: the token cannot read Access audit logs`"}},
	} {
		r := revokedWith(tt.check, tt.watch)
		r.Targets[0].Look = approvals.Look{State: approvals.LookDone, Preview: approvals.Preview{Known: true, Sessions: 9}}
		got := targetSection(t, r)
		want := head
		for _, line := range tt.want {
			want += indent + line
		}
		if got != want {
			t.Errorf("%s: target list\n%q\nwant\n%q", tt.name, got, want)
		}
		checkSafe(t, tt.name, got)
	}
	// A failed target, and one still waiting, say nothing of either.
	failed := threeTargets(approvals.StateFailed)
	failed.Targets[1].Check = approvals.Check{State: approvals.CheckVerified}
	failed.Targets[1].Watch = approvals.Watch{Until: watchUntil}
	if got := targetSection(t, failed); strings.Contains(got, "verified") || strings.Contains(got, "watching") {
		t.Errorf("a failed target shows a verification or a watch:\n%s", got)
	}
}

// TestRenderObservationsEscaped: whatever the platform sends back as an
// application, an address or a reason shows in a code span, escaped, with
// its hidden characters as escapes, its look-alike letters as escapes in an
// address, and short; in the message, in /revoke status and in the
// relogin notice.
func TestRenderObservationsEscaped(t *testing.T) {
	t.Parallel()
	for i, v := range hostileValues {
		r := revokedWith(approvals.Check{State: approvals.CheckUnavailable, Why: v},
			approvals.Watch{Until: watchUntil, Relogin: approvals.Login{At: reloginAt, App: v, IP: v}})
		r.Targets[0].Look = approvals.Look{State: approvals.LookUnavailable, Why: v}
		stopped := revokedWith(approvals.Check{State: approvals.CheckSkipped, Why: v}, approvals.Watch{Until: hostileNow, Why: v})
		pending := plainRequest("alice@example.com")
		pending.Targets[0].Look = r.Targets[0].Look
		e := approvals.Event{Kind: approvals.EventRelogin, Request: r, State: r.State(), Target: "alice@example.com", Detail: v, At: reloginAt}
		for what, s := range map[string]string{
			"message":        targetSection(t, r),
			"stopped":        targetSection(t, stopped),
			"pending":        targetSection(t, pending),
			"status":         statusTextAt(r, hostileNow),
			"notice":         reloginText(e, true),
			"direct notice":  reloginText(e, false),
			"relogin record": auditText(e, 5),
		} {
			what = fmt.Sprintf("value %d, %s", i, what)
			checkSafe(t, what, s)
			// Nothing of the value is outside a code span, where it could
			// format, ping or make a line of its own.
			outside := ""
			for j, part := range strings.Split(s, "`") {
				if j%2 == 0 {
					outside += part
				}
			}
			for _, bit := range []string{"bold", "strike", "@here", "line one", "evil", "U999", "everyone", "elpmaxe", "gle.com", ".example.com"} {
				if strings.Contains(outside, bit) {
					t.Errorf("%s: %q shows outside a code span: %q", what, bit, outside)
				}
			}
		}
		// The address shows its look-alike letters as escapes.
		if i == 4 && !strings.Contains(targetSection(t, r), "from `\"g\\u043e\\u043egle.com\"`") {
			t.Errorf("a look-alike address is not escaped: %s", targetSection(t, r))
		}
		// Long values are shortened: every observation line stays short.
		for _, s := range []string{targetSection(t, r), targetSection(t, stopped)} {
			for _, line := range strings.Split(s, "\n")[2:] {
				if n := utf8.RuneCountInString(line); n > 450 {
					t.Errorf("value %d: an observation line of %d characters: %q…", i, n, clip(line, 80))
				}
			}
		}
	}
}

// manyObserved is a request for n people with long addresses, in state,
// each target with observations as long as they get: a long preview while
// it waits; once revoked, a verification and a watch whose reasons and
// relogin are long (every third target logged in again).
func manyObserved(state approvals.State, n int) approvals.Request {
	r := hostileRequest(state)
	r.Targets = nil
	long := strings.Repeat("<!here>&`\u200b", 60)
	for i := range n {
		tg := approvals.Target{
			Email: fmt.Sprintf("%s%03d@%s.example.com", strings.Repeat("p", 40), i, strings.Repeat("d", 40)),
			State: approvals.TargetWaiting,
			Look:  approvals.Look{State: approvals.LookUnavailable, Why: long},
		}
		if i%2 == 0 {
			tg.Person = fmt.Sprintf("UPERSON%03d", i)
		}
		r.Targets = append(r.Targets, tg)
	}
	if len(r.Reviews) > 0 && r.Reviews[0].Decision == approvals.Approve {
		for i := range r.Targets {
			tg := &r.Targets[i]
			switch {
			case state == approvals.StateExecuting && i >= n/5:
			case i%7 == 0 && (state == approvals.StateFailed || state == approvals.StateExecuting):
				tg.State, tg.Outcome = approvals.TargetFailed, hostileOutcome
			default:
				tg.State, tg.Outcome = approvals.TargetRevoked, strings.Repeat("revoked <!here> ", 100)
				tg.Check = approvals.Check{State: approvals.CheckUnavailable, Why: long}
				tg.Watch = approvals.Watch{Until: hostileNow, Why: long}
				if i%3 == 0 {
					tg.Check = approvals.Check{State: approvals.CheckUnverified, Remaining: 12}
					tg.Watch = approvals.Watch{Until: watchUntil, Relogin: approvals.Login{At: reloginAt, App: long, IP: long}}
				}
			}
		}
	}
	if r.State() != state {
		panic(fmt.Sprintf("manyObserved(%s) is %s", state, r.State()))
	}
	return r
}

// TestRenderObservationsWithinLimits: a request for as many people as
// allowed, each with observations as long as they get, stays within
// Slack's limits (50 blocks, 3000 characters a section) and shows every
// target whole, with its observations; a request for so many that they do
// not fit keeps the alerts (a relogin, an unverified revocation, an
// unknown address) and drops the rest, rather than go over.
func TestRenderObservationsWithinLimits(t *testing.T) {
	t.Parallel()
	for _, state := range allStates {
		for _, n := range []int{approvals.DefaultMaxTargets, 280} {
			r := manyObserved(state, n)
			blocks, _ := renderRequest(r, hostileNotify)
			if len(blocks) > 50 {
				t.Errorf("%s, %d targets: %d blocks", state, n, len(blocks))
			}
			texts, _, _ := messageTexts(t, r, hostileNotify)
			md := strings.Join(texts["mrkdwn"], "\n")
			for _, s := range texts["mrkdwn"] {
				if c := utf8.RuneCountInString(s); c > maxSectionText || strings.HasPrefix(s, "• ") && strings.HasSuffix(s, "…") {
					t.Errorf("%s, %d targets: a section of %d characters, cut: %v", state, n, c, strings.HasSuffix(s, "…"))
				}
				checkSafe(t, string(state), s)
			}
			full := len(packTargets(r, allObservations)) <= maxTargetSections
			alerts := !full && len(packTargets(r, onlyAlerts)) <= maxTargetSections
			if n == approvals.DefaultMaxTargets && !full {
				t.Errorf("%s: %d people with every observation take %d sections", state, n, len(packTargets(r, allObservations)))
			}
			approved := r.State() != approvals.StatePending && len(r.Approvals()) > 0
			for i, tg := range r.Targets {
				entry := targetLine(r, tg, approved)
				if full || alerts {
					entry = withObservations(entry, observations(tg, false, time.Time{}), alerts)
				}
				if !strings.Contains(md, entry) {
					t.Errorf("%s, %d targets (full %v, alerts %v): target %d not shown whole as\n%s", state, n, full, alerts, i, entry)
				}
			}
			if n == 280 && (state == approvals.StateRevoked || state == approvals.StateFailed) {
				if full || !alerts {
					t.Errorf("%s: 280 people with every observation fit: %v, with only the alerts: %v; make the test's fit only with the alerts", state, full, alerts)
				}
				if strings.Contains(md, "return watch stopped") || !strings.Contains(md, ":rotating_light: logged in again") {
					t.Errorf("%s, 280 targets: the alerts are not what is kept", state)
				}
			}
		}
	}
}

// TestStatusTextObservations: /revoke status says, per target, what the
// preview showed (after the revocation too), where the verification stands
// and whether the target came back; a watch that ended says so.
func TestStatusTextObservations(t *testing.T) {
	t.Parallel()
	const indent = "\n" + observationIndent
	r := threeTargets(approvals.StateRevoked)
	r.Targets[0].Look = approvals.Look{State: approvals.LookDone, Preview: approvals.Preview{Known: true, LastLogin: lastLogin, Sessions: 2, Devices: 1}}
	r.Targets[0].Check = approvals.Check{State: approvals.CheckVerified}
	r.Targets[0].Watch = approvals.Watch{Until: watchUntil}
	r.Targets[1].Look = approvals.Look{State: approvals.LookDone}
	r.Targets[1].Check = approvals.Check{State: approvals.CheckSkipped, Why: "no Cloudflare Access user has this email"}
	r.Targets[2].Check = approvals.Check{State: approvals.CheckPending, Remaining: 1}
	r.Targets[2].Watch = approvals.Watch{Until: watchUntil, Relogin: approvals.Login{At: reloginAt, App: "vpn", IP: "2001:db8::1"}}

	s := statusTextAt(r, hostileNow)
	for _, want := range []string{
		"• `alice@example.com` :white_check_mark: revoked: `revoked alice's sessions`" +
			indent + "Cloudflare Access user · last login " + slackDate(lastLogin) + " · 2 active sessions · 1 active device" +
			indent + ":white_check_mark: verified: no active session left" +
			indent + "watching for a return until " + slackDate(watchUntil),
		"• <@UBOB> → `bob@example.com` :white_check_mark: revoked: `revoked bob's sessions`" +
			indent + ":warning: no Cloudflare Access user has this email — check for a typo" +
			indent + "not verified: `no Cloudflare Access user has this email`",
		"• `carol@example.com` :white_check_mark: revoked: `revoked carol's sessions`" +
			indent + ":hourglass: verifying: 1 active session still listed" +
			indent + ":rotating_light: logged in again at " + slackDate(reloginAt) + " to `vpn` from `2001:db8::1` — suspend the account at the identity provider",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("status lacks\n%s\nin\n%s", want, s)
		}
	}
	checkSafe(t, "status", s)

	// After the watch's end, it ended; a relogin seen stays.
	later := statusTextAt(r, watchUntil)
	if !strings.Contains(later, indent+"watched for a return until "+slackDate(watchUntil)+": none seen") ||
		strings.Contains(later, "watching") || !strings.Contains(later, ":rotating_light: logged in again") {
		t.Errorf("status after the watch:\n%s", later)
	}

	// A pending request shows the previews.
	p := threeTargets(approvals.StatePending)
	p.Targets[1].Look = approvals.Look{State: approvals.LookFailed, Why: "dial tcp 10.0.0.1:443"}
	if s := statusText(p); !strings.Contains(s, "• <@UBOB> → `bob@example.com`"+indent+"preview failed; the revocation is not affected") ||
		strings.Contains(s, "10.0.0.1") {
		t.Errorf("pending status:\n%s", s)
	}
}

// TestAuditTextObservationEvents: verified, unverified and relogin are
// records like the others: the event word, the request and record, the
// target the event is about, revokebot as the actor, and the detail quoted
// in a code span. An observed event has no record, but a line made of one
// anyway is safe.
func TestAuditTextObservationEvents(t *testing.T) {
	t.Parallel()
	r := threeTargets(approvals.StateRevoked)
	r.Targets[1].Watch.Relogin = approvals.Login{At: reloginAt, App: "<!channel> *x*", IP: "203.0.113.7"}
	for _, tt := range []struct {
		kind   approvals.EventKind
		detail string
		want   string
	}{
		{approvals.EventVerified, "no active session left, 42s after the revocation",
			"verified request=" + r.ID + " record=11 `target=\"bob@example.com\"` person=<@UBOB> actor=revokebot requester=<@U1> " +
				"devices=false warp_reauth=false `detail=\"no active session left, 42s after the revocation\"` at=2026-11-26T12:20:00Z"},
		{approvals.EventUnverified, "2 active sessions still listed 2m0s after the revocation",
			"unverified request=" + r.ID + " record=11 `target=\"bob@example.com\"` person=<@UBOB> actor=revokebot requester=<@U1> " +
				"devices=false warp_reauth=false `detail=\"2 active sessions still listed 2m0s after the revocation\"` at=2026-11-26T12:20:00Z"},
		{approvals.EventRelogin, "logged in again at 2026-11-26T12:20:00Z to <!channel> *x* from 203.0.113.7, after the revocation at " +
			"2026-11-26T12:02:00Z: their identity-provider account is still active; suspend it there",
			"relogin request=" + r.ID + " record=11 `target=\"bob@example.com\"` person=<@UBOB> actor=revokebot requester=<@U1> " +
				"devices=false warp_reauth=false `detail=\"logged in again at 2026-11-26T12:20:00Z to &lt;!channel&gt; *x* from 203.0.113.7, " +
				"after the revocation at 2026-11-26T12:02:00Z: their identity-provider account is still active; suspend it there\"` at=2026-11-26T12:20:00Z"},
	} {
		e := approvals.Event{Kind: tt.kind, Request: r, State: r.State(), Target: "bob@example.com", Detail: tt.detail, At: reloginAt}
		got := auditText(e, 11)
		if got != tt.want {
			t.Errorf("%s record\n%s\nwant\n%s", tt.kind, got, tt.want)
		}
		checkSafe(t, string(tt.kind), got)
		if !e.Audited() {
			t.Errorf("%s is not audited", tt.kind)
		}
	}
	e := approvals.Event{Kind: approvals.EventObserved, Request: r, State: r.State(), At: hostileNow}
	if e.Audited() {
		t.Errorf("observed is audited")
	}
	got := auditText(e, 12)
	if !strings.HasPrefix(got, "observed request="+r.ID+" record=12 targets=3 ") || len(auditTargets(got)) != 3 {
		t.Errorf("observed record %s", got)
	}
	checkSafe(t, "observed", got)
}

// TestReloginText: the relogin notice names the target by its address,
// never as a mention, says when, to what and from where, mentions the
// requester in the thread, and says what to do.
func TestReloginText(t *testing.T) {
	t.Parallel()
	r := threeTargets(approvals.StateRevoked)
	r.Targets[1].Watch = approvals.Watch{Until: watchUntil, Relogin: approvals.Login{At: reloginAt, App: "grafana.example.com", IP: "203.0.113.7"}}
	e := approvals.Event{Kind: approvals.EventRelogin, Request: r, State: r.State(), Target: "bob@example.com", At: reloginAt}
	want := ":rotating_light: <@U1>: `bob@example.com` logged in again after the revocation (at " + slackDate(reloginAt) +
		", to `grafana.example.com`, from `203.0.113.7`): their identity-provider account is still active. Suspend it there, then revoke again."
	if got := reloginText(e, true); got != want {
		t.Errorf("thread notice\n%s\nwant\n%s", got, want)
	}
	direct := reloginText(e, false)
	if !strings.HasPrefix(direct, ":rotating_light: Your request `"+r.ID+"`: `bob@example.com` logged in again") || strings.Contains(direct, "<@") {
		t.Errorf("direct notice %s", direct)
	}
	// Without the login (not in the request as read), it still warns.
	r.Targets[1].Watch = approvals.Watch{}
	e.Request = r
	if got := reloginText(e, true); got != ":rotating_light: <@U1>: `bob@example.com` logged in again after the revocation: "+
		"their identity-provider account is still active. Suspend it there, then revoke again." {
		t.Errorf("notice without the login: %s", got)
	}
}

// FuzzObservations checks that whatever the platform sends back as an
// application, an address or a reason makes safe mrkdwn, with no hidden
// character shown as it is, in the message, /revoke status, the relogin
// notice and the audit record; and that each observation line stays short.
func FuzzObservations(f *testing.F) {
	for _, v := range hostileValues {
		f.Add(v, v, v)
	}
	f.Add("grafana.example.com", "203.0.113.7", "the token cannot read Access users")
	f.Fuzz(func(t *testing.T, app, ip, why string) {
		r := revokedWith(approvals.Check{State: approvals.CheckUnavailable, Why: why},
			approvals.Watch{Until: watchUntil, Relogin: approvals.Login{At: reloginAt, App: app, IP: ip}})
		r.Targets[0].Look = approvals.Look{State: approvals.LookUnavailable, Why: why}
		stopped := revokedWith(approvals.Check{State: approvals.CheckSkipped, Why: why}, approvals.Watch{Until: watchUntil, Why: why})
		e := approvals.Event{Kind: approvals.EventRelogin, Request: r, State: r.State(), Target: "alice@example.com", Detail: app + ip + why, At: reloginAt}
		texts := []string{targetSection(t, r), targetSection(t, stopped), statusTextAt(r, hostileNow), reloginText(e, true), reloginText(e, false), auditText(e, 1)}
		for _, s := range texts {
			if err := checkSafeMrkdwn(s); err != nil {
				t.Fatalf("%v: %+q", err, s)
			}
			for _, r := range s {
				if what, _ := hiddenRune(r); what != "" && r != '\n' && r != ' ' {
					t.Fatalf("%s %U shown as it is: %+q", what, r, s)
				}
			}
		}
		for _, s := range texts[:2] {
			for _, line := range strings.Split(s, "\n")[2:] {
				if n := utf8.RuneCountInString(line); n > 450 {
					t.Fatalf("an observation line of %d characters: %+q", n, line)
				}
			}
		}
	})
}
