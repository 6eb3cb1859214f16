package bot

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// workQueue runs the bot's work (commands, clicks, follow-ups) on a fixed
// pool of workers, with at most limit items waiting for one. Past that, the
// work is refused at once (offer reports false) and the person is told that
// revokebot is busy: a burst of any size costs a bounded amount of memory
// and goroutines, and both come back down after it.
type workQueue struct {
	ctx     context.Context
	jobs    chan func(context.Context)
	waiting atomic.Int64 // jobs offered and not yet taken by a worker
	limit   int64
	timeout time.Duration

	mu      sync.RWMutex // guards closed against offers racing stop
	closed  bool
	workers sync.WaitGroup
}

// newWorkQueue starts workers workers that run each job with ctx, bounded by
// timeout, and accept at most limit jobs waiting.
func newWorkQueue(ctx context.Context, workers, limit int, timeout time.Duration) *workQueue {
	q := &workQueue{ctx: ctx, jobs: make(chan func(context.Context), limit), limit: int64(limit), timeout: timeout}
	q.workers.Add(workers)
	for range workers {
		go q.work()
	}
	return q
}

func (q *workQueue) work() {
	defer q.workers.Done()
	for job := range q.jobs {
		q.waiting.Add(-1)
		q.run(job)
	}
}

func (q *workQueue) run(job func(context.Context)) {
	ctx, cancel := context.WithTimeout(q.ctx, q.timeout)
	defer cancel()
	job(ctx)
}

// reserve takes a place in the queue, if one is free: the caller must then
// put exactly one job in it with fill. Reserving first lets the caller ack
// Slack before the work can start.
func (q *workQueue) reserve() bool {
	if q.waiting.Add(1) > q.limit {
		q.waiting.Add(-1)
		return false
	}
	return true
}

// fill queues job in a place taken with reserve. It never blocks: the
// places reserved never exceed the channel's capacity. After stop (which
// waits for the work accepted, so only a misuse gets here), the job runs in
// the caller, so that work accepted is never dropped.
func (q *workQueue) fill(job func(context.Context)) {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		q.waiting.Add(-1)
		q.run(job)
		return
	}
	defer q.mu.RUnlock()
	q.jobs <- job
}

// offer queues job if a place is free, and reports whether it did.
func (q *workQueue) offer(job func(context.Context)) bool {
	if !q.reserve() {
		return false
	}
	q.fill(job)
	return true
}

// stopped reports whether stop was called.
func (q *workQueue) stopped() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.closed
}

// stop takes no more jobs and waits for the workers to finish those queued.
func (q *workQueue) stop() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.jobs)
	}
	q.mu.Unlock()
	q.workers.Wait()
}

// queued returns how many jobs wait for a worker.
func (q *workQueue) queued() int { return int(q.waiting.Load()) }
