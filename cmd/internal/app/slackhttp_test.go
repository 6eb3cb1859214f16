package app

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSlackClientKeepsItsConnections: calls to Slack made at once, then again,
// reuse the connections of the first round instead of opening new ones
// (net/http's default transport keeps 2 and would open the rest again).
func TestSlackClientKeepsItsConnections(t *testing.T) {
	t.Parallel()
	var (
		opened atomic.Int32
		gate   atomic.Pointer[chan struct{}] // each call waits for it to close
		inside sync.WaitGroup
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release := *gate.Load()
		inside.Done()
		<-release
		w.Write([]byte(`{"ok":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	client := slackHTTPClient(10 * time.Second)
	const atOnce = 8
	for round := range 2 {
		release := make(chan struct{})
		gate.Store(&release)
		inside.Add(atOnce)
		var calls sync.WaitGroup
		for range atOnce {
			calls.Go(func() {
				resp, err := client.Get(srv.URL)
				if err != nil {
					t.Errorf("round %d: %v", round, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		inside.Wait() // all at once: one connection each
		close(release)
		calls.Wait()
	}
	if n := opened.Load(); n != atOnce {
		t.Errorf("%d connections opened for 2 rounds of %d calls at once, want %d (the first round's, kept)", n, atOnce, atOnce)
	}
}
