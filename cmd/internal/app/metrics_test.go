package app

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/cmd/internal/ops"
)

// The events count as verifications by result: a revoked record by its
// target's check, a pending one's settling by its word; a relogin counts.
func TestEventSinkCountsVerifications(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	sink := eventSink{courier: bot.NewCourier(nil, nil, "CAUDIT", bot.Unpaced, nil), metrics: ops.NewMetrics(reg)}
	r := approvals.Request{Targets: []approvals.Target{
		{Email: "a@example.com", Check: approvals.Check{State: approvals.CheckVerified}},
		{Email: "b@example.com", Check: approvals.Check{State: approvals.CheckPending}},
	}}
	ctx := context.Background()
	for _, e := range []approvals.Event{
		{Kind: approvals.EventRevoked, Target: "a@example.com", Request: r},
		{Kind: approvals.EventRevoked, Target: "b@example.com", Request: r},
		{Kind: approvals.EventUnverified, Target: "b@example.com", Request: approvals.Request{Targets: []approvals.Target{
			{Email: "b@example.com", Check: approvals.Check{State: approvals.CheckUnverified}}}}},
		{Kind: approvals.EventObserved, Request: r},
		{Kind: approvals.EventRelogin, Target: "a@example.com", Request: r},
	} {
		sink.Notify(ctx, e)
	}
	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"revokebot_verifications_total/verified":   1,
		"revokebot_verifications_total/pending":    1,
		"revokebot_verifications_total/unverified": 1,
		"revokebot_verifications_total/skipped":    0,
		"revokebot_relogins_total":                 1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}
