package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// TestStatements counts the statements each operation on the hot path of a
// request runs, alone in its batch, its statements prepared already (the
// second time it runs), and holds them to what they are, so that a change
// that adds one is seen. Under pure-Go SQLite a statement costs tens of
// microseconds of CPU: under a burst, they are what the bot spends its time
// on. Writes count the writer's BEGIN, SAVEPOINT, RELEASE and COMMIT (4 for
// an operation alone; a batch of n runs 2n+2).
func TestStatements(t *testing.T) {
	t.Parallel()
	d, _ := openTest(t)
	type counts struct{ reads, writes int64 }
	read := func() counts { return counts{d.read.statements.Load(), d.w.statements.Load()} }

	// Each operation works on a request of its own, made (uncounted) by
	// setup, if any.
	type op struct {
		name  string
		setup func(t *testing.T) approvals.Request
		run   func(t *testing.T, r approvals.Request) error
		want  counts // at most
	}
	created := func(t *testing.T) approvals.Request {
		r := pending("UREQ", "alice@example.com")
		if err := create(d, r, 0); err != nil {
			t.Fatal(err)
		}
		return r
	}
	approved := func(t *testing.T) approvals.Request {
		r := created(t)
		if _, err := d.Update(bg, r.ID, approveBy("UAPP", "")); err != nil {
			t.Fatal(err)
		}
		return r
	}
	var seq int64 // the event BeginAttempt begins
	ops := []op{
		{name: "Create", want: counts{0, 8}, run: func(t *testing.T, _ approvals.Request) error {
			return create(d, pending("UREQ", "alice@example.com"), 0)
		}},
		{name: "Create with a submit key and the pending cap", want: counts{0, 9}, run: func(t *testing.T, _ approvals.Request) error {
			r := pending("UREQ", "alice@example.com")
			r.SubmitKey, r.Requester = "submit-"+r.ID, "UCAP-"+r.ID
			return create(d, r, 3)
		}},
		{name: "Get", setup: created, want: counts{1, 0}, run: func(t *testing.T, r approvals.Request) error {
			_, err := d.Get(bg, r.ID)
			return err
		}},
		{name: "Update (approve, keyed click)", setup: created, want: counts{1, 8}, run: func(t *testing.T, r approvals.Request) error {
			_, err := d.Update(bg, r.ID, approveBy("UAPP", "click-"+r.ID))
			return err
		}},
		{name: "Update (a target's outcome)", setup: approved, want: counts{1, 8}, run: func(t *testing.T, r approvals.Request) error {
			_, err := d.Update(bg, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
				at := time.Now().UTC().Truncate(time.Millisecond)
				cur.Targets[0].State, cur.Targets[0].Outcome, cur.Targets[0].FinishedAt = approvals.TargetRevoked, "revoked", at
				return cur, []approvals.Event{{Kind: approvals.EventRevoked, Target: cur.Targets[0].Email, At: at}}, nil
			})
			return err
		}},
		{name: "Append (refused click)", setup: created, want: counts{0, 6}, run: func(t *testing.T, r approvals.Request) error {
			return d.Append(bg, approvals.Event{Kind: approvals.EventRefused, Request: r, Actor: "UX", At: r.CreatedAt, Key: "refused-" + r.ID})
		}},
		{name: "SetMessage", setup: created, want: counts{0, 5}, run: func(t *testing.T, r approvals.Request) error {
			return d.SetMessage(bg, r.ID, "C1", "1.2")
		}},
		{name: "Lease", want: counts{0, 5}, run: func(t *testing.T, _ approvals.Request) error {
			_, err := d.Lease(bg, "courier", "replica-a", time.Minute)
			return err
		}},
		{name: "BeginAttempt (the first)", setup: func(t *testing.T) approvals.Request {
			r := created(t)
			links, err := d.Chain(bg, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			seq = links[len(links)-1].Seq
			return r
		}, want: counts{0, 5}, run: func(t *testing.T, _ approvals.Request) error {
			_, err := d.BeginAttempt(bg, seq, approvals.AuditRecord)
			return err
		}},
		{name: "Claim and MarkDelivered", setup: created, want: counts{1, 10}, run: func(t *testing.T, r approvals.Request) error {
			ds, err := d.Claim(bg, approvals.AuditRecord, "replica-a", 1, time.Minute)
			if err != nil || len(ds) != 1 {
				t.Fatalf("Claim = %d, %v", len(ds), err)
			}
			return d.MarkDelivered(bg, ds[0].Seq, approvals.AuditRecord)
		}},
	}
	for _, o := range ops {
		var got counts
		for range 2 { // the first prepares the statements
			var r approvals.Request
			if o.setup != nil {
				r = o.setup(t)
			}
			before := read()
			if err := o.run(t, r); err != nil {
				t.Fatalf("%s: %v", o.name, err)
			}
			after := read()
			got = counts{after.reads - before.reads, after.writes - before.writes}
		}
		t.Logf("%-45s %2d reads, %2d writes", o.name, got.reads, got.writes)
		if got.reads > o.want.reads || got.writes > o.want.writes {
			t.Errorf("%s: %d reads and %d writes, want at most %d and %d", o.name, got.reads, got.writes, o.want.reads, o.want.writes)
		}
	}

	// 10 creates in one batch: BEGIN and COMMIT, 5 statements each
	// (SAVEPOINT, the request, its target, its event, RELEASE), and where
	// the event log ends read once.
	fns := make([]func() error, 10)
	for i := range fns {
		fns[i] = func() error { return create(d, pending("UREQ", fmt.Sprintf("u%d@example.com", i)), 0) }
	}
	before := d.w.statements.Load()
	for i, err := range inOneBatch(t, d, fns...) {
		if err != nil {
			t.Fatalf("Create %d: %v", i, err)
		}
	}
	got, want := d.w.statements.Load()-before, int64(2+10*5+1)
	t.Logf("%-45s %2d writes", "10 Creates in one batch", got)
	if got > want {
		t.Errorf("10 creates in one batch: %d writes, want at most %d", got, want)
	}

	// A list of 10 requests, on a database of its own.
	l, _ := openTest(t)
	for i := range 10 {
		if err := create(l, pending("UREQ", fmt.Sprintf("u%d@example.com", i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 { // the first prepares the statements
		before := l.read.statements.Load()
		rs, err := l.ListByState(bg, approvals.StatePending)
		if err != nil || len(rs) != 10 {
			t.Fatalf("ListByState = %d, %v", len(rs), err)
		}
		if got, want := l.read.statements.Load()-before, int64(1); i == 1 {
			t.Logf("%-45s %2d reads", "ListByState (10 requests)", got)
			if got > want {
				t.Errorf("ListByState of 10 requests: %d reads, want at most %d", got, want)
			}
		}
	}
	// Their 10 audit records claimed at once (by two owners in turn: each
	// claim renews the owner's own).
	for i, owner := range []string{"replica-a", "replica-b"} {
		if i == 1 {
			if err := l.ReleaseClaims(bg, "replica-a"); err != nil {
				t.Fatal(err)
			}
		}
		reads, writes := l.read.statements.Load(), l.w.statements.Load()
		ds, err := l.Claim(bg, approvals.AuditRecord, owner, 50, time.Minute)
		if err != nil || len(ds) != 10 {
			t.Fatalf("Claim = %d, %v", len(ds), err)
		}
		reads, writes = l.read.statements.Load()-reads, l.w.statements.Load()-writes
		if i == 1 {
			t.Logf("%-45s %2d reads, %2d writes", "Claim of 10 deliveries", reads, writes)
			if reads > 1 || writes > 5 {
				t.Errorf("Claim of 10 deliveries: %d reads and %d writes, want at most 1 and 5", reads, writes)
			}
		}
	}
}
