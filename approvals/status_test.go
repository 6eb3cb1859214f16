package approvals_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// create stores a pending request of U1 with the given ID.
func (f *fixture) create(t *testing.T, id string) approvals.Request {
	t.Helper()
	now := f.clock.Now()
	r := approvals.Request{ID: id, Requester: "U1", Required: 1, CreatedAt: now, ExpiresAt: now.Add(f.svc.TTL),
		Targets: []approvals.Target{{Email: "alice@example.com", State: approvals.TargetWaiting}}}
	e := approvals.Event{Kind: approvals.EventRequested, Request: r, State: r.State(), Actor: r.Requester, At: now}
	if err := f.store.Create(context.Background(), r, e, 0); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	a1 := f.create(t, "abc00000-0000-4000-8000-000000000001")
	f.create(t, "abc00000-0000-4000-8000-000000000002")
	d := f.create(t, "def00000-0000-4000-8000-000000000003")

	for _, tt := range []struct{ user, prefix, want string }{
		{"U2", "def", d.ID},
		{"U3", "def00000", d.ID}, // an approver through a group
		{"U1", " DEF0 ", d.ID},   // the requester; case and spaces do not matter
		{"U2", a1.ID, a1.ID},
		{"U2", "abc00000-0000-4000-8000-00000000000", ""},
	} {
		got, err := f.svc.Status(ctx, tt.user, tt.prefix)
		if tt.want == "" {
			e := wantError(t, err, approvals.EINVALID, approvals.WhyAmbiguous)
			if e.Limit != 2 {
				t.Errorf("Status(%q): Limit = %d, want 2", tt.prefix, e.Limit)
			}
			continue
		}
		if err != nil || got.ID != tt.want {
			t.Errorf("Status(%s, %q) = %s, %v; want %s", tt.user, tt.prefix, got.ID, err, tt.want)
		}
	}
	_, err := f.svc.Status(ctx, "U2", "abc")
	wantError(t, err, approvals.EINVALID, approvals.WhyAmbiguous)
	for _, prefix := range []string{"0123", "", "  ", "abc00000-0000-4000-8000-000000000009"} {
		_, err := f.svc.Status(ctx, "U2", prefix)
		wantError(t, err, approvals.ENOTFOUND, approvals.WhyNoRequest)
	}
	// Someone neither requester nor approver learns nothing, not even
	// whether the request exists.
	for _, prefix := range []string{"def", "0123"} {
		_, err := f.svc.Status(ctx, "U9", prefix)
		wantError(t, err, approvals.EFORBIDDEN, approvals.WhyNotRequester)
	}
}

func TestPending(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.MaxPending = 10
	ctx := context.Background()
	pending := f.submit(t)
	f.clock.Advance(time.Minute)
	executing := f.submit(t, "bob@example.com", "carol@example.com")
	f.markExecuting(t, executing.ID, 0)
	revoked := f.submit(t)
	if _, err := f.svc.Decide(ctx, revoked.ID, "U2", approvals.Approve); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute) // oldest first: created apart
	denied := f.submit(t)
	if _, err := f.svc.Decide(ctx, denied.ID, "U1", approvals.Deny); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	later := f.submit(t)

	got, err := f.svc.Pending(ctx, "U3")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	want := []string{pending.ID, later.ID, executing.ID}
	if !slices.Equal(ids, want) {
		t.Fatalf("Pending = %v, want %v", ids, want)
	}
	if got[2].State() != approvals.StateExecuting || !strings.Contains(got[2].Summary(), "1 of 2 revoked") {
		t.Fatalf("executing request listed as %s, %q", got[2].State(), got[2].Summary())
	}
	_, err = f.svc.Pending(ctx, "U9")
	wantError(t, err, approvals.EFORBIDDEN, approvals.WhyNotRequester)
}
