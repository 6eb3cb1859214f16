package faketb

import (
	"bytes"
	"testing"
)

func TestTB(t *testing.T) {
	var log bytes.Buffer
	tb := &TB{Log: &log}
	var order []int
	tb.Cleanup(func() { order = append(order, 1) })
	tb.Cleanup(func() { order = append(order, 2) })
	tb.RunCleanups()
	tb.RunCleanups() // once
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Errorf("cleanups ran %v, want [2 1]", order)
	}
	tb.Logf("hello %d", 7)
	if log.String() != "hello 7\n" {
		t.Errorf("Logf wrote %q", log.String())
	}
	defer func() {
		if f, ok := recover().(Failure); !ok || f != "no socket: 3" {
			t.Errorf("Fatalf panicked with %v", f)
		}
	}()
	tb.Fatalf("no socket: %d", 3)
	t.Error("Fatalf returned")
}
