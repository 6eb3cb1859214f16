package approvals_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// A revocation another run is doing (its lease held, by another replica) is
// left to it: Resume neither revokes nor records anything.
func TestResumeLeavesARevocationUnderWay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	f.markExecuting(t, r.ID)
	ctx := context.Background()
	if held, err := f.store.Lease(ctx, approvals.ExecutionLease(r.ID), "replica-b/1", time.Minute); err != nil || !held {
		t.Fatalf("Lease = %v, %v", held, err)
	}
	if err := f.svc.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, r.ID); got.State() != approvals.StateExecuting || f.revoker.calls.Load() != 0 {
		t.Fatalf("state %s after %d calls: the run holding the lease must be left to finish", got.State(), f.revoker.calls.Load())
	}
}

// A replica that died while revoking leaves a lease that ends by itself: the
// next sweep after that takes the revocation over and finishes it.
func TestResumeTakesOverWhenTheLeaseEnds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t, "alice@example.com", "bob@example.com")
	f.markExecuting(t, r.ID, 0) // alice done before the replica died
	ctx := context.Background()
	if held, err := f.store.Lease(ctx, approvals.ExecutionLease(r.ID), "replica-b/1", 100*time.Millisecond); err != nil || !held {
		t.Fatalf("Lease = %v, %v", held, err)
	}
	sweeps, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { f.svc.RunResumer(sweeps, 20*time.Millisecond) })
	deadline := time.Now().Add(5 * time.Second)
	for f.get(t, r.ID).State() == approvals.StateExecuting && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	wg.Wait()
	got := f.get(t, r.ID)
	if got.State() != approvals.StateRevoked {
		t.Fatalf("state %s: the sweep did not take the revocation over", got.State())
	}
	if revoked := f.revoker.revoked(); len(revoked) != 1 || revoked[0] != "bob@example.com" {
		t.Errorf("revoked %v, want bob only (alice was done)", revoked)
	}
	if held, _ := f.store.HeldLeases(ctx); len(held) != 0 {
		t.Errorf("leases held after the revocation: %+v", held)
	}
}

// Two sweeps and an approval's own run racing for one request: one run
// revokes each target, and each outcome is recorded once.
func TestConcurrentRunsRevokeOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.revoker.delay = 20 * time.Millisecond
	r := f.submit(t, "alice@example.com", "bob@example.com", "carol@example.com")
	executing := f.markExecuting(t, r.ID)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := f.svc.Execute(ctx, executing, ""); err != nil {
				t.Errorf("Execute: %v", err)
			}
		})
		wg.Go(func() {
			if err := f.svc.Resume(ctx); err != nil {
				t.Errorf("Resume: %v", err)
			}
		})
	}
	wg.Wait()
	if calls := f.revoker.calls.Load(); calls != 3 {
		t.Errorf("%d revocations for 3 targets, want 3 (%v)", calls, f.revoker.revoked())
	}
	outcomes := 0
	for _, e := range f.events.all() {
		if e.Kind == approvals.EventRevoked {
			outcomes++
		}
	}
	if outcomes != 3 {
		t.Errorf("%d revoked events, want 3", outcomes)
	}
}

// A run that loses its lease (it stalled past LeaseTTL and another run took
// over) stops before its next target, even if the other run has released
// the lease since: renewing never takes a lease back.
func TestRunThatLostItsLeaseDoesNotTakeItBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.revoker.delay = 100 * time.Millisecond
	r := f.submit(t, "alice@example.com", "bob@example.com")
	executing := f.markExecuting(t, r.ID)
	ctx := context.Background()
	go func() {
		for f.revoker.calls.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		// While alice is revoked, another run takes the lease over, finishes,
		// and releases it.
		for _, l := range must(f.store.HeldLeases(ctx)) {
			f.store.Release(ctx, l.Name, l.Owner)
			f.store.Lease(ctx, l.Name, "replica-b/1", time.Minute)
			f.store.Release(ctx, l.Name, "replica-b/1")
		}
	}()
	if _, err := f.svc.Execute(ctx, executing, ""); err == nil {
		t.Fatal("Execute went on after its lease was taken over and released")
	}
	if revoked := f.revoker.revoked(); len(revoked) != 1 {
		t.Errorf("revoked %v, want alice only", revoked)
	}
}

// A run that loses its lease (it stalled past LeaseTTL and another run took
// over) stops before its next target.
func TestRunThatLosesItsLeaseStops(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.LeaseTTL = 60 * time.Millisecond
	f.revoker.delay = 150 * time.Millisecond // longer than the lease: the renewal runs meanwhile
	r := f.submit(t, "alice@example.com", "bob@example.com")
	executing := f.markExecuting(t, r.ID)
	ctx := context.Background()
	// Another replica takes the lease over while alice is being revoked.
	go func() {
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if f.revoker.calls.Load() == 0 {
				time.Sleep(time.Millisecond)
				continue // alice's call is not under way yet
			}
			for _, l := range must(f.store.HeldLeases(ctx)) {
				if l.Name == approvals.ExecutionLease(r.ID) {
					f.store.Release(ctx, l.Name, l.Owner)
					f.store.Lease(ctx, l.Name, "replica-b/1", time.Minute)
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	_, err := f.svc.Execute(ctx, executing, "")
	if err == nil {
		t.Fatal("Execute went on after its lease was taken over")
	}
	if revoked := f.revoker.revoked(); len(revoked) != 1 {
		t.Errorf("revoked %v, want alice only: the run stops before bob", revoked)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Every replica sweeps for expiry and escalation; each request is escalated
// once and expires once, however many sweep at the same moment.
func TestSweepsOfSeveralReplicasChangeEachRequestOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.EscalateAfter = 5 * time.Minute
	var ids []string
	for i := range 4 {
		ids = append(ids, f.submit(t, fmt.Sprintf("user%d@example.com", i)).ID)
	}
	replicas := make([]*approvals.Service, 4)
	for i := range replicas {
		replicas[i] = &approvals.Service{Store: f.svc.Store, Revoker: f.svc.Revoker, Notifier: f.svc.Notifier,
			Directory: f.svc.Directory, Policy: f.svc.Policy, TTL: f.svc.TTL, EscalateAfter: f.svc.EscalateAfter,
			Now: f.svc.Now, Logger: f.svc.Logger, Replica: fmt.Sprintf("replica-%d", i)}
	}
	sweep := func() {
		var wg sync.WaitGroup
		for _, s := range replicas {
			wg.Go(func() {
				if _, err := s.ExpireDue(context.Background()); err != nil {
					t.Errorf("ExpireDue: %v", err)
				}
			})
		}
		wg.Wait()
	}
	f.clock.Advance(6 * time.Minute) // due for escalation
	sweep()
	f.clock.Advance(10 * time.Minute) // and for expiry (TTL 10m)
	sweep()
	count := map[approvals.EventKind]int{}
	for _, e := range f.events.all() {
		count[e.Kind]++
	}
	if count[approvals.EventEscalated] != len(ids) || count[approvals.EventExpired] != len(ids) {
		t.Errorf("events %v, want one escalated and one expired per request (%d)", count, len(ids))
	}
	for _, id := range ids {
		if got := f.get(t, id); got.State() != approvals.StateExpired {
			t.Errorf("request %s is %s", id, got.State())
		}
	}
}

// leaseless is a store that cannot take leases (its database went away
// right after the approval was recorded).
type leaseless struct{ approvals.Store }

func (leaseless) Lease(context.Context, string, string, time.Duration) (bool, error) {
	return false, fmt.Errorf("lease: %w", approvals.ErrUnavailable)
}

// An approval recorded, then a failure before the revocation could start:
// the approver is not told that nothing was done (the decision stands),
// and the next sweep revokes.
func TestApprovalStandsWhenTheRevocationCannotStart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.submit(t)
	f.svc.Store = leaseless{f.store}
	got, err := f.svc.Decide(context.Background(), r.ID, "U2", approvals.Approve)
	if err != nil {
		t.Fatalf("Decide: %v: the approval was recorded, and must not be reported as failed", err)
	}
	if got.State() != approvals.StateExecuting || f.revoker.calls.Load() != 0 {
		t.Fatalf("state %s after %d calls", got.State(), f.revoker.calls.Load())
	}
	f.svc.Store = f.store // the database is back
	if err := f.svc.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, r.ID); got.State() != approvals.StateRevoked || f.revoker.calls.Load() != 1 {
		t.Fatalf("after the sweep: state %s after %d calls", got.State(), f.revoker.calls.Load())
	}
}

// A long revocation does not hold up the sweeps: a request left by a dead
// replica is taken over while another, long one is still being revoked.
func TestResumerSweepsWhileARevocationRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	slow := f.submit(t, "slow@example.com")
	f.markExecuting(t, slow.ID)
	block := make(chan struct{})
	f.svc.Revoker = revokerFunc(func(ctx context.Context, r approvals.Revocation) (string, error) {
		if r.Email == "slow@example.com" {
			<-block
		}
		return "revoked " + r.Email, nil
	})
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { f.svc.RunResumer(ctx, 20*time.Millisecond) })
	defer func() { close(block); stop(); wg.Wait() }()

	orphan := f.submit(t, "orphan@example.com")
	f.markExecuting(t, orphan.ID) // left by a replica that died, after the first sweep
	deadline := time.Now().Add(5 * time.Second)
	for f.get(t, orphan.ID).State() != approvals.StateRevoked && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := f.get(t, orphan.ID).State(); got != approvals.StateRevoked {
		t.Fatalf("the orphan is %s while the slow revocation runs: the sweeps are held up", got)
	}
	if got := f.get(t, slow.ID).State(); got != approvals.StateExecuting {
		t.Fatalf("the slow one is %s", got)
	}
}

type revokerFunc func(context.Context, approvals.Revocation) (string, error)

func (f revokerFunc) Revoke(ctx context.Context, r approvals.Revocation) (string, error) {
	return f(ctx, r)
}

// One sweep resumes every request it finds, a few at a time, however many
// more there are than slots: the next sweep is not needed for the rest.
func TestOneSweepResumesMoreRequestsThanSlots(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.MaxPending = 100
	f.revoker.delay = 5 * time.Millisecond
	var ids []string
	for i := range 30 {
		r := f.submit(t, fmt.Sprintf("user%d@example.com", i))
		f.markExecuting(t, r.ID)
		ids = append(ids, r.ID)
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { f.svc.RunResumer(ctx, time.Hour) }) // one sweep only, in this test's time
	defer func() { stop(); wg.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for f.revoker.calls.Load() < int32(len(ids)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.revoker.calls.Load(); n != int32(len(ids)) {
		t.Fatalf("the first sweep revoked %d of %d", n, len(ids))
	}
}

// The audit trail's own records (self-checks) belong to a request of no
// one's: made with the first, reused after; /revoke status never shows it.
func TestSelfCheckRecords(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if err := f.svc.RecordSelfCheck(ctx, true, "3 records against 3 messages: everything matches"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RecordSelfCheck(ctx, false, "1 problem; MISSING record 2"); err != nil {
		t.Fatal(err)
	}
	kinds := f.events.kinds()
	if len(kinds) != 2 || kinds[0] != approvals.EventChecked || kinds[1] != approvals.EventTampered {
		t.Fatalf("events %v, want checked then tampered", kinds)
	}
	for _, e := range f.events.all() {
		if e.HasNotice() || e.ShowsOnMessage() || !e.Audited() {
			t.Errorf("%s: notice %v, message %v, audited %v; want only an audit record", e.Kind, e.HasNotice(), e.ShowsOnMessage(), e.Audited())
		}
	}
	if _, err := f.svc.Status(ctx, "U1", "00000000"); approvals.ErrorWhy(err) != approvals.WhyNoRequest {
		t.Errorf("status of the audit's own request: %v, want no such request", err)
	}
	if links, err := f.store.Chain(ctx, 0, -1); err != nil || len(links) != 2 {
		t.Errorf("chain: %d links, %v", len(links), err)
	}
}
