package approvals_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/revokebot/revokebot/approvals"
)

// targetEvents returns the revoked and failed events among events.
func targetEvents(events []approvals.Event) []approvals.Event {
	var out []approvals.Event
	for _, e := range events {
		if e.Kind == approvals.EventRevoked || e.Kind == approvals.EventFailed {
			out = append(out, e)
		}
	}
	return out
}

func TestBulkWithOneFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.revoker.failing = map[string]error{"bob@example.com": errors.New("cloudflare: 404 Not Found: [1000] no such user")}
	emails := []string{"alice@example.com", "bob@example.com", "carol@example.com"}
	r := f.submit(t, emails...)
	got, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Approve)
	if err != nil {
		t.Fatal(err)
	}
	if got.State() != approvals.StateFailed {
		t.Fatalf("state %s, want failed", got.State())
	}
	// Every target attempted, in order, the failure not stopping the rest.
	if got, want := f.revoker.revoked(), emails; !slices.Equal(got, want) {
		t.Fatalf("revoked %v, want %v", got, want)
	}
	wantStates := []approvals.TargetState{approvals.TargetRevoked, approvals.TargetFailed, approvals.TargetRevoked}
	stored := f.get(t, r.ID)
	for i, tg := range stored.Targets {
		if tg.Email != emails[i] || tg.State != wantStates[i] || tg.FinishedAt.IsZero() {
			t.Errorf("target %d: %+v, want %s %s", i, tg, emails[i], wantStates[i])
		}
	}
	if got, want := stored.Targets[1].Outcome, "cloudflare: 404 Not Found: [1000] no such user"; got != want {
		t.Errorf("failed target's outcome %q, want %q", got, want)
	}
	if got, want := stored.Summary(), "2 of 3 revoked, 1 failed"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}

	// One event per target, naming it, both as told and as recorded.
	wantKinds := []approvals.EventKind{approvals.EventRevoked, approvals.EventFailed, approvals.EventRevoked}
	for name, events := range map[string][]approvals.Event{"told": f.events.all(), "recorded": f.recorded(t)} {
		evs := targetEvents(events)
		if len(evs) != 3 {
			t.Fatalf("%s: %d target events, want 3: %+v", name, len(evs), evs)
		}
		for i, e := range evs {
			if e.Kind != wantKinds[i] || e.Target != emails[i] {
				t.Errorf("%s: event %d is %s about %q, want %s about %q", name, i, e.Kind, e.Target, wantKinds[i], emails[i])
			}
		}
		if last := evs[2]; !strings.Contains(last.Detail, "2 of 3 revoked, 1 failed") || last.State != approvals.StateFailed {
			t.Errorf("%s: last event %+v, want the request's summary in its detail", name, last)
		}
		// The request is done only with its last target.
		for _, e := range evs[:2] {
			if e.State != approvals.StateExecuting || strings.Contains(e.Detail, "request done") {
				t.Errorf("%s: event about %s in state %s with detail %q", name, e.Target, e.State, e.Detail)
			}
		}
	}
}

func TestResumeMidBulkRevokesOnlyWaitingTargets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t, "alice@example.com", "bob@example.com", "carol@example.com")
	// A crash after the first target's outcome was recorded leaves it so.
	f.markExecuting(t, r.ID, 0)
	if err := f.svc.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := f.revoker.revoked(), []string{"bob@example.com", "carol@example.com"}; !slices.Equal(got, want) {
		t.Fatalf("revoked %v, want %v", got, want)
	}
	stored := f.get(t, r.ID)
	if stored.State() != approvals.StateRevoked {
		t.Fatalf("state %s, want revoked", stored.State())
	}
	if got, want := stored.Targets[0].Outcome, "revoked alice@example.com"; got != want {
		t.Fatalf("first target's outcome %q, want %q (the one recorded before the crash)", got, want)
	}
	evs := targetEvents(f.events.all())
	if len(evs) != 2 || evs[0].Target != "bob@example.com" || evs[1].Target != "carol@example.com" {
		t.Fatalf("target events told %+v", evs)
	}
	if !strings.HasPrefix(evs[0].Detail, "resumed after a restart; ") {
		t.Fatalf("detail %q", evs[0].Detail)
	}
	// Nothing left to resume.
	if err := f.svc.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.revoker.calls.Load(); n != 2 {
		t.Fatalf("%d revocations after a second resume, want 2", n)
	}
}

func TestExecuteSkipsTargetsDoneMeanwhile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t, "alice@example.com", "bob@example.com")
	stale := f.markExecuting(t, r.ID)
	// Another run revokes the first target after stale was read.
	if _, err := f.store.Update(context.Background(), r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Targets[0].State, cur.Targets[0].Outcome, cur.Targets[0].FinishedAt = approvals.TargetRevoked, "by the other run", f.clock.Now()
		return cur, []approvals.Event{{Kind: approvals.EventRevoked, Target: cur.Targets[0].Email, At: f.clock.Now()}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Execute(context.Background(), stale, "")
	if err != nil || got.State() != approvals.StateRevoked {
		t.Fatalf("Execute = %s, %v", got.State(), err)
	}
	// The other run's outcome stands.
	if stored := f.get(t, r.ID); stored.Targets[0].Outcome != "by the other run" || stored.Targets[1].State != approvals.TargetRevoked {
		t.Fatalf("targets %+v", stored.Targets)
	}
}

func TestSubmitRemovesDuplicateTargets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U1", Targets: []approvals.TargetInput{
		{Email: "alice@example.com"}, {Email: "bob@example.com", Person: "UBOB"}, {Email: "alice@example.com", Person: "UALICE"},
		{Email: "bob@example.com", Person: "UOTHER"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []approvals.Target{
		{Email: "alice@example.com", Person: "UALICE", State: approvals.TargetWaiting},
		{Email: "bob@example.com", Person: "UBOB", State: approvals.TargetWaiting},
	}
	if !slices.Equal(r.Targets, want) {
		t.Fatalf("targets %+v, want %+v", r.Targets, want)
	}
	if stored := f.get(t, r.ID); !slices.Equal(stored.Targets, want) {
		t.Fatalf("stored targets %+v, want %+v", stored.Targets, want)
	}
}

func TestSubmitMaxTargets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.MaxTargets = 2
	in := approvals.SubmitInput{Requester: "U1", Targets: []approvals.TargetInput{
		{Email: "a@example.com"}, {Email: "b@example.com"}, {Email: "c@example.com"},
	}}
	_, err := f.svc.Submit(context.Background(), in)
	if e := wantError(t, err, approvals.EINVALID, approvals.WhyTooManyTargets); e.Limit != 2 {
		t.Fatalf("Limit = %d, want 2", e.Limit)
	}
	if k := f.outboxKinds(t); len(k) != 0 {
		t.Fatalf("recorded events %v", k)
	}
	// Repeats count once.
	in.Targets[2].Email = "a@example.com"
	if _, err := f.svc.Submit(context.Background(), in); err != nil {
		t.Fatalf("two distinct targets: %v", err)
	}
	// Zero means the default.
	f.svc.MaxTargets = 0
	in.Targets = nil
	for range approvals.DefaultMaxTargets + 1 {
		in.Targets = append(in.Targets, approvals.TargetInput{Email: "u" + strings.Repeat("x", len(in.Targets)) + "@example.com"})
	}
	_, err = f.svc.Submit(context.Background(), in)
	if e := wantError(t, err, approvals.EINVALID, approvals.WhyTooManyTargets); e.Limit != approvals.DefaultMaxTargets {
		t.Fatalf("Limit = %d, want %d", e.Limit, approvals.DefaultMaxTargets)
	}
}

func TestSubmitUserUIDTakesOneTarget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	opts := approvals.Options{UserUID: "0123456789abcdef0123456789abcdef"}
	_, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U1", Options: opts,
		Targets: []approvals.TargetInput{{Email: "a@example.com"}, {Email: "b@example.com"}}})
	wantError(t, err, approvals.EINVALID, approvals.WhyInvalid)
	if k := f.outboxKinds(t); len(k) != 0 {
		t.Fatalf("recorded events %v", k)
	}
	r, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U1", Options: opts,
		Targets: []approvals.TargetInput{{Email: "a@example.com"}, {Email: "a@example.com"}}})
	if err != nil {
		t.Fatalf("one target named twice with --uid: %v", err)
	}
	if got, want := r.Revocation(0), opts.For("a@example.com"); got != want {
		t.Fatalf("Revocation(0) = %+v, want %+v", got, want)
	}
}
