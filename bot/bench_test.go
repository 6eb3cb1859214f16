package bot

import (
	"testing"

	"github.com/revokebot/revokebot/approvals"
)

func BenchmarkParseCommand(b *testing.B) {
	const text = `<mailto:alice@example.com|alice@example.com> --devices --warp-reauth --uid 7f8e1c2a-0b3d-4e5f-9a6b-1c2d3e4f5a6b --reason "laptop stolen at the airport, see INC-4242"`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCommand(text); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderRequest(b *testing.B) {
	r := hostileRequest(approvals.StatePending)
	b.ReportAllocs()
	for b.Loop() {
		renderRequest(r, hostileNotify)
	}
}

func BenchmarkAuditText(b *testing.B) {
	r := hostileRequest(approvals.StateRevoked)
	e := approvals.Event{Kind: approvals.EventRevoked, Request: r, State: r.State(), Target: r.Targets[0].Email, Detail: r.Targets[0].Outcome, At: r.FinishedAt}
	b.ReportAllocs()
	for b.Loop() {
		auditText(e, 7)
	}
}
