// Package storetest is the behaviour every approvals.Store promises, written
// once as tests: each store runs it from its own tests with
//
//	storetest.Run(t, func(t *testing.T) (approvals.Store, func() approvals.Store) {
//		s := openFresh(t)
//		return s, func() approvals.Store { s.Close(); return openAgain(t) }
//	})
//
// The suite includes races (two updates from one version, creates racing
// for the pending cap, attempts racing to be the first), so run it with
// -race. The benchmarks (BenchRequestLifecycle and the others) are written
// once here too, for comparing the stores.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/revokebot/revokebot/approvals"
)

// Opener returns a new, empty store, closed when t ends, and reopen, which
// closes that store and opens the same database again, as a restart does.
type Opener func(t *testing.T) (s approvals.Store, reopen func() approvals.Store)

// Run runs the conformance suite against stores made by open. Every test
// gets a store of its own.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, approvals.Store)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"GetMissing", testGetMissing},
		{"CreateDuplicateKey", testCreateDuplicateKey},
		{"CreateDuplicateKeyRace", testCreateDuplicateKeyRace},
		{"CreatePendingCap", testCreatePendingCap},
		{"CreatePendingCapRace", testCreatePendingCapRace},
		{"CreateAtomicWithEvent", testCreateAtomicWithEvent},
		{"Update", testUpdate},
		{"UpdateMissing", testUpdateMissing},
		{"UpdateFuncError", testUpdateFuncError},
		{"UpdateDuplicateEventKey", testUpdateDuplicateEventKey},
		{"UpdateDuplicateEventKeyRace", testUpdateDuplicateEventKeyRace},
		{"UpdateRaceOneWins", testUpdateRaceOneWins},
		{"UpdateNoLostUpdates", testUpdateNoLostUpdates},
		{"ReviewOncePerPerson", testReviewOncePerPerson},
		{"ReviewsAppendOnly", testReviewsAppendOnly},
		{"FixedFields", testFixedFields},
		{"OutcomesAreFinal", testOutcomesAreFinal},
		{"SetMessage", testSetMessage},
		{"AppendAndSeenKey", testAppendAndSeenKey},
		{"ListCountFind", testListCountFind},
		{"StateComputed", testStateComputed},
		{"LeaseOneOwner", testLeaseOneOwner},
		{"LeaseEnds", testLeaseEnds},
		{"LeaseRace", testLeaseRace},
		{"LeaseRenew", testLeaseRenew},
		{"ObservationsRoundTrip", testObservationsRoundTrip},
		{"ObservationsFinal", testObservationsFinal},
		{"Watched", testWatched},
		{"Chain", testChain},
		{"ChainRace", testChainRace},
		{"UnauditedEvent", testUnauditedEvent},
		{"Notices", testNotices},
		{"UndeliveredLimit", testUndeliveredLimit},
		{"BeginAttemptRace", testBeginAttemptRace},
		{"ClaimExclusive", testClaimExclusive},
		{"ClaimKeepsRequestOrder", testClaimKeepsRequestOrder},
		{"ClaimEndsAndIsReleased", testClaimEndsAndIsReleased},
		{"ClaimLeavesRefusalsOut", testClaimLeavesRefusalsOut},
		{"ClaimRace", func(t *testing.T, s approvals.Store) { ClaimRace(t, s, s, s) }},
		{"ClaimNeedsOwner", testClaimNeedsOwner},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t)
			tc.fn(t, s)
		})
	}
	// What must outlive the process that wrote it.
	restarts := []struct {
		name string
		fn   func(t *testing.T, s approvals.Store, reopen func() approvals.Store)
	}{
		{"RequestsSurviveRestart", testRequestsSurviveRestart},
		{"OutboxOrderAndMarks", testOutboxOrderAndMarks},
		{"AttemptsSurviveRestart", testAttemptsSurviveRestart},
	}
	for _, tc := range restarts {
		t.Run(tc.name, func(t *testing.T) {
			s, reopen := open(t)
			tc.fn(t, s, reopen)
		})
	}
}

var ctx = context.Background()

// base is a fixed instant, whole milliseconds (stores may keep no finer).
var base = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// newRequest returns a pending request of requester for emails.
func newRequest(requester string, emails ...string) approvals.Request {
	r := approvals.Request{
		ID:        uuid.NewString(),
		Options:   approvals.Options{Devices: true},
		Reason:    "laptop stolen",
		Requester: requester,
		Required:  1,
		Channel:   "CAPPROVE",
		CreatedAt: base,
		ExpiresAt: base.Add(30 * time.Minute),
	}
	for _, e := range emails {
		r.Targets = append(r.Targets, approvals.Target{Email: e, State: approvals.TargetWaiting})
	}
	return r
}

func requested(r approvals.Request) approvals.Event {
	return approvals.Event{Kind: approvals.EventRequested, Request: r, State: r.State(), Actor: r.Requester, At: r.CreatedAt}
}

func mustCreate(tb testing.TB, s approvals.Store, r approvals.Request) approvals.Request {
	tb.Helper()
	if err := s.Create(ctx, r, requested(r), 0); err != nil {
		tb.Fatalf("Create: %v", err)
	}
	got, err := s.Get(ctx, r.ID)
	if err != nil {
		tb.Fatalf("Get after Create: %v", err)
	}
	return got
}

// approve returns an UpdateFunc that adds an approval by who.
func approve(who string, at time.Time) approvals.UpdateFunc {
	return func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Reviews = append(cur.Reviews, approvals.Review{By: who, Decision: approvals.Approve, At: at})
		return cur, []approvals.Event{{Kind: approvals.EventApproved, Actor: who, At: at}}, nil
	}
}

func testCreateAndGet(t *testing.T, s approvals.Store) {
	r := newRequest("UREQ", "alice@example.com", "bob@example.com")
	r.Targets[1].Person = "UBOB"
	r.SubmitKey = "submit-1"
	r.Required = 2
	r.Options = approvals.Options{Devices: true, WARPReauth: true}
	got := mustCreate(t, s, r)
	if got.Version != 1 {
		t.Errorf("Version = %d, want 1", got.Version)
	}
	if got.ID != r.ID || got.Requester != r.Requester || got.Reason != r.Reason || got.SubmitKey != r.SubmitKey ||
		got.Options != r.Options || got.Required != 2 || got.Channel != r.Channel || got.DryRun != r.DryRun {
		t.Errorf("Get = %+v, want the fields of %+v", got, r)
	}
	if !got.CreatedAt.Equal(r.CreatedAt) || !got.ExpiresAt.Equal(r.ExpiresAt) {
		t.Errorf("times = %v, %v; want %v, %v", got.CreatedAt, got.ExpiresAt, r.CreatedAt, r.ExpiresAt)
	}
	if !slices.Equal(got.Targets, r.Targets) {
		t.Errorf("Targets = %+v, want %+v", got.Targets, r.Targets)
	}
	if got.State() != approvals.StatePending || len(got.Reviews) != 0 {
		t.Errorf("State = %s with %d reviews, want pending with none", got.State(), len(got.Reviews))
	}
}

func testGetMissing(t *testing.T, s approvals.Store) {
	if _, err := s.Get(ctx, uuid.NewString()); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("Get of a missing request: %v, want ErrNotFound", err)
	}
}

func testCreateDuplicateKey(t *testing.T, s approvals.Store) {
	r := newRequest("UREQ", "alice@example.com")
	r.SubmitKey = "slack-command:T1"
	mustCreate(t, s, r)
	again := newRequest("UREQ", "alice@example.com")
	again.SubmitKey = r.SubmitKey
	if err := s.Create(ctx, again, requested(again), 0); !errors.Is(err, approvals.ErrDuplicate) {
		t.Fatalf("second Create with the same key: %v, want ErrDuplicate", err)
	}
	if _, err := s.Get(ctx, again.ID); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("the duplicate was stored: %v", err)
	}
	if seen, err := s.SeenKey(ctx, r.SubmitKey); err != nil || !seen {
		t.Errorf("SeenKey(submit key) = %v, %v; want true", seen, err)
	}
	if n, err := outbox(t, s).Backlog(ctx); err != nil || n != 1 {
		t.Errorf("Backlog = %d, %v; want 1: the duplicate left an event", n, err)
	}
	// Requests without a key never collide.
	for range 2 {
		mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	}
}

// testCreateDuplicateKeyRace: of creates with one key racing, exactly one
// is stored.
func testCreateDuplicateKeyRace(t *testing.T, s approvals.Store) {
	const n = 6
	var errs [n]error
	atOnce(n, func(i int) {
		r := newRequest("UREQ", fmt.Sprintf("u%d@example.com", i))
		r.SubmitKey = "envelope-race"
		errs[i] = s.Create(ctx, r, requested(r), 0)
	})
	if ok, dup := countDuplicates(t, "Create", errs[:]); ok != 1 || dup != n-1 {
		t.Errorf("%d created, %d duplicates; want 1 and %d", ok, dup, n-1)
	}
}

// atOnce runs fn(0), …, fn(n-1) in goroutines released together, and
// waits for them all.
func atOnce(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// countDuplicates counts the successes and the ErrDuplicates among errs,
// and fails t for any other error.
func countDuplicates(t *testing.T, op string, errs []error) (ok, dup int) {
	t.Helper()
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, approvals.ErrDuplicate):
			dup++
		default:
			t.Errorf("%s: %v", op, err)
		}
	}
	return ok, dup
}

// testCreateAtomicWithEvent: a request is stored with its event or not at
// all, and so is a change.
func testCreateAtomicWithEvent(t *testing.T, s approvals.Store) {
	r := newRequest("UREQ", "alice@example.com")
	// An event the log refuses must take the request down with it.
	if err := s.Create(ctx, r, approvals.Event{Kind: "bogus", Request: r, At: base}, 0); err == nil {
		t.Fatal("Create with an invalid event succeeded")
	}
	if _, err := s.Get(ctx, r.ID); !errors.Is(err, approvals.ErrNotFound) {
		t.Fatalf("request stored without its event: %v", err)
	}
	r = mustCreate(t, s, r)
	_, err := s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "UAPP", Decision: approvals.Approve, At: base})
		return cur, []approvals.Event{{Kind: "bogus", At: base}}, nil
	})
	if err == nil {
		t.Fatal("Update with an invalid event succeeded")
	}
	if stored, _ := s.Get(ctx, r.ID); stored.State() != approvals.StatePending || len(stored.Reviews) != 0 || stored.Version != 1 {
		t.Fatalf("changed without its event: %s, %d reviews, version %d", stored.State(), len(stored.Reviews), stored.Version)
	}
}

func testCreatePendingCap(t *testing.T, s approvals.Store) {
	for i := range 2 {
		r := newRequest("UREQ", fmt.Sprintf("u%d@example.com", i))
		if err := s.Create(ctx, r, requested(r), 2); err != nil {
			t.Fatalf("Create %d under the cap: %v", i, err)
		}
	}
	over := newRequest("UREQ", "over@example.com")
	if err := s.Create(ctx, over, requested(over), 2); !errors.Is(err, approvals.ErrLimit) {
		t.Fatalf("Create over the cap: %v, want ErrLimit", err)
	}
	if _, err := s.Get(ctx, over.ID); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("the request over the cap was stored: %v", err)
	}
	// Others are not held by UREQ's cap; refused requests are not pending.
	other := newRequest("UOTHER", "x@example.com")
	if err := s.Create(ctx, other, requested(other), 2); err != nil {
		t.Errorf("another requester: %v", err)
	}
	refused := newRequest("UREQ", "y@example.com")
	refused.Refusal = "requester already has 2 pending requests"
	if err := s.Create(ctx, refused, approvals.Event{Kind: approvals.EventRefused, Request: refused, Actor: "UREQ", At: base}, 2); err != nil {
		t.Errorf("a refused request over the cap: %v", err)
	}
	if n, err := s.CountByRequester(ctx, "UREQ", approvals.StatePending); err != nil || n != 2 {
		t.Errorf("CountByRequester = %d, %v; want 2", n, err)
	}
}

func testCreatePendingCapRace(t *testing.T, s approvals.Store) {
	const attempts, limit = 12, 3
	var created, limited atomic.Int32
	atOnce(attempts, func(i int) {
		r := newRequest("URACE", fmt.Sprintf("u%d@example.com", i))
		err := s.Create(ctx, r, requested(r), limit)
		switch {
		case err == nil:
			created.Add(1)
		case errors.Is(err, approvals.ErrLimit):
			limited.Add(1)
		default:
			t.Errorf("Create: %v", err)
		}
	})
	if created.Load() != limit || limited.Load() != attempts-limit {
		t.Errorf("%d created, %d over the cap; want %d and %d", created.Load(), limited.Load(), limit, attempts-limit)
	}
}

func testUpdate(t *testing.T, s approvals.Store) {
	r := mustCreate(t, s, newRequest("UREQ", "alice@example.com", "bob@example.com"))
	at := base.Add(time.Minute)
	got, err := s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		if cur.Version != 1 {
			t.Errorf("fn saw version %d, want 1", cur.Version)
		}
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "UAPP", Decision: approvals.Approve, At: at})
		cur.Targets[0].State, cur.Targets[0].Outcome, cur.Targets[0].FinishedAt = approvals.TargetRevoked, "HTTP 200", at
		cur.DryRun = true
		return cur, []approvals.Event{
			{Kind: approvals.EventApproved, Actor: "UAPP", At: at, Key: "click-1"},
			{Kind: approvals.EventRevoked, At: at, Target: "alice@example.com"},
		}, nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	stored, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, x := range map[string]approvals.Request{"returned": got, "stored": stored} {
		if x.Version != 2 {
			t.Errorf("%s Version = %d, want 2", name, x.Version)
		}
		if len(x.Reviews) != 1 || x.Reviews[0].By != "UAPP" || x.Reviews[0].Decision != approvals.Approve || !x.Reviews[0].At.Equal(at) {
			t.Errorf("%s Reviews = %+v", name, x.Reviews)
		}
		if x.Targets[0].State != approvals.TargetRevoked || x.Targets[0].Outcome != "HTTP 200" || !x.Targets[0].FinishedAt.Equal(at) ||
			x.Targets[1].State != approvals.TargetWaiting {
			t.Errorf("%s Targets = %+v", name, x.Targets)
		}
		if !x.DryRun || x.State() != approvals.StateExecuting {
			t.Errorf("%s DryRun = %v, State = %s; want true, executing", name, x.DryRun, x.State())
		}
	}
	if seen, err := s.SeenKey(ctx, "click-1"); err != nil || !seen {
		t.Errorf("the event's key is not recorded: %v, %v", seen, err)
	}
	if n, err := s.CountByRequester(ctx, "UREQ", approvals.StateExecuting); err != nil || n != 1 {
		t.Errorf("CountByRequester(executing) = %d, %v; want 1 (the stored state follows the change)", n, err)
	}
}

func testUpdateMissing(t *testing.T, s approvals.Store) {
	called := false
	_, err := s.Update(ctx, uuid.NewString(), func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		called = true
		return cur, nil, nil
	})
	if !errors.Is(err, approvals.ErrNotFound) || called {
		t.Errorf("Update of a missing request: %v (fn called: %v), want ErrNotFound without calling fn", err, called)
	}
}

func testUpdateFuncError(t *testing.T, s approvals.Store) {
	r := mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	boom := errors.New("no")
	got, err := s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "UAPP", Decision: approvals.Approve, At: base})
		return cur, nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update: %v, want fn's error", err)
	}
	if got.Version != 1 || len(got.Reviews) != 0 {
		t.Errorf("returned %+v, want the request as fn saw it", got)
	}
	if stored, _ := s.Get(ctx, r.ID); stored.Version != 1 || len(stored.Reviews) != 0 {
		t.Errorf("stored %+v after fn failed, want it unchanged", stored)
	}
}

func testUpdateDuplicateEventKey(t *testing.T, s approvals.Store) {
	r := mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	other := mustCreate(t, s, newRequest("UREQ", "bob@example.com"))
	if err := s.Append(ctx, approvals.Event{Kind: approvals.EventRefused, Request: other, Actor: "UX", At: base, Key: "click-dup"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "UAPP", Decision: approvals.Approve, At: base})
		return cur, []approvals.Event{{Kind: approvals.EventApproved, Actor: "UAPP", At: base, Key: "click-dup"}}, nil
	})
	if !errors.Is(err, approvals.ErrDuplicate) {
		t.Fatalf("Update with a recorded key: %v, want ErrDuplicate", err)
	}
	if stored, _ := s.Get(ctx, r.ID); stored.Version != 1 || len(stored.Reviews) != 0 {
		t.Errorf("stored %+v, want it unchanged", stored)
	}
}

// testUpdateDuplicateEventKeyRace: of updates of different requests racing
// to record one event key, exactly one is stored.
func testUpdateDuplicateEventKeyRace(t *testing.T, s approvals.Store) {
	const n = 6
	var rs [n]approvals.Request
	for i := range rs {
		rs[i] = mustCreate(t, s, newRequest("UREQ", fmt.Sprintf("u%d@example.com", i)))
	}
	var errs [n]error
	atOnce(n, func(i int) {
		_, errs[i] = s.Update(ctx, rs[i].ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
			next, events, err := approve("UAPP", base)(cur)
			events[0].Key = "click-race"
			return next, events, err
		})
	})
	if ok, dup := countDuplicates(t, "Update", errs[:]); ok != 1 || dup != n-1 {
		t.Errorf("%d updated, %d duplicates; want 1 and %d", ok, dup, n-1)
	}
}

// testUpdateRaceOneWins makes two updates read the same version before
// either writes: exactly one of "approve if nobody has" may win.
func testUpdateRaceOneWins(t *testing.T, s approvals.Store) {
	r := mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	errTaken := errors.New("already approved")
	var (
		both    sync.WaitGroup
		once    [2]sync.Once
		calls   atomic.Int32
		results [2]error
		wg      sync.WaitGroup
	)
	both.Add(2)
	for i, who := range []string{"UAPP1", "UAPP2"} {
		wg.Go(func() {
			_, results[i] = s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
				calls.Add(1)
				// The first call of each waits for the other's: both read version 1.
				once[i].Do(func() { both.Done(); both.Wait() })
				if len(cur.Reviews) > 0 {
					return cur, nil, errTaken
				}
				return approve(who, base)(cur)
			})
		})
	}
	wg.Wait()
	won, lost := 0, 0
	for _, err := range results {
		switch {
		case err == nil:
			won++
		case errors.Is(err, errTaken):
			lost++
		default:
			t.Errorf("Update: %v", err)
		}
	}
	if won != 1 || lost != 1 {
		t.Errorf("%d won, %d lost; want exactly one each", won, lost)
	}
	if calls.Load() < 3 {
		t.Errorf("fn called %d times; the loser must be called again on the new version", calls.Load())
	}
	stored, _ := s.Get(ctx, r.ID)
	if stored.Version != 2 || len(stored.Reviews) != 1 {
		t.Errorf("stored version %d with %d reviews, want 2 with 1", stored.Version, len(stored.Reviews))
	}
}

// testUpdateNoLostUpdates runs many updates at once, each adding its own
// review: none may be lost.
func testUpdateNoLostUpdates(t *testing.T, s approvals.Store) {
	r := newRequest("UREQ", "alice@example.com")
	r.Required = 5 // stays pending: every review is legal
	r = mustCreate(t, s, r)
	const n = 4
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := s.Update(ctx, r.ID, approve(fmt.Sprintf("UAPP%d", i), base)); err != nil {
				t.Errorf("Update %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	stored, _ := s.Get(ctx, r.ID)
	if stored.Version != n+1 || len(stored.Reviews) != n {
		t.Errorf("version %d with %d reviews, want %d with %d", stored.Version, len(stored.Reviews), n+1, n)
	}
}

func testReviewOncePerPerson(t *testing.T, s approvals.Store) {
	r := newRequest("UREQ", "alice@example.com")
	r.Required = 2
	r = mustCreate(t, s, r)
	if _, err := s.Update(ctx, r.ID, approve("UAPP", base)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, r.ID, approve("UAPP", base.Add(time.Second))); !errors.Is(err, approvals.ErrReviewed) {
		t.Fatalf("a second review by the same person: %v, want ErrReviewed", err)
	}
	if stored, _ := s.Get(ctx, r.ID); len(stored.Reviews) != 1 || stored.Version != 2 {
		t.Errorf("stored %d reviews at version %d, want 1 at 2", len(stored.Reviews), stored.Version)
	}
}

func testReviewsAppendOnly(t *testing.T, s approvals.Store) {
	r := newRequest("UREQ", "alice@example.com")
	r.Required = 2
	r = mustCreate(t, s, r)
	if _, err := s.Update(ctx, r.ID, approve("UAPP", base)); err != nil {
		t.Fatal(err)
	}
	changes := map[string]func(approvals.Request) approvals.Request{
		"remove a review": func(cur approvals.Request) approvals.Request { cur.Reviews = nil; return cur },
		"change a review": func(cur approvals.Request) approvals.Request {
			cur.Reviews[0].Decision = approvals.Deny
			return cur
		},
		"add a target": func(cur approvals.Request) approvals.Request {
			cur.Targets = append(cur.Targets, approvals.Target{Email: "eve@example.com", State: approvals.TargetWaiting})
			return cur
		},
		"change a target's email": func(cur approvals.Request) approvals.Request {
			cur.Targets[0].Email = "eve@example.com"
			return cur
		},
		"change a target's person": func(cur approvals.Request) approvals.Request {
			cur.Targets[0].Person = "UEVE"
			return cur
		},
		"give a target an unknown state": func(cur approvals.Request) approvals.Request {
			cur.Targets[0].State = "vanished"
			return cur
		},
	}
	for name, change := range changes {
		_, err := s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
			return change(cur), nil, nil
		})
		if err == nil {
			t.Errorf("%s: Update succeeded, want an error", name)
		}
	}
	stored, _ := s.Get(ctx, r.ID)
	if stored.Version != 2 || len(stored.Reviews) != 1 || stored.Reviews[0].Decision != approvals.Approve ||
		len(stored.Targets) != 1 || stored.Targets[0].Email != "alice@example.com" {
		t.Errorf("stored %+v, want it as after the approval", stored)
	}
}

// testOutcomesAreFinal checks that a target's recorded outcome, and a
// request's dry run, cannot be undone.
func testOutcomesAreFinal(t *testing.T, s approvals.Store) {
	r := newRequest("UREQ", "alice@example.com", "bob@example.com")
	r.DryRun = true
	r = mustCreate(t, s, r)
	if _, err := s.Update(ctx, r.ID, approve("UAPP", base)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.Targets[0].State, cur.Targets[0].Outcome, cur.Targets[0].FinishedAt = approvals.TargetRevoked, "dry run", base
		return cur, []approvals.Event{{Kind: approvals.EventRevoked, Target: "alice@example.com", At: base}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	changes := map[string]func(approvals.Request) approvals.Request{
		"undo an outcome": func(cur approvals.Request) approvals.Request {
			cur.Targets[0].State, cur.Targets[0].Outcome = approvals.TargetWaiting, ""
			return cur
		},
		"change an outcome": func(cur approvals.Request) approvals.Request {
			cur.Targets[0].State = approvals.TargetFailed
			return cur
		},
		"end a dry run": func(cur approvals.Request) approvals.Request { cur.DryRun = false; return cur },
	}
	for name, change := range changes {
		if _, err := s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
			return change(cur), nil, nil
		}); err == nil {
			t.Errorf("%s: Update succeeded, want an error", name)
		}
	}
	stored, _ := s.Get(ctx, r.ID)
	if stored.Version != 3 || stored.Targets[0].State != approvals.TargetRevoked || stored.Targets[0].Outcome != "dry run" || !stored.DryRun {
		t.Errorf("stored %+v, want it as after the first outcome", stored)
	}
}

// testFixedFields: what is fixed at Create stays as it was, whatever fn
// makes of it, in what Update returns and in what it stores.
func testFixedFields(t *testing.T, s approvals.Store) {
	r := mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	got, err := s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		cur.ID, cur.Requester, cur.Reason, cur.SubmitKey = uuid.NewString(), "UEVIL", "changed", "other-key"
		cur.Options = approvals.Options{UserUID: "0123456789abcdef0123456789abcdef"}
		cur.CreatedAt, cur.ExpiresAt = base.Add(-time.Hour), base.Add(24*time.Hour)
		cur.Required = 3
		cur.Channel, cur.MessageTS = "CEVIL", "1.2"
		cur.Version = 7
		return cur, nil, nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	stored, _ := s.Get(ctx, r.ID)
	for name, x := range map[string]approvals.Request{"returned": got, "stored": stored} {
		if x.ID != r.ID || x.Requester != "UREQ" || x.Reason != r.Reason || x.SubmitKey != r.SubmitKey ||
			x.Options != r.Options || !x.CreatedAt.Equal(r.CreatedAt) || !x.ExpiresAt.Equal(r.ExpiresAt) ||
			x.Required != r.Required || x.Channel != r.Channel || x.MessageTS != "" || x.Version != 2 {
			t.Errorf("%s: fixed fields changed: %+v", name, x)
		}
	}
}

func testSetMessage(t *testing.T, s approvals.Store) {
	r := mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	// An update that read the request before the message was set must not
	// erase it.
	_, err := s.Update(ctx, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		if cur.MessageTS == "" {
			if err := s.SetMessage(ctx, r.ID, "CAPPROVE", "1700000000.000100"); err != nil {
				t.Errorf("SetMessage: %v", err)
			}
		}
		return approve("UAPP", base)(cur)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	stored, _ := s.Get(ctx, r.ID)
	if stored.Channel != "CAPPROVE" || stored.MessageTS != "1700000000.000100" {
		t.Errorf("message = %s/%s, want CAPPROVE/1700000000.000100", stored.Channel, stored.MessageTS)
	}
	if err := s.SetMessage(ctx, uuid.NewString(), "C", "1.1"); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("SetMessage of a missing request: %v, want ErrNotFound", err)
	}
}

// testRequestsSurviveRestart: what a request's changes and SetMessage
// wrote is there after a restart.
func testRequestsSurviveRestart(t *testing.T, s approvals.Store, reopen func() approvals.Store) {
	r := newRequest("UREQ", "alice@example.com")
	r.Channel = ""
	r = mustCreate(t, s, r)
	if err := s.SetMessage(ctx, r.ID, "C1", "123.456"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, r.ID, approve("UAPP", base)); err != nil {
		t.Fatal(err)
	}
	got, err := reopen().Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Channel != "C1" || got.MessageTS != "123.456" || got.State() != approvals.StateExecuting || got.Version != 2 ||
		len(got.Reviews) != 1 || got.Reviews[0].By != "UAPP" {
		t.Fatalf("after a restart: %+v", got)
	}
}

func testAppendAndSeenKey(t *testing.T, s approvals.Store) {
	r := mustCreate(t, s, newRequest("UREQ", "alice@example.com"))
	if seen, err := s.SeenKey(ctx, "k1"); err != nil || seen {
		t.Fatalf("SeenKey before = %v, %v", seen, err)
	}
	if seen, err := s.SeenKey(ctx, ""); err != nil || seen {
		t.Errorf("SeenKey(\"\") = %v, %v; want false", seen, err)
	}
	e := approvals.Event{Kind: approvals.EventRefused, Request: r, Actor: "UX", Detail: "user is not an approver", At: base, Key: "k1"}
	if err := s.Append(ctx, e); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := s.Append(ctx, e); !errors.Is(err, approvals.ErrDuplicate) {
		t.Errorf("Append of a recorded key: %v, want ErrDuplicate", err)
	}
	if seen, err := s.SeenKey(ctx, "k1"); err != nil || !seen {
		t.Errorf("SeenKey after = %v, %v", seen, err)
	}
	if stored, _ := s.Get(ctx, r.ID); stored.Version != 1 {
		t.Errorf("Append changed the request's version to %d", stored.Version)
	}
}

func testListCountFind(t *testing.T, s approvals.Store) {
	first := newRequest("UREQ", "a@example.com")
	second := newRequest("UREQ", "b@example.com")
	second.CreatedAt = base.Add(time.Second)
	mustCreate(t, s, second)
	mustCreate(t, s, first)
	done := newRequest("UOTHER", "c@example.com")
	done = mustCreate(t, s, done)
	if _, err := s.Update(ctx, done.ID, approve("UAPP", base)); err != nil {
		t.Fatal(err)
	}
	pending, err := s.ListByState(ctx, approvals.StatePending)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 || pending[0].ID != first.ID || pending[1].ID != second.ID {
		t.Errorf("ListByState(pending) = %v, want the two pending ones, oldest first", ids(pending))
	}
	if len(pending) > 0 && len(pending[0].Targets) != 1 {
		t.Errorf("listed requests come without their targets: %+v", pending[0])
	}
	executing, _ := s.ListByState(ctx, approvals.StateExecuting)
	if len(executing) != 1 || executing[0].ID != done.ID || len(executing[0].Reviews) != 1 {
		t.Errorf("ListByState(executing) = %+v", executing)
	}
	if n, _ := s.CountByRequester(ctx, "UREQ", approvals.StatePending); n != 2 {
		t.Errorf("CountByRequester = %d, want 2", n)
	}
	if n, err := s.CountByRequester(ctx, "UNOBODY", approvals.StatePending); err != nil || n != 0 {
		t.Errorf("CountByRequester of a requester with none = %d, %v; want 0", n, err)
	}
	found, err := s.FindByPrefix(ctx, first.ID[:8], 5)
	if err != nil || len(found) != 1 || found[0].ID != first.ID {
		t.Errorf("FindByPrefix(%s) = %v, %v", first.ID[:8], ids(found), err)
	}
	if found, _ := s.FindByPrefix(ctx, first.ID, 5); len(found) != 1 {
		t.Errorf("FindByPrefix(whole ID) = %v", ids(found))
	}
	if found, _ := s.FindByPrefix(ctx, "", 2); len(found) != 2 {
		t.Errorf("FindByPrefix(\"\", 2) = %v, want 2 (the limit)", ids(found))
	}
	if found, _ := s.FindByPrefix(ctx, "zzzz", 5); len(found) != 0 {
		t.Errorf("FindByPrefix(zzzz) = %v, want none", ids(found))
	}
}

// StateCounter is a store that also counts its requests by state, as
// revokebot's metrics ask of both stores; approvals.Store does not require it.
type StateCounter interface {
	approvals.Store
	CountByState(ctx context.Context, s approvals.State) (int, error)
}

// CountByState checks that s.CountByState counts the requests of every
// requester in a state, and refused ones apart. Run does not call it: a
// store that has CountByState runs it from a test of its own, on a store
// new and empty.
func CountByState(t *testing.T, s StateCounter) {
	for _, who := range []string{"UREQ", "UREQ", "UOTHER"} {
		mustCreate(t, s, newRequest(who, "alice@example.com"))
	}
	refused := newRequest("UREQ", "alice@example.com")
	refused.Refusal = "requester is not in the requesters list"
	if err := s.Create(ctx, refused, approvals.Event{Kind: approvals.EventRefused, Request: refused, Actor: "UREQ", At: base}, 0); err != nil {
		t.Fatalf("Create (refused): %v", err)
	}
	for state, want := range map[approvals.State]int{approvals.StatePending: 3, approvals.StateRefused: 1, approvals.StateRevoked: 0} {
		if n, err := s.CountByState(ctx, state); err != nil || n != want {
			t.Errorf("CountByState(%s) = %d, %v; want %d", state, n, err, want)
		}
	}
}

// testStateComputed checks that what a Store lists by state follows the
// state computed from reviews and targets, through a whole life.
func testStateComputed(t *testing.T, s approvals.Store) {
	r := newRequest("UREQ", "a@example.com", "b@example.com")
	r.Required = 2
	r = mustCreate(t, s, r)
	step := func(want approvals.State, fn approvals.UpdateFunc) {
		t.Helper()
		got, err := s.Update(ctx, r.ID, fn)
		if err != nil {
			t.Fatalf("Update to %s: %v", want, err)
		}
		if got.State() != want {
			t.Fatalf("state %s, want %s", got.State(), want)
		}
		listed, _ := s.ListByState(ctx, want)
		if !slices.Contains(ids(listed), r.ID) {
			t.Errorf("not listed as %s", want)
		}
	}
	step(approvals.StatePending, approve("UAPP1", base))
	step(approvals.StateExecuting, approve("UAPP2", base))
	finish := func(i int, st approvals.TargetState) approvals.UpdateFunc {
		return func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
			cur.Targets[i].State, cur.Targets[i].FinishedAt = st, base
			return cur, []approvals.Event{{Kind: approvals.EventKind(st), Target: cur.Targets[i].Email, At: base}}, nil
		}
	}
	step(approvals.StateExecuting, finish(0, approvals.TargetRevoked))
	step(approvals.StateFailed, finish(1, approvals.TargetFailed))
	if pending, _ := s.ListByState(ctx, approvals.StateExecuting); len(pending) != 0 {
		t.Errorf("still listed as executing: %v", ids(pending))
	}
}

func ids(rs []approvals.Request) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}
