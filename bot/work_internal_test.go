package bot

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
