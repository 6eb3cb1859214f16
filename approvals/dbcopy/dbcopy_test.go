package dbcopy_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/dbcopy"
	"github.com/revokebot/revokebot/approvals/postgres"
	"github.com/revokebot/revokebot/approvals/postgres/pgtest"
	"github.com/revokebot/revokebot/approvals/sqlite"
)

// openSQLite opens a new database file, closed when tb ends.
func openSQLite(tb testing.TB) *sqlite.DB {
	tb.Helper()
	return openFile(tb, filepath.Join(tb.TempDir(), "revokebot.db"))
}

// openFile opens the database file at path, closed when tb ends.
func openFile(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// openPostgres opens an empty PostgreSQL schema of the test's own, and
// returns its URL too.
func openPostgres(tb testing.TB) (*postgres.DB, string) {
	tb.Helper()
	url := pgtest.Schema(tb)
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, url
}

// copyFile copies src to a temporary file, and returns its path.
func copyFile(tb testing.TB, src string) string {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(tb.TempDir(), filepath.Base(src))
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// directory knows everybody, and no groups.
type directory struct{}

func (directory) GroupMembers(context.Context, string) ([]string, error) { return nil, nil }
func (directory) Person(_ context.Context, user string) (approvals.Person, error) {
	return approvals.Person{ID: user, Name: user}, nil
}

// revoker revokes everybody but mallory.
type revoker struct{}

func (revoker) Revoke(_ context.Context, r approvals.Revocation) (string, error) {
	if r.Email == "mallory@example.com" {
		return "", errors.New("Cloudflare answered HTTP 403: [10000] Authentication error")
	}
	return "Cloudflare revoked the sessions (HTTP 200, success: true)", nil
}

// history is what recordHistory recorded, to look for after the copy.
type history struct {
	// ids are the requests, by what happened to them.
	ids map[string]string
	// keys are the submission and action keys recorded.
	keys []string
	// audit and notice are the events whose audit record and notice were
	// begun, not delivered, at auditAt and noticeAt; posting is the request
	// whose message posting was begun, at postingAt.
	audit, notice                int64
	auditAt, noticeAt, postingAt time.Time
	posting                      string
}

// recordHistory records, through the Service, a history with a request in
// every state (a pending one, one revoked with two targets, one failed, a
// denied one with a reason, an expired one, an escalated one, a refused
// one), refused decisions, and deliveries in every stage: done, begun and
// not done, not begun, and claimed by an owner whose claim ended.
func recordHistory(t *testing.T, db *sqlite.DB) history {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 123e6, time.UTC)
	now := t0
	svc := &approvals.Service{
		Store:     db,
		Revoker:   revoker{},
		Directory: directory{},
		Policy: approvals.Policy{
			Requesters:          approvals.Audience{Users: []string{"UREQ"}},
			Approvers:           approvals.Audience{Users: []string{"UAPP", "UAPP2"}},
			EscalationApprovers: approvals.Audience{Users: []string{"UESC"}},
		},
		TTL:           time.Hour,
		EscalateAfter: 10 * time.Minute,
		Now:           func() time.Time { return now },
		Logger:        slog.New(slog.DiscardHandler),
	}
	h := history{ids: map[string]string{}}
	submit := func(name, requester, reason string, opts approvals.Options, targets ...approvals.TargetInput) approvals.Request {
		t.Helper()
		key := "cmd-" + name
		r, err := svc.Submit(ctx, approvals.SubmitInput{Requester: requester, Targets: targets, Options: opts,
			Reason: reason, Key: key, Channel: "CAPPROVALS"})
		if err != nil && approvals.ErrorCode(err) != approvals.EFORBIDDEN {
			t.Fatalf("submit %s: %v", name, err)
		}
		if r.State() != approvals.StateRefused {
			if err := svc.AttachMessage(ctx, r.ID, "CAPPROVALS", "1700000000."+name); err != nil {
				t.Fatal(err)
			}
		}
		h.ids[name], h.keys = r.ID, append(h.keys, key)
		return r
	}
	decide := func(name, actor string, d approvals.Decision, reason string) {
		t.Helper()
		key := "click-" + name + "-" + actor
		_, err := svc.DecideFrom(ctx, approvals.DecideInput{ID: h.ids[name], Actor: actor, Decision: d, Reason: reason, Key: key})
		if err != nil && approvals.ErrorCode(err) != approvals.EFORBIDDEN {
			t.Fatalf("%s decides on %s: %v", actor, name, err)
		}
		h.keys = append(h.keys, key)
	}
	target := func(email string) approvals.TargetInput { return approvals.TargetInput{Email: email} }

	svc.TTL = time.Minute
	submit("expired", "UREQ", "", approvals.Options{}, target("dave@example.com"))
	svc.TTL = time.Hour
	submit("escalated", "UREQ", "suspicious logins", approvals.Options{WARPReauth: true}, target("erin@example.com"))
	now = t0.Add(11 * time.Minute)
	if _, err := svc.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	submit("pending", "UREQ", "laptop stolen", approvals.Options{Devices: true}, target("alice@example.com"))
	submit("revoked", "UREQ", "left the company", approvals.Options{},
		target("bob@example.com"), approvals.TargetInput{Email: "carol@example.com", Person: "UCAROL"})
	now = now.Add(time.Minute)
	decide("revoked", "UAPP", approvals.Approve, "")
	submit("failed", "UREQ", "", approvals.Options{UserUID: "0123456789abcdef0123456789abcdef"}, target("mallory@example.com"))
	decide("failed", "UAPP2", approvals.Approve, "")
	submit("denied", "UREQ", "", approvals.Options{}, target("frank@example.com"))
	decide("denied", "UAPP2", approvals.Deny, "frank is on holiday, not compromised")
	submit("refused", "UNOBODY", "let me in", approvals.Options{}, target("grace@example.com"))
	decide("pending", "UOTHER", approvals.Approve, "") // refused: not an approver
	decide("pending", "UREQ", approvals.Approve, "")   // refused: the requester
	now = now.Add(time.Minute)

	for name, want := range map[string]approvals.State{
		"expired": approvals.StateExpired, "escalated": approvals.StatePending, "pending": approvals.StatePending,
		"revoked": approvals.StateRevoked, "failed": approvals.StateFailed, "denied": approvals.StateDenied,
		"refused": approvals.StateRefused,
	} {
		r, err := db.Get(ctx, h.ids[name])
		if err != nil || r.State() != want {
			t.Fatalf("%s: state %s, %v; want %s", name, r.State(), err, want)
		}
	}

	// Deliveries: the first audit records and message updates are done,
	// the refused submission is audited (a later one is not), the next
	// audit record, a notice and a message posting were begun.
	for part, n := range map[approvals.Part]int{approvals.AuditRecord: 4, approvals.MessageUpdate: 3} {
		ds, err := db.Undelivered(ctx, part, n)
		if err != nil || len(ds) != n {
			t.Fatalf("%s: %d, %v", part, len(ds), err)
		}
		for _, d := range ds {
			if err := db.MarkDelivered(ctx, d.Seq, part); err != nil {
				t.Fatal(err)
			}
		}
	}
	refusals, err := db.PendingRefusals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range refusals {
		if g.Actor == "UNOBODY" {
			if err := db.MarkRefusalsDelivered(ctx, g.Actor, g.Last.Seq, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	submit("refused-again", "UNOBODY", "", approvals.Options{}, target("grace@example.com"))
	begin := func(part approvals.Part) (int64, time.Time) {
		t.Helper()
		ds, err := db.Undelivered(ctx, part, 1)
		if err != nil || len(ds) != 1 {
			t.Fatalf("%s: %d, %v", part, len(ds), err)
		}
		if first, err := db.BeginAttempt(ctx, ds[0].Seq, part); err != nil || !first.IsZero() {
			t.Fatalf("begin %s: %v, %v", part, first, err)
		}
		at, err := db.BeginAttempt(ctx, ds[0].Seq, part)
		if err != nil || at.IsZero() {
			t.Fatalf("begin %s again: %v, %v", part, at, err)
		}
		return ds[0].Seq, at
	}
	h.audit, h.auditAt = begin(approvals.AuditRecord)
	h.notice, h.noticeAt = begin(approvals.Notice)
	h.posting = h.ids["pending"]
	if _, err := db.BeginPost(ctx, h.posting); err != nil {
		t.Fatal(err)
	}
	if h.postingAt, err = db.BeginPost(ctx, h.posting); err != nil || h.postingAt.IsZero() {
		t.Fatalf("begin post again: %v, %v", h.postingAt, err)
	}
	// A replica claimed message updates and died: its claim has ended.
	if ds, err := db.Claim(ctx, approvals.MessageUpdate, "dead-replica", 2, time.Millisecond); err != nil || len(ds) == 0 {
		t.Fatalf("claim: %d, %v", len(ds), err)
	}
	time.Sleep(5 * time.Millisecond)
	return h
}

// mustCopy copies from into to, and verifies the copy.
func mustCopy(t *testing.T, from *sqlite.DB, to *postgres.DB) (dbcopy.Summary, int) {
	t.Helper()
	ctx := context.Background()
	sum, err := dbcopy.Copy(ctx, from, to)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	backlog, err := dbcopy.Verify(ctx, from, to)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return sum, backlog
}

var allStates = []approvals.State{
	approvals.StateRefused, approvals.StatePending, approvals.StateExecuting, approvals.StateDenied,
	approvals.StateCancelled, approvals.StateExpired, approvals.StateRevoked, approvals.StateFailed,
}

var allParts = []approvals.Part{approvals.AuditRecord, approvals.MessageUpdate, approvals.Notice}

// equal reports whether a and b are DeepEqual, an empty slice equal to nil
// (the stores differ there, and nothing tells them apart).
func equal(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() == reflect.Slice && vb.Kind() == reflect.Slice && va.Len() == 0 && vb.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// sameThroughStores checks that from and to answer alike through the
// Store and the Outbox, read by the test itself (not by Verify).
func sameThroughStores(t *testing.T, from *sqlite.DB, to *postgres.DB) {
	t.Helper()
	ctx := context.Background()
	for _, s := range allStates {
		a, errA := from.ListByState(ctx, s)
		b, errB := to.ListByState(ctx, s)
		if errA != nil || errB != nil || !equal(a, b) {
			t.Errorf("ListByState(%s):\nSQLite     %+v (%v)\nPostgreSQL %+v (%v)", s, a, errA, b, errB)
		}
		for _, r := range a {
			got, err := to.Get(ctx, r.ID)
			if err != nil || !reflect.DeepEqual(got, r) {
				t.Errorf("Get(%s):\nSQLite     %+v\nPostgreSQL %+v (%v)", r.ID, r, got, err)
			}
		}
	}
	for _, part := range allParts {
		a, errA := from.Undelivered(ctx, part, 100)
		b, errB := to.Undelivered(ctx, part, 100)
		if errA != nil || errB != nil || !equal(a, b) {
			t.Errorf("Undelivered(%s):\nSQLite     %+v (%v)\nPostgreSQL %+v (%v)", part, a, errA, b, errB)
		}
	}
	a, errA := from.PendingRefusals(ctx)
	b, errB := to.PendingRefusals(ctx)
	if errA != nil || errB != nil || !equal(a, b) {
		t.Errorf("PendingRefusals:\nSQLite     %+v (%v)\nPostgreSQL %+v (%v)", a, errA, b, errB)
	}
	na, errA := from.Backlog(ctx)
	nb, errB := to.Backlog(ctx)
	if errA != nil || errB != nil || na != nb {
		t.Errorf("Backlog: SQLite %d (%v), PostgreSQL %d (%v)", na, errA, nb, errB)
	}
}

func TestCopyHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	from := openSQLite(t)
	h := recordHistory(t, from)
	to, _ := openPostgres(t)

	sum, backlog := mustCopy(t, from, to)
	want := dbcopy.Summary{Requests: 8, Targets: 9, Reviews: 3, Events: sum.Events, LastSeq: sum.Events}
	if !reflect.DeepEqual(sum, want) || sum.Events < 15 {
		t.Errorf("summary %+v, want %+v with every event", sum, want)
	}
	if n, _ := from.Backlog(ctx); backlog != n || backlog == 0 {
		t.Errorf("Verify's backlog %d, SQLite's %d", backlog, n)
	}
	sameThroughStores(t, from, to)

	for _, key := range h.keys {
		if seen, err := to.SeenKey(ctx, key); err != nil || !seen {
			t.Errorf("SeenKey(%s) = %v, %v after the copy", key, seen, err)
		}
	}
	if seen, err := to.SeenKey(ctx, "cmd-never"); err != nil || seen {
		t.Errorf("SeenKey of a key never recorded = %v, %v", seen, err)
	}
	// A delivery begun before the move is found begun, since when it was.
	for _, c := range []struct {
		seq  int64
		part approvals.Part
		at   time.Time
	}{{h.audit, approvals.AuditRecord, h.auditAt}, {h.notice, approvals.Notice, h.noticeAt}} {
		if at, err := to.BeginAttempt(ctx, c.seq, c.part); err != nil || !at.Equal(c.at) {
			t.Errorf("BeginAttempt(%d, %s) = %v, %v; want the attempt begun at %v", c.seq, c.part, at, err, c.at)
		}
	}
	if at, err := to.BeginPost(ctx, h.posting); err != nil || !at.Equal(h.postingAt) {
		t.Errorf("BeginPost = %v, %v; want the post begun at %v", at, err, h.postingAt)
	}
	if n, err := to.CountByRequester(ctx, "UREQ", approvals.StatePending); err != nil || n != 2 {
		t.Errorf("CountByRequester(UREQ, pending) = %d, %v; want 2", n, err)
	}

	// Nothing is claimed: a replica claims every delivery still to do,
	// including those the dead replica had claimed.
	for _, part := range allParts {
		due, err := to.Undelivered(ctx, part, 100)
		if err != nil {
			t.Fatal(err)
		}
		claimed, err := to.Claim(ctx, part, "replica-1", 100, time.Minute)
		if err != nil || len(claimed) != len(due) {
			t.Errorf("Claim(%s) = %d deliveries, %v; want all %d", part, len(claimed), err, len(due))
		}
		if err := to.ReleaseClaims(ctx, "replica-1"); err != nil {
			t.Fatal(err)
		}
	}

	// A second copy into the same database is refused, and changes nothing.
	_, err := dbcopy.Copy(ctx, from, to)
	var notEmpty *dbcopy.NotEmptyError
	if !errors.As(err, &notEmpty) || notEmpty.Requests != sum.Requests || notEmpty.Events != sum.Events {
		t.Fatalf("second Copy: %v, want a NotEmptyError with %d requests and %d events", err, sum.Requests, sum.Events)
	}
	sameThroughStores(t, from, to)

	// New events are numbered after the copied ones.
	r := approvals.Request{ID: "00000000-0000-4000-8000-000000000001", Requester: "UREQ", Required: 1,
		Targets:   []approvals.Target{{Email: "zoe@example.com", State: approvals.TargetWaiting}},
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := to.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: "UREQ", At: time.Now()}, 0); err != nil {
		t.Fatal(err)
	}
	ds, err := to.Undelivered(ctx, approvals.AuditRecord, 100)
	if err != nil || len(ds) == 0 {
		t.Fatal(ds, err)
	}
	if last := ds[len(ds)-1]; last.Event.Request.ID != r.ID || last.Seq != sum.LastSeq+1 {
		t.Errorf("the first new event is %d of %s, want %d of %s", last.Seq, last.Event.Request.ID, sum.LastSeq+1, r.ID)
	}
}

// TestCopyRelease3 copies the database of the release before aggregates,
// upgraded as it opens.
func TestCopyRelease3(t *testing.T) {
	t.Parallel()
	from := openFile(t, copyFile(t, "../sqlite/testdata/release-v3.db"))
	to, _ := openPostgres(t)
	sum, backlog := mustCopy(t, from, to)
	want := dbcopy.Summary{Requests: 9, Targets: 9, Reviews: 5, Events: 19, LastSeq: 19}
	if !reflect.DeepEqual(sum, want) {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	if backlog != 3 {
		t.Errorf("backlog %d, want 3 (grace's and heidi's events)", backlog)
	}
	sameThroughStores(t, from, to)
}

// TestCopyReportsLegacyText: what a schema-3 column says and nothing else
// does is reported, since PostgreSQL has no place for it.
func TestCopyReportsLegacyText(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := copyFile(t, "../sqlite/testdata/release-v3.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE requests SET outcome = 'noted by hand' WHERE email = 'bob@example.com'`,
		`UPDATE requests SET decided_by = 'UGONE' WHERE email = 'dave@example.com'`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	from := openFile(t, path)
	to, _ := openPostgres(t)
	sum, _ := mustCopy(t, from, to)
	var want []string
	for _, s := range []approvals.State{approvals.StateDenied, approvals.StateExpired} {
		rs, err := from.ListByState(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if e := r.Targets[0].Email; e == "bob@example.com" || e == "dave@example.com" {
				want = append(want, r.ID)
			}
		}
	}
	if len(want) != 2 {
		t.Fatalf("found %v", want)
	}
	if want[0] > want[1] {
		want[0], want[1] = want[1], want[0]
	}
	if !reflect.DeepEqual(sum.Legacy, want) {
		t.Errorf("Legacy = %v, want %v", sum.Legacy, want)
	}
}

// TestCopyRefusesFileInUse: a lease or a claim held in the file means a
// revokebot runs on it.
func TestCopyRefusesFileInUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, hold := range map[string]func(*sqlite.DB) error{
		"lease": func(db *sqlite.DB) error {
			_, err := db.Lease(ctx, "courier:refusals", "host-1", time.Minute)
			return err
		},
		"claim": func(db *sqlite.DB) error {
			_, err := db.Claim(ctx, approvals.AuditRecord, "host-1", 10, time.Minute)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			from := openFile(t, copyFile(t, "../sqlite/testdata/release-v3.db"))
			if err := hold(from); err != nil {
				t.Fatal(err)
			}
			to, _ := openPostgres(t)
			_, err := dbcopy.Copy(ctx, from, to)
			var inUse *dbcopy.InUseError
			if !errors.As(err, &inUse) || inUse.Owner != "host-1" || time.Until(inUse.Until) < 30*time.Second {
				t.Fatalf("Copy: %v, want an InUseError naming host-1 for a minute", err)
			}
			if rs, err := to.ListByState(ctx, approvals.StateRevoked); err != nil || len(rs) != 0 {
				t.Errorf("PostgreSQL holds %d requests, %v", len(rs), err)
			}
		})
	}
}

// TestCopyWritesNothingOnFailure: a value PostgreSQL cannot store stops the
// copy, names where it is, and nothing is written.
func TestCopyWritesNothingOnFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	from := openFile(t, copyFile(t, "../sqlite/testdata/release-v3.db"))
	now := time.Now()
	r := approvals.Request{ID: "ffffffff-0000-4000-8000-000000000001", Requester: "UREQ", Required: 1, Reason: "nul\x00byte",
		Targets:   []approvals.Target{{Email: "zoe@example.com", State: approvals.TargetWaiting}},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := from.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r, At: now}, 0); err != nil {
		t.Fatal(err)
	}
	to, _ := openPostgres(t)
	_, err := dbcopy.Copy(ctx, from, to)
	if err == nil || !strings.Contains(err.Error(), r.ID) || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("Copy: %v, want the request and the column named", err)
	}
	for _, s := range allStates {
		if rs, err := to.ListByState(ctx, s); err != nil || len(rs) != 0 {
			t.Errorf("PostgreSQL holds %d %s requests, %v", len(rs), s, err)
		}
	}
	if n, err := to.Backlog(ctx); err != nil || n != 0 {
		t.Errorf("PostgreSQL holds %d events, %v", n, err)
	}
}

// TestCopyEmpty: an empty file copies as nothing, and events are numbered
// from 1.
func TestCopyEmpty(t *testing.T) {
	t.Parallel()
	from := openSQLite(t)
	to, _ := openPostgres(t)
	if sum, backlog := mustCopy(t, from, to); !reflect.DeepEqual(sum, dbcopy.Summary{}) || backlog != 0 {
		t.Errorf("summary %+v, backlog %d", sum, backlog)
	}
}

// TestVerifyFindsDifferences: Verify fails when PostgreSQL reads otherwise.
func TestVerifyFindsDifferences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	from := openFile(t, copyFile(t, "../sqlite/testdata/release-v3.db"))
	to, url := openPostgres(t)
	mustCopy(t, from, to)
	rs, err := to.ListByState(ctx, approvals.StatePending)
	if err != nil || len(rs) != 1 {
		t.Fatal(rs, err)
	}
	pgtest.Exec(t, url, `UPDATE requests SET reason = 'changed' WHERE id = $1`, rs[0].ID)
	_, err = dbcopy.Verify(ctx, from, to)
	if err == nil || !strings.Contains(err.Error(), rs[0].ID) || !strings.Contains(err.Error(), "Reason is pending at upgrade in SQLite, changed in PostgreSQL") {
		t.Errorf("Verify: %v", err)
	}
	pgtest.Exec(t, url, `UPDATE requests SET reason = 'pending at upgrade' WHERE id = $1`, rs[0].ID)
	pgtest.Exec(t, url, `UPDATE events SET audited_at = 0`)
	if _, err = dbcopy.Verify(ctx, from, to); err == nil || !strings.Contains(err.Error(), "undelivered audit records") {
		t.Errorf("Verify: %v", err)
	}
}
