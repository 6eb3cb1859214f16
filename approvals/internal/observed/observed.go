// Package observed encodes what the stores keep of a target's observations
// (its preview, verification and watch: approvals.Look, Check and Watch) as
// one JSON text, so that both stores keep them alike, and derives the two
// times the stores index to find the targets still observed.
package observed

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// record is the stored form. Its keys are part of the stored data: renaming
// one needs a migration.
type record struct {
	Look  *approvals.Look  `json:"look,omitempty"`
	Check *approvals.Check `json:"check,omitempty"`
	Watch *approvals.Watch `json:"watch,omitempty"`
}

// Encode returns t's observations as stored: "" when there are none.
func Encode(t approvals.Target) (string, error) {
	var r record
	if t.Look != (approvals.Look{}) {
		r.Look = &t.Look
	}
	if t.Check != (approvals.Check{}) {
		r.Check = &t.Check
	}
	if t.Watch != (approvals.Watch{}) {
		r.Watch = &t.Watch
	}
	if r == (record{}) {
		return "", nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encode the observations of %s: %w", t.Email, err)
	}
	return string(b), nil
}

// Decode sets t's observations from their stored form s.
func Decode(s string, t *approvals.Target) error {
	if s == "" {
		return nil
	}
	var r record
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return fmt.Errorf("decode the observations of %s: %w", t.Email, err)
	}
	if r.Look != nil {
		t.Look = *r.Look
		t.Look.At, t.Look.LastLogin = t.Look.At.UTC(), t.Look.LastLogin.UTC()
	}
	if r.Check != nil {
		t.Check = *r.Check
		t.Check.Until, t.Check.At = t.Check.Until.UTC(), t.Check.At.UTC()
	}
	if r.Watch != nil {
		t.Watch = *r.Watch
		t.Watch.From, t.Watch.Until, t.Watch.Checked, t.Watch.Relogin.At = t.Watch.From.UTC(), t.Watch.Until.UTC(), t.Watch.Checked.UTC(), t.Watch.Relogin.At.UTC()
	}
	return nil
}

// PendingUntil is, for a target whose verification is pending, when it
// gives up, in Unix milliseconds; else 0.
func PendingUntil(t approvals.Target) int64 {
	if t.Check.State != approvals.CheckPending {
		return 0
	}
	return max(t.Check.Until.UnixMilli(), 1)
}

// finalLook is how long after its end a watch whose log was not read up to
// its end stays listed (see Store.Watched), for its last read.
const finalLook = 24 * time.Hour

// WatchUntil is, for a target watched for its return (see Watch.Open), when
// it stops being listed as watched, in Unix milliseconds: a while after the
// watch ends, so that its last read is made; else 0.
func WatchUntil(t approvals.Target) int64 {
	if !t.Watch.Open() {
		return 0
	}
	return t.Watch.Until.Add(finalLook).UnixMilli()
}
