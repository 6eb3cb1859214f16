package bot

import (
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// An audit record shows the start of its link in the log's hash chain, and
// its metadata carries all of it with the record number.
func TestAuditRecordCarriesItsChainLink(t *testing.T) {
	hash := strings.Repeat("0123456789abcdef", 4)
	e := approvals.Event{Kind: approvals.EventApproved, Actor: "U2", At: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), Hash: hash,
		Request: approvals.Request{ID: "f6fa5801-eb7c-4af6-80ab-64e23a9842b5", Requester: "U1",
			Targets: []approvals.Target{{Email: "alice@example.com"}}}}
	text := auditText(e, 7)
	if !strings.Contains(text, " chain=0123456789ab") || strings.Contains(text, hash) {
		t.Errorf("audit text %q: want chain= and the first 12 hex digits only", text)
	}
	meta := auditMetadata(e, 7, 7, 1)
	if meta.EventPayload["hash"] != hash || meta.EventPayload["seq"] != int64(7) {
		t.Errorf("metadata %+v: want the full hash and the record number", meta.EventPayload)
	}
	// Without a hash (not read back from a store), none is shown.
	e.Hash = ""
	if text := auditText(e, 7); strings.Contains(text, "chain=") {
		t.Errorf("audit text %q shows a chain it has not", text)
	}
	if _, ok := auditMetadata(e, 7, 7, 1).EventPayload["hash"]; ok {
		t.Errorf("metadata carries an empty hash")
	}
	// A hash that is not hex (never from a store) cannot format the line.
	e.Hash = "<!channel>*bold*"
	if text := auditText(e, 7); !strings.Contains(text, "chain=invalid") {
		t.Errorf("audit text %q", text)
	}
}
