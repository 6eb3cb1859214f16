package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/revokebot/revokebot/approvals"
)

// These tests reach into the writer: they hold it between two batches, so
// that the operations queued meanwhile are certain to be committed as one
// batch, and read its counters.

var bg = context.Background()

// openTest opens a fresh database, closed when t ends.
func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "revokebot.db")
	d, err := Open(bg, path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path
}

// pending returns a new pending request of requester for email.
func pending(requester, email string) approvals.Request {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return approvals.Request{ID: uuid.NewString(), Requester: requester, Required: 1, Channel: "CAPPROVE",
		Targets:   []approvals.Target{{Email: email, State: approvals.TargetWaiting}},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// create stores r with its requested event under the pending cap.
func create(d *DB, r approvals.Request, maxPending int) error {
	return d.Create(bg, r, approvals.Event{Kind: approvals.EventRequested, Request: r, Actor: r.Requester, At: r.CreatedAt}, maxPending)
}

// approveBy returns an UpdateFunc adding who's approval, with an event
// keyed key (none if empty).
func approveBy(who, key string) approvals.UpdateFunc {
	return func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
		at := time.Now().UTC().Truncate(time.Millisecond)
		cur.Reviews = append(cur.Reviews, approvals.Review{By: who, Decision: approvals.Approve, At: at})
		return cur, []approvals.Event{{Kind: approvals.EventApproved, Actor: who, At: at, Key: key}}, nil
	}
}

// holdWriter keeps d's writer busy between two batches until the returned
// function is called, so that what is queued meanwhile is one batch.
func holdWriter(t *testing.T, d *DB) (release func()) {
	t.Helper()
	held, resume := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- d.w.doAlone(bg, func(*sql.Conn) error {
			close(held)
			<-resume
			return nil
		})
	}()
	<-held
	return func() {
		close(resume)
		if err := <-done; err != nil {
			t.Errorf("holding the writer: %v", err)
		}
	}
}

// waitQueued waits until n operations are queued for d's writer.
func waitQueued(t *testing.T, d *DB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.w.mu.Lock()
		queued := len(d.w.queue)
		d.w.mu.Unlock()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d operations queued, want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// inOneBatch runs each of fns in a goroutine of its own, all queued while
// the writer is held, so that they are committed as one batch (checked),
// and returns their errors.
func inOneBatch(t *testing.T, d *DB, fns ...func() error) []error {
	t.Helper()
	release := holdWriter(t, d)
	before := d.w.batches.Load() + d.failedBatches()
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
		// One at a time, so that they are queued in order.
		waitQueued(t, d, i+1)
	}
	release()
	wg.Wait()
	if got := d.w.batches.Load() + d.failedBatches() - before; got != 1 {
		t.Fatalf("%d operations made %d batches, want 1", len(fns), got)
	}
	return errs
}

// joinLate runs an operation of its own that waits, once its batch has
// started, until each of fns, in a goroutine of its own, is queued: they
// join that running batch, committed as one (checked). It returns their
// errors, and that of the first operation, which writes a lease named
// "first".
func joinLate(t *testing.T, d *DB, fns ...func() error) (errs []error, first error) {
	t.Helper()
	before, ops := d.w.batches.Load()+d.failedBatches(), d.w.ops.Load()
	resume := startBatch(t, d)
	wait := queue(t, d, fns...)
	first = resume()
	errs = wait()
	if got := d.w.batches.Load() + d.failedBatches() - before; got != 1 {
		t.Fatalf("%d operations queued while a batch ran made %d batches with it, want 1", len(fns), got)
	}
	if first == nil {
		if got, want := d.w.ops.Load()-ops, int64(len(fns)+1); got != want {
			t.Errorf("the batch ran %d operations, want %d", got, want)
		}
	}
	return errs, first
}

// startBatch starts a batch whose first operation waits until the returned
// function is called; it returns once that operation runs. resume returns
// the operation's error once its batch ends. The operation writes a lease
// named "first".
func startBatch(t *testing.T, d *DB) (resume func() error) {
	t.Helper()
	running, resumed := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- d.write(bg, func(ctx context.Context, tx *wtx) error {
			close(running)
			<-resumed
			_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO leases (name, owner, until) VALUES ('first', 'me', 1)`)
			return err
		})
	}()
	<-running
	return func() error {
		close(resumed)
		return <-done
	}
}

// queue runs each of fns in a goroutine of its own, queued in order after
// what is queued already (nothing), and returns a function that waits for
// them and returns their errors.
func queue(t *testing.T, d *DB, fns ...func() error) (wait func() []error) {
	t.Helper()
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn() })
		// One at a time, so that they are queued in order.
		waitQueued(t, d, i+1)
	}
	return func() []error {
		wg.Wait()
		return errs
	}
}

// failedBatches counts the batches rolled back (see failingCommit).
func (d *DB) failedBatches() int64 { return d.w.failed.Load() }

// checkChain fails t unless every event of d is chained as recorded.
func checkChain(t *testing.T, d *DB) []approvals.Link {
	t.Helper()
	links, err := d.Chain(bg, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := approvals.VerifyChain("", links); err != nil {
		t.Errorf("the chain: %v", err)
	}
	return links
}

// TestBatchGroupsWrites: writes queued together are committed with one
// COMMIT, and under concurrency there are fewer commits than writes.
func TestBatchGroupsWrites(t *testing.T) {
	t.Parallel()
	d, _ := openTest(t)
	fns := make([]func() error, 10)
	for i := range fns {
		fns[i] = func() error { return create(d, pending("UREQ", fmt.Sprintf("u%d@example.com", i)), 0) }
	}
	for i, err := range inOneBatch(t, d, fns...) {
		if err != nil {
			t.Errorf("Create %d: %v", i, err)
		}
	}

	batches, ops := d.w.batches.Load(), d.w.ops.Load()
	const writers, each = 32, 10
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if err := create(d, pending(fmt.Sprintf("U%d", g), fmt.Sprintf("u%d@example.com", i)), 0); err != nil {
					t.Errorf("Create: %v", err)
				}
			}
		})
	}
	wg.Wait()
	batches, ops = d.w.batches.Load()-batches, d.w.ops.Load()-ops
	t.Logf("%d writes from %d goroutines in %d commits", ops, writers, batches)
	if ops != writers*each || batches >= ops {
		t.Errorf("%d writes in %d commits: want %d writes, and fewer commits", ops, batches, writers*each)
	}
}

// TestBatchLateJoin: operations queued while a batch runs join it, and are
// committed with its COMMIT; a solo operation queued among them waits for
// that COMMIT, and those queued after it for the next batch.
func TestBatchLateJoin(t *testing.T) {
	t.Parallel()
	d, _ := openTest(t)
	rs := make([]approvals.Request, 5)
	fns := make([]func() error, len(rs))
	for i := range rs {
		rs[i] = pending("UREQ", fmt.Sprintf("u%d@example.com", i))
		fns[i] = func() error { return create(d, rs[i], 0) }
	}
	errs, first := joinLate(t, d, fns...)
	if first != nil {
		t.Errorf("the first operation: %v", first)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("Create %d, queued while the batch ran: %v", i, err)
		}
	}
	for _, r := range rs {
		if _, err := d.Get(bg, r.ID); err != nil {
			t.Errorf("a write that joined the batch: %v", err)
		}
	}
	checkChain(t, d)

	// a, b join; the solo operation and c do not.
	a, b, c := pending("UREQ", "a@example.com"), pending("UREQ", "b@example.com"), pending("UREQ", "c@example.com")
	var seen []string
	batches := d.w.batches.Load()
	resume := startBatch(t, d)
	wait := queue(t, d,
		func() error { return create(d, a, 0) },
		func() error { return create(d, b, 0) },
		func() error {
			return d.w.doAlone(bg, func(conn *sql.Conn) error {
				rows, err := conn.QueryContext(bg, `SELECT id FROM requests WHERE id IN (?, ?, ?) ORDER BY email`, a.ID, b.ID, c.ID)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var id string
					if err := rows.Scan(&id); err != nil {
						return err
					}
					seen = append(seen, id)
				}
				return rows.Err()
			})
		},
		func() error { return create(d, c, 0) },
	)
	if err := resume(); err != nil {
		t.Errorf("the first operation: %v", err)
	}
	for i, err := range wait() {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if want := []string{a.ID, b.ID}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("the solo operation saw %v, want %v (the writes queued before it, not after)", seen, want)
	}
	if got := d.w.batches.Load() - batches; got != 2 {
		t.Errorf("%d batches, want 2: the running one, which a and b joined, then c's", got)
	}
	checkChain(t, d)
}

// TestBatchLateJoinFailedCommit: when the COMMIT of a batch fails, the
// operations that joined it fail too, and none of their writes stands.
func TestBatchLateJoinFailedCommit(t *testing.T) {
	t.Parallel()
	d, _ := openTest(t)
	kept := pending("UREQ", "kept@example.com")
	if err := create(d, kept, 0); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	d.failingCommit(boom)
	a, b := pending("UREQ", "a@example.com"), pending("UREQ", "b@example.com")
	errs, first := joinLate(t, d,
		func() error { return create(d, a, 0) },
		func() error { _, err := d.Update(bg, kept.ID, approveBy("UAPP", "click-1")); return err },
		func() error { return create(d, b, 0) },
	)
	if !errors.Is(first, boom) {
		t.Errorf("the first operation: %v, want the failed COMMIT's error", first)
	}
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Errorf("write %d, which joined the batch: %v, want the failed COMMIT's error", i, err)
		}
	}
	d.failingCommit(nil)
	for _, r := range []approvals.Request{a, b} {
		if _, err := d.Get(bg, r.ID); !errors.Is(err, approvals.ErrNotFound) {
			t.Errorf("a Create that joined the failed batch: %v, want ErrNotFound", err)
		}
	}
	if got, _ := d.Get(bg, kept.ID); got.Version != 1 {
		t.Errorf("the update that joined the failed batch stands: version %d", got.Version)
	}
	var n int
	if err := d.read.QueryRowContext(bg, `SELECT COUNT(*) FROM leases`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the first operation's write stands: %d leases, %v", n, err)
	}
	// The key of the click that failed is free: the click can be retried.
	if _, err := d.Update(bg, kept.ID, approveBy("UAPP", "click-1")); err != nil {
		t.Fatalf("Update after the failure: %v", err)
	}
	if links := checkChain(t, d); len(links) != 2 {
		t.Errorf("%d events, want the requested and the approved", len(links))
	}
}

// TestBatchFailedOperationVanishes: an operation that fails halfway through
// its writes leaves none of them, and the others of its batch stand, in
// order, chained; whether they were queued together, or joined a batch
// already running.
func TestBatchFailedOperationVanishes(t *testing.T) {
	t.Parallel()
	t.Run("QueuedTogether", func(t *testing.T) {
		t.Parallel()
		d, _ := openTest(t)
		testFailedOperationVanishes(t, d, func(fns ...func() error) []error { return inOneBatch(t, d, fns...) })
	})
	t.Run("JoiningLate", func(t *testing.T) {
		t.Parallel()
		d, _ := openTest(t)
		testFailedOperationVanishes(t, d, func(fns ...func() error) []error {
			errs, first := joinLate(t, d, fns...)
			if first != nil {
				t.Errorf("the operation they joined: %v", first)
			}
			return errs
		})
	})
}

// testFailedOperationVanishes is TestBatchFailedOperationVanishes with
// batch, which runs writes as one batch.
func testFailedOperationVanishes(t *testing.T, d *DB, batch func(fns ...func() error) []error) {
	r := pending("UREQ", "alice@example.com")
	if err := create(d, r, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Append(bg, approvals.Event{Kind: approvals.EventRefused, Request: r, Actor: "UX", At: r.CreatedAt, Key: "click-1"}); err != nil {
		t.Fatal(err)
	}
	first, second := pending("UREQ", "bob@example.com"), pending("UREQ", "carol@example.com")
	broken := pending("UREQ", "dave@example.com")
	broken.Targets = append(broken.Targets, approvals.Target{Email: "erin@example.com", State: "bogus"})
	errs := batch(
		func() error { return create(d, first, 0) },
		// Writes the request row, its review, then fails on the event's key.
		func() error { _, err := d.Update(bg, r.ID, approveBy("UAPP", "click-1")); return err },
		// Writes the request row and its first target, then fails.
		func() error { return create(d, broken, 0) },
		func() error { return create(d, second, 0) },
	)
	if errs[0] != nil || errs[3] != nil {
		t.Fatalf("the writes beside the failures: %v, %v", errs[0], errs[3])
	}
	if !errors.Is(errs[1], approvals.ErrDuplicate) {
		t.Errorf("Update with a recorded key: %v, want ErrDuplicate", errs[1])
	}
	if errs[2] == nil || !strings.Contains(errs[2].Error(), "unknown state") {
		t.Errorf("Create with a bad target: %v, want its error", errs[2])
	}
	if got, err := d.Get(bg, r.ID); err != nil || got.Version != 1 || len(got.Reviews) != 0 {
		t.Errorf("the request of the failed update: version %d, %d reviews, %v; want it unchanged", got.Version, len(got.Reviews), err)
	}
	if _, err := d.Get(bg, broken.ID); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("the failed Create's request: %v, want ErrNotFound", err)
	}
	var targets int
	if err := d.read.QueryRowContext(bg, `SELECT COUNT(*) FROM targets WHERE request_id = ?`, broken.ID).Scan(&targets); err != nil || targets != 0 {
		t.Errorf("the failed Create left %d targets, %v", targets, err)
	}
	for _, id := range []string{first.ID, second.ID} {
		if _, err := d.Get(bg, id); err != nil {
			t.Errorf("a write beside the failures: %v", err)
		}
	}
	links := checkChain(t, d)
	var got []string
	for _, l := range links {
		got = append(got, l.Event.Request.ID)
	}
	if want := []string{r.ID, r.ID, first.ID, second.ID}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the log holds events of %v, want %v", got, want)
	}
}

// TestBatchPendingCap: creates queued in one batch see each other: exactly
// the cap's number of them is stored.
func TestBatchPendingCap(t *testing.T) {
	t.Parallel()
	d, _ := openTest(t)
	const n, limit = 12, 3
	fns := make([]func() error, n)
	for i := range fns {
		fns[i] = func() error { return create(d, pending("UREQ", fmt.Sprintf("u%d@example.com", i)), limit) }
	}
	stored := 0
	for _, err := range inOneBatch(t, d, fns...) {
		switch {
		case err == nil:
			stored++
		case !errors.Is(err, approvals.ErrLimit):
			t.Errorf("Create: %v, want nil or ErrLimit", err)
		}
	}
	if n, err := d.CountByRequester(bg, "UREQ", approvals.StatePending); stored != limit || n != limit || err != nil {
		t.Errorf("%d creates succeeded, %d stored (%v); want %d", stored, n, err, limit)
	}
	checkChain(t, d)
}

// TestBatchUpdatesOfOneRequest: updates of one request queued in one batch
// from one version all land: the writer reads the request again for those
// it finds changed, instead of failing them as stale.
func TestBatchUpdatesOfOneRequest(t *testing.T) {
	t.Parallel()
	d, _ := openTest(t)
	r := pending("UREQ", "alice@example.com")
	r.Required = 5 // stays pending: every review is legal
	if err := create(d, r, 0); err != nil {
		t.Fatal(err)
	}
	const n = 4
	fns := make([]func() error, n)
	for i := range fns {
		fns[i] = func() error { _, err := d.Update(bg, r.ID, approveBy(fmt.Sprintf("UAPP%d", i), "")); return err }
	}
	for i, err := range inOneBatch(t, d, fns...) {
		if err != nil {
			t.Errorf("Update %d: %v", i, err)
		}
	}
	got, err := d.Get(bg, r.ID)
	if err != nil || got.Version != n+1 || len(got.Reviews) != n {
		t.Errorf("version %d with %d reviews (%v), want %d with %d", got.Version, len(got.Reviews), err, n+1, n)
	}
	checkChain(t, d)
}

// TestBatchCancelledCaller: a caller whose context ends before its write
// starts gets the context's error and writes nothing; the others of its
// batch stand. One whose context ends while its write runs does not stop
// it: the writer's statements do not run under callers' contexts.
func TestBatchCancelledCaller(t *testing.T) {
	t.Parallel()
	d, _ := openTest(t)
	gone, cancelGone := context.WithCancel(bg)
	during, cancelDuring := context.WithCancel(bg)
	defer cancelDuring()
	a, b, c := pending("UREQ", "a@example.com"), pending("UREQ", "b@example.com"), pending("UREQ", "c@example.com")
	errs := inOneBatch(t, d,
		func() error { return create(d, a, 0) },
		func() error {
			return d.Create(gone, b, approvals.Event{Kind: approvals.EventRequested, Request: b, At: b.CreatedAt}, 0)
		},
		func() error {
			cancelGone() // before the batch starts: b's write is not started
			return d.write(during, func(ctx context.Context, tx *wtx) error {
				cancelDuring()
				_, err := tx.ExecContext(ctx, `INSERT INTO leases (name, owner, until) VALUES ('during', 'me', 1)`)
				return err
			})
		},
		func() error { return create(d, c, 0) },
	)
	if !errors.Is(errs[1], context.Canceled) {
		t.Errorf("the cancelled caller's Create: %v, want context.Canceled", errs[1])
	}
	if _, err := d.Get(bg, b.ID); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("the cancelled Create's request: %v, want ErrNotFound", err)
	}
	for i, err := range []error{errs[0], errs[2], errs[3]} {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	for _, id := range []string{a.ID, c.ID} {
		if _, err := d.Get(bg, id); err != nil {
			t.Errorf("a write beside the cancelled one: %v", err)
		}
	}
	if held, err := d.HeldLeases(bg); err != nil || len(held) != 0 {
		// The lease ended in 1970: not held, but written.
		t.Errorf("leases held: %v, %v", held, err)
	}
	var n int
	if err := d.read.QueryRowContext(bg, `SELECT COUNT(*) FROM leases WHERE name = 'during'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the write whose caller went during it: %d rows, %v; want it written", n, err)
	}
	checkChain(t, d)
}

// TestBatchFailedCommit: when the COMMIT fails, every caller of the batch
// gets the error and none of their writes stands; the writer goes on.
func TestBatchFailedCommit(t *testing.T) {
	t.Parallel()
	d, _ := openTest(t)
	kept := pending("UREQ", "kept@example.com")
	if err := create(d, kept, 0); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	d.failingCommit(boom)
	rs := []approvals.Request{pending("UREQ", "a@example.com"), pending("UREQ", "b@example.com"), pending("UREQ", "c@example.com")}
	fns := []func() error{
		func() error { _, err := d.Update(bg, kept.ID, approveBy("UAPP", "")); return err },
		func() error { _, err := d.Lease(bg, "courier", "me", time.Minute); return err },
	}
	for _, r := range rs {
		fns = append(fns, func() error { return create(d, r, 0) })
	}
	for i, err := range inOneBatch(t, d, fns...) {
		if !errors.Is(err, boom) {
			t.Errorf("write %d: %v, want the failed COMMIT's error", i, err)
		}
	}
	for _, r := range rs {
		if _, err := d.Get(bg, r.ID); !errors.Is(err, approvals.ErrNotFound) {
			t.Errorf("a Create of the failed batch: %v, want ErrNotFound", err)
		}
	}
	if got, _ := d.Get(bg, kept.ID); got.Version != 1 {
		t.Errorf("the update of the failed batch stands: version %d", got.Version)
	}
	if held, _ := d.HeldLeases(bg); len(held) != 0 {
		t.Errorf("the lease of the failed batch stands: %v", held)
	}
	// The next batch commits.
	d.failingCommit(nil)
	if _, err := d.Update(bg, kept.ID, approveBy("UAPP", "")); err != nil {
		t.Fatalf("Update after the failure: %v", err)
	}
	if links := checkChain(t, d); len(links) != 2 {
		t.Errorf("%d events, want the requested and the approved", len(links))
	}

	// A batch whose ROLLBACK fails too (here, the transaction is gone
	// already): the writer drops the connection and opens another.
	var first, second *sql.Conn
	d.w.doAlone(bg, func(conn *sql.Conn) error {
		first = conn
		d.w.failCommit = func() error {
			if _, err := conn.ExecContext(bg, "ROLLBACK"); err != nil {
				return err
			}
			return boom
		}
		return nil
	})
	lost := pending("UREQ", "lost@example.com")
	if err := create(d, lost, 0); !errors.Is(err, boom) {
		t.Errorf("Create in a batch whose rollback fails: %v, want the failed COMMIT's error", err)
	}
	d.failingCommit(nil)
	d.w.doAlone(bg, func(conn *sql.Conn) error { second = conn; return nil })
	if first == second {
		t.Error("the writer kept the connection whose rollback failed")
	}
	if err := create(d, pending("UREQ", "next@example.com"), 0); err != nil {
		t.Fatalf("Create on a new connection: %v", err)
	}
	if _, err := d.Get(bg, lost.ID); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("the Create whose batch failed: %v, want ErrNotFound", err)
	}
	if links := checkChain(t, d); len(links) != 3 {
		t.Errorf("%d events, want 3", len(links))
	}
}

// failingCommit makes every COMMIT of d's writer fail with err from now on
// (nil: succeed again).
func (d *DB) failingCommit(err error) {
	// Run by the writer itself, which alone reads the hook.
	d.w.doAlone(bg, func(*sql.Conn) error {
		d.w.failCommit = nil
		if err != nil {
			d.w.failCommit = func() error { return err }
		}
		return nil
	})
}

// TestBatchPanic: a write that panics panics in its caller, leaves nothing,
// and the writer goes on with the others.
func TestBatchPanic(t *testing.T) {
	t.Parallel()
	d, _ := openTest(t)
	other := pending("UREQ", "b@example.com")
	errs := inOneBatch(t, d,
		func() (err error) {
			defer func() {
				if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "boom") {
					err = fmt.Errorf("recovered %v, want the write's panic", p)
				}
			}()
			return d.write(bg, func(ctx context.Context, tx *wtx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO leases (name, owner, until) VALUES ('panicked', 'me', 1)`); err != nil {
					return err
				}
				panic("boom")
			})
		},
		func() error { return create(d, other, 0) },
	)
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	var n int
	if err := d.read.QueryRowContext(bg, `SELECT COUNT(*) FROM leases`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the panicked write left %d rows, %v", n, err)
	}
	if _, err := d.Get(bg, other.ID); err != nil {
		t.Errorf("the write beside the panic: %v", err)
	}
}

// TestCloseDrainsWrites: Close waits for the writes queued, which commit;
// writes after it fail.
func TestCloseDrainsWrites(t *testing.T) {
	t.Parallel()
	d, path := openTest(t)
	release := holdWriter(t, d)
	rs := make([]approvals.Request, 5)
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i := range rs {
		rs[i] = pending("UREQ", fmt.Sprintf("u%d@example.com", i))
		wg.Go(func() { errs[i] = create(d, rs[i], 0) })
	}
	waitQueued(t, d, len(rs))
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	for !d.w.isClosed() {
		time.Sleep(time.Millisecond)
	}
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Create %d queued before Close: %v", i, err)
		}
	}
	if err := create(d, pending("UREQ", "late@example.com"), 0); !errors.Is(err, errClosed) {
		t.Errorf("Create after Close: %v, want errClosed", err)
	}
	again, err := Open(bg, path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	for _, r := range rs {
		if _, err := again.Get(bg, r.ID); err != nil {
			t.Errorf("after reopening: %v", err)
		}
	}
}

// TestStatementsPrepared: the writer and the reads prepare each SQL text
// once, and reuse it.
func TestStatementsPrepared(t *testing.T) {
	t.Parallel()
	d, _ := openTest(t)
	r := pending("UREQ", "alice@example.com")
	r.Required = 10 // stays pending: every review is legal
	if err := create(d, r, 0); err != nil {
		t.Fatal(err)
	}
	count := func() (w, rd int) {
		d.w.doAlone(bg, func(*sql.Conn) error { w = len(d.w.stmts); return nil })
		d.read.mu.RLock()
		defer d.read.mu.RUnlock()
		return w, len(d.read.stmts)
	}
	// Once each operation has run, no statement is prepared again.
	round := func(i int) {
		if err := create(d, pending("UREQ", fmt.Sprintf("u%d@example.com", i)), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Update(bg, r.ID, approveBy(fmt.Sprintf("UAPP%d", i), "")); err != nil {
			t.Fatal(err)
		}
	}
	round(0)
	w1, r1 := count()
	if w1 == 0 || r1 == 0 {
		t.Fatalf("%d statements prepared for writing, %d for reading", w1, r1)
	}
	for i := range 5 {
		round(i + 1)
	}
	if w2, r2 := count(); w2 != w1 || r2 != r1 {
		t.Errorf("prepared: %d then %d for writing, %d then %d for reading; want no more", w1, w2, r1, r2)
	}
}

// TestChainTip: where the event log ends is read once in a transaction and
// then known from the events it records (chainTip), and forgotten whenever
// those may be undone or another process may have written: each case
// leaves a chain that holds.
func TestChainTip(t *testing.T) {
	t.Parallel()
	t.Run("OperationRolledBack", func(t *testing.T) {
		t.Parallel()
		d, _ := openTest(t)
		r := pending("UREQ", "alice@example.com")
		r.Required = 5
		if err := create(d, r, 0); err != nil {
			t.Fatal(err)
		}
		if err := d.Append(bg, approvals.Event{Kind: approvals.EventRefused, Request: r, Actor: "UX", At: r.CreatedAt, Key: "click-1"}); err != nil {
			t.Fatal(err)
		}
		a, b := pending("UREQ", "a@example.com"), pending("UREQ", "b@example.com")
		errs := inOneBatch(t, d,
			func() error { return create(d, a, 0) },
			// Records an event, then fails on the second's key: the
			// first event is rolled back, and the tip it set forgotten.
			func() error {
				_, err := d.Update(bg, r.ID, func(cur approvals.Request) (approvals.Request, []approvals.Event, error) {
					cur.Reviews = append(cur.Reviews, approvals.Review{By: "UAPP", Decision: approvals.Approve, At: r.CreatedAt})
					return cur, []approvals.Event{
						{Kind: approvals.EventApproved, Actor: "UAPP", At: r.CreatedAt},
						{Kind: approvals.EventApproved, Actor: "UAPP", At: r.CreatedAt, Key: "click-1"},
					}, nil
				})
				return err
			},
			func() error { return create(d, b, 0) },
		)
		if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], approvals.ErrDuplicate) {
			t.Fatalf("errors %v, want nil, ErrDuplicate, nil", errs)
		}
		links := checkChain(t, d)
		var got []string
		for _, l := range links {
			got = append(got, fmt.Sprintf("%d %s", l.Seq, l.Event.Kind))
		}
		if want := []string{"1 requested", "2 refused", "3 requested", "4 requested"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("the log holds %v, want %v", got, want)
		}
	})
	t.Run("AnotherProcessBetweenBatches", func(t *testing.T) {
		t.Parallel()
		d, path := openTest(t)
		other, err := Open(bg, path)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		for i := range 4 {
			// Each writer's batches come between the other's.
			for _, w := range []*DB{d, other, d} {
				if err := create(w, pending("UREQ", fmt.Sprintf("u%d@example.com", i)), 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		if links := checkChain(t, d); len(links) != 12 {
			t.Errorf("%d events, want 12", len(links))
		}
	})
	t.Run("NumbersNeverGivenAgain", func(t *testing.T) {
		t.Parallel()
		d, _ := openTest(t)
		for i := range 3 {
			if err := create(d, pending("UREQ", fmt.Sprintf("u%d@example.com", i)), 0); err != nil {
				t.Fatal(err)
			}
		}
		// The last event removed by hand: as AUTOINCREMENT does, its
		// number is not given again, and the next event follows the one
		// now last.
		if err := d.w.doAlone(bg, func(conn *sql.Conn) error {
			_, err := conn.ExecContext(bg, `DELETE FROM events WHERE seq = 3`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := create(d, pending("UREQ", "next@example.com"), 0); err != nil {
			t.Fatal(err)
		}
		links := checkChain(t, d)
		if len(links) != 3 || links[2].Seq != 4 {
			t.Errorf("%d events, the last numbered %d; want 3, the last numbered 4", len(links), links[len(links)-1].Seq)
		}
	})
}
