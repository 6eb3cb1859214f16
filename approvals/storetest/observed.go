package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// A target's observations: what the identity platform knew before approval,
// the verification after the revocation, and the watch for a return.

// revokeFirst is an UpdateFunc that approves a request needing one approval
// and records its first target revoked, with the given observations.
func revokeFirst(check approvals.Check, watch approvals.Watch) approvals.UpdateFunc {
	return func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "UAPP", Decision: approvals.Approve, At: base})
		t := &cur.Targets[0]
		t.State, t.Outcome, t.FinishedAt = approvals.TargetRevoked, "revoked", base.Add(time.Minute)
		t.Check, t.Watch = check, watch
		return cur, []approvals.Event{{Kind: approvals.EventRevoked, Target: t.Email, At: base.Add(time.Minute)}}, nil
	}
}

func testObservationsRoundTrip(t *testing.T, s approvals.Store) {
	r := newRequest("UREQ", "alice@example.com", "bob@example.com")
	r.Targets[0].Look = approvals.Look{State: approvals.LookDone, Preview: approvals.Preview{Known: true, UserID: "u-1",
		LastLogin: base.Add(-time.Hour), Sessions: 3, Devices: 2, At: base}}
	r.Targets[1].Look = approvals.Look{State: approvals.LookUnavailable, Why: "the token cannot read Access users"}
	got := mustCreate(t, s, r)
	if !slices.Equal(got.Targets, r.Targets) {
		t.Fatalf("targets read back %+v, want %+v", got.Targets, r.Targets)
	}
	check := approvals.Check{State: approvals.CheckPending, Remaining: 2, Until: base.Add(3 * time.Minute), At: base.Add(time.Minute)}
	watch := approvals.Watch{Until: base.Add(24 * time.Hour), Checked: base.Add(time.Minute)}
	next, err := s.Update(ctx, r.ID, revokeFirst(check, watch))
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := s.Get(ctx, r.ID)
	if stored.Targets[0].Check != check || stored.Targets[0].Watch != watch || stored.Targets[0].Look != r.Targets[0].Look {
		t.Errorf("observations read back %+v, want check %+v and watch %+v", stored.Targets[0], check, watch)
	}
	if !slices.Equal(next.Targets, stored.Targets) {
		t.Errorf("Update returned %+v, stored %+v", next.Targets, stored.Targets)
	}
	// Observations change on a target that is done: its outcome stays.
	login := approvals.Login{At: base.Add(2 * time.Hour), App: "wiki.example.com", IP: "203.0.113.7"}
	_, err = s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Targets[0].Check = approvals.Check{State: approvals.CheckVerified, At: base.Add(2 * time.Minute)}
		cur.Targets[0].Watch.Relogin = login
		return cur, []approvals.Event{{Kind: approvals.EventRelogin, Target: "alice@example.com", At: login.At}}, nil
	})
	if err != nil {
		t.Fatalf("observing a done target: %v", err)
	}
	stored, _ = s.Get(ctx, r.ID)
	if tg := stored.Targets[0]; tg.Check.State != approvals.CheckVerified || tg.Watch.Relogin != login || tg.Outcome != "revoked" {
		t.Errorf("after observing: %+v", tg)
	}
}

func testObservationsFinal(t *testing.T, s approvals.Store) {
	r := mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	watch := approvals.Watch{Until: base.Add(24 * time.Hour), Relogin: approvals.Login{At: base.Add(time.Hour), IP: "203.0.113.7"}}
	if _, err := s.Update(ctx, r.ID, revokeFirst(approvals.Check{State: approvals.CheckUnverified, Remaining: 1, At: base}, watch)); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*approvals.Target){
		"a final verification":  func(tg *approvals.Target) { tg.Check.State = approvals.CheckVerified },
		"a relogin seen":        func(tg *approvals.Target) { tg.Watch.Relogin.IP = "198.51.100.1" },
		"a relogin forgotten":   func(tg *approvals.Target) { tg.Watch.Relogin = approvals.Login{} },
		"an unknown check word": func(tg *approvals.Target) { tg.Check.State = "maybe" },
	} {
		_, err := s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
			change(&cur.Targets[0])
			return cur, nil, nil
		})
		if err == nil {
			t.Errorf("changing %s was accepted", name)
		}
	}
	if stored, _ := s.Get(ctx, r.ID); stored.Version != 2 {
		t.Errorf("version %d after refused changes, want 2", stored.Version)
	}
}

func testWatched(t *testing.T, s approvals.Store) {
	now := base.Add(time.Hour)
	mk := func(email string, check approvals.Check, watch approvals.Watch) string {
		r := newRequest("UREQ", email)
		r.CreatedAt = base.Add(time.Duration(len(email)) * time.Second) // a distinct order
		r = mustCreate(t, s, r)
		if _, err := s.Update(ctx, r.ID, revokeFirst(check, watch)); err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	pending := mk("pending@example.com", approvals.Check{State: approvals.CheckPending, Until: base}, approvals.Watch{}) // past its Until: still listed
	watched := mk("watched@x.com", approvals.Check{State: approvals.CheckVerified}, approvals.Watch{Until: now.Add(time.Hour)})
	mk("ended@example.com", approvals.Check{State: approvals.CheckVerified}, approvals.Watch{Until: now.Add(-time.Second), Checked: now})
	final := mk("final@example.com", approvals.Check{State: approvals.CheckVerified}, approvals.Watch{Until: now.Add(-time.Second), Checked: now.Add(-time.Hour)})
	mk("stopped@example.com", approvals.Check{State: approvals.CheckVerified}, approvals.Watch{Until: now.Add(time.Hour), Why: "the login log cannot be read"})
	mk("seen@example.com", approvals.Check{State: approvals.CheckVerified},
		approvals.Watch{Until: now.Add(time.Hour), Relogin: approvals.Login{At: base.Add(time.Minute)}})
	mustCreate(t, s, newRequest("UREQ", "plain@example.com"))
	got, err := s.Watched(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{watched, final, pending} // oldest first, by the lengths of their emails
	if !slices.Equal(ids(got), want) {
		t.Errorf("Watched = %v, want %v", ids(got), want)
	}
}

// An event that is not audited (a preview) redraws the message and is
// never an audit record to deliver, nor in the backlog for long.
func testUnauditedEvent(t *testing.T, s approvals.Store) {
	o := outbox(t, s)
	r := mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	_, err := s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Targets[0].Look = approvals.Look{State: approvals.LookDone, Preview: approvals.Preview{Known: false, At: base}}
		return cur, []approvals.Event{{Kind: approvals.EventObserved, At: base}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	audits, err := o.Undelivered(ctx, approvals.AuditRecord, -1)
	if err != nil || len(audits) != 1 || audits[0].Event.Kind != approvals.EventRequested {
		t.Errorf("audit records due: %+v, %v; want the requested one only", audits, err)
	}
	msgs, err := o.Undelivered(ctx, approvals.MessageUpdate, -1)
	if err != nil || len(msgs) != 2 || msgs[1].Event.Kind != approvals.EventObserved {
		t.Errorf("message updates due: %+v, %v; want requested and observed", msgs, err)
	}
	for _, d := range audits {
		o.MarkDelivered(ctx, d.Seq, approvals.AuditRecord)
	}
	for _, d := range msgs {
		o.MarkDelivered(ctx, d.Seq, approvals.MessageUpdate)
	}
	if n, err := o.Backlog(ctx); err != nil || n != 0 {
		t.Errorf("backlog %d, %v; want 0", n, err)
	}
}
