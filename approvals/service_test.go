package approvals_test

import (
	"context"
	"errors"
	"log/slog"
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

// fakeRevoker records the revocations asked of it. It fails every one with
// err, if set, and those of the emails in failing with their error.
type fakeRevoker struct {
	calls   atomic.Int32
	err     error
	failing map[string]error
	delay   time.Duration
	// inFlight counts calls under way; peak is its highest value.
	inFlight, peak atomic.Int32

	mu     sync.Mutex
	emails []string
}

func (f *fakeRevoker) Revoke(_ context.Context, r approvals.Revocation) (string, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.emails = append(f.emails, r.Email)
	f.mu.Unlock()
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	time.Sleep(f.delay)
	if err := f.failing[r.Email]; err != nil {
		return "", err
	}
	if f.err != nil {
		return "", f.err
	}
	return "revoked " + r.Email, nil
}

// revoked returns the emails the revoker was asked to revoke, in order.
func (f *fakeRevoker) revoked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.emails)
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

// all returns the events told so far.
func (r *recorder) all() []approvals.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// last returns the last event told.
func (r *recorder) last(t *testing.T) approvals.Event {
	t.Helper()
	all := r.all()
	if len(all) == 0 {
		t.Fatal("no events")
	}
	return all[len(all)-1]
}

func (r *recorder) kinds() []approvals.EventKind {
	var out []approvals.EventKind
	for _, e := range r.all() {
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

// newFixture returns a service on a fresh SQLite store. U1 and U2 may
// request; U1, U2 and U4 may approve, and U3 through the group SAPPROVERS;
// U9 is nobody. Requests live 10 minutes.
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
		Directory: directory{groups: map[string][]string{"SAPPROVERS": {"U3"}}},
		Policy: approvals.Policy{
			Requesters: approvals.Audience{Users: []string{"U1", "U2"}},
			Approvers:  approvals.Audience{Users: []string{"U1", "U2", "U4"}, Groups: []string{"SAPPROVERS"}},
		},
		TTL:    10 * time.Minute,
		Now:    f.clock.Now,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), // shown only if the test fails
	}
	return f
}

// submit submits a request of U1 for alice (or for emails, if any).
func (f *fixture) submit(t *testing.T, emails ...string) approvals.Request {
	t.Helper()
	if len(emails) == 0 {
		emails = []string{"alice@example.com"}
	}
	var targets []approvals.TargetInput
	for _, e := range emails {
		targets = append(targets, approvals.TargetInput{Email: e})
	}
	r, err := f.svc.Submit(context.Background(), approvals.SubmitInput{
		Requester: "U1",
		Targets:   targets,
		Options:   approvals.Options{Devices: true},
		Reason:    "laptop stolen",
		Channel:   "CSEC",
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// get returns request id as stored.
func (f *fixture) get(t *testing.T, id string) approvals.Request {
	t.Helper()
	r, err := f.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// markExecuting approves request id by U2 in the store only, as a crash
// right after the approval would leave it, and marks the targets at the
// given positions revoked, as a crash between targets would.
func (f *fixture) markExecuting(t *testing.T, id string, revoked ...int) approvals.Request {
	t.Helper()
	next, err := f.store.Update(context.Background(), id, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		at := f.clock.Now()
		cur.Reviews = append(cur.Reviews, approvals.Review{By: "U2", Decision: approvals.Approve, At: at})
		events := []approvals.Event{{Kind: approvals.EventApproved, Actor: "U2", At: at}}
		for _, i := range revoked {
			tg := &cur.Targets[i]
			tg.State, tg.Outcome, tg.FinishedAt = approvals.TargetRevoked, "revoked "+tg.Email, at
			events = append(events, approvals.Event{Kind: approvals.EventRevoked, Target: tg.Email, Detail: tg.Outcome, At: at})
		}
		return cur, events, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := next.State(), approvals.StateExecuting; got != want {
		t.Fatalf("marked %s, want %s", got, want)
	}
	return next
}

// recorded returns the events recorded in the store, in order.
func (f *fixture) recorded(t *testing.T) []approvals.Event {
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
		if g.Count > 2 {
			t.Fatalf("%d refusals of %s: only the first and last can be read back", g.Count, g.Actor)
		}
		ds = append(ds, g.First)
		if g.Last.Seq != g.First.Seq {
			ds = append(ds, g.Last)
		}
	}
	slices.SortFunc(ds, func(a, b approvals.Delivery) int { return int(a.Seq - b.Seq) })
	var out []approvals.Event
	for _, d := range ds {
		out = append(out, d.Event)
	}
	return out
}

// outboxKinds returns the kinds of the events recorded in the store, in order.
func (f *fixture) outboxKinds(t *testing.T) []approvals.EventKind {
	t.Helper()
	var out []approvals.EventKind
	for _, e := range f.recorded(t) {
		out = append(out, e.Kind)
	}
	return out
}

func equalKinds(got []approvals.EventKind, want ...approvals.EventKind) bool {
	return slices.Equal(got, want)
}

// domainError returns the *approvals.Error in err's chain, failing t if
// there is none.
func domainError(t *testing.T, err error) *approvals.Error {
	t.Helper()
	e, ok := errors.AsType[*approvals.Error](err)
	if !ok {
		t.Fatalf("err = %v, want an *approvals.Error", err)
	}
	return e
}

// wantError fails t unless err is an *approvals.Error with code and why.
func wantError(t *testing.T, err error, code string, why approvals.Why) *approvals.Error {
	t.Helper()
	e := domainError(t, err)
	if e.Code != code || e.Why != why {
		t.Fatalf("err = %v, want %s: %s", err, code, why)
	}
	return e
}

func TestSubmitPending(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	if _, err := uuid.Parse(r.ID); err != nil {
		t.Fatalf("ID %q is not a UUID", r.ID)
	}
	if r.State() != approvals.StatePending || r.Version != 1 || !r.ExpiresAt.Equal(f.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("request %+v", r)
	}
	if got, want := r.Required, 1; got != want {
		t.Fatalf("Required = %d, want %d", got, want)
	}
	stored := f.get(t, r.ID)
	if stored.State() != approvals.StatePending || stored.Reason != "laptop stolen" || stored.Version != 1 ||
		!slices.Equal(stored.Targets, []approvals.Target{{Email: "alice@example.com", State: approvals.TargetWaiting}}) {
		t.Fatalf("stored %+v", stored)
	}
	if k := f.events.kinds(); !equalKinds(k, approvals.EventRequested) {
		t.Fatalf("events %v", k)
	}
}

func TestSubmitRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U3", Targets: []approvals.TargetInput{{Email: "a@b.c"}}})
	wantError(t, err, approvals.EFORBIDDEN, approvals.WhyNotRequester)
	if stored := f.get(t, r.ID); stored.State() != approvals.StateRefused || stored.Refusal == "" {
		t.Fatalf("refused request stored as %+v", stored)
	}
	if k := f.events.kinds(); !equalKinds(k, approvals.EventRefused) {
		t.Fatalf("events %v", k)
	}
	if got, want := f.events.last(t).Actor, "U3"; got != want {
		t.Fatalf("actor %q, want %q", got, want)
	}
}

func TestSubmitGroupLookupFailureRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.Policy.Requesters = approvals.Audience{Groups: []string{"SGONE"}}
	_, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U1", Targets: []approvals.TargetInput{{Email: "a@b.c"}}})
	wantError(t, err, approvals.EFORBIDDEN, approvals.WhyUnverified)
	if k := f.events.kinds(); !equalKinds(k, approvals.EventRefused) {
		t.Fatalf("events %v", k)
	}
}

func TestSubmitInvalid(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, in := range []approvals.SubmitInput{
		{Requester: "U1"},
		{Targets: []approvals.TargetInput{{Email: "a@b.c"}}},
		{Requester: "U1", Targets: []approvals.TargetInput{{Email: "a@b.c"}, {Person: "U7"}}},
	} {
		_, err := f.svc.Submit(context.Background(), in)
		wantError(t, err, approvals.EINVALID, approvals.WhyInvalid)
	}
	if k := f.outboxKinds(t); len(k) != 0 {
		t.Fatalf("recorded events %v", k)
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
	if got.State() != approvals.StateRevoked || len(got.Reviews) != 1 || got.Reviews[0].By != "U3" ||
		got.Targets[0].Outcome != "revoked alice@example.com" || got.FinishedAt.IsZero() {
		t.Fatalf("request %+v", got)
	}
	if got, want := f.revoker.revoked(), []string{"alice@example.com"}; !slices.Equal(got, want) {
		t.Fatalf("revoked %v, want %v", got, want)
	}
	if k := f.events.kinds(); !equalKinds(k, approvals.EventRequested, approvals.EventApproved, approvals.EventRevoked) {
		t.Fatalf("events %v", k)
	}
	// Every event is in the store's log, in order, before anyone is told.
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested, approvals.EventApproved, approvals.EventRevoked) {
		t.Fatalf("recorded events %v", k)
	}
	// One target: its event says nothing of the request as a whole.
	if last := f.events.last(t); last.Target != "alice@example.com" || last.Detail != "revoked alice@example.com" || last.State != approvals.StateRevoked {
		t.Fatalf("last event %+v", last)
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
	if got.State() != approvals.StateFailed || got.Targets[0].State != approvals.TargetFailed || got.Targets[0].Outcome != f.revoker.err.Error() {
		t.Fatalf("request %+v", got)
	}
	last := f.events.last(t)
	if last.Kind != approvals.EventFailed || last.Detail != f.revoker.err.Error() || last.State != approvals.StateFailed {
		t.Fatalf("last event %+v", last)
	}
}

func TestSelfApprovalRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	got, err := f.svc.Decide(context.Background(), r.ID, "U1", approvals.Approve) // U1 is also an approver
	wantError(t, err, approvals.EFORBIDDEN, approvals.WhyOwnRequest)
	if got.State() != approvals.StatePending || f.revoker.calls.Load() != 0 {
		t.Fatalf("state %s, %d revocations", got.State(), f.revoker.calls.Load())
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
		wantError(t, err, approvals.EFORBIDDEN, approvals.WhyNotApprover)
	}
	if stored := f.get(t, r.ID); stored.State() != approvals.StatePending || len(stored.Reviews) != 0 {
		t.Fatalf("stored %+v", stored)
	}
}

func TestDenyAndCancel(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	got, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Deny)
	if err != nil || got.State() != approvals.StateDenied {
		t.Fatalf("deny: %+v, %v", got, err)
	}
	if d, ok := got.Denial(); !ok || d.By != "U2" {
		t.Fatalf("denial %+v, %t", d, ok)
	}
	r2 := f.submit(t)
	got, err = f.svc.Decide(context.Background(), r2.ID, "U1", approvals.Deny)
	if err != nil || got.State() != approvals.StateCancelled {
		t.Fatalf("cancel: %+v, %v", got, err)
	}
	if f.revoker.calls.Load() != 0 {
		t.Fatal("revoker called")
	}
	// A decided request refuses further decisions, with the request as it
	// stands, so the caller can say who decided.
	_, err = f.svc.Decide(context.Background(), r.ID, "U3", approvals.Approve)
	e := wantError(t, err, approvals.ECONFLICT, approvals.WhyDecided)
	if d, ok := e.Request.Denial(); e.Request == nil || !ok || d.By != "U2" {
		t.Fatalf("decide after deny: request %+v", e.Request)
	}
}

func TestDecideExpired(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	f.clock.Advance(10 * time.Minute)
	got, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Approve)
	wantError(t, err, approvals.EEXPIRED, approvals.WhyExpired)
	if got.State() != approvals.StateExpired {
		t.Fatalf("returned %s, want expired", got.State())
	}
	if stored := f.get(t, r.ID); stored.State() != approvals.StateExpired || !stored.ExpiredAt.Equal(f.clock.Now()) || len(stored.Reviews) != 0 {
		t.Fatalf("stored %+v", stored)
	}
	if f.revoker.calls.Load() != 0 {
		t.Fatal("expired request revoked")
	}
	if k := f.events.kinds(); !equalKinds(k, approvals.EventRequested, approvals.EventExpired) {
		t.Fatalf("events %v", k)
	}
	// Later decisions find it expired.
	_, err = f.svc.Decide(context.Background(), r.ID, "U3", approvals.Approve)
	e := wantError(t, err, approvals.ECONFLICT, approvals.WhyDecided)
	if e.Request.State() != approvals.StateExpired {
		t.Fatalf("conflict about a request in %s", e.Request.State())
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
	if got := f.get(t, old.ID); got.State() != approvals.StateExpired || got.FinishedAt.IsZero() {
		t.Fatalf("old request %s, finished %v", got.State(), got.FinishedAt)
	}
	if got := f.get(t, fresh.ID); got.State() != approvals.StatePending {
		t.Fatalf("fresh request %s", got.State())
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
		if err != nil || !got.DryRun || got.State() != approvals.StateRevoked ||
			got.Targets[0].Outcome != "dry run: Cloudflare was not called" {
			t.Fatalf("created in dry run %v: got %+v, %v", createdInDryRun, got, err)
		}
		if f.revoker.calls.Load() != 0 {
			t.Fatalf("created in dry run %v: the revoker was called", createdInDryRun)
		}
		if stored := f.get(t, r.ID); !stored.DryRun {
			t.Fatalf("created in dry run %v: stored as DryRun=%t: its message would say Revoked", createdInDryRun, stored.DryRun)
		}
	}
}

func TestResumeExecuting(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	f.markExecuting(t, r.ID) // a crash right after approval leaves it so
	if err := f.svc.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, r.ID); got.State() != approvals.StateRevoked || f.revoker.calls.Load() != 1 {
		t.Fatalf("state %s, %d calls", got.State(), f.revoker.calls.Load())
	}
	last := f.events.last(t)
	if last.Kind != approvals.EventRevoked || last.Detail != "resumed after a restart; revoked alice@example.com" {
		t.Fatalf("last event %+v", last)
	}
}

func TestDecideUnknown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, id := range []string{uuid.NewString(), "not-a-uuid", ""} {
		_, err := f.svc.Decide(context.Background(), id, "U2", approvals.Approve)
		wantError(t, err, approvals.ENOTFOUND, approvals.WhyNoRequest)
	}
}

func TestExecuteOutlivesCallerCancellation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.revoker.delay = 50 * time.Millisecond
	r := f.submit(t)
	next := f.markExecuting(t, r.ID)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the click's context is gone, e.g. at shutdown
	got, err := f.svc.Execute(ctx, next, "")
	if err != nil || got.State() != approvals.StateRevoked {
		t.Fatalf("got %s, %v", got.State(), err)
	}
	if stored := f.get(t, r.ID); stored.State() != approvals.StateRevoked {
		t.Fatalf("stored state %s", stored.State())
	}
}

func TestExecuteRefusesARequestNotExecuting(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	if _, err := f.svc.Execute(context.Background(), r, ""); err == nil {
		t.Fatal("Execute of a pending request succeeded")
	}
	if n := f.revoker.calls.Load(); n != 0 {
		t.Fatalf("%d revocations of a pending request", n)
	}
}

// slowDirectory advances the clock while it looks a group up.
type slowDirectory struct {
	directory
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
	wantError(t, err, approvals.EEXPIRED, approvals.WhyExpired)
	if got.State() != approvals.StateExpired {
		t.Fatalf("got %s", got.State())
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
	r, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U1", Targets: []approvals.TargetInput{{Email: "bob@example.com"}}})
	e := wantError(t, err, approvals.EFORBIDDEN, approvals.WhyPendingLimit)
	if got, want := e.Limit, 2; got != want {
		t.Fatalf("Limit = %d, want %d", got, want)
	}
	if r.State() != approvals.StateRefused {
		t.Fatalf("third request: %s, want refused", r.State())
	}
	// Audited as a refused request, and stored as one.
	if got := f.events.last(t); got.Kind != approvals.EventRefused || got.Actor != "U1" ||
		got.Detail != "requester already has 2 pending requests (the limit)" {
		t.Fatalf("event %+v", got)
	}
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested, approvals.EventRequested, approvals.EventRefused) {
		t.Fatalf("recorded events %v", k)
	}
	if stored := f.get(t, r.ID); stored.State() != approvals.StateRefused {
		t.Fatalf("stored %s", stored.State())
	}
	// Another requester is not affected, and a decided request frees a place.
	if _, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U2", Targets: []approvals.TargetInput{{Email: "a@b.c"}}}); err != nil {
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
	var (
		wg          sync.WaitGroup
		ok, limited atomic.Int32
	)
	for range 12 {
		wg.Go(func() {
			_, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U1", Targets: []approvals.TargetInput{{Email: "a@b.c"}}})
			switch {
			case err == nil:
				ok.Add(1)
			case approvals.ErrorWhy(err) == approvals.WhyPendingLimit:
				limited.Add(1)
			default:
				t.Errorf("submit: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 3 || limited.Load() != 9 {
		t.Fatalf("%d accepted, %d refused at the cap; want 3, 9", ok.Load(), limited.Load())
	}
	if n, err := f.store.CountByRequester(context.Background(), "U1", approvals.StatePending); err != nil || n != 3 {
		t.Fatalf("pending = %d, %v; want 3", n, err)
	}
	if n, err := f.store.CountByRequester(context.Background(), "U1", approvals.StateRefused); err != nil || n != 9 {
		t.Fatalf("refused = %d, %v; want 9", n, err)
	}
}

func TestSubmitSameKeyTwice(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	in := approvals.SubmitInput{Requester: "U1", Targets: []approvals.TargetInput{{Email: "a@b.c"}}, Key: "Ev1"}
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
	in = approvals.SubmitInput{Requester: "U9", Targets: []approvals.TargetInput{{Email: "a@b.c"}}, Key: "Ev2"}
	_, err := f.svc.Submit(context.Background(), in)
	wantError(t, err, approvals.EFORBIDDEN, approvals.WhyNotRequester)
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
		f.markExecuting(t, f.submit(t).ID)
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
	if err != nil || got.State() != approvals.StateFailed || !strings.Contains(got.Targets[0].Outcome, "deadline exceeded") {
		t.Fatalf("got %s %q, %v; want failed on the deadline", got.State(), got.Targets[0].Outcome, err)
	}
	if stored := f.get(t, r.ID); stored.State() != approvals.StateFailed {
		t.Fatalf("stored state %s", stored.State())
	}
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested, approvals.EventApproved, approvals.EventFailed) {
		t.Fatalf("recorded events %v", k)
	}
}
