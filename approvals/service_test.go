package approvals_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
)

type fakeRevoker struct {
	calls atomic.Int32
	err   error
	delay time.Duration
	// inFlight counts calls under way; peak is its highest value.
	inFlight, peak atomic.Int32
}

func (f *fakeRevoker) Revoke(_ context.Context, r approvals.Revocation) (string, error) {
	f.calls.Add(1)
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	time.Sleep(f.delay)
	if f.err != nil {
		return "", f.err
	}
	return "revoked " + r.Email, nil
}

type recorder struct {
	mu     sync.Mutex
	events []approvals.Event
}

func (r *recorder) Notify(_ context.Context, e approvals.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) kinds() []approvals.EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []approvals.EventKind
	for _, e := range r.events {
		out = append(out, e.Kind)
	}
	return out
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	svc     *approvals.Service
	store   *sqlite.DB
	revoker *fakeRevoker
	events  *recorder
	clock   *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{store: db, revoker: &fakeRevoker{}, events: &recorder{},
		clock: &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}}
	f.svc = &approvals.Service{
		Store:     db,
		Revoker:   f.revoker,
		Notifier:  f.events,
		Directory: directory{"SAPPROVERS": {"U3"}},
		Policy: approvals.Policy{
			Requesters: approvals.Audience{Users: []string{"U1", "U2"}},
			Approvers:  approvals.Audience{Users: []string{"U1", "U2"}, Groups: []string{"SAPPROVERS"}},
		},
		TTL: 10 * time.Minute,
		Now: f.clock.Now,
	}
	return f
}

func (f *fixture) submit(t *testing.T) approvals.Request {
	t.Helper()
	r, err := f.svc.Submit(context.Background(), approvals.SubmitInput{
		Requester:  "U1",
		Revocation: approvals.Revocation{Email: "alice@example.com", Devices: true},
		Reason:     "laptop stolen",
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// markExecuting moves a pending request to executing, approved by U2, in the store only.
func (f *fixture) markExecuting(t *testing.T, r approvals.Request) approvals.Request {
	t.Helper()
	next := r
	next.State, next.DecidedBy = approvals.StateExecuting, "U2"
	e := approvals.Event{Kind: approvals.EventApproved, Request: next, Actor: "U2", At: f.clock.Now()}
	if err := f.store.CompareAndSwap(context.Background(), approvals.StatePending, next, e); err != nil {
		t.Fatal(err)
	}
	return next
}

// outboxKinds returns the kinds of the events recorded in the store, in order.
func (f *fixture) outboxKinds(t *testing.T) []approvals.EventKind {
	t.Helper()
	ds, err := f.store.Undelivered(context.Background(), approvals.AuditRecord, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// Refused attempts wait apart; put them back in event order.
	refusals, err := f.store.PendingRefusals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range refusals {
		ds = append(ds, g.First)
		if g.Last.Seq != g.First.Seq {
			ds = append(ds, g.Last)
		}
	}
	slices.SortFunc(ds, func(a, b approvals.Delivery) int { return int(a.Seq - b.Seq) })
	var out []approvals.EventKind
	for _, d := range ds {
		out = append(out, d.Event.Kind)
	}
	return out
}

func equalKinds(got []approvals.EventKind, want ...approvals.EventKind) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestSubmitPending(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	if _, err := uuid.Parse(r.ID); err != nil {
		t.Fatalf("ID %q is not a UUID", r.ID)
	}
	if r.State != approvals.StatePending || !r.ExpiresAt.Equal(f.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("request %+v", r)
	}
	stored, err := f.store.Get(context.Background(), r.ID)
	if err != nil || stored.State != approvals.StatePending || stored.Reason != "laptop stolen" {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	if k := f.events.kinds(); !equalKinds(k, approvals.EventRequested) {
		t.Fatalf("events %v", k)
	}
}

func TestSubmitRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U3", Revocation: approvals.Revocation{Email: "a@b.c"}})
	if approvals.ErrorCode(err) != approvals.EFORBIDDEN {
		t.Fatalf("err = %v, want forbidden", err)
	}
	stored, gerr := f.store.Get(context.Background(), r.ID)
	if gerr != nil || stored.State != approvals.StateRefused {
		t.Fatalf("refused request stored as %+v, %v", stored, gerr)
	}
	if k := f.events.kinds(); !equalKinds(k, approvals.EventRefused) {
		t.Fatalf("events %v", k)
	}
	if f.events.events[0].Actor != "U3" {
		t.Fatalf("actor %q", f.events.events[0].Actor)
	}
}

func TestSubmitGroupLookupFailureRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.Policy.Requesters = approvals.Audience{Groups: []string{"SGONE"}}
	_, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U1", Revocation: approvals.Revocation{Email: "a@b.c"}})
	if approvals.ErrorCode(err) != approvals.EFORBIDDEN {
		t.Fatalf("err = %v, want forbidden", err)
	}
	if k := f.events.kinds(); !equalKinds(k, approvals.EventRefused) {
		t.Fatalf("events %v", k)
	}
}

func TestApproveRevokes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	got, err := f.svc.Decide(context.Background(), r.ID, "U3", approvals.Approve) // U3 approves through the group
	if err != nil {
		t.Fatal(err)
	}
	if got.State != approvals.StateRevoked || got.DecidedBy != "U3" || got.Outcome != "revoked alice@example.com" {
		t.Fatalf("request %+v", got)
	}
	if n := f.revoker.calls.Load(); n != 1 {
		t.Fatalf("revoker called %d times", n)
	}
	if k := f.events.kinds(); !equalKinds(k, approvals.EventRequested, approvals.EventApproved, approvals.EventRevoked) {
		t.Fatalf("events %v", k)
	}
	// Every event is in the store's log, in order, before anyone is told.
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested, approvals.EventApproved, approvals.EventRevoked) {
		t.Fatalf("recorded events %v", k)
	}
}

func TestApproveFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.revoker.err = errors.New("cloudflare: 403 Forbidden: [10000] Authentication error")
	r := f.submit(t)
	got, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Approve)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != approvals.StateFailed || got.Outcome != f.revoker.err.Error() {
		t.Fatalf("request %+v", got)
	}
	last := f.events.events[len(f.events.events)-1]
	if last.Kind != approvals.EventFailed || last.Detail != f.revoker.err.Error() {
		t.Fatalf("last event %+v", last)
	}
}

func TestSelfApprovalRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	got, err := f.svc.Decide(context.Background(), r.ID, "U1", approvals.Approve) // U1 is also an approver
	if approvals.ErrorCode(err) != approvals.EFORBIDDEN {
		t.Fatalf("err = %v, want forbidden", err)
	}
	if got.State != approvals.StatePending || f.revoker.calls.Load() != 0 {
		t.Fatalf("state %s, %d revocations", got.State, f.revoker.calls.Load())
	}
	if k := f.events.kinds(); !equalKinds(k, approvals.EventRequested, approvals.EventRefused) {
		t.Fatalf("events %v", k)
	}
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested, approvals.EventRefused) {
		t.Fatalf("recorded events %v", k)
	}
}

func TestNonApproverRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	for _, d := range []approvals.Decision{approvals.Approve, approvals.Deny} {
		_, err := f.svc.Decide(context.Background(), r.ID, "U9", d)
		if approvals.ErrorCode(err) != approvals.EFORBIDDEN {
			t.Fatalf("decision %d: err = %v, want forbidden", d, err)
		}
	}
	stored, _ := f.store.Get(context.Background(), r.ID)
	if stored.State != approvals.StatePending {
		t.Fatalf("state %s", stored.State)
	}
}

func TestDenyAndCancel(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	got, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Deny)
	if err != nil || got.State != approvals.StateDenied || got.DecidedBy != "U2" {
		t.Fatalf("deny: %+v, %v", got, err)
	}
	r2 := f.submit(t)
	got, err = f.svc.Decide(context.Background(), r2.ID, "U1", approvals.Deny)
	if err != nil || got.State != approvals.StateCancelled {
		t.Fatalf("cancel: %+v, %v", got, err)
	}
	if f.revoker.calls.Load() != 0 {
		t.Fatal("revoker called")
	}
	// A decided request refuses further decisions, saying who decided.
	_, err = f.svc.Decide(context.Background(), r.ID, "U3", approvals.Approve)
	var e *approvals.Error
	if !errors.As(err, &e) || e.Code != approvals.ECONFLICT || e.Request.DecidedBy != "U2" {
		t.Fatalf("decide after deny: %v", err)
	}
}

func TestConcurrentApprovalsRevokeOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.revoker.delay = 20 * time.Millisecond
	r := f.submit(t)
	var (
		wg        sync.WaitGroup
		ok, confl atomic.Int32
	)
	for i := range 20 {
		wg.Go(func() {
			_, err := f.svc.Decide(context.Background(), r.ID, []string{"U2", "U3"}[i%2], approvals.Approve)
			switch approvals.ErrorCode(err) {
			case "":
				ok.Add(1)
			case approvals.ECONFLICT:
				confl.Add(1)
			default:
				t.Errorf("decide: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || confl.Load() != 19 {
		t.Fatalf("%d succeeded, %d conflicted", ok.Load(), confl.Load())
	}
	if n := f.revoker.calls.Load(); n != 1 {
		t.Fatalf("revoker called %d times, want 1", n)
	}
}

func TestDecideExpired(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	f.clock.Advance(10 * time.Minute)
	got, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Approve)
	if approvals.ErrorCode(err) != approvals.EEXPIRED || got.State != approvals.StateExpired {
		t.Fatalf("got %s, %v", got.State, err)
	}
	if f.revoker.calls.Load() != 0 {
		t.Fatal("expired request revoked")
	}
	if k := f.events.kinds(); !equalKinds(k, approvals.EventRequested, approvals.EventExpired) {
		t.Fatalf("events %v", k)
	}
}

func TestExpireDue(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	old := f.submit(t)
	f.clock.Advance(5 * time.Minute)
	fresh := f.submit(t)
	f.clock.Advance(5 * time.Minute)
	n, err := f.svc.ExpireDue(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
	}
	if got, _ := f.store.Get(context.Background(), old.ID); got.State != approvals.StateExpired {
		t.Fatalf("old request %s", got.State)
	}
	if got, _ := f.store.Get(context.Background(), fresh.ID); got.State != approvals.StatePending {
		t.Fatalf("fresh request %s", got.State)
	}
	if n, _ := f.svc.ExpireDue(context.Background()); n != 0 {
		t.Fatalf("second ExpireDue expired %d", n)
	}
}

func TestDryRunDoesNotRevoke(t *testing.T) {
	t.Parallel()
	// The service's dry run covers requests created before it was switched on.
	for _, createdInDryRun := range []bool{true, false} {
		f := newFixture(t)
		f.svc.DryRun = createdInDryRun
		r := f.submit(t)
		f.svc.DryRun = true
		got, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Approve)
		// Approved while dry run is on: it is a dry run, whenever created.
		if err != nil || !got.DryRun || got.State != approvals.StateRevoked ||
			got.Outcome != "dry run: Cloudflare was not called" {
			t.Fatalf("created in dry run %v: got %+v, %v", createdInDryRun, got, err)
		}
		if f.revoker.calls.Load() != 0 {
			t.Fatalf("created in dry run %v: the revoker was called", createdInDryRun)
		}
		if stored, err := f.store.Get(context.Background(), r.ID); err != nil || !stored.DryRun {
			t.Fatalf("created in dry run %v: stored as DryRun=%t (%v): its message would say Revoked", createdInDryRun, stored.DryRun, err)
		}
	}
}

func TestResumeExecuting(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	f.markExecuting(t, r) // a crash right after approval leaves it so
	if err := f.svc.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.Get(context.Background(), r.ID)
	if got.State != approvals.StateRevoked || f.revoker.calls.Load() != 1 {
		t.Fatalf("state %s, %d calls", got.State, f.revoker.calls.Load())
	}
	last := f.events.events[len(f.events.events)-1]
	if last.Kind != approvals.EventRevoked || last.Detail != "resumed after a restart; revoked alice@example.com" {
		t.Fatalf("last event %+v", last)
	}
}

func TestDecideUnknown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, id := range []string{uuid.NewString(), "not-a-uuid", ""} {
		if _, err := f.svc.Decide(context.Background(), id, "U2", approvals.Approve); approvals.ErrorCode(err) != approvals.ENOTFOUND {
			t.Errorf("Decide(%q): err = %v, want not found", id, err)
		}
	}
}

func TestExecuteOutlivesCallerCancellation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.revoker.delay = 50 * time.Millisecond
	r := f.submit(t)
	next := f.markExecuting(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the click's context is gone, e.g. at shutdown
	got, err := f.svc.Execute(ctx, next, "")
	if err != nil || got.State != approvals.StateRevoked {
		t.Fatalf("got %s, %v", got.State, err)
	}
	if stored, _ := f.store.Get(context.Background(), r.ID); stored.State != approvals.StateRevoked {
		t.Fatalf("stored state %s", stored.State)
	}
}

// slowDirectory advances the clock while it looks a group up.
type slowDirectory struct {
	clock *clock
	by    time.Duration
}

func (d slowDirectory) GroupMembers(context.Context, string) ([]string, error) {
	d.clock.Advance(d.by)
	return []string{"U3"}, nil
}

func TestApprovalCannotLandAfterExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	f.clock.Advance(9 * time.Minute)
	f.svc.Directory = slowDirectory{clock: f.clock, by: 2 * time.Minute} // the lookup crosses the deadline
	got, err := f.svc.Decide(context.Background(), r.ID, "U3", approvals.Approve)
	if approvals.ErrorCode(err) != approvals.EEXPIRED || got.State != approvals.StateExpired {
		t.Fatalf("got %s, %v", got.State, err)
	}
	if f.revoker.calls.Load() != 0 {
		t.Fatal("revoked after expiry")
	}
}

func TestPendingCapPerRequester(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.MaxPending = 2
	first := f.submit(t)
	f.submit(t)
	r, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U1", Revocation: approvals.Revocation{Email: "bob@example.com"}})
	if approvals.ErrorCode(err) != approvals.EFORBIDDEN || r.State != approvals.StateRefused {
		t.Fatalf("third request: %s, %v; want refused", r.State, err)
	}
	if msg := approvals.ErrorMessage(err); !strings.Contains(msg, "You already have 2 requests waiting") {
		t.Fatalf("message %q", msg)
	}
	if got := f.events.events[len(f.events.events)-1]; got.Kind != approvals.EventRefused ||
		got.Detail != "requester already has 2 pending requests (limit 2)" {
		t.Fatalf("event %+v", got)
	}
	// Another requester is not affected, and a decided request frees a place.
	if _, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U2", Revocation: approvals.Revocation{Email: "a@b.c"}}); err != nil {
		t.Fatalf("U2: %v", err)
	}
	if _, err := f.svc.Decide(context.Background(), first.ID, "U2", approvals.Deny); err != nil {
		t.Fatal(err)
	}
	f.submit(t)
}

func TestPendingCapHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.MaxPending = 3
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U1", Revocation: approvals.Revocation{Email: "a@b.c"}})
		})
	}
	wg.Wait()
	if n, err := f.store.CountByRequester(context.Background(), "U1", approvals.StatePending); err != nil || n != 3 {
		t.Fatalf("pending = %d, %v; want 3", n, err)
	}
}

func TestSubmitSameKeyTwice(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := approvals.SubmitInput{Requester: "U1", Revocation: approvals.Revocation{Email: "a@b.c"}, Key: "Ev1"}
	if _, err := f.svc.Submit(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Submit(context.Background(), in); !errors.Is(err, approvals.ErrDuplicate) {
		t.Fatalf("err = %v, want ErrDuplicate", err)
	}
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested) {
		t.Fatalf("recorded events %v", k)
	}
	// A refused submission keeps its key too.
	in = approvals.SubmitInput{Requester: "U9", Revocation: approvals.Revocation{Email: "a@b.c"}, Key: "Ev2"}
	if _, err := f.svc.Submit(context.Background(), in); approvals.ErrorCode(err) != approvals.EFORBIDDEN {
		t.Fatalf("err = %v, want forbidden", err)
	}
	if _, err := f.svc.Submit(context.Background(), in); !errors.Is(err, approvals.ErrDuplicate) {
		t.Fatalf("err = %v, want ErrDuplicate", err)
	}
}

func TestResumeRunsConcurrently(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.MaxPending = 100
	f.revoker.delay = 50 * time.Millisecond
	for range 16 {
		f.markExecuting(t, f.submit(t))
	}
	if err := f.svc.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.revoker.calls.Load(); n != 16 {
		t.Fatalf("%d revocations, want 16", n)
	}
	if left, _ := f.store.ListByState(context.Background(), approvals.StateExecuting); len(left) != 0 {
		t.Fatalf("%d still executing", len(left))
	}
	// Several at once, but never more than Resume's bound of 8.
	if p := f.revoker.peak.Load(); p < 2 || p > 8 {
		t.Fatalf("%d revocations at once, want 2 to 8", p)
	}
}

// blockingRevoker waits until its context ends, as a hung Cloudflare would.
type blockingRevoker struct{}

func (blockingRevoker) Revoke(ctx context.Context, _ approvals.Revocation) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

func TestRevocationOutOfTimeStillRecordsItsOutcome(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.Revoker = blockingRevoker{}
	f.svc.ExecTimeout = 20 * time.Millisecond
	r := f.submit(t)
	got, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Approve)
	if err != nil || got.State != approvals.StateFailed || !strings.Contains(got.Outcome, "deadline exceeded") {
		t.Fatalf("got %s %q, %v; want failed on the deadline", got.State, got.Outcome, err)
	}
	if stored, _ := f.store.Get(context.Background(), r.ID); stored.State != approvals.StateFailed {
		t.Fatalf("stored state %s", stored.State)
	}
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested, approvals.EventApproved, approvals.EventFailed) {
		t.Fatalf("recorded events %v", k)
	}
}
