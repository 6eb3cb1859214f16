package bot

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// TestWorkQueueBounds: a queue takes jobs up to its limit while its workers
// are busy, refuses the next, and runs all it took, once each, by stop.
func TestWorkQueueBounds(t *testing.T) {
	q := newWorkQueue(context.Background(), 2, 3, time.Minute)
	hold := make(chan struct{})
	var ran atomic.Int32
	var started sync.WaitGroup
	started.Add(2)
	for range 2 { // both workers busy
		if !q.offer(func(context.Context) { started.Done(); <-hold; ran.Add(1) }) {
			t.Fatal("a job refused with idle workers")
		}
	}
	started.Wait()
	for i := range 3 {
		if !q.offer(func(context.Context) { ran.Add(1) }) {
			t.Fatalf("job %d refused with a place in the queue", i)
		}
	}
	if q.offer(func(context.Context) { ran.Add(1) }) {
		t.Fatal("a job taken past the limit")
	}
	if q.queued() != 3 {
		t.Fatalf("queued = %d, want 3", q.queued())
	}
	close(hold)
	q.stop()
	if got := ran.Load(); got != 5 {
		t.Fatalf("jobs run = %d, want the 5 taken", got)
	}
	// After stop, a job already given a place still runs.
	done := make(chan struct{})
	if !q.offer(func(context.Context) { close(done) }) {
		t.Fatal("offer after stop refused with an empty queue")
	}
	<-done
}

// TestWorkQueueTimeout: each job runs under the queue's timeout.
func TestWorkQueueTimeout(t *testing.T) {
	q := newWorkQueue(context.Background(), 1, 1, 20*time.Millisecond)
	defer q.stop()
	errc := make(chan error, 1)
	q.offer(func(ctx context.Context) { <-ctx.Done(); errc <- ctx.Err() })
	if err := <-errc; err != context.DeadlineExceeded {
		t.Fatalf("job's context ended with %v, want its deadline", err)
	}
}

// TestEnvelopeMemory: an envelope is remembered for at least envelopeTTL and
// forgotten by twice that.
func TestEnvelopeMemory(t *testing.T) {
	var m envelopeMemory
	t0 := time.Now()
	if m.seen("a", t0) {
		t.Fatal("a new envelope seen")
	}
	if !m.seen("a", t0.Add(time.Minute)) {
		t.Fatal("an envelope forgotten after a minute")
	}
	m.seen("b", t0.Add(envelopeTTL-time.Second))
	if !m.seen("a", t0.Add(envelopeTTL+time.Second)) || !m.seen("b", t0.Add(2*envelopeTTL-2*time.Second)) {
		t.Fatal("an envelope forgotten within envelopeTTL")
	}
	if m.seen("a", t0.Add(3*envelopeTTL)) {
		t.Fatal("an envelope remembered past twice envelopeTTL")
	}
}

// postedService is a Requests whose request "r1" has its message once
// posted is set.
type postedService struct {
	Requests
	posted atomic.Bool
	gets   atomic.Int32
}

func (p *postedService) Get(context.Context, string) (approvals.Request, error) {
	p.gets.Add(1)
	if p.posted.Load() {
		return approvals.Request{ID: "r1", MessageTS: "1.2"}, nil
	}
	return approvals.Request{ID: "r1"}, nil
}

// TestMessagePostedWakesTheConfirmation: the requester's confirmation waits
// for the approval message without a worker, and goes once MessagePosted
// says it is posted (here the store is not looked at otherwise), exactly
// once however often it is told.
func TestMessagePostedWakesTheConfirmation(t *testing.T) {
	svc := &postedService{}
	b := New(nil, svc, Config{MaxConcurrent: 1, QueueLimit: 1, Logger: slog.New(slog.DiscardHandler)})
	b.stop()
	b.work = newWorkQueue(context.Background(), 1, 1, time.Minute)
	b.confirm = newConfirmer(b, time.Hour) // only MessagePosted makes it look again
	defer b.stop()
	// The one worker is held, its queue full: the confirmation needs neither.
	hold := make(chan struct{})
	defer close(hold)
	b.work.offer(func(context.Context) { <-hold })
	for b.work.queued() != 0 {
		time.Sleep(time.Millisecond)
	}
	if !b.work.offer(func(context.Context) {}) || b.work.reserve() {
		t.Fatal("the queue of one is not full")
	}
	calls := make(chan bool, 4)
	b.whenPosted(context.Background(), "r1", time.Hour, func(_ context.Context, posted bool) { calls <- posted })
	if n := svc.gets.Load(); n != 1 {
		t.Fatalf("%d looks before the message is posted, want the first only", n)
	}
	b.MessagePosted("r0") // another request's: nothing to do
	svc.posted.Store(true)
	b.MessagePosted("r1")
	if posted := <-calls; !posted {
		t.Fatal("the confirmation says the message is not posted")
	}
	b.MessagePosted("r1")
	b.inflight.Wait()
	if len(calls) != 0 {
		t.Fatal("the confirmation went twice")
	}
}

// TestConfirmationAfterItsDeadline: a confirmation whose message is not
// posted in time says so, once, from the look every lookEvery.
func TestConfirmationAfterItsDeadline(t *testing.T) {
	svc := &postedService{}
	b := New(nil, svc, Config{Logger: slog.New(slog.DiscardHandler)})
	b.stop()
	b.work = newWorkQueue(context.Background(), 1, 1, time.Minute)
	b.confirm = newConfirmer(b, 5*time.Millisecond)
	defer b.stop()
	calls := make(chan bool, 4)
	b.whenPosted(context.Background(), "r1", 50*time.Millisecond, func(_ context.Context, posted bool) { calls <- posted })
	if posted := <-calls; posted {
		t.Fatal("the confirmation says the message is posted")
	}
	b.inflight.Wait()
	if len(calls) != 0 {
		t.Fatal("the confirmation went twice")
	}
}

// TestBusyRefusalsLoggedAtMostOnceASecond: a flood of refusals makes one log
// line a second, which says how many it stands for; all are counted.
func TestBusyRefusalsLoggedAtMostOnceASecond(t *testing.T) {
	var logs bytes.Buffer
	b := New(nil, &postedService{}, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer b.stop()
	for range 100 {
		b.refuseBusy("a command", "user", "U1")
	}
	if n := strings.Count(logs.String(), "busy: refusing"); n != 1 {
		t.Fatalf("%d log lines for 100 refusals at once, want 1:\n%s", n, logs.String())
	}
	b.refusalLogged.Store(time.Now().Add(-2 * time.Second).UnixNano()) // a second later
	b.refuseBusy("a click", "user", "U2")
	if !strings.Contains(logs.String(), "refused_since_last_line=100") || b.BusyRefusals() != 101 {
		t.Fatalf("BusyRefusals %d; logs:\n%s", b.BusyRefusals(), logs.String())
	}
}
