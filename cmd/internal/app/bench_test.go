package app

import (
	"fmt"
	"testing"
)

// BenchmarkApprovalFlow measures one whole request through the real bot:
// slash command → approval message → Approve click → Cloudflare call →
// message update → three audit records, against the local fakes.
func BenchmarkApprovalFlow(b *testing.B) {
	h := start(b, map[string]string{"REVOKEBOT_LOG_LEVEL": "error"})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		m := h.request(fmt.Sprintf("user%d@example.com --devices", i))
		h.click(approver, m, "revoke_approve")
		h.waitMessageState(m, "Revoked")
	}
	b.StopTimer()
	if got := len(h.cf.Calls()); got != i {
		b.Fatalf("%d cloudflare calls for %d approvals", got, i)
	}
}
