package cftest

// TB is the part of testing.TB a Server uses. *testing.T and *testing.B
// satisfy it, and so can a program that is not a test (cmd/revokebot-demo).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}
