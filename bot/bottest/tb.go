package bottest

// TB is the part of testing.TB a Workspace uses. *testing.T and *testing.B
// satisfy it, and so can a program that is not a test (cmd/revokebot-demo).
// Fatalf must not return: testing.TB's stops the test's goroutine, and any
// other implementation should panic.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}
