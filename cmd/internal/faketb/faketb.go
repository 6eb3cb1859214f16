// Package faketb lets the test fakes (bot/bottest, cloudflare/cftest) run in
// a program that is not a test: the demo and the load benchmark.
package faketb

import (
	"fmt"
	"io"
	"sync"
)

// TB is the part of testing.TB the fakes use. Fatalf panics with a Failure,
// which the program recovers and reports; the Cleanup functions run when the
// program calls RunCleanups; Logf writes to Log, if set.
type TB struct {
	Log io.Writer

	mu       sync.Mutex
	cleanups []func()
}

// Failure is what Fatalf panics with: what went wrong in a fake.
type Failure string

// Helper does nothing: there is no test to mark a helper of.
func (*TB) Helper() {}

// Fatalf panics with a Failure, since it must not return.
func (*TB) Fatalf(format string, args ...any) { panic(Failure(fmt.Sprintf(format, args...))) }

// Logf writes a line to Log, if set.
func (t *TB) Logf(format string, args ...any) {
	if t.Log != nil {
		fmt.Fprintf(t.Log, format+"\n", args...)
	}
}

// Cleanup registers f to run at RunCleanups.
func (t *TB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// RunCleanups runs the Cleanup functions, last registered first, once.
func (t *TB) RunCleanups() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
