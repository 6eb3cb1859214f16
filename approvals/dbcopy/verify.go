package dbcopy

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// Store is what Verify reads of each database: both stores are one.
type Store interface {
	approvals.Store
	approvals.Outbox
}

// states are every state a request can be in.
var states = []approvals.State{
	approvals.StateRefused, approvals.StatePending, approvals.StateExecuting, approvals.StateDenied,
	approvals.StateCancelled, approvals.StateExpired, approvals.StateRevoked, approvals.StateFailed,
}

// sampled is how many requests Verify also reads one by one (Get).
const sampled = 25

// Verify reads the history of from and of to through their Store and
// Outbox, and reports the first difference: every request (ListByState, in
// every state, and Get for a sample spread over them), every delivery still
// to do (Undelivered, for each part, and PendingRefusals), and the Backlog,
// which it returns. Times are compared to the millisecond, which both
// stores keep. Neither database may change meanwhile.
func Verify(ctx context.Context, from, to Store) (backlog int, err error) {
	var ids []string
	for _, s := range states {
		a, err := from.ListByState(ctx, s)
		if err != nil {
			return 0, fmt.Errorf("SQLite: %w", err)
		}
		b, err := to.ListByState(ctx, s)
		if err != nil {
			return 0, fmt.Errorf("PostgreSQL: %w", err)
		}
		if err := sameRequests(fmt.Sprintf("%s requests", s), a, b); err != nil {
			return 0, err
		}
		for _, r := range a {
			ids = append(ids, r.ID)
		}
	}
	k := min(len(ids), sampled)
	for i := range k {
		id := ids[0]
		if k > 1 {
			id = ids[i*(len(ids)-1)/(k-1)] // the first and the last among them
		}
		a, err := from.Get(ctx, id)
		if err != nil {
			return 0, fmt.Errorf("SQLite: %w", err)
		}
		b, err := to.Get(ctx, id)
		if err != nil {
			return 0, fmt.Errorf("PostgreSQL: %w", err)
		}
		if err := same("request "+id, normalRequest(a), normalRequest(b)); err != nil {
			return 0, err
		}
	}
	for _, part := range []approvals.Part{approvals.AuditRecord, approvals.MessageUpdate, approvals.Notice} {
		a, err := from.Undelivered(ctx, part, -1)
		if err != nil {
			return 0, fmt.Errorf("SQLite: %w", err)
		}
		b, err := to.Undelivered(ctx, part, -1)
		if err != nil {
			return 0, fmt.Errorf("PostgreSQL: %w", err)
		}
		if err := sameDeliveries(fmt.Sprintf("undelivered %ss", part), a, b); err != nil {
			return 0, err
		}
	}
	a, err := from.PendingRefusals(ctx)
	if err != nil {
		return 0, fmt.Errorf("SQLite: %w", err)
	}
	b, err := to.PendingRefusals(ctx)
	if err != nil {
		return 0, fmt.Errorf("PostgreSQL: %w", err)
	}
	if len(a) != len(b) {
		return 0, fmt.Errorf("refused attempts to audit: %d actors in SQLite, %d in PostgreSQL", len(a), len(b))
	}
	for i := range a {
		if err := same("refused attempts of "+a[i].Actor, normalRefusals(a[i]), normalRefusals(b[i])); err != nil {
			return 0, err
		}
	}
	na, err := from.Backlog(ctx)
	if err != nil {
		return 0, fmt.Errorf("SQLite: %w", err)
	}
	nb, err := to.Backlog(ctx)
	if err != nil {
		return 0, fmt.Errorf("PostgreSQL: %w", err)
	}
	if na != nb {
		return 0, fmt.Errorf("events with a part still to deliver: %d in SQLite, %d in PostgreSQL", na, nb)
	}
	return na, nil
}

// sameRequests reports the first of two lists of requests that differ.
func sameRequests(what string, a, b []approvals.Request) error {
	for i := range min(len(a), len(b)) {
		if err := same(fmt.Sprintf("%s: request %s", what, a[i].ID), normalRequest(a[i]), normalRequest(b[i])); err != nil {
			return err
		}
	}
	if len(a) != len(b) {
		return fmt.Errorf("%s: %d in SQLite, %d in PostgreSQL", what, len(a), len(b))
	}
	return nil
}

// sameDeliveries reports the first of two lists of deliveries that differ.
func sameDeliveries(what string, a, b []approvals.Delivery) error {
	for i := range min(len(a), len(b)) {
		if err := same(fmt.Sprintf("%s: event %d", what, a[i].Seq), normalDelivery(a[i]), normalDelivery(b[i])); err != nil {
			return err
		}
	}
	if len(a) != len(b) {
		return fmt.Errorf("%s: %d in SQLite, %d in PostgreSQL", what, len(a), len(b))
	}
	return nil
}

// same reports, if a and b (structs of one type) differ, which of their
// fields do, with both values.
func same(what string, a, b any) error {
	if reflect.DeepEqual(a, b) {
		return nil
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var diffs []string
	for i := range va.NumField() {
		fa, fb := va.Field(i).Interface(), vb.Field(i).Interface()
		if !reflect.DeepEqual(fa, fb) {
			diffs = append(diffs, fmt.Sprintf("%s is %+v in SQLite, %+v in PostgreSQL", va.Type().Field(i).Name, fa, fb))
		}
	}
	return fmt.Errorf("%s reads differently: %s", what, strings.Join(diffs, "; "))
}

// ms is t to the millisecond, in UTC; the zero time stays zero.
func ms(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

// normalRequest is r with its times to the millisecond, and no empty
// slices, so that equal requests are DeepEqual.
func normalRequest(r approvals.Request) approvals.Request {
	r.CreatedAt, r.ExpiresAt, r.EscalatedAt, r.ExpiredAt, r.FinishedAt =
		ms(r.CreatedAt), ms(r.ExpiresAt), ms(r.EscalatedAt), ms(r.ExpiredAt), ms(r.FinishedAt)
	var targets []approvals.Target
	for _, t := range r.Targets {
		t.FinishedAt = ms(t.FinishedAt)
		targets = append(targets, t)
	}
	var reviews []approvals.Review
	for _, rv := range r.Reviews {
		rv.At = ms(rv.At)
		reviews = append(reviews, rv)
	}
	r.Targets, r.Reviews = targets, reviews
	return r
}

// normalDelivery is d normalised as normalRequest does.
func normalDelivery(d approvals.Delivery) approvals.Delivery {
	d.Event.Request, d.Current = normalRequest(d.Event.Request), normalRequest(d.Current)
	d.Event.At = ms(d.Event.At)
	return d
}

// normalRefusals is r normalised as normalRequest does.
func normalRefusals(r approvals.Refusals) approvals.Refusals {
	r.First, r.Last, r.LastAudited = normalDelivery(r.First), normalDelivery(r.Last), ms(r.LastAudited)
	return r
}
