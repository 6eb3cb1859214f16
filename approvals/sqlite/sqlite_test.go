package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/approvals/storetest"
)

// MustOpen opens a fresh database in a temporary directory.
func MustOpen(tb testing.TB) (*sqlite.DB, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "revokebot.db")
	return openAt(tb, path), path
}

// openAt opens the database at path, closed when tb ends.
func openAt(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// execRaw runs query on the database file at path, past the store and its
// migrations.
func execRaw(t *testing.T, path, query string) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(context.Background(), query); err != nil {
		t.Fatal(err)
	}
}

// TestConformance runs the behaviour every approvals.Store promises.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) (approvals.Store, func() approvals.Store) {
		db, path := MustOpen(t)
		return db, func() approvals.Store {
			db.Close()
			return openAt(t, path)
		}
	})
}

// approveBy records who's approval of request id (an approved event).
func approveBy(tb testing.TB, db *sqlite.DB, id, who string) approvals.Request {
	tb.Helper()
	r, err := db.Update(context.Background(), id, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		at := time.Now().UTC().Truncate(time.Millisecond)
		cur.Reviews = append(cur.Reviews, approvals.Review{By: who, Decision: approvals.Approve, At: at})
		return cur, []approvals.Event{{Kind: approvals.EventApproved, Actor: who, At: at}}, nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// TestCountByState: CountByState is not part of approvals.Store, so its
// test is run here rather than by storetest.Run.
func TestCountByState(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	storetest.CountByState(t, db)
}

func TestOpenBadPath(t *testing.T) {
	t.Parallel()
	_, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "missing-dir", "x.db"))
	if err == nil {
		t.Fatal("opening a database in a missing directory succeeded")
	}
	if _, err := sqlite.Open(context.Background(), ""); err == nil {
		t.Fatal("empty path accepted")
	}
}

// copyFile copies a checked-in database to a temporary file.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestUpgradeFromSchema3 opens testdata/release-v3.db, a database written by
// the release before requests had several targets (schema 3; see its
// requests below), and checks that every request comes through as a
// one-target aggregate in the same state, with the review that decided it,
// and that the upgraded requests keep working.
func TestUpgradeFromSchema3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := copyFile(t, "testdata/release-v3.db")
	db := openAt(t, path)
	if v, err := db.SchemaVersion(ctx); err != nil || v != 7 {
		t.Fatalf("schema version = %d, %v; want 7", v, err)
	}
	// The events of the old log are chained at the upgrade, in order.
	links, err := db.Chain(ctx, 0, -1)
	if err != nil || len(links) == 0 {
		t.Fatalf("Chain: %d links, %v", len(links), err)
	}
	if _, err := approvals.VerifyChain("", links); err != nil {
		t.Errorf("the upgraded log's chain: %v", err)
	}
	type want struct {
		state    approvals.State
		reviewer string
		decision approvals.Decision
		target   approvals.TargetState
	}
	wants := map[string]want{
		"alice@example.com":   {approvals.StateRevoked, "UAPP", approvals.Approve, approvals.TargetRevoked},
		"mallory@example.com": {approvals.StateFailed, "UAPP", approvals.Approve, approvals.TargetFailed},
		"bob@example.com":     {approvals.StateDenied, "UAPP", approvals.Deny, approvals.TargetWaiting},
		"carol@example.com":   {approvals.StateCancelled, "UREQ", approvals.Deny, approvals.TargetWaiting},
		"dave@example.com":    {approvals.StateExpired, "", 0, approvals.TargetWaiting},
		"erin@example.com":    {approvals.StateRefused, "", 0, approvals.TargetWaiting},
		"frank@example.com":   {approvals.StateExpired, "", 0, approvals.TargetWaiting},
		"grace@example.com":   {approvals.StatePending, "", 0, approvals.TargetWaiting},
		"heidi@example.com":   {approvals.StateExecuting, "UAPP", approvals.Approve, approvals.TargetWaiting},
	}
	byEmail := map[string]approvals.Request{}
	for _, s := range []approvals.State{approvals.StateRevoked, approvals.StateFailed, approvals.StateDenied, approvals.StateCancelled,
		approvals.StateExpired, approvals.StateRefused, approvals.StatePending, approvals.StateExecuting} {
		rs, err := db.ListByState(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if len(r.Targets) != 1 {
				t.Fatalf("%s: %d targets, want 1", r.ID, len(r.Targets))
			}
			byEmail[r.Targets[0].Email] = r
		}
	}
	if len(byEmail) != len(wants) {
		t.Fatalf("%d requests after the upgrade, want %d", len(byEmail), len(wants))
	}
	for email, w := range wants {
		r := byEmail[email]
		if r.State() != w.state || r.Targets[0].State != w.target || r.Version != 1 || r.RequiredApprovals() != 1 {
			t.Errorf("%s: state %s, target %s, version %d; want %s, %s, 1", email, r.State(), r.Targets[0].State, r.Version, w.state, w.target)
		}
		if w.reviewer == "" {
			if len(r.Reviews) != 0 {
				t.Errorf("%s: reviews %+v, want none", email, r.Reviews)
			}
		} else if len(r.Reviews) != 1 || r.Reviews[0].By != w.reviewer || r.Reviews[0].Decision != w.decision || r.Reviews[0].At.IsZero() {
			t.Errorf("%s: reviews %+v, want one %s by %s", email, r.Reviews, w.decision, w.reviewer)
		}
		if r.State().Final() && r.FinishedAt.IsZero() {
			t.Errorf("%s: final without FinishedAt", email)
		}
	}
	alice := byEmail["alice@example.com"]
	if alice.Reason != "laptop stolen" || !alice.Options.Devices || !alice.Options.WARPReauth || alice.MessageTS == "" ||
		alice.Targets[0].Outcome == "" || alice.SubmitKey == "" {
		t.Errorf("alice after the upgrade: %+v", alice)
	}
	if byEmail["erin@example.com"].Refusal == "" {
		t.Errorf("the refused request lost why it was refused")
	}
	// Events keep their order; the revoked and failed ones name their target.
	audits, err := db.Undelivered(ctx, approvals.AuditRecord, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(audits) != 3 {
		t.Errorf("%d audit records still to deliver, want the 3 of grace and heidi", len(audits))
	}
	if notices, _ := db.Undelivered(ctx, approvals.Notice, 100); len(notices) != 0 {
		t.Errorf("the upgrade made %d old events send notices", len(notices))
	}
	// The upgraded requests work: heidi's revocation finishes, grace is approved.
	heidi := byEmail["heidi@example.com"]
	done, err := db.Update(ctx, heidi.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Targets[0].State, cur.Targets[0].FinishedAt = approvals.TargetRevoked, time.Now()
		return cur, []approvals.Event{{Kind: approvals.EventRevoked, Target: "heidi@example.com", At: time.Now()}}, nil
	})
	if err != nil || done.State() != approvals.StateRevoked || done.Version != 2 {
		t.Fatalf("finishing heidi: %s, %v", done.State(), err)
	}
	if got := approveBy(t, db, byEmail["grace@example.com"].ID, "UAPP"); got.State() != approvals.StateExecuting {
		t.Errorf("grace approved: %s", got.State())
	}
	db.Close()
	// Opening again applies nothing twice.
	if n, err := openAt(t, path).CountByState(ctx, approvals.StateRevoked); err != nil || n != 2 {
		t.Errorf("revoked after reopening = %d, %v; want 2", n, err)
	}
}

// TestUpgradeKeepsDecidedRowsWithoutDecider: a decided row that does not
// name who decided (edited by hand) must not come back as pending.
func TestUpgradeKeepsDecidedRowsWithoutDecider(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := copyFile(t, "testdata/release-v3.db")
	execRaw(t, path, `UPDATE requests SET decided_by = '' WHERE email IN ('bob@example.com', 'alice@example.com')`)
	db := openAt(t, path)
	for state, email := range map[approvals.State]string{approvals.StateDenied: "bob@example.com", approvals.StateRevoked: "alice@example.com"} {
		rs, err := db.ListByState(ctx, state)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range rs {
			if r.Targets[0].Email == email {
				found = r.State() == state && len(r.Reviews) == 1 && r.Reviews[0].By == "(unknown)"
			}
		}
		if !found {
			t.Errorf("%s is not %s with a review by (unknown) after the upgrade", email, state)
		}
	}
}

// TestMigrateFromFirstRelease opens a database written by revokebot's first
// release (schema version 1) and checks that the upgrade keeps its requests
// and that the new schema works on them.
func TestMigrateFromFirstRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	schema, err := os.ReadFile("testdata/schema_v1.sql")
	if err != nil {
		t.Fatal(err)
	}
	execRaw(t, path, string(schema))
	db := openAt(t, path)
	if v, err := db.SchemaVersion(ctx); err != nil || v != 7 {
		t.Fatalf("schema version = %d, %v; want 7", v, err)
	}
	const id = "7d4f8e9a-1c2b-4d3e-8f5a-6b7c8d9e0f1a"
	old, err := db.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if old.State() != approvals.StatePending || old.Targets[0].Email != "alice@example.com" || !old.Options.Devices ||
		old.MessageTS != "1764158400.000100" || old.SubmitKey != "" {
		t.Fatalf("old request after upgrade: %+v", old)
	}
	approveBy(t, db, id, "U2")
	if got, err := db.Undelivered(ctx, approvals.MessageUpdate, 10); err != nil || len(got) != 1 || got[0].Current.ID != id {
		t.Fatalf("undelivered = %+v, %v", got, err)
	}
	db.Close()
	// Opening again applies nothing twice.
	if v, err := openAt(t, path).SchemaVersion(ctx); err != nil || v != 7 {
		t.Fatalf("schema version after reopening = %d, %v; want 7", v, err)
	}
}

func TestMigrateFromEmpty(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	if v, err := db.SchemaVersion(context.Background()); err != nil || v != 7 {
		t.Fatalf("schema version = %d, %v; want 7", v, err)
	}
}

// A read-only open reads what the store wrote, writes nothing, never
// creates a file, and refuses a file of another schema.
func TestOpenReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := MustOpen(t)
	r := approvals.Request{ID: uuid.NewString(), Requester: "U1", Required: 1,
		Targets:   []approvals.Target{{Email: "a@example.com", State: approvals.TargetWaiting}},
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond), ExpiresAt: time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)}
	if err := db.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r, At: r.CreatedAt}, 0); err != nil {
		t.Fatal(err)
	}
	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got, err := ro.Get(ctx, r.ID); err != nil || got.ID != r.ID {
		t.Errorf("Get through the read-only open: %+v, %v", got, err)
	}
	if links, err := ro.Chain(ctx, 0, -1); err != nil || len(links) != 1 {
		t.Errorf("Chain: %d links, %v", len(links), err)
	}
	if err := ro.SetMessage(ctx, r.ID, "C1", "1.2"); err == nil {
		t.Error("a write through the read-only open succeeded")
	}
	missing := filepath.Join(t.TempDir(), "none.db")
	if _, err := sqlite.OpenReadOnly(ctx, missing); err == nil {
		t.Error("a missing file opened")
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("a read-only open created the file")
	}
	old := copyFile(t, "testdata/release-v3.db")
	if _, err := sqlite.OpenReadOnly(ctx, old); err == nil || !strings.Contains(err.Error(), "start this revokebot on it once") {
		t.Errorf("an old schema: %v, want a refusal saying how to upgrade it", err)
	}
}

// TestCreateDuplicateAtCap: a submission made again is told as a duplicate
// even when its requester is at the pending cap (it is what made them so),
// and a new one at the cap is refused saying how many are pending.
func TestCreateDuplicateAtCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := MustOpen(t)
	newRequest := func() approvals.Request {
		now := time.Now().UTC().Truncate(time.Millisecond)
		return approvals.Request{ID: uuid.NewString(), Requester: "UREQ", Required: 1, SubmitKey: "submit-" + uuid.NewString(),
			Targets:   []approvals.Target{{Email: "a@example.com", State: approvals.TargetWaiting}},
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	create := func(r approvals.Request) error {
		return db.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r, At: r.CreatedAt}, 1)
	}
	r := newRequest()
	if err := create(r); err != nil {
		t.Fatal(err)
	}
	again := newRequest()
	again.SubmitKey = r.SubmitKey
	if err := create(again); !errors.Is(err, approvals.ErrDuplicate) {
		t.Errorf("the same submission again, at the cap: %v, want ErrDuplicate", err)
	}
	err := create(newRequest())
	if !errors.Is(err, approvals.ErrLimit) || !strings.Contains(err.Error(), "UREQ has 1 pending") {
		t.Errorf("a new submission at the cap: %v, want ErrLimit saying 1 is pending", err)
	}
	if n, err := db.CountByRequester(ctx, "UREQ", approvals.StatePending); n != 1 || err != nil {
		t.Errorf("%d pending, %v; want 1", n, err)
	}
}

// TestUpdateReturnsMessageSetMeanwhile: the request Update returns carries
// the message SetMessage recorded after the request was read (SetMessage
// does not change the version); one it had already is kept.
func TestUpdateReturnsMessageSetMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := MustOpen(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := approvals.Request{ID: uuid.NewString(), Requester: "UREQ", Required: 3,
		Targets:   []approvals.Target{{Email: "a@example.com", State: approvals.TargetWaiting}},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.Create(ctx, r, approvals.Event{Kind: approvals.EventRequested, Request: r, At: now}, 0); err != nil {
		t.Fatal(err)
	}
	got, err := db.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		if cur.MessageTS == "" {
			if err := db.SetMessage(ctx, r.ID, "C1", "1.2"); err != nil {
				t.Errorf("SetMessage: %v", err)
			}
		}
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "UAPP1", Decision: approvals.Approve, At: now})
		return cur, []approvals.Event{{Kind: approvals.EventApproved, Actor: "UAPP1", At: now}}, nil
	})
	if err != nil || got.Channel != "C1" || got.MessageTS != "1.2" {
		t.Errorf("Update returned message %q/%q, %v; want C1/1.2", got.Channel, got.MessageTS, err)
	}
	got = approveBy(t, db, r.ID, "UAPP2")
	if got.Channel != "C1" || got.MessageTS != "1.2" {
		t.Errorf("Update returned message %q/%q; want C1/1.2", got.Channel, got.MessageTS)
	}
}
