package approvals_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// fakeInspector answers as the identity platform would: users by email,
// their sessions (gone after a revocation, once gone is true), and logins.
type fakeInspector struct {
	mu       sync.Mutex
	users    map[string]approvals.Preview
	sessions map[string]int // by user ID
	logins   map[string][]approvals.Login
	// unavailable, if set, is the answer to every call.
	unavailable string
	calls       int
}

func (f *fakeInspector) Preview(_ context.Context, email string) (approvals.Preview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.unavailable != "" {
		return approvals.Preview{}, &approvals.Unavailable{Why: f.unavailable}
	}
	return f.users[email], nil
}

func (f *fakeInspector) ActiveSessions(_ context.Context, id string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.unavailable != "" {
		return 0, &approvals.Unavailable{Why: f.unavailable}
	}
	return f.sessions[id], nil
}

func (f *fakeInspector) Logins(_ context.Context, email string, since time.Time) ([]approvals.Login, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.unavailable != "" {
		return nil, &approvals.Unavailable{Why: f.unavailable}
	}
	var out []approvals.Login
	for _, l := range f.logins[email] {
		if !l.At.Before(since) {
			out = append(out, l)
		}
	}
	return out, nil
}

func (f *fakeInspector) set(fn func()) { f.mu.Lock(); defer f.mu.Unlock(); fn() }

func newInspected(t *testing.T) (*fixture, *fakeInspector) {
	f := newFixture(t)
	in := &fakeInspector{
		users:    map[string]approvals.Preview{"alice@example.com": {Known: true, UserID: "u-alice", Sessions: 2, Devices: 1}},
		sessions: map[string]int{},
		logins:   map[string][]approvals.Login{},
	}
	f.svc.Inspector = in
	f.svc.VerifyTimeout = 2 * time.Minute
	f.svc.WatchFor = 24 * time.Hour
	return f, in
}

func (f *fixture) waitEvent(t *testing.T, kind approvals.EventKind) approvals.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range f.events.all() {
			if e.Kind == kind {
				return e
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %s event: %v", kind, f.events.kinds())
	return approvals.Event{}
}

func (f *fixture) count(kind approvals.EventKind) int {
	n := 0
	for _, e := range f.events.all() {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// The preview arrives after the request is made, and is recorded with a
// observed event: a known user with her sessions, an unknown email.
func TestPreviewIsRecordedAfterSubmit(t *testing.T) {
	t.Parallel()
	f, _ := newInspected(t)
	r := f.submit(t, "alice@example.com", "typo@example.com")
	f.waitEvent(t, approvals.EventObserved)
	got := f.get(t, r.ID)
	if l := got.Targets[0].Look; l.State != approvals.LookDone || !l.Known || l.UserID != "u-alice" || l.Sessions != 2 || l.Devices != 1 {
		t.Errorf("alice's look %+v", l)
	}
	if l := got.Targets[1].Look; l.State != approvals.LookDone || l.Known {
		t.Errorf("typo's look %+v, want done and unknown", l)
	}
	if got.State() != approvals.StatePending {
		t.Errorf("state %s: a preview changes nothing else", got.State())
	}
}

// Sessions gone at once: the revoked record says verified, and the target
// is watched.
func TestRevokedAndVerified(t *testing.T) {
	t.Parallel()
	f, _ := newInspected(t)
	r := f.submit(t)
	f.waitEvent(t, approvals.EventObserved)
	if _, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Approve); err != nil {
		t.Fatal(err)
	}
	e := f.waitEvent(t, approvals.EventRevoked)
	if !strings.HasSuffix(e.Detail, "; verified: no active session left") {
		t.Errorf("revoked record %q does not say verified", e.Detail)
	}
	tg := f.get(t, r.ID).Targets[0]
	if tg.Check.State != approvals.CheckVerified || !tg.Watch.Watching(f.clock.Now()) {
		t.Errorf("target %+v: want verified and watched", tg)
	}
}

// Sessions still listed: the record says pending with the count; a later
// look finds them gone (verified); another request's stay past the timeout
// (unverified, the outcome still revoked).
func TestVerificationPendingThenSettled(t *testing.T) {
	t.Parallel()
	f, in := newInspected(t)
	f.svc.VerifyTimeout = 300 * time.Millisecond // the run waits this long at most
	in.set(func() { in.sessions["u-alice"] = 2 })
	ctx := context.Background()
	r := f.submit(t)
	f.waitEvent(t, approvals.EventObserved)
	if _, err := f.svc.Decide(ctx, r.ID, "U2", approvals.Approve); err != nil {
		t.Fatal(err)
	}
	if e := f.waitEvent(t, approvals.EventRevoked); !strings.Contains(e.Detail, "verification pending: 2 active sessions still listed") {
		t.Errorf("revoked record %q", e.Detail)
	}
	if err := f.svc.WatchOnce(ctx); err != nil { // still there, not yet timed out
		t.Fatal(err)
	}
	if f.count(approvals.EventVerified)+f.count(approvals.EventUnverified) != 0 {
		t.Fatalf("settled too early: %v", f.events.kinds())
	}
	in.set(func() { in.sessions["u-alice"] = 0 })
	if err := f.svc.WatchOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if f.get(t, r.ID).Targets[0].Check.State != approvals.CheckVerified || f.count(approvals.EventVerified) != 1 {
		t.Fatalf("after the sessions went: %+v, %v", f.get(t, r.ID).Targets[0].Check, f.events.kinds())
	}

	// Another whose sessions stay past the timeout.
	in.set(func() {
		in.users["bob@example.com"] = approvals.Preview{Known: true, UserID: "u-bob", Sessions: 1}
		in.sessions["u-bob"] = 1
	})
	r2 := f.submit(t, "bob@example.com")
	if _, err := f.svc.Decide(ctx, r2.ID, "U2", approvals.Approve); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute) // past the 300ms timeout
	if err := f.svc.WatchOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got := f.get(t, r2.ID)
	if got.State() != approvals.StateRevoked || got.Targets[0].Check.State != approvals.CheckUnverified || got.Targets[0].Check.Remaining != 1 {
		t.Fatalf("bob %s %+v: want revoked and unverified with 1 left", got.State(), got.Targets[0].Check)
	}
	if e := f.waitEvent(t, approvals.EventUnverified); !strings.Contains(e.Detail, "1 active session still listed") {
		t.Errorf("unverified record %q", e.Detail)
	}
	if err := f.svc.WatchOnce(ctx); err != nil || f.count(approvals.EventUnverified) != 1 {
		t.Errorf("a second pass: %v, %d unverified records", err, f.count(approvals.EventUnverified))
	}
}

// A token that cannot read users: the features say unavailable, and the
// revocation still works.
func TestInspectorUnavailable(t *testing.T) {
	t.Parallel()
	f, in := newInspected(t)
	in.set(func() { in.unavailable = "the token cannot read Access users" })
	r := f.submit(t)
	f.waitEvent(t, approvals.EventObserved)
	if l := f.get(t, r.ID).Targets[0].Look; l.State != approvals.LookUnavailable || l.Why != "the token cannot read Access users" {
		t.Errorf("look %+v", l)
	}
	got, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Approve)
	if err != nil || got.State() != approvals.StateRevoked {
		t.Fatalf("Decide: %s, %v", got.State(), err)
	}
	if c := got.Targets[0].Check; c.State != approvals.CheckUnavailable {
		t.Errorf("check %+v", c)
	}
	if e := f.waitEvent(t, approvals.EventRevoked); !strings.Contains(e.Detail, "verification unavailable: the token cannot read Access users") {
		t.Errorf("revoked record %q", e.Detail)
	}
	// The watch cannot read logins either: it ends, saying why, with no record.
	f.clock.Advance(6 * time.Minute)
	if err := f.svc.WatchOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := f.get(t, r.ID).Targets[0].Watch; w.Watching(f.clock.Now()) || !strings.Contains(w.Why, "cannot read") {
		t.Errorf("watch %+v: want ended, saying why", w)
	}
}

// An unknown email is revoked (they may not have logged in yet) and not
// verified; it is still watched.
func TestUnknownTargetNotVerified(t *testing.T) {
	t.Parallel()
	f, _ := newInspected(t)
	r := f.submit(t, "typo@example.com")
	f.waitEvent(t, approvals.EventObserved)
	got, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Approve)
	if err != nil || got.State() != approvals.StateRevoked || got.Targets[0].Check.State != approvals.CheckSkipped {
		t.Fatalf("got %s %+v, %v", got.State(), got.Targets[0].Check, err)
	}
	if !got.Targets[0].Watch.Watching(f.clock.Now()) {
		t.Errorf("not watched")
	}
}

// A login after the revocation is recorded once, however many passes see
// it; one before it is not.
func TestReloginRecordedOnce(t *testing.T) {
	t.Parallel()
	f, in := newInspected(t)
	ctx := context.Background()
	r := f.submit(t)
	f.waitEvent(t, approvals.EventObserved)
	if _, err := f.svc.Decide(ctx, r.ID, "U2", approvals.Approve); err != nil {
		t.Fatal(err)
	}
	revokedAt := f.get(t, r.ID).Targets[0].FinishedAt
	in.set(func() {
		in.logins["alice@example.com"] = []approvals.Login{
			{At: revokedAt.Add(-time.Minute), App: "wiki.example.com", IP: "198.51.100.1"},
			{At: revokedAt.Add(time.Minute), App: "git.example.com", IP: "203.0.113.7"},
		}
	})
	for range 3 {
		f.clock.Advance(6 * time.Minute)
		if err := f.svc.WatchOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count(approvals.EventRelogin); n != 1 {
		t.Fatalf("%d relogin records, want 1", n)
	}
	e := f.waitEvent(t, approvals.EventRelogin)
	for _, want := range []string{"git.example.com", "203.0.113.7", "identity-provider account is still active"} {
		if !strings.Contains(e.Detail, want) {
			t.Errorf("relogin record %q lacks %q", e.Detail, want)
		}
	}
	if !e.HasNotice() {
		t.Errorf("a relogin is not told in the thread")
	}
}

// A login in the seconds between Cloudflare's answer and the record (while
// the sessions are verified) is a return: the watch counts from the
// revocation, not from its record.
func TestReloginDuringVerificationCounts(t *testing.T) {
	t.Parallel()
	f, in := newInspected(t)
	ctx := context.Background()
	r := f.submit(t)
	f.waitEvent(t, approvals.EventObserved)
	in.set(func() { in.sessions["u-alice"] = 1 })
	revokedAt := f.clock.Now()
	go func() {
		// The sessions take a while to go; meanwhile the clock moves on,
		// and alice logs in again.
		time.Sleep(300 * time.Millisecond)
		f.clock.Advance(5 * time.Second)
		in.set(func() {
			in.logins["alice@example.com"] = []approvals.Login{{At: revokedAt.Add(2 * time.Second), App: "git.example.com", IP: "203.0.113.7"}}
			in.sessions["u-alice"] = 0
		})
	}()
	if _, err := f.svc.Decide(ctx, r.ID, "U2", approvals.Approve); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.WatchOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.count(approvals.EventRelogin); n != 1 {
		t.Fatalf("%d relogins for a login 2s after the revocation, want 1", n)
	}
}

// A login near the end of the watch is read by a last look after it ends;
// one after the end is not a return of this watch.
func TestReloginNearTheWatchsEnd(t *testing.T) {
	t.Parallel()
	f, in := newInspected(t)
	f.svc.WatchFor = 30 * time.Minute
	ctx := context.Background()
	r := f.submit(t)
	f.waitEvent(t, approvals.EventObserved)
	if _, err := f.svc.Decide(ctx, r.ID, "U2", approvals.Approve); err != nil {
		t.Fatal(err)
	}
	revokedAt := f.get(t, r.ID).Targets[0].FinishedAt
	if err := f.svc.WatchOnce(ctx); err != nil { // the first look, at once
		t.Fatal(err)
	}
	f.clock.Advance(26 * time.Minute)
	if err := f.svc.WatchOnce(ctx); err != nil { // a look at +26m
		t.Fatal(err)
	}
	in.set(func() {
		in.logins["alice@example.com"] = []approvals.Login{
			{At: revokedAt.Add(28 * time.Minute), App: "late.example.com", IP: "203.0.113.9"},
			{At: revokedAt.Add(31 * time.Minute), App: "after.example.com", IP: "203.0.113.10"},
		}
	})
	f.clock.Advance(6 * time.Minute) // the watch has ended: its last look
	if err := f.svc.WatchOnce(ctx); err != nil {
		t.Fatal(err)
	}
	e := f.waitEvent(t, approvals.EventRelogin)
	if !strings.Contains(e.Detail, "late.example.com") {
		t.Errorf("relogin %q, want the login at +28m", e.Detail)
	}
	if w := f.get(t, r.ID).Targets[0].Watch; w.Open() {
		t.Errorf("watch %+v still open after its last look", w)
	}
}

// The log is read for the address as the platform keeps it: a person typed
// with capitals is still watched.
func TestWatchUsesThePlatformsAddress(t *testing.T) {
	t.Parallel()
	f, in := newInspected(t)
	in.set(func() {
		in.users["Alice@Example.com"] = approvals.Preview{Known: true, Email: "alice@example.com", UserID: "u-alice"}
	})
	ctx := context.Background()
	r := f.submit(t, "Alice@Example.com")
	f.waitEvent(t, approvals.EventObserved)
	if _, err := f.svc.Decide(ctx, r.ID, "U2", approvals.Approve); err != nil {
		t.Fatal(err)
	}
	revokedAt := f.get(t, r.ID).Targets[0].FinishedAt
	in.set(func() {
		in.logins["alice@example.com"] = []approvals.Login{{At: revokedAt.Add(time.Minute), App: "git.example.com", IP: "203.0.113.7"}}
	})
	if err := f.svc.WatchOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.count(approvals.EventRelogin); n != 1 {
		t.Fatalf("%d relogins, want 1", n)
	}
}

// blockingInspector's ActiveSessions waits until release is closed.
type blockingInspector struct {
	*fakeInspector
	release chan struct{}
}

func (b blockingInspector) ActiveSessions(ctx context.Context, id string) (int, error) {
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return b.fakeInspector.ActiveSessions(ctx, id)
}

// Verifying one target never delays the revocation of the next: all are
// revoked while the first one's sessions are still being looked at, and
// each outcome is then recorded, in the targets' order.
func TestVerificationDoesNotDelayTheNextRevocation(t *testing.T) {
	t.Parallel()
	f, in := newInspected(t)
	in.set(func() {
		for _, e := range []string{"bob@example.com", "carol@example.com"} {
			in.users[e] = approvals.Preview{Known: true, UserID: "u-" + e}
		}
	})
	blocked := blockingInspector{fakeInspector: in, release: make(chan struct{})}
	f.svc.Inspector = blocked
	r := f.submit(t, "alice@example.com", "bob@example.com", "carol@example.com")
	executing := f.markExecuting(t, r.ID)
	done := make(chan approvals.Request)
	go func() {
		got, _ := f.svc.Execute(context.Background(), executing, "")
		done <- got
	}()
	deadline := time.Now().Add(5 * time.Second)
	for f.revoker.calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := f.revoker.calls.Load(); n != 3 {
		t.Fatalf("%d of 3 revoked while the first one's sessions were looked at", n)
	}
	close(blocked.release)
	got := <-done
	var order []string
	for _, e := range f.events.all() {
		if e.Kind == approvals.EventRevoked {
			order = append(order, e.Target)
		}
	}
	if got.State() != approvals.StateRevoked || strings.Join(order, " ") != "alice@example.com bob@example.com carol@example.com" {
		t.Errorf("state %s, revoked records %v, want all three in order", got.State(), order)
	}
	for _, tg := range got.Targets {
		if tg.Check.State != approvals.CheckVerified {
			t.Errorf("%s: %+v", tg.Email, tg.Check)
		}
	}
}

// gatedInspector holds every Preview until open is closed, and counts the
// calls under way at once.
type gatedInspector struct {
	fakeInspector
	open          chan struct{}
	now, most, in atomic.Int32
}

func (g *gatedInspector) Preview(ctx context.Context, email string) (approvals.Preview, error) {
	n := g.now.Add(1)
	defer g.now.Add(-1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
	g.in.Add(1)
	<-g.open
	return g.fakeInspector.Preview(ctx, email)
}

// A burst of requests is previewed by a bounded number of goroutines, a
// bounded number of lookups at once, and every request is previewed in the
// end. (Not parallel: it counts the process's goroutines.)
func TestPreviewsOfABurstAreBounded(t *testing.T) {
	f, in := newInspected(t)
	g := &gatedInspector{open: make(chan struct{})}
	g.fakeInspector.users = in.users
	f.svc.Inspector = g
	f.svc.MaxPending = 100
	before := runtime.NumGoroutine()
	const requests = 40
	for i := range requests {
		f.submit(t, fmt.Sprintf("user%d@example.com", i), fmt.Sprintf("other%d@example.com", i), "alice@example.com")
	}
	deadline := time.Now().Add(5 * time.Second)
	const most = 4 * 3 // 4 workers, each at the 3 targets of a request
	for g.now.Load() < most && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // any more lookups would start now
	if n := g.most.Load(); n != most {
		t.Errorf("%d lookups at once, want %d: 4 workers, each at the 3 targets of a request", n, most)
	}
	if grew := runtime.NumGoroutine() - before; grew > 30 {
		t.Errorf("%d more goroutines while %d requests wait for previews, want a bounded number", grew, requests)
	}
	close(g.open)
	deadline = time.Now().Add(10 * time.Second)
	for f.count(approvals.EventObserved) < requests && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.count(approvals.EventObserved); n != requests {
		t.Fatalf("%d of %d requests previewed", n, requests)
	}
	if n := g.in.Load(); n != 3*requests {
		t.Errorf("%d lookups, want one per target (%d)", n, 3*requests)
	}
}
