package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
)

func kindsOf(ds []approvals.Delivery) []approvals.EventKind {
	var out []approvals.EventKind
	for _, d := range ds {
		out = append(out, d.Event.Kind)
	}
	return out
}

func TestOutboxOrderAndMarks(t *testing.T) {
	t.Parallel()
	db, path := MustOpen(t)
	ctx := context.Background()
	r := newRequest()
	create(t, db, r)
	if err := db.SetMessage(ctx, r.ID, "C1", "1.1"); err != nil {
		t.Fatal(err)
	}
	refused := eventOf(approvals.EventRefused, r)
	refused.Actor, refused.Detail = "U9", "user is not an approver"
	if err := db.Append(ctx, refused); err != nil {
		t.Fatal(err)
	}
	approveBy(t, db, r.ID, "U2")

	audits, err := db.Undelivered(ctx, approvals.AuditRecord, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Refused attempts are audited apart (PendingRefusals).
	if k := kindsOf(audits); len(k) != 2 || k[0] != approvals.EventRequested || k[1] != approvals.EventApproved {
		t.Fatalf("audit kinds %v", k)
	}
	if !(audits[0].Seq < audits[1].Seq) {
		t.Fatalf("seqs not increasing: %d %d", audits[0].Seq, audits[1].Seq)
	}
	for i, d := range audits {
		if d.Current.State() != approvals.StateExecuting || d.Current.Channel != "C1" {
			t.Errorf("delivery %d: current %+v", i, d.Current)
		}
	}
	// The event keeps the request's state after the event.
	if audits[0].Event.State != approvals.StatePending || audits[1].Event.State != approvals.StateExecuting {
		t.Fatalf("events %+v", audits)
	}
	if audits[0].Event.Request.Options != r.Options || audits[0].Event.Request.Reason != r.Reason || len(audits[0].Event.Request.Targets) != 1 {
		t.Fatalf("event request %+v", audits[0].Event.Request)
	}
	refusals, err := db.PendingRefusals(ctx)
	if err != nil || len(refusals) != 1 || refusals[0].Actor != "U9" || refusals[0].Count != 1 ||
		refusals[0].First.Event.Detail != "user is not an approver" || !refusals[0].LastAudited.IsZero() {
		t.Fatalf("pending refusals %+v, %v", refusals, err)
	}
	// The first event posts the message, a state change redraws it; a
	// refusal changes nothing there.
	messages, err := db.Undelivered(ctx, approvals.MessageUpdate, 10)
	if err != nil || len(messages) != 2 || messages[0].Seq != audits[0].Seq || messages[1].Seq != audits[1].Seq {
		t.Fatalf("message updates %+v, %v", messages, err)
	}

	for _, seq := range []int64{audits[0].Seq, audits[1].Seq} {
		if err := db.MarkDelivered(ctx, seq, approvals.AuditRecord); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.MarkDelivered(ctx, messages[0].Seq, approvals.MessageUpdate); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkDelivered(ctx, 9999, approvals.AuditRecord); err == nil {
		t.Fatal("marking a missing event succeeded")
	}
	if err := db.MarkDelivered(ctx, audits[0].Seq, approvals.Part(9)); err == nil {
		t.Fatal("marking an unknown part succeeded")
	}
	db.Close()

	// What is left survives a restart.
	again, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if n, err := again.Backlog(ctx); err != nil || n != 2 {
		t.Fatalf("backlog = %d, %v; want 2 (the refused record, the approved message)", n, err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := again.MarkRefusalsDelivered(ctx, "U9", refusals[0].Last.Seq, at); err != nil {
		t.Fatal(err)
	}
	if err := again.MarkDelivered(ctx, messages[1].Seq, approvals.MessageUpdate); err != nil {
		t.Fatal(err)
	}
	if n, err := again.Backlog(ctx); err != nil || n != 0 {
		t.Fatalf("backlog = %d, %v; want 0", n, err)
	}
	for _, part := range []approvals.Part{approvals.AuditRecord, approvals.MessageUpdate} {
		if rest, _ := again.Undelivered(ctx, part, 10); len(rest) != 0 {
			t.Fatalf("undelivered %s after marking all: %+v", part, rest)
		}
	}
	// The next refusal of U9 knows when U9's last record went out.
	if err := again.Append(ctx, refused); err != nil {
		t.Fatal(err)
	}
	if refusals, err = again.PendingRefusals(ctx); err != nil || len(refusals) != 1 || !refusals[0].LastAudited.Equal(at) {
		t.Fatalf("pending refusals after one was audited: %+v, %v", refusals, err)
	}
}

func TestAttemptsAreRememberedAcrossRestarts(t *testing.T) {
	t.Parallel()
	db, path := MustOpen(t)
	ctx := context.Background()
	r := newRequest()
	create(t, db, r)
	audits, err := db.Undelivered(ctx, approvals.AuditRecord, 1)
	if err != nil || len(audits) != 1 {
		t.Fatal(audits, err)
	}
	seq := audits[0].Seq
	if first, err := db.BeginAttempt(ctx, seq, approvals.AuditRecord); err != nil || !first.IsZero() {
		t.Fatalf("first attempt: %v, %v; want the zero time", first, err)
	}
	if first, err := db.BeginPost(ctx, r.ID); err != nil || !first.IsZero() {
		t.Fatalf("first post: %v, %v; want the zero time", first, err)
	}
	db.Close()
	again, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	// A second attempt, after a crash, learns when the first began.
	if first, err := again.BeginAttempt(ctx, seq, approvals.AuditRecord); err != nil || first.IsZero() || time.Since(first) > time.Minute {
		t.Fatalf("second attempt: %v, %v; want the first attempt's time", first, err)
	}
	if first, err := again.BeginPost(ctx, r.ID); err != nil || first.IsZero() {
		t.Fatalf("second post: %v, %v; want the first attempt's time", first, err)
	}
	if first, err := again.BeginAttempt(ctx, seq, approvals.Notice); err != nil || !first.IsZero() {
		t.Fatalf("first notice attempt: %v, %v; want the zero time (tracked apart from the audit record)", first, err)
	}
	if _, err := again.BeginAttempt(ctx, seq, approvals.MessageUpdate); err == nil {
		t.Fatal("attempts of message updates (which are redrawn in place) are not tracked; want an error")
	}
}

func TestEventKeysAreRecordedOnce(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	r := newRequest()
	create(t, db, r)
	refused := eventOf(approvals.EventRefused, r)
	refused.Key = "slack-click:U9:1.000001:" + r.ID
	if err := db.Append(ctx, refused); err != nil {
		t.Fatal(err)
	}
	if err := db.Append(ctx, refused); !errors.Is(err, approvals.ErrDuplicate) {
		t.Fatalf("second event with the same key: %v, want ErrDuplicate", err)
	}
	_, err := db.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "U2", Decision: approvals.Deny, At: time.Now()})
		return cur, []approvals.Event{{Kind: approvals.EventDenied, Actor: "U2", At: time.Now(), Key: refused.Key}}, nil
	})
	if !errors.Is(err, approvals.ErrDuplicate) {
		t.Fatalf("update with a recorded key: %v, want ErrDuplicate", err)
	}
	if got, _ := db.Get(ctx, r.ID); got.State() != approvals.StatePending {
		t.Fatalf("a refused update changed the request: %s", got.State())
	}
	if seen, err := db.SeenKey(ctx, refused.Key); err != nil || !seen {
		t.Fatalf("SeenKey = %v, %v", seen, err)
	}
	if seen, err := db.SeenKey(ctx, "slack-click:other"); err != nil || seen {
		t.Fatalf("SeenKey of an unknown key = %v, %v", seen, err)
	}
}

func TestUndeliveredLimit(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	for range 5 {
		r := newRequest()
		create(t, db, r)
	}
	got, err := db.Undelivered(ctx, approvals.AuditRecord, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("got %d, %v; want 3", len(got), err)
	}
}

func TestCreateIsAtomicWithItsEvent(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	r := newRequest()
	// An event the log refuses must take the request down with it.
	if err := db.Create(ctx, r, eventOf("bogus", r), 0); err == nil {
		t.Fatal("create with an invalid event succeeded")
	}
	if _, err := db.Get(ctx, r.ID); !errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("request stored without its event: %v", err)
	}
	create(t, db, r)
	_, err := db.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "U2", Decision: approvals.Approve, At: time.Now()})
		return cur, []approvals.Event{{Kind: "bogus", At: time.Now()}}, nil
	})
	if err == nil {
		t.Fatal("update with an invalid event succeeded")
	}
	if got, _ := db.Get(ctx, r.ID); got.State() != approvals.StatePending || len(got.Reviews) != 0 {
		t.Fatalf("state changed without its event: %s", got.State())
	}
}

func TestSubmitKeyIsUnique(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	first := newRequest()
	first.SubmitKey = "envelope-1"
	create(t, db, first)
	again := newRequest()
	again.SubmitKey = "envelope-1"
	if err := db.Create(ctx, again, eventOf(approvals.EventRequested, again), 0); !errors.Is(err, approvals.ErrDuplicate) {
		t.Fatalf("err = %v, want ErrDuplicate", err)
	}
	if n, _ := db.Backlog(ctx); n != 1 {
		t.Fatalf("%d events, want 1: the duplicate left one", n)
	}
	// Requests without a key never collide.
	for range 2 {
		r := newRequest()
		create(t, db, r)
	}
}

func TestCountByRequester(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	ctx := context.Background()
	for i, who := range []string{"U1", "U1", "U2", "U1"} {
		r := newRequest()
		r.Requester = who
		if i == 3 {
			r.Refusal = "requester is not in the requesters list"
		}
		create(t, db, r)
	}
	if n, err := db.CountByRequester(ctx, "U1", approvals.StatePending); err != nil || n != 2 {
		t.Fatalf("U1 pending = %d, %v; want 2", n, err)
	}
	if n, err := db.CountByState(ctx, approvals.StatePending); err != nil || n != 3 {
		t.Fatalf("pending = %d, %v; want 3", n, err)
	}
	if n, _ := db.CountByRequester(ctx, "U3", approvals.StatePending); n != 0 {
		t.Fatalf("U3 pending = %d", n)
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
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, string(schema)); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.SchemaVersion(ctx); err != nil || v != 5 {
		t.Fatalf("schema version = %d, %v; want 5", v, err)
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
	again, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
}

func TestMigrateFromEmpty(t *testing.T) {
	t.Parallel()
	db, _ := MustOpen(t)
	if v, err := db.SchemaVersion(context.Background()); err != nil || v != 5 {
		t.Fatalf("schema version = %d, %v; want 5", v, err)
	}
}
